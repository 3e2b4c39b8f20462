"""The PDCA scorecard (目标达成): each target of the plan, its actual, met or missed, and the
posterior probability that it was met.

Probabilities mean what they say: P(met) 0.7 is a 70% chance, given the data, that the true
value reached the target (the sentences for the report: :data:`closedloop.glossary.PROBABILITIES`).
Rate targets use the rate's Beta posterior; incremental revenue and ROI the posterior draws of the
lift (:mod:`closedloop.lift`); funnel targets :func:`closedloop.funnel.funnel_vs_targets`.

**The relative-lift target is judged on a primary arm named before the data**: the plan's
``targets.relative_lift.arm``, else its first treated arm. Judging "the best arm" instead picks the
arm after seeing which looked best, and no posterior makes that choice honest whatever the arms'
true effects: the picked arm's own P(met) is optimistic (the winner's curse), and the posterior
of the maximum over the arms is calibrated only when the arms' effects are spread as its prior
says. In ``benchmarks/bench_calibration.py``, with two arms of the same true effect, the
maximum's P(met) was 23 points above the observed frequency, and partial pooling of the arms (a
half-Cauchy prior on their spread, Gelman 2006) cut that error only by making arms with
independent effects miscalibrated the other way. That is the selection problem of Andrews,
Kitagawa and McCloskey, "Inference on Winners" (QJE 2024); a pre-declared primary comparison is
the standard answer (as a trial's primary endpoint: ICH E9, "Statistical Principles for Clinical
Trials", 1998, §2.2.2). The primary arm's P(met) is its own posterior probability, within about
5 points of the observed frequency in the harness's scenarios (``benchmarks/results.md``); where
the holdout and the arm have fewer than :data:`closedloop.lift.MIN_RATIO_EVENTS` conversions
or buyers together the relative lift is not estimable and the target has no P(met), only a basis
that says so (with 1-3 holdout conversions of 300 its P(met) was 13-22 points off).
The other arms' lifts are in the lift table, and the Act step compares them
(:mod:`closedloop.act`).
"""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pandas as pd

from closedloop.errors import DataError
from closedloop.lift import (
    MIN_RATIO_EVENTS,
    NOT_CREDIBLY_POSITIVE,
    UNDEFINED_NOTE,
    Lift,
    event_unit,
)
from closedloop.plan import METRIC_COLUMNS
from closedloop.priors import PRIOR

__all__ = [
    "INTERIM_COLUMNS",
    "PACE_AHEAD",
    "PACE_BEHIND",
    "SCORECARD_COLUMNS",
    "primary_arm",
    "score",
    "share_by_now",
]

SCORECARD_COLUMNS = ["target", "actual", "target_value", "status", "p_met", "basis"]
#: an interim Check adds these: what the target implies by now, the actual projected to the
#: period's end with its 95% interval, and the pace
INTERIM_COLUMNS = ["elapsed", "expected_by_now", "projected", "projected_low", "projected_high"]
#: pace: "ahead" when P(ending at or above the target) is at least this, "behind" below
#: :data:`PACE_BEHIND`, "on track" between
PACE_AHEAD, PACE_BEHIND = 0.75, 0.25
#: targets that accumulate over the period (pro-rated in an interim Check); a relative lift
#: and a rate of a rate do not
ACCUMULATING = (
    "conversion_rate",
    "visit_rate",
    "incremental_revenue",
    "roi",
    "funnel_",
    "orders_per_customer",
    "second_purchase_rate",
    "recruits",
    "leads",
)


def primary_arm(plan) -> str:
    """The arm a relative-lift target is judged on: ``targets.relative_lift.arm``, else the
    plan's first treated arm."""
    named = plan.targets.relative_lift.arm if plan.targets.relative_lift else None
    return named or plan.treated_arms[0]


#: targets an interim Check does not pace: visits and funnel stages follow the campaign's own
#: response curve (front-loaded after a push), which neither the baseline's purchases nor the
#: days gone by give. Paced by the purchases' curve, the demo's visits on day 7 were projected to
#: 71.6% with P(met) 1.0 and ended at 30.5%
UNPACED = ("visit_rate", "funnel_")
#: an interim Check's status for those targets (the actual so far is shown, no pace)
NOT_PACED = "not paced"
#: why an interim Check has no visit rate: its outcomes are counted from the transactions
NO_VISITS_YET = (
    "not measured before the period ends: an interim Check counts its outcomes from the"
    " transactions, and visits are in the outcomes file"
)

