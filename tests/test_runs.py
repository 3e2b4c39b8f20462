"""Run ids under concurrency, stale partial folders, redesigned plans, data roots and ``check``."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from test_report import notebook as report_notebook

from closedloop import report
from closedloop.cli import main

SHOW = """
from closedloop import report
check, next_plan = report.load_check(check_path)
print(check.plan.campaign, run_id)
"""


def notebook(path, body=SHOW):
    return report_notebook(path, body)


def write_plan(folder, campaign="spring", file="plan.yaml", data="", **extra):
    folder.mkdir(parents=True, exist_ok=True)
    raw = {
        "campaign": campaign,
        "objective": "win back",
        "period": {"start": "2026-03-01", "end": "2026-03-31"},
        "arms": {"control": 0.5, "sms": 0.5},
        "targets": {"conversion_rate": 0.25},
        "data": {"transactions": f"{data}tx.csv", "assignments": f"{data}a.csv"},
        **extra,
    }
    where = folder / data if data else folder
    where.mkdir(parents=True, exist_ok=True)
    (where / "tx.csv").write_text(
        "customer_id,order_date,amount\n1,2026-02-02,4\n1,2026-03-02,5\n2,2026-03-03,7\n"
    )
    (where / "a.csv").write_text("customer_id,arm\n1,control\n2,sms\n")
    path = folder / file
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def quick(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "NOTEBOOK", notebook(tmp_path / "nb.ipynb"))


def test_run_all_with_two_plans_of_one_campaign_lands_both(tmp_path, quick, capsys):
    plans = tmp_path / "plans"
    write_plan(plans, file="a.yaml")
    write_plan(plans, file="b.yaml")
    code = main(["run-all", str(plans), "--out", str(tmp_path / "r"), "--jobs", "2"])
    assert code == 0, capsys.readouterr()
    runs = sorted(p.name for p in (tmp_path / "r" / "spring").iterdir() if p.name[0] != ".")
    assert len(runs) == 2 and runs[1] == runs[0] + "-2"
    assert all((tmp_path / "r" / "spring" / r / "report.html").exists() for r in runs)


def test_run_all_skips_a_member_health_targets_file_and_check_names_it(tmp_path, quick, capsys):
    """The demo writes health.yaml beside its plan: run-all over that folder runs the plan and
    says it skipped the health targets; check and run say what the file is."""
    plans = tmp_path / "plans"
    write_plan(plans, file="a.yaml")
    health = plans / "health.yaml"
    health.write_text("campaign: member-health\nby: store\ntargets:\n  member_share: 0.75\n")
    code = main(["run-all", str(plans), "--out", str(tmp_path / "r"), "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "skipped health.yaml, a member-health targets file" in err
    assert main(["check", str(health)]) == 2
    assert "a member-health targets file, not a campaign plan" in capsys.readouterr().err


def test_a_default_run_id_takes_a_suffix_and_an_explicit_one_is_refused(tmp_path, quick):
    plan = write_plan(tmp_path)
    first = report.run(plan, tmp_path / "r", "t1", suffix=True)
    second = report.run(plan, tmp_path / "r", "t1", suffix=True)
    assert (first.run_id, second.run_id) == ("t1", "t1-2") and second.ok
    with pytest.raises(report.RunExists):
        report.run(plan, tmp_path / "r", "t1")


def test_stale_partials_of_killed_runs_are_removed(tmp_path, quick, capsys):
    plan = write_plan(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    campaign = tmp_path / "r" / "spring"
    (campaign / f".partial-old-{dead}").mkdir(parents=True)
    (campaign / ".partial-live-1").mkdir()  # pid 1 is alive: another run's
    report.run(plan, tmp_path / "r", "r1")
    err = capsys.readouterr().err
    assert not (campaign / f".partial-old-{dead}").exists()
    assert (campaign / ".partial-live-1").exists()
    assert err.count("\n") == 1 and "removed 1 partial folder(s) of spring" in err


def test_a_redesigned_plan_is_refused(tmp_path, capsys):
    plan = write_plan(tmp_path, status="redesign")
    assert main(["run", str(plan), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(report.REDESIGN) and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_a_provisional_plan_beside_its_report_is_refused_for_its_status(tmp_path, capsys):
    """A next plan written beside a report points at data outside that folder: run in place,
    its status is what the user is told, not the data root."""
    plan = write_plan(tmp_path / "plans", data="../data/", status="provisional")
    assert main(["run", str(plan), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(report.PROVISIONAL) and "data root" not in err


def test_data_roots_from_the_flag_and_the_environment(tmp_path, quick, monkeypatch, capsys):
    plan = write_plan(tmp_path / "plans", data="../data/")
    assert main(["check", str(plan)]) == 2
    err = capsys.readouterr().err  # both paths under one mention of the root
    assert err.count("is outside") == 0 and err.count("outside the data root") == 1
    assert "data.transactions (" in err and "data.assignments (" in err
    assert main(["check", str(plan), "--data-root", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "spring: plan" in out and "ready to run" in out and "assignments" in out
    table = out.split("ready to run")[0]  # the elapsed time after it may well read 0.0 s
    assert "100.0%" in table and not re.search(r"(?<![\d.])\d+\.0(?![\d%])|\bnan\b", table), out
    monkeypatch.setenv("CLOSEDLOOP_DATA_ROOT", f"/nonexistent:{tmp_path / 'data'}")
    assert main(["run", str(plan), "--out", str(tmp_path / "r"), "--run-id", "e1"]) == 0


def test_check_names_bad_data_in_one_line_before_any_kernel(tmp_path, monkeypatch, capsys):
    plan = write_plan(tmp_path)
    (tmp_path / "a.csv").write_text("customer_id,arm\n1,control\n2,email\n")
    monkeypatch.setattr(report, "_execute", lambda *a: pytest.fail("a kernel was started"))
    assert main(["check", str(plan)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "arm(s) ['email'] are not in the plan" in err
    assert main(["run", str(plan), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("closedloop run: ")


def test_check_refuses_a_baseline_target_without_a_baseline_as_run_does(tmp_path, capsys):
    """``check`` promises what ``run`` will refuse: a ``{vs_baseline: ...}`` target in a plan
    with no baseline period is one line and exit 2, not "ready to run"."""
    from closedloop.datasets import write_demo

    folder = write_demo(tmp_path / "demo", seed=2, n_customers=500)
    plan = yaml.safe_load((folder / "plan.yaml").read_text())
    plan.pop("baseline")
    plan["targets"] = {"conversion_rate": {"vs_baseline": "+10%"}}
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan))
    assert main(["check", str(folder / "plan.yaml")]) == 2
    captured = capsys.readouterr()
    assert "ready to run" not in captured.out
    assert captured.err.count("\n") == 1 and "no baseline period" in captured.err


def test_run_all_reports_equal_single_runs(tmp_path):
    """run-all computes the Checks in one process, reads the shared tables once and runs the
    kernels in a pool: the reports are those ``closedloop run`` makes of each plan alone."""
    import json

    from closedloop.datasets import write_demo

    demo = write_demo(tmp_path / "demo", seed=1, n_customers=1500)
    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw["data"] = {k: str(demo / v) for k, v in raw["data"].items()}
    plans = tmp_path / "plans"
    plans.mkdir()
    for name, conversion in (("camp-a", 0.25), ("camp-b", 0.2)):
        targets = {**raw["targets"], "conversion_rate": conversion}
        plan = {**raw, "campaign": name, "targets": targets}
        (plans / f"{name}.yaml").write_text(yaml.safe_dump(plan))
    rows = report.run_all(sorted(plans.glob("*.yaml")), tmp_path / "all", "r1", data_root=[demo])
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("camp-a.yaml", "camp-a", True),
        ("camp-b.yaml", "camp-b", True),
    ], rows
    for name in ("camp-a", "camp-b"):
        alone = report.run(plans / f"{name}.yaml", tmp_path / "one", "r1", data_root=[demo])
        together = tmp_path / "all" / name / "r1"
        assert alone.ok, alone.error
        summaries = [json.loads((f / "summary.json").read_text()) for f in (alone.folder, together)]
        assert summaries[0] == summaries[1]
        pages = [_page((f / "report.html").read_text()) for f in (alone.folder, together)]
        assert pages[0] == pages[1]
    statuses = [
        json.loads((tmp_path / "all" / n / "r1" / "summary.json").read_text())
        for n in ("camp-a", "camp-b")
    ]
    assert statuses[0] != statuses[1]  # the two plans' targets differ, and so do their Checks


def _page(html: str) -> str:
    """A report page without what differs between any two runs: its folder's path and the id
    papermill gives the parameters cell it adds."""
    html = re.sub(r"cell-id=[0-9a-f-]+", "cell-id=ID", html)
    return re.sub(r"/[^\s\"'<>]*/(all|one)/", "/OUT/", html)
