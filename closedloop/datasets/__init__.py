"""Data sets: the real public ones (CDNOW, Hillstrom, Groceries) and the deterministic demo retailer."""

from closedloop.datasets.demo import Demo, make_demo, write_demo
from closedloop.datasets.public import (
    cdnow,
    cdnow_summary,
    groceries,
    hillstrom,
    write_hillstrom,
)

__all__ = [
    "Demo",
    "cdnow",
    "cdnow_summary",
    "groceries",
    "hillstrom",
    "make_demo",
    "write_demo",
    "write_hillstrom",
]
