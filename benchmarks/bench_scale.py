"""The main job at warehouse scale: ``closedloop run`` on a plan of 10M transactions / 1M
customers read from Parquet, against the papermill + nbconvert floor of an empty notebook.

The plan and its tables are generated with numpy (seeded) into a temporary folder, deleted at
the end. Each run is a fresh ``python -m closedloop.cli run`` process; its wall time and the
peak resident set of its whole process tree (the kernel included) are sampled with psutil.

Run: ``python -m benchmarks.bench_scale`` (10M transactions) or ``--quick`` (1M / 100k);
``--kinds=parquet,duckdb,csv,postgres`` runs the plan on each and says whether the reports' numbers
(``summary.json``) are equal. ``--profile`` runs the Parquet plan once under cProfile (the parent; the kernel's time is the
report's cell timings) and prints the top of the profile.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import yaml

from benchmarks.bench_report import FLOOR

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"control": 0.1, "sms": 0.45, "wecom": 0.45}
SEGMENTS = ["new", "active", "at_risk", "lapsed"]
HISTORY = ("2024-04-01", "2026-04-30")  # rows after the period's end are left out by asof
PERIOD = ("2026-03-01", "2026-03-31")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def tables(n_rows: int, n_customers: int, seed: int = 0) -> dict[str, pa.Table]:
    """Transactions, customers and assignments of a retailer: customers buy at their own rate
    over two years, the campaign's treated arms buy a little more often in March 2026."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(1.5, 1.0, n_customers)
    arm_of = rng.choice(len(ARMS), n_customers, p=list(ARMS.values()))
    lift = np.where(arm_of == 0, 1.0, 1.25)
    start, end = (np.datetime64(d, "s").astype("int64") for d in HISTORY)
    march = tuple(np.datetime64(d, "s").astype("int64") for d in PERIOD)
    days = (end - start) / 86_400
    # March's share of a customer's orders rises with the arm's lift; rows drawn in proportion
    weight = rate * (days + lift * 31 - 31)
    customer = rng.choice(n_customers, n_rows, p=weight / weight.sum())
    in_march = rng.random(n_rows) < (lift[customer] * 31) / (days + lift[customer] * 31 - 31)
    second = np.where(
        in_march,
        rng.integers(march[0], march[1] + 86_400, n_rows),
        rng.integers(start, end, n_rows),
    )
    second = np.where(
        (~in_march) & (second >= march[0]) & (second < march[1] + 86_400),
        second - 31 * 86_400,
        second,
    )
    amount = np.round(rng.lognormal(3.0, 0.8, n_rows), 2)
    amount[rng.random(n_rows) < 0.002] *= -1  # refunds
    transactions = pa.table(
        {
            "order_id": _ids("O", np.arange(1, n_rows + 1), 9),
            "customer_id": _ids("C", customer + 1, 7),
            "order_date": pa.array(second.astype("datetime64[s]")).cast(pa.timestamp("us")),
            "amount": amount,
            "channel": pa.array(np.where(rng.random(n_rows) < 0.3, "online", "store")),
        }
    )
    join = rng.integers(np.datetime64("2021-01-01", "s").astype("int64"), start, n_customers)
    ids = _ids("C", np.arange(1, n_customers + 1), 7)
    customers = pa.table(
        {
            "customer_id": ids,
            "join_date": pa.array(join.astype("datetime64[s]")).cast(pa.timestamp("us")),
            "is_member": rng.random(n_customers) < 0.8,
            "online": rng.random(n_customers) < 0.6,
        }
    )
    assignments = pa.table(
        {
            "customer_id": ids,
            "arm": pa.array(np.array(list(ARMS))[arm_of]),
            "segment": pa.array(np.array(SEGMENTS)[rng.integers(0, 4, n_customers)]),
        }
    )
    return {"transactions": transactions, "customers": customers, "assignments": assignments}


