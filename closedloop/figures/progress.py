"""Progress figure: conversion so far by arm, and the cumulative lift with its interval."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.ticker import PercentFormatter

from closedloop.figures import use_style

#: the lift is drawn from the first day the holdout has this many converted customers: before
#: that a ratio of two tiny counts swings by hundreds of percent and hides the rest
MIN_HOLDOUT_CONVERSIONS = 10


def progress(
    daily, control: str, title: str = "Progress: conversion so far and the lift over the holdout"
):
    """Left: each arm's cumulative conversion, day by day; right: each treated arm's cumulative
    relative lift over the holdout with its 95% band, the dashed line at no lift. Input:
    ``closedloop.progress.progress(...).daily``."""
    use_style()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    arms = [control, *sorted(set(daily["arm"]) - {control})]
    holdout = daily[daily["arm"] == control].set_index("date")["converted"]
    ready = holdout.index[holdout >= MIN_HOLDOUT_CONVERSIONS]
    for i, arm in enumerate(arms):
        part = daily[daily["arm"] == arm]
        style = {"color": "0.35", "ls": "--"} if arm == control else {"color": f"C{i - 1}"}
        left.plot(part["date"], part["conversion"], label=arm, lw=1.8, **style)
        if arm != control:
            part = part[part["date"].isin(ready)]
            right.fill_between(
                part["date"], part["rel_lift_low"], part["rel_lift_high"], alpha=0.18, **style
            )
            right.plot(part["date"], part["rel_lift"], label=arm, lw=1.8, **style)
    if len(ready):
        right.set_xlim(left.get_xlim())
    right.axhline(0, color="0.3", ls="--", lw=1)
    left.set_title("conversion so far, by arm", fontsize=10)
    right.set_title(
        "relative lift over the holdout so far (95% interval), once it has"
        f" {MIN_HOLDOUT_CONVERSIONS} buyers",
        fontsize=10,
    )
    for ax in (left, right):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(AutoDateLocator(maxticks=6))
        ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))  # numbers read in any language
        ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.suptitle(title, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
