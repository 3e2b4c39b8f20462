"""The ``closedloop`` command: the demo, the campaign runs, the lab."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

from closedloop import __version__
from closedloop.plan import Plan

DEMO_DIR = Path("data/demo")


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _note
    parser = _parser()
    # ``lab`` hands every option it does not know to jupyter lab, in the order given
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "command", None) == "lab":
        args.args = extra[1:] if extra[:1] == ["--"] else extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return args.func(args)


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    """A data warning as the command's one-line note (not a Python warning with its source
    line); other warnings as Python shows them."""
    from closedloop.io import DataWarning

    if issubclass(category, DataWarning):
        print(f"note: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="closedloop",
        description="Closed-loop marketing analytics: Plan, Do, Check, Act — one report per campaign.",
    )
    parser.add_argument("--version", action="version", version=f"closedloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="build the demo retailer (if needed) and report on its campaign"
    )
    demo.add_argument(
        "--data", type=Path, default=DEMO_DIR, help="demo folder (default: data/demo)"
    )
    demo.add_argument(
        "--rebuild", action="store_true", help="rebuild the demo data even if present"
    )
    demo.add_argument("--out", type=Path, default=Path("reports"), help="reports folder")
    demo.add_argument("--language", choices=["en", "zh"], default="en", help="report language")
    demo.add_argument(
        "--cycles",
        type=int,
        default=1,
        help="PDCA cycles to live through: each next cycle is simulated under the plan the"
        " last Act step wrote (default: 1; trainers: 3)",
    )
    demo.set_defaults(func=_demo)

    nxt = sub.add_parser(
        "next", help="show what the Act step changed for the next cycle, and set that cycle up"
    )
    nxt.add_argument("report", type=Path, help="a report folder (reports/<campaign>/<run-id>)")
    nxt.add_argument(
        "--to", type=Path, default=None, help="copy the next plan and its assignment list here"
    )
    nxt.add_argument(
        "--simulate",
        action="store_true",
        help="the demo retailer only: simulate the next period under the next plan into --to",
    )
    nxt.add_argument("--seed", type=int, default=0, help="the demo's seed (with --simulate)")
    nxt.set_defaults(func=_next)

    run = sub.add_parser("run", help="run the PDCA check report for one plan")
    run.add_argument("plan", type=Path, help="the plan file (YAML)")
    _run_options(run)
    run.set_defaults(func=_run)

    check = sub.add_parser(
        "check",
        help="validate a plan and read its data through the data contract (no report, no kernel)",
    )
    check.add_argument("plan", type=Path, help="the plan file (YAML)")
    check.add_argument(
        "--asof", default=None, help="the day the data is complete to (default: the period's end)"
    )
    _data_root_option(check)
    check.set_defaults(func=_check)

    run_all = sub.add_parser("run-all", help="run every plan (*.yaml) in a folder, in parallel")
    run_all.add_argument("folder", type=Path, help="folder of plan files")
    _run_options(run_all)
    run_all.add_argument("--jobs", type=int, default=0, help="parallel runs (default: all cores)")
    run_all.set_defaults(func=_run_all)

    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on notebooks/ with the project's kernel",
        description="Open JupyterLab on notebooks/. Any other option is passed on to jupyter lab,"
        " e.g.  closedloop lab --allow-root --no-browser --port 8889",
    )
    lab.set_defaults(func=_lab, args=[])

    data = sub.add_parser("make-demo", help="write the demo data set (CSV + plan.yaml) to a folder")
    data.add_argument("--out", type=Path, default=DEMO_DIR, help="folder (default: data/demo)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--customers", type=int, default=20_000, help="number of customers")
    data.set_defaults(func=_make_demo)

    hill = sub.add_parser(
        "make-hillstrom", help="write Hillstrom's e-mail test as a campaign folder with its plan"
    )
    hill.add_argument(
        "--out", type=Path, default=Path("data/hillstrom"), help="folder (default: data/hillstrom)"
    )
    hill.add_argument(
        "--source", type=Path, default=None, help="the Hillstrom CSV (default: download once)"
    )
    hill.set_defaults(func=_make_hillstrom)

    check_health = sub.add_parser(
        "health",
        help="the monthly member-health report: the KPI tree against targets, trends, the"
        " pyramid over time, the churn screen, why revenue moved, stores ranked by gap",
    )
    check_health.add_argument(
        "--asof", required=True, help="the last day of the month checked (YYYY-MM-DD)"
    )
    check_health.add_argument(
        "--targets",
        type=Path,
        default=DEMO_DIR / "health.yaml",
        help="the health targets file, which names its data (default: data/demo/health.yaml)",
    )
    check_health.add_argument(
        "--by",
        default=None,
        help="split the store table by store, channel, city, guide or tier (default: the"
        " file's, store)",
    )
    check_health.add_argument("--out", type=Path, default=Path("reports"), help="reports folder")
    check_health.add_argument("--run-id", default="", help="run id (default: the current time)")
    check_health.add_argument(
        "--language", choices=["en", "zh"], default="en", help="report language"
    )
    _data_root_option(check_health)
    check_health.set_defaults(func=_health)

    reach = sub.add_parser(
        "contacts", help="this week's contact lists: who, why, through which channel"
    )
    reach.add_argument(
        "--data",
        type=Path,
        default=DEMO_DIR,
        help="data folder (default: data/demo); no holdout is left out unless --exclude names"
        " it (use --plan for a campaign)",
    )
    reach.add_argument("--asof", required=True, help="the day the data is complete to (YYYY-MM-DD)")
    reach.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="a campaign plan: its data, and nobody in its holdout (this cycle's or the next"
        " one's, from the Act step's assignment list) is contacted",
    )
    reach.add_argument(
        "--out", type=Path, default=None, help="output folder (default: reports/contacts/ASOF)"
    )
    reach.add_argument("--cap", type=int, default=1, help="contacts per customer per week")
    reach.add_argument(
        "--exclude", type=Path, default=None, help="CSV of customer_id never contacted (a holdout)"
    )
    reach.add_argument(
        "--expiry", choices=["rolling", "calendar"], default="rolling", help="points expiry rule"
    )
    reach.add_argument(
        "--language",
        choices=["en", "zh"],
        default="en",
        help="language of the reasons, the offers and the summary printed",
    )
    reach.set_defaults(func=_contacts)
    return parser


def _run_options(parser) -> None:
    parser.add_argument("--out", type=Path, default=Path("reports"), help="reports folder")
    parser.add_argument(
        "--asof",
        default=None,
        help="the day the data is complete to, counted whole (default: the period's last day)",
    )
    parser.add_argument("--run-id", default="", help="run id (default: the current time)")
    parser.add_argument("--language", choices=["en", "zh"], default="en", help="report language")
    _data_root_option(parser)


DATA_ROOT_ENV = "CLOSEDLOOP_DATA_ROOT"


def _data_root_option(parser) -> None:
    parser.add_argument(
        "--data-root",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder data may be read from besides the plan's (repeatable; also"
        f" {DATA_ROOT_ENV}, {os.pathsep}-separated)",
    )


def _data_roots(args) -> list[Path]:
    """The folders data may be read from besides each plan's: --data-root, then the variable."""
    from_env = [Path(p) for p in os.environ.get(DATA_ROOT_ENV, "").split(os.pathsep) if p]
    return [*getattr(args, "data_root", []), *from_env]


