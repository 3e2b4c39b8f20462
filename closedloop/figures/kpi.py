"""Member-operations figures: why revenue moved (heads, frequency, ticket) and KPIs against targets."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from closedloop.figures import localize, use_style

EFFECTS = ("heads", "frequency", "ticket")


def revenue_change(table: pd.DataFrame, title: str | None = None, language: str = "en"):
    """Grouped bars per tier or store: the heads, frequency and ticket effects of
    :func:`closedloop.kpi.revenue_change`, with a diamond at each group's whole change (the
    three bars add up to it)."""
    use_style()
    groups = table.index.astype("str").tolist()
    y = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(8.5, 0.6 * len(groups) + 1.8))
    colours = sns.color_palette("deep")
    height = 0.26
    for k, effect in enumerate(EFFECTS):
        ax.barh(
            y + (k - 1) * height,
            table[effect],
            height=height,
            color=colours[k],
            label=f"{effect} effect",
        )
    ax.scatter(table["change"], y, marker="D", color="0.15", zorder=3, label="revenue change")
    for i, change in enumerate(table["change"]):
        ax.annotate(
            f"{change:+,.0f}",
            (change, i),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
        )
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, groups)
    ax.invert_yaxis()
    ax.set_xlabel("revenue change")
    ax.set_ylabel(str(table.index.name or "group"))
    ax.set_title(title or "Why revenue moved: heads x frequency x ticket")
    ax.legend(loc="best", frameon=True, fontsize=8)
    fig.tight_layout()
    return localize(fig, language)


def against_targets(actual: pd.Series, targets: dict, title: str | None = None, language="en"):
    """Horizontal bars of each KPI as a share of its target (1 = on target), labelled with the
    actual and target values; KPIs without a target are left out."""
    use_style()
    names = [k for k in targets if k in actual.index and pd.notna(actual[k])]
    ratio = np.array([actual[k] / targets[k] if targets[k] else np.nan for k in names])
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.6))
    colours = sns.color_palette("deep")
    ax.barh(names, ratio, color=[colours[2] if r >= 1 else colours[3] for r in ratio])
    for i, k in enumerate(names):
        ax.text(ratio[i], i, f"  {actual[k]:,.3g} / {targets[k]:,.3g}", va="center", fontsize=8)
    ax.axvline(1, color="0.2", lw=1, ls="--")
    ax.invert_yaxis()
    ax.set_xlabel("actual / target")
    ax.set_title(title or "KPI tree against targets")
    fig.tight_layout()
    return localize(fig, language)
