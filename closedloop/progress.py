"""Progress (进度): the campaign day by day and week by week, so a reader sees when the effect
appeared and whether it holds — the Check "every week or even every day" of the method.

From the transactions of the period (through :func:`closedloop.summaries.by_period`) and who was
in which arm: per arm and day the cumulative share of assigned customers who have bought
(conversion so far) and their cumulative net revenue, and for each treated arm the cumulative
relative lift in conversion over the holdout with its 95% credible interval, from the Beta
posteriors of the two cumulative rates (Monte Carlo, numpy's seeded ``Generator``); per arm and
week the purchases, the customers who bought for the first time in the period, and revenue.

:func:`baseline_shares` reads the baseline period's daily curve as a week: how much of a
week's purchases and revenue fall on each weekday, so an interim Check expects by now the share
of each target that the days gone by carry (a period that starts on a quiet weekday is not
called behind for it), not the share of days. The weekly profile, rather than the raw curve,
because a campaign's audience is often chosen for its trend: the demo's win-back audience bought
half as much in late February as in early January, and read raw that decline would set the pace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop._frames import bounds
from closedloop.priors import PRIOR

__all__ = ["DRAWS", "Progress", "baseline_shares", "progress"]

#: posterior draws per arm and day for the cumulative lift's interval
DRAWS = 4_000


@dataclass(frozen=True)
class Progress:
    """``daily``: ``date, arm, customers, converted, conversion, revenue`` (cumulative to the end
    of that day) and, for treated arms, ``rel_lift, rel_lift_low, rel_lift_high`` (conversion so
    far over the holdout's); ``weekly``: ``week`` (its Monday, or the period's first day for the
    week the period starts in), ``arm, purchases, new_buyers, revenue`` within the week."""

    daily: pd.DataFrame
    weekly: pd.DataFrame


def progress(
    assignments: pd.DataFrame,
    transactions,
    start,
    asof,
    control: str,
    *,
    seed: int = 0,
) -> Progress:
    """The campaign's progress from ``start`` to the end of the ``asof`` day (see the module
    docstring). ``assignments`` has ``customer_id, arm``; ``transactions`` any frame the
    package reads."""
    first, last = summaries.day(start, "start"), summaries.day(asof)
    days = pd.date_range(first, last, freq="D")
    arms = assignments[["customer_id", "arm"]].astype({"customer_id": "str", "arm": "str"})
    sizes = arms["arm"].value_counts()
    per = summaries.by_period(transactions, last, start=first, freq="day", source="transactions")
    per = per.merge(arms, on="customer_id", how="inner")
    bought = per[per["orders"] > 0]
    debut = bought.groupby("customer_id").agg(day=("period", "min"), arm=("arm", "first"))
    new = debut.groupby(["arm", "day"]).size()
    spend = per.groupby(["arm", "period"])["revenue"].sum()
    rows = []
    for arm, n in sizes.items():
        converted = new.get(arm, pd.Series(dtype="int64")).reindex(days, fill_value=0).cumsum()
        revenue = spend.get(arm, pd.Series(dtype="float64")).reindex(days, fill_value=0.0).cumsum()
        rows.append(
            pd.DataFrame(
                {
                    "date": days,
                    "arm": arm,
                    "customers": int(n),
                    "converted": converted.to_numpy(),
                    "conversion": converted.to_numpy() / n,
                    "revenue": revenue.to_numpy(),
                }
            )
        )
    daily = pd.concat(rows, ignore_index=True)
    _cumulative_lift(daily, control, seed)
    # a week is named by its first day in the period: its Monday, or the period's first day
    per["week"] = _week(per["period"], first)
    debut["week"] = _week(debut["day"], first)
    weekly = (
        per.groupby(["week", "arm"])
        .agg(purchases=("orders", "sum"), revenue=("revenue", "sum"))
        .join(debut.groupby(["week", "arm"]).size().rename("new_buyers"))
        .fillna({"new_buyers": 0})
        .astype({"new_buyers": "int64"})
        .reset_index()[["week", "arm", "purchases", "new_buyers", "revenue"]]
    )
    return Progress(daily, weekly)


def _week(days: pd.Series, first: pd.Timestamp) -> pd.Series:
    """Each day's week, named by its first day on or after ``first``: the week's Monday, or
    ``first`` for the week it falls in (a period starting on Sunday 1 March has that week
    named 1 March, not Monday 23 February)."""
    monday = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return monday.where(monday >= first, first)


def _cumulative_lift(daily: pd.DataFrame, control: str, seed: int) -> None:
    """Add each treated arm's cumulative relative lift in conversion, in place."""
    rng = np.random.default_rng(seed)
    for column in ("rel_lift", "rel_lift_low", "rel_lift_high"):
        daily[column] = np.nan
    base = daily[daily["arm"] == control].set_index("date")
    if base.empty:
        return
    for arm in sorted(set(daily["arm"]) - {control}):
        rows = daily.index[daily["arm"] == arm]
        mine = daily.loc[rows].set_index("date")
        x, n = mine["converted"].to_numpy(), mine["customers"].to_numpy()
        xc, nc = base["converted"].to_numpy(), base["customers"].to_numpy()
        size = (len(x), DRAWS)
        arm_rate = rng.beta(PRIOR.alpha + x[:, None], PRIOR.beta + (n - x)[:, None], size)
        ctl_rate = rng.beta(PRIOR.alpha + xc[:, None], PRIOR.beta + (nc - xc)[:, None], size)
        lift = arm_rate / ctl_rate - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            point = np.where(xc > 0, (x / n) / (xc / nc) - 1, np.nan)
        daily.loc[rows, "rel_lift"] = point
        daily.loc[rows, "rel_lift_low"] = np.quantile(lift, 0.025, axis=1)
        daily.loc[rows, "rel_lift_high"] = np.quantile(lift, 0.975, axis=1)


