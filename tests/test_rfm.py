"""closedloop.rfm: hand-computed cases, properties, backends and CDNOW against plain pandas."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from closedloop import DataError, _frames, rfm
from closedloop.datasets import cdnow
from closedloop.io import DataWarning

ASOF = "2026-03-31"


def tx(rows, **extra) -> pd.DataFrame:
    """Transactions from (customer_id, date, amount) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])
    frame["order_date"] = pd.to_datetime(frame["order_date"]).astype("datetime64[ns]")
    frame["amount"] = frame["amount"].astype(float)
    return frame.assign(**extra)


SMALL = tx(
    [
        ("a", "2026-03-31", 100),  # bought on asof: recency 0
        ("a", "2026-03-01", 50),
        ("b", "2026-02-01", 20),
        ("c", "2025-12-31", 10),
        ("c", "2026-01-10", 10),
        ("c", "2026-01-20", 10),
        ("d", "2025-03-31", 500),
        ("e", "2026-04-01", 999),  # after asof: ignored
    ]
)


# --- quantile scores -----------------------------------------------------------------------


def test_quantile_score_by_hand_with_ties():
    # ranks (min rule) 1,1,1,4,5 of n=5 -> 1 + 5*(2*rank-1)//10
    assert rfm.quantile_score([3, 1, 1, 2, 1]).tolist() == [5, 1, 1, 4, 1]
    assert rfm.quantile_score(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_quantile_score_properties(values, rnd):
    scores = rfm.quantile_score(values)
    assert scores.min() >= 1 and scores.max() <= rfm.SCORE_LEVELS
    v = np.asarray(values)
    # monotone, and equal values share a score
    for i in range(len(v)):
        assert (scores[v == v[i]] == scores[i]).all()
        assert (scores[v > v[i]] >= scores[i]).all()
    # independent of row order
    order = list(range(len(v)))
    rnd.shuffle(order)
    assert (rfm.quantile_score(v[order]) == scores[order]).all()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=80),
    st.sampled_from([rfm.PYRAMID_CUTS, (0.05, 0.2, 1.0), (0.5, 1.0), (0.01, 0.99, 1.0)]),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_tiers_and_scores_equal_a_full_sort(values, cuts, shuffled, rnd):
    """Tiers and scores read off order statistics give what ranking every row gives."""
    ids = [f"c{i:03d}" for i in range(len(values))]
    if shuffled:
        rnd.shuffle(ids)
    table = pd.DataFrame({"revenue": np.asarray(values, float)}, index=pd.Index(ids))
    ranked = (
        table.rename_axis("id")
        .reset_index()
        .sort_values(["revenue", "id"], ascending=[False, True])
    )
    rank = pd.Series(np.arange(1, len(table) + 1), index=ranked["id"]).reindex(table.index)
    bounds = np.floor(np.asarray(cuts) * len(table) + 1e-9)
    expected = np.searchsorted(bounds, rank.to_numpy(), side="left")
    assert (rfm.tier_of(table, cuts=cuts).cat.codes.to_numpy() == expected).all()
    ranks = stats.rankdata(values, method="min").astype("int64")  # the documented rule
    expected_scores = 1 + (rfm.SCORE_LEVELS * (2 * ranks - 1)) // (2 * len(values))
    assert (rfm.quantile_score(np.asarray(values, float)) == expected_scores).all()


# --- rfm_table --------------------------------------------------------------------------------


def test_rfm_table_by_hand():
    table = rfm.rfm_table(SMALL, ASOF, monetary="total")
    assert list(table.index) == ["a", "b", "c", "d"]
    assert table["recency_days"].tolist() == [0, 58, 70, 365]
    assert table["frequency"].tolist() == [2, 1, 3, 1]
    assert table["revenue"].tolist() == [150, 20, 30, 500]
    assert table["monetary"].tolist() == [150, 20, 30, 500]
    assert table["avg_ticket"].tolist() == [75, 20, 10, 500]
    # 4 customers: rank r -> 1 + 5*(2r-1)//8 = 1, 2, 4, 5; R ranks recent first; the two
    # one-order customers tie at rank 1
    assert table["R"].tolist() == [5, 4, 2, 1]
    assert table["F"].tolist() == [4, 1, 5, 1]
    assert table["M"].tolist() == [4, 1, 2, 5]
    assert table["rfm_code"].tolist() == ["544", "411", "252", "115"]
    assert table.loc["a", "first_purchase"] == pd.Timestamp("2026-03-01")
    assert table.loc["d", "last_purchase"] == pd.Timestamp("2025-03-31")
    # segment map: R5 F4 champions, R4 F1 promising, R2 F5 cant_lose, R1 F1 lost
    assert table["segment"].astype(str).tolist() == [
        "champions",
        "promising",
        "cant_lose",
        "lost",
    ]
    assert table.attrs["monetary"] == "total"


