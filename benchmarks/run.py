"""Every benchmark in one command: one table, the goals it answers, and ``results.md``.

Run from the project root: ``python -m benchmarks.run`` (full sizes: 10M rows, 1M customers;
about half an hour on 2 cores) or ``python -m benchmarks.run --quick`` (a small smoke run).
Each benchmark module runs in a fresh interpreter (so no engine's thread pool is shared across
them) and measures closedloop and its peer in the same run, each call in its own forked child
(:mod:`benchmarks._measure`). The table is printed and written, with the machine it ran on and
the goals met or missed, to ``benchmarks/results.md`` (``results-quick.md`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import multiprocessing as mp
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: the benchmark modules, each with ``run(quick) -> list[dict]``; bench_report when present
MODULES = [
    "bench_io",
    "bench_sources",
    "bench_rfm",
    "bench_clv",
    "bench_lift",
    "bench_funnel",
    "bench_basket",
    "bench_spark",
    "bench_contacts",
    "bench_health",
    "bench_scale",
]
MODULES += ["bench_report"] if importlib.util.find_spec("benchmarks.bench_report") else []
COLUMNS = [
    ("workload", "workload"),
    ("size", "size"),
    ("closedloop_s", "closedloop s"),
    ("closedloop_mb", "closedloop MB"),
    ("peer", "peer"),
    ("peer_s", "peer s"),
    ("peer_mb", "peer MB"),
    ("time_ratio", "time ratio"),
    ("note", "note"),
]


@dataclass(frozen=True)
class Goal:
    """A goal of the issues, read off one row of the table (full sizes only)."""

    text: str
    module: str
    workload: str
    size: str
    field: str
    limit: float
    unit: str
    faster: bool = False  # a time ratio shown as "N x faster" than the peer

    def check(self, rows: list[dict]) -> tuple[str, str]:
        found = [
            r
            for r in rows
            if r["module"] == self.module
            and r["workload"].startswith(self.workload)
            and self.size in r["size"]
        ]
        if not found:
            return "not measured", ""
        value = found[0][self.field]
        shown = f"{1 / value:.1f}x faster" if self.faster else f"{value:g}{self.unit}"
        return ("met" if value <= self.limit else "missed"), shown


GOALS = [
    Goal(
        "read + validate transactions, 10M Parquet rows, within 1.5x of pandas.read_parquet",
        "bench_io",
        "read + validate transactions (Parquet)",
        "10,000,000",
        "time_ratio",
        1.5,
        "x",
    ),
    Goal(
        "closedloop run, 10M transactions / 1M customers from Parquet, under 90 s",
        "bench_scale",
        "closedloop run, plan on parquet",
        "10,000,000 tx",
        "closedloop_s",
        90.0,
        " s",
    ),
    Goal(
        "closedloop run, 10M transactions / 1M customers from Parquet, peak memory of the whole"
        " process tree (kernel included) under 4 GB",
        "bench_scale",
        "closedloop run, plan on parquet",
        "10,000,000 tx",
        "closedloop_mb",
        4096,
        " MB",
    ),
    Goal(
        "customer table (rfm_table + pyramid + member_tiers), 10M transactions, within 1.5x of"
        " DuckDB SQL",
        "bench_rfm",
        "rfm_table + pyramid + member_tiers",
        "10M tx",
        "time_ratio",
        1.5,
        "x",
    ),
    Goal(
        "customer table, 10M transactions, peak memory under 3x the input frame",
        "bench_rfm",
        "rfm_table + pyramid + member_tiers",
        "10M tx",
        "mb_per_input_mb",
        3.0,
        "x",
    ),
    Goal(
        "customer table, 10M transactions read from Parquet through DuckDB, peak memory under 2 GB",
        "bench_rfm",
        "the same, Parquet read through DuckDB",
        "10M tx",
        "closedloop_mb",
        2048,
        " MB",
    ),
    Goal(
        "CLV (summary + fit + CLV), 1M customers, at least 5x faster than naive lifetimes",
        "bench_clv",
        "summary + fit + CLV",
        "1M customers",
        "time_ratio",
        0.2,
        "x",
        faster=True,
    ),
    Goal(
        "lift on 10M rows under 3 s",
        "bench_lift",
        "bayesian_lift (pandas)",
        "10,000,000",
        "closedloop_s",
        3.0,
        " s",
    ),
    Goal(
        "funnel by channel, 10M events / 2M entities, within 2x of DuckDB SQL",
        "bench_funnel",
        "ordered funnel by channel, pandas frame",
        "10,000,000",
        "time_ratio",
        2.0,
        "x",
    ),
    Goal(
        "contact lists (closedloop contacts), 10M transactions / 1M customers, within 2x of DuckDB"
        " SQL",
        "bench_contacts",
        "contact lists",
        "10M tx",
        "time_ratio",
        2.0,
        "x",
    ),
    Goal(
        "member-health aggregations, 10M transactions / 1M customers, within 2x of DuckDB's"
        " group-bys",
        "bench_health",
        "health.check",
        "10M tx",
        "time_ratio",
        2.0,
        "x",
    ),
    Goal(
        "demo report at 20k customers within 2.5x of the papermill + nbconvert floor",
        "bench_report",
        "PDCA report",
        "20,000",
        "time_ratio",
        2.5,
        "x",
    ),
    Goal(
        "run-all of 10 demo plans within 5x of one report, on 2 cores",
        "bench_report",
        "closedloop run-all",
        "20,000",
        "time_ratio",
        5.0,
        "x",
    ),
    Goal(
        "demo report at 200k customers under 60 s",
        "bench_report",
        "PDCA report",
        "200,000",
        "closedloop_s",
        60.0,
        " s",
    ),
]


def _run_module(conn, name: str, quick: bool) -> None:
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        conn.send([{**r, "module": name} for r in module.run(quick=quick)])
    except BaseException as exc:  # report, do not hang the parent
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def run_module(name: str, quick: bool) -> list[dict]:
    """One benchmark module's rows, run in a fresh interpreter."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_module, args=(child, name, quick))
    proc.start()
    result = parent.recv()
    proc.join()
    if isinstance(result, str):
        raise RuntimeError(f"{name}: {result}")
    return result


