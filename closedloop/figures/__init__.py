"""Figures: seaborn charts, one module per analysis, sharing one style.

Every figure function takes the package's result frame, returns a matplotlib ``Figure`` and
never calls ``plt.show()``; notebooks display it, reports save it as PNG.
"""

from __future__ import annotations

import matplotlib
import seaborn as sns

#: fonts tried in order; the CJK ones carry the method's Chinese terms
FONTS = ["DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei"]
PALETTE = "deep"


def use_style() -> None:
    """The package's look: seaborn whitegrid, readable sizes, CJK-capable font fallback."""
    sns.set_theme(style="whitegrid", palette=PALETTE, rc={"figure.dpi": 110})
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["font.sans-serif"] = FONTS + matplotlib.rcParams["font.sans-serif"]
    matplotlib.rcParams["axes.unicode_minus"] = False