def test_monetary_is_the_average_per_transaction_by_default():
    """The method (§5) defines M as the average amount per transaction; the table says which."""
    table = rfm.rfm_table(SMALL, ASOF)
    assert table["monetary"].tolist() == [75, 20, 10, 500]  # revenue / orders
    assert table["monetary"].tolist() == table["avg_ticket"].tolist()
    assert table["M"].tolist() == [4, 2, 1, 5]
    assert table.attrs["monetary"] == "average"
    pd.testing.assert_frame_equal(table, rfm.rfm_table(SMALL, ASOF, monetary="average"))
    total = rfm.rfm_table(SMALL, ASOF, monetary="total")
    assert total.attrs["monetary"] == "total" and total["monetary"].tolist() == [150, 20, 30, 500]
    # the pyramid ranks by total spend whatever M is
    pd.testing.assert_frame_equal(rfm.pyramid(table), rfm.pyramid(total))


def test_rfm_table_period_and_orders():
    # the last 90 days to asof: d's order of a year ago and c's first order drop out of the window
    table = rfm.rfm_table(SMALL, ASOF, period_days=90)
    assert list(table.index) == ["a", "b", "c"]
    assert table.loc["c", "frequency"] == 2
    # rows sharing an order_id are one order
    lines = tx([("a", "2026-03-01", 5), ("a", "2026-03-01", 7), ("a", "2026-03-05", 1)])
    lines["order_id"] = ["o1", "o1", "o2"]
    one = rfm.rfm_table(lines, ASOF)
    assert one.loc["a", "frequency"] == 2 and one.loc["a", "revenue"] == 13


@pytest.mark.parametrize("engine", _frames.PANDAS_ENGINES)
def test_rfm_table_same_from_pandas_polars_duckdb(engine, monkeypatch):
    ours = rfm.rfm_table(SMALL, ASOF)
    churn = rfm.churn_severity(SMALL, ASOF)
    with monkeypatch.context() as patch:  # every engine that can aggregate a pandas frame
        patch.setattr(_frames, "PANDAS_ENGINE", engine)
        pd.testing.assert_frame_equal(ours, rfm.rfm_table(SMALL, ASOF))
        pd.testing.assert_frame_equal(churn, rfm.churn_severity(SMALL, ASOF))
    from_polars = rfm.rfm_table(pl.from_pandas(SMALL), ASOF)
    relation = duckdb.from_df(SMALL)
    from_duckdb = rfm.rfm_table(relation, ASOF)
    pd.testing.assert_frame_equal(ours, from_polars)
    pd.testing.assert_frame_equal(ours, from_duckdb)


def test_rfm_table_bad_input():
    with pytest.raises(DataError, match=r"required column.*amount missing"):
        rfm.rfm_table(SMALL.drop(columns="amount"), ASOF)
    with pytest.raises(DataError, match="monetary must be 'total' or 'average'"):
        rfm.rfm_table(SMALL, ASOF, monetary="mean")
    with pytest.raises(DataError, match="no purchases on or before asof 2020-01-01"):
        rfm.rfm_table(SMALL, "2020-01-01")
    with pytest.raises(DataError, match="asof is required"):
        rfm.rfm_table(SMALL, None)
    with pytest.raises(DataError, match="expected a pandas / polars DataFrame"):
        rfm.rfm_table([1, 2], ASOF)


