"""The data contract: every table enters the package through one of these readers.

Each reader takes a CSV / Parquet path or a DataFrame, renames columns with an optional mapping
(``columns={"cust_no": "customer_id"}``), parses dates, casts ids to strings and validates. Bad
input raises :class:`closedloop.DataError` naming the source, the column, the rule and a few
offending rows. Nothing is dropped silently: the only rows ever removed are exact duplicates and
rows dated after the ``asof`` day (``asof`` is the end of its day, see :mod:`closedloop.summaries`),
and their counts are reported in a :class:`DataWarning` and in ``frame.attrs["quality"]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop.errors import DataError

__all__ = [
    "DataWarning",
    "read_assignments",
    "read_customers",
    "read_events",
    "read_outcomes",
    "read_points",
    "read_transactions",
]


class DataWarning(UserWarning):
    """Input that is kept but deserves attention (refunds, removed exact duplicates)."""


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
    ids=("customer_id", "referrer_id"),
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


def read_transactions(data, columns=None, asof=None, source=None) -> pd.DataFrame:
    """Transactions (one row per order, or per order line when an ``item`` column is present).

    Required: ``customer_id, order_date, amount``. Optional: ``order_id, channel, store, item,
    quantity, is_member``. Rules: dates parse, amounts are numbers, customer ids are present,
    rows dated after the ``asof`` day are left out (and counted), rows sharing an ``order_id`` agree on customer and date (and, for
    order-level data, on everything). Refunds (negative amounts) are kept and counted.
    """
    frame = _read(TRANSACTIONS, data, columns, asof, source)
    refunds = int((frame["amount"] < 0).sum())
    if refunds:
        _warn(frame, f"{refunds:,} refund row(s) with a negative amount kept", refunds=refunds)
    return frame


def read_customers(data, columns=None, asof=None, source=None) -> pd.DataFrame:
    """Customers: one row per ``customer_id``; optional ``join_date, is_member, online,
    source_channel, referrer_id`` and any attribute columns."""
    return _read(CUSTOMERS, data, columns, asof, source, asof_column="join_date")


def read_assignments(data, columns=None, asof=None, source=None) -> pd.DataFrame:
    """Campaign assignments: one arm per customer; at least two arms (one is the holdout)."""
    frame = _read(ASSIGNMENTS, data, columns, asof, source, asof_column="sent_at")
    arms = frame["arm"].astype("str")
    if arms.nunique() < 2:
        raise DataError(
            frame.attrs["quality"]["source"],
            f"the arm column has a single value ({arms.iloc[0]!r}); a campaign needs a holdout"
            " and at least one treated arm",
            column="arm",
            rows=frame.head(5),
            n_bad=len(frame),
        )
    frame["arm"] = arms
    return frame


def read_outcomes(data, columns=None, source=None) -> pd.DataFrame:
    """Campaign outcomes: one row per ``customer_id``, one numeric column per metric.

    Known metrics: ``visited`` and ``converted`` (0/1), ``orders`` and ``revenue``; when the
    outcomes table is absent they are derived from the transactions in the campaign period.
    """
    frame = _read(OUTCOMES, data, columns, None, source)
    source = frame.attrs["quality"]["source"]
    metrics = [c for c in ("visited", "converted", "orders", "revenue") if c in frame.columns]
    if not metrics:
        raise DataError(
            source,
            "no metric column: give at least one of visited, converted, orders, revenue"
            f"; found: {', '.join(map(str, frame.columns))}",
            column="converted",
        )
    for col in ("visited", "converted"):
        if col in frame.columns:
            bad = frame[col].notna() & ~frame[col].isin([0, 1])
            if bad.any():
                raise DataError(
                    source,
                    "a 0/1 outcome holds other values",
                    column=col,
                    rows=frame[bad],
                    n_bad=int(bad.sum()),
                )
    return frame


def read_events(data, columns=None, asof=None, source=None) -> pd.DataFrame:
    """Funnel events: ``entity_id, stage, timestamp`` (optional ``channel``, ``customer_id``)."""
    frame = _read(EVENTS, data, columns, asof, source)
    frame["stage"] = frame["stage"].astype("str")
    return frame


def read_points(data, columns=None, asof=None, source=None) -> pd.DataFrame:
    """The points ledger (积分): one row per event, ``customer_id, date, points, kind`` with
    ``kind`` one of earn, redeem, expire and ``points`` a number >= 0 (the kind gives the
    direction); optional ``order_id``. Worked by :mod:`closedloop.points`."""
    frame = _read(POINTS, data, columns, asof, source)
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


def _read(table, data, columns, asof, source, asof_column=None) -> pd.DataFrame:
    frame, source = _load(table, data, columns, source)
    rows_read = len(frame)
    if rows_read == 0:
        raise DataError(source, f"the {table.name} table is empty (no rows)")
    missing = [c for c in table.required if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise DataError(
            source,
            f"required column(s) {', '.join(missing)} missing; found: {found}. "
            "Map your names with columns={'your_name': '" + missing[0] + "'}",
            column=missing[0],
        )
    for col in table.ids:
        if col in frame.columns:
            frame[col] = _ids(frame, col, source, required=col in table.required)
    for col in table.dates:
        if col in frame.columns:
            frame[col] = _dates(frame, col, source, required=col in table.required)
    for col in table.numbers:
        if col in frame.columns:
            frame[col] = _numbers(frame, col, source, required=col in table.required)
    for col in table.flags:
        if col in frame.columns:
            frame[col] = _flags(frame, col, source)
    limit_col = asof_column or (table.dates[0] if table.dates else None)
    late = 0
    if asof is not None and limit_col in frame.columns:
        # asof is the end of its day: a row of that day is kept, one of the next day is not
        after = (frame[limit_col] >= summaries.end_of_day(asof)).to_numpy()
        late = int(after.sum())
        frame = frame[~after]
    frame, dropped = _deduplicate(frame, table, source)
    removed = {"exact duplicate rows": dropped, "dated after asof": late}
    frame.attrs["quality"] = {
        "source": source,
        "table": table.name,
        "rows_read": rows_read,
        "rows_kept": len(frame),
        "dropped": {reason: n for reason, n in removed.items() if n},
        "date_min": _day(frame, table.dates[0]) if table.dates else None,
        "date_max": _day(frame, table.dates[0], last=True) if table.dates else None,
    }
    if late:
        day = summaries.day(asof)
        _warn(frame, f"{late:,} row(s) dated after asof {day:%Y-%m-%d} left out", after_asof=late)
    if dropped:
        _warn(frame, f"{dropped:,} exact duplicate row(s) removed", duplicates=dropped)
    return frame.reset_index(drop=True)


def _load(table, data, columns, source):
    columns = dict(columns or {})
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        source = source or f"{table.name} frame"
    else:
        path = Path(data)
        source = source or str(path)
        if not path.exists():
            raise DataError(source, f"the {table.name} file does not exist")
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            id_names = {orig for orig, new in columns.items() if new in table.ids}
            id_names |= set(table.ids) - set(columns.values())
            frame = pd.read_csv(path, dtype=dict.fromkeys(id_names, str), low_memory=False)
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise DataError(
            source,
            f"the column mapping names {', '.join(map(repr, unknown))}, not in the data;"
            f" found: {', '.join(map(str, frame.columns))}",
            column=unknown[0],
        )
    return frame.rename(columns=columns), source


def _ids(frame, col, source, required):
    values = frame[col]
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")
    values = values.astype("str").str.strip()
    blank = values.isna() | (values == "")
    if required and blank.any():
        raise DataError(
            source, "missing id", column=col, rows=frame[blank.to_numpy()], n_bad=int(blank.sum())
        )
    return values.where(~blank)


def _dates(frame, col, source, required):
    values = frame[col]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(None)
    if not pd.api.types.is_datetime64_any_dtype(values):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        bad = parsed.isna() & values.notna() & (values.astype("str").str.strip() != "")
        if bad.any():
            raise DataError(
                source,
                "unparseable date (use ISO dates such as 2026-03-01)",
                column=col,
                rows=frame[bad.to_numpy()],
                n_bad=int(bad.sum()),
            )
        values = parsed
    missing = values.isna()
    if required and missing.any():
        raise DataError(
            source,
            "missing date",
            column=col,
            rows=frame[missing.to_numpy()],
            n_bad=int(missing.sum()),
        )
    return values.astype("datetime64[ns]")


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
    line_items = table is TRANSACTIONS and ("item" in frame.columns or "product" in frame.columns)
    if table.key_fields and (line_items or table is not TRANSACTIONS):
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


def _day(frame, col, last=False):
    if col not in frame.columns or frame[col].isna().all():
        return None
    value = frame[col].max() if last else frame[col].min()
    return value.strftime("%Y-%m-%d")


def _warn(frame, message, **counts):
    quality = frame.attrs.setdefault("quality", {})
    quality.update(counts)
    source = quality.get("source", "data")
    warnings.warn(f"{source}: {message}", DataWarning, stacklevel=3)
