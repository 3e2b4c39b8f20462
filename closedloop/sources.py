"""Where a plan's tables live (数据源): files, globs and Parquet folders, DuckDB database files,
PostgreSQL and Spark tables or queries, read into one pandas frame for the data contract.

A plan names each table as a path (a CSV or Parquet file, a glob such as ``tx/*.parquet``, or
a folder of Parquet files, partitioned ``year=2026/...`` or not) or as a
:class:`~closedloop.plan.Source` (``{postgres: "postgresql://db.example/crm", table: sales.orders}``, ``{duckdb: shop.duckdb,
query: "SELECT ..."}``, ``{spark: "sc://spark.example:15002", table: sales.orders}``).

Parquet (globs, folders) and DuckDB files are read by DuckDB; PostgreSQL by psycopg 3 (libpq),
streaming the result with ``COPY ... TO STDOUT`` into Arrow with the column types the server
reports, in a read-only transaction; Spark through its session, collected as Arrow.

**Credentials** come from the environment only: libpq's ``PG*`` variables, ``~/.pgpass`` or a
service file (``service=name``), or ``${VARIABLE}`` in the connection string, replaced by that
variable's value when connecting. The plan never holds a password (the plan loader refuses one),
and no label, error or record made here shows the expanded connection string: a source is named
by :func:`label`, which keeps only the engine, host, database and table.
"""

from __future__ import annotations

import glob
import io
import os
from pathlib import Path

import pandas as pd

from closedloop.errors import DataError
from closedloop.plan import PARQUET_SUFFIXES, VARIABLE, Source, is_glob, parquet_files

__all__ = ["PARQUET_SUFFIXES", "label", "matching", "name", "read", "read_parquet", "relation"]

#: seconds a PostgreSQL connection may take before it is one clear error
CONNECT_TIMEOUT = 10


def label(location, table: str = "") -> str:
    """A source as a person reads it, without credentials: a path as it is; a database table as
    ``sales.orders (PostgreSQL crm on db.example:5432)``, a query as ``transactions query
    (DuckDB shop.duckdb)`` (``table``: the plan's table it is read as)."""
    if not isinstance(location, Source):
        return str(location)
    what = location.table or f"{table} query".strip()
    if location.engine == "duckdb":
        return f"{what} (DuckDB {Path(location.duckdb).name})"
    if location.engine == "spark":
        where = _without_variables(location.spark).split("://")[-1].split("/")[0]
        return f"{what} (Spark {where})" if where else f"{what} (Spark)"
    return f"{what} (PostgreSQL{_pg_where(location.postgres)})"


def name(location, table: str = "") -> str:
    """A source in a few words, for a report or a note: a file's name (a glob's last folder and
    pattern), a database table's :func:`label`."""
    if isinstance(location, Source):
        return label(location, table)
    path = Path(location)
    return f"{path.parent.name}/{path.name}" if is_glob(path) else path.name


def read(location: Source, table: str = "") -> pd.DataFrame:
    """The whole table or query of a database :class:`Source` as pandas; a :class:`DataError`
    naming the source (by :func:`label`) for anything that cannot be read."""
    reader = {"duckdb": _duckdb, "postgres": _postgres, "spark": _spark}[location.engine]
    return reader(location, label(location, table))


def relation(location, table: str = ""):
    """``(connection, relation, label, zones)``: the rows of a Parquet file, glob or folder or of
    a DuckDB table or query, as a DuckDB relation, read once into Arrow for the contract's checks
    (see :func:`closedloop.io.read_transactions`), and the time zones the Parquet files write
    their timestamps in (:func:`with_zones` puts DuckDB's columns back in them); None for every
    other source, or one DuckDB cannot open (the pandas route then reads it, or names what is
    wrong with it)."""
    import duckdb

    if isinstance(location, Source):
        if location.engine != "duckdb":
            return None
        config = {"enable_external_access": False}
        try:
            con = duckdb.connect(str(location.duckdb), read_only=True, config=config)
        except duckdb.Error:
            return None
        try:
            _for_pandas(con)
            rel = (
                con.sql(location.query) if location.query is not None else con.table(location.table)
            )
        except duckdb.Error:
            con.close()
            return None
        return con, rel, label(location, table), {}
    if not isinstance(location, str | Path):
        return None
    path = Path(location)
    if is_glob(path) or path.is_dir():
        try:
            files = matching(path, table)
        except DataError:
            return None
        hive = path.is_dir()
    elif path.is_file() and path.stat().st_size:
        files, hive = [path], False
    else:
        return None
    if files[0].suffix.lower() not in PARQUET_SUFFIXES:
        return None
    zones = _written_zones(files, str(path))
    con = duckdb.connect()
    try:
        _for_pandas(con)
        rel = con.read_parquet([str(f) for f in files], hive_partitioning=hive, union_by_name=True)
    except duckdb.Error:
        con.close()
        return None
    return con, rel, str(path), zones