def test_segment_map_partitions_the_grid_and_is_replaceable():
    grid, names = rfm._segment_lookup(rfm.SEGMENTS)
    assert (grid >= 0).all() and len(names) == 11
    two = pd.DataFrame(
        {"segment": ["hot", "cold"], "r_low": [4, 1], "r_high": [5, 3], "f_low": 1, "f_high": 5}
    )
    table = rfm.rfm_table(SMALL, ASOF, segments=two)
    assert table["segment"].astype(str).tolist() == ["hot", "hot", "cold", "cold"]
    gap = two.assign(r_high=[5, 2])
    with pytest.raises(DataError, match="cover each R x F cell exactly once; 5 cell"):
        rfm.rfm_table(SMALL, ASOF, segments=gap)


# --- pyramid ------------------------------------------------------------------------------------


def customers(values) -> pd.DataFrame:
    """A minimal rfm-like table: revenue and frequency per customer id c00, c01, ..."""
    values = np.asarray(values, dtype=float)
    ids = [f"c{i:02d}" for i in range(len(values))]
    return pd.DataFrame(
        {"revenue": values, "frequency": 1 + np.arange(len(values)) % 3}, index=ids
    ).rename_axis("customer_id")


def test_pyramid_by_hand():
    table = customers([10, 100, 40, 40, 5, 70, 20, 30, 60, 50])
    out = rfm.pyramid(table, cuts=(0.2, 0.5, 1.0))
    assert out["tier"].tolist() == ["top 20%", "20–50%", "50–100%"]
    assert out["customers"].tolist() == [2, 3, 5]
    assert out["revenue"].tolist() == [170, 150, 105]
    assert out["revenue_share"].tolist() == pytest.approx([170 / 425, 150 / 425, 105 / 425])
    assert out["threshold"].tolist() == [70, 40, 5]
    # tie at 40: c02 ranks before c03, so c03 is the first of the bottom tier... both sit at
    # ranks 5 and 6; the 20-50% tier is ranks 3-5
    tiers = rfm.tier_of(table, cuts=(0.2, 0.5, 1.0))
    assert tiers["c02"] == "20–50%" and tiers["c03"] == "50–100%"
    assert rfm.tier_labels() == ["top 2%", "2–5%", "5–10%", "10–15%", "15–20%", "20–100%"]


def test_pyramid_bad_cuts():
    with pytest.raises(DataError, match=r"cuts must increase within \(0, 1\] and end at 1\.0"):
        rfm.pyramid(customers([1, 2, 3]), cuts=(0.5, 0.9))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=80),
    st.lists(st.floats(0.01, 0.99), min_size=0, max_size=4),
)
def test_pyramid_properties(values, inner):
    table = customers(values)
    cuts = (*sorted(set(round(c, 2) for c in inner)), 1.0)
    out = rfm.pyramid(table, cuts=cuts)
    tiers = rfm.tier_of(table, cuts=cuts)
    # tiers partition the customers; heads follow the cuts exactly
    assert tiers.notna().all() and out["customers"].sum() == len(table)
    assert out["customers"].tolist() == tiers.value_counts(sort=False).tolist()
    bounds = np.floor(np.array(cuts) * len(table) + 1e-9)
    assert out["customers"].cumsum().tolist() == bounds.tolist()
    assert out["customer_share"].sum() == pytest.approx(1)
    if table["revenue"].sum() > 0:
        assert out["revenue_share"].sum() == pytest.approx(1)
        # higher tiers never have a customer worth less than a lower tier's
        mins = table.groupby(tiers, observed=True)["revenue"].min()
        maxs = table.groupby(tiers, observed=True)["revenue"].max()
        assert (mins.to_numpy()[:-1] >= maxs.to_numpy()[1:]).all()


def test_head_share_by_hand():
    table = customers([50, 30, 10, 10])
    points = rfm.head_share(table, (0.4, 0.5, 0.8, 1.0))
    assert points["customers"].tolist() == [1, 1, 2, 4]
    assert points["customer_share"].tolist() == [0.25, 0.25, 0.5, 1.0]
    curve = rfm.head_share_curve(table)
    assert curve["revenue_share"].tolist() == [0.5, 0.8, 0.9, 1.0]


