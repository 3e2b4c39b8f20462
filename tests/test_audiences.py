"""Audiences by purchase history, on hand-built orders, on pandas, polars and DuckDB."""

from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pytest

from closedloop import audiences
from closedloop.errors import DataError

ASOF = "2026-03-31"
TX = pd.DataFrame(
    [
        ("O1", "c1", "2026-01-05 10:00", 10.0),
        ("O2", "c1", "2026-03-20 10:00", 5.0),
        ("O3", "c2", "2026-02-10 10:00", 8.0),
        ("O4", "c2", "2026-03-25 10:00", 8.0),
        ("O5", "c3", "2026-03-31 23:00", 12.0),  # the asof day counts whole
        ("O6", "c4", "2026-04-01 00:00", 3.0),  # after asof
        ("O7", "c5", "2026-03-15 10:00", -10.0),  # a refund selects nobody
        ("O8", "c6", "2025-12-01 10:00", 20.0),
    ],
    columns=["order_id", "customer_id", "order_date", "amount"],
).assign(order_date=lambda f: pd.to_datetime(f["order_date"]))
ITEMS = pd.DataFrame(
    [
        ("O1", "milk", "dairy", "Bright"),
        ("O2", "bread", "bakery", "House"),
        ("O3", "milk", "dairy", "Bright"),
        ("O4", "milk", "dairy", "Bright"),
        ("O5", "yogurt", "dairy", "Bright"),
        ("O6", "milk", "dairy", "Bright"),
        ("O7", "milk", "dairy", "Bright"),
        ("O8", "cheese", "dairy", "Mengniu"),
    ],
    columns=["order_id", "item", "category", "brand"],
)


def engines():
    yield "pandas", TX, ITEMS
    yield "polars", pl.from_pandas(TX), pl.from_pandas(ITEMS)
    con = duckdb.default_connection()
    yield "duckdb", con.from_df(TX), con.from_df(ITEMS)
    lines = TX.merge(ITEMS, on="order_id")  # order lines carrying the columns themselves
    yield "lines", lines, None


@pytest.mark.parametrize(("name", "tx", "items"), list(engines()), ids=lambda x: str(x)[:6])
def test_bought(name, tx, items):
    def ids(**kw):
        return list(audiences.bought(tx, ASOF, items=items, **kw))

    # the last 30 days: 2 to 31 March; the refund and the April order do not count
    assert ids(brand="Bright", days=30) == ["c2", "c3"]
    # milk in January and February, not bought again since: c2 bought milk on 25 March
    assert ids(item="milk", start="2026-01-01", end="2026-02-28", not_since=True) == ["c1"]
    assert ids(item="milk", start="2026-01-01", end="2026-02-28") == ["c1", "c2"]
    assert ids(category="dairy") == ["c1", "c2", "c3", "c6"]
    assert ids(category="dairy", not_since="2026-01-01") == ["c6"]
    assert ids(item=["bread", "cheese"], start="2026-01-01") == ["c1"]
    assert ids(brand="Nobody") == []


@pytest.mark.parametrize(("name", "tx", "items"), list(engines()), ids=lambda x: str(x)[:6])
def test_purchased(name, tx, items):
    held = audiences.purchased(tx, ASOF, items=items, by="item", days=30)
    assert held[["customer_id", "item"]].values.tolist() == [
        ["c1", "bread"],
        ["c2", "milk"],
        ["c3", "yogurt"],
    ]
    assert held["last_bought"].tolist() == [
        pd.Timestamp("2026-03-20"),
        pd.Timestamp("2026-03-25"),
        pd.Timestamp("2026-03-31"),
    ]


def test_bad_requests():
    with pytest.raises(DataError, match="exactly one"):
        audiences.bought(TX, ASOF, items=ITEMS, item="milk", brand="Bright")
    with pytest.raises(DataError, match="either days or start"):
        audiences.bought(TX, ASOF, items=ITEMS, item="milk", days=7, start="2026-01-01")
    with pytest.raises(DataError, match="pass items="):
        audiences.bought(TX, ASOF, brand="Bright")
    with pytest.raises(DataError, match="by must be"):
        audiences.purchased(TX, ASOF, items=ITEMS, by="colour")