def parquet_file(location):
    """One Parquet file read whole into Arrow by pyarrow (multi-threaded, the reader
    ``pandas.read_parquet`` uses, a row group at a time), for the checks run on the rows in memory (see
    :func:`closedloop.io.read_transactions`); None for every other source, or a file pyarrow
    cannot read (the pandas route then names what is wrong with it)."""
    if not isinstance(location, str | Path):
        return None
    path = Path(location)
    if path.suffix.lower() not in PARQUET_SUFFIXES or is_glob(path) or not path.is_file():
        return None
    if not path.stat().st_size:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            # a row group at a time: the decoding's scratch memory is one group's, not the file's
            groups = [parquet.read_row_group(i) for i in range(parquet.num_row_groups)]
            return pa.concat_tables(groups) if groups else parquet.schema_arrow.empty_table()
    except Exception:  # pyarrow raises many types for a broken file
        return None


def _for_pandas(con) -> None:
    """No progress bar, text handed to Arrow as ``large_string`` (the type pandas keeps its text
    in: a plain ``string`` would be copied once more on the way), and time-zoned timestamps in
    UTC whatever the machine's zone, as from PostgreSQL (a file's own zone is put back by
    :func:`with_zones`)."""
    con.execute("SET enable_progress_bar = false")
    con.execute("SET arrow_large_buffer_size = true")
    con.execute("SET TimeZone = 'UTC'")


def matching(path: Path, table: str) -> list[Path]:
    """The files of a glob (``tx/*.csv``, ``tx/**/*.parquet``) or the Parquet files under a
    folder, sorted; a :class:`DataError` when there are none or Parquet is mixed with others."""
    if path.is_dir():
        files = parquet_files(path)
    else:
        files = sorted(Path(f) for f in glob.glob(str(path), recursive=True) if Path(f).is_file())
    if not files and path.is_dir():
        raise DataError(
            str(path),
            f"a directory without {table} Parquet files (a folder is read as one table: the"
            " Parquet files under it)",
        )
    if not files:
        raise DataError(str(path), f"no {table} file matches")
    parquet = [f.suffix.lower() in PARQUET_SUFFIXES for f in files]
    if any(parquet) and not all(parquet):
        raise DataError(str(path), "the pattern matches Parquet and other files: name one kind")
    return files


def read_parquet(files: list[Path], source: str, hive: bool = False) -> pd.DataFrame:
    """Parquet files as one table, read by DuckDB (columns matched by name); with ``hive`` the
    ``name=value`` folders of a partitioned data set add those columns. A timestamp column with
    a time zone keeps the zone its files were written in (:func:`_written_zones`), as one file
    read by pyarrow does: DuckDB hands such a column over in its session's zone, which would
    move a purchase at 01:00 in Shanghai to the day before."""
    import duckdb

    try:
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            relation = con.read_parquet(
                [str(f) for f in files], hive_partitioning=hive, union_by_name=True
            )
            table = relation.arrow().read_all()
    except duckdb.Error as exc:
        raise DataError(source, f"not readable as Parquet ({_first_line(exc)})") from None
    return with_zones(table, _written_zones(files, source)).to_pandas()


def with_zones(table, zones: dict[str, str]):
    """The Arrow ``table`` with each time-zoned timestamp column named in ``zones`` put in its
    zone (the same instants; only the wall clock shown changes)."""
    import pyarrow as pa

    for name, zone in zones.items():
        i = table.schema.get_field_index(name)
        if i >= 0 and pa.types.is_timestamp(kind := table.schema.field(i).type) and kind.tz:
            table = table.set_column(i, name, table.column(i).cast(pa.timestamp(kind.unit, zone)))
    return table


