"""The real PDCA report end to end on a small demo, opened in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from closedloop import report
from closedloop.datasets import write_demo

HOSTILE = "Spring \"push\" <script>alert('x')</script> & co"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=4_000)
    raw = yaml.safe_load((folder / "plan.yaml").read_text())
    raw["name"] = HOSTILE
    (folder / "plan.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path_factory.mktemp("reports")
    result = report.run(folder / "plan.yaml", out, "r1", asof="2026-03-31")
    assert result.ok, result.error
    return result


def test_the_report_is_complete(demo_run):
    names = {p.name for p in demo_run.folder.iterdir()}
    assert {"report.html", "report.ipynb", "summary.json", "next_plan.yaml", "figures"} <= names
    assert (demo_run.folder / "figures" / "lift.png").stat().st_size > 10_000
    summary = json.loads((demo_run.folder / "summary.json").read_text())
    assert {row["target"] for row in summary["scorecard"]} >= {
        "conversion_rate",
        "relative_lift",
        "roi",
    }
    assert summary["decisions"]


def test_the_html_is_self_contained_and_escaped(demo_run):
    html = demo_run.html.read_text()
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html
    assert 'src="http' not in html and 'href="http' not in html
    assert "import pandas" not in html  # code cells are not in the report


def test_the_next_plan_runs_as_written(demo_run):
    from closedloop.io import read_assignments
    from closedloop.plan import Plan

    plan = Plan.from_yaml(demo_run.folder / "next_plan.yaml", check_paths=False)
    assert plan.cycle == 2 and plan.changes
    plan.check_paths()  # every data path is valid from the report folder
    if plan.status == "redesign":  # 4,000 customers: too few to keep an arm with confidence
        assert not (demo_run.folder / "next_assignments.csv").exists()
        return
    assert plan.data.assignments == (demo_run.folder / "next_assignments.csv").resolve()
    assert plan.data.outcomes is None  # the next cycle's outcomes come from its transactions
    listed = read_assignments(plan.data.assignments)
    assert set(listed["arm"]) == set(plan.arms)
    if plan.audience.segments:
        assert set(listed["segment"]) <= set(plan.audience.segments)
    holdout = (listed["arm"] == plan.control).mean()
    assert abs(holdout - plan.arms[plan.control]) < 0.01


def test_chromium_shows_scorecard_and_lift_figure(demo_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get update && apt-get install -y chromium;"
            " .ci/run does)"
        )
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = demo_run.html.as_uri()
    dom = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    assert '<table border="1" class="dataframe cl-table" id="scorecard">' in dom
    assert 'id="fig-lift"' in dom and 'src="data:image/png;base64,' in dom
    assert 'id="verdict"' in dom and dom.index('id="verdict"') < dom.index('id="scorecard"')
    figures = {p.stem for p in (demo_run.folder / "figures").glob("*.png")}
    assert figures and all(f'id="fig-{name}"' in dom for name in figures), figures
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,3000", url],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_the_run_writes_the_next_contacts_beside_the_report(demo_run):
    """The report's Next contacts section names the files the run wrote, with their rows."""
    import html as markup
    import re

    import pandas as pd

    folder = demo_run.folder / "contacts"
    page = demo_run.html.read_text()
    assert "Next contacts" in page
    table = re.search(r'<table[^>]*id="contact-files".*?</table>', page, re.S).group(0)
    shown = dict(
        re.findall(r"<tr>\s*<td>(contacts/contacts_\w+\.csv)</td>\s*<td>([\d,–]+)</td>", table)
    )
    for channel in ("wecom", "group", "app", "sms"):
        rows = pd.read_csv(folder / f"contacts_{channel}.csv", dtype=str)
        assert markup.unescape(shown[f"contacts/contacts_{channel}.csv"]) == f"{len(rows):,}"
    assert (folder / "contacts_summary.csv").exists()
