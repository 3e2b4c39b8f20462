"""Bayesian lift of a campaign (one group-by to per-arm sufficient statistics, then the
posteriors), against a DuckDB SQL group-by of the same sufficient statistics over the same frame.

Run: ``python -m benchmarks.bench_lift`` (10M customers) or ``--quick`` (1M). The campaign has
three arms (control 10%, sms 45%, wecom 45%), a 0/1 ``converted`` and a mostly-zero, log-normal
``revenue``. The peer computes only the statistics; ours also checks the data, infers the metric
kinds and draws 20,000 posterior samples per arm and metric. The lift runs on the pandas frame
in memory (the default), and end to end from the Parquet file, as a DuckDB relation and as a
polars frame, through the same narwhals code, against DuckDB's SQL on the same file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from benchmarks._measure import best_of, duckdb_connect, row
from closedloop.lift import bayesian_lift

DATA = Path(__file__).resolve().parent / "data"
ARMS = {"control": 0.10, "sms": 0.45, "wecom": 0.45}
METRICS = ["converted", "revenue"]

SQL = """
SELECT arm, count(*) AS n,
    sum(converted) AS conversions,
    sum(revenue) AS revenue,
    count(*) FILTER (WHERE revenue > 0) AS buyers,
    sum(ln(revenue)) FILTER (WHERE revenue > 0) AS log_sum,
    sum(ln(revenue) * ln(revenue)) FILTER (WHERE revenue > 0) AS log_sq
FROM campaign GROUP BY arm ORDER BY arm
"""


def campaign_parquet(n: int, seed: int = 0) -> Path:
    """A synthetic campaign outcome table, one row per customer, cached on disk."""
    path = DATA / f"campaign_{n}.parquet"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    arm = rng.choice(np.array(list(ARMS)), n, p=list(ARMS.values()))
    rate = np.select([arm == "sms", arm == "wecom"], [0.055, 0.06], 0.05)
    converted = (rng.random(n) < rate).astype("int64")
    frame = pd.DataFrame(
        {
            "customer_id": pd.array(np.char.add("C", np.arange(n).astype(str)), dtype="str"),
            "arm": pd.array(arm, dtype="str"),
            "converted": converted,
            "revenue": np.where(converted == 1, np.exp(rng.normal(3.2, 0.8, n)).round(2), 0.0),
        }
    )
    frame.to_parquet(path, index=False)
    return path


def duckdb_stats(campaign: pd.DataFrame) -> pd.DataFrame:
    con = duckdb_connect()
    con.register("campaign", campaign)
    return con.sql(SQL).df()


def lift(campaign) -> pd.DataFrame:
    return bayesian_lift(campaign, metrics=METRICS).table


def duckdb_stats_parquet(path: Path) -> pd.DataFrame:
    con = duckdb_connect()
    return con.sql(SQL.replace("FROM campaign", f"FROM '{path}'")).df()


def lift_duckdb_parquet(path: Path) -> pd.DataFrame:
    return lift(duckdb_connect().read_parquet(str(path)))


def lift_polars_parquet(path: Path) -> pd.DataFrame:
    # polars starts its thread pool in the measured child: a pool made before the fork deadlocks
    return lift(pl.read_parquet(path))


def run(quick: bool = False) -> list[dict]:
    n = 1_000_000 if quick else 10_000_000
    campaign = pd.read_parquet(campaign_parquet(n))
    ours, peer = lift(campaign), duckdb_stats(campaign).set_index("arm")
    # same answer before timing anything: customers and means per arm
    conv = ours[ours["metric"] == "converted"].set_index("arm")
    rev = ours[ours["metric"] == "revenue"].set_index("arm")
    assert (conv["customers"] == peer.loc[conv.index, "n"]).all()
    assert np.allclose(conv["mean"], peer.loc[conv.index, "conversions"] / conv["customers"])
    assert np.allclose(rev["mean"], peer.loc[rev.index, "revenue"] / rev["customers"])
    assert np.isclose(
        conv["control_mean"].iat[0], peer.at["control", "conversions"] / peer.at["control", "n"]
    )
    size = f"{n:,} customers, 3 arms, 2 metrics"
    sql = best_of(2, duckdb_stats, campaign)
    rows = [
        row("bayesian_lift (pandas)", size, best_of(2, lift, campaign), "DuckDB SQL stats", sql)
    ]
    path = campaign_parquet(n)
    sql_file = best_of(2, duckdb_stats_parquet, path)
    rows.append(
        row(
            "bayesian_lift on Parquet through DuckDB",
            size,
            best_of(2, lift_duckdb_parquet, path),
            "DuckDB SQL on Parquet",
            sql_file,
        )
    )
    rows.append(
        row(
            "read Parquet + bayesian_lift (polars)",
            size,
            best_of(2, lift_polars_parquet, path),
            "DuckDB SQL on Parquet",
            sql_file,
        )
    )
    return rows


if __name__ == "__main__":
    print(pd.DataFrame(run(quick="--quick" in sys.argv)).to_markdown(index=False))
