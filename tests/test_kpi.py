"""closedloop.kpi: the KPI tree by hand, its identity as a property, and the touch schedule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop import DataError, kpi

PERIOD = ("2026-03-01", "2026-03-31")  # previous period of equal length: 2026-01-29..02-28

TX = pd.DataFrame(
    {
        "customer_id": ["m1", "m1", "m1", "m2", "m3", "n1", "m1"],
        "order_date": pd.to_datetime(
            [
                "2026-02-10",
                "2026-03-02",
                "2026-03-20",
                "2026-03-05",
                "2026-02-15",
                "2026-03-10",
                "2026-04-02",  # after the period: ignored
            ]
        ).astype("datetime64[ns]"),
        "amount": [10.0, 30.0, 50.0, 20.0, 15.0, 100.0, 999.0],
        "quantity": [1.0, 2.0, 3.0, 1.0, 1.0, 4.0, 9.0],
    }
)
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["m1", "m2", "m3", "m4", "n1"],
        "is_member": [True, True, True, True, False],
        "online": [True, False, True, True, True],
    }
)


def test_member_kpis_by_hand():
    out = kpi.member_kpis(TX, CUSTOMERS, PERIOD)
    assert out.index.tolist() == list(kpi.KPI_TERMS)
    assert out.loc["member_share", "term"] == "会员占比"
    expected = {
        # all members m1..m4; orders in period: m1 2, m2 1, n1 1 (not a member)
        "all": [4, 3 / 4, 3 / 4, 2, 3 / 2, 100 / 3, 100, 25, 1 / 2, 6 / 3, 1 / 2],
        # m2: first purchase in the period
        "new": [1, 1 / 4, 0, 1, 1, 20, 20, 20, 0, 1, np.nan],
        # m1 and m3 bought before; both active in the previous period, m3 lapsed
        "existing": [2, 2 / 4, 1, 1, 2, 40, 80, 40, 1, 5 / 2, 1 / 2],
    }
    for group, values in expected.items():
        assert out[group].to_numpy(float) == pytest.approx(np.array(values), nan_ok=True), group
    # m4 has not bought yet: the members of the three columns add up to all four
    assert out.loc["members", "not_yet"] == 1
    assert out.loc["members", ["new", "existing", "not_yet"]].sum() == out.loc["members", "all"]
    assert out.attrs["members"] == "customers.is_member"


def test_member_kpis_membership_from_order_flags_and_polars():
    flagged = TX.assign(is_member=[True, True, False, True, True, False, True])
    out = kpi.member_kpis(pl.from_pandas(flagged), None, PERIOD)
    # members: m1, m2, m3 (a flagged order each); member share counts flagged orders: 2 of 4
    assert out.loc["members", "all"] == 3
    assert out.loc["member_share", "all"] == 0.5
    assert np.isnan(out.loc["online_rate", "all"])
    assert out.attrs["members"].startswith("transactions.is_member")
    everyone = kpi.member_kpis(TX, None, PERIOD)
    assert everyone.loc["members", "all"] == 4 and everyone.loc["member_share", "all"] == 1.0


def test_member_kpis_bad_input():
    with pytest.raises(DataError, match=r"period must be \(start, end\)"):
        kpi.member_kpis(TX, CUSTOMERS, None)
    with pytest.raises(DataError, match=r"period ends \(2026-01-01\) before it starts"):
        kpi.member_kpis(TX, CUSTOMERS, ("2026-03-01", "2026-01-01"))
    with pytest.raises(DataError, match=r"required column.*order_date missing"):
        kpi.member_kpis(TX.drop(columns="order_date"), CUSTOMERS, PERIOD)
    with pytest.raises(DataError, match="customer_id missing"):
        kpi.member_kpis(TX, CUSTOMERS.rename(columns={"customer_id": "id"}), PERIOD)


@st.composite
def shops(draw):
    n = draw(st.integers(1, 40))
    ids = draw(st.lists(st.sampled_from([f"c{i}" for i in range(8)]), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    amounts = draw(st.lists(st.floats(0.5, 500), min_size=n, max_size=n))
    flags = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "customer_id": ids,
            "order_date": (pd.Timestamp("2026-01-01") + pd.to_timedelta(days, unit="D")).astype(
                "datetime64[ns]"
            ),
            "amount": amounts,
            "is_member": flags,
        }
    )


@settings(max_examples=60, deadline=None)
@given(shops())
def test_contribution_identity_holds(frame):
    out = kpi.member_kpis(frame, None, ("2026-03-01", "2026-04-30"))
    for group in out.columns.drop("term"):
        col = out[group]
        if col["active_members"] > 0:
            product = col["active_members"] * col["purchase_frequency"] * col["avg_ticket"]
            assert product == pytest.approx(col["contribution"])
        else:
            assert col["contribution"] == 0
        for rate in ("member_share", "repurchase_rate", "churn_rate"):
            assert np.isnan(col[rate]) or 0 <= col[rate] <= 1
    # new, existing and not-yet-bought members split the counts, the contribution and the
    # member orders: the tree's columns add up to all
    parts = ["new", "existing", "not_yet"]
    for row in ("members", "active_members", "contribution", "member_share"):
        total = out.loc[row, parts].sum(min_count=1)
        assert total == pytest.approx(out.loc[row, "all"], nan_ok=True), row
    assert out.loc["active_members", "not_yet"] == out.loc["contribution", "not_yet"] == 0


def test_touches_due_by_hand():
    asof = pd.Timestamp("2026-03-31")
    joins = {
        "j0": asof,
        "j3": asof - pd.Timedelta(days=3),
        "j6": asof - pd.Timedelta(days=6),
        "j150": pd.Timestamp("2025-11-01"),
        "j151": asof - pd.Timedelta(days=151),
        "nonmember": asof,
        "nodate": pd.NaT,
    }
    people = pd.DataFrame(
        {
            "customer_id": list(joins),
            "join_date": pd.to_datetime(list(joins.values())),
            "is_member": [True, True, True, True, True, False, True],
        }
    )
    today = kpi.touches_due(people, asof)
    assert today[["customer_id", "touch_day"]].values.tolist() == [
        ["j0", 0],
        ["j3", 3],
        ["j150", 150],
    ]
    assert (today["due_date"] == asof).all()
    # two days ahead: j6 is due for day 7 tomorrow
    soon = kpi.touches_due(people, asof, horizon_days=2)
    assert ["j6", 7] in soon[["customer_id", "touch_day"]].values.tolist()
    assert soon.loc[soon["customer_id"] == "j6", "due_date"].iloc[0] == asof + pd.Timedelta(days=1)
    with pytest.raises(DataError, match="required column join_date missing"):
        kpi.touches_due(people.drop(columns="join_date"), asof)


# --- anonymous receipts, KPIs by store and guide --------------------------------------------


def test_member_share_counts_anonymous_receipts_by_hand():
    anonymous = pd.DataFrame(
        {
            "customer_id": pd.array([None, None, None], dtype="str"),
            "order_date": pd.to_datetime(["2026-03-03", "2026-03-30", "2026-02-01"]),
            "amount": [5.0, 6.0, 7.0],  # the last one before the period
            "quantity": 1.0,
        }
    )
    both = pd.concat([TX, anonymous], ignore_index=True)
    out = kpi.member_kpis(both, CUSTOMERS, PERIOD)
    # member orders in March: m1 2, m2 1; all orders: those, n1's and 2 anonymous receipts
    assert out.loc["member_share", "all"] == 3 / 6
    assert out.attrs["anonymous_orders"] == 2
    # nothing per customer moves
    same = kpi.member_kpis(TX, CUSTOMERS, PERIOD).drop(index="member_share")
    pd.testing.assert_frame_equal(out.drop(index="member_share"), same)


@pytest.fixture(scope="module")
def shop():
    from closedloop.datasets import make_demo

    demo = make_demo(seed=0, n_customers=2_000)
    both = pd.concat([demo.transactions, demo.receipts], ignore_index=True)
    return both, demo.customers


DEMO_PERIOD = (pd.Timestamp("2026-02-01"), pd.Timestamp("2026-03-31"))


def _home_by_hand(tx, customers, end):
    """Each member's home store with pandas only: the customers' home_store where given, else
    the store of most purchases in the 365 days to ``end``, ties by the latest purchase."""
    mine = tx[tx["customer_id"].notna() & (tx["order_date"] < end + pd.Timedelta(days=1))]
    mine = mine[mine["amount"] >= 0]
    recent = mine["order_date"] >= end - pd.Timedelta(days=364)
    pairs = mine.assign(recent=recent).groupby(["customer_id", "store"])
    pairs = pairs.agg(n=("recent", "sum"), last=("order_date", "max")).reset_index()
    pairs = pairs.sort_values(["customer_id", "n", "last", "store"], ascending=[1, 0, 0, 1])
    home = pairs.drop_duplicates("customer_id").set_index("customer_id")["store"]
    cust = customers.set_index("customer_id")
    given = cust["home_store"].dropna()
    home = pd.concat([given, home.drop(given.index, errors="ignore")])
    if "join_store" in cust.columns:  # members who never bought: where they joined
        joined = cust["join_store"].dropna()
        home = pd.concat([home, joined.drop(home.index, errors="ignore")])
    return home


def _by_hand(tx, customers, store, home, start, end):
    """The tree for one home store: its members over all their purchases, and the store's own
    receipts for member share, orders and revenue, with pandas only."""
    prev_start = start - (end - start + pd.Timedelta(days=1))
    tx = tx[tx["order_date"] < end + pd.Timedelta(days=1)]
    cust = customers.set_index("customer_id")
    now = tx[tx["order_date"] >= start]
    here = now[now["store"] == store]
    prev = tx[(tx["order_date"] >= prev_start) & (tx["order_date"] < start)]
    everyone = cust.index[cust["is_member"]]
    members = everyone[home.reindex(everyone).fillna("(none)").to_numpy() == store]
    mine_now = now[now["customer_id"].isin(members)]
    orders = mine_now.groupby("customer_id").size()
    active = len(orders)
    before = set(prev.loc[prev["customer_id"].isin(members), "customer_id"])
    joined = cust.loc[members, "join_date"]
    recruits = joined[(joined >= start) & (joined <= end)]
    first = tx[tx["customer_id"].isin(recruits.index)].merge(
        recruits.rename("joined"), left_on="customer_id", right_index=True
    )
    converted = first.loc[first["order_date"] >= first["joined"], "customer_id"].nunique()
    row = {
        "members": len(members),
        "recruits": len(recruits),
        "conversion": converted / len(recruits) if len(recruits) else np.nan,
        "active_members": active,
        "active_rate": active / len(members),
        "member_share": here["is_member"].sum() / len(here) if len(here) else np.nan,
        "online_rate": cust.loc[members, "online"].mean(),
        "purchase_frequency": len(mine_now) / active if active else np.nan,
        "avg_ticket": mine_now["amount"].sum() / len(mine_now) if active else np.nan,
        "contribution": mine_now["amount"].sum(),
        "contribution_per_member": mine_now["amount"].sum() / len(members),
        "repurchase_rate": (orders >= 2).sum() / active if active else np.nan,
        "items_per_basket": mine_now["quantity"].sum() / len(mine_now) if active else np.nan,
        "churn_rate": len(before - set(orders.index)) / len(before) if before else np.nan,
        "orders": len(here),
        "anonymous_orders": int(here["customer_id"].isna().sum()),
        "revenue": here["amount"].sum(),
    }
    for column in ("reach_wecom", "reach_group", "reach_app", "reach_sms"):
        row[column] = cust.loc[members, column].mean()
    return row, len(before)


def test_every_kpi_by_store_equals_pandas(shop):
    tx, customers = shop
    start, end = DEMO_PERIOD
    out = kpi.member_kpis(tx, customers, DEMO_PERIOD, by="store")
    # every store; each member in one: the demo's members who never bought are where they joined
    assert sorted(out.index) == sorted(tx["store"].unique())
    assert out.loc["S01", "anonymous_orders"] > 0 and out.loc["online", "anonymous_orders"] == 0
    home = _home_by_hand(tx, customers, end)
    assert (
        kpi.home_of(
            kpi.summaries.per_customer(tx, end, windows={"home": kpi.home_window(end)}, by="store"),
            "store",
        ).to_dict()
        == _home_by_hand(tx, customers.assign(home_store=None, join_store=None), end).to_dict()
    )
    assert out.attrs["unplaced_recruits"] == 0 and out["conversion"].notna().any()
    # without the join store, recruits who never bought belong to no store: conversion by store
    # is not given, rather than 100% in every store
    unplaced = kpi.member_kpis(tx, customers.drop(columns="join_store"), DEMO_PERIOD, by="store")
    cust = customers.set_index("customer_id")
    joined = cust.loc[cust["is_member"], "join_date"]
    recruits = joined[(joined >= start) & (joined <= end)].index
    placed = _home_by_hand(tx, customers.drop(columns="join_store"), end)
    assert unplaced.attrs["unplaced_recruits"] == len(recruits.difference(placed.index)) > 0
    assert unplaced["conversion"].isna().all()
    active_before = {}
    for store in out.index:
        expected, active_before[store] = _by_hand(tx, customers, store, home, start, end)
        got = out.loc[store, list(expected)].astype(float)
        assert got.to_numpy() == pytest.approx(
            np.array(list(expected.values()), dtype=float), nan_ok=True
        ), store
    # each member in one home store: the stores' members add up to all members, their churn
    # (weighted by the members active before, churn's denominator) to the overall churn
    tree = kpi.member_kpis(tx, customers, DEMO_PERIOD)
    assert out["members"].sum() == tree.loc["members", "all"] == customers["is_member"].sum()
    weights = pd.Series(active_before).reindex(out.index)
    churn = out["churn_rate"].fillna(0.0)
    assert (churn * weights).sum() / weights.sum() == pytest.approx(tree.loc["churn_rate", "all"])
    assert out["contribution"].sum() == pytest.approx(tree.loc["contribution", "all"])
    # receipts stay where they were spent: the stores' orders and revenue are all of them
    now = tx[(tx["order_date"] >= start) & (tx["order_date"] < end + pd.Timedelta(days=1))]
    assert out["orders"].sum() == len(now)
    assert out["revenue"].sum() == pytest.approx(now["amount"].sum())


def test_conversion_by_store_counts_recruits_who_never_bought_where_they_joined(shop):
    tx, customers = shop
    start, end = DEMO_PERIOD
    stores = sorted(tx["store"].dropna().unique())
    rng = np.random.default_rng(1)
    customers = customers.assign(join_store=rng.choice(stores, len(customers)))
    out = kpi.member_kpis(tx, customers, DEMO_PERIOD, by="store")
    assert out.attrs["unplaced_recruits"] == 0
    home = _home_by_hand(tx, customers, end)
    # with pandas only: recruits of the period by home store, and who bought after joining
    cust = customers.set_index("customer_id")
    joined = cust.loc[cust["is_member"], "join_date"]
    recruits = joined[(joined >= start) & (joined <= end)]
    mine = tx[tx["customer_id"].isin(recruits.index) & (tx["amount"] >= 0)]
    mine = mine[mine["order_date"] < end + pd.Timedelta(days=1)]
    after = mine["order_date"] >= mine["customer_id"].map(recruits)
    bought = recruits.index.isin(mine.loc[after, "customer_id"])
    by_hand = pd.DataFrame({"store": home.reindex(recruits.index).to_numpy(), "bought": bought})
    rate = by_hand.groupby("store")["bought"].mean()
    assert rate.min() < 1  # not 100% everywhere
    assert out["conversion"].dropna().to_dict() == pytest.approx(rate.to_dict())
    assert out.loc[rate.index, "recruits"].to_list() == by_hand.groupby("store").size().to_list()


def test_kpis_by_guide_split_the_members(shop):
    tx, customers = shop
    out = kpi.member_kpis(tx, customers, DEMO_PERIOD, by="guide")
    members = customers[customers["is_member"]]
    sizes = members["guide"].fillna("(none)").value_counts()
    assert out["members"].to_dict() == sizes.to_dict()
    start, end = DEMO_PERIOD
    now = tx[(tx["order_date"] >= start) & (tx["order_date"] < end + pd.Timedelta(days=1))]
    guide = now["customer_id"].map(customers.set_index("customer_id")["guide"])
    spent = now[now["is_member"]].groupby(guide.fillna("(none)"))["amount"].sum()
    assert out["contribution"].to_numpy() == pytest.approx(
        spent.reindex(out.index, fill_value=0.0).to_numpy()
    )
    with pytest.raises(DataError, match="neither a column"):
        kpi.member_kpis(tx, customers, DEMO_PERIOD, by="planet")


# --- why revenue moved --------------------------------------------------------------------

MOVES = pd.DataFrame(
    {
        "customer_id": ["a", "a", "b", "c", "a", "b", "b", "b", "d", "c"],
        "order_date": pd.to_datetime(
            [
                "2026-01-05",
                "2026-01-20",
                "2026-01-10",
                "2026-01-12",  # January: S1 a x2 (10, 30), b 20; S2 c 40
                "2026-02-03",
                "2026-02-04",
                "2026-02-10",
                "2026-02-20",  # February: S1 a 25, b x3 (5, 5, 50); S3 d 60
                "2026-02-11",
                "2025-12-01",
            ]
        ),
        "amount": [10.0, 30.0, 20.0, 40.0, 25.0, 5.0, 5.0, 50.0, 60.0, 9.0],
        "store": ["S1", "S1", "S1", "S2", "S1", "S1", "S1", "S1", "S3", "S2"],
    }
)
JAN, FEB = ("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-02-28")


@pytest.mark.parametrize("method", kpi.DECOMPOSITION_METHODS)
def test_revenue_change_parts_sum_exactly(method):
    out = kpi.revenue_change(MOVES, JAN, FEB, by="store", method=method)
    parts = out[["heads", "frequency", "ticket"]].sum(axis=1)
    assert (parts - out["change"]).abs().max() < 1e-9
    s1 = out.loc["S1"]
    assert (s1["customers_before"], s1["customers_after"]) == (2, 2)
    assert (s1["frequency_before"], s1["frequency_after"]) == (1.5, 2.0)
    assert (s1["ticket_before"], s1["ticket_after"]) == (20.0, 21.25)
    assert s1["change"] == 85.0 - 60.0 and s1["heads"] == pytest.approx(0.0, abs=1e-12)
    # a store gone (S2) or new (S3): all heads
    assert out.loc["S2", ["heads", "frequency", "ticket"]].tolist() == [-40.0, 0.0, 0.0]
    assert out.loc["S3", ["heads", "frequency", "ticket"]].tolist() == [60.0, 0.0, 0.0]
    assert out.attrs["total"]["change"] == pytest.approx(145.0 - 100.0)
    if method == "lmdi":
        assert out.attrs["fallback"] == ["S2", "S3"]
        weight = (85.0 - 60.0) / np.log(85.0 / 60.0)
        assert s1["frequency"] == pytest.approx(weight * np.log(2.0 / 1.5))
    else:  # Shapley with heads unchanged: frequency and ticket split the cross term evenly
        assert s1["frequency"] == pytest.approx(2 * 0.5 * (20.0 + 21.25) / 2)
        assert s1["ticket"] == pytest.approx(2 * 1.25 * (1.5 + 2.0) / 2)


@settings(max_examples=40, deadline=None)
@given(shops())
def test_revenue_change_always_adds_up(frame):
    frame = frame.assign(store=np.where(frame.index % 3 == 0, "S1", "S2"))
    for by in ("store", "tier"):
        try:
            out = kpi.revenue_change(
                frame, ("2026-01-01", "2026-02-14"), ("2026-02-15", "2026-04-30"), by=by
            )
        except DataError:  # no purchase to rank tiers by
            continue
        parts = out[["heads", "frequency", "ticket"]].sum(axis=1)
        assert parts.to_numpy() == pytest.approx(out["change"].to_numpy(), abs=1e-6)


def test_why_revenue_moved_by_tier_gives_a_table_and_a_figure():
    moved = kpi.why_revenue_moved(MOVES, JAN, FEB, by="tier")
    assert moved.table.index.tolist()[-1] == "new"  # d: not tiered at the end of January
    assert moved.table.loc["new", "heads"] == 60.0
    assert len(moved.figure.axes) == 1
