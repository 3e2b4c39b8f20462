"""Chinese figures on a machine with no CJK font: the package brings its own and registers it,
whatever matplotlib's font cache holds; with no CJK font at all, a Chinese report is refused in
one line instead of being drawn in boxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib import font_manager

from closedloop import figures, fonts
from closedloop.cli import main
from closedloop.datasets import write_demo

ROOT = Path(__file__).resolve().parents[1]

DRAW_CHINESE = """
import warnings
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from closedloop import figures, fonts

warnings.simplefilter("error")  # a missing glyph is a failure here, not a warning
figures.use_style()
fig, ax = plt.subplots()
ax.bar(["对照组", "邮件"], [1, 2])
title = ax.set_title("客户金字塔 · 提升率 (lift) − 目标达成")
fig.savefig("zh.png")
paths = font_manager.fontManager._find_fonts_by_props(title.get_fontproperties())
chars = {c for c in title.get_text() if not c.isascii()}
drawn = {c for p in paths for c in chars if FT2Font(str(p)).get_char_index(ord(c))}
assert drawn == chars, sorted(chars - drawn)
print(figures.cjk_font())
"""


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environ, capture_output=True, text=True
    )


def test_a_cold_font_cache_draws_chinese(tmp_path):
    """An empty MPLCONFIGDIR: matplotlib builds its cache from a system with (here) no CJK font,
    and the figures still draw every Chinese glyph."""
    cache = tmp_path / "mpl"
    cache.mkdir()
    done = _python(DRAW_CHINESE, tmp_path, MPLCONFIGDIR=str(cache))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in figures.CJK_FONTS
    assert "missing from font" not in done.stderr and "Glyph" not in done.stderr
    assert (tmp_path / "zh.png").stat().st_size > 5_000


def test_a_cjk_font_installed_after_the_cache_is_found(tmp_path):
    """matplotlib lists the system's fonts once, in its cache; a CJK font installed later is
    added (and the cache saved) the next time the style is used."""
    system = [f for f in font_manager.findSystemFonts() if "wqy" in f.lower() or "cjk" in f.lower()]
    if system:
        pytest.skip(f"this machine has a system CJK font ({Path(system[0]).name}): nothing to add")
    cache, home = tmp_path / "mpl", tmp_path / "home"
    cache.mkdir()
    home.mkdir()
    env = {"MPLCONFIGDIR": str(cache), "HOME": str(home), "XDG_DATA_HOME": str(home / "share")}
    built = _python("import matplotlib.font_manager", tmp_path, **env)
    assert built.returncode == 0, built.stderr[-2000:]
    installed = home / ".fonts" / "LaterCJK.otf"
    installed.parent.mkdir()
    installed.write_bytes(fonts.shipped_cjk().read_bytes())
    found = _python(
        "from closedloop import figures, fonts\n"
        "fonts.shipped_cjk = lambda: None  # only the font installed after the cache\n"
        "print(figures.cjk_font())",
        tmp_path,
        **env,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    # the font installed later (or a system CJK font the machine already had) is found
    assert found.stdout.strip() in figures.CJK_FONTS
    (listing,) = cache.glob("fontlist-*.json")
    assert str(installed) in {font["fname"] for font in json.loads(listing.read_text())["ttflist"]}


@pytest.fixture
def no_cjk_font(monkeypatch):
    """A machine with no CJK font anywhere, and without the packaged one."""
    figures.register_fonts.cache_clear()
    manager = font_manager.fontManager
    latin = [f for f in manager.ttflist if not figures._draws_chinese(f.fname)]
    monkeypatch.setattr(manager, "ttflist", latin)
    monkeypatch.setattr(fonts, "shipped_cjk", lambda: None)
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
    yield
    figures.register_fonts.cache_clear()


def test_the_packaged_font_draws_chinese():
    path = fonts.shipped_cjk()
    assert path is not None and path.suffix == ".otf"
    assert figures._draws_chinese(str(path))
    assert figures.cjk_font() in figures.CJK_FONTS


def test_without_any_cjk_font_chinese_figures_are_refused(no_cjk_font):
    assert figures.cjk_font() is None
    figures.use_style()
    assert plt.rcParams["font.family"] == ["DejaVu Sans"]
    fig, ax = plt.subplots()
    ax.set_title("customer pyramid")
    try:
        assert figures.localize(fig, "en") is fig
        with pytest.raises(figures.MissingCJKFont, match="apt-get install fonts-noto-cjk"):
            figures.localize(fig, "zh")
    finally:
        plt.close(fig)


def test_without_any_cjk_font_a_chinese_run_fails_in_one_line(no_cjk_font, tmp_path, capsys):
    folder = write_demo(tmp_path / "demo", seed=1, n_customers=500)
    out = tmp_path / "reports"
    code = main(["run", str(folder / "plan.yaml"), "--out", str(out), "--language", "zh"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Chinese" in err and "pylopdf-fonts-zh-cn" in err and "fonts-noto-cjk" in err
    assert not out.exists()  # refused before anything ran