def test_pyramid_over_time_by_hand():
    out = rfm.pyramid_over_time(SMALL, ASOF, period_days=None, freq="quarter", cuts=(0.25, 1.0))
    # d (500) is the top 25%; the rest is the bottom tier
    q1 = out[out["period"] == pd.Timestamp("2026-01-01")].set_index("tier")
    assert q1.loc["top 25%", "revenue"] == 0 and q1.loc["25–100%", "revenue"] == 190
    assert q1.loc["25–100%", "customers"] == 3 and q1.loc["25–100%", "orders"] == 5
    q2_2025 = out[out["period"] == pd.Timestamp("2025-01-01")].set_index("tier")
    assert q2_2025.loc["top 25%", "revenue"] == 500
    assert out.groupby("period")["revenue_share"].sum().dropna().tolist() == pytest.approx(
        [1.0, 1.0, 1.0]
    )
    with pytest.raises(DataError, match="freq must be 'month' or 'quarter'"):
        rfm.pyramid_over_time(SMALL, ASOF, freq="week")


# --- member tiers ---------------------------------------------------------------------------


def test_member_tiers_and_upgrade_candidates():
    table = customers(np.arange(20, 0, -1) * 10.0)  # c00 = 200 ... c19 = 10
    tiers = rfm.member_tiers(table)
    assert tiers.value_counts().to_dict() == {"regular": 16, "gold": 3, "platinum": 1}
    assert tiers["c00"] == "platinum" and tiers["c03"] == "gold" and tiers["c04"] == "regular"
    # thresholds: platinum 200, gold 170; within 20%: gold >= 160 and regular >= 136
    cand = rfm.upgrade_candidates(table, within=0.2, rank="value")
    assert cand.index.tolist() == ["c01", "c02", "c03", "c04", "c05", "c06"]
    assert cand["next_tier"].tolist() == ["platinum"] * 3 + ["gold"] * 3
    assert cand.loc["c04", "gap"] == 10 and cand.loc["c04", "threshold"] == 170
    assert cand.loc["c01", "gap_share"] == pytest.approx(10 / 200)


# --- lifecycle --------------------------------------------------------------------------------


def test_lifecycle_stage_by_hand():
    table = rfm.rfm_table(SMALL, ASOF)  # a: r0 f2 150, b: r58 f1, c: r70 f3 30, d: r365 f1 500
    people = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d", "z"], "referrer_id": [None, None, None, "b", "a"]}
    )
    stages = rfm.lifecycle_stage(table, people, basis="rules", valuable_share=0.5)
    # top 50% by revenue: d and a. a sticky and top: valuable, and a referrer: recommend.
    # b active, referred d: recommend. c sticky, not top: sticky. d not active: enter. z: enter
    assert stages.astype(str).to_dict() == {
        "a": "recommend",
        "b": "recommend",
        "c": "sticky",
        "d": "enter",
        "z": "enter",
    }
    with pytest.warns(DataWarning):
        plain = rfm.lifecycle_stage(
            table, people.drop(columns="referrer_id"), basis="rules", valuable_share=0.5
        )
    assert plain.astype(str).tolist() == ["valuable", "active", "sticky", "enter", "enter"]


def test_lifecycle_without_referrer_says_so():
    table = rfm.rfm_table(SMALL, ASOF)
    with pytest.warns(DataWarning, match="recommend stage .* not assigned"):
        stages = rfm.lifecycle_stage(table, basis="rules")
    assert "not assigned" in stages.attrs["recommend"]
    assert "recommend" not in set(stages.astype(str))


