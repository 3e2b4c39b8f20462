"""closedloop.early_stop: the plan's stopping rule on hand-built cases whose decision is known."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from closedloop import early_stop, pdca, sections, verdict
from closedloop.datasets import write_demo
from closedloop.lift import bayesian_lift
from closedloop.plan import Plan, PlanError, Stopping

pytestmark = pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")

RULE = Stopping(min_days=7, min_customers=100, loss_threshold=0.1, certainty=0.95)


def normal(mean, sd, seed, n=20_000):
    return np.random.default_rng(seed).normal(mean, sd, n)


def test_expected_loss_and_p_better_are_those_of_the_draws():
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([0.0, 3.0, 0.0, 0.0])
    d = early_stop.decide_draws(["a", "b"], np.stack([a, b]), 10.0, 500, 10, RULE)
    # a leads (mean 1.25 > 0.75); the best other choice per draw is max(b, holdout 0)
    best_other = np.maximum(b, 0)
    assert d.arm == "a"
    assert d.expected_loss == pytest.approx(np.mean(np.maximum(best_other - a, 0)))
    assert d.expected_loss == pytest.approx(0.5)
    assert d.p_better == pytest.approx(0.75)
    assert d.action == "continue"  # loss 0.5 above 0.1 and P 0.75 below 0.95


def test_a_clear_winner_ships_after_the_minimums_and_waits_before():
    draws = np.stack([normal(5, 0.5, 1), normal(0, 0.5, 2)])
    shipped = early_stop.decide_draws(["a", "b"], draws, 10.0, 500, 7, RULE)
    assert (shipped.action, shipped.arm) == ("ship", "a")
    assert shipped.expected_loss < 0.1 and shipped.p_better > 0.99
    early = early_stop.decide_draws(["a", "b"], draws, 10.0, 500, 6, RULE)
    assert early.action == "wait" and early.dropped == ()
    small = early_stop.decide_draws(["a", "b"], draws, 10.0, 99, 20, RULE)
    assert small.action == "wait"


def test_a_sure_but_close_race_between_arms_does_not_ship():
    # both arms beat the holdout for sure, but a is barely ahead of b: choosing it may lose
    draws = np.stack([normal(5.0, 1, 3), normal(4.9, 1, 4)])
    d = early_stop.decide_draws(["a", "b"], draws, 10.0, 500, 10, RULE)
    assert d.p_better == 1.0 and d.expected_loss > 0.1
    assert d.action == "continue"


def test_certainty_keeps_a_small_loss_from_shipping_a_no_better_arm():
    # a cheap, precise campaign: the loss is tiny but a is not shown to beat the holdout
    draws = np.stack([normal(0.01, 0.05, 5), normal(-0.01, 0.05, 6)])
    d = early_stop.decide_draws(["a", "b"], draws, 10.0, 500, 10, RULE)
    assert d.expected_loss < 0.1 and d.p_better < 0.95
    assert d.action == "continue"


def test_clearly_worse_arms_are_stopped_and_all_of_them_stop_the_campaign():
    one = np.stack([normal(1, 1, 7), normal(-5, 0.5, 8)])
    d = early_stop.decide_draws(["a", "b"], one, 10.0, 500, 10, RULE)
    assert d.action == "continue" and d.dropped == ("b",)
    both = np.stack([normal(-5, 0.5, 9), normal(-4, 0.5, 10)])
    d = early_stop.decide_draws(["a", "b"], both, 10.0, 500, 10, RULE)
    assert d.action == "stop" and d.dropped == ("a", "b")


def test_defaults_fill_what_the_plan_leaves_out():
    rule = early_stop.settings(Stopping(min_days=3), control_mean=20.0)
    assert rule["min_days"] == 3
    assert rule["certainty"] == early_stop.DEFAULTS["certainty"]
    assert rule["min_customers"] == early_stop.DEFAULTS["min_customers"]
    assert rule["loss_threshold"] == pytest.approx(early_stop.LOSS_SHARE * 20.0)
    assert early_stop.settings(None, 5.0)["loss_threshold"] == pytest.approx(
        early_stop.LOSS_SHARE * 5.0
    )


def test_decide_reads_the_lift_of_hand_built_outcomes():
    rng = np.random.default_rng(0)
    rows = []
    for arm, mean in (("control", 10.0), ("a", 30.0), ("b", 10.0)):
        values = rng.gamma(2.0, mean / 2.0, 2_000)
        rows.append(pd.DataFrame({"arm": arm, "revenue": values}))
    lift = bayesian_lift(pd.concat(rows), metrics="revenue")
    d = early_stop.decide(lift, 10, Stopping(loss_threshold=0.5))
    # a's mean is 20 above the holdout's with a standard error of about 0.5: a clear ship
    assert (d.action, d.arm) == ("ship", "a")
    assert d.customers == 2_000
    no_revenue = bayesian_lift(pd.concat(rows).assign(revenue=lambda f: (f.revenue > 15) * 1))
    assert early_stop.decide(no_revenue.filter(no_revenue.table["metric"] != "revenue"), 10) is None


def _raw_plan(stopping: dict) -> dict:
    """A minimal plan's raw mapping with this ``stopping`` section."""
    return {
        "campaign": "c",
        "objective": "convert",
        "period": {"start": "2026-03-01", "end": "2026-03-31"},
        "arms": {"control": 0.5, "a": 0.5},
        "targets": {},
        "data": {"assignments": "a.csv", "outcomes": "o.csv"},
        "stopping": stopping,
    }


