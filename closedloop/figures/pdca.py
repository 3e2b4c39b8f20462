"""PDCA figures: the campaign's history, cycle after cycle, against its targets."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import PercentFormatter

from closedloop.figures import use_style
from closedloop.glossary import target_name

#: targets shown as percentages
RATE_TARGETS = ("conversion_rate", "visit_rate", "relative_lift")


class TickPercent(PercentFormatter):
    """Percent tick labels with as few decimals as the ticks need, so 12.5% is not shown as
    "12%" beside a "10%" (matplotlib's ``PercentFormatter`` with its decimals chosen per axis)."""

    def format_ticks(self, values):
        self.decimals = next(
            (d for d in range(4) if all(abs(round(100 * v, d) - 100 * v) < 1e-6 for v in values)),
            4,
        )
        return super().format_ticks(values)


STATUS_COLORS = {"met": "#1a7f37", "missed": "#c62828"}
#: an interim run's pace, coloured like the final statuses (ahead as met, behind as missed)
PACE_COLORS = {
    "ahead": "#1a7f37",
    "on track": "#b08800",
    "behind": "#c62828",
    "not paced": "#8c8c8c",
}


def history(history: pd.DataFrame, title: str = "PDCA history: each target, cycle after cycle"):
    """One small panel per target: each run's actual (green met, red missed; hollow for an
    interim run, coloured by its pace) against the target it had (a short dashed bar at each run,
    so a first cycle shows its target too; an interim run's is the target expected by then).
    Interim runs sit inside their cycle, at the share of the period gone by, leading to the
    cycle's final run. Cycles are numbered on the axis, which stays legible to a dozen cycles and
    more. Input: :func:`closedloop.ledger.history`."""
    use_style()
    targets = list(dict.fromkeys(history["target"]))
    cycles = sorted(set(history["cycle"]))
    ncols = min(3, len(targets))
    nrows = math.ceil(len(targets) / ncols)
    width = min(6.0, max(3.2, 0.32 * len(cycles) + 2.4))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 2.9 * nrows), squeeze=False)
    step = max(1, math.ceil(len(cycles) / 12))
    left = min(min(cycles) - 0.6, history["position"].min() - 0.15)
    for i, (ax, name) in enumerate(zip(axes.flat, targets, strict=False)):
        part = history[history["target"] == name].sort_values("position")
        x = part["position"].to_numpy()
        hollow = part["interim"].fillna(False).astype(bool).to_numpy()
        ax.plot(x, part["actual"], color="0.55", lw=1.2, zorder=1)
        half = [0.06 if h else (0.22 if hollow.any() else 0.35) for h in hollow]
        ax.hlines(
            part["target_value"],
            x - half,
            x + half,
            color="0.2",
            ls="--",
            lw=1.4,
        )
        colors = [{**STATUS_COLORS, **PACE_COLORS}.get(s, "0.5") for s in part["status"]]
        ax.scatter(
            x[~hollow],
            part["actual"][~hollow],
            c=[c for c, h in zip(colors, hollow, strict=True) if not h],
            s=46,
            zorder=2,
        )
        if hollow.any():
            edge = [c for c, h in zip(colors, hollow, strict=True) if h]
            ax.scatter(
                x[hollow],
                part["actual"][hollow],
                facecolors="white",
                edgecolors=edge,
                s=46,
                zorder=2,
            )
        ax.set_title(target_name(name), fontsize=10)
        if name in RATE_TARGETS or name.startswith("funnel_"):
            ax.yaxis.set_major_formatter(TickPercent(1.0))
        ax.set_xlim(left, max(cycles) + 0.6)
        ax.margins(y=0.3)
        ax.set_xticks(cycles[::step])
        last_in_column = i + ncols >= len(targets)
        ax.set_xlabel("cycle" if last_in_column else "")
        ax.tick_params(axis="x", labelsize=9)
    for ax in axes.flat[len(targets) :]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in STATUS_COLORS.items()
    ]
    handles.append(plt.Line2D([], [], color="0.2", ls="--", label="target"))
    paces = set(history.loc[history["interim"].fillna(False).astype(bool), "status"])
    handles += [
        plt.Line2D([], [], marker="o", ls="", mfc="white", color=c, label=f"interim: {p}")
        for p, c in PACE_COLORS.items()
        if p in paces
    ]
    # the legend on a row of its own under the plots: with the paces it is too long to share the
    # title's row
    per_row = max(2, min(len(handles), int(fig.get_figwidth() / 1.6)))
    rows = math.ceil(len(handles) / per_row)
    fig.legend(handles=handles, loc="lower center", ncol=per_row, frameon=False, fontsize=9)
    fig.suptitle(title, x=0.01, ha="left")
    fig.set_figheight(fig.get_figheight() + 0.24 * rows)
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, (0.12 + 0.24 * rows) / height, 1, 1 - 0.3 / height))
    return fig
