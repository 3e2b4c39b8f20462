"""Follow-up figure: each arm's lift over the holdout in the windows after the period."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import PercentFormatter

from closedloop.figures import use_style

#: the panels: metric, title, whether the lift is a share
PANELS = (
    ("converted", "bought in the window: uplift (percentage points)", True),
    ("revenue", "spend in the window: lift per customer", False),
)


def follow_up(table, title: str = "After the campaign: did the effect last?"):
    """Left: the uplift in the share of customers buying in each window after the period; right:
    the extra spend per customer; each treated arm with its 95% interval, by the window's days
    (day 1 to day N after the period). Input: ``closedloop.follow_up.follow_up(...).table``."""
    use_style()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    arms = sorted(set(table["arm"]))
    width = 0.5 / max(len(arms), 1)
    windows = sorted(set(table["days"]))
    for ax, (metric, name, share) in zip(axes, PANELS, strict=True):
        rows = table[table["metric"] == metric]
        for i, arm in enumerate(arms):
            part = rows[rows["arm"] == arm].sort_values("days")
            x = [windows.index(d) + (i - (len(arms) - 1) / 2) * width for d in part["days"]]
            low = part["abs_lift"] - part["abs_lift_low"]
            high = part["abs_lift_high"] - part["abs_lift"]
            ax.errorbar(
                x, part["abs_lift"], yerr=[low, high], fmt="o", capsize=4, label=arm, color=f"C{i}"
            )
        ax.axhline(0, color="0.3", ls="--", lw=1)
        ax.set_xticks(range(len(windows)), [f"{d}" for d in windows])
        ax.set_xlabel("days after the period")
        ax.set_title(name, fontsize=10)
        if share:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, fontsize=9, loc="upper right", ncols=len(arms))
    fig.suptitle(title, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
