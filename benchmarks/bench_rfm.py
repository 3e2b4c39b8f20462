"""RFM + pyramid + member tiers on synthetic transactions vs a bare DuckDB SQL group-by.

Workload: ``rfm_table`` (recency, frequency, monetary, scores, segments) then ``pyramid`` and
``member_tiers`` on 10M transactions of 1M customers (quick mode: 1M of 100k), once as shipped
(a pandas frame is aggregated by polars when installed) and once on the pandas engine. The peer
is the DuckDB query that produces only recency / frequency / monetary per customer from the same
pandas frame, measured in the same run; the answers are checked to agree. Run from the project root: ``python -m benchmarks.bench_rfm``.
"""

from __future__ import annotations

import sys

import duckdb
import numpy as np
import pandas as pd

from benchmarks._measure import best_of, row
from closedloop import rfm

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


def ours_pandas_engine(frame: pd.DataFrame) -> None:
    """The same calls with polars hidden: the narwhals group-by runs on pandas itself."""
    rfm.pl = None  # runs in a forked child: the parent's module is untouched
    ours(frame)


def duckdb_sql(frame: pd.DataFrame) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("tx", frame)
    end = (ASOF + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    out = con.execute(SQL.format(asof=ASOF.strftime("%Y-%m-%d"), end=end)).df()
    con.close()
    return out


def run(quick: bool = False) -> list[dict]:
    n_rows, n_customers = (1_000_000, 100_000) if quick else (10_000_000, 1_000_000)
    frame = synthetic(n_rows, n_customers)
    input_mb = frame.memory_usage(deep=True).sum() / 2**20
    size = f"{n_rows / 1e6:g}M tx / {n_customers / 1e6:g}M customers ({input_mb:,.0f} MB)"
    repeats = 3 if quick else 2
    # every engine runs in a forked child; polars and DuckDB start thread pools that a fork
    # would inherit broken, so the parent touches neither until all timings are taken
    mine = best_of(repeats, ours, frame)
    mine_pandas = best_of(repeats, ours_pandas_engine, frame)
    peer = best_of(repeats, duckdb_sql, frame)
    # same answer: recency, frequency and monetary per customer
    table = rfm.rfm_table(frame, ASOF)
    sql = duckdb_sql(frame).set_index("customer_id").reindex(table.index)
    assert (table["recency_days"].to_numpy() == sql["recency_days"].to_numpy()).all()
    assert (table["frequency"].to_numpy() == sql["frequency"].to_numpy()).all()
    assert np.allclose(table["monetary"].to_numpy(), sql["monetary"].to_numpy())
    peer_name = "DuckDB SQL group-by (R, F, M only)"
    rows = [
        row("rfm_table + pyramid + member_tiers", size, mine, peer_name, peer),
        row("the same, pandas group-by (no polars)", size, mine_pandas, peer_name, peer),
    ]
    for result, measured in zip(rows, (mine, mine_pandas), strict=True):
        result["input_mb"] = round(input_mb, 1)
        result["mb_per_input_mb"] = round(measured["peak_mb"] / input_mb, 2)
    return rows


if __name__ == "__main__":
    print(pd.DataFrame(run(quick="--quick" in sys.argv)).to_markdown(index=False))
