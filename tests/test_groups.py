"""closedloop.groups: grouping (分群) by attributes, on hand-built tables and on the demo."""

from __future__ import annotations

import pandas as pd
import pytest

from closedloop import DataError
from closedloop.datasets import make_demo
from closedloop.groups import UNKNOWN, groups

ASOF = "2026-03-31"

TX = pd.DataFrame(
    {
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7"],
        "customer_id": ["a", "a", "a", "b", "b", "c", "a"],
        "order_date": pd.to_datetime(
            [
                "2026-01-05",
                "2026-02-05",
                "2026-03-05",
                "2026-03-01",
                "2026-03-02",
                "2026-03-03",
                "2026-04-02",  # after asof: not read
            ]
        ),
        "amount": [10.0, 10.0, 50.0, 30.0, 30.0, 5.0, 999.0],
        "channel": ["store", "store", "online", "online", "store", "online", "online"],
    }
)
ITEMS = pd.DataFrame(
    {
        "order_id": ["o1", "o1", "o2", "o3", "o4", "o5", "o7"],
        "category": ["dairy", "bakery", "dairy", "bakery", "fruit", "dairy", "fruit"],
        "quantity": [1, 2, 1, 1, 1, 1, 100],
        "price": [4.0, 3.0, 10.0, 15.0, 30.0, 30.0, 9.0],
    }
)


def test_groups_by_category_and_channel_preference():
    """Grouping is by attributes (method §3, §9): the category with the most spend, the channel
    with the most orders."""
    out = groups(TX, ASOF, items=ITEMS)
    # a: dairy 4 + 10 = 14, bakery 6 + 15 = 21 -> bakery; channels: store 2 orders, online 1
    assert out.loc["a", "category"] == "bakery" and out.loc["a", "channel"] == "store"
    # b: fruit 30, dairy 30 -> tie, the first name: dairy; online 1, store 1 -> tie on orders
    # and on spend (30 each): the first name, online
    assert out.loc["b", "category"] == "dairy" and out.loc["b", "channel"] == "online"
    # c bought with no item lines: no category
    assert pd.isna(out.loc["c", "category"]) and out.loc["c", "channel"] == "online"
    assert out["group"].to_dict() == {
        "a": "bakery · store",
        "b": "dairy · online",
        "c": f"{UNKNOWN} · online",
    }
    assert out.attrs["attributes"] == ["category", "channel"]
    assert out.loc["a", "category_source"] == "items"


def test_groups_take_the_stated_favourite_and_style_from_customers():
    people = pd.DataFrame(
        {
            "customer_id": ["a", "c", "z"],
            "favourite_category": ["fruit", "fruit", "tea"],
            "style": ["classic", "sporty", "classic"],
        }
    )
    out = groups(TX, ASOF, items=ITEMS, customers=people, style="style")
    # a's purchases say bakery: what was bought comes first; c and z have no item lines
    assert out["category"].to_dict() == {"a": "bakery", "b": "dairy", "c": "fruit", "z": "tea"}
    assert out.loc["c", "category_source"] == "favourite_category"
    assert out.loc["z", "group"] == f"tea · {UNKNOWN} · classic"  # never bought: no channel
    without_items = groups(TX, ASOF, customers=people)
    assert without_items.loc["a", "category"] == "fruit"
    with pytest.raises(DataError, match="no attribute to group by"):
        groups(TX.drop(columns="channel"), ASOF)
    with pytest.raises(DataError, match="needs a customers table"):
        groups(TX, ASOF, style="style")


def test_groups_on_the_demo_follow_the_favourite_category():
    demo = make_demo(seed=0, n_customers=800)
    out = groups(demo.transactions, ASOF, items=demo.items, customers=demo.customers)
    assert len(out) == demo.customers["customer_id"].nunique()
    bought = out[out["category_source"] == "items"]
    stated = demo.customers.set_index("customer_id")["favourite_category"].reindex(bought.index)
    # the demo favours each customer's favourite category four to one in its baskets: the
    # category they spend most on is their favourite far more often than by chance
    chance = 1 / demo.items["category"].nunique()
    assert (bought["category"] == stated).mean() > 2 * chance
    assert set(out["channel"].dropna()) == {"online", "store"}
