"""The main job end to end: ``closedloop run`` on the demo at 20k and 200k customers, against
papermill + nbconvert executing and converting an empty notebook in the same run (the floor every
papermill report pays: starting a kernel, executing, writing HTML); and ``closedloop run-all`` of
10 plans on the 20k demo against one report.

Run: ``python -m benchmarks.bench_report`` (20k and 200k customers) or ``--quick`` (5k). Each run
is a fresh process, as a scheduler would start it; closedloop's and the floor's runs alternate,
best of :data:`REPEAT` each (the machine is shared). Peak memory is the largest resident set of
any process of the run (the command, a worker or a kernel), read from ``RUSAGE_CHILDREN`` in a
forked child. The demo data are built once into ``benchmarks/data/`` and reused.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._measure import row

DATA = Path(__file__).resolve().parent / "data"
#: runs of each command, alternating, of which the fastest counts
REPEAT = 3
#: the plans of the run-all row: the demo's plan as 10 campaigns with their own targets
PLANS = 10

FLOOR = """
import sys, nbformat, papermill
from nbconvert import HTMLExporter
nb = nbformat.v4.new_notebook()
cell = nbformat.v4.new_code_cell("run_id = ''")
cell.metadata["tags"] = ["parameters"]
nb.cells = [cell]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
src, out = sys.argv[1] + "/empty.ipynb", sys.argv[1] + "/executed.ipynb"
nbformat.write(nb, src)
papermill.execute_notebook(src, out, parameters={"run_id": "x"}, kernel_name="python3",
                           progress_bar=False)
body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nbformat.read(out, as_version=4))
open(sys.argv[1] + "/report.html", "w").write(body)
"""


def demo(n: int) -> Path:
    """The demo retailer with ``n`` customers (built once)."""
    from closedloop.datasets import write_demo

    folder = DATA / f"demo-{n}"
    if not (folder / "plan.yaml").exists():
        write_demo(folder, seed=0, n_customers=n)
    return folder


def _child(conn, command):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    conn.send({"seconds": seconds, "peak_mb": peak, "rc": done.returncode, "err": done.stderr})
    conn.close()


def measure_command(command: list[str]) -> dict:
    """Wall time and the largest process's peak memory of one command, in a fresh child."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, command))
    proc.start()
    result = parent.recv()
    proc.join()
    if result["rc"] != 0:
        raise RuntimeError(f"{command[:4]} failed: {result['err'][-500:]}")
    return result


def plans(folder: Path, demo_folder: Path, n: int = PLANS) -> Path:
    """``n`` campaigns on the demo's data (read from its folder), each with its own targets."""
    import yaml

    raw = yaml.safe_load((demo_folder / "plan.yaml").read_text())
    raw["data"] = {k: str(demo_folder / v) for k, v in raw["data"].items()}
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        targets = {**raw["targets"], "conversion_rate": round(0.16 + 0.01 * i, 2)}
        plan = {**raw, "campaign": f"campaign-{i:02d}", "targets": targets}
        (folder / f"campaign-{i:02d}.yaml").write_text(yaml.safe_dump(plan))
    return folder


def best(commands: dict[str, list[str]], repeat: int, clean) -> dict[str, dict]:
    """Each command ``repeat`` times, the commands alternating; the fastest run of each."""
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(measure_command(command))
            clean()
    return {name: min(found, key=lambda r: r["seconds"]) for name, found in runs.items()}


def run(quick: bool = False, sizes: list[int] | None = None, repeat: int = REPEAT) -> list[dict]:
    sizes = sizes or ([5_000] if quick else [20_000, 200_000])
    repeat = 1 if quick else repeat
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reports"
        floor = [sys.executable, "-c", FLOOR, tmp]
        common = ["--out", str(out), "--asof", "2026-03-31", "--run-id", "bench"]
        cli = [sys.executable, "-m", "closedloop.cli"]
        for n in sizes:
            commands = {
                "floor": floor,
                "report": [*cli, "run", str(demo(n) / "plan.yaml"), *common],
            }
            if n == sizes[0]:
                folder = plans(Path(tmp) / "plans", demo(n))
                commands["run-all"] = [*cli, "run-all", str(folder), *common, "--jobs", "2"]
                commands["run-all"] += ["--data-root", str(demo(n))]
            found = best(commands, repeat, lambda: shutil.rmtree(out, ignore_errors=True))
            size = f"{n:,} customers"
            peer = "papermill+nbconvert, empty notebook"
            rows.append(
                row("PDCA report (closedloop run)", size, found["report"], peer, found["floor"])
            )
            if "run-all" in found:
                rows.append(
                    row(
                        f"closedloop run-all, {PLANS} plans, 2 workers",
                        size,
                        found["run-all"],
                        "one PDCA report (closedloop run)",
                        found["report"],
                    )
                )
    return rows


if __name__ == "__main__":
    import pandas as pd

    # --size N (repeatable): only these demo sizes; --repeat N: runs of each command
    args = sys.argv[1:]
    sizes = [int(args[i + 1]) for i, a in enumerate(args) if a == "--size"]
    repeat = next((int(args[i + 1]) for i, a in enumerate(args) if a == "--repeat"), REPEAT)
    table = pd.DataFrame(run(quick="--quick" in args, sizes=sizes or None, repeat=repeat))
    print(table.to_markdown(index=False))
