"""A campaign's objective and the numbers it moves (活动目标: 拉新、转化、二次购买、提升客单价、提升频次).

The method names five objectives — recruit, convert, second purchase, raise the ticket of loyal
customers, raise the frequency of high-ticket low-frequency customers — and each has its own
numbers. This module is their one home:

- the **outcome metrics**, one value per assigned customer over a window of days, all from the
  per-customer summaries of :mod:`closedloop.summaries`: ``orders`` (frequency, 购买频次),
  ``ticket`` (revenue per order of a buyer, 客单价), ``second_purchase`` (bought twice, the second
  within ``metrics.second_purchase_days`` of the first, 二次购买), ``recruited`` (joined in the
  window, 招募; :func:`closedloop.kpi.recruits`), ``first_conversion`` (joined and then bought,
  首购转化) and ``lead`` (reached the funnel stage ``metrics.lead_stage``, 线索);
- the **targets** on them (:data:`TARGET_COLUMNS`) and how each is measured over the contacted
  customers (:func:`statistic`);
- what each objective **leads with** (:data:`OBJECTIVE_METRICS`, :data:`OBJECTIVE_TARGETS`): the
  metric the arms are judged on, the rows the scorecard, the lift table and the verdict show
  first, and the plan's default target when it gives none (:func:`default_targets`);
- **targets against the baseline** (:func:`resolve_targets`): ``{vs_baseline: +10%}`` is the same
  statistic over the plan's ``baseline`` period, times 1.1.

The average ticket is a ratio (revenue / orders), not a mean per customer: its lift is read from
the arm's buyers linearised by the delta method (Deng, Knoblich and Lu, "Applying the Delta Method
in Metric Analytics", KDD 2018; :func:`ticket_lift`), so the posterior of each arm's ticket is
centred on its revenue / orders with the delta method's variance.
"""

from __future__ import annotations

import narwhals as nw
import numpy as np
import pandas as pd

from closedloop import funnel as funnel_mod
from closedloop import kpi, lift, sources, summaries
from closedloop._frames import bounds, collect, lazy_frame
from closedloop.errors import DataError
from closedloop.plan import METRIC_COLUMNS, RATE_TARGETS, Plan, PlanError, VsBaseline

__all__ = [
    "BASE_METRICS",
    "COUNT_TARGETS",
    "OBJECTIVE_METRICS",
    "OBJECTIVE_TARGETS",
    "TARGET_COLUMNS",
    "default_targets",
    "lead_metrics",
    "lift_metrics",
    "order_first",
    "outcomes",
    "resolve_targets",
    "statistic",
    "ticket_lift",
]

#: the outcome columns every Check measures when the data has them
BASE_METRICS = ("converted", "revenue", "visited")
#: objective -> the outcome columns it leads with (the first is the one arms are judged on)
OBJECTIVE_METRICS = {
    "recruit": ("recruited", "first_conversion"),
    "convert": ("converted",),
    "second purchase": ("second_purchase",),
    "ticket": ("ticket",),
    "frequency": ("orders",),
    "win back": ("converted",),
}
#: objective -> the targets the scorecard and the verdict show first
OBJECTIVE_TARGETS = {
    "recruit": ("recruits", "first_conversion_rate"),
    "convert": ("conversion_rate",),
    "second purchase": ("second_purchase_rate",),
    "ticket": ("avg_ticket",),
    "frequency": ("orders_per_customer",),
    "win back": ("conversion_rate",),
}
#: level target -> the outcome column it is measured on
TARGET_COLUMNS = {
    "conversion_rate": "converted",
    "visit_rate": "visited",
    "orders_per_customer": "orders",
    "avg_ticket": "ticket",
    "second_purchase_rate": "second_purchase",
    "recruits": "recruited",
    "first_conversion_rate": "first_conversion",
    "leads": "lead",
}
#: targets that grow with the number of days counted: a baseline of another length is scaled to
#: the period's days (rates and the ticket are compared as measured)
COUNT_TARGETS = ("orders_per_customer", "recruits", "leads")
_PLAN_METRIC = {column: name for name, column in METRIC_COLUMNS.items()}
_NEEDS_TRANSACTIONS = ("converted", "revenue", "orders", "ticket", "second_purchase")


