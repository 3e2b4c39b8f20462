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
    # new and existing members split the contribution and the member orders
    assert out.loc["contribution", "new"] + out.loc["contribution", "existing"] == pytest.approx(
        out.loc["contribution", "all"]
    )
    share = out.loc["member_share"]
    assert share["new"] + share["existing"] == pytest.approx(share["all"], nan_ok=True)


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
