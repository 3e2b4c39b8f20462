"""Running the PDCA check report: papermill executes the notebook, nbconvert writes the HTML.

A run writes into a temporary folder beside its destination and is renamed into place only when
everything is written, so ``reports/<campaign>/<run-id>/`` is either complete or absent. A failed
run keeps its partial executed notebook in ``reports/<campaign>/failed/<run-id>/``. Every finished
run appends one row to ``reports/ledger.csv``, the campaign's PDCA history.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from closedloop.glossary import translate
from closedloop.plan import Plan

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "pdca_check.ipynb"
LEDGER = "ledger.csv"
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
    append_ledger(out / LEDGER, summary)
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


def append_ledger(path: Path, summary: dict) -> None:
    """Add one run to the ledger (one row per run; a lock keeps parallel runs apart)."""
    row = _ledger_row(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ledger = pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame()
        ledger = pd.concat([ledger, pd.DataFrame([row]).astype(str)], ignore_index=True)
        tmp = path.with_suffix(".tmp")
        ledger.to_csv(tmp, index=False)
        tmp.replace(path)


def _ledger_row(summary: dict) -> dict:
    row = {
        "campaign": summary["campaign"],
        "cycle": summary["cycle"],
        "run_id": summary["run_id"],
        "asof": summary["asof"],
        "period_start": summary["period"]["start"],
        "period_end": summary["period"]["end"],
    }
    for target in summary["scorecard"]:
        row[f"{target['target']}_actual"] = target["actual"]
        row[f"{target['target']}_target"] = target["target_value"]
        row[f"{target['target']}_status"] = target["status"]
    return row


def read_ledger(path: str | Path, campaign: str) -> pd.DataFrame:
    """The earlier runs of one campaign, oldest first (empty when there are none)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame()
    ledger = pd.read_csv(path)
    return (
        ledger[ledger["campaign"] == campaign]
        .sort_values(["cycle", "run_id"])
        .reset_index(drop=True)
    )


def history(path: str | Path, summary: dict) -> pd.DataFrame:
    """The campaign's PDCA history, long: one row per run and target, earlier runs from the
    ledger and this run last (``run``: "cycle N · asof"; ``current`` marks this run)."""
    earlier = read_ledger(path, summary["campaign"])
    if not earlier.empty:
        earlier = earlier[earlier["run_id"].astype(str) != str(summary["run_id"])]
    wide = pd.concat([earlier, pd.DataFrame([_ledger_row(summary)])], ignore_index=True)
    wide["current"] = [False] * (len(wide) - 1) + [True]
    names = [f"cycle {c} · {a}" for c, a in zip(wide["cycle"], wide["asof"], strict=True)]
    wide["run"] = [
        f"{n} ({r})" if names.count(n) > 1 else n
        for n, r in zip(names, wide["run_id"], strict=True)
    ]
    rows = []
    for _, r in wide.iterrows():
        for column in wide.columns:
            if column.endswith("_status") and pd.notna(r[column]):
                target = column.removesuffix("_status")
                rows.append(
                    {
                        "run": r["run"],
                        "run_id": str(r["run_id"]),
                        "current": r["current"],
                        "target": target,
                        "actual": float(r[f"{target}_actual"]),
                        "target_value": float(r[f"{target}_target"]),
                        "status": r[column],
                    }
                )
    return pd.DataFrame(
        rows, columns=["run", "run_id", "current", "target", "actual", "target_value", "status"]
    )


# --- what the report notebook uses to show things --------------------------------------------

REPORT_CSS = """
<style>
.cl-table { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 0.92em; }
.cl-table th, .cl-table td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
.cl-table th { background: #f3f5f8; }
.cl-table td:first-child, .cl-table th:first-child { text-align: left; }
.cl-met { color: #1a7f37; font-weight: 600; }
.cl-missed { color: #c62828; font-weight: 600; }
.cl-caption { color: #555; font-size: 0.9em; margin: 0.2em 0 0.8em; }
figure.cl-figure { margin: 0.6em 0 1.4em; }
figure.cl-figure img { max-width: 100%; height: auto; }
.cl-note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 12px; margin: 0.6em 0; }
</style>
"""


def css():
    """The report's own style (inline, so the HTML stays self-contained)."""
    from IPython.display import HTML

    return HTML(REPORT_CSS)


def text(template: str, **values):
    """Markdown with every value HTML-escaped: campaign names and data cannot inject markup."""
    from IPython.display import Markdown

    return Markdown(template.format(**{k: html.escape(str(v)) for k, v in values.items()}))


def note(message: str):
    """A highlighted one-line note (warnings a reader must not miss)."""
    from IPython.display import HTML

    return HTML(f'<div class="cl-note">{html.escape(message)}</div>')


#: columns whose values are the report's own words (translated with the headers)
WORDED_COLUMNS = ("status", "basis", "to", "reason")


def table(
    frame: pd.DataFrame,
    table_id: str,
    caption: str = "",
    formats: dict | None = None,
    language: str = "en",
):
    """A table with an id (so tests and readers can find it), values escaped, numbers formatted
    (``formats``: column -> format string or ``"number"``); headers, statuses and caption in
    ``language``."""
    from IPython.display import HTML

    shown = frame.copy()
    for column, fmt in (formats or {}).items():
        if column in shown.columns:
            shown[column] = shown[column].map(lambda v, f=fmt: _fmt(f, v))
    shown = shown.astype(object).where(shown.notna(), "–")
    for column in WORDED_COLUMNS:
        if column in shown.columns:
            shown[column] = shown[column].map(lambda v: translate(str(v), language))
    shown.columns = [translate(str(c), language) for c in shown.columns]
    body = shown.to_html(
        index=False, table_id=table_id, classes="cl-table", escape=True, na_rep="–"
    )
    for status in ("met", "missed"):
        word = html.escape(translate(status, language))
        body = body.replace(f"<td>{word}</td>", f'<td class="cl-{status}">{word}</td>')
    caption = translate(caption, language)
    caption_html = f'<div class="cl-caption">{html.escape(caption)}</div>' if caption else ""
    return HTML(body + caption_html)


def figure(fig, name: str, out_dir: str | Path, caption: str = "", language: str = "en"):
    """Save a figure as ``figures/<name>.png`` and show it inline with an id, alt text and caption;
    its wording in ``language``."""
    import base64
    import io as _io

    import matplotlib.pyplot as plt
    from IPython.display import HTML

    from closedloop.figures import localize

    localize(fig, language)
    caption = translate(caption, language)
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=130, bbox_inches="tight")
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    alt = html.escape(caption or name)
    return HTML(
        f'<figure class="cl-figure" id="fig-{html.escape(name)}">'
        f'<img src="data:image/png;base64,{data}" alt="{alt}"/>'
        f"<figcaption class='cl-caption'>{alt}</figcaption></figure>"
    )


def number(value: float) -> str:
    """A number as a report shows it: 4 significant digits, or thousands separators from 1,000."""
    return _fmt("number", value)


def _fmt(fmt: str, value) -> str:
    """``fmt`` applied to a number; ``"number"`` gives 4 significant digits below 1,000 and
    thousands separators from there on (no 2.5e+04 in a report)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if pd.isna(value):
        return "–"
    if fmt == "number":
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return fmt.format(value)
