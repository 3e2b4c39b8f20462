"""The data contract: every table enters the package through one of these readers.

Each reader takes a CSV / Parquet path or a DataFrame, renames columns with an optional mapping
(``columns={"cust_no": "customer_id"}``), parses dates, casts ids to strings and validates. Bad
input raises :class:`closedloop.DataError` naming the source, the column, the rule and a few
offending rows. Nothing is dropped silently: the only rows ever removed are exact duplicates and
rows dated after the ``asof`` day (``asof`` is the end of its day, see :mod:`closedloop.summaries`),
and their counts are reported in a :class:`DataWarning` and in ``frame.attrs["quality"]``
(the ``exclude`` outlier rule, asked for explicitly, is the one other).

**Files.** A CSV is read as UTF-8 (a BOM is allowed); a UTF-16 file is recognised by its BOM,
and a file that is not UTF-8 is read as GB18030 (which includes GBK) when that gives Chinese
text. Anything else needs ``encoding=``. An empty file, a directory, a device, a ragged row
or an unreadable Parquet file is one :class:`DataError` naming the file.

**Dates.** ISO dates (``2026-03-01``, with or without a time) and 8-digit ``YYYYMMDD`` integers
are read as they are. Dates such as ``01/03/2026`` or ``05.03.2026`` are read day-first or
month-first only when exactly one of the two orders fits every value of the column; when both
fit, the column is ambiguous and refused (give ``date_format="%d/%m/%Y"`` or ``"%m/%d/%Y"``).
Other integers (epoch seconds, Excel serial days) are refused. A date with a UTC offset or time
zone keeps the wall-clock time as written (the offset is dropped, the time is not shifted), or
is converted to the wall clock of ``timezone=`` when given: an order at 23:30 in Shanghai stays on
its day either way.

**Where the checks run.** A Parquet file, glob or folder and a DuckDB table or query are read
once into Arrow (a file by pyarrow, the others by DuckDB) and checked there with Arrow and numpy;
clean typed data becomes the pandas frame from the same buffers. A broken rule, or a column that
needs the text parsing above, sends the table through the pandas checks, so every route gives
the same errors and the same quality counts (:func:`_in_engine`).

**Outliers.** See :func:`outlier_threshold`: amounts beyond it are flagged (counted and warned),
or, when asked, capped at it or excluded.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import warnings
import zoneinfo
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop import sources, summaries
from closedloop.errors import DataError
from closedloop.plan import Source, is_glob

__all__ = [
    "OUTLIER_RULES",
    "DataWarning",
    "id_format_hint",
    "outlier_threshold",
    "read_assignments",
    "read_customers",
    "read_events",
    "read_items",
    "read_outcomes",
    "read_points",
    "read_transactions",
]


class DataWarning(UserWarning):
    """Input that is kept but deserves attention (refunds, removed exact duplicates, outliers)."""


#: what to do with outlying amounts: count and warn, cap them at the threshold, leave them out
OUTLIER_RULES = ("flag", "cap", "exclude")
#: an amount is an outlier beyond median * exp(OUTLIER_SDS robust SDs of the log amounts) ...
OUTLIER_SDS = 8.0
#: ... and never below this multiple of the median (columns of nearly identical amounts)
OUTLIER_MIN_RATIO = 100.0
#: fewer non-zero amounts than this are too few to tell an outlier
OUTLIER_MIN_ROWS = 20


@dataclass(frozen=True)
class _Table:
    name: str
    required: tuple[str, ...]
    ids: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    key_fields: tuple[str, ...] = ()  # must agree across rows sharing the key (default: all)
    nullable: tuple[str, ...] = ()  # required columns whose values may be missing


TRANSACTIONS = _Table(
    "transactions",
    required=("customer_id", "order_date", "amount"),
    ids=("customer_id", "order_id", "store"),
    dates=("order_date",),
    numbers=("amount", "quantity"),
    flags=("is_member",),
    key=("order_id",),
    key_fields=("customer_id", "order_date"),
)
CUSTOMERS = _Table(
    "customers",
    required=("customer_id",),
    ids=("customer_id", "referrer_id", "home_store", "join_store"),  # stores as text, as receipts'
    dates=("join_date",),
    flags=("is_member", "online"),
    key=("customer_id",),
)
ASSIGNMENTS = _Table(
    "assignments",
    required=("customer_id", "arm"),
    ids=("customer_id",),
    dates=("sent_at",),
    numbers=("cost",),
    key=("customer_id",),
    key_fields=("arm",),
)
OUTCOMES = _Table(
    "outcomes",
    required=("customer_id",),
    ids=("customer_id",),
    numbers=("visited", "converted", "orders", "revenue"),
    key=("customer_id",),
)
EVENTS = _Table(
    "events",
    required=("entity_id", "stage", "timestamp"),
    ids=("entity_id", "customer_id"),
    dates=("timestamp",),
)
ITEMS = _Table("items", required=("order_id", "item"), ids=("order_id",))
POINTS = _Table(
    "points",
    required=("customer_id", "date", "points", "kind"),
    ids=("customer_id", "order_id"),
    dates=("date",),
    numbers=("points",),
)
POINT_KINDS = ("earn", "redeem", "expire")

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def read_transactions(
    data,
    columns=None,
    asof=None,
    source=None,
    date_format=None,
    encoding=None,
    timezone=None,
    outliers="flag",
    anonymous=False,
) -> pd.DataFrame:
    """Transactions (one row per order, or per order line when an ``item`` column is present).

    Required: ``customer_id, order_date, amount``. Optional: ``order_id, channel, store, item,
    quantity, is_member``. Rules: dates parse, amounts are numbers, customer ids are present,
    rows dated after the ``asof`` day are left out (and counted), rows sharing an ``order_id``
    agree on customer and date (and, for order-level data, on everything). Refunds (negative
    amounts) are kept and counted. Outlying amounts are handled by ``outliers`` (``"flag"``,
    ``"cap"`` or ``"exclude"``, see :func:`outlier_threshold`). ``date_format``, ``encoding`` and
    ``timezone``: see the module docstring. With ``anonymous=True`` a receipt may have no
    ``customer_id``: a null customer_id means not a member (an anonymous store receipt); it counts
    in member share as a non-member order and is left out of everything per customer.
    """
    table = replace(TRANSACTIONS, nullable=("customer_id",)) if anonymous else TRANSACTIONS
    frame = _read(table, data, columns, asof, source, None, date_format, encoding, timezone)
    frame = _outliers(frame, "amount", outliers)
    refunds = int((frame["amount"] < 0).sum())
    if refunds:
        _warn(frame, f"{refunds:,} refund row(s) with a negative amount kept", refunds=refunds)
    return frame


def read_customers(
    data, columns=None, asof=None, source=None, date_format=None, encoding=None, timezone=None
) -> pd.DataFrame:
    """Customers: one row per ``customer_id``; optional ``join_date, is_member, online,
    source_channel, referrer_id, home_store, join_store`` and any attribute columns.
    ``home_store`` and ``join_store`` (where a member joined) are read as the receipts' ``store``
    is (text, ``101`` not ``101.0``, leading zeros kept, blank for none), so that they name the
    same stores."""
    return _read(
        CUSTOMERS, data, columns, asof, source, "join_date", date_format, encoding, timezone
    )


def read_assignments(
    data, columns=None, asof=None, source=None, date_format=None, encoding=None, timezone=None
) -> pd.DataFrame:
    """Campaign assignments: one arm per customer; at least two arms (one is the holdout)."""
    frame = _read(
        ASSIGNMENTS, data, columns, asof, source, "sent_at", date_format, encoding, timezone
    )
    arms = frame["arm"].astype("str")
    if arms.nunique() < 2:
        raise DataError(
            frame.attrs["quality"]["source"],
            f"the arm column has a single value ({_short(arms.iloc[0])}); a campaign needs a"
            " holdout and at least one treated arm",
            column="arm",
            rows=frame.head(5),
            n_bad=len(frame),
        )
    frame["arm"] = arms
    return frame


def read_outcomes(
    data, columns=None, source=None, date_format=None, encoding=None, outliers="flag"
) -> pd.DataFrame:
    """Campaign outcomes: one row per ``customer_id``, one numeric column per metric.

    Known metrics: ``visited`` and ``converted`` (0/1), ``orders`` and ``revenue``; when the
    outcomes table is absent they are derived from the transactions in the campaign period.
    Every metric cell holds a number: a blank cell is refused, because it cannot be told from
    "not measured". A customer *absent* from the table has no outcome (0), see
    :func:`closedloop.pdca.load`. Outlying ``revenue`` is handled by ``outliers`` as for
    transactions; ``exclude`` leaves the customer out (listed in
    ``attrs["quality"]["excluded_ids"]``).
    """
    frame = _read(OUTCOMES, data, columns, None, source, None, date_format, encoding)
    source = frame.attrs["quality"]["source"]
    metrics = [c for c in ("visited", "converted", "orders", "revenue") if c in frame.columns]
    if not metrics:
        raise DataError(
            source,
            "no metric column: give at least one of visited, converted, orders, revenue"
            f"; found: {_names(frame.columns)}",
            column="converted",
        )
    for col in metrics:
        blank = frame[col].isna()
        if blank.any():
            raise DataError(
                source,
                "blank outcome: every listed customer needs a value (write 0 for no outcome,"
                " or leave the customer out of the file)",
                column=col,
                rows=frame[blank],
                n_bad=int(blank.sum()),
            )
    for col in ("visited", "converted"):
        if col in frame.columns:
            bad = ~frame[col].isin([0, 1])
            if bad.any():
                raise DataError(
                    source,
                    "a 0/1 outcome holds other values",
                    column=col,
                    rows=frame[bad],
                    n_bad=int(bad.sum()),
                )
    if "revenue" in frame.columns:
        before = frame["customer_id"]
        frame = _outliers(frame, "revenue", outliers)
        if outliers == "exclude":
            gone = before[~before.isin(frame["customer_id"])]
            frame.attrs["quality"]["excluded_ids"] = gone.tolist()
    return frame


def read_events(
    data, columns=None, asof=None, source=None, date_format=None, encoding=None, timezone=None
) -> pd.DataFrame:
    """Funnel events: ``entity_id, stage, timestamp`` (optional ``channel``, ``customer_id``)."""
    frame = _read(EVENTS, data, columns, asof, source, None, date_format, encoding, timezone)
    frame["stage"] = frame["stage"].astype("str")
    return frame


def read_items(data, columns=None, source=None, encoding=None, **_) -> pd.DataFrame:
    """Order lines for the basket rules: ``order_id, item`` (optional ``category, quantity,
    price`` and others), read and checked like every table (a file, its encoding, the columns)."""
    return _read(ITEMS, data, columns, None, source, encoding=encoding)


def read_points(
    data, columns=None, asof=None, source=None, date_format=None, encoding=None, timezone=None
) -> pd.DataFrame:
    """The points ledger (积分): one row per event, ``customer_id, date, points, kind`` with
    ``kind`` one of earn, redeem, expire and ``points`` a number >= 0 (the kind gives the
    direction); optional ``order_id``. Worked by :mod:`closedloop.points`."""
    frame = _read(POINTS, data, columns, asof, source, None, date_format, encoding, timezone)
    source = frame.attrs["quality"]["source"]
    kind = frame["kind"].astype("str").str.strip().str.lower()
    bad = ~kind.isin(POINT_KINDS)
    if bad.any():
        raise DataError(
            source,
            f"kind must be one of {', '.join(POINT_KINDS)}",
            column="kind",
            rows=frame[bad.to_numpy()],
            n_bad=int(bad.sum()),
        )
    negative = frame["points"] < 0
    if negative.any():
        raise DataError(
            source,
            "points must be >= 0 (the kind gives the direction: earn adds, redeem and expire take)",
            column="points",
            rows=frame[negative.to_numpy()],
            n_bad=int(negative.sum()),
        )
    frame["kind"] = kind
    return frame


def _read(
    table,
    data,
    columns,
    asof,
    source,
    asof_column=None,
    date_format=None,
    encoding=None,
    timezone=None,
) -> pd.DataFrame:
    checked = _in_engine(table, data, columns, asof, source, asof_column, timezone)
    if checked is not None:
        return checked
    frame, source = _load(table, data, columns, source, encoding)
    if timezone is not None:
        try:
            zoneinfo.ZoneInfo(str(timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise DataError(
                source, f"unknown timezone {_short(timezone)} (use a name such as Asia/Shanghai)"
            ) from None
    rows_read = len(frame)
    if rows_read == 0:
        raise DataError(source, f"the {table.name} table is empty (no rows)")
    missing = [c for c in table.required if c not in frame.columns]
    if missing:
        raise DataError(
            source,
            f"required column(s) {', '.join(missing)} missing; found: {_names(frame.columns)}. "
            "Map your names with columns={'your_name': '" + missing[0] + "'}",
            column=missing[0],
        )
    for col in table.ids:
        if col in frame.columns:
            required = col in table.required and col not in table.nullable
            frame[col] = _ids(frame, col, source, required=required)
    for col in table.dates:
        if col in frame.columns:
            frame[col] = _dates(frame, col, source, col in table.required, date_format, timezone)
    for col in table.numbers:
        if col in frame.columns:
            frame[col] = _numbers(frame, col, source, required=col in table.required)
    for col in table.flags:
        if col in frame.columns:
            frame[col] = _flags(frame, col, source)
    limit_col = _asof_column(table, asof_column)
    late = 0
    if asof is not None and limit_col in frame.columns:
        # asof is the end of its day: a row of that day is kept, one of the next day is not
        after = (frame[limit_col] >= summaries.end_of_day(asof)).to_numpy()
        late = int(after.sum())
        frame = frame[~after]
    frame, dropped = _deduplicate(frame, table, source)
    return _kept(frame, table, source, rows_read, late, dropped, asof)


def _asof_column(table, asof_column=None):
    return asof_column or (table.dates[0] if table.dates else None)


def _kept(frame, table, source, rows_read, late, dropped, asof) -> pd.DataFrame:
    """The validated rows with their quality record and warnings (both routes end here)."""
    removed = {"exact duplicate rows": dropped, "dated after asof": late}
    first, last = _days(frame, table.dates[0]) if table.dates else (None, None)
    frame.attrs["quality"] = {
        "source": source,
        "table": table.name,
        "rows_read": rows_read,
        "rows_kept": len(frame),
        "dropped": {reason: n for reason, n in removed.items() if n},
        "date_min": first,
        "date_max": last,
    }
    if late:
        day = summaries.day(asof)
        _warn(frame, f"{late:,} row(s) dated after asof {day:%Y-%m-%d} left out", after_asof=late)
    if dropped:
        _warn(frame, f"{dropped:,} exact duplicate row(s) removed", duplicates=dropped)
    return frame.reset_index(drop=True)


#: what Python's str.strip() removes: an id with any of these around it is not what it shows
_SPACE = "".join(f"\\x{{{c:x}}}" for c in range(0x3001) if chr(c).isspace())
_EDGE_SPACE = f"^[{_SPACE}]|[{_SPACE}]$"


def _in_engine(table, data, columns, asof, source, asof_column, timezone):
    """The contract's checks run on the rows in Arrow, read once: a Parquet file by pyarrow (as
    ``pandas.read_parquet`` reads it), Parquet globs and folders and DuckDB tables and queries
    by DuckDB; clean typed data becomes the pandas frame without a second read.

    The checks count every rule's offending rows with Arrow kernels and numpy on the Arrow
    buffers: blank ids, ids in scientific notation or with surrounding whitespace, missing dates
    and amounts (NULL or NaN), infinite amounts, rows after asof, repeated order ids. Anything
    else (a broken rule, text dates or numbers, a bad mapping) returns None, and the pandas route
    reads the table and reports it, so the message, the rows shown and the quality counts are
    those of the pandas checks."""
    import pyarrow.compute as pc

    found = _engine_source(table, data, columns)
    if found is None:
        return None
    arrow, label = found
    del found
    checked = _engine_rows(table, arrow, columns, asof, asof_column, timezone)
    if checked is None:
        return None
    rows_read = arrow.num_rows
    arrow, after, late = checked  # the checked table shares the columns it leaves as they are
    del checked
    if late:
        arrow = arrow.filter(pc.invert(after))  # the unfiltered table is let go once this is made
    del after
    frame = arrow.to_pandas(split_blocks=True, self_destruct=True)  # frees Arrow as it goes
    del arrow
    return _kept(frame, table, source or label, rows_read, late, 0, asof)


def _engine_source(table, data, columns):
    """``(arrow, label)``: the rows of a Parquet file, glob or folder or DuckDB table or query
    in Arrow, read once; None for every other source or one that cannot be read so."""
    arrow = sources.parquet_file(data)
    if arrow is not None:
        return arrow, str(data)
    relation = sources.relation(data, table.name)
    if relation is None:
        return None
    con, rel, label, zones = relation
    with con:
        arrow = _duckdb_rows(table, rel, columns)
    return None if arrow is None else (sources.with_zones(arrow, zones), label)


def _quoted(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _duckdb_rows(table, rel, columns):
    """The relation's rows in Arrow, decimal numbers converted to doubles by DuckDB (as its
    pandas conversion does); None when DuckDB cannot read them."""
    import duckdb

    columns = dict(columns or {})
    picked = []
    for name, kind in zip(rel.columns, rel.types, strict=True):
        value = _quoted(name)
        if columns.get(name, name) in table.numbers and str(kind).startswith("DECIMAL"):
            value = f"CAST({value} AS DOUBLE) AS {value}"
        picked.append(value)
    try:
        arrow = rel.project(", ".join(picked)).arrow()
    except duckdb.Error:  # out-of-range dates and the like: the pandas route names them
        return None
    return arrow.read_all() if hasattr(arrow, "read_all") else arrow


def _engine_rows(table, arrow, columns, asof, asof_column, timezone):
    """``(arrow, after, late)``: the table renamed and typed as the pandas checks leave it, the
    mask of its rows after asof and their count; None when a rule is broken or a column or
    the mapping needs the pandas route."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = dict(columns or {})
    names = arrow.column_names
    renamed = [columns.get(n, n) for n in names]
    if any(c not in names for c in columns) or len(set(renamed)) < len(renamed):
        return None
    if any(c not in renamed for c in table.required) or arrow.num_rows == 0:
        return None
    if timezone is not None:
        try:
            zoneinfo.ZoneInfo(str(timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return None
    arrow = arrow.rename_columns(renamed)
    key = [c for c in table.key if c in renamed]

    def check(name, values):
        checked = _engine_column(table, name, values)
        return checked, checked is not None and key == [name] and _unique_key([checked])

    try:
        # the columns side by side: Arrow's kernels and numpy's loops let go of the GIL
        read = arrow.columns
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = list(pool.map(check, renamed, read))
        for i, (checked, _) in enumerate(results):
            if checked is None:
                return None
            if checked is not read[i]:
                arrow = arrow.set_column(i, renamed[i], checked)
        if len(key) == 1:
            unique = results[renamed.index(key[0])][1]
        else:
            unique = _unique_key([arrow[c] for c in key])
        if not unique:
            return None
        limit_col = _asof_column(table, asof_column)
        after, late = None, 0
        if asof is not None and limit_col in renamed:
            eod = pa.scalar(summaries.end_of_day(asof).as_unit("ns").value, pa.timestamp("ns"))
            after = pc.greater_equal(arrow[limit_col], eod).fill_null(False)
            late = pc.sum(after).as_py() or 0
    except pa.ArrowException:  # out-of-range dates and the like: the pandas route names them
        return None
    return arrow, after, late


def _engine_column(table, name, values):
    """The column as the pandas checks would leave it (ids text, dates ``timestamp[ns]``,
    numbers doubles), or None when a rule is broken or the type needs the pandas route."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type
    if name in table.ids:
        required = name in table.required and name not in table.nullable
        if pa.types.is_integer(kind):  # pandas reads an integer column with gaps as floats
            return None if values.null_count else values.cast(pa.large_string())
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return None
        return _text_ids(values, required)
    if name in table.dates:
        if not (pa.types.is_date(kind) or (pa.types.is_timestamp(kind) and kind.tz is None)):
            return None
        if kind != pa.timestamp("ns"):
            values = values.cast(pa.timestamp("ns"))
        return None if name in table.required and values.null_count else values
    if name in table.numbers:
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            return None
        if kind != pa.float64():
            values = values.cast(pa.float64())
        if pc.any(pc.is_inf(values)).as_py():
            return None
        # NaN in a Parquet double is not NULL to Arrow, but a missing amount all the same
        if name in table.required and (values.null_count or pc.any(pc.is_nan(values)).as_py()):
            return None
        return values
    if name in table.flags:
        return values if pa.types.is_boolean(kind) and not values.null_count else None
    return values


def _text_ids(values, required):
    """Text ids as the pandas checks leave them (blank ones missing), or None when one is blank
    in a required column, has whitespace around it (:data:`_EDGE_SPACE`) or is in scientific
    notation (:data:`_SCIENTIFIC`). The regular expressions (Arrow's) run only on what a screen
    of the Arrow buffers in numpy cannot clear: the values that begin or end with a control,
    space or non-ASCII byte (looked for only when the text holds one at all), and a column that
    holds an ``e`` or ``E`` at all."""
    import pyarrow as pa
    import pyarrow.compute as pc

    gaps = lettered = False
    for chunk in values.chunks:
        _, offsets, data = chunk.buffers()
        wide = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets, dtype=wide)[chunk.offset : chunk.offset + len(chunk) + 1]
        filled = offsets[1:] > offsets[:-1]  # neither null nor empty
        whole = bool(filled.all())
        gaps = gaps or not whole
        if data is None or not filled.any():
            continue
        data = np.frombuffer(data, dtype=np.uint8)
        text = data[offsets[0] : offsets[-1]]
        if text.min() <= 0x20 or text.max() >= 0x80:  # such a byte somewhere: at an edge?
            if whole:
                first, last = data[offsets[:-1]], data[offsets[1:] - 1]
            else:
                first, last = data[offsets[:-1][filled]], data[offsets[1:][filled] - 1]
            odd = (first <= 0x20) | (first >= 0x80) | (last <= 0x20) | (last >= 0x80)
            if odd.any():
                suspect = np.zeros(len(chunk), dtype=bool)
                suspect[filled] = odd
                found = pc.match_substring_regex(chunk.filter(suspect), _EDGE_SPACE)
                if pc.any(found).as_py():
                    return None
        if not lettered:
            raw = text.tobytes()
            lettered = b"e" in raw or b"E" in raw
    if required and gaps:
        return None
    if lettered and pc.any(pc.match_substring_regex(values, f"^(?:{_SCIENTIFIC})$")).as_py():
        return None
    if gaps:
        empty = pc.equal(values, "")
        if pc.any(empty).as_py():
            return pc.if_else(empty, pa.scalar(None, values.type), values)
    return values


def _unique_key(key) -> bool:
    """Whether no two rows with a key (its columns) share it: exactly for a key that reads as
    integers (order numbers, :func:`_unique_integers`) or whose text increases down the table,
    else by a count of distinct 64-bit hashes in DuckDB (equal hashes can only over-count)."""
    import pyarrow as pa

    if not key:
        return True
    if len(key) == 1:
        try:
            unique = _unique_integers(key[0])
        except pa.ArrowException:  # not integers
            unique = True if _increasing_text(key[0]) else None
        if unique is not None:
            return unique
    import duckdb

    keys = pa.table({f"k{i}": values for i, values in enumerate(key)})
    names = [f"k{i}" for i in range(len(key))]
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in names)
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        ((rows, distinct),) = (
            con.from_arrow(keys)
            .aggregate(
                f"count(*) FILTER (WHERE {keyed}),"
                f" count(DISTINCT hash({', '.join(names)})) FILTER (WHERE {keyed})"
            )
            .fetchall()
        )
    return distinct == rows


def _integer_codes(values):
    """The present values of a key, chunk by chunk, cast to integers by Arrow (numpy arrays);
    equal values give equal integers, so distinct integers prove distinct values."""
    import pyarrow as pa

    for chunk in values.chunks:
        present = chunk.drop_null() if chunk.null_count else chunk
        yield present.cast(pa.int64()).to_numpy()


def _increasing_text(values) -> bool:
    """Whether each present value sorts after the one before it (Arrow's comparison of the
    bytes, a chunk at a time): then no two are equal."""
    import pyarrow.compute as pc

    last = None
    for chunk in values.chunks:
        present = chunk.drop_null() if chunk.null_count else chunk
        if not len(present):
            continue
        if last is not None and not pc.less(last, present[0]).as_py():
            return False
        if len(present) > 1 and not pc.all(pc.less(present[:-1], present[1:])).as_py():
            return False
        last = present[-1]
    return True


def _unique_integers(values) -> bool | None:
    """Whether the key's integers are all different: true when they increase (a chunk at a
    time, in numpy), else told on a bitmap of their range when it is at most four times their
    number; None when it is wider (the hash count decides)."""
    last, low, high, rows, increasing = None, None, None, 0, True
    for codes in _integer_codes(values):
        if not len(codes):
            continue
        if increasing:
            increasing = (last is None or codes[0] > last) and bool((codes[1:] > codes[:-1]).all())
        last, rows = codes[-1], rows + len(codes)
        low = int(codes.min()) if low is None else min(low, int(codes.min()))
        high = int(codes.max()) if high is None else max(high, int(codes.max()))
    if increasing:
        return True
    if high - low >= 4 * rows:
        return None
    seen = np.zeros(high - low + 1, dtype=bool)
    for codes in _integer_codes(values):
        seen[codes - low] = True
    return int(np.count_nonzero(seen)) == rows


def _load(table, data, columns, source, encoding=None):
    columns = dict(columns or {})
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        source = source or f"{table.name} frame"
    elif isinstance(data, Source):
        source = source or sources.label(data, table.name)
        frame = sources.read(data, table.name)
    else:
        path = Path(data)
        source = source or str(path)
        if is_glob(path) or path.is_dir():
            files = sources.matching(path, table.name)
            if files[0].suffix.lower() in sources.PARQUET_SUFFIXES:
                frame = sources.read_parquet(files, source, hive=path.is_dir())
            else:  # CSV files one by one, each error naming its file
                frames = [_read_file(table, f, str(f), columns, encoding) for f in files]
                frame = pd.concat(frames, ignore_index=True)
        else:
            frame = _read_file(table, path, source, columns, encoding)
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise DataError(
            source,
            f"the column mapping names {', '.join(map(_short, unknown))}, not in the data;"
            f" found: {_names(frame.columns)}",
            column=str(unknown[0]),
        )
    for old, new in columns.items():
        if new in frame.columns and new not in columns and old != new:
            raise DataError(
                source,
                f"the column mapping renames {_short(old)} to {_short(new)}, but the data already"
                f" has a column {_short(new)}: map only one of them (or drop the other)",
                column=str(new),
            )
    frame = frame.rename(columns=columns)
    doubled = frame.columns[frame.columns.duplicated()].unique()
    if len(doubled):
        raise DataError(
            source,
            f"column name(s) {', '.join(map(_short, doubled))} appear more than once"
            " (after the column mapping)",
            column=str(doubled[0]),
        )
    return frame, source


def _read_file(table, path: Path, source, columns, encoding):
    """One CSV or Parquet file, or one clear error naming it."""
    if not path.exists():
        raise DataError(source, f"the {table.name} file does not exist")
    if not path.is_file():
        raise DataError(
            source,
            f"not a regular file (a device, pipe or socket); the {table.name} table must be"
            " a CSV or Parquet file",
        )
    if path.stat().st_size == 0:
        raise DataError(source, f"the {table.name} file is empty (0 bytes)")
    if path.suffix.lower() in sources.PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a broken file
            raise DataError(
                source, f"not a readable Parquet file ({_short(exc, 120, quote=False)})"
            ) from None
    id_names = {orig for orig, new in columns.items() if new in table.ids}
    id_names |= set(table.ids) - set(columns.values())
    return _read_csv(path, source, table, dict.fromkeys(id_names, str), encoding)


def _read_csv(path, source, table, dtype, encoding):
    """A CSV, decoded as ``encoding`` or as detected (see the module docstring)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise DataError(source, f"cannot be read ({exc.strerror or exc})") from None
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(source, f"unknown encoding {_short(encoding)}") from None
        candidates = [encoding]
    elif head.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    elif b"\x00" in head:  # UTF-16 without a BOM: every ASCII character has a zero byte
        odd = head[1::2].count(0) > head[0::2].count(0)
        candidates = ["utf-16-le" if odd else "utf-16-be"]
    else:
        candidates = ["utf-8-sig", "gb18030"]
    for used in candidates:
        try:
            if used == "gb18030" and not encoding:
                text = _chinese_text(path, source)
                return _parse_csv(io.StringIO(text), path, source, table, dtype, used, text)
            return _parse_csv(path, path, source, table, dtype, used)
        except UnicodeError:
            continue
    tried = " or ".join(candidates)
    raise DataError(
        source,
        f"the {table.name} file cannot be decoded as {tried}; give its encoding"
        " (encoding: gb18030, cp1252, latin-1, ... under formats in the plan, or encoding=)",
    )


def _chinese_text(path, source) -> str:
    """The file read as GB18030, when that gives Chinese text (not just any decodable bytes)."""
    text = path.read_bytes().decode("gb18030")  # UnicodeDecodeError: not GB18030 either
    wide = re.findall(r"[^\x00-\x7f]", text[:1_000_000])
    cjk = sum(
        "\u3000" <= c <= "\u303f" or "\u3400" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef"
        for c in wide
    )
    if wide and cjk < 0.9 * len(wide):
        raise DataError(
            source,
            "not UTF-8, and read as GB18030 it is not Chinese text; give its encoding"
            " (encoding: cp1252, latin-1, ... under formats in the plan, or encoding=)",
        )
    return text


def _parse_csv(handle, path, source, table, dtype, encoding, text=None):
    try:
        return pd.read_csv(handle, dtype=dtype, low_memory=False, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise DataError(source, f"the {table.name} file is empty (no header)") from None
    except pd.errors.ParserError as exc:
        raise _ragged(path, source, encoding, text, exc) from None


def _ragged(path, source, encoding, text, exc) -> DataError:
    """The rows whose number of fields differs from the header's, counted with the csv module."""
    stream = io.StringIO(text) if text is not None else open(path, encoding=encoding, newline="")  # noqa: SIM115
    bad, count, width = [], 0, None
    try:
        with stream:
            for number, row in enumerate(csv.reader(stream), start=1):
                if width is None:
                    width = len(row)
                elif row and len(row) != width:
                    count += 1
                    if len(bad) < 5:
                        bad.append({"line": number, "fields": len(row), "row": ",".join(row)[:80]})
    except (csv.Error, UnicodeError):
        pass
    if not count:
        return DataError(source, f"not a readable CSV file ({_short(exc, 120, quote=False)})")
    return DataError(
        source,
        f"{count:,} row(s) with a different number of fields than the header's {width}"
        ' (a value holding a comma must be quoted: "1,5")',
        rows=pd.DataFrame(bad).set_index("line"),
        n_bad=count,
    )


def _ids(frame, col, source, required):
    values = frame[col]
    # a float column of whole numbers (ids read as numbers, 12346.0) is read as integers; a
    # column with any fractional value keeps its text
    whole = None
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        whole = values.notna()
    elif values.dtype == object:
        # a mixed column (a spreadsheet's cells: 101, "102", 101.0) writes its whole floats as
        # integers, so that 101 and 101.0 stay one customer
        whole = values.map(lambda v: isinstance(v, float | np.floating) and float(v).is_integer())
    if whole is not None and whole.any():
        # beyond 2^53 a float no longer holds every integer: the id's last digits are gone
        lost = whole & (pd.to_numeric(values.where(whole), errors="coerce").abs() >= 2.0**53)
        if lost.any():
            raise DataError(
                source,
                "ids stored as numbers too large for their digits (2^53 and above): their last"
                " digits are lost; export the ids as text",
                column=col,
                rows=frame[lost.to_numpy()],
                n_bad=int(lost.sum()),
            )
        if values.dtype == object:
            values = values.where(~whole, values[whole].map(lambda v: str(int(v))))
    if pd.api.types.is_float_dtype(values) and whole is not None:
        values = values.astype("Int64")
    values = values.astype("str").str.strip()
    blank = values.isna() | (values == "")
    if required and blank.any():
        raise DataError(
            source, "missing id", column=col, rows=frame[blank.to_numpy()], n_bad=int(blank.sum())
        )
    # 1.23457E+12 is what a spreadsheet shows for a long numeric id: its digits are gone, and
    # different customers share the rounded text
    rounded = values.str.fullmatch(_SCIENTIFIC, na=False)
    if rounded.any():
        raise DataError(
            source,
            "ids in scientific notation (1.23E+12): a spreadsheet rounded them and their digits"
            " are lost; export the ids as text",
            column=col,
            rows=frame[rounded.to_numpy()],
            n_bad=int(rounded.sum()),
        )
    return values.where(~blank)


#: ASCII digits only, as a spreadsheet writes them (and as Arrow's RE2 reads ``\d``), so that the
#: Arrow and the pandas checks judge an id alike
_SCIENTIFIC = r"[+-]?[0-9]+(?:[.,][0-9]+)?[eE][+-]?[0-9]+"
_ISO = re.compile(
    r"^(?P<wall>\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?)"
    r"\s*(?P<offset>Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?$"
)
_DMY = (
    r"^(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4})"
    r"(?:[ T](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?)?$"
)
_MONTH_NAME = r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
_INTEGER_RULE = (
    "integer dates other than YYYYMMDD (epoch seconds, Excel serial days) are refused: their"
    " unit cannot be known. Write ISO dates (2026-03-01) or give date_format"
)


def _dates(frame, col, source, required, date_format=None, timezone=None):
    values = frame[col]
    try:
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = _wall_clock(values, timezone)
        elif pd.api.types.is_datetime64_any_dtype(values):
            pass
        elif date_format:
            values = _formatted_dates(frame, col, source, date_format, timezone)
        elif pd.api.types.is_bool_dtype(values):
            raise DataError(source, "yes/no values are not dates", column=col, rows=frame.head())
        elif pd.api.types.is_numeric_dtype(values):
            values = _integer_dates(frame, values, col, source)
        else:
            values = _text_dates(frame, col, source, timezone)
        values = values.astype("datetime64[ns]")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise DataError(source, "a date is out of range (years 1678 to 2261)", column=col) from None
    missing = values.isna()
    if required and missing.any():
        raise DataError(
            source,
            "missing date",
            column=col,
            rows=frame[missing.to_numpy()],
            n_bad=int(missing.sum()),
        )
    return values


def _wall_clock(values, timezone):
    """Timezone-aware values as naive wall-clock times: in ``timezone`` when given, else as
    written (the offset dropped, never shifted)."""
    if timezone is not None:
        values = values.dt.tz_convert(str(timezone))
    return values.dt.tz_localize(None)


def _present_text(values) -> pd.Series:
    text = values[values.notna()].astype("str").str.strip()
    return text[text != ""]


def _formatted_dates(frame, col, source, date_format, timezone):
    values = frame[col]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        values = values.astype("Int64")
    text = _present_text(values)
    aware = "%z" in date_format or "%Z" in date_format
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    except ValueError as exc:
        if aware and timezone is None and "imezone" in str(exc):
            raise DataError(
                source,
                "the dates carry different UTC offsets; give timezone (e.g. Asia/Shanghai) to"
                " read them as that wall clock",
                column=col,
            ) from None
        if not aware:
            raise DataError(
                source, f"date_format {_short(date_format)} is not a valid format ({exc})"
            ) from None
        parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = _wall_clock(parsed, timezone)
    bad = parsed.isna()
    if bad.any():
        raise DataError(
            source,
            f"date does not match date_format {_short(date_format)}",
            column=col,
            rows=frame.loc[bad[bad].index],
            n_bad=int(bad.sum()),
        )
    return parsed.reindex(values.index)


def _integer_dates(frame, values, col, source):
    present = values.dropna()
    whole = (present % 1 == 0) & present.between(19000101, 29991231)
    if not whole.all():
        bad = ~whole
        raise DataError(
            source,
            _INTEGER_RULE,
            column=col,
            rows=frame.loc[bad[bad].index],
            n_bad=int(bad.sum()),
        )
    parsed = pd.to_datetime(present.astype("int64").astype("str"), format="%Y%m%d", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        raise DataError(
            source,
            "not a valid YYYYMMDD date",
            column=col,
            rows=frame.loc[bad[bad].index],
            n_bad=int(bad.sum()),
        )
    return parsed.reindex(values.index)


def _text_dates(frame, col, source, timezone):
    """Dates written as text: ISO, YYYYMMDD, day/month (one order for the whole column) or with
    a month name; anything else is refused with the rows."""
    values = frame[col]
    text = _present_text(values)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if text.empty:
        return out
    if (text.str.len() >= 8).all():  # fast path: the whole column is ISO 8601 (one offset)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = pd.to_datetime(text, format="ISO8601")
        except (ValueError, TypeError):
            parsed = None
        if parsed is not None:
            if isinstance(parsed.dtype, pd.DatetimeTZDtype):
                parsed = _wall_clock(parsed, timezone)
            out.loc[parsed.index] = parsed.astype("datetime64[ns]")
            return out
    pieces, bad = [], pd.Series(False, index=text.index)
    year_first = text.str.match(r"\d{4}[-/.]")  # cheaper than extracting from every value
    iso = text[year_first].str.extract(_ISO).reindex(text.index)
    is_iso = iso["wall"].notna()
    if is_iso.any():
        parsed = _iso_dates(text[is_iso], iso[is_iso], timezone)
        bad.loc[parsed.index] = parsed.isna()
        pieces.append(parsed.dropna())
    rest = text[~is_iso]
    digits = rest.str.fullmatch(r"\d+")
    if digits.any():
        pieces.append(_integer_dates(frame, rest[digits].astype("int64"), col, source))
    rest = rest[~digits]
    dmy = rest.str.extract(_DMY)
    is_dmy = dmy["a"].notna()
    named = rest[~is_dmy]
    bad.loc[named.index] = True
    for value in named[named.str.contains(_MONTH_NAME)].unique():
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            continue
        if stamp.tzinfo is not None:
            stamp = (stamp.tz_convert(str(timezone)) if timezone else stamp).tz_localize(None)
        where = named.index[named == value]
        bad.loc[where] = False
        pieces.append(pd.Series(stamp, index=where))
    dayfirst = monthfirst = None
    if is_dmy.any():
        parts = dmy[is_dmy].astype({"a": "int64", "b": "int64", "year": "int64"})
        clock = parts[["hour", "minute", "second"]].astype("float64").fillna(0).astype("int64")
        common = {"year": parts["year"], **{k: clock[k] for k in clock}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dayfirst = pd.to_datetime(
                pd.DataFrame({**common, "month": parts["b"], "day": parts["a"]}), errors="coerce"
            )
            monthfirst = pd.to_datetime(
                pd.DataFrame({**common, "month": parts["a"], "day": parts["b"]}), errors="coerce"
            )
        bad.loc[parts.index] = dayfirst.isna() & monthfirst.isna()
    if bad.any():
        raise DataError(
            source,
            "unparseable date (use ISO dates such as 2026-03-01, or give date_format)",
            column=col,
            rows=frame.loc[bad[bad].index],
            n_bad=int(bad.sum()),
        )
    if dayfirst is not None:
        pieces.append(_one_order(frame, col, source, dayfirst, monthfirst))
    for piece in pieces:
        out.loc[piece.index] = piece.astype("datetime64[ns]")
    return out


def _iso_dates(text, iso, timezone):
    wall = iso["wall"].str.replace(r"^(\d{4})[/.](\d{1,2})[/.]", r"\1-\2-", regex=True)
    wall = wall.str.replace(",", ".", regex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(wall, format="ISO8601", errors="coerce")
        offset = iso["offset"].notna()
        if timezone is not None and offset.any():
            utc = wall[offset] + iso.loc[offset, "offset"].replace({"UTC": "Z", "GMT": "Z"})
            moved = pd.to_datetime(utc, format="ISO8601", errors="coerce", utc=True)
            parsed = parsed.astype("datetime64[ns]")
            parsed.loc[offset] = _wall_clock(moved, timezone).astype("datetime64[ns]")
    return parsed


def _one_order(frame, col, source, dayfirst, monthfirst):
    """Day-first or month-first, whichever alone fits every value; both fitting is ambiguous."""
    fits_d, fits_m = dayfirst.notna().all(), monthfirst.notna().all()
    if fits_d and fits_m:
        differ = dayfirst != monthfirst
        if not differ.any():
            return dayfirst
        raise DataError(
            source,
            f"ambiguous dates: all {len(dayfirst):,} fit both day-first and month-first; say"
            ' which with date_format: "%d/%m/%Y" (day first) or "%m/%d/%Y" (month first)'
            ' (with the separator of the file, e.g. "%d.%m.%Y")',
            column=col,
            rows=frame.loc[differ[differ].index],
            n_bad=int(differ.sum()),
        )
    if fits_d:
        return dayfirst
    if fits_m:
        return monthfirst
    mixed = dayfirst.isna() | monthfirst.isna()
    shown = pd.concat(
        [
            frame.loc[dayfirst.index[dayfirst.isna()]].head(3),
            frame.loc[monthfirst.index[monthfirst.isna()]].head(3),
        ]
    )
    raise DataError(
        source,
        "the dates mix day-first and month-first orders (some fit only one, others only the"
        " other); fix the file or give date_format",
        column=col,
        rows=shown,
        n_bad=int(mixed.sum()),
    )


def _numbers(frame, col, source, required):
    values = frame[col]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        values = pd.to_numeric(values, errors="coerce")
    values = values.astype("float64")
    bad = values.isna() if required else values.isna() & frame[col].notna()
    if bad.any():
        rule = "missing or non-numeric value" if required else "non-numeric value"
        raise DataError(source, rule, column=col, rows=frame[bad.to_numpy()], n_bad=int(bad.sum()))
    infinite = np.isinf(values)
    if infinite.any():
        raise DataError(
            source,
            "infinite value",
            column=col,
            rows=frame[infinite.to_numpy()],
            n_bad=int(infinite.sum()),
        )
    return values


def _flags(frame, col, source):
    values = frame[col]
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    text = values.astype("str").str.strip().str.lower()
    text = text.str.replace(r"\.0$", "", regex=True)
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        raise DataError(
            source,
            "not a yes/no flag (use 1/0, true/false or yes/no)",
            column=col,
            rows=frame[bad.to_numpy()],
            n_bad=int(bad.sum()),
        )
    return text.isin(_TRUE)


def _deduplicate(frame, table, source):
    key = [c for c in table.key if c in frame.columns]
    if not key:
        return frame, 0
    # rows without a key (no order id) are orders of their own; only keyed rows can clash
    has_key = frame[key].notna().all(axis=1)
    if not frame[has_key].duplicated(key).any():
        return frame, 0
    exact = frame.duplicated(keep="first") & has_key
    frame = frame[~exact]
    keyed = frame[has_key[~exact]]
    line_items = table.name == "transactions" and (
        "item" in frame.columns or "product" in frame.columns
    )
    if table.key_fields and (line_items or table.name != "transactions"):
        must_agree = list(table.key_fields)
    else:
        must_agree = [c for c in frame.columns if c not in key]
    shared = keyed[keyed.duplicated(key, keep=False)]
    if len(shared):
        conflicting = (
            shared.groupby(key, sort=False)[must_agree].nunique(dropna=False).gt(1).any(axis=1)
        )
        if conflicting.any():
            bad_keys = conflicting[conflicting].index
            rows = shared[shared.set_index(key).index.isin(bad_keys)].sort_values(key)
            what = ", ".join(must_agree)
            raise DataError(
                source,
                f"the same {' + '.join(key)} appears in {len(bad_keys):,} group(s) of rows that"
                f" disagree on {what}",
                column=key[0],
                rows=rows,
                n_bad=len(rows),
            )
    return frame, int(exact.sum())


def _days(frame, col):
    """The first and last day of the column (None, None when it is absent or has no date)."""
    if col not in frame.columns:
        return None, None
    first, last = frame[col].min(), frame[col].max()
    if pd.isna(first):
        return None, None
    return first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")


def _warn(frame, message, **counts):
    quality = frame.attrs.setdefault("quality", {})
    quality.update(counts)
    source = quality.get("source", "data")
    warnings.warn(f"{source}: {message}", DataWarning, stacklevel=3)


def outlier_threshold(amounts) -> float | None:
    """The size beyond which an amount is an outlier, or None when there are too few amounts.

    The rule works on the logarithm of the non-zero absolute amounts, because order values are
    skewed (log-normal or heavier): a threshold on the amounts themselves (median + k × MAD)
    would flag every large but real basket. An amount is an outlier when its log lies more than
    ``OUTLIER_SDS`` (8) robust standard deviations (1.4826 × the median absolute deviation of the
    logs) above the median log, and in any case it must exceed ``OUTLIER_MIN_RATIO`` (100) times
    the median, which guards columns of nearly identical amounts (MAD near 0). Eight robust SDs
    are far beyond any real tail (on CDNOW, the largest order is 4.8 SDs above the median, on the
    demo retailer 2.7), so the rule catches amounts typed in the wrong unit or field (a phone
    number, 1e15), not big spenders. The rule is scale-free: any currency, no tuning.
    """
    values = pd.Series(amounts, dtype="float64").abs()
    values = values[(values > 0) & np.isfinite(values)]
    if len(values) < OUTLIER_MIN_ROWS:
        return None
    logs = np.log(values)
    median = float(logs.median())
    spread = 1.4826 * float((logs - median).abs().median())
    return float(np.exp(median + max(OUTLIER_SDS * spread, np.log(OUTLIER_MIN_RATIO))))


def _none_beyond(amounts) -> bool:
    """Whether no amount can lie beyond :func:`outlier_threshold`, told by one count in numpy
    instead of two medians: the threshold is at least ``OUTLIER_MIN_RATIO`` times the lower middle
    non-zero amount, so when no more than half of them lie below the largest divided by that
    ratio, the largest is within it."""
    values = pd.Series(amounts, dtype="float64").to_numpy()
    if not len(values):
        return True
    largest = max(values.max(), -values.min())
    if not np.isfinite(largest):  # NaN or an infinite amount: the threshold itself decides
        return False
    zeros = int(np.count_nonzero(values == 0))
    rows = len(values) - zeros
    if rows < OUTLIER_MIN_ROWS:
        return True
    floor = largest / OUTLIER_MIN_RATIO * (1 + 1e-9)  # a margin for exp(log()) rounding
    below = int(np.count_nonzero((values > -floor) & (values < floor))) - zeros
    return below <= (rows - 1) // 2


def _outliers(frame, col, rule):
    """Flag, cap or exclude the amounts beyond :func:`outlier_threshold`."""
    quality = frame.attrs.get("quality", {})
    if rule not in OUTLIER_RULES:
        raise DataError(
            quality.get("source", "data"),
            f"unknown outlier rule {_short(rule)} (use one of {', '.join(OUTLIER_RULES)})",
        )
    quality["outliers"] = 0
    limit = None if _none_beyond(frame[col]) else outlier_threshold(frame[col])
    if limit is None:
        return frame
    far = frame[col].abs() > limit
    count = int(far.sum())
    if not count:
        return frame
    what = f"{count:,} {col} value(s) beyond {limit:,.2f} (outliers"
    if rule == "cap":
        frame[col] = frame[col].clip(-limit, limit)
        message = f"{what}) capped at it"
    elif rule == "exclude":
        frame = frame[~far].reset_index(drop=True)
        frame.attrs["quality"] = {
            **quality,
            "rows_kept": len(frame),
            "dropped": {**quality.get("dropped", {}), "outliers excluded": count},
        }
        message = f"{what}) left out"
    else:
        largest = frame.loc[far, col].abs().max()
        message = (
            f"{what}, the largest {largest:,.6g}) kept; set outliers: {{rule: cap}} or"
            " {rule: exclude} in the plan to cap them or leave them out"
        )
    frame.attrs["quality"]["outlier_threshold"] = limit
    _warn(frame, message, outliers=count)
    return frame


_ID_FORMATS = (
    ("a trailing '.0' (ids saved as numbers, as Excel does)", lambda s: re.sub(r"\.0+$", "", s)),
    ("leading zeros", lambda s: s.lstrip("0") or "0"),
    ("upper/lower case", str.casefold),
    ("surrounding whitespace", str.strip),
)


def id_format_hint(ours: Iterable, theirs: Iterable) -> str | None:
    """How two id columns that should match differ only by format, or None.

    Tries each of a trailing ``.0``, leading zeros, case and whitespace (and all of them
    together): when normalising both sides that way matches at least half of the ids of
    ``ours`` that did not match, it says so with one example pair, ``ours`` first.
    """
    ours, theirs = _present_ids(ours), _present_ids(theirs)
    # the set differences in Arrow (summaries.is_in): the Python sets hold only the few ids
    # that do not match, not every id of a large table
    unmatched = set(ours[~summaries.is_in(ours, theirs)])
    others = set(theirs[~summaries.is_in(theirs, ours)])
    if not unmatched or not others:
        return None

    def compare(label, normalise):
        lookup = {normalise(v): v for v in others}
        pairs = [(v, lookup[normalise(v)]) for v in unmatched if normalise(v) in lookup]
        if len(pairs) >= max(1, len(unmatched) / 2):
            a, b = min(pairs)
            return f"the ids differ only by {label}, e.g. {_short(a)} and {_short(b)}"
        return None

    for label, normalise in _ID_FORMATS:
        found = compare(label, normalise)
        if found:
            return found

    def everything(value):
        for _, normalise in reversed(_ID_FORMATS):
            value = normalise(value)
        return value

    return compare("format (case, whitespace, leading zeros, a trailing '.0')", everything)


def _present_ids(values) -> pd.Series:
    """The ids that are present, as text."""
    values = pd.Series(values, copy=False) if not isinstance(values, pd.Series) else values
    return values[values.notna()].astype("str")


def _short(value, limit: int = 80, quote: bool = True) -> str:
    """A value for a message, never longer than ``limit`` characters."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _names(columns, limit: int = 30) -> str:
    names = [_short(str(c), 40, quote=False) for c in columns]
    more = f", ... ({len(names) - limit:,} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
