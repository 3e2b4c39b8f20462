"""closedloop.act: each Act rule on a hand-built Check — drop, keep, stop, audience, targets."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from closedloop import act
from closedloop.plan import Plan


def plan(**targets) -> Plan:
    return Plan.parse(
        {
            "campaign": "c",
            "objective": "win back",
            "period": {"start": "2026-03-01", "end": "2026-03-31"},
            "audience": {"segments": ["new", "lapsed"]},
            "arms": {"control": 0.1, "sms": 0.45, "wecom": 0.45},
            "targets": targets or {"conversion_rate": 0.2},
            "data": {"assignments": "a.csv", "outcomes": "o.csv"},
        }
    )


def check(p_better, p_best, status=None, the_plan=None, segments=None, rel_draws=None, **interim):
    """A Check with the fields the Act step reads: conversion lift per arm, P(best), scorecard;
    a final one unless ``interim`` gives an ``asof`` (and an ``early_stop`` decision)."""
    the_plan = the_plan or plan()
    arms = list(p_better)
    lift = pd.DataFrame(
        {
            "arm": arms,
            "metric": "converted",
            "customers": 1_000,
            "mean": [0.30 if a == "wecom" else 0.22 for a in arms],
            "p_better": [p_better[a] for a in arms],
        }
    )
    best = pd.DataFrame(
        {"arm": list(p_best), "metric": "converted", "p_best": list(p_best.values())}
    )
    status = status or {}
    scorecard = pd.DataFrame(
        {"target": list(status), "status": list(status.values()), "actual": 0.0}
    )
    draws = SimpleNamespace(rel_lift={(a, "converted"): d for a, d in (rel_draws or {}).items()})
    return SimpleNamespace(
        plan=the_plan,
        lift=lift,
        p_best=best,
        scorecard=scorecard,
        segments=segments,
        lift_draws=draws,
        asof=pd.Timestamp(interim.get("asof", the_plan.period.end)),
        early_stop=interim.get("early_stop"),
    )


def changes(nxt: Plan) -> dict[str, tuple[str, str]]:
    return {c.field: (c.to, c.reason) for c in nxt.changes}


def test_an_arm_that_is_rarely_the_best_is_dropped_with_its_number():
    nxt = act.next_plan(check({"sms": 0.99, "wecom": 1.0}, {"sms": 0.01, "wecom": 0.99}))
    assert set(nxt.arms) == {"control", "wecom"} and nxt.status == "ready"
    assert sum(nxt.arms.values()) == pytest.approx(1.0) and nxt.arms["control"] == 0.1
    to, reason = changes(nxt)["arms.sms"]
    assert to == "dropped" and "P(sms is the best arm on converted) = 0.010" in reason


def test_an_arm_that_does_not_beat_the_holdout_is_dropped_even_as_the_best():
    nxt = act.next_plan(check({"sms": 0.40, "wecom": 0.97}, {"sms": 0.30, "wecom": 0.70}))
    assert set(nxt.arms) == {"control", "wecom"}
    assert "P(sms beats the holdout on converted) = 0.40, below 0.95" in changes(nxt)["arms.sms"][1]


def test_no_arm_worth_carrying_means_stop_or_redesign():
    nxt = act.next_plan(check({"sms": 0.55, "wecom": 0.62}, {"sms": 0.45, "wecom": 0.55}))
    assert nxt.status == "redesign"
    assert set(nxt.arms) == {"control", "sms", "wecom"}  # kept for re-planning, not for running
    to, reason = changes(nxt)["status"]
    assert to == "redesign" and reason.startswith("stop or redesign")
    assert changes(nxt)["arms.sms"][0] == changes(nxt)["arms.wecom"][0] == "dropped"


def test_the_audience_moves_to_the_segments_where_a_kept_arm_wins():
    segments = pd.DataFrame(
        {
            "segment": ["new", "new", "lapsed", "lapsed", "at_risk", "at_risk"],
            "arm": ["sms", "wecom"] * 3,
            "p_better": [0.99, 0.60, 0.99, 0.50, 0.10, 0.90],
        }
    )
    nxt = act.next_plan(
        check({"sms": 0.99, "wecom": 1.0}, {"sms": 0.01, "wecom": 0.99}, segments=segments)
    )
    assert nxt.audience.segments == ["at_risk"]  # only wecom is kept; sms's segments do not count
    assert "at_risk 0.90" in changes(nxt)["audience.segments"][1]


def test_a_missed_target_is_carried_unchanged():
    nxt = act.next_plan(
        check(
            {"wecom": 1.0, "sms": 0.99}, {"sms": 0.0, "wecom": 1.0}, {"conversion_rate": "missed"}
        )
    )
    assert nxt.targets.conversion_rate == 0.2
    to, reason = changes(nxt)["targets.conversion_rate"]
    assert to == "carried" and "carried forward unchanged" in reason


def test_a_met_target_is_raised_never_lowered():
    met = check({"wecom": 1.0, "sms": 0.99}, {"sms": 0.0, "wecom": 1.0}, {"conversion_rate": "met"})
    nxt = act.next_plan(met)
    from scipy import stats

    raised = stats.beta.ppf(0.25, 0.5 + 300, 0.5 + 700)  # wecom: 300 of 1,000
    assert nxt.targets.conversion_rate == pytest.approx(raised, abs=1e-4)
    assert (
        "raised to the 25% posterior quantile of wecom"
        in changes(nxt)["targets.conversion_rate"][1]
    )
    high = check(
        {"wecom": 1.0, "sms": 0.99},
        {"sms": 0.0, "wecom": 1.0},
        {"conversion_rate": "met"},
        the_plan=plan(conversion_rate=0.5),
    )
    assert act.next_plan(high).targets.conversion_rate == 0.5  # met by luck: never lowered


def relative_lift_met(p_best: dict, **target) -> Plan:
    """The next plan after a met relative-lift target, both arms beating the holdout; wecom's
    lift draws are 0.2-0.6 (25% quantile 0.3), sms's 0.0-0.4 (0.1)."""
    draws = {"wecom": np.linspace(0.2, 0.6, 1001), "sms": np.linspace(0.0, 0.4, 1001)}
    the_plan = plan(relative_lift={"metric": "conversion", **target})
    met = check(
        {"sms": 0.99, "wecom": 1.0}, p_best, {"relative_lift": "met"}, the_plan, None, draws
    )
    return act.next_plan(met)