def _check(args) -> int:
    """Validate the plan and read every table as a run would, in this process; no kernel."""
    import warnings

    import pandas as pd

    from closedloop import objectives, pdca
    from closedloop.errors import DataError
    from closedloop.plan import Plan, PlanError
    from closedloop.report import REFUSED

    started = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan = Plan.from_yaml(args.plan, data_root=_data_roots(args))
            data = pdca.load(plan, asof=args.asof or None)
            objectives.resolve_targets(plan, data)  # targets {vs_baseline: ...}, as run checks
    except (PlanError, DataError, ValueError) as exc:
        print(f"closedloop check: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(
        f"{plan.campaign}: plan {args.plan} is valid; data as of {pdca.as_of(plan, args.asof).date()}"
    )
    from closedloop.glossary import column
    from closedloop.sections import quality_formats

    shown = data.quality.astype(object).where(data.quality.notna(), "–")
    for name, show in quality_formats(shown.columns).items():
        values = pd.to_numeric(data.quality[name], errors="coerce")
        shown[name] = [show(v) if pd.notna(v) else "–" for v in values]
    shown.columns = [column(str(c)) for c in shown.columns]
    print(shown.to_string(index=False))
    for warning in caught:
        print(f"warning: {str(warning.message).splitlines()[0]}")
    if plan.status in REFUSED:
        print(f"closedloop check: {REFUSED[plan.status]}", file=sys.stderr)
        return 2
    print(f"ready to run ({time.perf_counter() - started:.1f} s)")
    return 0


