"""Time and peak memory of one call, measured in a forked child so runs do not share a heap.

``measure(fn, *args)`` returns ``{"seconds": ..., "peak_mb": ...}``: wall time of the call and the
growth of the child's peak resident set (``ru_maxrss``) over its size when the call began, so the
figure counts memory held by numpy, Arrow and DuckDB alike (tracemalloc would miss the last two).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time


def duckdb_connect():
    """A DuckDB connection that prints no progress bar over the benchmark table."""
    import duckdb  # in the measured child: DuckDB's threads do not survive a fork

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(conn, fn, args, kwargs):
    try:
        start_rss = _rss_mb()
        start = time.perf_counter()
        fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn.send({"seconds": seconds, "peak_mb": max(peak - start_rss, 0.0)})
    except BaseException as exc:  # report, do not hang the parent
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


def measure(fn, *args, **kwargs) -> dict:
    """Run ``fn(*args, **kwargs)`` once in a forked child; return seconds and peak MB."""
    parent, child = mp.get_context("fork").Pipe(duplex=False)
    proc = mp.get_context("fork").Process(target=_child, args=(child, fn, args, kwargs))
    proc.start()
    result = parent.recv()
    proc.join()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def best_of(n: int, fn, *args, **kwargs) -> dict:
    """The fastest of ``n`` measured runs (and its peak memory)."""
    return fastest([measure(fn, *args, **kwargs) for _ in range(n)])


def fastest(runs: list[dict]) -> dict:
    """The fastest of measured runs (and its peak memory)."""
    return min(runs, key=lambda r: r["seconds"])


def interleaved(rounds: int, sides: dict) -> dict[str, list[dict]]:
    """Every side (``name -> (fn, *args)``) measured ``rounds`` times, the sides taking turns
    within each round, so a change in a shared machine's load falls on all of them alike rather
    than on whichever ran last; per side its runs in round order (the best: :func:`fastest`,
    a round's ratio: its runs' seconds divided)."""
    runs = {name: [] for name in sides}
    for _ in range(rounds):
        for name, (fn, *args) in sides.items():
            runs[name].append(measure(fn, *args))
    return runs


def row(workload: str, size: str, ours: dict, peer_name: str, peer: dict) -> dict:
    """One line of the benchmark table, with the time ratio ours / peer."""
    return {
        "workload": workload,
        "size": size,
        "closedloop_s": round(ours["seconds"], 3),
        "closedloop_mb": round(ours["peak_mb"], 1),
        "peer": peer_name,
        "peer_s": round(peer["seconds"], 3),
        "peer_mb": round(peer["peak_mb"], 1),
        "time_ratio": round(ours["seconds"] / peer["seconds"], 2),
    }
