"""The main job end to end: ``closedloop run`` on the demo at 20k and 200k customers, against
papermill + nbconvert executing and converting an empty notebook in the same run (the floor every
papermill report pays: starting a kernel, executing, writing HTML).

Run: ``python -m benchmarks.bench_report`` (20k and 200k customers) or ``--quick`` (5k). Each run
is a fresh process, as a scheduler would start it. Peak memory is the largest resident set of any
process of the run (the command or its kernel), read from ``RUSAGE_CHILDREN`` in a forked child.
The demo data are built once into ``benchmarks/data/`` and reused.
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


def run(quick: bool = False) -> list[dict]:
    sizes = [5_000] if quick else [20_000, 200_000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        floor = measure_command([sys.executable, "-c", FLOOR, tmp])
        for n in sizes:
            plan = demo(n) / "plan.yaml"
            out = Path(tmp) / f"reports-{n}"
            command = [sys.executable, "-m", "closedloop.cli", "run", str(plan)]
            command += ["--out", str(out), "--asof", "2026-03-31", "--run-id", "bench"]
            ours = measure_command(command)
            rows.append(
                row(
                    "PDCA report (closedloop run)",
                    f"{n:,} customers",
                    ours,
                    "papermill+nbconvert, empty notebook",
                    floor,
                )
            )
            shutil.rmtree(out, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import pandas as pd

    table = pd.DataFrame(run(quick="--quick" in sys.argv))
    print(table.to_markdown(index=False))
