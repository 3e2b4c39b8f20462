"""After the campaign (扩大战果): did the effect last?

A campaign that moves purchases in its period may only have moved them forward. The plan's
``follow_up_days: [30, 60, 90]`` measures treated against holdout again over the days after the
period ends — day 1 to day 30, to day 60, to day 90 — on later runs, once the data reaches each
window's last day (a window the data does not reach yet is listed as not reached). Per window and
assigned customer, from :func:`closedloop.summaries.per_customer`:

- ``converted``: bought in the window; ``orders``: purchases in the window; ``revenue``: net spend
  in the window;
- ``second_purchase``: bought in the campaign period and again in the window (the campaign's
  buyers coming back).

Each is compared across arms by :func:`closedloop.lift.bayesian_lift` (randomisation holds after
the period: every assigned customer counts, buyers or not). An effect *lasts* when P(the arm beats
the holdout) in the longest reached window is at least :data:`PERSIST_P`; the Act step prefers
such arms (:func:`closedloop.act.persistence_decisions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from closedloop import lift, summaries

__all__ = ["FOLLOW_UP_METRICS", "PERSIST_P", "FollowUp", "follow_up", "lasting"]

#: what is measured after the period
FOLLOW_UP_METRICS = ("converted", "orders", "revenue", "second_purchase")
#: an arm's effect lasts when it beats the holdout in the longest reached window with this
#: probability
PERSIST_P = 0.80
WINDOW_COLUMNS = ["days", "start", "end", "reached", "data_until"]


@dataclass(frozen=True)
class FollowUp:
    """``windows``: one row per follow-up window (``days, start, end, reached, data_until``);
    ``table``: the lift table (:data:`closedloop.lift.LIFT_COLUMNS`) of each reached window,
    ``days`` first."""

    windows: pd.DataFrame
    table: pd.DataFrame

    @property
    def reached(self) -> list[int]:
        return [int(d) for d in self.windows.loc[self.windows["reached"], "days"]]

    @property
    def pending(self) -> list[int]:
        return [int(d) for d in self.windows.loc[~self.windows["reached"], "days"]]


def follow_up(
    assignments: pd.DataFrame,
    transactions,
    period: tuple,
    days,
    control: str,
    data_until,
    seed: int = 0,
) -> FollowUp:
    """Treated against holdout in each window of ``days`` after the ``period = (start, end)``
    ends. ``data_until`` is the last day the data covers (the run's as-of day, or the last
    transaction's day if earlier): a window ending after it is not reached and not measured."""
    start, end = summaries.day(period[0], "period start"), summaries.day(period[1], "period end")
    until = summaries.day(data_until, "data_until")
    ids = assignments[["customer_id", "arm"]].assign(
        customer_id=assignments["customer_id"].astype("str")
    )
    windows, tables = [], []
    for n in days:
        first, last = end + pd.Timedelta(days=1), end + pd.Timedelta(days=int(n))
        reached = bool(until >= last)
        windows.append((int(n), first, last, reached, until))
        if not reached:
            continue
        per = summaries.per_customer(
            transactions, last, start=start, windows={"after": (first, last)}
        ).reindex(ids["customer_id"])
        after = per["orders_after"].fillna(0).to_numpy()
        spend = per["revenue_after"].fillna(0.0).to_numpy()
        during = per["orders"].fillna(0).to_numpy() - after
        frame = ids.assign(
            converted=((after > 0) & (spend > 0)).astype(int),
            orders=after.astype(float),
            revenue=spend,
            second_purchase=((during > 0) & (after > 0)).astype(int),
        )
        kinds = {"orders": "value", "revenue": "normal"}  # refunds can make spend negative
        if (spend >= 0).all():
            kinds["revenue"] = "value"
        table = lift.bayesian_lift(
            frame, control=control, metrics=list(FOLLOW_UP_METRICS), kinds=kinds, seed=seed
        ).table
        tables.append(table.assign(days=int(n))[["days", *table.columns]])
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return FollowUp(pd.DataFrame(windows, columns=WINDOW_COLUMNS), table)


def lasting(result: FollowUp | None, metric: str) -> dict[str, float]:
    """Each treated arm's P(beats the holdout on ``metric``) in the longest reached window (empty
    without a reached window: no evidence yet)."""
    if result is None or not result.reached or result.table.empty:
        return {}
    rows = result.table[(result.table["days"] == max(result.reached))]
    rows = rows[rows["metric"] == metric]
    return dict(zip(rows["arm"], rows["p_better"].astype(float), strict=True))