def _written_zones(files: list[Path], source: str) -> dict[str, str]:
    """Per timestamp column with a time zone, the zone the files' Arrow schemas name (the footers
    alone are read; a file without one is skipped); a :class:`DataError` when the files name
    different zones for one column, whose wall-clock times would then mean different things."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    zones: dict[str, dict[str, str]] = {}
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (pa.ArrowException, OSError):  # a broken file: the reader that follows names it
            continue
        for field in schema:
            if pa.types.is_timestamp(field.type):
                # a file without a zone for the column: DuckDB would read its wall clock in its
                # session's zone and shift it to the others' (refused below)
                zone = field.type.tz or "no time zone"
                zones.setdefault(field.name, {}).setdefault(zone, f.name)
    zones = {name: seen for name, seen in zones.items() if set(seen) != {"no time zone"}}
    for name, seen in zones.items():
        if len(seen) > 1:
            named = ", ".join(f"{zone} in {file}" for zone, file in list(seen.items())[:3])
            raise DataError(
                source,
                f"the files write {name!r} in different time zones ({named}); write them in"
                " one zone",
                column=name,
            )
    return {name: next(iter(seen)) for name, seen in zones.items()}


def _duckdb(location: Source, source: str) -> pd.DataFrame:
    """The table or query in the database file, opened read-only and without access to other
    files (a query cannot read around the plan's data root)."""
    import duckdb

    config = {"enable_external_access": False}
    try:
        with duckdb.connect(str(location.duckdb), read_only=True, config=config) as con:
            con.execute("SET TimeZone = 'UTC'")  # as every route: not the machine's zone
            relation = (
                con.sql(location.query) if location.query is not None else con.table(location.table)
            )
            return relation.arrow().read_all().to_pandas()
    except duckdb.Error as exc:
        raise DataError(source, _first_line(exc)) from None


def _postgres(location: Source, source: str) -> pd.DataFrame:
    """The table or query through libpq, in a read-only transaction with the session time zone
    UTC (a ``timestamptz`` comes as its UTC wall clock), streamed as CSV text with ``COPY`` and
    parsed by Arrow with the types the server reports (ids stay text, numbers numbers)."""
    import psycopg
    from psycopg import sql

    conninfo, secrets = _expand(location.postgres, source)
    if location.table is not None:
        select = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*location.table.split(".")))
    else:
        select = sql.SQL(location.query.strip().rstrip(";"))
    # on lines of their own: a query ending in a -- comment still closes
    inner = sql.SQL("SELECT * FROM (\n{}\n) AS closedloop_source").format(select)
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT) as con:
            con.read_only = True
            with con.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
                cur.execute(sql.SQL("{} LIMIT 0").format(inner))
                columns = [(d.name, d.type_code) for d in cur.description]
                text = io.BytesIO()
                copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(inner)
                with cur.copy(copy) as stream:
                    for chunk in stream:
                        text.write(chunk)
    except psycopg.OperationalError as exc:
        raise DataError(source, f"cannot connect: {_scrub(exc, secrets)}") from None
    except psycopg.Error as exc:
        raise DataError(source, _scrub(exc, secrets)) from None
    return _csv_to_pandas(text.getvalue(), columns, source)


#: PostgreSQL type oids -> the Arrow type their COPY text is parsed as (others stay text)
_PG_TYPES = {
    16: "bool",
    20: "int64",
    21: "int64",
    23: "int64",
    700: "float64",
    701: "float64",
    1700: "float64",
    1082: "date32",
    1114: "timestamp",
    1184: "timestamptz",
}


def _csv_to_pandas(data: bytes, columns, source: str) -> pd.DataFrame:
    import pyarrow as pa
    from pyarrow import csv

    names = [name for name, _ in columns]
    types = {
        "bool": pa.bool_(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "date32": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    column_types = {
        name: types[_PG_TYPES.get(oid, "")] for name, oid in columns if oid in _PG_TYPES
    }
    column_types |= {name: pa.string() for name in names if name not in column_types}
    if not data:
        schema = pa.schema([(n, column_types[n]) for n in names])
        return schema.empty_table().to_pandas()
    try:
        arrow = csv.read_csv(
            io.BytesIO(data),
            read_options=csv.ReadOptions(column_names=names),
            convert_options=csv.ConvertOptions(
                column_types=column_types,
                null_values=[""],
                strings_can_be_null=True,  # COPY writes NULL unquoted and empty, '' as ""
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
                timestamp_parsers=["%Y-%m-%d %H:%M:%S", csv.ISO8601],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(source, f"a value the reader cannot convert ({_first_line(exc)})") from None
    return arrow.to_pandas()


def _spark(location: Source, source: str) -> pd.DataFrame:
    """The table or query on a Spark session: ``sc://...`` a Spark Connect server, another master
    (``local[2]``, ``yarn``, ``spark://...``) a classic session, ``""`` the running one."""
    from closedloop import spark

    session = spark.session(location.spark)
    try:
        frame = (
            session.sql(location.query)
            if location.query is not None
            else session.table(location.table)
        )
        arrow = frame.toArrow()
    except Exception as exc:  # Spark raises its own types (analysis, connect, py4j)
        raise DataError(source, _first_line(exc)) from None
    return arrow.to_pandas()


def _expand(conninfo: str, source: str) -> tuple[str, list[str]]:
    """``conninfo`` with every ``${VARIABLE}`` replaced by its value, and those values (to keep
    them out of any message)."""
    secrets = []

    def value(match):
        name = match[1]
        if name not in os.environ:
            raise DataError(source, f"the environment variable {name} is not set")
        secrets.append(os.environ[name])
        return os.environ[name]

    return VARIABLE.sub(value, conninfo or ""), [s for s in secrets if s]


def _scrub(exc: Exception, secrets: list[str]) -> str:
    text = _first_line(exc)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _without_variables(text: str | None) -> str:
    return VARIABLE.sub("***", text or "")


def _pg_where(conninfo: str) -> str:
    """`` crm on db.example:5432``: the database, host and port of a connection string (from
    the string, else the PG* variables), nothing else."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(_without_variables(conninfo))
    except Exception:  # a malformed string is reported when connecting
        parts = {}
    db = parts.get("dbname") or parts.get("service") or os.environ.get("PGDATABASE", "")
    host = parts.get("host") or os.environ.get("PGHOST", "")
    port = parts.get("port") or os.environ.get("PGPORT", "")
    host = f"{Path(host).name}" if host.startswith("/") else host  # a socket folder: its name
    where = f"{host}:{port}" if host and port else host
    return f" {db} on {where}" if db and where else f" {db or where}" if db or where else ""
