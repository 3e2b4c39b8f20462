"""closedloop.tags: one row per customer, each tag from the module that owns it."""

from __future__ import annotations

from importlib.util import find_spec

import pandas as pd
import pytest

from closedloop import DataError, clv, rfm, tags
from closedloop.datasets import make_demo

ASOF = "2026-03-31"


@pytest.fixture(scope="module")
def demo():
    return make_demo(seed=0, n_customers=2_000)


@pytest.fixture(scope="module")
def table(demo):
    return tags.tags(demo.transactions, demo.customers, ASOF, items=demo.items)


def test_one_row_per_customer_with_the_owning_modules_tags(demo, table):
    assert table.index.is_unique and set(table.index) == set(demo.customers["customer_id"])
    ranked = rfm.rfm_table(demo.transactions, ASOF, 365)
    pd.testing.assert_series_equal(
        table.loc[ranked.index, "segment"], ranked["segment"], check_names=False
    )
    assert (table.loc[ranked.index, "R"].to_numpy() == ranked["R"].to_numpy()).all()
    tiers = rfm.member_tiers(ranked)
    assert (table.loc[ranked.index, "member_tier"] == tiers).all()
    churn = rfm.churn_severity(demo.transactions, ASOF)["severity"]
    assert (table.loc[churn.index, "churn"] == churn).all()
    assert table.loc[table["R"].isna(), "member_tier"].isna().all()  # no purchase in the year
    assert {"guide", "home_store", "city", "is_member", "source_channel"} <= set(table.columns)
    assert table.attrs["left_out"] == {}


def test_preferences_reach_and_tenure_by_hand(demo, table):
    tx, items = demo.transactions, demo.items
    cid = table["category_preference"].dropna().index[0]
    year = tx[(tx["customer_id"] == cid) & (tx["order_date"] >= pd.Timestamp("2025-04-01"))]
    lines = items[items["order_id"].isin(year["order_id"])]["category"].value_counts()
    top = sorted(lines[lines == lines.max()].index)[0]
    assert table.loc[cid, "category_preference"] == top
    channels = year["channel"].value_counts()
    assert (
        table.loc[cid, "channel_preference"]
        == sorted(channels[channels == channels.max()].index)[0]
    )
    cust = demo.customers.set_index("customer_id")
    row = cust.loc[cid]
    expected = "+".join(c for c in ("wecom", "group", "app", "sms") if row[f"reach_{c}"])
    assert table.loc[cid, "reachable"] == expected
    assert table.loc[cid, "tenure_days"] == (pd.Timestamp(ASOF) - row["join_date"].normalize()).days


def test_any_tag_is_an_audience_and_a_breakdown(demo, table):
    light = table.index[table["churn"] == "light"]
    assert len(light) > 0
    responded = demo.outcomes.set_index("customer_id").join(table["category_preference"])
    by_category = responded.groupby("category_preference")["converted"].mean()
    assert by_category.between(0, 1).all() and len(by_category) > 3


def test_clv_tag_with_a_fitted_model(demo):
    model = clv.fit(clv.summary(demo.transactions, ASOF), spend=True)
    table = tags.tags(demo.transactions, demo.customers, ASOF, items=demo.items, model=model)
    values = model.clv()
    assert table.loc[values.index, "clv"].to_numpy() == pytest.approx(values.to_numpy())


def test_without_items_or_customers_the_tags_are_left_out(demo):
    table = tags.tags(demo.transactions.drop(columns="channel"), None, ASOF)
    assert "category_preference" not in table.columns and "reachable" not in table.columns
    assert set(table.attrs["left_out"]) >= {"category_preference", "channel_preference"}


@pytest.mark.skipif(find_spec("sklearn") is None, reason="scikit-learn is not installed")
def test_optional_clusters(demo):
    table = tags.tags(demo.transactions, None, ASOF, clusters=4)
    scored = table["R"].notna()
    assert set(table.loc[scored, "cluster"]) == {0, 1, 2, 3}
    assert table.loc[~scored, "cluster"].isna().all()


def test_clusters_without_scikit_learn_say_how_to_install(demo, monkeypatch):
    monkeypatch.setattr(tags, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"closedloop\[cluster\]"):
        tags.tags(demo.transactions, None, ASOF, clusters=3)