def default_targets(objective: str) -> dict:
    """The targets of a plan that gives none: the objective's metric beats the holdout
    (a relative lift of at least 0 on it, so P(met) is P(better))."""
    return {"relative_lift": {"metric": _PLAN_METRIC[OBJECTIVE_METRICS[objective][0]], "min": 0.0}}


def lead_metrics(plan: Plan) -> list[str]:
    """The outcome columns the plan's Check leads with: the relative-lift target's metric, then
    the objective's."""
    first = (
        [METRIC_COLUMNS[plan.targets.relative_lift.metric]] if plan.targets.relative_lift else []
    )
    return list(dict.fromkeys([*first, *OBJECTIVE_METRICS[plan.objective]]))


def lift_metrics(plan: Plan) -> list[str]:
    """Every outcome column the Check compares across arms: the lead metrics, those its targets
    are measured on, then :data:`BASE_METRICS`."""
    targeted = [TARGET_COLUMNS[name] for name in plan.targets.levels() if name in TARGET_COLUMNS]
    return list(dict.fromkeys([*lead_metrics(plan), *targeted, *BASE_METRICS]))


def order_first(frame: pd.DataFrame, column: str, first) -> pd.DataFrame:
    """``frame`` with the rows whose ``column`` is in ``first`` on top, in that order (stable)."""
    rank = {name: i for i, name in enumerate(first)}
    key = frame[column].map(lambda v: rank.get(v, len(rank)))
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def outcomes(plan: Plan, data, ids: pd.Series, start, end, columns) -> pd.DataFrame:
    """The outcome ``columns`` of the customers ``ids`` over the days ``start`` to ``end``
    (inclusive), one row per customer (``customer_id`` first; 0 for a customer without one,
    ``ticket`` NaN for a customer without a purchase). ``data`` is a
    :class:`closedloop.pdca.CampaignData`."""
    start, end = summaries.day(start, "start"), summaries.day(end, "end")
    out = pd.DataFrame({"customer_id": ids.astype("str").to_numpy()})
    columns = list(columns)
    tx = data.transactions
    counted = (*_NEEDS_TRANSACTIONS, "recruited", "first_conversion")
    if tx is None and set(columns) & set(counted):
        wanted = [c for c in columns if c in counted]
        raise DataError(
            "plan data",
            f"{', '.join(wanted)} are counted from the transactions: give data.transactions",
        )
    if set(columns) & set(_NEEDS_TRANSACTIONS):
        per = summaries.per_customer(tx, end, start=start, source="transactions")
        per = per.reindex(out["customer_id"])
        orders = per["orders"].fillna(0).astype("int64").to_numpy()
        revenue = per["revenue"].fillna(0.0).to_numpy()
        values = {
            "orders": orders,
            "revenue": revenue,
            "converted": ((orders > 0) & (revenue > 0)).astype(int),
            "ticket": np.where(orders > 0, revenue / np.maximum(orders, 1), np.nan),
        }
        for name, value in values.items():
            if name in columns:
                out[name] = value
        if "second_purchase" in columns:
            first = per["first_purchase"].dropna()
            starts = pd.DataFrame({"customer_id": first.index, "start": first.to_numpy()})
            days = plan.metrics.second_purchase_days
            again = summaries.since(tx, starts, end, days=days, source="transactions")
            twice = again.index[again["orders"] >= 2]
            out["second_purchase"] = out["customer_id"].isin(twice).astype(int).to_numpy()
    if {"recruited", "first_conversion"} & set(columns):
        if data.customers is None or "join_date" not in data.customers.columns:
            raise DataError(
                "plan data",
                "recruits are counted from the customers' join_date: give data.customers with a"
                " join_date column",
                column="join_date",
            )
        joined = kpi.recruits(tx, data.customers, (start, end))
        for name, value in (
            ("recruited", joined.index),
            ("first_conversion", joined.index[joined["converted"]]),
        ):
            if name in columns:
                out[name] = out["customer_id"].isin(value).astype(int).to_numpy()
    for name, stage in (("lead", plan.metrics.lead_stage), ("visited", "visit")):
        if name in columns:
            out[name] = _reached(data.events, stage, out["customer_id"], start, end)
    return out


