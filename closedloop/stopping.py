"""Stopping a run on SIGINT / SIGTERM: every process it started goes, and so do its partial folders.

A run's processes are this one's descendants: ``run-all``'s pool workers and the kernel each run
starts (papermill's kernel is a child of its worker, in a session of its own, so a terminal's
Ctrl-C does not reach it and a process group would miss it). :func:`stop_descendants` finds them
through ``/proc`` by their parent ids, freezes them (SIGSTOP, again until no new child appears:
a process killed first would orphan a child it forked meanwhile) and then kills them. The exit
status is the shell's: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
    """The shell's exit status for a process stopped by ``signum``: 128 + the signal number."""
    return 128 + int(signum)


def _parents() -> dict[int, int]:
    """Every process's parent id, read from ``/proc/<pid>/stat``."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int | None = None) -> set[int]:
    """The live processes below ``pid`` (default: this process), children of children included."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pids, signum) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def stop_descendants(grace: float = 5.0) -> set[int]:
    """Freeze, then kill, every process below this one; returns their ids once they are gone
    (or ``grace`` seconds have passed)."""
    stopped: set[int] = set()
    for _ in range(50):  # freeze the tree: no process may start another meanwhile
        new = descendants() - stopped
        if not new:
            break
        _signal(new, signal.SIGSTOP)
        stopped |= new
    _signal(stopped, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:  # reap our own children
                pass
        if not any(alive(pid) for pid in stopped):
            break
        time.sleep(0.05)
    return stopped


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
        return stat[stat.rfind(")") + 2 :].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def partial_pid(folder: Path) -> int | None:
    """The process id a ``.partial-<run-id>-<pid>`` folder's name ends with, else None."""
    if not folder.name.startswith(".partial-"):
        return None
    tail = folder.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def remove_partials(out: Path, pids: set[int]) -> list[Path]:
    """Remove the partial folders in ``out/<campaign>/`` that the processes ``pids`` wrote."""
    removed = []
    for folder in Path(out).glob("*/.partial-*"):
        if partial_pid(folder) in pids:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


#: a report's kernel works in an empty temporary folder named this, the id of the process that
#: made it and a random part (:class:`closedloop.report.Kernel`)
KERNEL_FOLDER = "closedloop-kernel-"


def remove_kernel_folders(pids: set[int]) -> None:
    """Remove the kernels' working folders that the processes ``pids`` made."""
    for pid in pids:
        for folder in Path(tempfile.gettempdir()).glob(f"{KERNEL_FOLDER}{pid}-*"):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def stop_on_signals(command: str, out: Path):
    """While the block runs, SIGINT / SIGTERM stop every process this one started, remove the
    partial folders they and this process wrote in ``out`` and exit with 130 / 143."""

    def stop(signum, frame):
        for each in SIGNALS:  # a second Ctrl-C must not interrupt the clean-up
            signal.signal(each, signal.SIG_IGN)
        pids = stop_descendants() | {os.getpid()}
        removed = remove_partials(out, pids)
        remove_kernel_folders(pids)
        name = signal.Signals(signum).name
        print(
            f"{command}: stopped by {name}: {len(pids) - 1} process(es) ended,"
            f" {len(removed)} partial folder(s) removed",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os._exit(exit_code(signum))

    previous = {each: signal.signal(each, stop) for each in SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def worker_signals() -> None:
    """A pool worker's signals: the parent stops it; a terminal's Ctrl-C (sent to the whole
    foreground group) is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