#: which baseline curve (:func:`closedloop.progress.baseline_shares`) shapes a target's pace:
#: money targets follow the revenue curve, the other accumulating targets the purchases'
MONEY_CURVE = ("incremental_revenue", "roi")


def share_by_now(name: str, elapsed: float, shares=None) -> float:
    """The share of target ``name`` expected by now in an interim Check: the baseline curve's
    share (``shares``: ``{"purchases": ..., "revenue": ...}``) when there is one, else ``elapsed``
    (pro rata by days); 1 for a target that does not accumulate (a relative lift)."""
    if not name.startswith(ACCUMULATING):
        return 1.0
    curve = "revenue" if name in MONEY_CURVE else "purchases"
    return (shares or {}).get(curve, elapsed)


#: the lift table's note on an undefined relative lift, and what the holdout's mean is
_UNDEFINED = re.escape(UNDEFINED_NOTE) + r" \w+ is ([^;]+);"


def score(
    plan,
    outcomes: pd.DataFrame,
    lift: Lift,
    funnel_targets=None,
    elapsed: float = 1.0,
    shares=None,
) -> pd.DataFrame:
    """The scorecard of ``plan``'s targets: one row per target, :data:`SCORECARD_COLUMNS`.

    ``outcomes`` has one row per assigned customer (``arm`` and the outcome columns), ``lift``
    is the :class:`~closedloop.lift.Lift` of the campaign (without segments), ``funnel_targets``
    the result of :func:`~closedloop.funnel.funnel_vs_targets` or None. ``status`` compares the
    observed actual with the target ("undefined" when the actual cannot be computed, e.g. a
    relative lift over a holdout with no conversion).

    **Interim Check** (``elapsed`` < 1, the share of the period's days gone by): the data so far
    cannot meet or miss a target yet. Each accumulating target (rates of contacted customers,
    incremental revenue, ROI, funnel stages) is pro-rated: ``expected_by_now`` = target ×
    share, the share being the one the days gone by carry in the baseline period's week when
    ``shares`` gives one (:func:`share_by_now`), else ``elapsed``; the actual so
    far is projected to the end at the same pace, ``projected`` = actual / share with the 95% interval of that projection from the posterior; ``p_met`` becomes the
    probability of ending at or above the target given the data so far, and ``status`` the pace:
    ahead (p_met >= :data:`PACE_AHEAD`), on track, or behind (< :data:`PACE_BEHIND`). A relative
    lift is not pro-rated (it is a ratio of two arms that accumulate alike). Visits and funnel
    stages (:data:`UNPACED`) are not paced: their status is :data:`NOT_PACED`, with the actual
    so far and no expected value, projection or P(met)."""
    if not 0 < elapsed <= 1:
        raise DataError("scorecard", f"elapsed must be in (0, 1], not {elapsed}")
    interim = elapsed < 1
    t = plan.targets
    lift_table, draws = lift.table, lift.draws
    treated = outcomes[outcomes["arm"] != plan.control]
    rows, projections = [], {}

    def by_now(name):
        return share_by_now(name, elapsed, shares) if interim else 1.0

    def add(name, actual, target, p, basis, spread=None):
        actual = float(actual)
        scale = by_now(name)
        if interim and name.startswith(UNPACED):
            status = "undefined" if np.isnan(actual) else NOT_PACED
            projections[name] = (elapsed, np.nan, np.nan, np.nan, np.nan)
            basis += "; not paced: nothing says how it accumulates over the period"
            rows.append((name, actual, float(target), status, np.nan, basis))
            return
        if interim and scale != elapsed and name.startswith(ACCUMULATING):
            basis += "; expected by now from the baseline's weekly curve"
        if interim:
            pace = "ahead" if p >= PACE_AHEAD else ("behind" if p < PACE_BEHIND else "on track")
            status = "undefined" if np.isnan(actual) else pace
            low, high = spread if spread is not None else (np.nan, np.nan)
            projections[name] = (
                elapsed,
                float(target) * scale,
                actual / scale,
                low / scale,
                high / scale,
            )
        else:
            status = "undefined" if np.isnan(actual) else ("met" if actual >= target else "missed")
        rows.append((name, actual, float(target), status, float(p), basis))

    def rate(name, x, n, target):
        """P(the rate ends at or above target) and the 95% interval of the rate so far."""
        from scipy import special  # the Beta's sf and ppf, as scipy.stats.beta computes them

        a, b = PRIOR.alpha + x, PRIOR.beta + n - x
        scaled = target * by_now(name)
        return special.betaincc(a, b, scaled), tuple(special.betaincinv(a, b, [0.025, 0.975]))

    if t.conversion_rate is not None and "converted" in outcomes:
        x, n = treated["converted"].sum(), len(treated)
        p, spread = rate("conversion_rate", x, n, t.conversion_rate)
        add(
            "conversion_rate",
            x / n,
            t.conversion_rate,
            p,
            "conversion of contacted customers",
            spread,
        )
    if t.visit_rate is not None and "visited" in outcomes:
        x, n = treated["visited"].sum(), len(treated)
        p, spread = rate("visit_rate", x, n, t.visit_rate)
        add("visit_rate", x / n, t.visit_rate, p, "visits of contacted customers", spread)
    elif t.visit_rate is not None:  # an interim Check's outcomes come from the transactions
        projections["visit_rate"] = (elapsed, np.nan, np.nan, np.nan, np.nan)
        rows.append(("visit_rate", np.nan, float(t.visit_rate), "undefined", np.nan, NO_VISITS_YET))
    for name in OBJECTIVE_TARGETS:
        if getattr(t, name) is not None:
            _needs(outcomes, name)
            goal, share = getattr(t, name), by_now(name)
            add(name, *_objective_target(name, treated, goal, share, partial(rate, name), plan))
    if t.relative_lift is not None:
        column = METRIC_COLUMNS[t.relative_lift.metric]
        rows_m = lift_table[lift_table["metric"] == column]
        if rows_m.empty:
            raise DataError(
                "outcomes",
                f"no outcome column for the target metric {t.relative_lift.metric!r}",
                column=column,
            )
        target = t.relative_lift.min
        arm = primary_arm(plan)
        chosen = rows_m[rows_m["arm"] == arm]
        if chosen.empty:
            raise DataError("outcomes", f"no customer of the primary arm {arm!r}", column="arm")
        declared = "" if t.relative_lift.arm else ", the plan's first treated arm"
        if chosen["rel_lift"].notna().iat[0]:
            add(
                "relative_lift",
                chosen["rel_lift"].iat[0],
                target,
                float(np.mean(draws.rel_lift[(arm, column)] >= target)),
                f"primary arm ({arm}{declared}) on {column}",
            )
        elif undefined := re.search(_UNDEFINED, note := chosen["note"].iat[0]):
            # refunds, or the pre-period adjustment, can take the holdout's mean to 0 or below
            add(
                "relative_lift",
                np.nan,
                target,
                np.nan,
                f"undefined: the holdout's mean {column} is {undefined.group(1)}; see the"
                " absolute lift",
            )
        elif NOT_CREDIBLY_POSITIVE in note:
            add(
                "relative_lift",
                np.nan,
                target,
                np.nan,
                f"not estimable: the holdout's mean {column} is not credibly above 0; see the"
                " absolute lift",
            )
        else:
            unit = event_unit(chosen["kind"].iat[0])
            add(
                "relative_lift",
                np.nan,
                target,
                np.nan,
                f"not estimable: fewer than {MIN_RATIO_EVENTS[unit]} {unit}s in the holdout and"
                f" {arm} together; see the absolute lift",
            )
    revenue = lift_table[lift_table["metric"] == "revenue"]
    if len(revenue) and (t.incremental_revenue is not None or t.roi is not None):
        total = sum(
            draws.abs_lift[(a, "revenue")] * n
            for a, n in zip(revenue["arm"], revenue["customers"], strict=True)
        )
        if t.incremental_revenue is not None:
            add(
                "incremental_revenue",
                revenue["incremental"].sum(),
                t.incremental_revenue,
                np.mean(total >= t.incremental_revenue * by_now("incremental_revenue")),
                "all arms against the holdout",
                tuple(np.quantile(total, [0.025, 0.975])),
            )
        spend = sum(
            plan.cost.get(a, 0.0) * n
            for a, n in zip(revenue["arm"], revenue["customers"], strict=True)
        )
        if t.roi is not None and spend > 0:
            actual = revenue["incremental"].sum() * plan.margin / spend
            roi = total * plan.margin / spend
            add(
                "roi",
                actual,
                t.roi,
                np.mean(roi >= t.roi * by_now("roi")),
                f"all arms: incremental margin ({plan.margin:.0%}) / cost",
                tuple(np.quantile(roi, [0.025, 0.975])),
            )
    if funnel_targets is not None:
        for _, r in funnel_targets.iterrows():
            add(
                f"funnel_{r['stage']}",
                r["actual"],
                r["target"],
                r["p_met"],
                "share of touched reaching the stage",
            )
    card = pd.DataFrame(rows, columns=SCORECARD_COLUMNS)
    if interim:
        extra = pd.DataFrame(
            [
                projections.get(name, (elapsed, np.nan, np.nan, np.nan, np.nan))
                for name in card["target"]
            ],
            columns=INTERIM_COLUMNS,
        )
        card = pd.concat([card, extra], axis=1)
    return card


