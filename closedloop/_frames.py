"""The one door from a user's frame to narwhals, and the one way back to pandas.

Every module that passes over raw rows (rfm, kpi, clv, funnel, lift) opens the user's frame with
:func:`lazy_frame`, writes its group-bys once as narwhals expressions, and turns the small result
into pandas with :func:`collect`. Accepted: a pandas or polars DataFrame, a polars LazyFrame, a
DuckDB relation (``duckdb.read_parquet(...)``, ``con.sql(...)``) or a PySpark DataFrame (classic or
Spark Connect). Lazy inputs stay lazy: DuckDB or Spark runs the whole aggregation where the data
lives and only the summary travels back.

A pandas frame is handed to the engine named by :data:`PANDAS_ENGINE`: DuckDB by default (it scans
the frame in place through Arrow, multi-threaded, and groups string ids without pandas
factorizing them), else polars, else pandas itself; the answers are the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from importlib.util import find_spec

import narwhals as nw
import pandas as pd

from closedloop.errors import DataError

__all__ = [
    "PANDAS_ENGINE",
    "PANDAS_ENGINES",
    "alongside",
    "bounds",
    "collect",
    "eager_frame",
    "epoch_microseconds",
    "lazy_frame",
    "require",
    "to_pandas",
]

#: the engines that can aggregate a pandas frame, fastest first
PANDAS_ENGINES = ("duckdb", "polars", "pandas")
#: the engine that aggregates a pandas frame: the first of :data:`PANDAS_ENGINES` installed
PANDAS_ENGINE = next(e for e in PANDAS_ENGINES if e == "pandas" or find_spec(e) is not None)

_ACCEPTED = "a pandas / polars DataFrame, a DuckDB relation or a PySpark DataFrame"


def lazy_frame(data, source: str, required: Iterable[str] = ()) -> nw.LazyFrame:
    """The user's frame as a narwhals LazyFrame; a clear error when it is not a frame or lacks a
    ``required`` column. A pandas frame is aggregated by :data:`PANDAS_ENGINE`."""
    try:
        frame = nw.from_native(data)
    except TypeError as exc:
        raise DataError(source, f"expected {_ACCEPTED}, got {type(data).__name__}") from exc
    if not isinstance(frame, nw.DataFrame | nw.LazyFrame):
        raise DataError(source, f"expected {_ACCEPTED}, got {type(data).__name__}")
    require(frame, required, source)
    if isinstance(frame, nw.LazyFrame):
        return frame
    if frame.implementation is nw.Implementation.PANDAS:
        return _pandas_engine(frame.to_native())
    return frame.lazy()


def eager_frame(data, source: str) -> nw.DataFrame:
    """A pandas or polars frame as an eager narwhals frame, for work that needs the rows in order
    (attribution paths); a clear error when empty or not a frame."""
    try:
        frame = nw.from_native(data, eager_only=True)
    except TypeError as exc:
        raise DataError(source, f"expected a pandas or polars DataFrame, got {type(data)}") from exc
    if len(frame) == 0:
        raise DataError(source, "the input is empty (no rows)")
    return frame


def collect(frame: nw.LazyFrame | nw.DataFrame) -> pd.DataFrame:
    """A small aggregated result as pandas (through Arrow, so ids come back as ``str``), with
    counts as int64 and decimal sums as float64 whatever the engine.

    Engines that keep timestamps with a time zone (Spark: the session's) give them back as the
    wall-clock times of that zone, naive, as they were in the user's data."""
    schema = frame.collect_schema()
    counts = (nw.Int128, nw.UInt8, nw.UInt16, nw.UInt32, nw.UInt64)
    exact = [nw.col(c).cast(nw.Int64) for c, t in schema.items() if t in counts]
    exact += [nw.col(c).cast(nw.Float64) for c, t in schema.items() if isinstance(t, nw.Decimal)]
    if exact:  # counts are int64 everywhere: polars counts in uint32, DuckDB sums in int128
        frame = frame.with_columns(*exact)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect(backend="pyarrow")
    out = frame.to_pandas()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_localize(None)
    return out


def bounds(data, column: str) -> tuple:
    """The smallest and largest value of ``column`` (a date range), where the rows are: one
    aggregation on the engine, (NaT, NaT) for a table without rows."""
    frame = lazy_frame(data, column, (column,))
    found = collect(
        frame.select(nw.col(column).min().alias("low"), nw.col(column).max().alias("high"))
    )
    if found.empty:
        return pd.NaT, pd.NaT
    return found["low"].iloc[0], found["high"].iloc[0]


def epoch_microseconds(frame: nw.LazyFrame, column: str, name: str) -> nw.LazyFrame:
    """``frame`` with ``name``: the datetime ``column`` as microseconds since 1970, an integer every
    engine compares, subtracts and aggregates alike. Spark, where narwhals has no datetime-to-number
    conversion, computes it with its own ``unix_micros``; zoned times elsewhere count from their
    wall-clock time."""
    if frame.implementation in (nw.Implementation.PYSPARK, nw.Implementation.PYSPARK_CONNECT):
        from pyspark.sql import functions as F

        native = frame.to_native()
        micros = F.unix_micros(native[column].cast("timestamp"))
        return nw.from_native(native.withColumn(name, micros))
    time = nw.col(column)
    if frame.collect_schema()[column].time_zone is not None:
        time = time.dt.replace_time_zone(None)
    epoch = datetime(1970, 1, 1)
    return frame.with_columns((time - epoch).dt.total_microseconds().alias(name))


def to_pandas(data, source: str, required: Iterable[str] = ()) -> pd.DataFrame:
    """A small table (customers, a summary) as pandas, whatever frame it came as."""
    if isinstance(data, pd.DataFrame):
        require(data, required, source)
        return data
    return collect(lazy_frame(data, source, required))


def alongside(small, big: nw.LazyFrame, source: str) -> nw.LazyFrame:
    """A small table (customers, first touches) on the engine of ``big``, so that the two can be
    joined where ``big`` lives. A DuckDB relation must come from the package's connection (as a
    pandas frame does) or already share ``big``'s connection."""
    frame = lazy_frame(small, source)
    if frame.implementation is big.implementation:
        return frame
    native = collect(frame)
    if big.implementation in (nw.Implementation.PYSPARK, nw.Implementation.PYSPARK_CONNECT):
        return nw.from_native(big.to_native().sparkSession.createDataFrame(native))
    if big.implementation is nw.Implementation.DUCKDB:
        return nw.from_native(_connection().from_df(native))
    return nw.from_native(native).lazy(backend=big.implementation)


def _connection():
    """DuckDB's default connection, the one ``duckdb.read_parquet(...)`` and ``duckdb.sql(...)``
    use: every pandas frame the package scans is a relation on it, so it joins with them."""
    import duckdb

    return duckdb.default_connection()


def _pandas_engine(native: pd.DataFrame) -> nw.LazyFrame:
    if PANDAS_ENGINE == "duckdb":
        return nw.from_native(_connection().from_df(native))
    if PANDAS_ENGINE == "polars":
        import polars as pl

        return nw.from_native(pl.from_pandas(native).lazy())
    return nw.from_native(native).lazy()


def require(frame, required: Iterable[str], source: str) -> None:
    """A clear error naming the missing ``required`` columns of ``frame`` (a pandas or narwhals
    frame, or a list of column names) and the columns it has."""
    if isinstance(frame, pd.DataFrame):
        columns = list(map(str, frame.columns))
    elif isinstance(frame, nw.DataFrame | nw.LazyFrame):
        columns = frame.collect_schema().names()
    else:
        columns = list(frame)
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(
            source,
            f"required column(s) {', '.join(missing)} missing; found: {', '.join(columns)}",
            column=missing[0],
        )
