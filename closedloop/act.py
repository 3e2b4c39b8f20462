"""Act (处理): the decisions the Check supports, and the next cycle's plan.

The rules, each a small function so that each can be read and tested alone:

- **keep or drop an arm** (:func:`arm_decisions`): a treated arm is kept when it beats the holdout
  on the plan's lift metric with probability at least :data:`KEEP_P` and has at least
  :data:`DROP_BELOW_P_BEST` probability of being the best arm; otherwise it is dropped, and the
  reason names the number that failed.
- **stop or redesign** (:func:`decide`): when no treated arm is kept, nothing is carried into the
  next cycle by default. The next plan is still written, as a draft with ``status: redesign``,
  which ``closedloop run`` refuses until someone edits it and sets ``status: ready``.
- **not before the period ends** (:func:`provisional`): an interim Check's decisions are what
  the data say so far; unless the plan's stopping rule ended the test (ship or stop), its next
  plan is ``status: provisional``, which ``closedloop run`` refuses: the Check on the period's
  last day writes the plan to run.
- **prefer what lasts** (:func:`persistence_decisions`): once a follow-up window after the period
  is reached (``follow_up_days``), a kept arm whose effect did not last (P(beats the holdout) in
  the longest reached window below :data:`closedloop.follow_up.PERSIST_P`) is dropped when
  another kept arm's effect did last.
- **move the audience** (:func:`audience_decision`): the next audience is the segments in which a
  kept arm beats the holdout with probability at least :data:`AUDIENCE_P`.
- **carry or raise a target** (:func:`target_decisions`): a missed target is carried forward
  unchanged — moving the goal posts after a miss is exactly what a plan set in advance forbids; a
  met target is raised to the value the best kept arm reaches with probability 1 -
  :data:`TARGET_QUANTILE` (its posterior quantile), and never lowered.

Every decision is a :class:`closedloop.plan.Change` with its evidence in words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from closedloop.follow_up import FOLLOW_UP_METRICS, PERSIST_P, lasting
from closedloop.objectives import lead_metrics
from closedloop.plan import Change, Plan, VsBaseline
from closedloop.priors import PRIOR

__all__ = [
    "AUDIENCE_P",
    "DROP_BELOW_P_BEST",
    "KEEP_P",
    "TARGET_QUANTILE",
    "Decisions",
    "arm_decisions",
    "audience_decision",
    "decide",
    "next_period",
    "next_plan",
    "persistence_decisions",
    "target_decisions",
]

#: an arm is kept only when it beats the holdout with at least this probability (so a campaign
#: with no effect at all is carried forward by chance only 1 time in 20) ...
KEEP_P = 0.95
#: ... and has at least this probability of being the best arm
DROP_BELOW_P_BEST = 0.05
#: a segment joins the next audience when a kept arm beats the holdout in it with this probability
AUDIENCE_P = 0.80
#: a met target is raised to this posterior quantile of the best kept arm (met 3 times in 4)
TARGET_QUANTILE = 0.25


@dataclass(frozen=True)
class Decisions:
    """What the Check supports: the arms kept, the next audience and targets, each change with
    its reason, and whether the campaign should stop (no arm worth carrying)."""

    kept: list[str]
    audience: list[str] | None
    targets: dict
    changes: list[Change]

    @property
    def stop(self) -> bool:
        return not self.kept


def lift_column(plan: Plan) -> str:
    """The outcome an arm is judged on: the relative-lift target's metric, else the objective's
    (:func:`closedloop.objectives.lead_metrics`: orders for frequency, the ticket for ticket ...)."""
    return lead_metrics(plan)[0]


def arm_decisions(plan: Plan, lift: pd.DataFrame, p_best: pd.DataFrame) -> tuple[list, list]:
    """The treated arms kept, and one change per dropped arm with the number that failed."""
    column = lift_column(plan)
    rows = lift[lift["metric"] == column].set_index("arm")
    best = p_best[p_best["metric"] == column].set_index("arm")["p_best"]
    kept, changes = [], []
    for arm in plan.treated_arms:
        better = float(rows["p_better"].get(arm, np.nan))
        chance = float(best.get(arm, 0.0))
        if np.isfinite(better) and better >= KEEP_P and chance >= DROP_BELOW_P_BEST:
            kept.append(arm)
            continue
        if not np.isfinite(better):
            why = f"its lift over the holdout on {column} cannot be estimated from this data"
        elif better < KEEP_P:
            why = f"P({arm} beats the holdout on {column}) = {better:.2f}, below {KEEP_P:.2f}"
        else:
            why = f"P({arm} is the best arm on {column}) = {chance:.3f}, below {DROP_BELOW_P_BEST}"
        changes.append(Change(field=f"arms.{arm}", to="dropped", reason=why))
    return kept, changes


def persistence_decisions(plan: Plan, follow_up, kept: list[str]) -> tuple[list, list]:
    """The kept arms whose effect lasted after the period, when some did and some did not (else
    ``kept`` as it is), and one change per arm dropped for an effect that faded. Measured on the
    plan's lift metric when it is measured after the period, else on spend."""
    column = lift_column(plan)
    metric = column if column in FOLLOW_UP_METRICS else "revenue"
    chance = lasting(follow_up, metric)
    if len(kept) < 2 or not chance:
        return kept, []
    lasted = [a for a in kept if chance.get(a, 0.0) >= PERSIST_P]
    if not lasted or len(lasted) == len(kept):
        return kept, []
    days = max(follow_up.reached)
    others = ", ".join(f"{a} {chance[a]:.2f}" for a in lasted)
    changes = [
        Change(
            field=f"arms.{arm}",
            to="dropped",
            reason=f"its effect did not last: P({arm} beats the holdout on {metric} in the"
            f" {days} days after the period) = {chance.get(arm, 0.0):.2f}, below"
            f" {PERSIST_P:.2f}, while it lasted for {others}",
        )
        for arm in kept
        if arm not in lasted
    ]
    return lasted, changes