def _run(args) -> int:
    from closedloop.report import run

    return _report(
        "run",
        args,
        lambda: run(
            args.plan,
            args.out,
            args.run_id,
            args.asof,
            args.language,
            progress=sys.stderr.isatty(),
            data_root=_data_roots(args),
        ),
    )


def _health(args) -> int:
    from closedloop.report import health_report

    return _report(
        "health",
        args,
        lambda: health_report(
            args.targets,
            args.asof,
            args.out,
            args.run_id,
            by=args.by,
            language=args.language,
            progress=sys.stderr.isatty(),
            data_root=_data_roots(args),
        ),
    )


def _report(command: str, args, produce) -> int:
    """One report command: refuse Chinese without a font, run ``produce()`` under the signal
    guard, and say in one line where the report is, what was wrong before any report folder
    was made (exit 2), or which cell failed (exit 1)."""
    from closedloop.errors import DataError
    from closedloop.plan import PlanError
    from closedloop.report import RunExists
    from closedloop.stopping import stop_on_signals

    if problem := _font_problem(args.language):
        print(f"closedloop {command}: {problem}", file=sys.stderr)
        return 2
    try:
        with stop_on_signals(f"closedloop {command}", Path(args.out).resolve()):
            result = produce()
    except (PlanError, DataError, RunExists, ValueError) as exc:  # before any report folder
        print(f"closedloop {command}: {exc}", file=sys.stderr)
        return 2
    if not result.ok:
        print(f"{result.campaign}: {result.error}", file=sys.stderr)
        print(f"  partial notebook kept in {result.folder}/report.ipynb", file=sys.stderr)
        return 1
    print(f"{result.campaign}: report in {result.html} ({result.seconds:.1f} s)")
    return 0


def _font_problem(language: str) -> str:
    """Why a report in ``language`` cannot be drawn ("" if it can): Chinese needs a font with
    Chinese glyphs, and saying so before the run beats a report of boxes."""
    if language != "zh":
        return ""
    from closedloop.figures import MissingCJKFont, require_cjk_font

    try:
        require_cjk_font()
    except MissingCJKFont as exc:
        return str(exc)
    return ""


def _health_targets(path: Path) -> bool:
    """Whether the YAML file is a member-health targets file (a broken file is left to the run,
    which names what is wrong with it)."""
    from closedloop.plan import PlanError, is_health_targets, read_yaml

    try:
        return is_health_targets(read_yaml(path, "plan", ""))
    except PlanError:
        return False