def test_lifecycle_stage_is_the_stage_of_the_pyramid_layer():
    """The method (§3, §9): the stages 进活粘值荐 correspond to pyramid layers from the bottom up.
    Top 2% 荐, 2–10% 值, 10–20% 粘, the 20–100% band 活 when active, else 进."""
    n = 100
    days = pd.Timestamp(ASOF) - pd.to_timedelta(np.arange(n) * 3, unit="D")
    # c000 spends most; every third customer is inactive (last purchase long ago)
    rows = [
        (f"c{i:03d}", days[i] if i % 3 else pd.Timestamp("2025-06-01"), 1000 - 10 * i)
        for i in range(n)
    ]
    table = rfm.rfm_table(tx(rows), ASOF)
    stages = rfm.lifecycle_stage(table)
    tiers = rfm.tier_of(table)
    expected = {
        "top 2%": "recommend",
        "2–5%": "valuable",
        "5–10%": "valuable",
        "10–15%": "sticky",
        "15–20%": "sticky",
    }
    active = table["recency_days"] <= rfm.ACTIVE_DAYS
    for cid in table.index:
        want = expected.get(tiers[cid]) or ("active" if active[cid] else "enter")
        assert stages[cid] == want, cid
    assert stages.value_counts().to_dict() == {
        "recommend": 2,
        "valuable": 8,
        "sticky": 10,
        "active": int(active.iloc[20:].sum()),
        "enter": int((~active.iloc[20:]).sum()),
    }
    assert stages.attrs["basis"] == "pyramid" and "top 2%" in stages.attrs["recommend"]
    # known customers who did not buy join the bottom band as 进, and count as heads
    people = pd.DataFrame({"customer_id": [*table.index, "z1", "z2"]})
    with_people = rfm.lifecycle_stage(table, people)
    assert with_people[["z1", "z2"]].astype(str).tolist() == ["enter", "enter"]
    assert len(with_people) == n + 2
    assert (with_people.drop(["z1", "z2"]) == stages).all()  # 2% of 102 is still 2 heads
    with pytest.raises(DataError, match="stages needs one of"):
        rfm.lifecycle_stage(table, stages=("recommend", "active"))


def test_pyramid_counts_members_who_did_not_buy():
    """The method's bottom band also holds members with little or no spend (§3, §9)."""
    table = customers([100, 80, 60, 40])  # c00..c03 bought
    members = pd.DataFrame({"customer_id": ["c00", "c01", "m1", "m2", "m3", "m4"]})
    full = rfm.with_members(table, members)
    assert full.attrs["members_added"] == 4 and len(full) == 8
    assert full.loc["m1", ["revenue", "frequency"]].tolist() == [0, 0]
    out = rfm.pyramid(table, cuts=(0.25, 0.5, 1.0), members=members)
    # 8 heads: top 25% = 2 (c00, c01), 25-50% = 2 (c02, c03), bottom = the 4 zero-spend members
    assert out["customers"].tolist() == [2, 2, 4]
    assert out["revenue"].tolist() == [180, 100, 0]
    assert out.loc[2, "threshold"] == 0 and out.loc[2, "avg_frequency"] == 0
    tiers = rfm.tier_of(table, cuts=(0.25, 0.5, 1.0), members=["m1", "c00"])
    assert tiers.index.tolist() == ["c00", "c01", "c02", "c03", "m1"]
    assert tiers["m1"] == "50–100%"
    # without members: only the buyers, as before
    assert rfm.pyramid(table, cuts=(0.25, 0.5, 1.0))["customers"].tolist() == [1, 1, 2]


def test_upgrade_candidates_by_chance_times_contribution():
    """The method (§5): target the highest chance of upgrading × the biggest contribution first.
    chance = P(Poisson(λ) >= ceil(gap / ticket)), λ = purchases per window repeated over the
    horizon; contribution = λ × ticket."""
    revenue = [500, 400, 300, 250, 240, 235, 230, 225, 220, 215, 210, 150, 140, 130, 120, 110]
    revenue += [100, 90, 80, 70]
    orders = [5] * 20
    orders[8], orders[10] = 1, 14  # c08: 220 in one order; c10: 210 in fourteen
    table = pd.DataFrame(
        {
            "frequency": orders,
            "revenue": np.asarray(revenue, float),
            "first_purchase": pd.Timestamp("2025-04-01"),
        },
        index=pd.Index([f"c{i:02d}" for i in range(20)], name="customer_id"),
    )
    table.attrs = {"asof": pd.Timestamp(ASOF), "period_days": 365}
    by_value = rfm.upgrade_candidates(table, rank="value")
    got = rfm.upgrade_candidates(table)
    assert set(got.index) == set(by_value.index) == {f"c{i:02d}" for i in (1, *range(4, 11))}
    # gold threshold 250 (c03): c08 needs 30, one order at its ticket of 220 (λ = 1 a year);
    # c10 needs 40, three orders at its ticket of 15 (λ = 14 a year)
    c08, c10 = got.loc["c08"], got.loc["c10"]
    assert c08["purchases_needed"] == 1 and c10["purchases_needed"] == 3
    assert c08["expected_purchases"] == 1 and c10["expected_purchases"] == 14
    assert c08["chance"] == pytest.approx(1 - np.exp(-1))
    assert c10["chance"] == pytest.approx(stats.poisson.sf(2, 14))
    assert c08["contribution"] == 220 and c10["contribution"] == 210
    assert got["priority"].tolist() == pytest.approx((got["chance"] * got["contribution"]).tolist())
    assert got["priority"].is_monotonic_decreasing
    assert got.index.get_loc("c10") < got.index.get_loc("c08")  # c08 is first by value
    assert by_value.index.get_loc("c08") < by_value.index.get_loc("c10")
    # a horizon of half the window halves λ
    half = rfm.upgrade_candidates(table, horizon_days=182.5)
    assert half.loc["c10", "expected_purchases"] == pytest.approx(7)

    class Model:  # a fitted ClvModel's interface: expected purchases in its time unit
        time_unit = "W"

        def expected_purchases(self, t):
            self.t = t
            return pd.Series(0.5, index=table.index)

    model = Model()
    from_model = rfm.upgrade_candidates(table, model=model)
    assert model.t == pytest.approx(365 / 7)
    assert (from_model["expected_purchases"] == 0.5).all()
    bare = table.drop(columns="first_purchase")
    bare.attrs = {}
    with pytest.raises(DataError, match="does not say its window"):
        rfm.upgrade_candidates(bare)
    # all history: the window runs from the table's first purchase to asof
    table.attrs = {"asof": pd.Timestamp(ASOF), "period_days": None}
    assert rfm.upgrade_candidates(table).loc["c10", "expected_purchases"] == 14


