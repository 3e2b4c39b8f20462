"""Reading and validating transactions from Parquet, against a bare ``pandas.read_parquet``.

Run: ``python -m benchmarks.bench_io`` (10M rows) or ``--quick`` (1M rows).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._measure import fastest, measure, row
from closedloop.io import read_transactions

DATA = Path(__file__).resolve().parent / "data"


def transactions_parquet(n_rows: int, seed: int = 0) -> Path:
    """A synthetic order table of ``n_rows`` (about n/5 customers), cached on disk."""
    path = DATA / f"transactions_{n_rows}.parquet"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    customers = rng.integers(1, n_rows // 5, n_rows)
    start = pd.Timestamp("2024-01-01").value
    frame = pd.DataFrame(
        {
            "order_id": pd.array(np.arange(n_rows).astype(str), dtype="str"),
            "customer_id": pd.array(customers.astype(str), dtype="str"),
            "order_date": pd.to_datetime(start + rng.integers(0, 730 * 86_400, n_rows) * 10**9),
            "amount": np.round(rng.lognormal(3.0, 0.8, n_rows), 2),
        }
    )
    frame.to_parquet(path, index=False)
    return path


def run(quick: bool = False) -> list[dict]:
    n = 1_000_000 if quick else 10_000_000
    path = transactions_parquet(n)
    ours, bare = [], []
    for _ in range(3):  # alternated, so that both see the same load on a shared machine
        ours.append(measure(read_transactions, path))
        bare.append(measure(pd.read_parquet, path))
    return [
        row(
            "read + validate transactions (Parquet)",
            f"{n:,} rows",
            fastest(ours),
            "pandas.read_parquet",
            fastest(bare),
        )
    ]


if __name__ == "__main__":
    print(pd.DataFrame(run(quick="--quick" in sys.argv)).to_markdown(index=False))