def test_a_met_relative_lift_target_rises_to_its_quantile():
    nxt = relative_lift_met({"sms": 0.0, "wecom": 1.0}, min=0.1)
    assert nxt.targets.relative_lift.min == pytest.approx(0.3, abs=1e-3)


def test_a_met_relative_lift_target_rises_on_the_primary_arm_not_the_best():
    """The scorecard judged the target on the primary arm (the first treated arm, sms): the
    next target is that arm's quantile, though wecom's lift is higher."""
    nxt = relative_lift_met({"sms": 0.3, "wecom": 0.7}, min=0.05)
    assert list(nxt.arms) == ["control", "sms", "wecom"]
    assert nxt.targets.relative_lift.min == pytest.approx(0.1, abs=1e-3)
    assert "quantile of sms's relative lift" in changes(nxt)["targets.relative_lift.min"][1]


def test_a_dropped_primary_arm_hands_the_target_to_the_first_kept_arm():
    nxt = relative_lift_met({"sms": 0.0, "wecom": 1.0}, min=0.05, arm="sms")
    assert set(nxt.arms) == {"control", "wecom"}
    assert nxt.targets.relative_lift.arm is None  # judged on the first treated arm: wecom
    to, reason = changes(nxt)["targets.relative_lift.arm"]
    assert to == "wecom" and reason.startswith("sms is not carried")
    assert nxt.targets.relative_lift.min == pytest.approx(0.3, abs=1e-3)


