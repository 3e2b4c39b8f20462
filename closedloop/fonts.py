"""The Chinese font the package ships (Noto Sans SC, SIL Open Font License, from the
``pylopdf-fonts-zh-cn`` package): figures register it with matplotlib, report pages embed the
part of it they use, so Chinese is drawn on a machine that has no CJK font."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

#: the font the package ships for Chinese: (module, file)
SHIPPED_CJK = ("pylopdf_fonts_zh_cn", "NotoSansSC-Regular.otf")


def shipped_cjk() -> Path | None:
    """The packaged Noto Sans SC file, or None if that package is not installed."""
    module, name = SHIPPED_CJK
    try:
        path = Path(str(importlib.resources.files(module) / name))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None
