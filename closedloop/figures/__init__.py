"""Figures: seaborn charts, one module per analysis, sharing one style.

Every figure function takes the package's result frame, returns a matplotlib ``Figure`` and
never calls ``plt.show()``; notebooks display it, reports save it as PNG.

Chinese labels need a font with Chinese glyphs. The package ships one (:mod:`closedloop.fonts`)
and registers it with matplotlib itself, so a machine with no CJK font draws Chinese all the same, whatever matplotlib's font
cache holds. A CJK font installed on the system after matplotlib built its cache is picked up
too (the cache is refreshed).
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import matplotlib.text
import seaborn as sns
from matplotlib import font_manager, ft2font

from closedloop import fonts
from closedloop.glossary import Language, translate

#: the CJK families used, in order: the shipped one, then those a system may have
CJK_FONTS = [
    "Noto Sans SC",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
]
#: fonts tried in order, glyph by glyph: Latin from DejaVu Sans, Chinese from the CJK ones
FONTS = ["DejaVu Sans", *CJK_FONTS]
#: characters a font must draw to count as one for Chinese labels
CHINESE_SAMPLE = "计划执行检查处理客户金字塔提升率"
PALETTE = "deep"


class MissingCJKFont(RuntimeError):
    """No font with Chinese glyphs: a Chinese report would draw boxes instead of characters."""


def _draws_chinese(path: str) -> bool:
    try:
        font = ft2font.FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(char)) for char in CHINESE_SAMPLE)


def _refresh_system_fonts() -> None:
    """Add system fonts that matplotlib's cached font list predates, and save the list.

    matplotlib scans the system's fonts once, when it first builds its cache; a CJK font
    installed later is invisible to it until the cache is rebuilt.
    """
    manager = font_manager.fontManager
    known = {font.fname for font in manager.ttflist}
    new = [path for path in font_manager.findSystemFonts() if path not in known]
    added = False
    for path in new:
        try:
            manager.addfont(path)
            added = True
        except Exception:  # a file FreeType cannot read; matplotlib skips those too
            continue
    if added:  # matplotlib logs, and goes on, when the cache folder is read-only
        version = font_manager.FontManager.__version__
        font_manager.json_dump(
            manager, Path(matplotlib.get_cachedir()) / f"fontlist-v{version}.json"
        )


@functools.cache
def register_fonts() -> tuple[str, ...]:
    """Make the CJK fonts known to matplotlib; the CJK families it can use, best first.

    Runs once per process: the shipped font is added to matplotlib's font list (in memory,
    never to its cache, so the cache never points at a file that may go away), system fonts
    missing from the cache are added and the cache saved.
    """
    manager = font_manager.fontManager
    if not any(font.name in CJK_FONTS for font in manager.ttflist):
        _refresh_system_fonts()  # a system CJK font installed after the cache was built
    shipped = fonts.shipped_cjk()
    if shipped is not None and str(shipped) not in {font.fname for font in manager.ttflist}:
        manager.addfont(str(shipped))
    usable = []
    for family in CJK_FONTS:
        paths = [font.fname for font in manager.ttflist if font.name == family]
        if paths and _draws_chinese(paths[0]):
            usable.append(family)
    return tuple(usable)


def cjk_font() -> str | None:
    """The font family that draws the figures' Chinese, or None if there is none."""
    families = register_fonts()
    return families[0] if families else None


def require_cjk_font() -> str:
    """The family that draws Chinese; :class:`MissingCJKFont` with what to do if there is none."""
    family = cjk_font()
    if family is None:
        raise MissingCJKFont(
            "no font with Chinese glyphs for --language zh: closedloop depends on "
            "pylopdf-fonts-zh-cn (Noto Sans SC); reinstall it (pip install pylopdf-fonts-zh-cn) "
            "or install a CJK font (Debian: apt-get install fonts-noto-cjk)"
        )
    return family


def use_style() -> None:
    """The package's look: seaborn whitegrid, readable sizes, CJK-capable font fallback."""
    sns.set_theme(style="whitegrid", palette=PALETTE, rc={"figure.dpi": 110})
    # matplotlib falls back glyph by glyph only across the families named in font.family
    cjk = register_fonts()
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", *cjk]
    matplotlib.rcParams["axes.unicode_minus"] = False
    _text_as_text()


def _text_as_text() -> None:
    """Labels are data (store, arm, segment names): a ``$`` in one is a dollar sign, never the
    start of matplotlib's math markup."""
    matplotlib.rcParams["text.parse_math"] = False


_text_as_text()  # also for the figures that draw without use_style()


def localize(fig, language: Language = "en"):
    """The figure's wording in ``language``: titles, axis labels, legends and notes go through
    :func:`closedloop.glossary.translate`; tick labels are data (arms, segments) and stay.

    Chinese needs a font with its glyphs: :class:`MissingCJKFont` rather than a figure of boxes.
    """
    if language == "en":
        return fig
    require_cjk_font()
    ticks = {id(t) for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels())}
    for text in fig.findobj(matplotlib.text.Text):
        if id(text) not in ticks and text.get_text():
            text.set_text(translate(text.get_text(), language))
    return fig