def test_an_interim_check_writes_a_provisional_plan_that_does_not_run(tmp_path):
    """Mid-period, the Act step's decisions are what the data say so far: the next plan says
    so (status provisional, with the reason) and ``closedloop run`` refuses it."""
    from closedloop import report
    from closedloop.plan import PlanError

    nxt = act.next_plan(
        check({"sms": 0.5, "wecom": 0.99}, {"sms": 0.1, "wecom": 0.9}, asof="2026-03-15")
    )
    assert nxt.status == "provisional" and set(nxt.arms) == {"control", "wecom"}
    to, why = changes(nxt)["status"]
    assert to == "provisional"
    assert why.startswith("an interim Check (data as of 2026-03-15)") and "2026-03-31" in why
    final = act.next_plan(check({"sms": 0.5, "wecom": 0.99}, {"sms": 0.1, "wecom": 0.9}))
    assert final.status == "ready" and "status" not in changes(final)
    nxt.to_yaml(tmp_path / "next_plan.yaml")
    for name in ("a.csv", "o.csv"):  # the plan's data files exist; the status refuses the run
        (tmp_path / name).write_text("customer_id\n")
    with pytest.raises(PlanError, match="interim Check"):
        report.run(tmp_path / "next_plan.yaml", out=tmp_path / "reports")


@pytest.mark.parametrize(
    ("action", "status"),
    [("ship", "ready"), ("stop", "ready"), ("continue", "provisional"), ("wait", "provisional")],
)
def test_a_stopping_rule_that_ends_the_test_makes_the_act_due_now(action, status):
    decision = SimpleNamespace(action=action)
    nxt = act.next_plan(
        check(
            {"sms": 0.5, "wecom": 0.99},
            {"sms": 0.1, "wecom": 0.9},
            asof="2026-03-15",
            early_stop=decision,
        )
    )
    assert nxt.status == status


def test_the_next_plan_follows_this_cycle():
    nxt = act.next_plan(check({"sms": 0.99, "wecom": 1.0}, {"sms": 0.01, "wecom": 0.99}))
    assert nxt.cycle == 2
    assert (str(nxt.period.start), str(nxt.period.end)) == ("2026-04-01", "2026-04-30")
    assert (str(nxt.baseline.start), str(nxt.baseline.end)) == ("2026-03-01", "2026-03-31")


def test_whole_months_are_followed_by_whole_months():
    from datetime import date

    assert act.next_period(date(2026, 3, 1), date(2026, 3, 31)) == (
        date(2026, 4, 1),
        date(2026, 4, 30),
    )
    assert act.next_period(date(2026, 11, 1), date(2026, 12, 31)) == (
        date(2027, 1, 1),
        date(2027, 2, 28),
    )
    assert act.next_period(date(2026, 3, 5), date(2026, 3, 18)) == (
        date(2026, 3, 19),
        date(2026, 4, 1),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_random_split_with_no_true_effect_ends_in_stop_or_redesign(seed):
    """An export whose arms were split at random and got no treatment effect at all: the Check
    finds no arm worth carrying, and the Act step says so instead of keeping one."""
    from closedloop import pdca

    rng = np.random.default_rng(seed)
    n = 20_000
    arms = rng.choice(["control", "sms", "wecom"], size=n, p=[0.1, 0.45, 0.45])
    converted = (rng.random(n) < 0.05).astype(int)
    revenue = np.where(converted == 1, rng.gamma(2.0, 20.0, n), 0.0)
    outcomes = pd.DataFrame(
        {"customer_id": [f"C{i}" for i in range(n)], "arm": arms, "converted": converted}
    ).assign(revenue=revenue)
    the_plan = plan(conversion_rate=0.05, relative_lift={"metric": "conversion", "min": 0.1})
    data = pdca.CampaignData(assignments=outcomes[["customer_id", "arm"]], outcomes=outcomes)
    nxt = pdca.act(pdca.check(the_plan, data))
    kept = [a for a in nxt.arms if a != "control"]
    # no effect: an arm passes the P >= 0.95 bar only by chance (1 time in 20 per arm)
    assert nxt.status == "redesign" or len(kept) <= 1
    if nxt.status == "redesign":
        assert changes(nxt)["status"][1].startswith("stop or redesign")