#: the objectives' targets (:mod:`closedloop.objectives`) and the columns each is measured on
OBJECTIVE_TARGETS = {
    "orders_per_customer": ("orders",),
    "avg_ticket": ("orders", "revenue"),
    "second_purchase_rate": ("second_purchase",),
    "recruits": ("recruited",),
    "first_conversion_rate": ("recruited", "first_conversion"),
    "leads": ("lead",),
}


def _needs(outcomes: pd.DataFrame, name: str) -> None:
    missing = [c for c in OBJECTIVE_TARGETS[name] if c not in outcomes.columns]
    if missing:
        raise DataError(
            "outcomes", f"no outcome column {missing[0]!r} for the target {name}", column=missing[0]
        )


def _objective_target(name, treated, target, scale, rate, plan):
    """actual, target, P(met) (of ending at or above it, when interim), basis and the 95%
    interval of the actual so far, for one of :data:`OBJECTIVE_TARGETS` over the contacted;
    ``scale`` is the share of the target expected by now (1 in a final Check)."""
    from scipy import stats

    n, z = len(treated), stats.norm.ppf(0.975)
    if name in ("recruits", "leads"):
        x = float(treated[OBJECTIVE_TARGETS[name][0]].sum())
        p, (low, high) = rate(x, n, target / n) if n else (np.nan, (np.nan, np.nan))
        what = (
            "contacted customers who joined in the period"
            if name == "recruits"
            else f"contacted customers reaching {plan.metrics.lead_stage}"
        )
        return x, target, p, what, (low * n, high * n)
    if name == "second_purchase_rate":
        x = float(treated["second_purchase"].sum())
        p, spread = rate(x, n, target)
        days = plan.metrics.second_purchase_days
        return x / n, target, p, f"contacted customers buying twice within {days} days", spread
    if name == "first_conversion_rate":
        x, m = float(treated["first_conversion"].sum()), float(treated["recruited"].sum())
        if not m:
            return np.nan, target, np.nan, "recruits' first purchase (no recruits)", None
        a, b = PRIOR.alpha + x, PRIOR.beta + m - x
        interval = tuple(stats.beta.ppf([0.025, 0.975], a, b))
        return x / m, target, stats.beta.sf(target, a, b), "recruits' first purchase", interval
    if name == "orders_per_customer":
        values = treated["orders"].to_numpy(float)
        mean, se = values.mean(), values.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
        p = stats.norm.sf(target * scale, mean, se)
        return mean, target, p, "orders per contacted customer", (mean - z * se, mean + z * se)
    buyers = treated[treated["orders"] > 0]  # avg_ticket: revenue per order, delta method
    if buyers.empty:
        return np.nan, target, np.nan, "revenue per order (no contacted buyer)", None
    orders, revenue = buyers["orders"].to_numpy(float), buyers["revenue"].to_numpy(float)
    ratio = revenue.sum() / orders.sum()
    linear = (revenue - ratio * orders) / orders.mean()
    se = linear.std(ddof=1) / np.sqrt(len(buyers)) if len(buyers) > 1 else np.inf
    p = stats.norm.sf(target, ratio, se)
    return (
        ratio,
        target,
        p,
        "revenue per order of contacted buyers",
        (ratio - z * se, ratio + z * se),
    )
