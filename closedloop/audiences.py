"""Audiences by purchase history (按购买记录选人): "bought X between dates, not since".

The method (method.md §6, §9): a push to the members who had bought one brand of milk before sold
20 boxes in three minutes; the same offer in store sold a dozen bottles in five hours. Purchase
history is an audience. Two calls:

- :func:`bought` — the customers who bought an item, a category or a brand in a window (between
  two days, or within the last N days to ``asof``), optionally *not since*;
- :func:`purchased` — each customer's distinct items (or categories, brands) bought in a window
  with the last day bought, the "held" basket the next best offer works from.

What was bought is read from an ``item`` / ``category`` / ``brand`` column of the transactions
(order lines) or of an ``items`` table joined to them on ``order_id`` (the demo's ``items``).
One narwhals group-by runs where the data lives (DuckDB for pandas, polars, a DuckDB relation,
Spark; see :mod:`closedloop._frames`); the time rule is :mod:`closedloop.summaries`' (``asof``
and a window's days are whole days). An order with a negative amount (a refund) selects nobody.
"""

from __future__ import annotations

from collections.abc import Iterable

import narwhals as nw
import pandas as pd

from closedloop import summaries
from closedloop._frames import alongside, collect, lazy_frame, require
from closedloop.errors import DataError

__all__ = ["WHAT", "bought", "purchased"]

#: what a purchase can be selected by
WHAT = ("item", "category", "brand")


def bought(
    transactions,
    asof,
    *,
    items=None,
    item=None,
    category=None,
    brand=None,
    start=None,
    end=None,
    days: int | None = None,
    not_since=None,
) -> pd.Index:
    """The customers who bought ``item``, ``category`` or ``brand`` (one of them: a value or a
    list of values) in a window, as a sorted index of text ids named ``customer_id``.

    The window: ``start`` to ``end`` (inclusive days; either open), or the last ``days`` days to
    the end of the ``asof`` day; nothing after ``asof`` counts. ``not_since``: ``True`` keeps
    only those who did not buy it again after the window's end (to asof); a day keeps those who
    did not buy it on or after that day. ``items``: order lines ``order_id`` + the column, when
    the transactions do not carry it.
    """
    column, values = _what(item, category, brand)
    if days is not None and (start is not None or end is not None):
        raise DataError("bought", "give either days or start / end, not both")
    day = summaries.day(asof)
    if days is not None:
        start, end = summaries.period_start(day, days), day
    end = day if end is None else min(summaries.day(end, "end"), day)
    if not_since is True:
        since = end + pd.Timedelta(days=1)
    elif not_since is None or not_since is False:
        since = None
    else:
        since = summaries.day(not_since, "not_since")
    lines = _lines(transactions, items, column, day, "bought")
    date = nw.col("order_date")
    inside = date < summaries.end_of_day(end)
    if start is not None:
        inside = inside & (date >= summaries.day(start, "start"))
    aggs = [nw.when(inside).then(date).max().alias("in_window")]
    if since is not None:
        aggs.append(nw.when(date >= since).then(date).max().alias("again"))
    per = collect(lines.filter(nw.col(column).is_in(values)).group_by("customer_id").agg(*aggs))
    keep = per["in_window"].notna()
    if since is not None:
        keep &= per["again"].isna()
    ids = per.loc[keep, "customer_id"].astype("str")
    return pd.Index(sorted(ids), dtype="str", name="customer_id")


def purchased(
    transactions,
    asof,
    *,
    items=None,
    by: str = "item",
    start=None,
    days: int | None = None,
) -> pd.DataFrame:
    """Each customer's distinct ``by`` values (items, categories or brands) bought from ``start``
    (or in the last ``days`` days) to the end of the ``asof`` day: ``customer_id, <by>,
    last_bought`` (the last day of it), sorted by customer and value."""
    if by not in WHAT:
        raise DataError("purchased", f"by must be one of {', '.join(WHAT)}, not {by!r}")
    day = summaries.day(asof)
    if days is not None:
        start = summaries.period_start(day, days)
    lines = _lines(transactions, items, by, day, "purchased")
    if start is not None:
        lines = lines.filter(nw.col("order_date") >= summaries.day(start, "start"))
    per = collect(
        lines.filter(~nw.col(by).is_null())
        .group_by("customer_id", by)
        .agg(nw.col("order_date").max().alias("last_bought"))
    )
    per["customer_id"] = per["customer_id"].astype("str")
    per[by] = per[by].astype("str")
    per["last_bought"] = per["last_bought"].astype("datetime64[ns]").dt.normalize()
    return per.sort_values(["customer_id", by], ignore_index=True)


def _what(item, category, brand) -> tuple[str, list[str]]:
    given = {
        name: v for name, v in zip(WHAT, (item, category, brand), strict=True) if v is not None
    }
    if len(given) != 1:
        raise DataError("bought", "give exactly one of item, category or brand")
    ((column, values),) = given.items()
    if isinstance(values, str) or not isinstance(values, Iterable):
        values = [values]
    values = [str(v) for v in values]
    if not values:
        raise DataError("bought", f"no {column} given")
    return column, values


def _lines(transactions, items, column: str, day, source: str) -> nw.LazyFrame:
    """Purchases up to the end of ``day`` with what was bought: ``customer_id, order_date,
    <column>``; refunds (negative amounts) left out."""
    tx = lazy_frame(transactions, f"{source} transactions", ("customer_id", "order_date"))
    schema = tx.collect_schema()
    keep = nw.col("order_date") < summaries.end_of_day(day)
    if "amount" in schema:
        keep = keep & (nw.col("amount") >= 0)
    tx = tx.filter(keep)
    ids = nw.col("customer_id").cast(nw.String)
    if column in schema:
        return tx.select(ids, "order_date", nw.col(column).cast(nw.String))
    if items is None:
        raise DataError(
            f"{source} transactions",
            f"no {column!r} column: pass items= (order lines with order_id and {column})",
            column=column,
        )
    require(tx, ("order_id",), f"{source} transactions")
    lines = alongside(items, tx, f"{source} items")
    require(lines, ("order_id", column), f"{source} items")
    lines = lines.select(nw.col("order_id").cast(nw.String), nw.col(column).cast(nw.String))
    orders = tx.select(nw.col("order_id").cast(nw.String), ids, "order_date")
    return orders.join(lines, on="order_id", how="inner").select(
        "customer_id", "order_date", column
    )