def machine() -> list[str]:
    """The machine and the versions the numbers were measured with."""
    import duckdb
    import numpy
    import pandas
    import polars

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as handle:
        names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    cpu = names[0] if names else cpu
    with open("/proc/meminfo") as handle:
        total_kb = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
    usable = len(os.sched_getaffinity(0))
    return [
        f"- CPU: {cpu}; {usable} cores usable ({os.cpu_count()} online)",
        f"- RAM: {total_kb / 2**20:.1f} GB",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}; pandas {pandas.__version__}, numpy"
        f" {numpy.__version__}, polars {polars.__version__}, duckdb {duckdb.__version__}",
    ]


def markdown(rows: list[dict]) -> str:
    """The table; a row's fields beyond :data:`COLUMNS` go into its note."""
    shown = {key for key, _ in COLUMNS} | {"module", "mb_per_input_mb"}
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    for r in rows:
        extra = [f"{k.replace('_', ' ')} {v}" for k, v in r.items() if k not in shown]
        cells = {**r, "note": "; ".join(filter(None, [r.get("note", ""), *extra]))}
        lines.append("| " + " | ".join(str(cells.get(key, "")) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def goals(rows: list[dict]) -> str:
    lines = ["| goal | measured | status |", "|---|---|---|"]
    for goal in GOALS:
        status, value = goal.check(rows)
        lines.append(f"| {goal.text} | {value} | {status} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run only these modules")
    args = parser.parse_args(argv)
    started, rows = time.perf_counter(), []
    for name in args.only or MODULES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += run_module(name, args.quick)
    table = markdown(rows)
    print(table)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "# Benchmarks",
        "",
        f"`python -m benchmarks.run{' --quick' if args.quick else ''}`, {when},"
        f" {time.perf_counter() - started:.0f} s in all. Times are the best of repeated runs,"
        " each in a fresh forked process; memory is that process's peak resident set above its"
        " size when the call began. closedloop and its peer are measured in the same run, so"
        " the ratio (closedloop time / peer time) is what to compare: the machine is shared"
        " and absolute times are noisy.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Results",
        "",
        table,
        "",
    ]
    if not args.quick:
        text += ["## Goals", "", goals(rows), ""]
    notes = HERE / "notes.md"
    if notes.exists():
        text += [notes.read_text().strip(), ""]
    out = HERE / ("results-quick.md" if args.quick else "results.md")
    out.write_text("\n".join(text))
    print(f"written {out.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
