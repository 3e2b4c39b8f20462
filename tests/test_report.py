"""The report runner: atomic folders, failed runs, run ids, the ledger, run-all.

These tests drive the runner with small notebooks so that the machinery is tested apart from the
report's sections; tests/test_demo_report.py runs the real report end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
import yaml

from closedloop import DataError, pdca, report
from closedloop.cli import main

SHOW = """
import sys
from closedloop import DataError, report
check, next_plan = report.load_check(check_path)
print("<b>done</b>", check.plan.campaign, next_plan.cycle, sys.executable)
"""


def notebook(path, body):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell(
        'plan_path = ""\nasof = ""\nrun_id = ""\nlanguage = "en"\nout_dir = "."\nledger_path = ""\n'
        'check_path = ""'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def plan_file(tmp_path):
    def make(campaign="spring", name="Spring", file="plan.yaml"):
        raw = {
            "campaign": campaign,
            "name": name,
            "objective": "win back",
            "period": {"start": "2026-03-01", "end": "2026-03-31"},
            "arms": {"control": 0.5, "sms": 0.5},
            "targets": {"conversion_rate": 0.25},
            "data": {"transactions": "tx.csv", "assignments": "a.csv"},
        }
        path = tmp_path / file
        (path.parent / "tx.csv").write_text(
            "customer_id,order_date,amount\n1,2026-02-02,4\n1,2026-03-02,5\n2,2026-03-03,7\n"
        )
        (path.parent / "a.csv").write_text("customer_id,arm\n1,control\n2,sms\n")
        path.write_text(yaml.safe_dump(raw))
        return path

    return make


def test_a_run_lands_complete_and_is_ledgered(tmp_path, plan_file):
    nb = notebook(tmp_path / "ok.ipynb", SHOW)
    out = tmp_path / "reports"
    result = report.run(plan_file(), out, "r1", asof="2026-04-01", notebook=nb)
    assert result.ok, result.error
    assert result.folder == out / "spring" / "r1"
    assert sorted(p.name for p in result.folder.iterdir()) == [
        "next_plan.yaml",
        "report.html",
        "report.ipynb",
        "summary.json",
    ]  # the Check's pickle is gone
    assert not [p for p in (out / "spring").iterdir() if p.name.startswith(".partial")]
    ledger = pd.read_csv(out / "ledger.csv")
    assert ledger[["campaign", "run_id", "conversion_rate_status"]].values.tolist() == [
        ["spring", "r1", "met"]
    ]
    html = result.html.read_text()
    assert "&lt;b&gt;done&lt;/b&gt; spring 2" in html  # printed text is escaped, not markup
    assert f" {sys.executable}" in html  # the kernel is this interpreter
    assert "import json" not in html  # no code cells in the report
    assert "<title>spring — PDCA check report</title>" in html


def test_a_chinese_run_titles_its_page_in_chinese(tmp_path, plan_file):
    nb = notebook(tmp_path / "ok.ipynb", SHOW)
    result = report.run(
        plan_file(), tmp_path / "reports", "r1", asof="2026-04-01", notebook=nb, language="zh"
    )
    assert result.ok, result.error
    assert "<title>spring — PDCA 检查报告</title>" in result.html.read_text()


def test_an_existing_run_id_is_refused(tmp_path, plan_file):
    nb = notebook(tmp_path / "ok.ipynb", SHOW)
    report.run(plan_file(), tmp_path / "reports", "r1", notebook=nb)
    with pytest.raises(report.RunExists, match="already exists: a run id is used once"):
        report.run(plan_file(), tmp_path / "reports", "r1", notebook=nb)


def test_a_failing_cell_keeps_the_partial_notebook(tmp_path, plan_file):
    nb = notebook(tmp_path / "bad.ipynb", "x = 1\nraise ValueError('the data ran out')")
    out = tmp_path / "reports"
    result = report.run(plan_file(), out, "r2", notebook=nb)
    assert not result.ok
    assert result.error == "cell 3 failed: ValueError: the data ran out"
    assert result.folder == out / "spring" / "failed" / "r2"
    executed = nbformat.read(result.folder / "report.ipynb", as_version=4)
    errors = [o["ename"] for c in executed.cells for o in c.get("outputs", []) if "ename" in o]
    assert errors == ["ValueError"]
    assert not (result.folder / report.CHECK_FILE).exists()
    assert not (out / "spring" / "r2").exists()
    assert not (out / "ledger.csv").exists()


def test_cli_run_prints_the_failing_cell_in_one_line(tmp_path, plan_file, monkeypatch, capsys):
    monkeypatch.setattr(report, "NOTEBOOK", notebook(tmp_path / "bad.ipynb", "1 / 0"))
    code = main(["run", str(plan_file()), "--out", str(tmp_path / "r"), "--run-id", "x"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[0] == "spring: cell 3 failed: ZeroDivisionError: division by zero"


def test_bad_run_ids_and_hostile_campaigns_stay_inside_reports(tmp_path, plan_file, capsys):
    code = main(["run", str(plan_file(campaign="../../escape")), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "a campaign id holds only letters, digits, - and _" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"run id '../x': use letters"):
        report.run(plan_file(), tmp_path / "r", "../x")
    assert not (tmp_path / "escape").exists()


def test_run_all_goes_on_past_a_broken_plan(tmp_path, plan_file, monkeypatch, capsys):
    monkeypatch.setattr(report, "NOTEBOOK", notebook(tmp_path / "ok.ipynb", SHOW))
    plans = tmp_path / "plans"
    plans.mkdir()
    plan_file(campaign="good", file="plans/good.yaml")
    (plans / "broken.yaml").write_text("campaign: broken\narms: {control: 1.5}\n")
    code = main(["run-all", str(plans), "--out", str(tmp_path / "r"), "--run-id", "n1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 of 2 campaigns reported, 1 failed" in out
    assert (tmp_path / "r" / "good" / "n1" / "report.html").exists()
    summary = json.loads((tmp_path / "r" / "good" / "n1" / "summary.json").read_text())
    assert summary["run_id"] == "n1"


def test_bad_data_fails_before_any_kernel_or_folder(tmp_path, plan_file, monkeypatch, capsys):
    path = plan_file()
    (path.parent / "a.csv").write_text("customer_id,arm\n1,control\n2,email\n")

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was started for bad data")

    monkeypatch.setattr(report, "_execute", no_kernel)
    with pytest.raises(DataError, match=r"arm\(s\) \['email'\] are not in the plan"):
        report.run(path, tmp_path / "r", "d1")
    assert not (tmp_path / "r").exists()
    code = main(["run", str(path), "--out", str(tmp_path / "r"), "--run-id", "d1"])
    err = capsys.readouterr().err
    assert code == 2
    first = err.splitlines()[0]  # one line says what is wrong; the offending rows follow
    assert first.startswith("closedloop run: ") and first.endswith(
        "a.csv, column 'arm': arm(s) ['email'] are not in the plan; plan arm(s) ['sms'] have"
        " nobody assigned (plan arms: ['control', 'sms'])"
    )


def test_the_check_reaches_the_kernel_and_the_ledger_without_summary_json(tmp_path, plan_file):
    """The ledger row comes from the runner's own summary, whatever the notebook does."""
    body = SHOW + "import pathlib\npathlib.Path(out_dir, 'summary.json').unlink()\n"
    out = tmp_path / "reports"
    result = report.run(plan_file(), out, "r3", notebook=notebook(tmp_path / "nb.ipynb", body))
    assert result.ok, result.error
    ledger = pd.read_csv(out / "ledger.csv")
    assert ledger["run_id"].tolist() == ["r3"]
    assert ledger["conversion_rate_actual"].tolist() == [1.0]