# --- churn ------------------------------------------------------------------------------------


def test_churn_severity_by_hand():
    def ago(n):
        return pd.Timestamp(ASOF) - pd.Timedelta(days=n)

    rows = []
    # a: every 10 days, last 16 days ago: rhythm 1.6 -> light
    rows += [("a", ago(16 + 10 * k), 10) for k in range(5)]
    # b: every 10 days, last 5 days ago: none
    rows += [("b", ago(5 + 10 * k), 10) for k in range(5)]
    # c: every 10 days, last 31 days ago: rhythm 3.1 -> heavy
    rows += [("c", ago(31 + 10 * k), 10) for k in range(3)]
    # d: one order 25 days ago, base rhythm = median gap 10 -> 2.5 -> medium
    rows += [("d", ago(25), 10)]
    # e: 6 orders 100..150 days ago (previous period), 1 order 2 days ago: fell by >50%
    rows += [("e", ago(100 + 10 * k), 10) for k in range(6)] + [("e", ago(2), 10)]
    out = rfm.churn_severity(tx(rows), ASOF, period_days=90, basis="rhythm")
    assert out["rhythm"].round(2).to_dict() == {
        "a": 1.6,
        "b": 0.5,
        "c": 3.1,
        "d": 2.5,
        "e": pytest.approx(2 / (148 / 6), abs=0.01),
    }
    assert out.loc["e", "orders_prev"] == 6 and out.loc["e", "orders_now"] == 1
    assert out["fell"].tolist() == [False, False, False, False, True]
    assert out["severity"].astype(str).tolist() == ["light", "none", "heavy", "medium", "light"]


