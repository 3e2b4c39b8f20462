"""After the campaign: a simulated campaign whose effect decays with a known half-life."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closedloop import act, follow_up, pdca
from closedloop.plan import Plan

START, END = pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-31")
PRE_DAYS, PERIOD_DAYS, AFTER_DAYS = 60, 31, 100
BASE, EXTRA, HALF_LIFE = 0.01, 0.02, 30.0  # purchases per customer-day; the half-life in days
#: a second arm pulls purchases forward: as strong in the period, fewer purchases afterwards
PULL_FORWARD = -0.004


def _extra(arm: str, day: np.ndarray) -> np.ndarray:
    """The arm's extra purchase rate on each day (0 = the period's first day)."""
    after = day - (PERIOD_DAYS - 1)  # 1 on the first day after the period
    if arm == "control":
        return np.zeros_like(day, dtype=float)
    if arm == "lasting":
        extra = np.where(after <= 0, EXTRA, EXTRA * 2.0 ** (-after / HALF_LIFE))
    else:
        extra = np.where(after <= 0, EXTRA, np.where(after <= 60, PULL_FORWARD, 0.0))
    return np.where(day < 0, 0.0, extra)  # before the period: no campaign


def expected_lift(arm: str, window: int) -> float:
    """The true extra purchases per customer in the first ``window`` days after the period."""
    days = np.arange(PERIOD_DAYS, PERIOD_DAYS + window)
    return float(_extra(arm, days).sum())


def simulate(n: int = 12_000, seed: int = 7, arms=("control", "lasting")):
    """Daily Poisson purchases of ``n`` customers split evenly over ``arms``, from 60 days before
    the period to 100 days after it; amounts 20-60."""
    rng = np.random.default_rng(seed)
    arm = np.array(arms)[np.arange(n) % len(arms)]
    days = np.arange(-PRE_DAYS, PERIOD_DAYS + AFTER_DAYS)
    rows = []
    for name in arms:
        who = np.flatnonzero(arm == name)
        rate = BASE + _extra(name, days)
        counts = rng.poisson(rate[None, :], size=(len(who), len(days)))
        c, d = np.nonzero(counts)
        k = counts[c, d]
        rows.append(pd.DataFrame({"customer": np.repeat(who[c], k), "day": np.repeat(days[d], k)}))
    bought = pd.concat(rows, ignore_index=True)
    tx = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in bought["customer"]],
            "order_date": START
            + pd.to_timedelta(bought["day"], unit="D")
            + pd.to_timedelta(rng.integers(8, 21, len(bought)), unit="h"),
            "amount": rng.uniform(20, 60, len(bought)).round(2),
        }
    )
    tx["order_id"] = [f"O{i:07d}" for i in range(len(tx))]
    assignments = pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)], "arm": arm})
    return assignments, tx.sort_values("order_date", ignore_index=True)


@pytest.fixture(scope="module")
def campaign():
    return simulate()


def test_the_measured_effect_follows_the_half_life_within_its_interval(campaign):
    assignments, tx = campaign
    result = follow_up.follow_up(
        assignments, tx, (START, END), [30, 60, 90], "control", END + pd.Timedelta(days=AFTER_DAYS)
    )
    assert result.reached == [30, 60, 90] and result.pending == []
    orders = result.table[result.table["metric"] == "orders"].set_index("days")
    truth = {w: expected_lift("lasting", w) for w in (30, 60, 90)}
    # the half-life: each further 30 days adds half of what the 30 before them added
    assert truth[60] - truth[30] == pytest.approx(truth[30] / 2)
    assert truth[90] - truth[60] == pytest.approx(truth[30] / 4)
    for window, true in truth.items():
        row = orders.loc[window]
        assert row["abs_lift_low"] <= true <= row["abs_lift_high"], (window, true, row)
    # the measure itself, recounted in pandas: purchases in the window per customer, by arm
    after = tx[
        (tx["order_date"] >= END + pd.Timedelta(days=1))
        & (tx["order_date"] < END + pd.Timedelta(days=31))
    ]
    per = after.groupby("customer_id").size().reindex(assignments["customer_id"], fill_value=0)
    means = per.groupby(assignments.set_index("customer_id")["arm"]).mean()
    assert orders.loc[30, "mean"] == pytest.approx(means["lasting"])
    assert orders.loc[30, "control_mean"] == pytest.approx(means["control"])
    # buyers of the period coming back: share of each arm who bought in both
    second = result.table[
        (result.table["metric"] == "second_purchase") & (result.table["days"] == 30)
    ]
    in_period = (tx["order_date"] >= START) & (tx["order_date"] < END + pd.Timedelta(days=1))
    during = tx.loc[in_period, "customer_id"]
    both = assignments["customer_id"].isin(set(during) & set(after["customer_id"]))
    expected = both.groupby(assignments["arm"]).mean()
    assert second["mean"].iloc[0] == pytest.approx(expected["lasting"])


def test_windows_the_data_does_not_reach_are_listed_not_measured(campaign):
    assignments, tx = campaign
    result = follow_up.follow_up(
        assignments, tx, (START, END), [30, 60, 90], "control", END + pd.Timedelta(days=45)
    )
    assert result.reached == [30] and result.pending == [60, 90]
    assert set(result.table["days"]) == {30}
    assert follow_up.lasting(result, "orders")["lasting"] > 0.99


def _check(assignments, tx, asof, follow_up_days=(30, 60, 90)):
    plan = Plan.parse(
        {
            "campaign": "decay",
            "objective": "convert",
            "period": {"start": START.date(), "end": END.date()},
            "arms": {"control": 1 / 3, "lasting": 1 / 3, "pulled": 1 / 3},
            "targets": {"conversion_rate": 0.2},
            "follow_up_days": list(follow_up_days),
            "data": {"assignments": "a.csv", "transactions": "t.csv"},
        }
    )
    outcomes = pdca._outcomes_from_transactions(tx, plan, asof)
    outcomes = assignments.merge(outcomes, on="customer_id", how="left").fillna(0)
    data = pdca.CampaignData(
        assignments, outcomes, tx[tx["order_date"] < pd.Timestamp(asof) + pd.Timedelta(days=1)]
    )
    return pdca.check(plan, data, asof=asof)


def test_the_act_step_prefers_the_arm_whose_effect_lasted():
    assignments, tx = simulate(n=15_000, arms=("control", "lasting", "pulled"))
    at_end = _check(assignments, tx, END)
    assert at_end.follow_up.reached == [] and at_end.follow_up.pending == [30, 60, 90]
    kept = act.decide(at_end).kept
    assert kept == ["lasting", "pulled"]  # both moved the period's purchases alike
    later = _check(assignments, tx, END + pd.Timedelta(days=65))
    assert later.follow_up.reached == [30, 60]
    decided = act.decide(later)
    assert decided.kept == ["lasting"]
    (dropped,) = [c for c in decided.changes if c.field == "arms.pulled"]
    assert "did not last" in dropped.reason and "60 days after the period" in dropped.reason
    record = pdca.summary(later, act.next_plan(later), "r1")
    assert record["follow_up"]["reached"] == [30, 60]
    assert record["follow_up"]["not_reached"] == [90]
    assert {r["metric"] for r in record["follow_up"]["lift"]} == set(follow_up.FOLLOW_UP_METRICS)


def test_the_report_says_which_windows_are_reached_and_shows_their_lift(tmp_path):
    from closedloop import sections

    assignments, tx = simulate(n=6_000, arms=("control", "lasting", "pulled"))
    check = _check(assignments, tx, END + pd.Timedelta(days=40))
    assert "follow_up" in sections.shown(check)
    parts = sections.follow_up(check, "en", tmp_path)
    text = " ".join(str(getattr(p, "data", p)) for p in parts)
    assert "Measured 30 days after the period" in text
    assert "Not yet reached (days, last day): 60 (2026-05-30), 90 (2026-06-29)" in text
    assert "lasting: P(spend above the holdout in the 30 days after the period)" in text
    assert (tmp_path / "figures" / "follow_up.png").exists()
    assert text.count("<tr") == 1 + 2 * len(follow_up.FOLLOW_UP_METRICS)  # header, 2 arms
    zh = " ".join(str(getattr(p, "data", p)) for p in sections.follow_up(check, "zh", tmp_path))
    assert "尚未到达的时间窗" in zh and "活动结束后 30 天内消费额优于对照组的概率" in zh
    without = _check(assignments, tx, END, follow_up_days=())
    assert without.follow_up is None and sections.follow_up(without) == ()
