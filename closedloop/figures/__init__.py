"""Figures: seaborn charts, one module per analysis, sharing one style.

Every figure function takes the package's result frame, returns a matplotlib ``Figure`` and
never calls ``plt.show()``; notebooks display it, reports save it as PNG.
"""

from __future__ import annotations

import matplotlib
import matplotlib.text
import seaborn as sns
from matplotlib import font_manager

from closedloop.glossary import Language, translate

#: fonts tried in order; the CJK ones carry the method's Chinese terms
FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei"]
PALETTE = "deep"


def use_style() -> None:
    """The package's look: seaborn whitegrid, readable sizes, CJK-capable font fallback."""
    sns.set_theme(style="whitegrid", palette=PALETTE, rc={"figure.dpi": 110})
    # matplotlib falls back glyph by glyph only across the families named in font.family
    installed = {font.name for font in font_manager.fontManager.ttflist}
    matplotlib.rcParams["font.family"] = [f for f in FONTS if f in installed] or ["sans-serif"]
    matplotlib.rcParams["axes.unicode_minus"] = False


def localize(fig, language: Language = "en"):
    """The figure's wording in ``language``: titles, axis labels, legends and notes go through
    :func:`closedloop.glossary.translate`; tick labels are data (arms, segments) and stay."""
    if language == "en":
        return fig
    ticks = {id(t) for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels())}
    for text in fig.findobj(matplotlib.text.Text):
        if id(text) not in ticks and text.get_text():
            text.set_text(translate(text.get_text(), language))
    return fig