def test_the_kernel_imports_the_closedloop_that_pickled_the_check(tmp_path, plan_file, monkeypatch):
    """The kernel starts in the run's folder: a relative PYTHONPATH is made absolute for it, so
    it imports this closedloop, not one installed elsewhere."""
    from pathlib import Path

    import closedloop

    root = Path(closedloop.__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    monkeypatch.setenv("PYTHONPATH", ".")
    body = "import closedloop\nprint('from', closedloop.__file__)"
    out = tmp_path / "reports"
    result = report.run(plan_file(), out, "k1", notebook=notebook(tmp_path / "nb.ipynb", body))
    assert result.ok, result.error
    assert f"from {root / 'closedloop' / '__init__.py'}" in result.html.read_text()


def test_run_all_rows_name_an_error_without_a_message(tmp_path, plan_file, monkeypatch):
    """An error with no message (a bare RuntimeError from deep inside) still gives each plan its
    row, named by the error's type, instead of stopping the whole run."""

    def fails(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(pdca, "load", fails)
    plans = [plan_file(campaign="one", file="one.yaml"), plan_file(campaign="two", file="two.yaml")]
    rows = report.run_all(plans, tmp_path / "r", "e1", jobs=1)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("one.yaml", "one", False, "RuntimeError"),
        ("two.yaml", "two", False, "RuntimeError"),
    ]


PAGE = """
import sys
import nbformat
from closedloop import report
nb = nbformat.read(sys.argv[1], as_version=4)
if sys.argv[2] == "prepared":
    report.prepare_html()
sys.stdout.write(report.to_html(nb, "page"))
"""


def test_the_page_is_the_same_after_nbconvert_was_made_ready(tmp_path):
    """:func:`report.prepare_html` converts an empty notebook first (in a run, beside the
    kernel): the page of the report notebook after it equals one made in a fresh process."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    html = "<h2 id='x'>Check 检查</h2><table class='cl-table'><tr><td>a &amp; b</td></tr></table>"
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 闭环 *report*"), cell]
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    pages = [
        subprocess.run(
            [sys.executable, "-c", PAGE, str(path), how], capture_output=True, text=True, check=True
        ).stdout
        for how in ("cold", "prepared")
    ]
    assert "检查" in pages[0] and "a &amp; b" in pages[0]
    assert pages[0] == pages[1]


LOADED = """
import sys
from closedloop import cli, objectives, pdca, report
from closedloop.plan import Plan
plan = Plan.from_yaml(sys.argv[1])
objectives.resolve_targets(plan, pdca.load(plan))
print("scipy.stats" in sys.modules)
"""


def test_the_plan_and_its_data_are_checked_without_scipy_stats(plan_file):
    """scipy.stats (half a second of imports) is imported where the Check first uses it, after
    the kernel was started, not before: loading and checking the plan and its data need none."""
    found = subprocess.run(
        [sys.executable, "-c", LOADED, str(plan_file())], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "False"
