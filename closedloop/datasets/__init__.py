"""Data sets: the real public ones (CDNOW, Hillstrom, Groceries), the deterministic demo retailer
and the demo as a world that responds to plans (:mod:`closedloop.datasets.world`)."""

from closedloop.datasets.demo import Demo, make_demo, write_demo
from closedloop.datasets.public import (
    cdnow,
    cdnow_summary,
    groceries,
    hillstrom,
    write_hillstrom,
)
from closedloop.datasets.world import DemoWorld, next_cycle

__all__ = [
    "Demo",
    "DemoWorld",
    "cdnow",
    "cdnow_summary",
    "groceries",
    "hillstrom",
    "make_demo",
    "next_cycle",
    "write_demo",
    "write_hillstrom",
]
