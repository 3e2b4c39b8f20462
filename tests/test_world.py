"""The demo retailer as a world: it continues the demo, responds to plans, and the loop learns."""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest

from closedloop import assign, lift, pdca
from closedloop.datasets.demo import TRUE_UPLIFT
from closedloop.datasets.world import DemoWorld, next_cycle, true_uplift
from closedloop.plan import Plan

APRIL = ("2026-04-01", "2026-04-30")


@pytest.fixture(scope="module")
def world():
    return DemoWorld(seed=0, n_customers=6_000)


def _converted(world, month, audience):
    """1 for each customer of ``audience`` who bought in the month, else 0."""
    bought = set(month.transactions["customer_id"])
    return audience["customer_id"].isin(bought).astype(int).to_numpy()


def test_the_world_starts_as_the_demo(world):
    demo = world.demo
    march = world.segments("2026-03-01")
    pd.testing.assert_frame_equal(
        march, demo.assignments[["customer_id", "segment"]].reset_index(drop=True)
    )
    effects = world.true_effects(demo.assignments, "2026-03-01", "2026-03-31")
    columns = ["arm", "segment", "n", "control_rate", "treated_rate", "abs_lift"]
    pd.testing.assert_frame_equal(
        effects[columns].round(6), demo.effects[columns], check_dtype=False
    )
    assert set(true_uplift().itertuples(index=False, name=None)) == {
        (arm, segment, u) for (arm, segment), u in TRUE_UPLIFT.items()
    }


