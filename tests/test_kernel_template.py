"""Kernels forked from a template: each a process of its own, started as jupyter_client would
start it (folder, environment, session), with the template's imports and nothing else of it."""

import os
import signal
import threading
from pathlib import Path

import pytest

from closedloop import ahead, kernel_template, report, stopping

pytestmark = pytest.mark.skipif(not kernel_template.available(), reason="needs os.fork (Linux)")

WARM = ("closedloop.stopping",)


def _run(kernel, code: str) -> str:
    """What ``code`` prints in ``kernel``, with the name of an error it raises."""
    from jupyter_core.utils import run_sync

    client = kernel.manager.client()
    client.start_channels()
    printed = []

    def hook(message):
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            printed.append(f"error {message['content']['ename']}")

    run_sync(client.wait_for_ready)(timeout=60)
    run_sync(client.execute_interactive)(code, output_hook=hook, timeout=60)
    return "".join(printed)


@pytest.fixture
def template():
    made = kernel_template.Template(WARM, {**os.environ, "CLOSEDLOOP_TEST_MARK": "template"})
    yield made
    made.stop()
    assert not Path(made.folder).exists()
    assert not stopping.alive(made.process.pid)


def test_a_forked_kernel_runs_in_its_own_folder_session_and_environment(template, monkeypatch):
    monkeypatch.setenv("CLOSEDLOOP_TEST_MARK", "kernel")  # the template has "template"
    kernel = report.Kernel(WARM, template)
    try:
        found = _run(
            kernel,
            "import os, sys\n"
            "print(os.getcwd(), os.getppid(), os.getpgid(0) == os.getpid(), os.getpid())\n"
            "print(os.environ['CLOSEDLOOP_TEST_MARK'], 'closedloop.stopping' in sys.modules)\n"
            "print(sys.argv[0].endswith('/ipykernel_launcher.py'), __name__)",
        ).split()
        cwd, parent, own_group, pid = found[:4]
        assert cwd == str(Path(kernel.folder).resolve())
        assert int(parent) == template.process.pid  # the template's child, below this process
        assert own_group == "True"  # a session of its own, as launch_kernel starts one
        assert int(pid) in stopping.descendants()
        assert found[4:] == ["kernel", "True", "True", "__main__"]
    finally:
        kernel.stop()
    assert not stopping.alive(int(pid))


def test_forked_kernels_share_nothing_but_the_imports(template):
    first, second = report.Kernel(WARM, template), report.Kernel(WARM, template)
    try:
        assert first.manager.provisioner.pid != second.manager.provisioner.pid
        assert _run(first, "secret = 42\nprint(secret)") == "42\n"
        assert _run(second, "print(secret)") == "error NameError"
        assert _run(second, "import closedloop.stopping as s\nprint(s.__name__)").strip() == (
            "closedloop.stopping"
        )
    finally:
        first.stop()
        second.stop()


def test_an_interrupt_reaches_a_forked_kernel(template):
    kernel = report.Kernel(WARM, template)
    try:
        assert _run(kernel, "print(1)") == "1\n"
        group = kernel.manager.provisioner.pgid
        timer = threading.Timer(1.0, os.killpg, (group, signal.SIGINT))
        timer.start()
        assert _run(kernel, "import time\ntime.sleep(60)") == "error KeyboardInterrupt"
        assert _run(kernel, "print(2)") == "2\n"  # still alive after the interrupt
    finally:
        kernel.stop()


def test_a_kernel_ends_with_its_template():
    template = kernel_template.Template(WARM, dict(os.environ))
    kernel = report.Kernel(WARM, template)
    try:
        pid = kernel.manager.provisioner.pid
        assert _run(kernel, "print(3)") == "3\n"
        template.process.kill()
        template.process.wait()
        process = kernel.manager.provisioner.process
        process.wait(timeout=30)  # ipykernel's parent poller ends it
        assert not stopping.alive(pid)
    finally:
        kernel.stop()
        template.stop()


def test_a_kernel_that_died_stops_cleanly(template):
    """A forked kernel killed outright: stopping it raises nothing and removes its folder, as
    for a kernel started by Popen."""
    kernel = report.Kernel(WARM, template)
    assert _run(kernel, "print(6)") == "6\n"
    os.kill(kernel.manager.provisioner.pid, signal.SIGKILL)
    kernel.manager.provisioner.process.wait(timeout=30)
    kernel.stop()
    assert not Path(kernel.folder).exists()


def test_a_worker_asking_a_template_that_just_ended_gets_a_kernel(monkeypatch):
    monkeypatch.setattr(report, "CAMPAIGN_MODULES", WARM)
    monkeypatch.setattr(report, "_READY", [])
    ended = kernel_template.Template(WARM, dict(os.environ))
    ended.process.kill()
    ended.process.wait()
    monkeypatch.setattr(ended.process, "poll", lambda: None)  # ended after the worker looked
    monkeypatch.setattr(report, "_TEMPLATE", [ended])
    report._start_ready()
    assert not report._TEMPLATE
    assert _run(report._READY[0], "print(7)") == "7\n"
    report._stop_ready()


def test_a_gone_template_is_one_clear_error():
    template = kernel_template.Template(WARM, dict(os.environ))
    template.process.kill()
    template.process.wait()
    with pytest.raises(RuntimeError, match="kernel template ended"):
        report.Kernel(WARM, template).manager.provisioner.pid  # noqa: B018
    template.stop()


def test_a_worker_whose_template_ended_starts_its_kernels_itself(monkeypatch):
    monkeypatch.setattr(report, "CAMPAIGN_MODULES", WARM)
    monkeypatch.setattr(report, "_TEMPLATE", [])
    monkeypatch.setattr(report, "_READY", [])
    report._start_ready()  # a run-all worker's first kernel: forked from its new template
    assert isinstance(report._READY[0].manager.provisioner, kernel_template.Forked)
    assert _run(report._READY[0], "print(4)") == "4\n"
    report._READY.pop().stop()
    template = report._TEMPLATE[0]
    template.process.kill()
    template.process.wait()
    report._start_ready()  # the next: started by jupyter_client, as without a template
    assert not report._TEMPLATE
    assert not isinstance(report._READY[0].manager.provisioner, kernel_template.Forked)
    assert _run(report._READY[0], "print(5)") == "5\n"
    report._stop_ready()
    assert not Path(template.folder).exists()


def test_only_this_interpreters_ipykernel_is_forked(template):
    with pytest.raises(ValueError, match="not an ipykernel command"):
        template.fork(["/usr/bin/env", "python3", "-m", "ipykernel_launcher"], "/", {})


def test_run_all_kernels_draw_nothing_ahead(monkeypatch):
    """run-all's workers keep both cores busy: their kernels get the switch turned off."""
    monkeypatch.delenv(ahead.SWITCH, raising=False)
    assert ahead.SWITCH not in report._kernel_environment()
    assert report._kernel_environment(ahead=False)[ahead.SWITCH] == "0"
    monkeypatch.setenv(ahead.SWITCH, "0")
    assert not ahead.available()
