"""Running the PDCA check report: papermill executes the notebook, nbconvert writes the HTML.

The ledger of finished runs is :mod:`closedloop.ledger`; how the report shows tables and figures
is :mod:`closedloop.page`.

A run writes into a temporary folder beside its destination and is renamed into place only when
everything is written, so ``reports/<campaign>/<run-id>/`` is either complete or absent. A failed
run keeps its partial executed notebook in ``reports/<campaign>/failed/<run-id>/``. Every finished
run appends one row to ``reports/ledger.csv``, the campaign's PDCA history.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from closedloop import ledger
from closedloop.plan import Plan

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "pdca_check.ipynb"
LEDGER = ledger.FILENAME
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_EXTERNAL = re.compile(
    r"<script[^>]+src=[\"']https?://[^>]*>\s*</script>|<link[^>]+href=[\"']https?://[^>]*>", re.I
)


class RunExists(FileExistsError):
    """A report with this run id already exists; run ids are never overwritten."""


@dataclass(frozen=True)
class RunResult:
    campaign: str
    run_id: str
    ok: bool
    folder: Path
    seconds: float
    error: str = ""

    @property
    def html(self) -> Path:
        return self.folder / "report.html"


def run(
    plan_path: str | Path,
    out: str | Path = "reports",
    run_id: str = "",
    asof: str | None = None,
    language: str = "en",
    notebook: Path | None = None,
    progress: bool = False,
) -> RunResult:
    """Execute the report notebook for one plan; see the module docstring for the folders.
    ``progress`` shows papermill's bar over the notebook's cells."""
    started = time.perf_counter()
    plan_path = Path(plan_path).resolve()
    plan = Plan.from_yaml(plan_path)
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r}: use letters, digits, '.', '-' and '_' only")
    out = Path(out).resolve()
    final = out / plan.campaign / run_id
    if final.exists():
        raise RunExists(f"{final} already exists: a run id is used once; pass another --run-id")
    partial = out / plan.campaign / f".partial-{run_id}-{os.getpid()}"
    partial.mkdir(parents=True)
    parameters = {
        "plan_path": str(plan_path),
        "asof": asof or "",
        "run_id": run_id,
        "language": language,
        "out_dir": str(partial),
        "ledger_path": str(out / LEDGER),
    }
    import papermill
    from traitlets.config import Config

    # encrypt the kernel's channels where the kernel supports it (other processes on a shared
    # machine cannot read the data passing through), which also silences ipykernel's warning
    encrypted = Config({"AsyncKernelManager": {"transport_encryption": "auto"}})
    try:
        papermill.execute_notebook(
            str(notebook or NOTEBOOK),
            str(partial / "report.ipynb"),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=progress,
            cwd=str(partial),
            config=encrypted,
        )
    except papermill.PapermillExecutionError as exc:
        failed = out / plan.campaign / "failed" / run_id
        failed.parent.mkdir(parents=True, exist_ok=True)
        if failed.exists():
            shutil.rmtree(failed)
        partial.rename(failed)
        reason = f"cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}".splitlines()[0]
        return RunResult(
            plan.campaign, run_id, False, failed, time.perf_counter() - started, reason
        )
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / "report.html").write_text(to_html(partial / "report.ipynb", plan))
    partial.rename(final)
    summary = json.loads((final / "summary.json").read_text())
    ledger.append_ledger(out / LEDGER, summary)
    return RunResult(plan.campaign, run_id, True, final, time.perf_counter() - started)


def to_html(executed: Path, plan: Plan) -> str:
    """A self-contained HTML of the executed notebook: no code, images inline, no external files."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True)
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    body = _EXTERNAL.sub("", body)
    title = html.escape(f"{plan.campaign} — PDCA check report")
    return re.sub(r"<title>.*?</title>", f"<title>{title}</title>", body, count=1, flags=re.S)
