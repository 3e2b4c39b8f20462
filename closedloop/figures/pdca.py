"""PDCA figures: the campaign's history, cycle after cycle, against its targets."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from closedloop.figures import use_style

STATUS_COLORS = {"met": "#1a7f37", "missed": "#c62828"}


def history(history: pd.DataFrame, title: str = "PDCA history: each target, run after run"):
    """One small panel per target: the actual of every run (green met, red missed) against the
    target that run had (dashed), oldest run first. Input: :func:`closedloop.ledger.history`."""
    use_style()
    targets = list(dict.fromkeys(history["target"]))
    runs = list(dict.fromkeys(history["run"]))
    ncols = min(3, len(targets))
    nrows = math.ceil(len(targets) / ncols)
    width = min(5.0, max(3.0, 0.5 * len(runs) + 2.2))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 2.9 * nrows), squeeze=False)
    x = list(range(len(runs)))
    for i, (ax, name) in enumerate(zip(axes.flat, targets, strict=False)):
        part = history[history["target"] == name].set_index("run").reindex(runs)
        ax.plot(x, part["actual"], color="0.55", lw=1.2, zorder=1)
        ax.step(x, part["target_value"], where="mid", color="0.2", ls="--", lw=1.2)
        colors = [STATUS_COLORS.get(s, "0.5") for s in part["status"]]
        ax.scatter(x, part["actual"], c=colors, s=46, zorder=2)
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.margins(x=0.25, y=0.3)
        last_in_column = i + ncols >= len(targets)
        ax.set_xticks(x, runs if last_in_column else [""] * len(runs), rotation=30, ha="right")
        ax.tick_params(axis="x", labelsize=8)
    for ax in axes.flat[len(targets) :]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in STATUS_COLORS.items()
    ]
    handles.append(plt.Line2D([], [], color="0.2", ls="--", label="target"))
    fig.legend(handles=handles, loc="upper right", ncol=3, frameon=False)
    fig.suptitle(title, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
