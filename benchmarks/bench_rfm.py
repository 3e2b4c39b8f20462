"""RFM + pyramid + member tiers on synthetic transactions vs a bare DuckDB SQL group-by.

Workload: ``rfm_table`` (recency, frequency, monetary, scores, segments) then ``pyramid`` and
``member_tiers`` on 10M transactions of 1M customers (quick mode: 1M of 100k):

1. on the pandas frame in memory, as shipped (DuckDB scans the frame in place), and with each
   other engine that can aggregate pandas (polars, pandas itself); the peer is the DuckDB query
   that produces only recency / frequency / monetary per customer from the same pandas frame;
2. from a Parquet file through ``duckdb.read_parquet`` (the whole file never sits in memory),
   against the same SQL on the file.

Each is measured in the same run as its peer; the answers are checked to agree. Run from the
project root: ``python -m benchmarks.bench_rfm``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks._measure import best_of, duckdb_connect, row
from closedloop import _frames, rfm

DATA = Path(__file__).resolve().parent / "data"
ASOF = pd.Timestamp("2026-03-31")
SQL = """
SELECT customer_id,
       date_diff('day', max(order_date)::DATE, DATE '{asof}') AS recency_days,
       count(*) AS frequency,
       sum(amount) AS monetary
FROM tx
WHERE order_date < TIMESTAMP '{end}'
GROUP BY customer_id
"""


def synthetic(n_rows: int, n_customers: int, seed: int = 0) -> pd.DataFrame:
    """Transactions over two years to ASOF: skewed customer activity, lognormal amounts."""
    rng = np.random.default_rng(seed)
    weights = rng.gamma(0.8, 1.0, n_customers)
    who = rng.choice(n_customers, size=n_rows, p=weights / weights.sum())
    ids = pd.array([f"C{i:07d}" for i in range(n_customers)], dtype="str")
    seconds = rng.integers(0, 730 * 86400, n_rows)
    return pd.DataFrame(
        {
            "customer_id": ids[who],
            "order_date": (ASOF - pd.to_timedelta(seconds, unit="s")).astype("datetime64[ns]"),
            "amount": np.round(rng.lognormal(3.2, 0.8, n_rows), 2),
        }
    )


def ours(frame: pd.DataFrame) -> None:
    table = rfm.rfm_table(frame, ASOF)
    rfm.pyramid(table)
    rfm.member_tiers(table)


def ours_on_engine(frame: pd.DataFrame, engine: str) -> None:
    """The same calls with another engine aggregating the pandas frame."""
    _frames.PANDAS_ENGINE = engine  # runs in a forked child: the parent's module is untouched
    ours(frame)


def ours_parquet(path: Path) -> None:
    ours(duckdb_connect().read_parquet(str(path)))


def _sql() -> str:
    end = (ASOF + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return SQL.format(asof=ASOF.strftime("%Y-%m-%d"), end=end)


def duckdb_sql(frame: pd.DataFrame) -> pd.DataFrame:
    con = duckdb_connect()
    con.register("tx", frame)
    out = con.execute(_sql()).df()
    con.close()
    return out


def duckdb_sql_parquet(path: Path) -> pd.DataFrame:
    con = duckdb_connect()
    out = con.execute(_sql().replace("FROM tx", f"FROM read_parquet('{path}')")).df()
    con.close()
    return out


def transactions_parquet(frame: pd.DataFrame, n_rows: int) -> Path:
    """The synthetic transactions as a Parquet file (written once, then reused)."""
    path = DATA / f"rfm_{n_rows}.parquet"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        frame.to_parquet(path, index=False, row_group_size=1_000_000)
    return path


def run(quick: bool = False) -> list[dict]:
    n_rows, n_customers = (1_000_000, 100_000) if quick else (10_000_000, 1_000_000)
    frame = synthetic(n_rows, n_customers)
    path = transactions_parquet(frame, n_rows)
    input_mb = frame.memory_usage(deep=True).sum() / 2**20
    size = f"{n_rows / 1e6:g}M tx / {n_customers / 1e6:g}M customers ({input_mb:,.0f} MB)"
    repeats = 3 if quick else 2
    # every engine runs in a forked child; polars and DuckDB start thread pools that a fork
    # would inherit broken, so the parent touches neither until all timings are taken
    peer_name = "DuckDB SQL group-by (R, F, M only)"
    peer = best_of(repeats, duckdb_sql, frame)
    rows = [
        row(
            "rfm_table + pyramid + member_tiers",
            size,
            best_of(repeats, ours, frame),
            peer_name,
            peer,
        )
    ]
    for engine in _frames.PANDAS_ENGINES[1:]:
        mine = best_of(repeats, ours_on_engine, frame, engine)
        rows.append(
            row(f"the same, {engine} engine on the pandas frame", size, mine, peer_name, peer)
        )
    for result in rows:
        result["mb_per_input_mb"] = round(result["closedloop_mb"] / input_mb, 2)
        result["note"] = f"peak {result['mb_per_input_mb']}x the input frame"
    parquet = row(
        "the same, Parquet read through DuckDB",
        f"{n_rows / 1e6:g}M tx / {n_customers / 1e6:g}M customers (Parquet)",
        best_of(repeats, ours_parquet, path),
        "DuckDB SQL on the Parquet file",
        best_of(repeats, duckdb_sql_parquet, path),
    )
    rows.append(parquet)
    # same answer: recency, frequency and monetary (total spend, as the SQL sums it) per customer
    table = rfm.rfm_table(frame, ASOF, monetary="total")
    sql = duckdb_sql(frame).set_index("customer_id").reindex(table.index)
    assert (table["recency_days"].to_numpy() == sql["recency_days"].to_numpy()).all()
    assert (table["frequency"].to_numpy() == sql["frequency"].to_numpy()).all()
    assert np.allclose(table["monetary"].to_numpy(), sql["monetary"].to_numpy())
    from_parquet = rfm.rfm_table(duckdb.read_parquet(str(path)), ASOF, monetary="total")
    pd.testing.assert_frame_equal(from_parquet, table)
    return rows


if __name__ == "__main__":
    print(pd.DataFrame(run(quick="--quick" in sys.argv)).to_markdown(index=False))
