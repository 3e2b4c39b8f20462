"""The command line: version, help and the demo summary."""

from __future__ import annotations

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
