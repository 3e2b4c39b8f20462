"""Running the reports: the PDCA check report of a campaign (:func:`run`, every plan of a folder
with :func:`run_all`) and the monthly member-health report (:func:`health_report`). The numbers
in this process, papermill shows them, nbconvert writes the HTML; all go through one runner
(:func:`execute`).

A run reads the plan, then starts the report's kernel, which imports the report's modules while
this process imports its own, loads the data and checks them, computes the Check and the next plan
and writes ``summary.json`` and ``next_plan.yaml`` (on two cores the two run side by side; this
module imports pandas and the Check's modules only once the kernel is starting, and scipy.stats,
half a second of imports, is imported by the Check where it is first used). Bad data fail as
:class:`~closedloop.errors.DataError` or :class:`~closedloop.plan.PlanError` before any folder, the
kernel shut down again. The report notebook then only shows that Check: it
gets it as a pickle (``check_path``), deleted again before the folder is renamed into place. The
kernel is this interpreter, so it unpickles what this process pickled.

A run writes into a temporary folder beside its destination and is renamed into place only when
everything is written, so ``reports/<campaign>/<run-id>/`` is either complete or absent. A failed
run keeps its partial executed notebook in ``reports/<campaign>/failed/<run-id>/``. Every finished
run appends one row to ``reports/ledger.csv``, the campaign's PDCA history.
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib.resources
import os
import pickle
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from closedloop import stopping
from closedloop.plan import Plan, PlanError

NOTEBOOK_NAME = "pdca_check.ipynb"
#: what a report's kernel imports as it starts, beside the Check being computed
CAMPAIGN_MODULES = ("closedloop.report", "closedloop.sections", "closedloop.figures")
HEALTH_MODULES = ("closedloop.report", "closedloop.health_sections", "closedloop.figures")
HEALTH_NOTEBOOK_NAME = "member_health.ipynb"
#: the Check handed to the notebook's kernel, in the partial folder while the notebook runs
CHECK_FILE = "check.pkl"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
#: what a report may load: its own inline style, images and fonts as data: URIs, nothing else
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"
#: nbconvert's script tags (require.js, MathJax and their config) and any linked resource: the
#: report has no code to run, and it must open offline without asking any server for anything
_SCRIPTS = re.compile(r"<script\b[^>]*>.*?</script\s*>|<link\b[^>]*>", re.I | re.S)


def notebook_path(name: str = NOTEBOOK_NAME) -> Path:
    """A report notebook: package data in an installed wheel (``closedloop/notebooks/``), else
    ``notebooks/`` beside the package (a source checkout or an editable install)."""
    shipped = importlib.resources.files("closedloop") / "notebooks" / name
    if shipped.is_file():
        return Path(str(shipped))
    return Path(__file__).resolve().parents[1] / "notebooks" / name


NOTEBOOK = notebook_path()
HEALTH_NOTEBOOK = notebook_path(HEALTH_NOTEBOOK_NAME)


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


#: the Act step's verdict on a plan whose arms were none worth carrying
REDESIGN = (
    "this plan was marked redesign by the Act step (no arm was worth carrying): edit its arms"
    " and targets, then set status: ready"
)
#: why a plan an interim Check wrote does not run
PROVISIONAL = (
    "this plan was written by an interim Check (what the Act step would decide if the period"
    " ended on its as-of day): take the plan the Check on the period's last day writes, or set"
    " status: ready to run this one"
)
#: the plans ``closedloop run`` refuses, by status, and why
REFUSED = {"redesign": REDESIGN, "provisional": PROVISIONAL}


def runnable_plan(path: Path, data_root=None) -> Plan:
    """The plan at ``path`` for a run: a status :data:`REFUSED` names why first, before its data
    paths are judged (a plan written beside a report points at data outside that folder)."""
    if (status := Plan.from_yaml(path, check_paths=False).status) in REFUSED:
        raise PlanError(f"{path}: {REFUSED[status]}")
    return Plan.from_yaml(path, data_root=data_root)


def run(
    plan_path: str | Path,
    out: str | Path = "reports",
    run_id: str = "",
    asof: str | None = None,
    language: str = "en",
    notebook: Path | None = None,
    progress: bool = False,
    data_root=None,
    suffix: bool | None = None,
) -> RunResult:
    """Check one plan and execute the report notebook on it; see the module docstring. Raises
    :class:`PlanError` / :class:`DataError` before any folder when the plan or its data are bad
    (the kernel started beside the data's checks shut down again). ``progress`` shows
    papermill's bar over the notebook's cells. ``data_root``: the folder(s) data may be read
    from besides the plan's (see :meth:`Plan.from_yaml`).

    ``run_id`` "" is the current time. A taken run id raises :class:`RunExists`, unless
    ``suffix`` (the default for a time-based id): then the run takes the first free of
    ``id-2``, ``id-3``, ... (two runs of a campaign started in the same second both land)."""
    started = time.perf_counter()
    plan_path = Path(plan_path).resolve()
    plan = runnable_plan(plan_path, data_root)
    destination = Destination.of(out, plan.campaign, run_id, suffix)
    kernel = Kernel(CAMPAIGN_MODULES)  # its start-up beside this process's imports and load
    try:
        from closedloop import objectives, pdca
        from closedloop.glossary import label

        data = pdca.load(plan, asof=asof or None)
        objectives.resolve_targets(plan, data)  # targets the data cannot measure fail here too
    except BaseException:
        kernel.stop()
        raise

    def compute() -> tuple:
        return campaign_check(plan, data, asof, language)

    parameters = {"plan_path": str(plan_path), "asof": asof or "", "language": language}
    return execute(
        destination,
        notebook or NOTEBOOK,
        compute,
        functools.partial(_record_campaign, plan_path=plan_path),
        parameters,
        f"{plan.campaign} — {label('check_report', language)}",
        progress=progress,
        started=started,
        kernel=kernel,
    )


def campaign_check(
    plan: Plan, data, asof=None, language: str = "en", shared: dict | None = None
) -> tuple:
    """The Check of a loaded plan (its :class:`~closedloop.pdca.CampaignData`) and the next plan,
    the Check with the next cycle's contacts (their reasons in ``language``): what a report's
    kernel shows. ``shared``: see :func:`closedloop.pdca.check`."""
    from closedloop import pdca

    check = pdca.check(plan, data, asof=asof or None, shared=shared)
    next_plan = pdca.act(check)
    return pdca.next_contacts(check, next_plan, data, language), next_plan


def _record_campaign(partial: Path, run_id: str, check, next_plan, *, plan_path) -> dict:
    from closedloop import pdca

    pdca.write(check, next_plan, partial, run_id, plan_path=plan_path)
    return pdca.summary(check, next_plan, run_id)


def _record_health(partial: Path, run_id: str, checked, *, plan_path) -> dict:
    from closedloop import health

    health.write(checked, partial, run_id, plan_path=plan_path)
    return health.summary(checked, run_id)


#: what a plan says about its campaign rather than about its data: plans that differ only in
#: these read the same tables the same way (:func:`run_all` reads them once)
NOT_DATA = frozenset(
    {
        "campaign",
        "name",
        "cycle",
        "status",
        "cost",
        "margin",
        "currency",
        "targets",
        "report",
        "changes",
        "stopping",
        "follow_up_days",
    }
)


def run_all(
    plan_paths,
    out: str | Path = "reports",
    run_id: str = "",
    asof: str | None = None,
    language: str = "en",
    data_root=None,
    jobs: int = 0,
    done=None,
) -> list[tuple]:
    """The report of every plan in ``plan_paths``, as :func:`run` makes each one.

    The Checks are computed here, one plan after another, and the plans that read the same
    tables the same way (equal but for :data:`NOT_DATA`) share one :func:`pdca.load`; each
    Check goes, as soon as it is made, to a pool of ``jobs`` processes (default: the cores)
    that start the report kernels (forked from one template per worker that imported the
    report's modules, :mod:`closedloop.kernel_template`) and write the pages, so this process
    computes the next Check while they run. A broken plan fails alone. Returns one row per plan, in the order
    given: ``(file name, campaign, ok, report path or error, seconds)``; ``done(row)`` is
    called as each report finishes. ``run_id`` "" is the current time, shared by every plan
    (with ``-2``, ``-3``, ... where taken)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from closedloop import objectives, pdca
    from closedloop.glossary import label

    paths = [Path(p).resolve() for p in plan_paths]
    suffix = not run_id
    run_id = run_id or time.strftime("%Y%m%dT%H%M%S")
    rows: dict[Path, tuple] = {}

    def finish(path: Path, row: tuple) -> None:
        rows[path] = row
        if done is not None:
            done(row)

    workers = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
    )
    left = len(paths)  # plans whose Check is still to be computed
    with pool:
        # fork every worker now, from a process that has not yet run an engine's threads
        pool.submit(int).result()
        groups: dict[str, list] = {}
        for path in paths:
            try:
                plan = runnable_plan(path, data_root)
                destination = Destination.of(out, plan.campaign, run_id, suffix)
            except Exception as exc:  # one broken plan must not stop the others
                finish(path, (path.name, "", False, _first_line(exc), 0.0))
                continue
            groups.setdefault(_data_key(plan), []).append((path, plan, destination))
        for group in groups.values():
            data = None  # the group's tables, read by its first plan
            shared: dict = {}  # what depends on those tables alone, computed once
            for path, plan, destination in group:
                left -= 1
                started = time.perf_counter()
                try:
                    data = data or pdca.load(plan, asof=asof or None)
                    objectives.resolve_targets(plan, data)
                    payload = campaign_check(plan, data, asof, language, shared)
                except Exception as exc:
                    finish(path, (path.name, plan.campaign, False, _first_line(exc), 0.0))
                    continue
                parameters = {"plan_path": str(path), "asof": asof or "", "language": language}
                future = pool.submit(
                    _report_check,
                    destination,
                    NOTEBOOK,
                    payload,
                    path,
                    parameters,
                    f"{plan.campaign} — {label('check_report', language)}",
                    time.perf_counter() - started,
                    left >= workers,  # plans left for this worker too: its next kernel starts
                )
                future.add_done_callback(lambda f, p=path: finish(p, _row(p, f)))
    return [rows[p] for p in paths]


def _first_line(exc: BaseException) -> str:
    """An error's first line for a run-all row; its type where it has no message."""
    return next(iter(str(exc).splitlines()), "") or type(exc).__name__


def _data_key(plan: Plan) -> str:
    """What :func:`pdca.load` reads of a plan: all of it but :data:`NOT_DATA`."""
    import json

    return json.dumps(plan.model_dump(mode="json", exclude=set(NOT_DATA)), sort_keys=True)


#: a run-all pool worker's kernel for its next report, started before that report's Check
#: arrives (a fresh kernel for every report all the same: none sees another's state)
_READY: list[Kernel] = []
#: a run-all pool worker's kernel template (closedloop.kernel_template), which its kernels are
#: forked from: the imports are paid once per worker, not once per report
_TEMPLATE: list = []


def _start_worker() -> None:
    """A run-all pool worker: its signals, and the kernel of its first report started at once,
    beside the parent's first Check; a kernel left unused is shut down as the worker exits."""
    import multiprocessing.util

    stopping.worker_signals()
    multiprocessing.util.Finalize(None, _stop_ready, exitpriority=10)
    _start_ready()


def _start_ready() -> None:
    from closedloop import kernel_template

    if not _TEMPLATE and kernel_template.available():
        environment = _kernel_environment(ahead=False)
        _TEMPLATE.append(kernel_template.Template(CAMPAIGN_MODULES, environment))
    try:
        kernel = Kernel(CAMPAIGN_MODULES, _TEMPLATE[0] if _TEMPLATE else None, ahead=False)
    except RuntimeError:
        if not _TEMPLATE:
            raise
        _TEMPLATE.pop().stop()  # it has ended: this kernel is started by Popen
        kernel = Kernel(CAMPAIGN_MODULES, ahead=False)
    _READY.append(kernel)


def _stop_ready() -> None:
    while _READY:
        _READY.pop().stop()
    while _TEMPLATE:
        _TEMPLATE.pop().stop()


def _report_check(
    destination, notebook, payload, plan_path, parameters, title, seconds, more
) -> RunResult:
    """A pool worker's part of :func:`run_all`: the report of a Check computed in the parent
    (``seconds`` ago), in the kernel started for it; with ``more`` reports to come, the kernel
    of this worker's next report starts beside this report's cells."""
    return execute(
        destination,
        notebook,
        lambda: payload,
        functools.partial(_record_campaign, plan_path=plan_path),
        parameters,
        title,
        started=time.perf_counter() - seconds,
        warm=CAMPAIGN_MODULES,
        kernel=_READY.pop() if _READY else None,
        beside_cells=_start_ready if more else None,
    )


def _row(path: Path, future) -> tuple:
    try:
        result = future.result()
    except Exception as exc:
        return path.name, "", False, _first_line(exc), 0.0
    detail = result.error or str(result.html)
    return path.name, result.campaign, result.ok, detail, result.seconds


def health_report(
    targets_path: str | Path,
    asof,
    out: str | Path = "reports",
    run_id: str = "",
    by: str | None = None,
    language: str = "en",
    notebook: Path | None = None,
    progress: bool = False,
    data_root=None,
    suffix: bool | None = None,
) -> RunResult:
    """The member-health report for the month to ``asof``: the targets file and its data are
    loaded and checked here (:func:`closedloop.health.run_health`; bad input raises
    :class:`PlanError` / :class:`DataError` before any folder or kernel), then the report
    notebook shows the check, in ``out/<campaign>/<run-id>/`` with ``summary.json`` and a ledger
    row, as :func:`run` does. ``by`` overrides the file's split (store, channel, city, guide,
    tier)."""
    from closedloop import health
    from closedloop.glossary import label

    started = time.perf_counter()
    targets_path = Path(targets_path).resolve()
    plan = health.HealthPlan.from_yaml(targets_path, data_root=data_root)
    destination = Destination.of(out, plan.campaign, run_id, suffix)
    transactions, customers, quality = health.load(plan, asof)

    def compute() -> tuple:
        return (health.check(plan, transactions, customers, asof, by=by, quality=quality),)

    parameters = {"targets_path": str(targets_path), "asof": str(asof), "language": language}
    return execute(
        destination,
        notebook or HEALTH_NOTEBOOK,
        compute,
        functools.partial(_record_health, plan_path=targets_path),
        parameters,
        lambda checked: (
            f"{plan.name or plan.campaign} — {label('member_health', language)}"
            f" {checked.asof:%Y-%m-%d}"
        ),
        progress=progress,
        started=started,
        warm=HEALTH_MODULES,
    )


@dataclass(frozen=True)
class Destination:
    """Where a report goes: ``out/<campaign>/<run id>``, the ledger in ``out``."""

    out: Path
    campaign: Path
    run_id: str
    suffix: bool

    @classmethod
    def of(cls, out, campaign: str, run_id: str = "", suffix: bool | None = None) -> Destination:
        """Check the run id (refused before anything is computed when it is malformed, or taken
        and not ``suffix``); "" is the current time, and then ``suffix`` by default."""
        if suffix is None:
            suffix = not run_id
        run_id = run_id or time.strftime("%Y%m%dT%H%M%S")
        if not RUN_ID.fullmatch(run_id):
            raise ValueError(f"run id {run_id!r}: use letters, digits, '.', '-' and '_' only")
        out = Path(out).resolve()
        folder = out / campaign
        if not suffix and _taken(folder, run_id):
            raise RunExists(_exists(folder / run_id))
        return cls(out, folder, run_id, suffix)


def execute(
    destination: Destination,
    notebook: Path,
    compute,
    record,
    parameters: dict,
    title,
    *,
    progress: bool = False,
    started: float | None = None,
    warm: tuple[str, ...] = (),
    kernel: Kernel | None = None,
    beside_cells=None,
) -> RunResult:
    """Run a report notebook on what this process computes into an atomic folder.

    The ``kernel`` (one started for this report, which this call shuts down; else one started
    here, importing the ``warm`` modules) starts up beside ``compute()``, which returns the
    payload the kernel gets (pickled, as ``check_path``); ``beside_cells()`` is called as the
    cells start.
    ``record(partial, run_id, *payload)`` writes the run's files and returns its summary; the
    notebook gets ``parameters`` plus ``run_id``, ``out_dir``, ``ledger_path`` and
    ``check_path``; the HTML is written with ``title`` (a string, or made from the payload);
    the folder is renamed into place and the summary appended to the ledger. A failing cell
    keeps the partial notebook in ``failed/<run-id>/``."""
    from closedloop import ledger, page

    started = time.perf_counter() if started is None else started
    campaign, out = destination.campaign, destination.out
    partial = None
    try:
        run_id, partial = _reserve(campaign, destination.run_id, destination.suffix)
        final = campaign / run_id
        kernel = kernel or Kernel(warm)
        payload = compute()
        summary = record(partial, run_id, *payload)
        parameters = {
            **parameters,
            "run_id": run_id,
            "out_dir": str(partial),
            "ledger_path": str(out / ledger.FILENAME),
            "check_path": str(save_check(partial / CHECK_FILE, *payload)),
        }
        converter = threading.Thread(target=prepare_html, name="closedloop-html", daemon=True)

        def cells_start(**_) -> None:
            """The page's font read and nbconvert made ready while the kernel runs the cells;
            not sooner, where they would take turns with papermill's own start."""
            page.prepare_cjk_font()
            converter.start()
            if beside_cells is not None:
                beside_cells()

        executed, error = _execute(notebook, partial, parameters, progress, kernel, cells_start)
        if converter.ident is not None:
            converter.join()
        if not error:
            shown = title(*payload) if callable(title) else title
            (partial / "report.html").write_text(to_html(executed, shown))
    except BaseException:
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if kernel is not None:
            kernel.stop()
    if error:
        failed = campaign / "failed" / run_id
        failed.parent.mkdir(parents=True, exist_ok=True)
        if failed.exists():
            shutil.rmtree(failed)
        partial.rename(failed)
        return RunResult(campaign.name, run_id, False, failed, time.perf_counter() - started, error)
    with _campaign_lock(campaign):
        if final.exists():  # not a closedloop run's (those see this run's partial folder)
            shutil.rmtree(partial, ignore_errors=True)
            raise RunExists(_exists(final))
        partial.rename(final)
    ledger.append_ledger(out / ledger.FILENAME, summary)
    return RunResult(campaign.name, run_id, True, final, time.perf_counter() - started)


def _exists(final: Path) -> str:
    return f"{final} already exists: a run id is used once; pass another --run-id"


def _partials(campaign: Path, run_id: str | None = None) -> list[Path]:
    pattern = f".partial-{run_id}-*" if run_id else ".partial-*"
    return [p for p in campaign.glob(pattern) if stopping.partial_pid(p) is not None]


def _taken(campaign: Path, run_id: str) -> bool:
    """A run id is taken by a finished run or by a running one (a live partial folder)."""
    if (campaign / run_id).exists():
        return True
    return any(
        p.name.rsplit("-", 1)[0] == f".partial-{run_id}" and stopping.alive(stopping.partial_pid(p))
        for p in _partials(campaign, run_id)
    )


@contextlib.contextmanager
def _campaign_lock(campaign: Path):
    """Runs of one campaign choose their run ids one at a time (a lock the OS drops with its
    holder, so a killed run leaves none behind)."""
    import fcntl

    campaign.mkdir(parents=True, exist_ok=True)
    with open(campaign / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reserve(campaign: Path, run_id: str, suffix: bool) -> tuple[str, Path]:
    """Choose the run id (``run_id``, else with ``suffix`` the first free ``run_id-N``) and create
    the run's partial folder, which holds the id for it; stale partial folders of killed runs are
    removed on the way, in one line on stderr."""
    with _campaign_lock(campaign):
        stale = [p for p in _partials(campaign) if not stopping.alive(stopping.partial_pid(p))]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        if stale:
            print(
                f"closedloop: removed {len(stale)} partial folder(s) of {campaign.name} left by"
                f" runs that were killed: {', '.join(sorted(p.name for p in stale))}",
                file=sys.stderr,
            )
        chosen, n = run_id, 1
        while _taken(campaign, chosen):
            if not suffix:
                raise RunExists(_exists(campaign / chosen))
            n += 1
            chosen = f"{run_id}-{n}"
        partial = campaign / f".partial-{chosen}-{os.getpid()}"
        partial.mkdir()
    return chosen, partial


def _execute(
    notebook: Path, partial: Path, parameters: dict, progress: bool, kernel, cells_start
) -> tuple:
    """Run the notebook in ``partial`` on the saved Check in the started ``kernel``, then delete
    the Check's pickle; ``cells_start()`` is called when the kernel is ready and the cells are
    about to run. Returns the executed notebook and the failing cell in one line, or "" when
    every cell ran. The notebook is written once, at the end (papermill would write the whole
    notebook, figures and all, before and after every cell)."""
    papermill = notebook_tools()
    try:
        executed = papermill.execute_notebook(
            str(notebook),
            str(partial / "report.ipynb"),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=progress,
            request_save_on_cell_execute=False,
            km=kernel.manager,
            on_notebook_start=cells_start,
        )
    except papermill.PapermillExecutionError as exc:
        return None, f"cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}".splitlines()[0]
    finally:
        (partial / CHECK_FILE).unlink(missing_ok=True)
    return executed, ""


_TOOLS_LOCK = threading.Lock()


def notebook_tools():
    """papermill (and nbformat, nbconvert's notebook reader), imported without the RFC 3987
    grammar: jsonschema builds an Earley parser of it for the ``iri`` format when
    ``rfc3987_syntax`` is installed (Jupyter's dependencies install it), which takes seconds and
    is never used, since notebook schemas have no ``iri`` field (jsonschema issue #1428). The
    format is left unchecked in this process; nothing else changes. One thread at a time (see
    :func:`prepare_html`)."""
    with _TOOLS_LOCK:
        if "jsonschema._format" not in sys.modules and "rfc3987_syntax" not in sys.modules:
            sys.modules["rfc3987_syntax"] = None  # import fails: jsonschema skips the format
            try:
                import jsonschema._format  # noqa: F401
            finally:
                del sys.modules["rfc3987_syntax"]
        import papermill

    return papermill


class Kernel:
    """The report's kernel (this interpreter, see :func:`_this_python`), started at once: it
    imports the ``warm`` modules as it starts, so that on two cores the kernel's start-up runs
    while this process loads the data and computes the Check; papermill then runs the notebook
    in it. It runs in an empty folder of its own, made before any report folder exists (IPython
    puts its working folder first on ``sys.path``: nothing there can stand in for the report's
    modules), removed when it stops. Its channels are encrypted where the kernel supports it
    (other processes on a shared machine cannot read the data passing through), which also
    silences ipykernel's warning."""

    def __init__(self, warm: tuple[str, ...] = (), template=None, ahead: bool = True):
        import uuid

        from jupyter_core.utils import run_sync
        from traitlets.config import Config

        encrypted = Config({"AsyncKernelManager": {"transport_encryption": "auto"}})
        self.manager = _this_python()(kernel_name="python3", config=encrypted)
        if template is not None:  # forked from a kernel_template.Template that imported warm
            from closedloop.kernel_template import Forked

            self.manager.kernel_id = str(uuid.uuid4())
            self.manager.provisioner = Forked(
                kernel_id=self.manager.kernel_id,
                kernel_spec=self.manager.kernel_spec,
                parent=self.manager,
            )
            self.manager.provisioner.template = template
        # no history database (as nbclient starts kernels); the imports as startup code, not
        # a cell, so the notebook's execution counts are unchanged
        arguments = ["--HistoryManager.hist_file=:memory:"]
        if warm:
            code = f"for _module in {tuple(warm)!r}:\n    __import__(_module)\ndel _module"
            arguments.append(f"--IPKernelApp.exec_lines={code}")
        self.folder = tempfile.mkdtemp(prefix=f"{stopping.KERNEL_FOLDER}{os.getpid()}-")
        try:
            run_sync(self.manager.start_kernel)(
                cwd=self.folder, extra_arguments=arguments, env=_kernel_environment(ahead)
            )
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def stop(self) -> None:
        """Close the clients papermill opened and shut the kernel down."""
        from jupyter_core.utils import run_sync

        try:
            for client in getattr(self.manager, "clients", []):
                client.stop_channels()
            if self.manager.has_kernel:
                run_sync(self.manager.shutdown_kernel)(now=True)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def save_check(path: str | Path, *payload) -> Path:
    """Pickle what a run computed (the Check and the next plan; a member-health check) for the
    report's kernel (the same interpreter)."""
    path = Path(path)
    with open(path, "wb") as handle:
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_check(path: str | Path, kinds: tuple[type, ...] | None = None) -> tuple:
    """What a run saved with :func:`save_check`, checked to be of ``kinds`` (by default the
    Check and the next plan); a file the run itself wrote into its own folder: never unpickle
    a file from anywhere else."""
    if kinds is None:
        from closedloop import pdca

        kinds = (pdca.Check, Plan)
    with open(path, "rb") as handle:
        payload = pickle.load(handle)  # written by this run, see the docstring
    if len(payload) != len(kinds) or not all(map(isinstance, payload, kinds)):
        names = ", ".join(k.__name__ for k in kinds)
        raise TypeError(f"{path}: not a {names} saved by closedloop.report.save_check")
    return payload


def _kernel_environment(ahead: bool = True) -> dict:
    """This process's environment for the kernel, with ``PYTHONPATH`` made absolute: the kernel
    starts in a folder of its own, where a relative entry (``PYTHONPATH=.``) would name another
    folder and the kernel would import another closedloop than the one that pickled the Check.
    Not ``ahead``: the kernel draws no section ahead (:mod:`closedloop.ahead`)."""
    from closedloop.ahead import SWITCH

    environment = dict(os.environ)
    if not ahead:
        environment[SWITCH] = "0"
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if entries:
        environment["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in entries)
    return environment


def _this_python():
    """A kernel manager that starts the kernel with this interpreter, whatever kernelspecs are
    installed (the kernel must import the same closedloop that pickled the Check), and keeps
    the clients made for it so that :meth:`Kernel.stop` can close them."""
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec

    class ThisPython(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())
            return self._kernel_spec

        def client(self, **kwargs):
            made = super().client(**kwargs)
            self.clients = [*getattr(self, "clients", []), made]
            return made

    return ThisPython


@functools.cache
def prepare_html() -> None:
    """Import papermill and nbconvert and convert an empty notebook, once per process: the
    first conversion imports nbconvert's filters and compiles its templates and their regular
    expressions (about half a second of CPU), work :func:`execute` does in a thread while the
    kernel runs the notebook rather than after it."""
    import nbformat

    notebook_tools()
    to_html(nbformat.v4.new_notebook(), "")


_EXPORTER_LOCK = threading.Lock()


@functools.cache
def _exporter():
    """The page's nbconvert exporter, one per process: each exporter compiles the template's
    files again on its first conversion (0.1 s of CPU), so the one :func:`prepare_html` used
    converts the report too."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True)
    exporter.exclude_output_prompt = True
    return exporter


def to_html(executed, title: str) -> str:
    """A self-contained HTML of the executed notebook (a path, or the notebook papermill
    returned): no code, no scripts, images inline, no external files, and a
    Content-Security-Policy that forbids loading anything else."""
    notebook_tools()
    import nbformat

    if not isinstance(executed, nbformat.NotebookNode):
        executed = nbformat.read(executed, as_version=4)
    with _EXPORTER_LOCK:  # one conversion at a time: an exporter keeps a notebook's filters
        body, _ = _exporter().from_notebook_node(executed)
    body = _SCRIPTS.sub("", body)
    title = html.escape(title)
    body = re.sub(r"<title>.*?</title>", f"<title>{title}</title>", body, count=1, flags=re.S)
    policy = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}"/>'
    body = re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + "\n" + policy, body, count=1)
    from closedloop import page

    return page.embed_cjk_font(body)