def _run_all(args) -> int:
    from tqdm import tqdm

    plans = sorted(p for p in args.folder.glob("*.y*ml") if p.suffix in {".yaml", ".yml"})
    for path in [p for p in plans if _health_targets(p)]:
        print(
            f"closedloop run-all: skipped {path.name}, a member-health targets file (closedloop"
            f" health --targets {path})",
            file=sys.stderr,
        )
        plans.remove(path)
    if not plans:
        print(f"closedloop run-all: no plan files (*.yaml) in {args.folder}", file=sys.stderr)
        return 2
    if problem := _font_problem(args.language):
        print(f"closedloop run-all: {problem}", file=sys.stderr)
        return 2
    from closedloop.report import run_all
    from closedloop.stopping import stop_on_signals

    # SIGINT / SIGTERM: every worker and kernel goes, queued runs never start, partial folders
    # are removed, and the exit status is 130 / 143
    with (
        stop_on_signals("closedloop run-all", Path(args.out).resolve()),
        tqdm(total=len(plans), desc="campaigns", unit="run") as bar,
    ):
        rows = run_all(
            plans,
            args.out,
            args.run_id,
            args.asof,
            args.language,
            data_root=_data_roots(args),
            jobs=args.jobs,
            done=lambda row: bar.update(),
        )
    rows.sort()
    width = max(len(r[0]) for r in rows)
    print(f"{'plan':<{width}}  status  seconds  report / error")
    for name, _, ok, detail, seconds in rows:
        print(f"{name:<{width}}  {'ok' if ok else 'FAILED':<6}  {seconds:>7.1f}  {detail}")
    failed = sum(not r[2] for r in rows)
    print(f"{len(rows) - failed} of {len(rows)} campaigns reported, {failed} failed")
    return 1 if failed else 0


def _lab(args) -> int:
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    command = ["jupyter", "lab", f"--notebook-dir={notebooks}", *args.args]
    os.execvp(command[0], command)
    return 0  # not reached: exec replaces the process


def _make_demo(args) -> int:
    from closedloop.datasets import write_demo

    folder = write_demo(args.out, seed=args.seed, n_customers=args.customers)
    _print_summary(folder)
    return 0


def _make_hillstrom(args) -> int:
    from closedloop.datasets import write_hillstrom
    from closedloop.datasets.public import DownloadFailed

    try:
        folder = write_hillstrom(args.out, args.source)
    except DownloadFailed as exc:
        print(
            f"closedloop make-hillstrom: could not download {exc.name} ({exc.reason}); pass the"
            f" CSV with --source PATH, or put it at {exc.target}",
            file=sys.stderr,
        )
        return 2
    print(f"Hillstrom campaign in {folder}/: run it with  closedloop run {folder / 'plan.yaml'}")
    return 0