@pytest.mark.parametrize(
    ("stopping", "message"),
    [
        ({"min_days": 0}, "stopping.min_days"),
        ({"loss_threshold": -1}, "stopping.loss_threshold"),
        ({"loss_threshold": "a lot"}, "stopping.loss_threshold"),
        ({"certainty": 1.5}, "stopping.certainty"),
        ({"min_customers": 2.5}, "stopping.min_customers"),
        ({"min_customers": True}, "stopping.min_customers: a number, not true or false"),
        ({"min_days": True}, "stopping.min_days: a number, not true or false"),
        ({"max_days": 3}, "stopping.max_days: unknown key"),
        ({"min_days": 40}, "longer than the period"),
    ],
)
def test_bad_stopping_settings_are_one_plan_error(stopping, message):
    raw = _raw_plan(stopping)
    with pytest.raises(PlanError, match=message):
        Plan.parse(raw)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = write_demo(tmp_path_factory.mktemp("demo"), seed=0, n_customers=20_000)
    plan = Plan.from_yaml(folder / "plan.yaml")
    return plan.model_copy(update={"stopping": Stopping(min_days=7)})


def test_an_interim_demo_check_records_and_states_the_decision(demo, tmp_path):
    check = pdca.check(demo, pdca.load(demo, asof="2026-03-14"), asof="2026-03-14")
    d = check.early_stop
    assert d is not None and d.day == 14 and d.action in ("continue", "ship", "stop")
    # the decision is the rule on the check's own revenue lift
    again = early_stop.decide(
        pdca.lift.Lift(check.lift, check.lift_draws), 14, Stopping(min_days=7)
    )
    assert again == d
    record = pdca.summary(check, pdca.act(check), "r")
    assert json.loads(json.dumps(record, default=str))["early_stop"]["action"] == d.action
    en = verdict.verdict(check, pdca.act(check), "en")
    zh = verdict.verdict(check, pdca.act(check), "zh")
    assert en[0].startswith("Stopping rule:") and d.arm in en[0]
    assert zh[0].startswith("提前停止规则：")
    # the scorecard section says it too, in Chinese but for the arms' names
    html = "".join(getattr(part, "data", "") for part in sections.scorecard(check, "zh"))
    said = re.search(r'<div class="cl-sentence" id="early-stop">(.*?)</div>', html).group(1)
    assert "提前停止规则" in said and set(re.findall(r"[A-Za-z]+", said)) <= {"p", *demo.arms}
    basis = re.findall(r"[A-Za-z]+", sections._basis(check.scorecard["basis"].iloc[0], "zh"))
    assert not basis
    before = pdca.check(demo, pdca.load(demo, asof="2026-03-05"), asof="2026-03-05")
    assert before.early_stop.action == "wait"
    assert "too early" in verdict.verdict(before, pdca.act(before))[0]


def test_a_final_check_makes_no_stopping_decision(demo):
    check = pdca.check(demo, pdca.load(demo))
    assert check.early_stop is None
    assert pdca.summary(check, pdca.act(check), "r")["early_stop"] is None


def test_an_empty_stopping_section_takes_every_default():
    raw = _raw_plan({})
    plan = Plan.parse(raw)
    assert plan.stopping == Stopping()
    assert early_stop.settings(plan.stopping, 4.0) == {
        **early_stop.DEFAULTS,
        "loss_threshold": early_stop.LOSS_SHARE * 4.0,
    }
