"""Sections drawn ahead: a report's slower sections drawn in a forked copy of its kernel while
the kernel runs the cells before them, so that the figures use two cores instead of one.

A report notebook calls :func:`draw` with the sections to draw ahead, once its Check is loaded;
a section function marked :func:`drawable` then returns the copy's result for the same
arguments instead of drawing it again, and draws it itself when the copy has none (the section
failed there, or the copy was stopped). The outputs are the same either way: the copy is the
kernel's own state at the fork, and writes the same figure files (tests/test_ahead.py). It runs
on Linux with two cores or more (``os.fork``), for a kernel under :data:`MAX_RESIDENT`, unless
the environment variable :data:`SWITCH` is ``0`` (``run-all`` sets it: its workers keep every
core busy already); elsewhere :func:`draw` does nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import os
import pickle
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from closedloop import stopping

#: argument values that are keyed by value; any other argument is keyed by identity (the
#: forked copy shares the kernel's objects at the fork, at the same addresses)
_BY_VALUE = (str, bytes, int, float, bool, type(None), Path)
#: the largest kernel that is copied (bytes resident): the copy shares the kernel's memory
#: until either writes to it, and a kernel that large holds a warehouse-scale Check, whose run
#: takes a minute or more, of which the figures are a small part
MAX_RESIDENT = 2**30
#: the environment variable that turns drawing ahead off when it is ``0``
SWITCH = "CLOSEDLOOP_DRAW_AHEAD"


def drawable(function: Callable) -> Callable:
    """Mark a section function that :func:`draw` may draw ahead."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def section(*args, **kwargs):
        if _RUN is not None:
            found = _RUN.take(_key(function, signature, args, kwargs))
            if found is not None:
                return found
        return function(*args, **kwargs)

    return section


def _key(function, signature, args, kwargs) -> tuple:
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    values = (
        (name, value if isinstance(value, _BY_VALUE) else ("id", id(value)))
        for name, value in bound.arguments.items()
    )
    return (function.__qualname__, *values)


def available() -> bool:
    """Whether sections can be drawn ahead here: ``os.fork`` on Linux, a second core, a
    process under :data:`MAX_RESIDENT`, and :data:`SWITCH` not ``0``."""
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        return False
    if os.environ.get(SWITCH) == "0":
        return False
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return len(os.sched_getaffinity(0)) >= 2 and resident <= MAX_RESIDENT


def draw(calls: list[tuple[Callable, tuple]]) -> None:
    """Draw ``calls`` (a :func:`drawable` section and its positional arguments, in the order the
    notebook reaches them) in a forked copy of this process, one after the other."""
    global _RUN
    if _RUN is not None:
        _RUN.stop()
    if calls and available():
        _RUN = _Ahead(calls)


class _Ahead:
    """The forked copy of one :func:`draw`: its results, a file each, announced on a pipe."""

    def __init__(self, calls):
        # in a run's kernel folder, which a run stopped by a signal removes with the kernel
        here = Path.cwd()
        inside = here if here.name.startswith(stopping.KERNEL_FOLDER) else None
        self.folder = Path(tempfile.mkdtemp(prefix="closedloop-ahead-", dir=inside))
        self.keys = {}
        for i, (section, args) in enumerate(calls):
            function = section.__wrapped__
            self.keys[_key(function, inspect.signature(function), args, {})] = i
        self.done: dict[int, bool] = {}  # call -> whether the copy drew it
        read, write = os.pipe()
        with warnings.catch_warnings():
            # the copy runs only the sections' own code: none of the kernel's other threads'
            warnings.simplefilter("ignore", DeprecationWarning)
            self.pid = os.fork()
        if self.pid == 0:
            os.close(read)
            _child(calls, self.folder, write)
        os.close(write)
        self.pipe = os.fdopen(read, "rb", buffering=0)
        atexit.register(self.stop)

    def take(self, key: tuple):
        """The copy's result for ``key``, waiting for it if it is being drawn; None if the copy
        has none."""
        i = self.keys.pop(key, None)
        if i is None:
            return None
        while i not in self.done and self.pipe is not None:
            line = self.pipe.readline()
            if not line:  # the copy ended
                self._reap()
                break
            done, drawn = line.split()
            self.done[int(done)] = drawn == b"drawn"
        if not self.done.get(i):
            return None
        path = self.folder / f"{i}.pickle"
        outcome, caught = pickle.loads(path.read_bytes())
        path.unlink()
        for message, category, filename, lineno in caught:  # as the kernel shows them
            warnings.showwarning(message, category, filename, lineno)
        if not self.keys:
            self.stop()
        return outcome

    def _reap(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
            self.pipe = None
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def stop(self) -> None:
        """Stop the copy if it still runs, and remove its files."""
        global _RUN
        if self.pipe is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap()
        shutil.rmtree(self.folder, ignore_errors=True)
        atexit.unregister(self.stop)
        if _RUN is self:
            _RUN = None


def _child(calls, folder: Path, write: int) -> None:
    """The forked copy: draw each call, save what it returns, say so; never return."""
    code = 0
    try:
        parent = os.getppid()
        # the kernel's streams belong to its other threads, which the copy does not have
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        for i, (section, args) in enumerate(calls):
            if os.getppid() != parent:  # the kernel has gone
                break
            with warnings.catch_warnings(record=True) as caught:
                try:
                    outcome = section.__wrapped__(*args)
                except Exception:  # the kernel draws it, and shows the error in its cell
                    os.write(write, b"%d failed\n" % i)
                    continue
            shown = [(w.message, w.category, w.filename, w.lineno) for w in caught]
            (folder / f"{i}.pickle").write_bytes(pickle.dumps((outcome, shown), protocol=5))
            os.write(write, b"%d drawn\n" % i)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


_RUN: _Ahead | None = None