def test_same_seed_same_folders(tmp_path):
    def run(name):
        first = DemoWorld(seed=1, n_customers=2_000).write_demo(tmp_path / name / "c1")
        plan = Plan.from_yaml(first / "plan.yaml")
        raw = plan.model_dump(mode="python", exclude_none=True)
        raw.update(
            cycle=2,
            period={"start": dt.date(2026, 4, 1), "end": dt.date(2026, 4, 30)},
            baseline={"start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 31)},
            arms={"control": 0.1, "wecom": 0.9},
            cost={"wecom": 0.02},
            audience={"segments": ["at_risk", "lapsed"]},
        )
        return next_cycle(first, Plan.parse(raw), tmp_path / name / "c2", seed=1)

    a, b = run("a"), run("b")
    plan = Plan.from_yaml(a / "plan.yaml")
    with pytest.raises(ValueError, match="do not start with the demo's for seed 2"):
        next_cycle(tmp_path / "a" / "c1", plan, tmp_path / "x", seed=2)
    redesign = Plan.parse(
        {**plan.model_dump(mode="python", exclude_none=True), "status": "redesign"}
    )
    with pytest.raises(ValueError, match="status 'redesign'"):
        next_cycle(tmp_path / "a" / "c1", redesign, tmp_path / "x", seed=1)
    files = sorted(p.name for p in a.iterdir())
    assert files == [
        "assignments.csv",
        "customers.csv",
        "items.csv",
        "plan.yaml",
        "transactions.csv",
    ]
    for name in files:
        digest = [hashlib.sha256((d / name).read_bytes()).hexdigest() for d in (a, b)]
        assert digest[0] == digest[1], name
    assert plan.data.outcomes is None and plan.data.transactions == a / "transactions.csv"
    assigned = pd.read_csv(a / "assignments.csv")
    assert set(assigned["arm"]) == {"control", "wecom"}
    assert set(assigned["segment"]) == {"at_risk", "lapsed"}
    earlier = (tmp_path / "a" / "c1" / "transactions.csv").read_bytes()
    now = (a / "transactions.csv").read_bytes()
    assert now.startswith(earlier) and len(now) > len(earlier)
    tx = pd.read_csv(a / "transactions.csv", parse_dates=["order_date"])
    assert tx["order_id"].is_unique
    assert tx["order_date"].max() < pd.Timestamp("2026-05-01")
    items = pd.read_csv(a / "items.csv")
    assert set(items["order_id"]) == set(tx["order_id"])


def test_a_month_without_a_campaign_buys_at_the_demo_base_rate(world):
    eligible = world.segments(APRIL[0])
    holdout = eligible.assign(arm="control")
    month = world.simulate(*APRIL, holdout)
    pd.testing.assert_frame_equal(month.transactions, world.simulate(*APRIL).transactions)
    converted = _converted(world, month, eligible)
    # the world's own truth: a Poisson-binomial count
    p = world.base_probability(*APRIL)[world._rows(eligible)]
    assert abs(converted.sum() - p.sum()) <= 3 * np.sqrt(np.sum(p * (1 - p)))
    # the demo's March base rate (expected conversion without the campaign of those it assigned)
    effects = world.demo.effects
    march = float(np.average(effects["control_rate"], weights=effects["n"]))
    assert abs(converted.mean() - march) <= 3 * np.sqrt(march * (1 - march) / len(converted))
    # customers age: nobody comes back once gone
    after = DemoWorld(seed=0, n_customers=6_000)
    after.advance(*APRIL, holdout)
    assert (after.alive("2026-05-01") <= world.alive(APRIL[0])).all()
    assert after.alive("2026-05-01").sum() < world.alive(APRIL[0]).sum()


def test_a_treated_arms_measured_lift_matches_the_true_uplift(world):
    eligible = world.segments(APRIL[0])
    arms = {"control": 0.34, "sms": 0.33, "wecom": 0.33}
    assignments = assign.randomise(eligible, arms, seed=5)
    month = world.simulate(*APRIL, assignments)
    outcomes = assignments.assign(converted=_converted(world, month, assignments))
    measured = lift.bayesian_lift(outcomes, metrics="converted").table.set_index("arm")
    truth = world.true_effects(assignments, *APRIL)
    for arm in ("sms", "wecom"):
        rows = truth[truth["arm"] == arm]
        true = np.average(rows["abs_lift"], weights=rows["n"])
        low, high = measured.loc[arm, ["abs_lift_low", "abs_lift_high"]]
        assert low <= true <= high, (arm, low, true, high)


#: the loop runs on the demo's own size: with fewer customers the 10% holdout is too small for the
#: Act step to tell the arms apart in one month (at 6,000 customers it holds about 260 people)
LOOP_CUSTOMERS = 20_000


def test_the_loop_learns(tmp_path):
    """Three cycles, each Checked and Acted on from its folder: the worse arm goes, the audience
    moves toward the segments the kept arm truly moves, and the true margin per contact rises."""
    world = DemoWorld(seed=0, n_customers=LOOP_CUSTOMERS)
    folder = world.write_demo(tmp_path / "cycle1")
    cycles = []
    for cycle in (1, 2, 3):
        plan = Plan.from_yaml(folder / "plan.yaml")
        assert plan.cycle == cycle
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data = pdca.load(plan)
            result = pdca.check(plan, data)
        assert not result.srm["mismatch"]
        upcoming = pdca.act(result)
        assert upcoming.status == "ready"
        truth = DemoWorld.from_folder(folder, seed=0)
        start, end = plan.period.start, plan.period.end
        segment = data.assignments["segment"]
        cycles.append(
            {
                "arms": plan.treated_arms,
                "audience": sorted(set(segment)),
                "wecom_uplift": float(np.mean([TRUE_UPLIFT["wecom", s] for s in segment])),
                "margin": truth.true_margin(data.assignments, start, end, cost=plan.cost),
                "dropped": [c.field for c in upcoming.changes if c.to == "dropped"],
            }
        )
        if cycle < 3:
            folder = next_cycle(folder, upcoming, tmp_path / f"cycle{cycle + 1}", seed=0)
    first, last = cycles[0], cycles[-1]
    assert first["arms"] == ["sms", "wecom"] and first["dropped"] == ["arms.sms"]
    assert all(c["arms"] == ["wecom"] for c in cycles[1:])
    assert "at_risk" in last["audience"] and "active" not in last["audience"]
    assert last["wecom_uplift"] > first["wecom_uplift"]
    assert last["margin"] > first["margin"]
