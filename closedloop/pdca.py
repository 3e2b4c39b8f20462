"""Check and Act (检查, 处理): the plan's targets against the data, and the next cycle's plan.

``load(plan)`` reads the campaign's tables through the data contract; ``check(plan, data)``
scores every target — actual, target, met or missed, and the posterior probability that it was met
(from :mod:`closedloop.lift` and :mod:`closedloop.funnel`) — with the sample-ratio check and a
data-quality summary; ``act(check)`` writes the next plan, each change with its reason. That last
step is what closes the loop: the Check of one cycle writes the Plan of the next.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop import funnel as funnel_mod
from closedloop import io, lift, lift_segments, scorecard, summaries
from closedloop.errors import DataError
from closedloop.plan import Change, Plan, PlanError

__all__ = ["METRIC_COLUMNS", "CampaignData", "Check", "Plan", "act", "check", "load"]

#: plan metric name -> outcome column (one row per assigned customer)
METRIC_COLUMNS = {"conversion": "converted", "revenue": "revenue", "visit": "visited"}
#: Act: an arm whose probability of being the best is below this is dropped
DROP_BELOW_P_BEST = 0.05
#: Act: a segment joins the next audience when P(uplift > 0) of the kept arms reaches this
KEEP_SEGMENT_P = 0.80
#: Act: targets for the next cycle are this quantile of the posterior (a target met 3 times in 4)
TARGET_QUANTILE = 0.25
FUNNEL_FIRST_STAGE = "touch"


@dataclass(frozen=True)
class CampaignData:
    """The campaign's tables, validated, and what the readers reported about them."""

    assignments: pd.DataFrame
    outcomes: pd.DataFrame
    transactions: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Check:
    """The Check of one cycle: the scorecard and the evidence behind it."""

    plan: Plan
    asof: pd.Timestamp
    scorecard: pd.DataFrame
    lift: pd.DataFrame
    lift_draws: lift.PosteriorDraws
    p_best: pd.DataFrame
    roi: pd.DataFrame
    srm: dict
    segments: pd.DataFrame
    funnel: pd.DataFrame | None
    funnel_targets: pd.DataFrame | None
    quality: pd.DataFrame


def as_of(plan: Plan, asof=None) -> pd.Timestamp:
    """The day a Check is made: ``asof`` (the end of that day), by default the period's last day."""
    return summaries.day(asof if asof else plan.period.end)


def load(plan: Plan, asof=None) -> CampaignData:
    """Read the plan's tables through the data contract (column mappings from ``plan.columns``),
    leaving out rows dated after the ``asof`` day (default: the period's last day)."""
    asof = as_of(plan, asof)
    paths, cols = plan.data, plan.columns
    tx = (
        io.read_transactions(paths.transactions, cols.get("transactions"), asof=asof)
        if paths.transactions
        else None
    )
    assignments = io.read_assignments(paths.assignments, cols.get("assignments"))
    _check_arms(plan, assignments)
    events = io.read_events(paths.events, cols.get("events"), asof=asof) if paths.events else None
    customers = (
        io.read_customers(paths.customers, cols.get("customers")) if paths.customers else None
    )
    items = pd.read_csv(paths.items, dtype={"order_id": str}) if paths.items else None
    outcomes_read = None
    if paths.outcomes:
        outcomes_read = io.read_outcomes(paths.outcomes, cols.get("outcomes"))
        outcomes = outcomes_read.drop(columns=["arm", "segment"], errors="ignore")
        stray = ~outcomes["customer_id"].isin(assignments["customer_id"])
        if stray.any():
            warnings.warn(
                f"{Path(paths.outcomes).name}: {int(stray.sum()):,} outcome row(s) for customers"
                " without an assignment are not used",
                io.DataWarning,
                stacklevel=2,
            )
    else:
        outcomes = _outcomes_from_transactions(tx, plan)
    keep = [c for c in ("customer_id", "arm", "segment") if c in assignments.columns]
    outcomes = assignments[keep].merge(outcomes, on="customer_id", how="left")
    for column in outcomes.columns.difference(keep):
        outcomes[column] = outcomes[column].fillna(0)
    if plan.audience.segments and "segment" in outcomes.columns:
        unknown = sorted(set(plan.audience.segments) - set(outcomes["segment"]))
        if unknown:
            raise PlanError(f"audience segments {unknown} do not occur in the assignments")
    tables = {
        "transactions": tx,
        "assignments": assignments,
        "outcomes": outcomes_read,
        "events": events,
        "customers": customers,
    }
    quality = pd.DataFrame(
        [_quality(name, frame) for name, frame in tables.items() if frame is not None]
    )
    return CampaignData(assignments, outcomes, tx, events, customers, items, quality)


