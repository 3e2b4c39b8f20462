"""CLV figures: calibration vs holdout, repeat-purchase tracking, P(alive) map, CLV by tier."""

from __future__ import annotations

from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import PercentFormatter

from closedloop.figures import use_style

#: P(alive) map: calibration purchases pooled from this number up, recency in this many bins
ALIVE_FREQUENCY_CAP = 10
ALIVE_RECENCY_BINS = 8


def calibration_holdout(
    table: pd.DataFrame,
    title: str = "Holdout purchases by calibration purchases: actual vs model",
):
    """Mean holdout purchases per customer, actual vs predicted, for each calibration frequency;
    from :func:`closedloop.clv.calibration_holdout` (FHL 2005, Figure 3)."""
    use_style()
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(8, 4.6))
    actual_colour, model_colour = sns.color_palette("deep")[:2]
    ax.plot(x, table["actual"], marker="o", color=actual_colour, label="actual")
    ax.plot(x, table["predicted"], marker="s", ls="--", color=model_colour, label="model")
    labels = [f"{k}\nn={n:,}" for k, n in zip(table.index, table["customers"], strict=True)]
    ax.set_xticks(x, labels, fontsize=8.5)
    ax.set_xlabel("purchases in the calibration period (repeat purchase days)")
    ax.set_ylabel("mean purchases per customer in the holdout")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def repeat_tracking(
    track: pd.DataFrame,
    title: str = "Repeat purchases of the calibration cohort: actual vs model",
):
    """Two panels from :func:`closedloop.clv.repeat_tracking`: repeat purchases per period and
    cumulative, actual vs model, with the end of calibration marked (FHL 2005, Figures 1-2)."""
    use_style()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    actual_colour, model_colour = sns.color_palette("deep")[:2]
    for ax, suffix, label in (
        (top, "", "per period"),
        (bottom, "_cumulative", "cumulative"),
    ):
        ax.plot(track.index, track[f"actual{suffix}"], color=actual_colour, label="actual")
        ax.plot(track.index, track[f"expected{suffix}"], color=model_colour, ls="--", label="model")
        ax.set_ylabel(f"repeat purchases, {label}")
        cut = track.attrs.get("calibration_end")
        if cut is not None and track.index[0] <= cut < track.index[-1]:
            ax.axvline(cut, color="0.4", lw=1, ls=":")
            ax.text(
                cut,
                0.97,
                " end of calibration",
                transform=ax.get_xaxis_transform(),
                va="top",
                ha="left",
                fontsize=8.5,
                color="0.3",
            )
    top.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
    top.set_title(title, loc="left")
    bottom.set_xlabel("period ending")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def p_alive_map(
    frame: pd.DataFrame,
    cap: int = ALIVE_FREQUENCY_CAP,
    bins: int = ALIVE_RECENCY_BINS,
    title: str = "Probability a customer is still active, by frequency and recency",
):
    """Mean P(alive) by calibration purchases (rows) and recency as a share of T (columns):
    ``frame`` has ``repeat_purchases, purchase_span, age, p_alive`` (a summary with ``model.p_alive()``)."""
    use_style()
    freq = np.minimum(frame["repeat_purchases"].to_numpy(), cap)
    share = np.divide(
        frame["purchase_span"].to_numpy(float),
        frame["age"].to_numpy(float),
        out=np.zeros(len(frame)),
        where=frame["age"].to_numpy(float) > 0,
    )
    edges = np.linspace(0, 1, bins + 1)
    column = np.clip(np.digitize(share, edges[1:-1]), 0, bins - 1)
    grid = (
        pd.DataFrame({"f": freq, "c": column, "p": frame["p_alive"].to_numpy(float)})
        .pivot_table(index="f", columns="c", values="p", aggfunc="mean")
        .reindex(index=range(cap, -1, -1), columns=range(bins))
    )
    fig, ax = plt.subplots(figsize=(9, 6))
    sns.heatmap(
        grid,
        ax=ax,
        cmap="RdYlGn",
        vmin=0,
        vmax=1,
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 8},
        cbar_kws={"label": "mean P(alive)", "format": PercentFormatter(1.0, decimals=0)},
    )
    ax.set_xticklabels(
        [f"{lo:.0%}–{hi:.0%}" for lo, hi in pairwise(edges)],
        rotation=0,
        fontsize=8.5,
    )
    ax.set_yticklabels([f"{k}+" if k == cap else str(k) for k in grid.index], rotation=0)
    ax.grid(False)
    ax.set_xlabel("recency as a share of the customer's age T (last purchase late → right)")
    ax.set_ylabel("repeat purchases in the period")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def clv_by_tier(
    table: pd.DataFrame,
    title: str = "Where future value sits: share of customers vs share of CLV by tier",
):
    """Share of customers and share of predicted CLV per pyramid tier, each bar labelled, with
    the mean CLV per customer beside the tier; from :func:`closedloop.clv.clv_by_tier`."""
    use_style()
    tiers = [str(t) for t in table.index]
    y = np.arange(len(tiers))
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(tiers) + 1.8))
    heads_colour, value_colour = sns.color_palette("deep")[:2]
    height = 0.38
    ax.barh(y - height / 2, table["customer_share"], height, color=heads_colour, label="customers")
    ax.barh(y + height / 2, table["clv_share"], height, color=value_colour, label="CLV")
    reach = float(max(table["customer_share"].max(), table["clv_share"].max()))
    for i, row in enumerate(table.itertuples()):
        ax.text(
            row.customer_share + reach * 0.01,
            i - height / 2,
            f"{row.customer_share:.0%}",
            va="center",
            fontsize=8.5,
        )
        ax.text(
            row.clv_share + reach * 0.01,
            i + height / 2,
            f"{row.clv_share:.0%}",
            va="center",
            fontsize=8.5,
        )
    ax.set_yticks(
        y,
        [f"{t}\nmean CLV {m:,.0f}" for t, m in zip(tiers, table["clv_mean"], strict=True)],
        fontsize=9,
    )
    ax.invert_yaxis()
    ax.set_xlim(0, reach * 1.15)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("share of all customers / of all predicted CLV")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig
