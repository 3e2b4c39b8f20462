"""An ordered funnel by channel (first time per stage per entity, then stage-by-stage logic),
against the same funnel written as one DuckDB SQL query over the same pandas frame.

Run: ``python -m benchmarks.bench_funnel`` (10M events, 2M entities) or ``--quick`` (1M events,
200k entities). The funnel on an in-memory pandas frame (the default) against DuckDB scanning
that frame in place; and, through the same narwhals code, the funnel on a DuckDB relation over
the Parquet file and on polars reading it, against DuckDB running its SQL straight on the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._measure import best_of, duckdb_connect, row
from closedloop.funnel import funnel

DATA = Path(__file__).resolve().parent / "data"
STAGES = ["touch", "visit", "register", "purchase"]
CHANNELS = ["store", "wecom", "sms", "app", "poster_qr", "referral"]

# per channel: entrants, entities at each later stage, median and p90 time from the previous stage
SQL = """
WITH per_entity AS (
    SELECT entity_id,
        min(timestamp) FILTER (WHERE stage = 'touch') AS t0,
        arg_min(channel, timestamp) FILTER (WHERE stage = 'touch') AS channel,
        min(timestamp) FILTER (WHERE stage = 'visit') AS t1,
        min(timestamp) FILTER (WHERE stage = 'register') AS t2,
        min(timestamp) FILTER (WHERE stage = 'purchase') AS t3
    FROM events GROUP BY entity_id
), reached AS (
    SELECT channel, t0, t1, t2, t3,
        coalesce(t1 >= t0, false) AS r1,
        coalesce(t1 >= t0 AND t2 >= t1, false) AS r2,
        coalesce(t1 >= t0 AND t2 >= t1 AND t3 >= t2, false) AS r3
    FROM per_entity WHERE t0 IS NOT NULL
)
SELECT channel, count(*) AS n0,
    count(*) FILTER (WHERE r1) AS n1, count(*) FILTER (WHERE r2) AS n2,
    count(*) FILTER (WHERE r3) AS n3,
    median(t1 - t0) FILTER (WHERE r1) AS m1, quantile_cont(epoch(t1 - t0), 0.9) FILTER (WHERE r1) AS q1,
    median(t2 - t1) FILTER (WHERE r2) AS m2, quantile_cont(epoch(t2 - t1), 0.9) FILTER (WHERE r2) AS q2,
    median(t3 - t2) FILTER (WHERE r3) AS m3, quantile_cont(epoch(t3 - t2), 0.9) FILTER (WHERE r3) AS q3
FROM reached GROUP BY channel ORDER BY channel
"""


def events_parquet(n_events: int, n_entities: int, seed: int = 0) -> Path:
    """A synthetic event log, cached on disk: every entity is touched once, from one channel;
    the other events repeat stages up to how deep each entity went, at times that are mostly but
    not always in stage order."""
    path = DATA / f"events_{n_events}.parquet"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    depth = np.minimum(rng.geometric(0.45, n_entities) - 1, len(STAGES) - 1)
    extra = rng.integers(0, n_entities, n_events - n_entities)
    entity = np.concatenate([np.arange(n_entities), extra])
    stage = np.concatenate(
        [np.zeros(n_entities, np.int64), (rng.random(len(extra)) * (depth[extra] + 1)).astype(int)]
    )
    start = rng.integers(0, 30 * 86_400, n_entities)
    seconds = start[entity] + stage * 3_600 + rng.integers(-600, 3 * 86_400, n_events)
    channel = rng.integers(0, len(CHANNELS), n_entities)[entity]
    order = rng.permutation(n_events)
    frame = pd.DataFrame(
        {
            "entity_id": pd.array(np.char.add("E", entity[order].astype(str)), dtype="str"),
            "stage": pd.array(np.array(STAGES)[stage[order]], dtype="str"),
            "timestamp": pd.to_datetime(pd.Timestamp("2026-03-01").value + seconds[order] * 10**9),
            "channel": pd.array(np.array(CHANNELS)[channel[order]], dtype="str"),
        }
    )
    frame.to_parquet(path, index=False)
    return path


def duckdb_funnel(events: pd.DataFrame) -> pd.DataFrame:
    """The SQL over the in-memory pandas frame (DuckDB scans it in place)."""
    con = duckdb_connect()
    con.register("events", events)
    return con.sql(SQL).df()


def duckdb_funnel_parquet(path: Path) -> pd.DataFrame:
    """The SQL straight from the Parquet file."""
    con = duckdb_connect()
    con.sql(f"CREATE VIEW events AS SELECT * FROM read_parquet('{path}')")
    return con.sql(SQL).df()


def duckdb_relation_funnel_parquet(path: Path) -> pd.DataFrame:
    """The same narwhals funnel on a DuckDB relation over the Parquet file."""
    return funnel(duckdb_connect().read_parquet(str(path)), STAGES, by="channel")


def polars_funnel_parquet(path: Path) -> pd.DataFrame:
    """Read the Parquet file with polars and run the same narwhals funnel on the polars frame."""
    import polars as pl  # imported in the measured child: polars' thread pool does not survive fork

    return funnel(pl.read_parquet(path), STAGES, by="channel")


def run(quick: bool = False) -> list[dict]:
    n_events, n_entities = (1_000_000, 200_000) if quick else (10_000_000, 2_000_000)
    path = events_parquet(n_events, n_entities)
    events = pd.read_parquet(path)
    size = f"{n_events:,} events / {n_entities:,} entities"
    # every engine runs in a forked child; DuckDB and polars start thread pools that a fork
    # would inherit broken, so the parent touches neither until all timings are taken
    ours = best_of(2, funnel, events, STAGES, by="channel")
    sql = best_of(2, duckdb_funnel, events)
    ours_relation = best_of(2, duckdb_relation_funnel_parquet, path)
    ours_file = best_of(2, polars_funnel_parquet, path)
    sql_file = best_of(2, duckdb_funnel_parquet, path)
    # same answer: entities per channel and stage
    counts = funnel(events, STAGES, by="channel").pivot(
        index="channel", columns="stage", values="entities"
    )
    peer = duckdb_funnel(events)
    assert (counts[STAGES].to_numpy() == peer[["n0", "n1", "n2", "n3"]].to_numpy()).all()
    return [
        row("ordered funnel by channel, pandas frame", size, ours, "DuckDB SQL on the frame", sql),
        row(
            "ordered funnel by channel, Parquet through DuckDB",
            size,
            ours_relation,
            "DuckDB SQL on the Parquet file",
            sql_file,
        ),
        row(
            "ordered funnel by channel, Parquet read by polars",
            size,
            ours_file,
            "DuckDB SQL on the Parquet file",
            sql_file,
        ),
    ]


if __name__ == "__main__":
    print(pd.DataFrame(run(quick="--quick" in sys.argv)).to_markdown(index=False))
