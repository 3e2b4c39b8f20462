"""Report kernels forked from a template: one process imports a report kernel's modules once,
and each later kernel is a fork of it, so that ``run-all`` pays the imports (pandas, seaborn,
ipykernel: about 2.7 s of CPU) once per pool worker instead of once per report.

Each kernel is still a new process that has run nothing but the imports, started with the
command, working folder and environment that jupyter_client gives it (:class:`Forked` is the
documented extension point for that, a kernel provisioner). The template is a child of the
process that made it, and the kernels are the template's: a stopped run reaches all of them
(:mod:`closedloop.stopping`); the template ends when its maker closes its pipe or dies, and a
kernel whose template is gone ends too (ipykernel's parent poller). Linux only (``os.fork``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from jupyter_client.provisioning import LocalProvisioner

from closedloop import stopping

#: the kernel command this template can fork: ``python -m ipykernel_launcher ...``
LAUNCHER = ["-m", "ipykernel_launcher"]


def available() -> bool:
    """Whether kernels can be forked here."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class Template:
    """The template process: ``warm`` imported, waiting for :meth:`fork` requests on a pipe. It
    runs with ``env`` in an empty folder of its own, as a kernel does (a run stopped by a signal
    removes it)."""

    def __init__(self, warm: tuple[str, ...], env: dict):
        self.folder = tempfile.mkdtemp(prefix=f"{stopping.KERNEL_FOLDER}{os.getpid()}-")
        requests, self._requests = os.pipe()
        self._answers, answers = os.pipe()
        code = "from closedloop.kernel_template import serve; serve()"
        argv = [sys.executable, "-c", code, str(requests), str(answers), *warm]
        try:
            self.process = subprocess.Popen(
                argv,
                cwd=self.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                pass_fds=(requests, answers),
            )
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        finally:
            os.close(requests)
            os.close(answers)
        self._write = os.fdopen(self._requests, "w", encoding="utf-8")
        self._read = os.fdopen(self._answers, "r", encoding="utf-8")
        self._lock = threading.Lock()
        self._unanswered: list[_Process] = []  # asked for, in order, whose id is still unread

    def fork(self, argv: list[str], cwd: str, env: dict) -> _Process:
        """A kernel forked from the template, running ``argv`` (a kernel command that starts
        with this interpreter and :data:`LAUNCHER`) in ``cwd`` with ``env``. It returns at
        once: the process id is read from the template when first asked for, by then done
        with its imports."""
        if argv[: len(LAUNCHER) + 1] != [sys.executable, *LAUNCHER]:
            raise ValueError(f"not an ipykernel command of this interpreter: {argv[:3]}")
        request = {"argv": argv[len(LAUNCHER) + 1 :], "cwd": cwd, "env": env}
        process = _Process(self)
        with self._lock:
            try:
                self._write.write(json.dumps(request) + "\n")
                self._write.flush()
            except BrokenPipeError:
                raise self._ended() from None
            self._unanswered.append(process)
        return process

    def _ended(self) -> RuntimeError:
        return RuntimeError(f"the kernel template ended (exit code {self.process.wait()})")

    def _answer(self, process: _Process) -> int:
        """``process``'s id, reading the template's answers (in the order asked) up to it."""
        with self._lock:
            while process._pid is None:
                answer = self._read.readline()
                if not answer:
                    raise self._ended()
                found = json.loads(answer)
                if "error" in found:
                    raise RuntimeError(f"the kernel template could not fork: {found['error']}")
                self._unanswered.pop(0)._pid = int(found["pid"])
        return process._pid

    def stop(self) -> None:
        """End the template (its kernels are shut down by their managers)."""
        for stream in (self._write, self._read):
            with contextlib.suppress(OSError):  # a broken pipe: the template is gone already
                stream.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def serve() -> None:
    """The template process (``python -c``): import the modules named after the two pipe fds,
    then fork a kernel for each request until the request pipe closes."""
    requests, answers, *warm = sys.argv[1:]
    if sys.path and sys.path[0] == "":  # as ipykernel_launcher: the kernel adds its own folder
        del sys.path[0]
    # the backend ipykernel gives a kernel, set before matplotlib is imported, as in a kernel
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import ipykernel.kernelapp  # noqa: F401

    for module in warm:
        __import__(module)
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's to handle, not ours
    signal.signal(signal.SIGCHLD, _reap)
    read = os.fdopen(int(requests), "r", encoding="utf-8")
    write = os.fdopen(int(answers), "w", encoding="utf-8")
    for line in read:
        request = json.loads(line)
        try:
            pid = os.fork()
        except OSError as exc:
            write.write(json.dumps({"error": str(exc)}) + "\n")
        else:
            if pid == 0:
                read.close()
                write.close()
                _kernel(**request, interrupt=interrupt)
            write.write(json.dumps({"pid": pid}) + "\n")
        write.flush()


def _reap(signum, frame) -> None:
    """Collect the template's ended kernels, so that none lingers as a zombie."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _kernel(argv: list[str], cwd: str, env: dict, interrupt) -> None:
    """The forked kernel: as ``launch_kernel`` starts one (a session of its own, the given
    folder and environment, this template as the parent it polls), then ipykernel's own start;
    it leaves through ``SystemExit``, as a kernel process does."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, interrupt)  # as the template was started
    os.setsid()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env, JPY_PARENT_PID=str(os.getppid()))
    # ipykernel read JPY_PARENT_PID as the template imported it: the parent to poll, given again
    launcher = importlib.util.find_spec("ipykernel_launcher").origin
    sys.argv = [launcher, *argv, f"--IPKernelApp.parent_handle={os.getppid()}"]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
    sys.exit(0)


class Forked(LocalProvisioner):
    """A kernel provisioner (jupyter_client) whose kernel is forked from a :class:`Template`
    instead of started by ``Popen``; it signals the kernel's session (the kernel's own id), as
    the local one does."""

    template: Template | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs):
        self.cwd = kwargs.get("cwd") or os.getcwd()
        env = kwargs.get("env") or os.environ
        self.process = self.template.fork(cmd, str(self.cwd), dict(env))
        return self.connection_info

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @pid.setter
    def pid(self, value) -> None:  # set by the local provisioner: the process knows its own
        pass

    pgid = pid


class _Process:
    """What the provisioner asks of a kernel's ``Popen``, for a process that is the template's
    child rather than this one's (the template reaps it)."""

    def __init__(self, template: Template):
        self._template = template
        self._pid: int | None = None
        self.returncode: int | None = None
        self.stdin = self.stdout = self.stderr = None

    @property
    def pid(self) -> int:
        return self._pid if self._pid is not None else self._template._answer(self)

    def poll(self) -> int | None:
        if self.returncode is None and not stopping.alive(self.pid):
            self.returncode = 0  # its status is the template's to collect
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """As ``Popen.send_signal``: nothing once the process has ended."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)