def plan(data: dict) -> dict:
    return {
        "campaign": "scale-winback",
        "objective": "win back",
        "period": {"start": PERIOD[0], "end": PERIOD[1]},
        "baseline": {"start": "2026-01-01", "end": "2026-02-28"},
        "audience": {"segments": SEGMENTS},
        "arms": ARMS,
        "cost": {"sms": 0.05, "wecom": 0.02},
        "targets": {
            "conversion_rate": 0.25,
            "relative_lift": {"metric": "conversion", "min": 0.10},
            "incremental_revenue": 5000,
            "roi": 1.5,
        },
        "data": data,
    }


def write(folder: Path, n_rows: int, n_customers: int, kinds=("parquet",)) -> dict[str, Path]:
    """The tables in ``folder`` as Parquet (and CSV, a DuckDB file, PostgreSQL tables when
    asked) and one plan per kind."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    made, plans = tables(n_rows, n_customers), {}
    for name, table in made.items():
        if "parquet" in kinds:
            pq.write_table(table, folder / f"{name}.parquet", row_group_size=1_000_000)
        if "csv" in kinds:
            pa_csv.write_csv(table, folder / f"{name}.csv")
    if "duckdb" in kinds:
        with duckdb.connect(str(folder / "shop.duckdb")) as con:
            for name, table in made.items():
                con.register("incoming", table)
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
                con.unregister("incoming")
    if "postgres" in kinds:
        # a folder of its own under /tmp: the server's user cannot enter a private temp folder
        server = Path(tempfile.mkdtemp(prefix="closedloop-scale-pg-"))
        (folder / "pg.path").write_text(str(server))
        conninfo = postgres_tables(server, made)
    for kind in kinds:
        data = {
            name: {"duckdb": "shop.duckdb", "table": name}
            if kind == "duckdb"
            else {"postgres": conninfo, "table": name}
            if kind == "postgres"
            else f"{name}.{kind}"
            for name in made
        }
        path = folder / f"plan-{kind}.yaml"
        path.write_text(yaml.safe_dump(plan(data), sort_keys=False))
        plans[kind] = path
    return plans


PG_TYPES = {"string": "text", "timestamp[us]": "timestamp", "double": "float8", "bool": "boolean"}


def postgres_tables(folder: Path, made: dict[str, pa.Table]) -> str:
    """A throwaway PostgreSQL 15 server in ``folder`` (``scripts/postgres.sh``) holding the
    tables, loaded with ``COPY``; its connection string (the socket, no password)."""
    import io as text_io
    import socket

    import psycopg

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    script = ROOT / "scripts" / "postgres.sh"
    subprocess.run(["bash", str(script), "start", str(folder), port], check=True)
    conninfo = f"host={folder} port={port} user=closedloop dbname=postgres"
    with psycopg.connect(conninfo) as con:
        for name, table in made.items():
            columns = ", ".join(f"{f.name} {PG_TYPES[str(f.type)]}" for f in table.schema)
            con.execute(f"CREATE TABLE {name} ({columns})")
            buffer = text_io.BytesIO()
            pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
            with con.cursor().copy(f"COPY {name} FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
    return conninfo


def stop_postgres(folder: Path) -> None:
    """Stop the server :func:`write` started for ``folder`` and delete its files."""
    if (folder / "pg.path").exists():
        server = Path((folder / "pg.path").read_text())
        script = ROOT / "scripts" / "postgres.sh"
        subprocess.run(["bash", str(script), "stop", str(server)], check=False)
        shutil.rmtree(server, ignore_errors=True)


def run_cli(args: list[str], cwd: Path) -> dict:
    """``closedloop ARGS``: see :func:`measure_tree`."""
    return measure_tree([sys.executable, "-m", "closedloop.cli", *args], cwd)


def measure_tree(command: list[str], cwd: Path) -> dict:
    """Wall time, CPU time (user + system, every process of the tree) and the peak resident set
    (MB) of a process tree, sampled every 50 ms. On a shared machine the wall time follows the
    load; the CPU time does not."""
    import psutil

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak, root = 0, psutil.Process(proc.pid)

    def sample():
        nonlocal peak
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for p in tree:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += p.memory_info().rss
                peak = max(peak, total)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)

    watcher = threading.Thread(target=sample)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = done.ru_utime + done.ru_stime - used.ru_utime - used.ru_stime
    watcher.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command[:5])} failed:\n{err[-2000:]}")
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": peak / 2**20, "stdout": out}


def report_numbers(out: Path) -> dict:
    """summary.json of the one run under ``out``, without its run id."""
    (summary,) = out.glob("*/*/summary.json")
    record = json.loads(summary.read_text())
    record.pop("run_id")
    record.pop("plan_path", None)
    return record


def differences(a, b, where: str = "") -> list[tuple[str, float]]:
    """Where two summary.json records differ: ``(path, relative difference)`` per differing leaf
    (infinity for anything but two numbers)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{where}[{i}]")]
    if a == b:
        return []
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    gap = abs(a - b) / max(abs(a), abs(b)) if numbers else float("inf")
    return [(where.lstrip("."), gap)]


