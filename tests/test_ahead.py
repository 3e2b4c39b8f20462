"""Sections drawn ahead in a forked copy: the same outputs and files as drawn in place, a
section the copy could not draw drawn by the caller, nothing left behind."""

from __future__ import annotations

import os
import time
import warnings

import pytest

from closedloop import ahead, pdca, sections, stopping
from closedloop.datasets import write_demo

pytestmark = pytest.mark.skipif(not ahead.available(), reason="needs os.fork and two cores")


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    demo = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=2_000)
    return pdca.run_check(demo / "plan.yaml", "2026-03-31")


def _shown(parts, folder) -> list[str]:
    return [getattr(p, "data", repr(p)).replace(str(folder), "OUT") for p in parts]


def _no_copy_left(pid: int) -> None:
    """The copy has ended and was reaped, its files removed."""
    assert ahead._RUN is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_drawn_ahead_equals_drawn_in_place(checked, tmp_path, language):
    check, next_plan = checked
    shown = {}
    for way in ("in_place", "ahead"):
        out = tmp_path / way
        ledger = out / "ledger.csv"
        if way == "ahead":
            sections.draw_ahead(check, next_plan, "r1", ledger, language, str(out))
            run = ahead._RUN
            assert run is not None
        parts = [
            *sections.lift(check, language, str(out)),
            *sections.funnel(check, language, str(out)),
            *sections.customer_base(check, language, str(out)),
            *sections.cross_sell(check, language, str(out)),
            *sections.history(check, next_plan, "r1", ledger, language, str(out)),
        ]
        shown[way] = _shown(parts, out)
        if way == "ahead":  # all three were the copy's
            assert run.done == {0: True, 1: True, 2: True}
    assert shown["ahead"] == shown["in_place"]
    assert any("pyramid.png" in s or "fig-pyramid" in s for s in shown["ahead"])
    names = sorted(p.name for p in (tmp_path / "in_place" / "figures").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ahead" / "figures").iterdir())
    assert {"funnel.png", "pyramid.png", "migration.png", "history.png"} <= set(names)
    for name in names:
        drawn = (tmp_path / "ahead" / "figures" / name).read_bytes()
        assert drawn == (tmp_path / "in_place" / "figures" / name).read_bytes(), name
    _no_copy_left(run.pid)
    assert not run.folder.exists()


def test_other_arguments_are_drawn_by_the_caller(checked, tmp_path):
    check, next_plan = checked
    sections.draw_ahead(check, next_plan, "r1", tmp_path / "ledger.csv", "en", str(tmp_path / "a"))
    # another language and folder than the copy drew: drawn here, into that folder
    parts = sections.customer_base(check, "zh", str(tmp_path / "b"))
    assert any("客户金字塔" in getattr(p, "data", "") for p in parts)
    assert (tmp_path / "b" / "figures" / "pyramid.png").is_file()
    run = ahead._RUN
    assert run is not None  # the copy's own calls are still to be taken
    run.stop()
    _no_copy_left(run.pid)
    assert not run.folder.exists()


@ahead.drawable
def _only_here(parent: int) -> str:
    """Fails in the forked copy, works in the caller."""
    if os.getpid() != parent:
        raise RuntimeError("not in the copy")
    return "drawn by the caller"


@ahead.drawable
def _warns(value: int) -> int:
    warnings.warn(f"a note about {value}", UserWarning, stacklevel=1)
    return value * 2


@ahead.drawable
def _slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_section_the_copy_cannot_draw_is_drawn_by_the_caller():
    ahead.draw([(_only_here, (os.getpid(),)), (_warns, (21,))])
    run = ahead._RUN
    started = time.perf_counter()
    assert _only_here(os.getpid()) == "drawn by the caller"
    with pytest.warns(UserWarning, match="a note about 21"):  # the copy's warning, shown here
        assert _warns(21) == 42
    assert time.perf_counter() - started < 30
    _no_copy_left(run.pid)


def test_stop_ends_a_copy_still_drawing():
    ahead.draw([(_slow, (60.0,))])
    run = ahead._RUN
    folder = run.folder
    assert folder.is_dir()
    started = time.perf_counter()
    run.stop()
    assert time.perf_counter() - started < 10
    assert not folder.exists()
    _no_copy_left(run.pid)
    assert _slow(0.0) == 0.0  # drawn by the caller: there is no copy any more


def test_a_runs_copy_keeps_its_files_in_the_kernels_folder(tmp_path, monkeypatch):
    kernel = tmp_path / f"{stopping.KERNEL_FOLDER}1-x"
    kernel.mkdir()
    monkeypatch.chdir(kernel)  # where a run's kernel works, removed if the run is stopped
    ahead.draw([(_slow, (60.0,))])
    run = ahead._RUN
    assert run.folder.parent == kernel
    run.stop()
    _no_copy_left(run.pid)


def test_nothing_is_drawn_ahead_where_fork_is_missing(monkeypatch):
    monkeypatch.setattr(ahead.sys, "platform", "darwin")
    assert not ahead.available()
    ahead.draw([(_slow, (60.0,))])
    assert ahead._RUN is None


def test_a_large_kernel_is_not_copied(monkeypatch):
    monkeypatch.setattr(ahead, "MAX_RESIDENT", 2**20)  # 1 MB: every Python process is larger
    assert not ahead.available()
    ahead.draw([(_slow, (60.0,))])
    assert ahead._RUN is None
