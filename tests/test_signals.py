"""SIGTERM / SIGINT to ``closedloop run-all``: every process it started goes, no partial folder
and no kernel's working folder stays, and the exit status is the shell's (143 / 130)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from closedloop import stopping
from closedloop.datasets import write_demo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=1500)


def plans(demo: Path, folder: Path) -> Path:
    """Three plans of three campaigns on the demo data, which lies outside their folder."""
    folder.mkdir()
    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw["data"] = {k: str(demo / v) for k, v in raw["data"].items()}
    for n in range(3):
        (folder / f"p{n}.yaml").write_text(yaml.safe_dump({**raw, "campaign": f"camp-{n}"}))
    return folder


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kernels(pids) -> list[int]:
    """The kernels among ``pids``: ipykernel processes, and the processes forked from a kernel
    template (closedloop.kernel_template), which keep the template's command line."""
    commands, parents = {}, stopping._parents()
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile
            commands[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
    templates = {pid for pid, command in commands.items() if b"kernel_template" in command}
    return [
        pid
        for pid, command in commands.items()
        if b"ipykernel" in command or parents.get(pid) in templates
    ]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_every_worker_and_kernel(demo, tmp_path, signum, code):
    out = tmp_path / "reports"
    command = [
        sys.executable,
        "-m",
        "closedloop.cli",
        "run-all",
        str(plans(demo, tmp_path / "plans")),
        "--out",
        str(out),
        "--data-root",
        str(demo),
        "--jobs",
        "2",
    ]
    temporary = tmp_path / "tmp"  # where the kernels' working folders go
    temporary.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temporary)}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        wait_for(lambda: list(out.glob("*/.partial-*")), 180, "a partial folder")
        wait_for(lambda: kernels(stopping.descendants(proc.pid)), 180, "a running kernel")
        started = stopping.descendants(proc.pid)
        assert len(started) >= 3  # two workers and at least one kernel
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err.decode()
        assert f"stopped by {signal.Signals(signum).name}" in err.decode()
        wait_for(lambda: not any(stopping.alive(p) for p in started), 15, "the processes to go")
        assert not list(out.glob("*/.partial-*"))
        assert not list(temporary.glob(f"{stopping.KERNEL_FOLDER}*"))
        assert not [p for p in out.glob("camp-*/*") if not p.name.startswith(".")]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
