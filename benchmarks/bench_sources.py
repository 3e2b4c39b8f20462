"""Reading a plan's transactions from the new sources, against the obvious way to do it.

- a partitioned Parquet folder (``month=2024-01/...``) through ``io.read_transactions`` (DuckDB
  reads the folder, the contract validates), against ``pandas.read_parquet`` of the same folder;
- a PostgreSQL table through ``io.read_transactions`` (``COPY`` into Arrow, then the contract),
  against psycopg's ``fetchall`` into a pandas frame (no validation), on a throwaway PostgreSQL
  15 server started and stopped here with ``scripts/postgres.sh``.

Run: ``python -m benchmarks.bench_sources`` (10M Parquet rows, 1M PostgreSQL rows) or
``--quick`` (1M / 100k).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._measure import best_of, row
from closedloop.io import read_transactions
from closedloop.plan import Source

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[1]


def transactions(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic order table of ``n_rows`` (about n/10 customers) over two years."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01").value
    return pd.DataFrame(
        {
            "order_id": pd.array(np.char.add("O", np.arange(n_rows).astype(str)), dtype="str"),
            "customer_id": pd.array(
                np.char.add("C", rng.integers(1, n_rows // 10, n_rows).astype(str)), dtype="str"
            ),
            "order_date": pd.to_datetime(start + rng.integers(0, 730 * 86_400, n_rows) * 10**9),
            "amount": np.round(rng.lognormal(3.0, 0.8, n_rows), 2),
        }
    )


def parquet_folder(n_rows: int) -> Path:
    """The table as a hive-partitioned Parquet folder, one folder per month, cached on disk."""
    folder = DATA / f"transactions_{n_rows}_by_month"
    if folder.exists():
        return folder
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = transactions(n_rows)
    frame["month"] = frame["order_date"].dt.strftime("%Y-%m")
    pq.write_to_dataset(
        pa.Table.from_pandas(frame, preserve_index=False), folder, partition_cols=["month"]
    )
    return folder


def fetchall(conninfo: str, table: str) -> pd.DataFrame:
    """The obvious way: psycopg's fetchall into a pandas frame."""
    import psycopg

    with psycopg.connect(conninfo) as con, con.cursor() as cur:
        cur.execute(f"SELECT * FROM {table}")
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def postgres_rows(n_rows: int) -> list[dict]:
    import psycopg

    script = ROOT / "scripts" / "postgres.sh"
    folder = Path(tempfile.mkdtemp(prefix="closedloop-bench-pg-"))
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    try:
        subprocess.run(["bash", str(script), "start", str(folder), port], check=True)
        conninfo = f"host={folder} port={port} user=closedloop dbname=postgres"
        with psycopg.connect(conninfo) as con:
            con.execute(
                "CREATE TABLE orders (order_id text, customer_id text, order_date timestamp,"
                " amount numeric)"
            )
            text = transactions(n_rows).to_csv(index=False, header=False)
            with con.cursor().copy("COPY orders FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(text)
        source = Source(postgres=conninfo, table="orders")
        ours = best_of(2, read_transactions, source)
        bare = best_of(2, fetchall, conninfo, "orders")
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)
    return [
        row(
            "read + validate transactions (PostgreSQL table)",
            f"{n_rows:,} rows",
            ours,
            "psycopg fetchall into pandas (no checks)",
            bare,
        )
    ]


def run(quick: bool = False) -> list[dict]:
    n = 1_000_000 if quick else 10_000_000
    folder = parquet_folder(n)
    ours = best_of(2, read_transactions, folder)
    bare = best_of(2, pd.read_parquet, folder)
    rows = [
        row(
            "read + validate transactions (partitioned Parquet folder)",
            f"{n:,} rows, 24 month folders",
            ours,
            "pandas.read_parquet of the folder",
            bare,
        )
    ]
    print(pd.DataFrame(rows).to_markdown(index=False), file=sys.stderr, flush=True)
    return rows + postgres_rows(n // 10)


if __name__ == "__main__":
    print(pd.DataFrame(run(quick="--quick" in sys.argv)).to_markdown(index=False))