def test_churn_by_periods_compares_f_and_m_between_two_periods():
    """The method (§5, §9): compare RFM between two periods; split the lapsing customers into
    light, medium and heavy churn. Rule: fall = max(1 - F_now / F_prev, 1 - M_now / M_prev);
    >= 0.25 light, >= 0.5 medium, 1 (nothing bought now) heavy."""

    def ago(n):
        return pd.Timestamp(ASOF) - pd.Timedelta(days=n)

    now, prev = [5, 20, 40, 60], [100, 120, 140, 160]  # days ago: this period, the one before
    rows = []
    rows += [("a", ago(d), 10) for d in prev] + [("a", ago(d), 10) for d in now]  # steady
    rows += [("b", ago(d), 10) for d in prev] + [("b", ago(d), 10) for d in now[:3]]  # F -25%
    rows += [("c", ago(d), 10) for d in prev[:2]] + [("c", ago(d), 4) for d in now[:2]]  # M -60%
    rows += [("d", ago(d), 10) for d in prev[:3]]  # bought nothing this period
    rows += [("e", ago(3), 10)]  # new this period: no fall to measure
    rows += [("f", ago(300), 10)]  # lapsed before the previous period
    rows += [("g", ago(d), 10) for d in prev] + [("g", ago(8), 60)]  # F -75%, M up
    rows += [("h", ago(d), 10) for d in prev[:2]] + [("h", ago(d), 8.5) for d in now[:2]]  # -15%
    out = rfm.churn_severity(tx(rows), ASOF, period_days=90)
    assert out.attrs["basis"] == "periods"
    assert out["severity"].astype(str).to_dict() == {
        "a": "none",
        "b": "light",
        "c": "medium",
        "d": "heavy",
        "e": "none",
        "f": "heavy",
        "g": "medium",
        "h": "none",
    }
    assert out.loc["b", "orders_fall"] == pytest.approx(0.25)
    assert out.loc["c", "revenue_fall"] == pytest.approx(0.6)
    assert out.loc["g", "fall"] == pytest.approx(0.75) and out.loc["g", "revenue_fall"] == 0
    assert out.loc["d", "fall"] == 1.0 and out.loc["d", "revenue_now"] == 0
    assert np.isnan(out.loc["e", "fall"]) and not out.loc["e", "lapsed_before"]
    assert out.loc["f", "lapsed_before"] and np.isnan(out.loc["f", "fall"])
    assert out.loc["h", "fall"] == pytest.approx(0.15)
    stricter = rfm.churn_severity(tx(rows), ASOF, period_days=90, falls=(0.1, 0.5, 1.0))
    assert stricter.loc["h", "severity"] == "light"
    with pytest.raises(DataError, match="falls needs 3 increasing"):
        rfm.churn_severity(tx(rows), ASOF, falls=(0.5, 0.25, 1.0))
    with pytest.raises(DataError, match="basis must be"):
        rfm.churn_severity(tx(rows), ASOF, basis="rfm")


def test_churn_severity_needs_a_rhythm():
    with pytest.raises(DataError, match="no customer has two orders"):
        rfm.churn_severity(
            tx([("a", "2026-01-01", 1), ("b", "2026-02-01", 1)]), ASOF, basis="rhythm"
        )


# --- migration --------------------------------------------------------------------------------


def test_migration_by_hand():
    before = pd.DataFrame(
        {"segment": ["x", "x", "y"], "revenue": [1.0, 2.0, 4.0]}, index=["a", "b", "c"]
    )
    after = pd.DataFrame(
        {"segment": ["y", "x", "y"], "revenue": [10.0, 20.0, 40.0]}, index=["a", "c", "d"]
    )
    mig = rfm.migration(before, after)
    assert mig.counts.to_dict(orient="index") == {
        "x": {"x": 0, "y": 1, rfm.ABSENT: 1},
        "y": {"x": 1, "y": 0, rfm.ABSENT: 0},
        rfm.ABSENT: {"x": 0, "y": 1, rfm.ABSENT: 0},
    }
    assert mig.revenue_after.loc["x", "y"] == 10 and mig.revenue_after.loc[rfm.ABSENT, "y"] == 40
    assert mig.revenue_before.loc["x", rfm.ABSENT] == 2
    with pytest.raises(DataError, match=r"migration after.*tier missing"):
        rfm.migration(before.assign(tier=1), after, by="tier")


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.integers(0, 40), st.sampled_from("abc"), max_size=30),
    st.dictionaries(st.integers(0, 40), st.sampled_from("abcd"), max_size=30),
)
def test_migration_rows_sum_to_before_counts(before, after):
    def table(mapping):
        ids = [f"c{k:02d}" for k in mapping]
        return pd.DataFrame({"tier": list(mapping.values()), "revenue": 1.0}, index=ids)

    b, a = table(before), table(after)
    mig = rfm.migration(b, a, by="tier")
    rows = mig.counts.drop(index=rfm.ABSENT).sum(axis=1)
    expected = b["tier"].value_counts().reindex(rows.index, fill_value=0)
    assert rows.tolist() == expected.tolist()
    cols = mig.counts.drop(columns=rfm.ABSENT).sum(axis=0)
    assert cols.tolist() == a["tier"].value_counts().reindex(cols.index, fill_value=0).tolist()
    assert mig.revenue_before.to_numpy().sum() == pytest.approx(len(b))