def _reached(events, stage: str, ids: pd.Series, start, end) -> np.ndarray:
    """1 for each of ``ids`` with an event at ``stage`` in the days ``start`` to ``end``."""
    if events is None:
        raise DataError("plan data", f"the funnel stage {stage!r} is counted from data.events")
    frame = lazy_frame(events, "events", ("stage", "timestamp", "entity_id"))
    stages = collect(frame.select(nw.col("stage").cast(nw.String)).unique().sort("stage"))
    if stage not in set(stages["stage"]):
        raise DataError(
            "events",
            f"no event at the stage {stage!r} (stages: {', '.join(stages['stage'].head(8))})",
            column="stage",
        )
    time = nw.col("timestamp")
    inside = (nw.col("stage") == stage) & (time >= summaries.day(start, "start"))
    who = nw.col("entity_id").cast(nw.String)
    if "customer_id" in frame.collect_schema().names():
        who = nw.coalesce(nw.col("customer_id").cast(nw.String), who)
    rows = frame.filter(inside & (time < summaries.end_of_day(end, "end")))
    reached = collect(rows.select(who.alias("who")).unique())["who"]
    return ids.astype("str").isin(set(reached)).astype(int).to_numpy()


def statistic(target: str, frame: pd.DataFrame) -> float:
    """The value of a level target over ``frame`` (the contacted customers' outcomes): a rate or
    a mean per customer, a count (recruits, leads), the ticket (revenue / orders of the buyers)
    or the recruits' first conversion (first-time buyers / recruits)."""
    column = TARGET_COLUMNS[target]
    if target in ("recruits", "leads"):
        return float(frame[column].sum())
    if target == "avg_ticket":
        bought = frame["orders"] > 0
        orders = frame.loc[bought, "orders"].sum()
        return float(frame.loc[bought, "revenue"].sum() / orders) if orders else float("nan")
    if target == "first_conversion_rate":
        n = frame["recruited"].sum()
        return float(frame["first_conversion"].sum() / n) if n else float("nan")
    return float(frame[column].mean()) if len(frame) else float("nan")


def _columns_of(target: str) -> list[str]:
    return {
        "avg_ticket": ["orders", "revenue"],
        "first_conversion_rate": ["recruited", "first_conversion"],
    }.get(target, [TARGET_COLUMNS[target]])


def resolve_targets(plan: Plan, data) -> tuple[Plan, pd.DataFrame]:
    """The plan with every ``{vs_baseline: ...}`` target replaced by the number it implies, and
    the table ``target, baseline, change, implied`` of those targets (empty when there are none).

    The baseline value is the target's own statistic (:func:`statistic`) over the contacted
    customers in the plan's ``baseline`` period (funnel stages: the share of touched reaching the
    stage among the events of that period); counts (:data:`COUNT_TARGETS`) are scaled to the
    period's length when the baseline's differs. A :class:`PlanError` when the plan has no
    baseline or the data does not reach back to its first day."""
    relative = {k: v for k, v in plan.targets.levels().items() if isinstance(v, VsBaseline)}
    if not relative:
        return plan, pd.DataFrame(columns=["target", "baseline", "change", "implied"])
    named = ", ".join(relative)
    if plan.baseline is None:
        raise PlanError(
            f"{plan.campaign}: target(s) {named} are set against the baseline, but the plan has"
            " no baseline period (add baseline: {start: ..., end: ...})"
        )
    start, end = pd.Timestamp(plan.baseline.start), pd.Timestamp(plan.baseline.end)
    scale = plan.period.days / plan.baseline.days
    ids = data.assignments.loc[data.assignments["arm"] != plan.control, "customer_id"]
    rows, resolved, funnel_goals = [], {}, dict(plan.targets.funnel or {})
    for name, goal in relative.items():
        if name.startswith("funnel_"):
            _covers(plan, data.events, "events", "timestamp", name)
            base = _funnel_share(data.events, name.removeprefix("funnel_"), start, end)
        else:
            columns = _columns_of(name)
            if set(columns) & {*_NEEDS_TRANSACTIONS, "first_conversion"}:
                _covers(plan, data.transactions, "transactions", "order_date", name)
            if set(columns) & {"lead", "visited"}:
                _covers(plan, data.events, "events", "timestamp", name)
            frame = outcomes(plan, data, ids, start, end, columns)
            base = statistic(name, frame) * (scale if name in COUNT_TARGETS else 1.0)
        if not np.isfinite(base):
            raise PlanError(
                f"{plan.campaign}: {name} cannot be measured over the baseline"
                f" {plan.baseline.start} to {plan.baseline.end} (no contacted customer it counts"
                " bought or joined then): give it as a number"
            )
        implied = float(goal.implied(base))
        if implied < 0 or ((name in RATE_TARGETS or name.startswith("funnel_")) and implied > 1):
            raise PlanError(
                f"{plan.campaign}: {name} {goal} on the baseline's {base:.4g} asks for {implied:.4g},"
                " which no campaign can reach (a rate lies in [0, 1], a count or amount is not"
                " negative): give a smaller change or a number"
            )
        rows.append((name, base, str(goal), implied))
        if name.startswith("funnel_"):
            funnel_goals[name.removeprefix("funnel_")] = implied
        else:
            resolved[name] = implied
    if plan.targets.funnel:
        resolved["funnel"] = funnel_goals
    targets = plan.targets.model_copy(update=resolved)
    table = pd.DataFrame(rows, columns=["target", "baseline", "change", "implied"])
    return plan.model_copy(update={"targets": targets}), table


