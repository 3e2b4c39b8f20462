"""The command line: version, help and the demo summary."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from closedloop import __version__
from closedloop.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"closedloop {__version__}"


def test_help_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "make-demo" in out


def test_make_demo_prints_a_summary(tmp_path, capsys):
    assert main(["make-demo", "--out", str(tmp_path), "--customers", "1000"]) == 0
    out = capsys.readouterr().out
    assert "customers" in out and "1,000" in out
    assert (tmp_path / "plan.yaml").exists()


@pytest.fixture
def exec_calls(monkeypatch):
    """``closedloop lab`` ends in exec: record the command instead of starting JupyterLab."""
    calls = []
    monkeypatch.setattr("os.execvp", lambda file, command: calls.append(command))
    return calls


def test_lab_passes_unknown_options_to_jupyter_lab(exec_calls):
    assert main(["lab", "--allow-root", "--no-browser", "--port", "8889"]) == 0
    (command,) = exec_calls
    assert command[:2] == ["jupyter", "lab"]
    assert command[2].startswith("--notebook-dir=") and command[2].endswith("notebooks")
    assert command[3:] == ["--allow-root", "--no-browser", "--port", "8889"]


def test_lab_drops_a_leading_double_dash(exec_calls):
    assert main(["lab", "--", "--allow-root"]) == 0
    assert exec_calls[0][3:] == ["--allow-root"]


def test_other_commands_still_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["make-demo", "--allow-root"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --allow-root" in capsys.readouterr().err


def test_make_hillstrom_without_network_says_where_to_put_the_file(monkeypatch, tmp_path, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("CLOSEDLOOP_CACHE", str(tmp_path / "cache"))
    assert main(["make-hillstrom", "--out", str(tmp_path / "hillstrom")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Temporary failure in name resolution" in err
    assert "--source PATH" in err and str(tmp_path / "cache" / "hillstrom.csv") in err
    assert not list((tmp_path / "cache").iterdir())  # no partial download left behind
    assert not (tmp_path / "hillstrom").exists()


@pytest.mark.slow
def test_the_readme_next_cycle_commands_give_a_cycle_2_report(tmp_path, capsys):
    """demo, then `next` (the diff), `next --to --simulate` (April lived through), then `run`."""
    import json

    from closedloop.datasets import write_demo
    from closedloop.plan import Plan

    demo = write_demo(tmp_path / "demo")
    reports = tmp_path / "reports"
    assert main(["run", str(demo / "plan.yaml"), "--out", str(reports), "--run-id", "c1"]) == 0
    first = reports / "spring-winback-2026" / "c1"
    capsys.readouterr()
    assert main(["next", str(first)]) == 0
    said = capsys.readouterr().out
    assert "cycle 1 → cycle 2" in said and "arm sms → dropped" in said
    cycle2 = tmp_path / "demo-cycle-2"
    assert main(["next", str(first), "--to", str(cycle2), "--simulate"]) == 0
    plan = Plan.from_yaml(cycle2 / "plan.yaml")
    assert plan.cycle == 2 and "sms" not in plan.arms
    assert main(["run", str(cycle2 / "plan.yaml"), "--out", str(reports), "--run-id", "c2"]) == 0
    summary = json.loads((reports / "spring-winback-2026" / "c2" / "summary.json").read_text())
    assert summary["cycle"] == 2 and str(summary["period"]["start"]) == "2026-04-01"
    html = (reports / "spring-winback-2026" / "c2" / "report.html").read_text()
    assert 'id="history"' in html


def test_data_warnings_are_one_line_notes(capsys):
    from closedloop.cli import _note
    from closedloop.io import DataWarning

    _note(DataWarning("orders.csv: 2 refund row(s) kept"), DataWarning, "io.py", 12)
    assert capsys.readouterr().err == "note: orders.csv: 2 refund row(s) kept\n"
    _note(UserWarning("other"), UserWarning, "x.py", 3)
    assert "UserWarning: other" in capsys.readouterr().err