def audience_decision(plan: Plan, segments: pd.DataFrame, kept: list[str]) -> tuple:
    """The next audience (segments where a kept arm beats the holdout with P >= AUDIENCE_P) and the
    change that moves it, or the current audience and no change."""
    current = plan.audience.segments
    if segments is None or segments.empty or not kept:
        return current, []
    rows = segments[segments["arm"].isin(kept)]
    best = rows.groupby("segment")["p_better"].max()
    good = sorted(best[best >= AUDIENCE_P].index.astype(str))
    if not good or good == sorted(current or []):
        return current, []
    shown = ", ".join(f"{s} {best[s]:.2f}" for s in good)
    reason = f"segments where a kept arm beats the holdout with P >= {AUDIENCE_P:.2f}: {shown}"
    return good, [Change(field="audience.segments", to=", ".join(good), reason=reason)]


def target_decisions(
    plan: Plan, scorecard: pd.DataFrame, lift: pd.DataFrame, draws, kept: list[str]
) -> tuple[dict, list]:
    """Targets for the next cycle: a missed one carried unchanged, a met one raised to what the
    best kept arm reaches 3 times in 4 (a relative lift: the next cycle's primary arm, the
    named one when it is kept, else the first kept arm), never lowered. The Beta quantile is
    ``scipy.special.betaincinv``, what ``scipy.stats.beta.ppf`` computes."""
    from scipy import special

    targets = plan.targets.model_dump(exclude_none=True)
    status = dict(zip(scorecard["target"], scorecard["status"], strict=True))
    changes = []
    for name in targets:
        if name == "funnel":
            continue
        if status.get(name) in ("missed", "undefined"):
            what = "missed" if status[name] == "missed" else "could not be measured"
            changes.append(
                Change(
                    field=f"targets.{name}",
                    to="carried",
                    reason=f"{what} this cycle: carried forward unchanged (re-plan it by hand if"
                    " the target itself was wrong)",
                )
            )
    conversion = lift[(lift["metric"] == "converted") & lift["arm"].isin(kept)].set_index("arm")
    fixed = not isinstance(
        plan.targets.conversion_rate, VsBaseline
    )  # a baseline target moves itself
    if fixed and kept and status.get("conversion_rate") == "met" and len(conversion) == len(kept):
        n = conversion.loc[kept, "customers"].to_numpy(float)
        x = np.round(conversion.loc[kept, "mean"].to_numpy(float) * n)
        rates = special.betaincinv(PRIOR.alpha + x, PRIOR.beta + n - x, TARGET_QUANTILE)
        arm, value = kept[int(np.argmax(rates))], float(np.round(np.max(rates), 4))
        if value > targets["conversion_rate"]:
            changes.append(
                Change(
                    field="targets.conversion_rate",
                    to=f"{value:g}",
                    reason=f"met: raised to the {TARGET_QUANTILE:.0%} posterior quantile of"
                    f" {arm}'s conversion (reached 3 times in 4)",
                )
            )
            targets["conversion_rate"] = value
    named = targets.get("relative_lift", {}).get("arm")
    if named is not None and named not in kept:
        del targets["relative_lift"]["arm"]
        if kept:
            changes.append(
                Change(
                    field="targets.relative_lift.arm",
                    to=kept[0],
                    reason=f"{named} is not carried into the next cycle: the target is judged"
                    f" on its first treated arm, {kept[0]}",
                )
            )
    if kept and status.get("relative_lift") == "met" and draws is not None:
        # raised on the arm the next cycle judges it on (its primary arm), as the scorecard did
        column = lift_column(plan)
        arm = named if named in kept else kept[0]
        value = round(float(np.quantile(draws.rel_lift[(arm, column)], TARGET_QUANTILE)), 3)
        if value > targets["relative_lift"]["min"]:
            targets["relative_lift"] = {**targets["relative_lift"], "min": value}
            changes.append(
                Change(
                    field="targets.relative_lift.min",
                    to=f"{value:g}",
                    reason=f"met: raised to the {TARGET_QUANTILE:.0%} posterior quantile of"
                    f" {arm}'s relative lift on {column} (reached 3 times in 4)",
                )
            )
    return targets, changes