def _covers(plan: Plan, frame, table: str, column: str, target: str) -> None:
    """The table reaches back to the baseline's first day, or a PlanError naming both dates."""
    first = pd.NaT if frame is None else bounds(frame, column)[0]
    if pd.isna(first):
        raise PlanError(
            f"{plan.campaign}: {target} is set against the baseline, which is measured from"
            f" data.{table}: the plan has none"
        )
    first = pd.Timestamp(first)
    if first > pd.Timestamp(plan.baseline.start) + pd.Timedelta(days=1):
        source = sources.name(getattr(plan.data, table), table)  # the same on every engine
        raise PlanError(
            f"{plan.campaign}: {target} is set against the baseline {plan.baseline.start} to"
            f" {plan.baseline.end}, but {source} starts on {first:%Y-%m-%d}: the data does not"
            " cover the baseline (give the data from its first day, or a number)"
        )


def _funnel_share(events, stage: str, start, end) -> float:
    """The share of the touched reaching ``stage`` among the events of the days start to end."""
    time = nw.col("timestamp")
    inside = lazy_frame(events, "events", ("timestamp",)).filter(
        (time >= summaries.day(start, "start")) & (time < summaries.end_of_day(end, "end"))
    )
    stages = list(dict.fromkeys(["touch", stage]))
    table = funnel_mod.funnel(inside.to_native(), stages)
    row = table[table["stage"] == stage]
    return float(row["cum_rate"].iloc[0]) if len(row) else float("nan")


def ticket_lift(frame: pd.DataFrame, control: str, seed: int = 0) -> tuple[lift.Lift, pd.DataFrame]:
    """The lift of the average ticket (revenue / orders) of each arm's buyers over the holdout's,
    and P(best) of each arm on it. Each buyer's linearised ticket, R + (revenue - R x orders) /
    mean orders with R the arm's revenue / orders, averages exactly to R and has the delta
    method's variance, so the normal model of :func:`closedloop.lift.bayesian_lift` reads the
    ratio's posterior from it. ``customers`` counts the buyers."""
    buyers = frame.loc[frame["orders"] > 0, ["arm", "orders", "revenue"]].copy()
    sums = buyers.groupby("arm")[["orders", "revenue"]].transform("sum")
    ratio = sums["revenue"] / sums["orders"]
    mean_orders = buyers.groupby("arm")["orders"].transform("mean")
    buyers["ticket"] = ratio + (buyers["revenue"] - ratio * buyers["orders"]) / mean_orders
    kinds = {"ticket": "normal"}
    result = lift.bayesian_lift(
        buyers[["arm", "ticket"]], control=control, metrics="ticket", kinds=kinds, seed=seed
    )
    best = lift.prob_best(buyers[["arm", "ticket"]], metrics="ticket", kinds=kinds, seed=seed)
    return result, best


def combine(first: lift.Lift, second: lift.Lift) -> lift.Lift:
    """One :class:`~closedloop.lift.Lift` of two over the same arms (the table and the draws)."""
    a, b = first.draws, second.draws
    draws = lift.PosteriorDraws(
        a.keys,
        a.level,
        a.interval,
        {**a.abs_lift, **b.abs_lift},
        {**a.rel_lift, **b.rel_lift},
        {**a.control, **b.control},
    )
    return lift.Lift(pd.concat([first.table, second.table], ignore_index=True), draws)
