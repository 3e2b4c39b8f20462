"""Grouping (分群): each customer's group by attributes, which decides the offer.

The method keeps two things apart (method.md §3, §9): **grading** (分级) ranks customers by value
and decides benefits — the pyramid and the member tiers of :mod:`closedloop.rfm`; **grouping**
(分群) splits them by attributes — category preference, personal style, channel preference — and
decides the offer. :func:`groups` gives each customer those attributes and a group label:

- ``category`` — the category with the most spend in the customer's order lines (``items`` with
  ``order_id, category``, joined to the transactions by ``order_id``); a customer without item
  lines takes ``customers.favourite_category`` when the customers table has it;
- ``channel`` — the channel with the most orders in ``transactions.channel``;
- ``style`` — any attribute the customers table carries (``style="style"`` names the column).

Ties go to the larger spend (channel), then to the first name in alphabetical order, so a group
never depends on row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop._frames import to_pandas
from closedloop.errors import DataError

__all__ = ["UNKNOWN", "groups"]

#: the group label's word for an attribute the data does not give for a customer
UNKNOWN = "(unknown)"


def groups(
    transactions,
    asof,
    *,
    items=None,
    customers=None,
    period_days: int | None = None,
    style: str | None = None,
) -> pd.DataFrame:
    """Each customer's group (分群) by category preference, channel preference and style.

    ``transactions`` (``customer_id, order_date, amount``, optional ``order_id`` and ``channel``)
    are read up to the end of the ``asof`` day, over the last ``period_days`` days when given
    (``None``: all history). ``items`` are order lines with ``order_id`` and ``category`` and a
    spend per line: ``amount`` when present, else ``quantity × price``, else ``price``, else each
    line counts 1. ``customers`` (``customer_id``, optional ``favourite_category`` and the
    ``style`` column) adds the customers who did not buy in the window.

    One row per customer, indexed by ``customer_id`` (text, sorted): ``category``,
    ``category_source`` (``"items"``, ``"favourite_category"`` or missing), ``channel``, the
    ``style`` column when asked for, and ``group`` — the attributes the data has, joined by
    " · " (a missing one reads :data:`UNKNOWN`). ``attrs["attributes"]`` lists them. The offer is
    chosen per group; grading by value is :func:`closedloop.rfm.member_tiers`.
    """
    tx = to_pandas(transactions, "groups transactions", summaries.TRANSACTION_COLUMNS)
    start = summaries.period_start(asof, period_days)
    keep = tx["order_date"] < summaries.end_of_day(asof)
    if start is not None:
        keep &= tx["order_date"] >= start
    tx = tx[keep].assign(customer_id=lambda f: f["customer_id"].astype("str"))
    cust = None
    if customers is not None:
        cust = to_pandas(customers, "groups customers", ("customer_id",))
        cust = cust.assign(customer_id=cust["customer_id"].astype("str"))
        cust = cust.drop_duplicates("customer_id").set_index("customer_id")
        if style is not None and style not in cust.columns:
            raise DataError("groups customers", f"no '{style}' column", column=style)
    elif style is not None:
        raise DataError("groups", f"style='{style}' needs a customers table with that column")
    ids = pd.Index(tx["customer_id"].unique())
    if cust is not None:
        ids = ids.union(cust.index)
    if ids.empty:
        raise DataError("groups", "no customers: no purchases to asof and no customers table")
    out = pd.DataFrame(index=pd.Index(ids.sort_values(), name="customer_id"))
    attributes = []

    category = pd.Series(np.nan, index=out.index, dtype="object")
    source = pd.Series(np.nan, index=out.index, dtype="object")
    if items is not None:
        preferred = _preferred_category(tx, items)
        category.update(preferred)
        source[preferred.index] = "items"
    if cust is not None and "favourite_category" in cust.columns:
        stated = cust["favourite_category"].dropna().astype("str").reindex(out.index)
        fill = category.isna() & stated.notna()
        category[fill] = stated[fill]
        source[fill] = "favourite_category"
    if items is not None or (cust is not None and "favourite_category" in cust.columns):
        out["category"], out["category_source"] = category, source
        attributes.append("category")
    if "channel" in tx.columns:
        out["channel"] = _preferred_channel(tx).reindex(out.index)
        attributes.append("channel")
    if style is not None:
        out[style] = cust[style].reindex(out.index)
        attributes.append(style)
    if not attributes:
        raise DataError(
            "groups",
            "no attribute to group by: pass items (order_id, category), customers with"
            " favourite_category or a style column, or transactions with a channel column",
        )
    label = out[attributes].astype("object").where(out[attributes].notna(), UNKNOWN)
    out["group"] = label.astype("str").agg(" · ".join, axis=1)
    out.attrs["attributes"] = attributes
    return out


def _preferred_channel(tx: pd.DataFrame) -> pd.Series:
    """The channel with the most orders per customer; ties: more spend, then the first name."""
    rows = tx.dropna(subset=["channel"]).assign(channel=lambda f: f["channel"].astype("str"))
    key = ["customer_id", "channel"]
    if "order_id" in rows.columns:
        rows = rows.assign(_order=rows["order_id"].astype("str").where(rows["order_id"].notna()))
        rows["_order"] = rows["_order"].fillna(
            pd.Series(rows.index.astype("str"), index=rows.index)
        )
        per = rows.groupby(key).agg(orders=("_order", "nunique"), spend=("amount", "sum"))
    else:
        per = rows.groupby(key).agg(orders=("amount", "size"), spend=("amount", "sum"))
    return _first_of(per.reset_index(), "channel", ["orders", "spend"])


def _preferred_category(tx: pd.DataFrame, items) -> pd.Series:
    """The category with the most spend in each customer's order lines; ties: the first name."""
    lines = to_pandas(items, "groups items", ("order_id", "category"))
    if "order_id" not in tx.columns:
        raise DataError(
            "groups transactions", "items are joined by order_id: the transactions have none"
        )
    if "amount" in lines.columns:
        spend = lines["amount"].astype("float64")
    elif {"quantity", "price"} <= set(lines.columns):
        spend = lines["quantity"].astype("float64") * lines["price"].astype("float64")
    elif "price" in lines.columns:
        spend = lines["price"].astype("float64")
    else:
        spend = pd.Series(1.0, index=lines.index)
    lines = pd.DataFrame(
        {
            "order_id": lines["order_id"].astype("str"),
            "category": lines["category"],
            "spend": spend,
        }
    ).dropna(subset=["category"])
    orders = tx.dropna(subset=["order_id"])[["order_id", "customer_id"]]
    orders = orders.assign(order_id=orders["order_id"].astype("str")).drop_duplicates("order_id")
    joined = lines.merge(orders, on="order_id", how="inner")
    joined["category"] = joined["category"].astype("str")
    per = joined.groupby(["customer_id", "category"], as_index=False)["spend"].sum()
    return _first_of(per, "category", ["spend"])


def _first_of(per: pd.DataFrame, name: str, by: list[str]) -> pd.Series:
    ranked = per.sort_values(
        ["customer_id", *by, name], ascending=[True, *[False] * len(by), True], kind="stable"
    )
    return ranked.drop_duplicates("customer_id").set_index("customer_id")[name]