def check(plan: Plan, data: CampaignData, asof=None, seed: int = 0) -> Check:
    """Score every target of the plan: actual, target, met / missed, P(met)."""
    outcomes, covariates = data.outcomes, {}
    if plan.baseline and data.transactions is not None:  # CUPED on the baseline period
        outcomes, covariates = lift.pre_period(
            outcomes, data.transactions, plan.baseline.start, plan.baseline.end
        )
    metrics = [c for c in METRIC_COLUMNS.values() if c in outcomes.columns]
    covariates = {m: c for m, c in covariates.items() if m in metrics}
    lift_result = lift.bayesian_lift(
        outcomes, control=plan.control, metrics=metrics, seed=seed, covariates=covariates
    )
    lift_table, draws = lift_result.table, lift_result.draws
    p_best = lift.prob_best(outcomes, metrics="converted", seed=seed)
    revenue = lift_result.filter(lift_table["metric"] == "revenue")
    roi_table = (
        lift.roi(revenue, cost=plan.cost, margin=plan.margin, target=plan.targets.roi)
        if plan.cost and len(revenue.table)
        else pd.DataFrame()
    )
    srm = lift.srm_check(outcomes, plan.arms)
    segments = pd.DataFrame()
    if "segment" in outcomes.columns:
        segments = lift_segments.lift_by_segment(
            outcomes,
            by="segment",
            control=plan.control,
            metrics="converted",
            pooling=True,
            seed=seed,
        ).table
    funnel_table = funnel_targets = None
    if data.events is not None and plan.targets.funnel:
        stages = [FUNNEL_FIRST_STAGE, *plan.targets.funnel]
        funnel_table = funnel_mod.funnel(data.events, stages, by="channel")
        overall = funnel_mod.funnel(data.events, stages)
        funnel_targets = funnel_mod.funnel_vs_targets(overall, plan.targets.funnel)
    return Check(
        plan=plan,
        asof=as_of(plan, asof),
        scorecard=scorecard.score(plan, outcomes, lift_result, funnel_targets),
        lift=lift_table,
        lift_draws=draws,
        p_best=p_best,
        roi=roi_table,
        srm={
            "mismatch": srm.mismatch,
            "p_value": srm.p_value,
            "message": srm.message,
            "warning": srm.warning,
        },
        segments=segments,
        funnel=funnel_table,
        funnel_targets=funnel_targets,
        quality=data.quality,
    )