def decide(check) -> Decisions:
    """Every decision of the Act step for a :class:`closedloop.pdca.Check`."""
    plan = check.plan
    kept, changes = arm_decisions(plan, check.lift, check.p_best)
    kept, faded = persistence_decisions(plan, getattr(check, "follow_up", None), kept)
    changes += faded
    if not kept:
        changes.append(
            Change(
                field="status",
                to="redesign",
                reason="stop or redesign: no treated arm beats the holdout with P >="
                f" {KEEP_P:.2f}; no arm is carried into the next cycle",
            )
        )
    audience, moved = audience_decision(plan, check.segments, kept)
    targets, retargeted = target_decisions(
        plan, check.scorecard, check.lift, check.lift_draws, kept
    )
    return Decisions(kept, audience, targets, [*changes, *moved, *retargeted])


def provisional(check) -> Change | None:
    """The status change of an interim Check's next plan (None for a final Check, or when the
    plan's stopping rule shipped or stopped the test early: then the Act is due now). Acting on
    half a period's data is the peeking the stopping rule exists to control."""
    asof, end = pd.Timestamp(check.asof), pd.Timestamp(check.plan.period.end)
    decision = getattr(check, "early_stop", None)
    if asof >= end or (decision is not None and decision.action in ("ship", "stop")):
        return None
    return Change(
        field="status",
        to="provisional",
        reason=f"an interim Check (data as of {asof:%Y-%m-%d}): what the Act step would decide"
        f" if the period ended that day; the Check on {end:%Y-%m-%d} writes the plan to run",
    )


def next_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period right after ``start..end``: as many whole calendar months when it is whole
    months (March → April), else as many days."""
    after = end + dt.timedelta(days=1)
    if start.day == 1 and after.day == 1:
        months = (after.year - start.year) * 12 + after.month - start.month
        year, month = divmod(after.month - 1 + months, 12)
        return after, dt.date(after.year + year, month + 1, 1) - dt.timedelta(days=1)
    return after, after + (end - start)


def next_plan(check) -> Plan:
    """The next cycle's plan: the next period (:func:`next_period`), this period
    as its baseline, the kept arms sharing the treated allocation, the moved audience and the
    carried or raised targets, every change with its reason. When the Check supports no arm the
    plan keeps this cycle's arms for re-planning and is marked ``status: redesign``; an interim
    Check's plan is marked ``status: provisional`` (:func:`provisional`)."""
    plan = check.plan
    decided = decide(check)
    early = provisional(check)
    control = plan.arms[plan.control]
    if decided.stop:
        arms, status = dict(plan.arms), "redesign"
    else:
        share = round((1 - control) / len(decided.kept), 6)
        arms = {plan.control: control, **dict.fromkeys(decided.kept, share)}
        arms[decided.kept[-1]] = round(1 - control - share * (len(decided.kept) - 1), 6)
        status = "ready"
    if early is not None:
        status = "provisional"
    start, end = next_period(plan.period.start, plan.period.end)
    raw = plan.model_dump(mode="python", exclude_none=True)
    raw.update(
        cycle=plan.cycle + 1,
        status=status,
        period={"start": start, "end": end},
        baseline={"start": plan.period.start, "end": plan.period.end},
        arms=arms,
        cost={a: c for a, c in plan.cost.items() if a in arms},
        targets=decided.targets,
        audience={"segments": decided.audience} if decided.audience else {},
        changes=[
            *[c.model_dump() for c in decided.changes],
            *([early.model_dump()] if early is not None else []),
            {"field": "period", "to": f"{start} to {end}", "reason": "the next cycle"},
        ],
    )
    return Plan.parse(raw, source=f"next plan of {plan.campaign}")
