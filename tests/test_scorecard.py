"""closedloop.scorecard: final and interim Checks of the plan's targets."""

from __future__ import annotations

import pytest

from closedloop import pdca, scorecard
from closedloop.plan import Plan, PlanError

# an interim Check leaves out the rows after its asof, and says so
pytestmark = pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")


def test_a_final_check_meets_or_misses(interim_checks):
    card = interim_checks[31].scorecard
    assert set(card["status"]) <= {"met", "missed", "undefined"}
    assert "expected_by_now" not in card.columns


def test_interim_checks_pace_and_their_projections_bracket_the_final_actuals(interim_checks):
    final = interim_checks[31].scorecard.set_index("target")["actual"]
    for day in (7, 14, 21):
        card = interim_checks[day].scorecard.set_index("target")
        assert set(card["status"]) <= {"ahead", "on track", "behind", "not paced"}
        assert card["elapsed"].iloc[0] == pytest.approx(day / 31)
        # the funnel is not paced: the demo's visits are front-loaded after the push, and the
        # purchases' curve projected them on day 7 to 71.6% (P(met) 1.0); they ended at 30.5%
        funnel = card[card.index.str.startswith("funnel_")]
        assert (funnel["status"] == "not paced").all() and funnel["p_met"].isna().all()
        assert funnel["projected"].isna().all() and funnel["expected_by_now"].isna().all()
        assert (funnel["actual"] <= final[funnel.index]).all()  # the actual so far is shown
        for target in ("conversion_rate", "incremental_revenue"):
            row = card.loc[target]
            # the demo plan has a baseline: its week shapes the pace (computed by hand in
            # tests/test_interim_history.py), close to pro rata for a steady week
            assert row["expected_by_now"] == pytest.approx(row["target_value"] * day / 31, rel=0.1)
            assert row["projected_low"] <= final[target] <= row["projected_high"], (day, target)
        # the relative lift is a ratio: not pro-rated
        assert (
            card.loc["relative_lift", "expected_by_now"]
            == card.loc["relative_lift", "target_value"]
        )


def test_pace_follows_the_probability_of_ending_above_the_target(interim_checks):
    card = interim_checks[14].scorecard
    for _, row in card.iterrows():
        if row["status"] == "ahead":
            assert row["p_met"] >= scorecard.PACE_AHEAD
        elif row["status"] == "behind":
            assert row["p_met"] < scorecard.PACE_BEHIND


def test_an_asof_before_the_period_is_refused(interim_demo):
    from closedloop import DataError

    plan = Plan.from_yaml(interim_demo / "plan.yaml")
    with pytest.raises(DataError, match="before the campaign period starts"):
        pdca.period_elapsed(plan, pdca.as_of(plan, "2026-02-20"))


def _plan(**relative_lift) -> Plan:
    return Plan.parse(
        {
            "campaign": "c",
            "objective": "convert",
            "period": {"start": "2026-03-01", "end": "2026-03-31"},
            "arms": {"control": 0.34, "a": 0.33, "b": 0.33},
            "targets": {"relative_lift": {"metric": "conversion", "min": 0.12, **relative_lift}},
            "data": {"assignments": "a.csv", "outcomes": "o.csv"},
        }
    )


def test_the_relative_lift_target_is_judged_on_the_primary_arm():
    """Not on the arm that looked best after the fact (the winner's curse): on the arm the plan
    names, else its first treated arm (a here, though b did better); P(met) is that arm's posterior P(relative lift >= target), here
    checked against the Beta posteriors drawn independently."""
    import numpy as np
    from conftest import binary_outcomes

    from closedloop.lift import bayesian_lift

    outcomes = binary_outcomes({"control": (2000, 200), "a": (2000, 228), "b": (2000, 236)})
    lift = bayesian_lift(outcomes, metrics="converted", draws=200_000)
    rng = np.random.default_rng(3)
    control = rng.beta(200.5, 1800.5, 400_000)
    for named, arm, x in ((None, "a", 228), ("b", "b", 236)):
        the_plan = _plan(**({"arm": named} if named else {}))
        row = scorecard.score(the_plan, outcomes, lift).set_index("target").loc["relative_lift"]
        assert row["actual"] == pytest.approx(x / 200 - 1, rel=1e-12)
        expected = np.mean(rng.beta(0.5 + x, 2000.5 - x, 400_000) / control - 1 >= 0.12)
        assert row["p_met"] == pytest.approx(expected, abs=0.005)
        first = "" if named else ", the plan's first treated arm"
        assert row["basis"] == f"primary arm ({arm}{first}) on converted"
    with pytest.raises(PlanError, match="not a treated arm"):
        _plan(arm="control")


def test_a_relative_lift_over_too_few_holdout_conversions_is_not_estimable():
    """2 holdout and 7 arm conversions (under closedloop.lift.MIN_RATIO_EVENTS's 10 together):
    no actual, no P(met),
    status undefined and a basis that says why; the Chinese report says it in Chinese."""
    from conftest import binary_outcomes

    from closedloop.lift import bayesian_lift
    from closedloop.sections import _basis

    outcomes = binary_outcomes({"control": (300, 2), "a": (300, 7), "b": (300, 9)})
    lift = bayesian_lift(outcomes, metrics="converted", draws=2000)
    row = scorecard.score(_plan(), outcomes, lift).set_index("target").loc["relative_lift"]
    assert row["status"] == "undefined"
    assert row["actual"] != row["actual"] and row["p_met"] != row["p_met"]  # NaN, shown as text
    assert row["basis"] == (
        "not estimable: fewer than 10 conversions in the holdout and a together; see the"
        " absolute lift"
    )
    assert _basis(row["basis"], "zh") == (
        "无法可靠估计：对照组与 a 的转化合计少于 10 个；请看绝对提升"
    )


def test_a_relative_lift_over_a_holdout_mean_not_credibly_above_0_says_why():
    """Refunds: the holdout's mean revenue is 0.05 with a standard error of 10. The scorecard's
    basis says so, in English and Chinese; after a pre-period adjustment that takes the mean
    below 0 it says that."""
    import numpy as np
    import pandas as pd

    from closedloop.lift import bayesian_lift
    from closedloop.sections import _basis

    rng = np.random.default_rng(0)
    n = 400
    control, arm = rng.normal(0, 200, n), rng.normal(0, 200, n)
    outcomes = pd.DataFrame(
        {
            "arm": ["control"] * n + ["a"] * n + ["b"] * n,
            "revenue": np.r_[control - control.mean() + 0.05, arm, arm + 5],
        }
    )
    plan = _plan(metric="revenue")
    lift = bayesian_lift(outcomes, metrics="revenue", draws=2000)
    row = scorecard.score(plan, outcomes, lift).set_index("target").loc["relative_lift"]
    assert row["status"] == "undefined" and np.isnan(row["p_met"])
    assert row["basis"] == (
        "not estimable: the holdout's mean revenue is not credibly above 0; see the absolute lift"
    )
    assert (
        _basis(row["basis"], "zh") == "无法可靠估计：对照组的销售额均值不能确定高于 0；请看绝对提升"
    )
    adjusted = "undefined: the holdout's mean revenue is below 0 after the pre-period adjustment"
    assert _basis(f"{adjusted}; see the absolute lift", "zh") == (
        "无法定义：对照组的销售额均值（按基期调整后）低于 0；请看绝对提升"
    )
