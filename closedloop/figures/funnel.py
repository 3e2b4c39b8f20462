"""Funnel figures: where people drop off, stage by stage and channel by channel."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from closedloop.figures import use_style

#: most group panels drawn side by side before wrapping to a new row
PANELS_PER_ROW = 3


def _groups(funnel: pd.DataFrame) -> list[str]:
    return list(funnel.columns[: list(funnel.columns).index("stage")])


def _label(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    if not by:
        return pd.Series("all", index=frame.index)
    return frame[by].astype("str").agg(" · ".join, axis=1)


def funnel_chart(funnel: pd.DataFrame, title: str = "Funnel: entities reaching each stage"):
    """Horizontal bars of entities per stage, one panel per group, each bar labelled with its
    count, its step rate (share of the previous stage) and its cumulative rate."""
    use_style()
    by = _groups(funnel)
    frame = funnel.assign(_group=_label(funnel, by))
    names = list(dict.fromkeys(frame["_group"]))
    stages = list(dict.fromkeys(frame["stage"]))
    cols = min(len(names), PANELS_PER_ROW)
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(4.6 * cols, 0.55 * len(stages) * rows + 1.4 * rows),
        squeeze=False,
        sharey=True,
    )
    palette = sns.color_palette("Blues_r", len(stages) + 2)[: len(stages)]
    for ax, name in zip(axes.flat, names, strict=False):
        part = frame[frame["_group"] == name].set_index("stage").reindex(stages)
        top = max(part["entities"].max(), 1)
        sns.barplot(
            x=part["entities"].to_numpy(),
            y=stages,
            hue=stages,
            palette=palette,
            legend=False,
            orient="h",
            ax=ax,
        )
        for i, stage in enumerate(stages):
            row = part.loc[stage]
            text = f"{row['entities']:,}"
            if i:
                text += f"  ·  step {_pct(row['step_rate'])}  ·  cum {_pct(row['cum_rate'])}"
            inside = row["entities"] > 0.55 * top
            ax.text(
                row["entities"] - 0.02 * top if inside else row["entities"] + 0.02 * top,
                i,
                text,
                va="center",
                ha="right" if inside else "left",
                color="white" if inside else "0.2",
                fontsize=8.5,
            )
        ax.set_xlim(0, top * 1.05)
        ax.set_title(name if by else "", fontsize=10)
        ax.set_xlabel("entities")
        ax.set_ylabel("")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def step_heatmap(
    funnel: pd.DataFrame, title: str = "Step conversion: share of the previous stage, by group"
):
    """Group × stage heatmap of step rates (the first stage, always 100%, is left out)."""
    use_style()
    by = _groups(funnel)
    stages = list(dict.fromkeys(funnel["stage"]))[1:]
    frame = funnel[funnel["stage"].isin(stages)].assign(_group=_label(funnel, by))
    grid = frame.pivot(index="_group", columns="stage", values="step_rate")
    grid = grid.reindex(columns=stages)
    grid.index.name = " · ".join(by) if by else ""
    fig, ax = plt.subplots(figsize=(1.5 * len(stages) + 2.5, 0.45 * len(grid) + 1.6))
    sns.heatmap(
        grid,
        annot=grid.map(_pct),
        fmt="",
        cmap="YlGnBu",
        vmin=0,
        vmax=1,
        linewidths=0.5,
        cbar_kws={"label": "step rate", "format": "{x:.0%}"},
        ax=ax,
    )
    ax.set_title(title)
    ax.set_xlabel("stage")
    ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


def _pct(value) -> str:
    return "n/a" if pd.isna(value) else f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"