def _contacts(args) -> int:
    import pandas as pd

    from closedloop import contacts
    from closedloop.errors import DataError
    from closedloop.glossary import contact_word, say
    from closedloop.plan import PlanError

    try:
        week = _plan_contacts(args) if args.plan is not None else _folder_contacts(args)
    except (DataError, PlanError) as exc:
        print(f"closedloop contacts: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("reports") / "contacts" / str(args.asof)
    contacts.write_contacts(week, out)
    language = args.language
    print(say("contacts_written", language, asof=args.asof, n=f"{week.export.num_rows:,}", out=out))
    zh = language == "zh"
    shown = week.summary.rename(
        index=lambda k: contacts.TYPES.get(k, contact_word(k, language)) if zh else k,
        columns=lambda k: contact_word(k, language),
    )
    shown.index.name = shown.columns.name = None
    with pd.option_context("display.unicode.east_asian_width", True):  # CJK cells are 2 wide
        print(shown.to_string())
    words = [f"{contact_word(k, language)} {v:,}" for k, v in week.dropped.items()]
    left = ("，" if zh else ", ").join(words)
    print(say("contacts_left_out", language, left=left))
    for note in week.notes:
        print(say("contacts_note", language, note=note))
    return 0


def _folder_contacts(args):
    """The week's lists from a data folder's CSV files (the demo's layout)."""
    import pandas as pd

    from closedloop import basket, contacts, io

    folder = args.data
    tx = io.read_transactions(folder / "transactions.csv", asof=args.asof)
    customers = io.read_customers(folder / "customers.csv")
    extra = {}
    if (folder / "points.csv").exists():
        extra["points_ledger"] = io.read_points(folder / "points.csv", asof=args.asof)
    if (folder / "items.csv").exists():
        items = pd.read_csv(folder / "items.csv", dtype={"order_id": str})
        extra["items"] = items
        extra["basket_rules"] = basket.rules(items[["order_id", "item"]], 0.01, 0.2)
    if args.exclude is not None:
        extra["exclude"] = pd.read_csv(args.exclude, dtype={"customer_id": str})
    return contacts.contact_list(
        tx,
        customers,
        args.asof,
        cap=args.cap,
        expiry=args.expiry,
        language=args.language,
        **extra,
    )


def _plan_contacts(args):
    """The week's lists of a campaign's next cycle: the plan's data read through its contract,
    checked and acted on as ``run`` does, so neither this cycle's holdout nor the next one's is
    contacted (:func:`closedloop.pdca.next_contacts`)."""
    import pandas as pd

    from closedloop import pdca
    from closedloop.errors import DataError

    plan = Plan.from_yaml(args.plan)
    data = pdca.load(plan, asof=args.asof)
    if data.transactions is None or data.customers is None:
        raise DataError(str(args.plan), "contact lists need data.transactions and data.customers")
    check = pdca.check(plan, data, asof=args.asof)
    extra = {"cap": args.cap, "expiry": args.expiry}
    if args.exclude is not None:
        extra["exclude"] = pd.read_csv(args.exclude, dtype={"customer_id": str})
    return pdca.next_contacts(check, pdca.act(check), data, args.language, **extra).contacts.week


def _demo(args) -> int:
    from closedloop.datasets import next_cycle, write_demo

    if args.cycles < 1:
        print("closedloop demo: --cycles must be at least 1", file=sys.stderr)
        return 2
    folder = args.data
    if args.rebuild or not (folder / "plan.yaml").exists():
        print(f"building the demo retailer in {folder} ...", flush=True)
        write_demo(folder)
    _print_summary(folder)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for cycle in range(1, args.cycles + 1):
        print(f"cycle {cycle}: running the campaign's PDCA check report ...", flush=True)
        args.plan, args.asof = folder / "plan.yaml", None
        args.run_id = f"{stamp}-c{cycle}" if args.cycles > 1 else ""
        code = _run(args)
        if code or cycle == args.cycles:
            return code
        report_dir = args.out / _campaign(args.plan) / args.run_id
        upcoming = Plan.from_yaml(report_dir / "next_plan.yaml", check_paths=False)
        if upcoming.status != "ready":
            print(f"cycle {cycle}: stop or redesign — the Act step carried no arm forward")
            return 0
        folder = next_cycle(
            folder, upcoming, args.data.with_name(f"{args.data.name}-cycle-{cycle + 1}")
        )
        print(
            f"cycle {cycle + 1}: the retailer lived through {upcoming.period.start:%B %Y} in {folder}/"
        )
    return 0


def _campaign(plan_path: Path) -> str:
    return Plan.from_yaml(plan_path, check_paths=False).campaign


def _next(args) -> int:
    """The diff between a report's plan and the next one, and (``--to``) the next cycle's folder."""
    import json
    import shutil

    from closedloop.glossary import change_field
    from closedloop.plan import PlanError

    try:
        upcoming = Plan.from_yaml(args.report / "next_plan.yaml", check_paths=False)
        record = json.loads((args.report / "summary.json").read_text())
        current = Plan.from_yaml(record["plan_path"], check_paths=False)
    except (OSError, KeyError, ValueError, PlanError) as exc:
        print(f"closedloop next: {args.report} is not a report folder: {exc}", file=sys.stderr)
        return 2
    print(f"{current.campaign}: cycle {current.cycle} → cycle {upcoming.cycle}")
    for line in plan_diff(current, upcoming):
        print(f"  {line}")
    print("because:")
    for change in upcoming.changes:
        print(f"  {change_field(change.field)} → {change.to}: {change.reason}")
    if args.to is None:
        return 0
    if upcoming.status != "ready":
        from closedloop.report import REFUSED

        print(
            f"closedloop next: {args.report / 'next_plan.yaml'}: {REFUSED[upcoming.status]}",
            file=sys.stderr,
        )
        return 2
    if args.simulate:
        from closedloop.datasets import next_cycle

        folder = next_cycle(Path(record["plan_path"]).parent, upcoming, args.to, seed=args.seed)
        print(f"the demo retailer lived through the next period in {folder}/; run it with")
        print(f"  closedloop run {folder / 'plan.yaml'}")
        return 0
    args.to.mkdir(parents=True, exist_ok=True)
    listed = upcoming.data.assignments
    copied = args.to / "assignments.csv"
    shutil.copyfile(listed, copied)
    data = upcoming.data.model_copy(update={"assignments": copied.resolve()})
    upcoming.model_copy(update={"data": data}).to_yaml(args.to / "plan.yaml", relative_to=args.to)
    print(f"next plan and assignment list in {args.to}/: load {copied} into your SCRM, run the")
    print("campaign, add its period's transactions to the data, then check it with")
    root = Path(record["plan_path"]).parent
    print(f"  closedloop run {args.to / 'plan.yaml'} --data-root {root}")
    return 0


def _shown_target(name: str, value) -> str:
    """A plan target in words: "25%", "≥ 34.1% on conversion", "visit 30%, register 16%"."""
    from closedloop.verdict import show_target

    if name == "relative_lift":
        return f"≥ {show_target(name, value['min'])} on {value['metric']}"
    if name == "funnel":
        return ", ".join(f"{stage} {show_target('funnel_', v)}" for stage, v in value.items())
    return show_target(name, value)


def plan_diff(current: Plan, upcoming: Plan) -> list[str]:
    """What differs between two plans, one line per field a marketer plans."""
    from closedloop.glossary import target_name

    def show(plan: Plan) -> dict:
        return {
            "status": plan.status,
            "period": f"{plan.period.start} to {plan.period.end}",
            "arms": ", ".join(f"{a} {s:.0%}" for a, s in plan.arms.items()),
            "audience": ", ".join(plan.audience.segments or ["everyone assigned"]),
            **{
                f"target {target_name(k)}": _shown_target(k, v)
                for k, v in plan.targets.model_dump(exclude_none=True).items()
            },
        }

    before, after = show(current), show(upcoming)
    return [
        f"{key}: {before.get(key, '–')} → {after.get(key, '–')}"
        for key in dict.fromkeys([*before, *after])
        if before.get(key) != after.get(key)
    ]


def _print_summary(folder: Path) -> None:
    from closedloop import io

    tx = io.read_transactions(folder / "transactions.csv")
    customers = io.read_customers(folder / "customers.csv")
    assignments = io.read_assignments(folder / "assignments.csv")
    events = io.read_events(folder / "events.csv")
    q = tx.attrs["quality"]
    arms = assignments["arm"].value_counts().sort_index()
    print(f"demo retailer in {folder}/")
    print(
        f"  customers     {len(customers):>9,}   members {customers['is_member'].mean():.0%},"
        f" reachable online {customers['online'].mean():.0%}"
    )
    print(
        f"  transactions  {len(tx):>9,}   {q['date_min']} to {q['date_max']},"
        f" revenue {tx['amount'].sum():,.0f}, average ticket {tx['amount'].mean():.2f}"
    )
    print(
        f"  campaign      {len(assignments):>9,}   "
        + ", ".join(f"{a} {n:,}" for a, n in arms.items())
    )
    print(f"  funnel events {len(events):>9,}   stages " + " → ".join(events["stage"].unique()))
    print(f"  plan          {folder / 'plan.yaml'}")


if __name__ == "__main__":
    sys.exit(main())