# --- CDNOW against plain pandas ---------------------------------------------------------------

CDNOW_ASOF = pd.Timestamp("1998-06-30")


@pytest.fixture(scope="module")
def cdnow_tx() -> pd.DataFrame:
    return cdnow()


@pytest.fixture(scope="module")
def cdnow_rfm(cdnow_tx) -> pd.DataFrame:
    return rfm.rfm_table(cdnow_tx, CDNOW_ASOF, monetary="total")


def _plain_per_customer(frame: pd.DataFrame) -> pd.DataFrame:
    per = frame.groupby("customer_id").agg(
        revenue=("amount", "sum"), orders=("amount", "size"), last=("order_date", "max")
    )
    # rank by revenue, highest first, equal revenue by id
    return per.reset_index().sort_values(["revenue", "customer_id"], ascending=[False, True])


def test_cdnow_pyramid_and_head_share_match_plain_pandas(cdnow_tx, cdnow_rfm):
    assert len(cdnow_rfm) == 23_570
    assert cdnow_rfm["revenue"].sum() == pytest.approx(2_500_315.63)
    per = _plain_per_customer(cdnow_tx)
    n = len(per)
    position = np.arange(1, n + 1)
    edges = [0, 471, 1178, 2357, 3535, 4714, n]  # 2%, 5%, 10%, 15%, 20% of 23,570, floored
    tier = pd.cut(position, edges, labels=False)
    plain = per.groupby(tier).agg(customers=("revenue", "size"), revenue=("revenue", "sum"))
    ours = rfm.pyramid(cdnow_rfm)
    assert ours["customers"].tolist() == plain["customers"].tolist()
    assert ours["revenue"].to_numpy() == pytest.approx(plain["revenue"].to_numpy())
    assert ours["revenue_share"].to_numpy() == pytest.approx(
        (plain["revenue"] / per["revenue"].sum()).to_numpy()
    )
    # the head-share curve at 40 / 50 / 80% of revenue
    cumulative = per["revenue"].cumsum() / per["revenue"].sum()
    plain_heads = [int((cumulative < s).sum()) + 1 for s in (0.4, 0.5, 0.8)]
    assert rfm.head_share(cdnow_rfm)["customers"].tolist() == plain_heads
    # the top 2% of CDNOW's customers make close to a quarter of its revenue
    assert 0.2 < ours["revenue_share"].iloc[0] < 0.25


def test_cdnow_rfm_heatmap_matches_plain_pandas(cdnow_tx, cdnow_rfm):
    per = cdnow_tx.groupby("customer_id").agg(
        revenue=("amount", "sum"), orders=("amount", "size"), last=("order_date", "max")
    )
    n = len(per)
    recency = (CDNOW_ASOF - per["last"]).dt.days

    def score(s):
        return 1 + (5 * (2 * s.rank(method="min").astype(int) - 1)) // (2 * n)

    plain = pd.DataFrame({"R": score(-recency), "F": score(per["orders"]), "m": per["revenue"]})
    grid = plain.pivot_table(index="R", columns="F", values="m", aggfunc="mean")
    ours = cdnow_rfm.pivot_table(index="R", columns="F", values="monetary", aggfunc="mean")
    pd.testing.assert_frame_equal(ours, grid, check_names=False)
    # half of CDNOW's customers bought once: the tie rule puts them all at F = 1
    assert (cdnow_rfm["F"] == 1).sum() == (per["orders"] == 1).sum() == 11_908


def test_cdnow_migration_matches_crosstab(cdnow_tx):
    before = rfm.rfm_table(cdnow_tx, "1997-12-31", period_days=180)
    after = rfm.rfm_table(cdnow_tx, CDNOW_ASOF, period_days=180)
    both = pd.merge(
        before[["segment"]],
        after[["segment"]],
        how="outer",
        on="customer_id",
        suffixes=("_b", "_a"),
    )
    both = both.astype(object).fillna(rfm.ABSENT)
    plain = pd.crosstab(both["segment_b"], both["segment_a"])
    mig = rfm.migration(before, after)
    for src in plain.index:
        for dst in plain.columns:
            assert mig.counts.loc[src, dst] == plain.loc[src, dst]
    assert mig.counts.to_numpy().sum() == len(both)
