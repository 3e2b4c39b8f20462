"""Lift figures: how much each arm beat the holdout, how sure we are, and who responded."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from closedloop.errors import DataError
from closedloop.figures import use_style
from closedloop.lift import CREDIBLE_LEVEL, Lift

#: draws used for a density curve (the full posterior is not needed to draw it)
DENSITY_DRAWS = 4_000
#: most segments drawn per panel, best ranked first
MAX_SEGMENTS = 20


def lift_intervals(
    lift: Lift | pd.DataFrame,
    relative: bool = True,
    title: str | None = None,
    *,
    level: float | None = None,
):
    """One panel per metric: each arm's lift over the control as a point with its credible
    interval, labelled with P(better). ``relative=False`` shows the absolute lift per customer.

    ``lift`` is the :class:`~closedloop.lift.Lift` of :func:`~closedloop.lift.bayesian_lift`, or
    its table; ``level`` (for the title) defaults to the Lift's credible level, or for a bare
    table to :data:`~closedloop.lift.CREDIBLE_LEVEL`."""
    use_style()
    if level is None:
        level = lift.draws.level if isinstance(lift, Lift) else CREDIBLE_LEVEL
    lift = _table(lift)
    metrics = list(dict.fromkeys(lift["metric"]))
    arms = list(dict.fromkeys(lift["arm"]))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.4 * len(metrics), 0.7 * len(arms) + 1.8), squeeze=False
    )
    colors = dict(zip(arms, sns.color_palette(n_colors=len(arms)), strict=True))
    for ax, metric in zip(axes.flat, metrics, strict=True):
        part = lift[lift["metric"] == metric].set_index("arm").reindex(arms)
        # a holdout mean of 0 leaves the relative lift undefined: that panel shows the absolute
        relative_here = relative and part["rel_lift"].notna().any()
        col = "rel_lift" if relative_here else "abs_lift"
        y = np.arange(len(arms))
        for i, name in enumerate(arms):
            row = part.loc[name]
            ax.plot([row[f"{col}_low"], row[f"{col}_high"]], [i, i], lw=3, color=colors[name])
            ax.plot(row[col], i, "o", ms=8, color=colors[name])
            ax.annotate(
                f"P(better) {_prob(row['p_better'])}",
                (row[col], i),
                xytext=(0, 9),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8.5,
                color="0.25",
                zorder=4,
                # a white box, so the dashed zero line never runs through the label
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
            )
        ax.axvline(0, color="0.4", lw=1, ls="--", zorder=1)
        ax.set_yticks(y, arms)
        ax.set_ylim(len(arms) - 0.4, -0.7)
        low, high = part[f"{col}_low"].min(), part[f"{col}_high"].max()
        span = max(high, 0) - min(low, 0) or 1.0
        ax.set_xlim(min(low, 0) - 0.08 * span, max(high, 0) + 0.08 * span)
        ax.set_title(f"{metric} ({part['kind'].iloc[0]})", fontsize=10)
        if relative_here:
            ax.set_xlabel("relative lift")
            ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:.0%}"))
        else:
            _lift_axis(ax, metric, part["kind"].iloc[0])
    fig.suptitle(title or f"Lift over the holdout: observed and {level:.0%} credible interval")
    fig.tight_layout()
    return fig


def lift_density(lift: Lift, title: str = "Posterior of the relative lift over the holdout"):
    """One panel per metric: the posterior density of each arm's relative lift (from the draws
    of the :class:`~closedloop.lift.Lift` of :func:`~closedloop.lift.bayesian_lift`), with the
    zero line."""
    use_style()
    if not isinstance(lift, Lift):
        raise DataError(
            "lift density", "pass the Lift returned by bayesian_lift: the density needs its draws"
        )
    lift, posterior = lift.table, lift.draws
    keys = posterior.keys
    metrics = list(dict.fromkeys(lift["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        part = lift[lift["metric"] == metric]
        frames = []
        for row in part[keys].itertuples(index=False):
            draws = posterior.rel_lift[tuple(row)]
            draws = draws[np.isfinite(draws)][:DENSITY_DRAWS]
            frames.append(pd.DataFrame({"relative lift": draws, "arm": row.arm}))
        sns.kdeplot(
            pd.concat(frames, ignore_index=True),
            x="relative lift",
            hue="arm",
            fill=True,
            common_norm=False,
            alpha=0.3,
            ax=ax,
        )
        ax.axvline(0, color="0.4", lw=1, ls="--")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:.0%}"))
        ax.set_title(metric, fontsize=10)
        ax.set_yticks([])
        ax.set_ylabel("posterior density")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def segment_lift(
    by_segment: Lift | pd.DataFrame,
    metric: str | None = None,
    title: str | None = None,
):
    """Who responded: one panel per arm, segments ranked by credible uplift (best on top), each
    with its lift per customer and credible interval; small segments are drawn hollow and
    labelled "(small)". ``by_segment`` is the :class:`~closedloop.lift.Lift` of
    :func:`~closedloop.lift_segments.lift_by_segment`, or its table; ``metric`` defaults to its
    first metric."""
    use_style()
    by_segment = _table(by_segment)
    metric = metric or by_segment["metric"].iloc[0]
    frame = by_segment[by_segment["metric"] == metric]
    by = list(by_segment.columns[: list(by_segment.columns).index("arm")])
    arms = list(dict.fromkeys(frame["arm"]))
    n_rows = min(frame.groupby("arm").size().max(), MAX_SEGMENTS)
    fig, axes = plt.subplots(
        1, len(arms), figsize=(5.2 * len(arms), 0.42 * n_rows + 1.8), squeeze=False
    )
    for ax, (name, color) in zip(
        axes.flat, zip(arms, sns.color_palette(n_colors=len(arms)), strict=True), strict=True
    ):
        part = frame[frame["arm"] == name].sort_values("rank").head(MAX_SEGMENTS)
        named = part[by].astype("str")
        if len(by) > 1:
            named = named.apply(lambda col: col.name + "=" + col)
        labels = named.agg(" · ".join, axis=1)
        labels = labels + np.where(part["small"], " (small)", "")
        y = np.arange(len(part))
        ax.hlines(y, part["abs_lift_low"], part["abs_lift_high"], color=color, lw=2.5)
        solid = ~part["small"].to_numpy()
        ax.plot(part["abs_lift"].to_numpy()[solid], y[solid], "o", color=color, ms=7)
        ax.plot(part["abs_lift"].to_numpy()[~solid], y[~solid], "o", mfc="white", color=color, ms=7)
        ax.axvline(0, color="0.4", lw=1, ls="--")
        ax.set_yticks(y, labels)
        ax.set_ylim(len(part) - 0.5, -0.5)
        ax.set_title(f"{name} vs holdout", fontsize=10)
        _lift_axis(ax, metric, part["kind"].iloc[0])
    fig.suptitle(title or f"Lift by segment on {metric}, ranked by credible uplift")
    fig.tight_layout()
    return fig


def _table(lift: Lift | pd.DataFrame) -> pd.DataFrame:
    """The lift table of a :class:`~closedloop.lift.Lift`, or the table itself."""
    return lift.table if isinstance(lift, Lift) else lift


def _lift_axis(ax, metric: str, kind: str) -> None:
    """Absolute lift on the x axis: percentage points for a rate, units per customer otherwise."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    if kind == "binary":
        ax.set_xlabel(f"{metric}: lift in percentage points")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{round(100 * x, 6):g}"))
    else:
        ax.set_xlabel(f"{metric}: lift per customer")


def _prob(p: float) -> str:
    return ">99.9%" if p >= 0.9995 else "<0.1%" if p < 0.0005 else f"{p:.1%}"
