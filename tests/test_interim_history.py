"""Interim Checks: the pace shaped by the baseline's daily curve, and the history week by week."""

from __future__ import annotations

import pandas as pd
import pytest

from closedloop import ledger, pdca
from closedloop.plan import Plan
from closedloop.progress import baseline_shares
from closedloop.scorecard import score, share_by_now

pytestmark = pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")

# 2026-01-01 is a Thursday, 2026-03-01 a Sunday. Assigned a, b, c, d, e (e never buys); x bought
# but was not assigned. Over the baseline Jan 1-14 the assigned customers buy on Thursdays (2 on
# Jan 1, 2 on Jan 8: 2 a Thursday on average) and Saturdays (1 on Jan 3, 1 on Jan 10)
TX = pd.DataFrame(
    {
        "order_id": [f"o{i}" for i in range(8)],
        "customer_id": ["a", "b", "c", "d", "a", "b", "x", "c"],
        "order_date": pd.to_datetime(
            [
                "2026-01-01 09:00",
                "2026-01-01 10:00",
                "2026-01-03 11:00",
                "2026-01-08 12:00",
                "2026-01-08 13:00",
                "2026-01-10 14:00",
                "2026-01-06 15:00",
                "2026-01-20 16:00",  # after the baseline
            ]
        ),
        "amount": [10.0, 30.0, 20.0, 40.0, 20.0, 40.0, 999.0, 5.0],
    }
)
ASSIGNED = pd.DataFrame({"customer_id": list("abcde"), "arm": ["control", *"tttt"]})
BASELINE, PERIOD = ("2026-01-01", "2026-01-14"), ("2026-03-01", "2026-03-10")


def test_the_baseline_week_by_hand():
    # the period Mar 1-10 has one Thursday (Mar 5, weight 2 purchases) and one Saturday (Mar 7,
    # weight 1): by Mar 5, 2 of 3; revenue per Thursday (40 + 60) / 2 = 50, per Saturday
    # (20 + 40) / 2 = 30: 50 of 80
    by_5 = baseline_shares(ASSIGNED, TX, BASELINE, PERIOD, "2026-03-05")
    assert by_5 == pytest.approx({"purchases": 2 / 3, "revenue": 50 / 80})
    by_7 = baseline_shares(ASSIGNED, TX, BASELINE, PERIOD, "2026-03-07")
    assert by_7 == pytest.approx({"purchases": 1.0, "revenue": 1.0})
    # nothing expected before the Thursday: no pace from this curve (pro rata instead)
    assert baseline_shares(ASSIGNED, TX, BASELINE, PERIOD, "2026-03-04") == {}
    # a flat week gives pro rata: everyone buys 1 every day of a 7-day baseline
    flat = pd.DataFrame(
        {
            "order_id": [f"f{i}" for i in range(35)],
            "customer_id": list("abcde") * 7,
            "order_date": pd.to_datetime(
                [f"2026-01-{d:02d} 12:00" for d in range(1, 8) for _ in range(5)]
            ),
            "amount": 10.0,
        }
    )
    shares = baseline_shares(ASSIGNED, flat, ("2026-01-01", "2026-01-07"), PERIOD, "2026-03-04")
    assert shares == pytest.approx({"purchases": 0.4, "revenue": 0.4})
    # the transactions start after the baseline does, or end before it does; a baseline
    # shorter than a week: pro rata
    assert baseline_shares(ASSIGNED, TX, ("2025-12-25", "2026-01-14"), PERIOD, "2026-03-05") is None
    assert baseline_shares(ASSIGNED, TX, ("2026-01-01", "2026-01-31"), PERIOD, "2026-03-05") is None
    assert baseline_shares(ASSIGNED, TX, ("2026-01-01", "2026-01-05"), PERIOD, "2026-03-05") is None


def test_a_shaped_share_sets_expected_by_now_and_the_projection():
    both = {"purchases": 0.75, "revenue": 0.8}
    assert share_by_now("conversion_rate", 0.5, both) == 0.75
    assert share_by_now("incremental_revenue", 0.5, both) == 0.8
    assert share_by_now("funnel_visit", 0.5, {"revenue": 0.8}) == 0.5  # no purchases curve
    assert share_by_now("relative_lift", 0.5, both) == 1.0
    outcomes = pd.DataFrame(
        {
            "arm": ["control"] * 100 + ["t"] * 100,
            "converted": [0] * 90 + [1] * 10 + [1] * 30 + [0] * 70,
        }
    )
    from closedloop.lift import bayesian_lift

    lift = bayesian_lift(outcomes, metrics="converted")
    plan = Plan.parse(
        {
            "campaign": "c",
            "objective": "convert",
            "period": {"start": "2026-03-01", "end": "2026-03-10"},
            "arms": {"control": 0.5, "t": 0.5},
            "targets": {"conversion_rate": 0.4},
            "data": {"assignments": "a.csv", "outcomes": "o.csv"},
        }
    )
    card = score(plan, outcomes, lift, elapsed=0.5, shares={"purchases": 0.75}).iloc[0]
    assert card["expected_by_now"] == pytest.approx(0.4 * 0.75)
    assert card["projected"] == pytest.approx(0.30 / 0.75)
    assert "baseline's weekly curve" in card["basis"]
    plain = score(plan, outcomes, lift, elapsed=0.5).iloc[0]
    assert plain["expected_by_now"] == pytest.approx(0.2) and plain["projected"] == 0.6


