"""Customer-base figures: the pyramid, RFM grid, head-share curve, tier revenue, migration, churn."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, PercentFormatter

from closedloop.figures import use_style
from closedloop.rfm import SCORE_LEVELS, Migration

_PCT = PercentFormatter(1.0, decimals=0)


def _money(x: float) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}"


def pyramid(pyr: pd.DataFrame, title: str = "Customer pyramid: share of heads vs share of revenue"):
    """Mirrored bars per tier, top tier at the top: heads share to the left, revenue share to the
    right, each labelled; from :func:`closedloop.rfm.pyramid`."""
    use_style()
    tiers = pyr["tier"].astype("str").tolist()
    y = np.arange(len(tiers))
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(tiers) + 1.6))
    heads_colour, revenue_colour = sns.color_palette("deep")[:2]
    ax.barh(y, -pyr["customer_share"], color=heads_colour, label="share of customers")
    ax.barh(y, pyr["revenue_share"], color=revenue_colour, label="share of revenue")
    reach = max(pyr["customer_share"].max(), pyr["revenue_share"].max())
    for i, row in enumerate(pyr.itertuples()):
        ax.text(
            -row.customer_share - reach * 0.02,
            i,
            f"{row.customer_share:.0%}  ({row.customers:,})",
            ha="right",
            va="center",
            fontsize=9,
        )
        ax.text(
            row.revenue_share + reach * 0.02,
            i,
            f"{row.revenue_share:.0%}",
            ha="left",
            va="center",
            fontsize=9,
        )
    ax.set_yticks(y, tiers)
    ax.invert_yaxis()
    ax.set_xlim(-reach * 1.55, reach * 1.35)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):.0%}"))
    ax.set_xlabel("share of customers  ←   |   →  share of revenue")
    ax.set_ylabel("tier (customers ranked by spend)")
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=True)
    fig.tight_layout()
    return fig


def rfm_heatmap(rfm: pd.DataFrame, title: str | None = None):
    """R x F grid coloured by mean monetary, each cell labelled with its mean and head count."""
    use_style()
    levels = range(1, SCORE_LEVELS + 1)
    grid = rfm.pivot_table(index="R", columns="F", values="monetary", aggfunc="mean")
    heads = rfm.pivot_table(index="R", columns="F", values="monetary", aggfunc="size")
    grid = grid.reindex(index=levels[::-1], columns=levels)
    heads = heads.reindex(index=levels[::-1], columns=levels)
    labels = np.where(
        heads.notna().to_numpy(),
        [
            [f"{m:,.0f}\n(n={n:,.0f})" if n == n else "" for m, n in zip(mr, nr, strict=True)]
            for mr, nr in zip(grid.to_numpy(), heads.to_numpy(), strict=True)
        ],
        "",
    )
    fig, ax = plt.subplots(figsize=(7.5, 5.6))
    sns.heatmap(
        grid,
        annot=labels,
        fmt="",
        cmap="YlGnBu",
        linewidths=0.5,
        ax=ax,
        cbar_kws={"label": "mean monetary"},
        annot_kws={"fontsize": 8},
    )
    choice = rfm.attrs.get("monetary")  # rfm_table records it; a table without it is not guessed
    which = f" ({choice})" if choice else ""
    ax.set_title(title or f"Mean monetary{which} by recency and frequency score")
    ax.set_xlabel("F score (5 = most orders)")
    ax.set_ylabel("R score (5 = most recent)")
    ax.tick_params(axis="y", rotation=0)
    ax.grid(False)
    fig.tight_layout()
    return fig


def head_share_curve(
    curve: pd.DataFrame,
    points: pd.DataFrame | None = None,
    title: str = "Head-share curve: how few customers make most revenue",
):
    """Cumulative revenue share against the share of customers ranked from the top, with the
    read-off points of :func:`closedloop.rfm.head_share` marked."""
    use_style()
    fig, ax = plt.subplots(figsize=(7, 5))
    step = max(len(curve) // 2000, 1)
    thin = curve.iloc[::step]
    ax.plot(
        np.r_[0, thin["customer_share"]],
        np.r_[0, thin["revenue_share"]],
        lw=2,
        label="customers ranked by spend",
    )
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="every customer equal")
    if points is not None:
        for row in points.itertuples():
            ax.plot(
                [row.customer_share, row.customer_share, 0],
                [0, row.revenue_share, row.revenue_share],
                color="0.4",
                lw=0.8,
                ls=":",
            )
            ax.scatter([row.customer_share], [row.revenue_share], color="C3", zorder=3)
            ax.annotate(
                f"{row.customer_share:.1%} of customers → {row.revenue_share:.0%} of revenue",
                (row.customer_share, row.revenue_share),
                xytext=(10, -4),
                textcoords="offset points",
                fontsize=9,
                va="top",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"},
            )
    ax.xaxis.set_major_formatter(_PCT)
    ax.yaxis.set_major_formatter(_PCT)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("share of customers (top first)")
    ax.set_ylabel("cumulative share of revenue")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def revenue_by_tier(
    over_time: pd.DataFrame,
    title: str = "Revenue by pyramid tier over time (tiers fixed over the window)",
):
    """Stacked bars of revenue per period by tier, top tier at the bottom; from
    :func:`closedloop.rfm.pyramid_over_time`."""
    use_style()
    wide = over_time.pivot_table(
        index="period", columns="tier", values="revenue", aggfunc="sum", observed=False
    )
    wide = wide[[t for t in over_time["tier"].cat.categories if t in wide.columns]]
    monthly = len(wide) < 2 or (wide.index[1] - wide.index[0]).days < 45
    labels = [p.strftime("%Y-%m") if monthly else f"{p.year} Q{p.quarter}" for p in wide.index]
    fig, ax = plt.subplots(figsize=(max(7, 0.55 * len(wide) + 3), 5))
    bottom = np.zeros(len(wide))
    colours = sns.color_palette("rocket", len(wide.columns))
    for colour, tier in zip(colours, wide.columns, strict=True):
        ax.bar(labels, wide[tier], bottom=bottom, color=colour, label=tier)
        bottom += wide[tier].to_numpy()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _money(v)))
    ax.set_ylabel("revenue")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=45 if len(labels) > 8 else 0)
    ax.set_title(title)
    ax.legend(title="tier", bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def migration_heatmap(mig: Migration, title: str = "Migration: where customers moved"):
    """Counts from ``before`` (rows) to ``after`` (columns), coloured by the share of the row,
    annotated with the count; from :func:`closedloop.rfm.migration`."""
    use_style()
    counts = mig.counts
    shares = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    n = len(counts)
    fig, ax = plt.subplots(figsize=(0.85 * n + 3.5, 0.6 * n + 2.2))
    sns.heatmap(
        shares,
        annot=counts,
        fmt=",d",
        cmap="Blues",
        vmin=0,
        vmax=1,
        linewidths=0.5,
        cbar_kws={"label": "share of the before-row", "format": _PCT},
        annot_kws={"fontsize": 8},
        ax=ax,
    )
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    fig.tight_layout()
    return fig


def churn_levels(
    churn: pd.DataFrame, title: str = "Churn levels: customers and revenue by severity"
):
    """Two panels from :func:`closedloop.rfm.churn_severity`: customers per level (with share),
    and revenue per level in the previous and the current period."""
    use_style()
    levels = list(churn["severity"].cat.categories)
    grouped = churn.groupby("severity", observed=False)
    heads = grouped.size().reindex(levels)
    revenue = grouped[["revenue_prev", "revenue_now"]].sum().reindex(levels)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    palette = sns.color_palette("YlOrRd", len(levels))
    left.bar(levels, heads, color=palette)
    for i, count in enumerate(heads):
        left.text(
            i, count, f"{count:,}\n{count / heads.sum():.0%}", ha="center", va="bottom", fontsize=9
        )
    left.set_ylim(0, heads.max() * 1.25)
    left.set_ylabel("customers")
    left.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    left.set_title("customers by churn level")
    long = revenue.rename(columns={"revenue_prev": "previous period", "revenue_now": "this period"})
    long = long.reset_index().melt(id_vars="severity", var_name="period", value_name="revenue")
    sns.barplot(long, x="severity", y="revenue", hue="period", ax=right, palette=["0.65", "C0"])
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _money(v)))
    right.set_xlabel("")
    right.set_title("revenue: previous vs this period")
    right.legend(title=None)
    left.set_xlabel("")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
