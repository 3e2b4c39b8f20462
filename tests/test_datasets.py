"""Real data sets have their published sizes; the demo is deterministic and realistic."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from closedloop import DataError, points
from closedloop.datasets import cdnow, cdnow_summary, groceries, hillstrom, make_demo, write_demo
from closedloop.io import (
    read_assignments,
    read_customers,
    read_events,
    read_points,
    read_transactions,
)


def test_cdnow_master_and_sample():
    master = cdnow()
    assert len(master) == 69_659
    assert master["customer_id"].nunique() == 23_570
    assert list(master.columns) == ["customer_id", "order_date", "amount", "quantity"]
    assert master["order_date"].min() == pd.Timestamp("1997-01-01")
    assert master["order_date"].max() == pd.Timestamp("1998-06-30")
    sample = cdnow(sample=True)
    assert (len(sample), sample["customer_id"].nunique()) == (6_919, 2_357)


def test_cdnow_summary_is_lifetimes_published_table():
    summary = cdnow_summary()
    assert len(summary) == 2_357
    assert set(summary.index) == set(cdnow(sample=True)["customer_id"])
    assert summary.loc["1", "frequency"] == 2


def test_hillstrom(hillstrom_path):
    frame = hillstrom(hillstrom_path)
    assert len(frame) == 64_000
    assert frame["arm"].value_counts().to_dict() == {
        "Womens E-Mail": 21_387,
        "Mens E-Mail": 21_307,
        "No E-Mail": 21_306,
    }
    assert frame["customer_id"].is_unique


def test_groceries(groceries_path):
    baskets = groceries(groceries_path)
    assert len(baskets) == 9_835
    items = {item for basket in baskets for item in basket}
    assert len(items) == 169
    assert "cream cheese" in items and "cream cheese " not in items
    long = groceries(groceries_path, form="long")
    assert long["order_id"].nunique() == 9_835
    assert len(long) == sum(map(len, baskets)) == 43_367


@pytest.fixture(scope="module")
def demo():
    return make_demo(seed=0, n_customers=5_000)


def test_demo_is_deterministic(tmp_path):
    first = write_demo(tmp_path / "a", seed=3, n_customers=2_000)
    second = write_demo(tmp_path / "b", seed=3, n_customers=2_000)
    files = sorted(p.name for p in first.iterdir())
    assert files == [
        "assignments.csv",
        "customers.csv",
        "effects.csv",
        "events.csv",
        "health.yaml",
        "items.csv",
        "outcomes.csv",
        "plan.yaml",
        "points.csv",
        "receipts.csv",
        "transactions.csv",
    ]
    for name in files:
        digest = [hashlib.sha256((d / name).read_bytes()).hexdigest() for d in (first, second)]
        assert digest[0] == digest[1], name
    other = write_demo(tmp_path / "c", seed=4, n_customers=2_000)
    assert (other / "transactions.csv").read_bytes() != (first / "transactions.csv").read_bytes()


def test_demo_files_pass_the_contract(tmp_path):
    folder = write_demo(tmp_path, seed=0, n_customers=2_000)
    tx = read_transactions(folder / "transactions.csv", asof="2026-03-31 23:59")
    customers = read_customers(folder / "customers.csv")
    assignments = read_assignments(folder / "assignments.csv")
    events = read_events(folder / "events.csv")
    assert set(tx["customer_id"]) <= set(customers["customer_id"])
    assert set(assignments["customer_id"]) <= set(customers["customer_id"])
    assert set(events["stage"]) == {"touch", "visit", "register", "purchase"}
    ledger = read_points(folder / "points.csv")
    assert set(ledger["customer_id"]) <= set(customers["customer_id"])
    # anonymous store receipts: refused as transactions, read when anonymous receipts are allowed
    with pytest.raises(DataError, match="missing id"):
        read_transactions(folder / "receipts.csv")
    receipts = read_transactions(folder / "receipts.csv", anonymous=True)
    assert receipts["customer_id"].isna().all() and not receipts["is_member"].any()
    assert set(receipts["store"]) <= set(tx["store"]) - {"online"}


def test_demo_guides_and_receipts(demo):
    customers = demo.customers
    assigned = customers["guide"].notna()
    assert (assigned == customers["home_store"].notna()).all()
    assert customers.loc[assigned, "is_member"].all() and 0.2 < assigned.mean() < 0.9
    assert (customers.loc[assigned, "guide"].str[:3] == customers.loc[assigned, "home_store"]).all()
    # the home store is where the member bought most often
    tx = demo.transactions
    some = customers[assigned].head(50)
    for cid, home in zip(some["customer_id"], some["home_store"], strict=True):
        counts = tx[(tx["customer_id"] == cid) & (tx["store"] != "online")]["store"].value_counts()
        assert counts[home] == counts.max()
    receipts = demo.receipts
    assert receipts["order_id"].is_unique and receipts["customer_id"].isna().all()
    store_orders = tx["store"].ne("online").sum()
    assert len(receipts) == round(store_orders * 0.25)


def test_demo_contact_data(demo):
    customers = demo.customers
    # online means reachable on WeCom, in a group or in the app; SMS needs a member's phone
    online = customers["reach_wecom"] | customers["reach_group"] | customers["reach_app"]
    assert (online == customers["online"]).all()
    assert not (customers["reach_group"] & ~customers["reach_wecom"]).any()
    assert not (customers["reach_sms"] & ~customers["is_member"]).any()
    came_by_wecom = customers["online"] & (customers["source_channel"] == "wecom")
    assert customers.loc[came_by_wecom, "reach_wecom"].all()
    assert customers.loc[~customers["is_member"], "birthday"].isna().all()
    assert customers["birthday"].notna().mean() > 0.4
    assert demo.items["brand"].notna().all()
    assert demo.items.groupby("item")["brand"].nunique().max() == 2
    # the ledger: 1 point per whole yuan on members' purchases; expiries by the rolling rule
    ledger = demo.points
    earned = ledger[ledger["kind"] == "earn"].set_index("order_id")["points"]
    tx = demo.transactions.set_index("order_id")
    assert (earned == tx.loc[earned.index, "amount"].astype(int)).all()
    assert tx.loc[earned.index, "is_member"].all()
    assert (ledger["kind"] == "redeem").sum() > 50
    for rule in ("rolling", "calendar"):  # valid under both rules: no redemption overdraws
        balance = points.balances(ledger, "2026-03-31", rule)
    balance = points.balances(ledger, "2026-03-31", "rolling")
    assert (balance["expired"] == balance["expired_recorded"]).all()
    assert (balance["balance"] >= 0).all()


def test_demo_shapes_are_realistic(demo):
    tx = demo.transactions
    per_customer = tx.groupby("customer_id").size()
    assert (per_customer == 1).mean() > 0.2  # many one-time buyers
    assert per_customer.max() > 20  # and a loyal tail
    top = tx.groupby("customer_id")["amount"].sum().sort_values(ascending=False)
    assert top.head(len(top) // 5).sum() / top.sum() > 0.5  # heavy-tailed value
    by_month = tx.set_index("order_date")["amount"].resample("MS").sum()
    assert by_month["2025-12"].iloc[0] > 1.3 * by_month["2026-02"].iloc[0]  # seasonality
    assert tx["order_date"].min() >= pd.Timestamp("2024-04-01")
    assert tx["order_date"].max() <= pd.Timestamp("2026-04-01")
    # order totals are the sum of their items
    totals = (
        demo.items.assign(v=lambda f: f["quantity"] * f["price"]).groupby("order_id")["v"].sum()
    )
    assert (totals.reindex(tx["order_id"]).round(2).to_numpy() == tx["amount"].to_numpy()).all()


def test_demo_items_have_real_affinity(demo):
    items = demo.items
    baskets = items.groupby("order_id")["item"].agg(set)
    n = len(baskets)
    has_a = baskets.map(lambda b: "pasta" in b)
    has_b = baskets.map(lambda b: "pasta sauce" in b)
    lift = (has_a & has_b).sum() / n / (has_a.mean() * has_b.mean())
    assert lift > 3


def test_demo_campaign_has_a_holdout_and_true_effects(demo):
    arms = demo.assignments["arm"].value_counts(normalize=True)
    assert arms["control"] == pytest.approx(0.10, abs=0.02)
    assert set(demo.assignments["segment"]) == {"new", "active", "at_risk", "lapsed"}
    effects = demo.effects.set_index(["arm", "segment"])
    assert (effects.loc["control", "abs_lift"] == 0).all()
    # the true effect differs by segment: best and worst treated cells differ clearly
    treated = effects.drop(index="control")
    assert treated["abs_lift"].max() > 3 * treated["abs_lift"].min() + 0.02
    # outcomes agree with the transactions of the campaign period
    march = demo.transactions[demo.transactions["order_date"] >= "2026-03-01"]
    converted = demo.outcomes.set_index("customer_id")["converted"]
    assert (
        converted.sum()
        == march["customer_id"].isin(converted.index).groupby(march["customer_id"]).any().sum()
    )
    assert demo.plan["arms"] == {"control": 0.10, "sms": 0.45, "wecom": 0.45}


def test_demo_funnel_events_are_ordered(demo):
    ev = demo.events
    first = ev.pivot_table(index="entity_id", columns="stage", values="timestamp", aggfunc="min")
    both = first.dropna(subset=["touch", "visit"])
    assert (both["visit"] >= both["touch"]).all()
    counts = ev.groupby("stage")["entity_id"].nunique()
    assert counts["touch"] > counts["visit"] > counts["purchase"]
