"""Basket rules on Spark: ``closedloop.basket.rules`` on a Spark DataFrame of order lines (Spark
ML's FP-growth on a local session) against the local route (mlxtend's fpgrowth) on the same lines.

Run: ``python -m benchmarks.bench_spark`` (Groceries, and 200k synthetic baskets over 50k items)
or ``--quick`` (Groceries only). Both sides end with the same rules (checked).

The Spark side is timed in this process, on a session started and warmed up beforehand (a
forked child cannot share the parent's JVM), so its memory column is the Python side only; the
JVM's heap is its own. The local route is measured in a forked child as everywhere else.
"""

from __future__ import annotations

import sys
import time
import warnings

import pandas as pd

from benchmarks._measure import best_of, row
from benchmarks.bench_basket import GROCERIES, GROCERY_THRESHOLDS, synthetic_baskets
from closedloop import spark
from closedloop.basket import rules
from closedloop.datasets import groceries


def _long(baskets: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(str(i), item) for i, basket in enumerate(baskets) for item in basket],
        columns=["order_id", "item"],
    )


def _timed(n: int, fn, *args) -> dict:
    """The fastest of ``n`` runs in this process (no memory figure: the work is in the JVM)."""
    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        fn(*args)
        seconds.append(time.perf_counter() - start)
    return {"seconds": min(seconds), "peak_mb": 0.0}


def run(quick: bool = False) -> list[dict]:
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
    workloads = [("Groceries", groceries(GROCERIES if GROCERIES.exists() else None))]
    if not quick:
        workloads.append(("synthetic", synthetic_baskets(200_000, 50_000)))
    repeats = 1 if quick else 3
    local = []  # measured before the JVM starts: forked children never inherit its threads
    for name, baskets in workloads:
        lines = _long(baskets)
        thresholds = GROCERY_THRESHOLDS if name == "Groceries" else (0.001, 0.3)
        local.append(
            (name, baskets, lines, thresholds, best_of(repeats, rules, lines, *thresholds))
        )
    session = spark.session("local[2]")
    out = []
    for name, baskets, lines, thresholds, peer in local:
        remote = spark.to_spark(lines, session).cache()
        remote.count()
        reference = rules(lines, *thresholds)
        pd.testing.assert_frame_equal(rules(remote, *thresholds), reference)  # and warm-up
        ours = _timed(repeats, rules, remote, *thresholds)
        size = f"{len(baskets):,} baskets, {lines['item'].nunique():,} items"
        found = row(
            f"{name} rules on Spark FP-growth ({len(reference):,})",
            size,
            ours,
            "closedloop local route (mlxtend fpgrowth)",
            peer,
        )
        found["note"] = "Spark local[2], warm session; MB: the Python side only"
        out.append(found)
    return out


if __name__ == "__main__":
    table = pd.DataFrame(run(quick="--quick" in sys.argv))
    print(table.to_markdown(index=False))
