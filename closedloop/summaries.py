"""Per-customer summaries (客户汇总): the one door from transactions to what every analysis models.

RFM and the customer pyramid, the KPI tree, CLV, a campaign's outcomes and channel attribution all
start here. One narwhals group-by reduces the raw rows to a few numbers per customer — purchases,
revenue, first and last purchase, the same for named periods ("this period vs the previous one")
— run where the data lives (DuckDB for a pandas frame, polars, a DuckDB relation or Spark; see
:mod:`closedloop._frames`), and the analysis works on that small pandas table.

**Time.** ``asof`` is the *end* of that calendar day, everywhere in the package: a purchase at
23:59 on the asof day counts, one at 00:00 the next day does not. A period ``(start, end)`` holds
both of its days whole. :func:`day` and :func:`end_of_day` are the one place that rule is written.

**Purchases.** ``unit="order"`` counts orders: rows sharing an ``order_id`` (order lines) are one
order, their amounts summed; a row without an order id is an order of its own. ``unit="day"``
counts purchase days: a customer's purchases on one calendar day are one, as the BG/NBD papers
count them. A purchase whose net amount is negative is a **refund**: it lowers ``revenue`` (which
is always net) but is not a purchase, so it never raises ``orders`` nor moves the first or last
purchase date. A zero-amount purchase (a free sample, a fully discounted order) is a purchase.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Collection, Mapping
from typing import Literal

import narwhals as nw
import numpy as np
import pandas as pd

from closedloop._frames import alongside, collect, epoch_microseconds, lazy_frame
from closedloop.errors import DataError

__all__ = [
    "FREQUENCIES",
    "TRANSACTION_COLUMNS",
    "by_period",
    "checked",
    "day",
    "end_of_day",
    "is_in",
    "lookup",
    "per_customer",
    "period_start",
    "purchases",
    "receipts",
    "since",
]

Unit = Literal["order", "day"]
#: the columns every transactions frame needs
TRANSACTION_COLUMNS = ("customer_id", "order_date", "amount")
#: the periods :func:`by_period` groups by, as narwhals truncation intervals
FREQUENCIES = {"day": "1d", "week": None, "month": "1mo", "quarter": "1q"}
_MONDAY = pd.Timestamp("1970-01-05")  # weeks are counted from the first Monday after the epoch
_WEEK_US = 7 * 86_400_000_000
#: sums of amounts are rounded to this many decimals: engines add in different orders (DuckDB
#: and Spark in parallel), and last-bit differences must not reorder ties in scores and tiers
SUM_DECIMALS = 6


#: a day given as text: ISO 8601 (2026-03-31, optionally with a time): "03/04/2026" is 3 April
#: in one country and 4 March in another, and pandas would read it month-first without a word
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def day(value, name: str = "asof") -> pd.Timestamp:
    """The calendar day of ``value`` (a date, a datetime or an ISO string, YYYY-MM-DD), as
    midnight; text in any other form is refused rather than guessed."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(name, f"{name} is required: a date such as 2026-03-31")
    if isinstance(value, str) and not ISO_DAY.fullmatch(value.strip()):
        raise DataError(name, f"not a date: {value!r} (write the day as YYYY-MM-DD: 2026-03-31)")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataError(
            name, f"not a date: {value!r} (use an ISO date such as 2026-03-31)"
        ) from exc
    if pd.isna(stamp):
        raise DataError(name, f"not a date: {value!r} (use an ISO date such as 2026-03-31)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def end_of_day(value, name: str = "asof") -> pd.Timestamp:
    """The first instant after the calendar day of ``value``: rows before it are "as of" that day."""
    return day(value, name) + pd.Timedelta(days=1)


def is_in(ids, among):
    """Which of ``ids`` (customer ids as text) are among ``among``, as a boolean array: one
    hashed pass in Arrow (``pyarrow.compute.is_in``), where pandas' ``isin`` on Arrow-backed
    text walks the values one Python object at a time."""
    import pyarrow.compute as pc

    found = pc.is_in(_text(ids), value_set=_text(among)).fill_null(False)
    return found.to_numpy(zero_copy_only=False)


def lookup(values, ids):
    """``values`` (a Series or frame indexed by unique customer ids) for each of ``ids``, in
    that order and indexed by them, missing where an id is not among them: what
    ``values.reindex(ids)`` gives, its positions found in one hashed pass in Arrow
    (``pyarrow.compute.index_in``), where pandas' indexer turns Arrow-backed text into Python
    objects first."""
    import pyarrow.compute as pc

    ids = pd.Index(ids)
    if not len(values) or not len(ids):
        return values.reindex(ids)
    found = pc.index_in(_text(ids), value_set=_text(values.index)).fill_null(-1)
    at = found.to_numpy(zero_copy_only=False)
    missing = at < 0
    out = values.iloc[np.where(missing, 0, at)]
    out.index = ids
    if missing.any():
        shape = missing if out.ndim == 1 else np.broadcast_to(missing[:, None], out.shape)
        out = out.mask(shape)
    return out


def _text(values):
    """Ids as an Arrow text array (what :func:`is_in` and :func:`lookup` hash)."""
    import pyarrow as pa

    return pa.array(pd.Series(values, copy=False).astype("str").array, type=pa.large_string())


def period_start(asof, days: int | None) -> pd.Timestamp | None:
    """The first day of the ``days`` days that end with the ``asof`` day (``None``: no limit)."""
    if days is None:
        return None
    if int(days) != days or days < 1:
        raise DataError(
            "period_days", f"the number of days must be a whole number >= 1, not {days}"
        )
    return day(asof) - pd.Timedelta(days=int(days) - 1)


def purchases(
    transactions,
    asof,
    *,
    start=None,
    unit: Unit = "order",
    source: str = "transactions",
    anonymous: bool = False,
    carry: tuple[str, ...] = (),
    count_blanks: bool = False,
) -> nw.LazyFrame:
    """The purchases and refunds up to the end of the ``asof`` day (from the ``start`` day when
    given), one row per order or per customer-day (``unit``), lazily: ``customer_id,
    order_date, amount`` and, when the transactions carry them, ``quantity`` (summed) and
    ``is_member`` (any row flagged).

    Receipts without a customer id (non-members' purchases) are left out unless ``anonymous``;
    ``carry`` names columns of the order (a store, a channel) kept on each purchase.

    A missing date or amount is refused (:class:`DataError`) by a pass over the rows first;
    with ``count_blanks`` that pass is left to the caller's own aggregation instead: every row
    with a blank is kept whatever its date or customer, flagged in ``_blank_order_date`` and
    ``_blank_amount`` (1 on such a row, the largest over a purchase's rows) for the caller to
    add up and refuse (``_refuse_counted``; one pass over the rows instead of two). A pandas
    frame is first checked in place by numpy (:func:`_no_blanks`): one that has no blank needs
    neither the pass nor the flags."""
    if unit not in ("order", "day"):
        raise DataError(source, f"unit must be 'order' or 'day', not {unit!r}")
    frame = lazy_frame(transactions, source, TRANSACTION_COLUMNS)
    _check_types(frame, source)
    schema = frame.collect_schema()
    flags = []
    if _CHECKED.get(id(frame)) is frame or _no_blanks(transactions):
        pass  # checked already, or a pandas frame that numpy found whole: no pass, no flags
    elif count_blanks:
        blank = _blanks(frame)
        frame = frame.with_columns(
            *[expr.cast(nw.Int64).alias(f"_blank_{c}") for c, (expr, _) in blank.items()]
        )
        flags = [f"_blank_{c}" for c in blank]
    else:
        _refuse_blanks(frame, source)
    date = nw.col("order_date")
    # a receipt without a customer id is a non-member's purchase: not a customer's to summarise
    keep = date < end_of_day(asof)
    if not anonymous:
        keep = keep & ~nw.col("customer_id").is_null()
    if start is not None:
        keep = keep & (date >= day(start, "start"))
    for flag in flags:  # kept to be counted, whatever their date or customer
        keep = keep.fill_null(False) | (nw.col(flag) > 0)
    frame = frame.filter(keep)
    missing = [c for c in carry if c not in schema]
    if missing:
        raise DataError(source, f"no column {missing[0]!r} in the transactions", column=missing[0])
    extra = [c for c in ("quantity", "is_member", *carry) if c in schema] + flags
    numbers = ["amount", *[c for c in extra if c == "quantity"]]
    sums = [nw.col("amount").sum(), *[_combine(c) for c in extra]]
    if unit == "day":
        return (
            frame.with_columns(date.dt.truncate("1d"))
            .group_by("customer_id", "order_date")
            .agg(*sums)
        )
    if "order_id" not in schema:
        return frame.select("customer_id", "order_date", "amount", *extra)
    loose = nw.col("order_id").is_null()
    keyed = frame.filter(~loose).group_by("customer_id", "order_id").agg(date.min(), *sums)
    same = [nw.col("customer_id"), date, *[nw.col(c).cast(nw.Float64) for c in numbers]]
    same += [nw.col(c) for c in extra if c not in numbers]
    return nw.concat([keyed.select(*same), frame.filter(loose).select(*same)])


def per_customer(
    transactions,
    asof,
    *,
    start=None,
    windows: Mapping[str, tuple] | None = None,
    unit: Unit = "order",
    first_revenue: bool = False,
    source: str = "transactions",
    by: str | None = None,
    window_last: bool | Collection[str] = True,
    window_extras: bool | Collection[str] = True,
    skip: Collection[str] = (),
    sort: bool = True,
    columns: Collection[str] | None = None,
    positions: pd.Index | None = None,
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """One row per customer with a purchase or refund from ``start`` (default: all history) to
    the end of the ``asof`` day, indexed by ``customer_id`` (text, sorted).

    ``by`` (a column of the transactions: a store, a channel): one row per value and customer
    instead, from a single group-by on ``(by, customer_id)``, the value (text; ``"(none)"`` for
    purchases without one) in the first column, in no particular order: a customer buying in
    two stores has a row in each.

    Columns: ``orders`` (purchases, see the module docstring), ``revenue`` (net of refunds),
    ``first_purchase``, ``last_purchase`` (NaT for a customer with refunds only) and, when the
    transactions carry them, ``quantity`` and ``member_orders`` (purchases flagged ``is_member``).
    ``first_revenue`` adds the revenue of the first purchase (one more pass over the rows).

    ``windows`` names periods inside that range, ``{"now": (start, end), "prev": (start, end)}``
    (inclusive days; ``None`` for an open end); each adds ``orders_<name>``, ``revenue_<name>``,
    ``last_purchase_<name>`` and the optional ``quantity_<name>``, ``member_orders_<name>``;
    ``window_last=False`` leaves the windows' last purchases out, and ``window_extras=False``
    their quantity and member orders (fewer aggregates to compute, for callers that read only
    the windows' counts and sums); either may instead name the windows that keep them. Windows
    with the same days are aggregated once and their columns copied. ``columns`` names the
    only columns computed (``None``: all of the above) and ``skip`` columns not computed
    (``first_purchase``, ``revenue``, ...), for a caller that reads a few or never reads some.
    ``sort=False`` leaves the rows in the engine's order (no sort of the ids, for a caller that
    puts them in its own order). ``positions`` (unique text ids, such as a customers table's)
    adds ``_position``, each row's position among them (-1: not there), found by a join where
    the rows are (the engine's threads hash the ids, not one Python thread afterwards).
    """
    carry = (by,) if by else ()
    frame = purchases(
        transactions, asof, start=start, unit=unit, source=source, carry=carry, count_blanks=True
    )
    names = frame.collect_schema().names()
    keys = ["customer_id"]
    if by:
        frame = frame.with_columns(nw.col(by).cast(nw.String).fill_null("(none)").alias("_by"))
        keys = ["_by", "customer_id"]
    date, amount = nw.col("order_date"), nw.col("amount")
    bought = amount >= 0
    parts = {"": nw.lit(True)}
    same = {}  # a window's suffix -> the first window's with the same days
    seen = {}
    for name, (w_start, w_end) in (windows or {}).items():
        inside = nw.lit(True)
        if w_start is not None:
            w_start = day(w_start, f"window {name} start")
            inside = inside & (date >= w_start)
        if w_end is not None:
            w_end = end_of_day(w_end, f"window {name} end")
            inside = inside & (date < w_end)
        parts[f"_{name}"] = inside
        same[f"_{name}"] = seen.setdefault((w_start, w_end), f"_{name}")
    # masked columns first, then plain sums, minima and maxima: every engine groups those fast
    masked = {"first_purchase": (nw.when(bought).then(date), "min")}
    # counted where the condition holds (a null elsewhere): cheaper than a sum of 0/1 flags
    one = nw.lit(1, nw.Int64)
    for suffix, inside in parts.items():
        purchase = inside & bought
        wanted = {"orders": (nw.when(purchase).then(one), "count")}
        wanted["revenue"] = (nw.when(inside).then(amount).otherwise(0.0), "sum")
        if _wanted(window_last, suffix):
            wanted["last_purchase"] = (nw.when(purchase).then(date), "max")
        if _wanted(window_extras, suffix) and "quantity" in names:
            quantity = nw.when(purchase).then(nw.col("quantity").fill_null(0.0)).otherwise(0.0)
            wanted["quantity"] = (quantity, "sum")
        if _wanted(window_extras, suffix) and "is_member" in names:
            member = purchase & nw.col("is_member").fill_null(False)
            wanted["member_orders"] = (nw.when(member).then(one), "count")
        for column, aggregate in wanted.items():
            copied = f"{column}{same.get(suffix, suffix)}"
            masked[f"{column}{suffix}"] = copied if copied in masked else aggregate
    if columns is not None or skip:  # a copy whose window is not kept is computed instead
        kept = {
            k: v for k, v in masked.items() if (columns is None or k in columns) and k not in skip
        }
        masked = {
            k: masked[v] if isinstance(v, str) and v not in kept else v for k, v in kept.items()
        }
    # the blanks are counted in the same pass (refused below): no second scan of the rows
    masked |= {c: (nw.col(c), "sum") for c in names if c.startswith("_blank_")}
    if first_revenue:
        first = nw.when(bought).then(date).min().over(*keys)
        masked["first_revenue"] = (
            nw.when(bought & (date == first)).then(amount).otherwise(0.0),
            "sum",
        )
    copies = {name: of for name, of in masked.items() if isinstance(of, str)}
    computed = {name: agg for name, agg in masked.items() if name not in copies}
    grouped = (
        frame.select(*keys, *[expr.alias(name) for name, (expr, _) in computed.items()])
        .group_by(*keys)
        .agg(*[getattr(nw.col(name), how)() for name, (_, how) in computed.items()])
    )
    if positions is not None:
        grouped = _positioned(grouped, positions)
    per = collect(grouped if by or not sort else grouped.sort(*keys))  # by: unsorted
    per = _refuse_counted(per, transactions, source)
    order = [c for c in dict.fromkeys(["first_purchase", "last_purchase", *masked]) if c in masked]
    if positions is not None:
        order.append("_position")
        if "_position" not in per:  # ids that are not text: found among the positions as text
            import pyarrow.compute as pc

            found = pc.index_in(_text(per["customer_id"]), value_set=_text(positions))
            per["_position"] = found.fill_null(-1).to_numpy(zero_copy_only=False)
        per["_position"] = per["_position"].astype("int64")
    per = per.assign(**{name: per[of] for name, of in copies.items()})
    return _split(per, order, by) if by else _tidy(per, order, sort)


def by_period(
    transactions,
    asof,
    *,
    start=None,
    freq: str = "month",
    unit: Unit = "order",
    source: str = "transactions",
    anonymous: bool = False,
) -> pd.DataFrame:
    """Purchases per customer and calendar period (``freq``: day, week, month or quarter), from
    ``start`` to the end of the ``asof`` day: ``customer_id, period`` (the period's first day;
    weeks start on Monday), ``orders, revenue``, sorted by customer and period. With
    ``anonymous``, the receipts without a customer id are one more customer per period, whose
    ``customer_id`` is missing (sorted last)."""
    if freq not in FREQUENCIES:
        raise DataError(source, f"freq must be one of {', '.join(FREQUENCIES)}, not {freq!r}")
    frame = purchases(
        transactions, asof, start=start, unit=unit, source=source, anonymous=anonymous
    )
    if freq == "week":  # narwhals truncates by day, month, ...: weeks are counted from a Monday
        frame = epoch_microseconds(frame, "order_date", "_us")
        period = (nw.col("_us") - (_MONDAY - pd.Timestamp(0)) // pd.Timedelta("1us")) // _WEEK_US
    else:
        period = nw.col("order_date").dt.truncate(FREQUENCIES[freq])
    bought = nw.when(nw.col("amount") >= 0).then(nw.lit(1, nw.Int64))  # counted: null if not
    per = collect(
        frame.with_columns(period.alias("period"), bought.alias("orders"))
        .group_by("customer_id", "period")
        .agg(nw.col("orders").count(), nw.col("amount").sum().alias("revenue"))
        .sort("customer_id", "period")
    )
    per["customer_id"] = per["customer_id"].astype("str")  # a missing id stays missing
    if freq == "week":
        per["period"] = _MONDAY + pd.to_timedelta(per["period"].astype("int64") * 7, unit="D")
    per["period"] = per["period"].astype("datetime64[ns]")
    per["orders"] = per["orders"].astype("int64")
    per["revenue"] = per["revenue"].astype("float64").round(SUM_DECIMALS)
    return per.sort_values(["customer_id", "period"], ignore_index=True, na_position="last")


def receipts(
    transactions,
    asof,
    *,
    start=None,
    by: str | None = None,
    source: str = "transactions",
) -> pd.DataFrame:
    """All purchases from ``start`` to the end of the ``asof`` day, members', non-members' and
    anonymous ones (a receipt with a null ``customer_id``), per value of the ``by`` column of
    the transactions (a store, a channel; ``None``: one row ``"all"``). Orders are counted as
    in :func:`purchases`; a refund is not an order.

    Columns: ``orders``, ``anonymous_orders``, ``revenue``, ``anonymous_revenue`` (net), indexed
    by the ``by`` value (text; a receipt without one is under ``"(none)"``), sorted."""
    carry = (by,) if by else ()
    frame = purchases(transactions, asof, start=start, source=source, anonymous=True, carry=carry)
    group = nw.col(by).cast(nw.String) if by else nw.lit("all")
    anon, bought = nw.col("customer_id").is_null(), nw.col("amount") >= 0
    per = collect(
        frame.select(
            group.alias("group"),
            nw.when(bought).then(nw.lit(1, nw.Int64)).alias("orders"),
            nw.when(bought & anon).then(nw.lit(1, nw.Int64)).alias("anonymous_orders"),
            nw.col("amount").alias("revenue"),
            nw.when(anon).then(nw.col("amount")).otherwise(0.0).alias("anonymous_revenue"),
        )
        .group_by("group")
        .agg(
            nw.col("orders", "anonymous_orders").count(),
            nw.col("revenue", "anonymous_revenue").sum(),
        )
    )
    per["group"] = per["group"].astype("str").fillna("(none)")
    per = per.rename(columns={"group": "customer_id"})
    out = _tidy(per, ["orders", "anonymous_orders", "revenue", "anonymous_revenue"])
    out["anonymous_orders"] = out["anonymous_orders"].astype("int64")
    out["anonymous_revenue"] = out["anonymous_revenue"].astype("float64").round(SUM_DECIMALS)
    out.index.name = by or "group"
    return out


def since(
    transactions,
    starts,
    asof,
    *,
    days: int | None = None,
    unit: Unit = "order",
    source: str = "transactions",
    by: str | None = None,
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Each customer's purchases from their own start on: ``starts`` has ``customer_id`` and
    ``start`` (a first touch, a join date; missing: all their purchases count); purchases at or
    after it, up to the end of the ``asof`` day and, with ``days``, within that many days of it.

    One row per customer of ``starts`` who bought: ``first_purchase`` (the first purchase at or
    after the start), ``orders`` and ``revenue`` (net) since then, indexed by ``customer_id``.
    ``by`` (a column of the transactions): one row per value and customer, as
    :func:`per_customer` does."""
    if days is not None and days < 1:
        raise DataError(source, f"days must be >= 1, not {days}")
    frame = purchases(transactions, asof, unit=unit, source=source, carry=(by,) if by else ())
    keys = ["customer_id"]
    if by:
        frame = frame.with_columns(nw.col(by).cast(nw.String).fill_null("(none)").alias("_by"))
        keys = ["_by", "customer_id"]
    begin = lazy_frame(starts, f"{source} starts", ("customer_id", "start"))
    begin = begin.select(nw.col("customer_id").cast(nw.String), nw.col("start"))
    begin = begin.group_by("customer_id").agg(nw.col("start").min())
    date, origin = nw.col("order_date"), nw.col("start")
    keep = origin.is_null() | (date >= origin)
    if days is not None:
        keep = keep & (origin.is_null() | (date < origin + pd.Timedelta(days=days)))
    bought = nw.col("amount") >= 0
    per = collect(
        frame.with_columns(nw.col("customer_id").cast(nw.String))
        .join(alongside(begin, frame, f"{source} starts"), on="customer_id", how="inner")
        .filter(keep)
        .select(
            *keys,
            nw.when(bought).then(date).alias("first_purchase"),
            bought.cast(nw.Int64).alias("orders"),
            nw.col("amount").alias("revenue"),
        )
        .group_by(*keys)
        .agg(nw.col("first_purchase").min(), nw.col("orders", "revenue").sum())
        .sort(*keys)
    )
    order = ["first_purchase", "orders", "revenue"]
    return _split(per, order, by) if by else _tidy(per, order)


def checked(transactions, source: str = "transactions") -> nw.LazyFrame:
    """The transactions as a lazy frame, checked once (:func:`purchases`' rules: a date, a
    numeric amount, none missing): every summary made of that frame afterwards skips the check
    and its pass over the rows. For a caller that summarises one frame many times (the
    member-health check)."""
    frame = lazy_frame(transactions, source, TRANSACTION_COLUMNS)
    _check(frame, source)
    _CHECKED[id(frame)] = frame
    return frame


#: the frames :func:`checked` has passed, by identity (a frame is forgotten with its last use)
_CHECKED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _check(frame: nw.LazyFrame, source: str) -> None:
    """:func:`_check_types`, then :func:`_refuse_blanks`."""
    _check_types(frame, source)
    _refuse_blanks(frame, source)


def _check_types(frame: nw.LazyFrame, source: str) -> None:
    """The date is a date and the amount a number (the schema alone, no pass over the rows)."""
    schema = frame.collect_schema()
    if not isinstance(schema["order_date"], nw.Datetime | nw.Date):
        raise DataError(
            source,
            f"order_date must be a date or datetime, not {schema['order_date']}"
            " (read the file with closedloop.io.read_transactions)",
            column="order_date",
        )
    if not schema["amount"].is_numeric():
        raise DataError(source, f"amount must be numeric, not {schema['amount']}", column="amount")


def _no_blanks(transactions) -> bool:
    """Whether ``transactions`` is a pandas frame without a missing date or amount (NaN
    included), found by numpy on the columns in place: a few milliseconds for 10M rows, where
    counting blanks in the engine's group-by costs two more aggregates per customer. A frame
    with a blank, or of another kind, is left to the engine's rules (:func:`_blanks`)."""
    if not isinstance(transactions, pd.DataFrame):
        return False
    return not any(transactions[c].isna().any() for c in ("order_date", "amount"))


def _blanks(frame: nw.LazyFrame) -> dict[str, tuple[nw.Expr, str]]:
    """The blank-value rules of the transactions: per column, the expression flagging a row and
    the rule's words."""
    amount = nw.col("amount")
    blank_amount = amount.is_null()
    if frame.collect_schema()["amount"].is_float():
        blank_amount = blank_amount | amount.is_nan().fill_null(False)
    return {
        "order_date": (nw.col("order_date").is_null(), "missing date"),
        "amount": (blank_amount, "missing or non-numeric amount"),
    }


def _positioned(grouped: nw.LazyFrame, positions: pd.Index) -> nw.LazyFrame:
    """``grouped`` with ``_position``, each row's position among the text ids ``positions``
    (-1: not there), by a left join on the engine; ids that are not text there are left to
    :func:`per_customer` to find (their text forms are pandas', not the engine's)."""
    if grouped.collect_schema()["customer_id"] != nw.String:
        return grouped
    ids = pd.Series(_text(positions), dtype="str")
    table = pd.DataFrame({"customer_id": ids, "_position": np.arange(len(ids))})
    joined = grouped.join(alongside(table, grouped, "positions"), on="customer_id", how="left")
    return joined.with_columns(nw.col("_position").fill_null(-1))


def _refuse_counted(per: pd.DataFrame, transactions, source: str) -> pd.DataFrame:
    """A summary aggregated from :func:`purchases` with ``count_blanks``, without the blanks'
    counts and the rows they kept: raises :class:`DataError` as :func:`purchases` does (the
    offending rows read again, on failure only) when any blank was counted."""
    flags = [c for c in per.columns if c.startswith("_blank_")]
    if any(int(per[c].fillna(0).sum()) for c in flags):
        _refuse_blanks(lazy_frame(transactions, source, TRANSACTION_COLUMNS), source)
    per = per.drop(columns=flags)
    known = per["customer_id"].notna().to_numpy()
    return per if known.all() else per[known]  # a copy only when a row goes


def _refuse_blanks(frame: nw.LazyFrame, source: str) -> None:
    """A missing date or amount is an error, not a row quietly left out or summed as 0 (frames
    that did not come through :mod:`closedloop.io` get the same rule as files that did). One
    pass over the rows, where they live."""
    rules = _blanks(frame)
    counts = collect(
        frame.select(*[e.cast(nw.Int64).sum().alias(c) for c, (e, _) in rules.items()])
    )
    for column, (expr, rule) in rules.items():
        n = int(counts[column].iloc[0] or 0)
        if n:
            rows = collect(frame.filter(expr).head(5))
            raise DataError(source, rule, column=column, rows=rows, n_bad=n)


def _wanted(chosen: bool | Collection[str], suffix: str) -> bool:
    """Whether the window of ``suffix`` (``""``: all history, always) gets an optional
    aggregate: ``chosen`` is True (every window), False (none) or the windows' names."""
    if not suffix or isinstance(chosen, bool):
        return not suffix or chosen
    return suffix[1:] in chosen


def _combine(column: str) -> nw.Expr:
    """How an optional column is carried from rows to a purchase: quantities add, a member flag
    on any row flags the purchase."""
    return nw.col(column).sum() if column == "quantity" else nw.col(column).max()


def _split(per: pd.DataFrame, order: list[str], by: str) -> pd.DataFrame:
    """A summary grouped by ``(_by, customer_id)`` as :func:`_tidy` does, with the ``by``
    value (text) as the first column, in the engine's order."""
    per = _types(per.rename(columns={"_by": by}))
    per[by] = per[by].astype("str")
    return per.set_index("customer_id")[[by, *[c for c in order if c in per.columns]]]


def _types(per: pd.DataFrame) -> pd.DataFrame:
    """Text ids, dates as datetime64[ns], counts as int64, sums as float64 rounded to
    :data:`SUM_DECIMALS`."""
    per["customer_id"] = per["customer_id"].astype("str")
    for column in per.columns:
        if column.startswith(("first_purchase", "last_purchase")):
            per[column] = per[column].astype("datetime64[ns]")
        elif column.startswith(("orders", "member_orders")):
            per[column] = per[column].astype("int64")
        elif column.startswith(("revenue", "quantity", "first_revenue")):
            per[column] = per[column].astype("float64").round(SUM_DECIMALS)
    return per


def _tidy(per: pd.DataFrame, order: list[str], sort: bool = True) -> pd.DataFrame:
    """The engine's summary as the package's pandas: text ids as a sorted index (``sort``;
    else in the engine's order), dates as datetime64[ns], counts as int64, sums as float64
    rounded to :data:`SUM_DECIMALS`."""
    per = _types(per).set_index("customer_id")[[c for c in order if c in per.columns]]
    if not sort:
        return per
    # engines sort ids as text already; ids that were numbers sort again now that they are text
    return per if per.index.is_monotonic_increasing else per.sort_index()