def _demo_shares(demo, day: int) -> dict:
    """The share of March's purchases and revenue the first ``day`` days carry in the
    baseline's (January-February's) week, in plain pandas."""
    tx = pd.read_csv(demo / "transactions.csv", parse_dates=["order_date"])
    ids = set(pd.read_csv(demo / "assignments.csv", dtype={"customer_id": str})["customer_id"])
    base = tx[(tx["order_date"] >= "2026-01-01") & (tx["order_date"] < "2026-03-01")]
    base = base[base["customer_id"].isin(ids)].assign(d=lambda f: f["order_date"].dt.normalize())
    days = pd.date_range("2026-01-01", "2026-02-28")
    march = pd.date_range("2026-03-01", "2026-03-31")
    out = {}
    for name, per_day in (
        ("purchases", (base["amount"] >= 0).groupby(base["d"]).sum()),
        ("revenue", base.groupby("d")["amount"].sum()),
    ):
        per_day = per_day.reindex(days, fill_value=0)
        weekday = per_day.groupby(per_day.index.day_of_week).mean()
        weight = weekday.loc[march.day_of_week].to_numpy()
        out[name] = weight[:day].sum() / weight.sum()
    return out


def test_demo_interim_checks_expect_what_the_baseline_week_carries(interim_demo, interim_checks):
    final = interim_checks[31].scorecard.set_index("target")["actual"]
    for day in (7, 14, 21):
        shares = _demo_shares(interim_demo, day)
        card = interim_checks[day].scorecard.set_index("target")
        conversion, money = card.loc["conversion_rate"], card.loc["incremental_revenue"]
        assert conversion["expected_by_now"] == pytest.approx(0.25 * shares["purchases"], rel=1e-6)
        assert money["expected_by_now"] == pytest.approx(5000 * shares["revenue"], rel=1e-6)
        for row, target in ((conversion, "conversion_rate"), (money, "incremental_revenue")):
            assert row["projected_low"] <= final[target] <= row["projected_high"], (day, target)


def test_demo_history_shows_the_interim_weeks_inside_cycle_1(interim_checks, tmp_path):
    path = tmp_path / "ledger.csv"
    for day in (7, 14, 21):
        check = interim_checks[day]
        ledger.append_ledger(path, pdca.summary(check, pdca.act(check), f"day{day}"))
    final = interim_checks[31]
    runs = ledger.history(path, pdca.summary(final, pdca.act(final), "final"))
    assert list(dict.fromkeys(runs["run"])) == [
        "cycle 1 · week 1 (interim)",
        "cycle 1 · week 2 (interim)",
        "cycle 1 · week 3 (interim)",
        "cycle 1",
    ]
    conversion = runs[runs["target"] == "conversion_rate"]
    by_now = [
        interim_checks[d].scorecard.set_index("target").loc["conversion_rate"] for d in (7, 14, 21)
    ]
    assert conversion["target_value"].tolist()[:3] == pytest.approx(
        [r["expected_by_now"] for r in by_now]
    )
    assert conversion["status"].tolist()[:3] == [r["status"] for r in by_now]
    assert conversion["actual"].is_monotonic_increasing  # conversion so far only grows


def test_an_interim_run_counts_the_later_rows_without_calling_the_data_faulty(
    interim_demo, interim_checks
):
    """Rows dated after the as-of day are left out by the as-of rule: the data-quality table
    counts them (equal to a count in plain pandas), the status line says so, and nothing
    "needs attention" because of them."""
    import html

    from closedloop import sections

    tx = pd.read_csv(interim_demo / "transactions.csv", parse_dates=["order_date"])
    later = int((tx["order_date"] >= "2026-03-08").sum())
    quality = interim_checks[7].quality.set_index("table")
    assert later > 1_000 and quality.loc["transactions", "after_asof"] == later
    assert quality.loc["transactions", "rows_dropped"] == 0
    assert sections.quality_problems(interim_checks[7]) == []
    shown = html.unescape(sections.data_quality(interim_checks[7]).data)
    assert "needs attention" not in shown
    points = pd.read_csv(interim_demo / "points.csv")
    date = next(c for c in points.columns if "date" in c)
    later_points = int((pd.to_datetime(points[date]) >= "2026-03-08").sum())
    assert later_points > 0 and quality.loc["points", "after_asof"] == later_points
    total = int(quality["after_asof"].sum())  # every table's (events, points have later rows)
    assert f"{total:,} rows after the as-of day left out" in shown
    zh = html.unescape(sections.data_quality(interim_checks[7], "zh").data)
    assert f"截止日之后的 {total:,} 行" in zh and "需要注意" not in zh