def baseline_shares(assignments: pd.DataFrame, transactions, baseline, period, asof):
    """The share of the campaign ``period`` 's purchases and revenue expected by the end of the
    ``asof`` day, from the baseline's weekly profile: ``{"purchases": ..., "revenue": ...}``.

    ``baseline`` and ``period`` are (first day, last day) pairs. Over the baseline, the assigned
    customers' purchases (and net revenue) are averaged per weekday; the period's days are
    weighted by their weekday's average and the share is the weight of the days gone by over
    the weight of all. A flat week gives the share of days gone by (pro rata). A curve whose
    share falls outside (0, 1] (a weekday with nothing, refunds) is left out; None when the
    baseline is shorter than a week or the transactions do not cover it (they start after it
    starts or end before it ends)."""
    first, last = summaries.day(baseline[0], "start"), summaries.day(baseline[1])
    low, high = bounds(transactions, "order_date")
    if (last - first).days + 1 < 7 or pd.isna(low):
        return None
    if low >= first + pd.Timedelta("1D") or high < last:
        return None
    ids = set(assignments["customer_id"].astype("str"))
    per = summaries.by_period(transactions, last, start=first, freq="day", source="transactions")
    daily = per[per["customer_id"].isin(ids)].groupby("period")[["orders", "revenue"]].sum()
    daily = daily.reindex(pd.date_range(first, last, freq="D"), fill_value=0)
    week = daily.groupby(daily.index.day_of_week).mean()
    days = pd.date_range(summaries.day(period[0], "start"), summaries.day(period[1]), freq="D")
    gone = days <= summaries.day(asof)
    out = {}
    for name, column in (("purchases", "orders"), ("revenue", "revenue")):
        weight = week[column].reindex(days.day_of_week).to_numpy("float64")
        total = weight.sum()
        share = weight[gone].sum() / total if total > 0 else 0
        if 0 < share <= 1:
            out[name] = float(share)
    return out
