"""The built wheel: ``closedloop demo`` runs end to end from it, outside the repository.

SLOW (about a minute: a wheel build, a fresh venv, the demo report), marked ``slow``; leave it
out with ``-m "not slow"``. The venv gets the wheel only; its dependencies come from the
interpreter running the tests (a ``.pth`` file to that interpreter's site-packages, and
``JUPYTER_PATH`` for the data files they install, such as nbconvert's templates), so nothing is
downloaded but the build backend. The subprocesses run without ``PYTHONPATH`` and outside the
checkout, so neither this checkout nor an editable install can stand in for the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what the wheel is built from
SOURCE = ("pyproject.toml", "README.md", "closedloop", "notebooks")
CACHES = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")

pytestmark = pytest.mark.slow


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)


def test_closedloop_demo_runs_from_the_installed_wheel(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    source = tmp_path / "source"  # a copy: building leaves build/ and *.egg-info behind
    source.mkdir()
    for part in SOURCE:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, source / part, ignore=CACHES)
        else:
            shutil.copy2(ROOT / part, source / part)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", source, "-w", wheels]
    build = _run(build, env=env, cwd=tmp_path)
    if build.returncode and "No matching distribution found" in build.stdout + build.stderr:
        pytest.skip(f"no package index to fetch the build backend from: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("closedloop-*.whl")
    shipped = zipfile.ZipFile(wheel).namelist()
    for notebook in ("pdca_check.ipynb", "member_health.ipynb"):  # the two reports' notebooks
        assert f"closedloop/notebooks/{notebook}" in shipped

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        env=env,
        check=True,
    ).stdout.strip()
    # the wheel first, into the bare venv: pip sees no other closedloop to skip or uninstall
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q"]
    _run([*install, "--ignore-installed", wheel], env=env, check=True)
    ours = sysconfig.get_paths()
    dependencies = dict.fromkeys([ours["purelib"], ours["platlib"]])
    (Path(purelib) / "_dependencies.pth").write_text("\n".join(dependencies) + "\n")

    env["JUPYTER_PATH"] = str(Path(ours["data"]) / "share" / "jupyter")
    env["MPLBACKEND"] = "Agg"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [python, "-c", "import closedloop.report as r; print(r.__file__); print(r.NOTEBOOK)"],
        cwd=elsewhere,
        env=env,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where  # the wheel, not the checkout

    demo = _run(
        [venv / "bin" / "closedloop", "demo", "--data", tmp_path / "demo", "--out", "reports"],
        cwd=elsewhere,
        env=env,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    (html,) = (elsewhere / "reports" / "spring-winback-2026").glob("*/report.html")
    page = html.read_text()
    for element in ('id="scorecard"', 'id="fig-lift"', 'id="pyramid"', 'id="history"'):
        assert element in page