def act(result: Check) -> Plan:
    """The next cycle's plan, each change with its one-line reason (the loop closes here)."""
    plan, changes = result.plan, []
    best = result.p_best.set_index("arm")["p_best"].drop(plan.control, errors="ignore")
    kept = [a for a in plan.treated_arms if best.get(a, 0) >= DROP_BELOW_P_BEST] or [best.idxmax()]
    for arm in plan.treated_arms:
        if arm not in kept:
            changes.append(
                Change(
                    field=f"arms.{arm}",
                    to="dropped",
                    reason=(
                        f"P({arm} is the best arm on conversion) = {best[arm]:.3f} < {DROP_BELOW_P_BEST}"
                    ),
                )
            )
    share = (1 - plan.arms[plan.control]) / len(kept)
    arms = {plan.control: plan.arms[plan.control], **{a: round(share, 6) for a in kept}}
    audience = plan.audience.segments
    if not result.segments.empty:
        seg = result.segments[result.segments["arm"].isin(kept)]
        good = sorted(seg.loc[seg["p_better"] >= KEEP_SEGMENT_P, "segment"].unique())
        if good and good != sorted(audience or []):
            changes.append(
                Change(
                    field="audience.segments",
                    to=", ".join(good),
                    reason=(
                        f"segments where a kept arm beats the holdout with P >= {KEEP_SEGMENT_P}"
                    ),
                )
            )
            audience = good
    targets = plan.targets.model_dump(exclude_none=True)
    conv = result.lift[(result.lift["metric"] == "converted") & result.lift["arm"].isin(kept)]
    if "conversion_rate" in targets and len(conv):
        new = float(np.round(conv["mean"].max() * 0.95, 4))
        changes.append(
            Change(
                field="targets.conversion_rate",
                to=f"{new:g}",
                reason=("reset to 95% of the best kept arm's observed conversion"),
            )
        )
        targets["conversion_rate"] = new
    draws = result.lift_draws
    if "relative_lift" in targets and len(conv):
        arm = conv.loc[conv["rel_lift"].idxmax(), "arm"]
        low = float(np.quantile(draws.rel_lift[(arm, "converted")], TARGET_QUANTILE))
        new = round(max(low, 0.0), 3)
        targets["relative_lift"]["min"] = new
        changes.append(
            Change(
                field="targets.relative_lift.min",
                to=f"{new:g}",
                reason=(f"the {TARGET_QUANTILE:.0%} posterior quantile of {arm}'s relative lift"),
            )
        )
    days = plan.period.days
    start = plan.period.end + dt.timedelta(days=1)
    raw = plan.model_dump(mode="python", exclude_none=True)
    raw.update(
        cycle=plan.cycle + 1,
        period={"start": start, "end": start + dt.timedelta(days=days - 1)},
        baseline={"start": plan.period.start, "end": plan.period.end},
        arms=arms,
        cost={a: c for a, c in plan.cost.items() if a in arms},
        targets=targets,
        audience={"segments": audience} if audience else {},
        changes=[c.model_dump() for c in changes]
        + [
            {
                "field": "period",
                "to": f"{start} + {days} days",
                "reason": "the next cycle follows this one",
            }
        ],
    )
    return Plan.parse(raw, source=f"next plan of {plan.campaign}")


def summary(result: Check, next_plan: Plan, run_id: str) -> dict:
    """What a run records: the scorecard, the lift table and the decisions (summary.json)."""
    plan = result.plan
    lift_rows = result.lift.drop(columns=[], errors="ignore").to_dict(orient="records")
    return {
        "campaign": plan.campaign,
        "cycle": plan.cycle,
        "run_id": run_id,
        "asof": str(result.asof.date()),
        "period": {"start": str(plan.period.start), "end": str(plan.period.end)},
        "scorecard": result.scorecard.to_dict(orient="records"),
        "lift": lift_rows,
        "srm": result.srm,
        "decisions": [c.model_dump() for c in next_plan.changes],
    }


def _check_arms(plan: Plan, assignments: pd.DataFrame) -> None:
    """The arms in the data are the plan's arms: a renamed arm must not pass as a missing one."""
    found = set(assignments["arm"])
    extra, absent = sorted(found - set(plan.arms)), sorted(set(plan.arms) - found)
    if extra or absent:
        source = assignments.attrs["quality"]["source"]
        rows = assignments[assignments["arm"].isin(extra)] if extra else assignments.head(0)
        parts = [f"arm(s) {extra} are not in the plan" if extra else ""]
        parts.append(f"plan arm(s) {absent} have nobody assigned" if absent else "")
        raise DataError(
            source,
            "; ".join(p for p in parts if p) + f" (plan arms: {sorted(plan.arms)})",
            column="arm",
            rows=rows,
            n_bad=len(rows),
        )


def _outcomes_from_transactions(tx: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Each customer's campaign outcome over the plan's period (inclusive days): ``orders``
    (purchases), ``revenue`` (net of refunds) and ``converted``: at least one purchase and a
    positive net spend, so a refund never makes a conversion."""
    per = summaries.per_customer(
        tx, plan.period.end, start=plan.period.start, source="transactions"
    )
    per = per[["orders", "revenue"]].reset_index()
    per["converted"] = ((per["orders"] > 0) & (per["revenue"] > 0)).astype(int)
    return per


def _quality(name: str, frame: pd.DataFrame) -> dict:
    q = frame.attrs.get("quality", {})
    return {
        "table": name,
        "source": Path(q.get("source", "")).name,
        "rows_read": q.get("rows_read", len(frame)),
        "rows_kept": q.get("rows_kept", len(frame)),
        "rows_dropped": sum(q.get("dropped", {}).values()),
        "refunds": q.get("refunds", 0),
        "first_date": q.get("date_min"),
        "last_date": q.get("date_max"),
    }