def floor(folder: Path) -> dict:
    """The papermill + nbconvert floor: an empty notebook executed and converted to HTML."""
    return measure_tree([sys.executable, "-c", FLOOR, str(folder)], folder)


def profile(plan_path: Path, folder: Path, top: int = 30) -> None:
    """``closedloop run`` once under cProfile: the parent's functions by cumulative time (the
    kernel's whole run is the time spent in ``report._execute``)."""
    import pstats

    stats = folder / "run.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "closedloop.cli", "run"]
    command += [str(plan_path), "--out", str(folder / "reports-profile"), "--run-id", "p1"]
    measure_tree(command, folder)
    pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(top)


def run(quick: bool = False, kinds=("parquet",), profiled: bool = False) -> list[dict]:
    n_rows, n_customers = (1_000_000, 100_000) if quick else (10_000_000, 1_000_000)
    size = f"{n_rows:,} tx / {n_customers:,} customers"
    folder = Path(tempfile.mkdtemp(prefix="closedloop-scale-"))
    rows = []
    try:
        plans = write(folder, n_rows, n_customers, kinds)
        base = floor(folder)
        numbers = {}
        for kind, path in plans.items():
            out = folder / f"reports-{kind}"
            ours = run_cli(["run", str(path), "--out", str(out), "--run-id", "r1"], folder)
            numbers[kind] = report_numbers(out)
            rows.append(
                {
                    "workload": f"closedloop run, plan on {kind}",
                    "size": size,
                    "closedloop_s": round(ours["seconds"], 1),
                    "closedloop_mb": round(ours["peak_mb"], 1),
                    "peer": "papermill+nbconvert, empty notebook",
                    "peer_s": round(base["seconds"], 3),
                    "peer_mb": round(base["peak_mb"], 1),
                    "time_ratio": round(ours["seconds"] / base["seconds"], 2),
                    "note": f"peak RSS of the whole process tree, kernel included; CPU"
                    f" {ours['cpu_s']:.0f} s (floor {base['cpu_s']:.1f} s)",
                }
            )
        if profiled:
            profile(next(iter(plans.values())), folder)
        first = next(iter(numbers.values()))
        if len(numbers) > 1:
            # sums of millions of amounts added in another order differ in the last bits
            found = [d for n in numbers.values() for d in differences(first, n)]
            worst = max((gap for _, gap in found), default=0.0)
            rows[-1]["note"] += (
                f"; summary.json equal across {', '.join(numbers)}: True"
                if not found
                else f"; summary.json across {', '.join(numbers)}: {len(found)} number(s) differ,"
                f" by at most {worst:.1e} of their value (first: {found[0][0]})"
            )
    finally:
        stop_postgres(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import pandas as pd

    chosen = [a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--kinds=")]
    kinds = tuple(chosen[-1]) if chosen else ("parquet",)
    rows = run("--quick" in sys.argv, kinds, profiled="--profile" in sys.argv)
    print(pd.DataFrame(rows).to_markdown(index=False))
