"""Member-operations figures: why revenue moved (heads, frequency, ticket) and KPIs against targets."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.transforms import blended_transform_factory

from closedloop.figures import localize, use_style

EFFECTS = ("heads", "frequency", "ticket")


def revenue_change(table: pd.DataFrame, title: str | None = None, language: str = "en"):
    """Grouped bars per tier or store: the heads, frequency and ticket effects of
    :func:`closedloop.kpi.revenue_change`, with a diamond at each group's whole change (the
    three bars add up to it), its value in a column right of the plot."""
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
    # each group's change in a column right of the plot, where no bar can reach it
    margin = blended_transform_factory(ax.transAxes, ax.transData)
    for i, change in enumerate(table["change"]):
        ax.text(1.02, i, f"{change:+,.0f}", transform=margin, va="center", fontsize=8)
    ax.text(1.02, 1.0, "change", transform=ax.transAxes, va="bottom", fontsize=8)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, groups)
    ax.invert_yaxis()
    ax.set_xlabel("revenue change")
    ax.set_ylabel(str(table.index.name or "group"))
    ax.set_title(title or "Why revenue moved: heads x frequency x ticket", pad=26)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False, fontsize=8)
    fig.tight_layout()
    return localize(fig, language)


def against_targets(
    actual: pd.Series,
    targets: dict,
    title: str | None = None,
    language="en",
    lower_is_better=("churn_rate",),
):
    """Horizontal bars of each KPI as a share of its target (1 = on target), labelled with the
    actual and target values and coloured met (green) or missed (red); for a KPI in
    ``lower_is_better`` (the churn rate) a bar above 1 is the miss. KPIs without a target or
    without a value are left out; the KPIs are named as the glossary shows them."""
    from closedloop.glossary import column

    use_style()
    names = [k for k in targets if k in actual.index and pd.notna(actual[k])]
    ratio = np.array([actual[k] / targets[k] if targets[k] else np.nan for k in names])
    met = [r <= 1 if k in lower_is_better else r >= 1 for k, r in zip(names, ratio, strict=True)]
    labels = [column(k, language) + (" ↓" if k in lower_is_better else "") for k in names]
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(names) + 1.6))
    colours = sns.color_palette("deep")
    ax.barh(labels, ratio, color=[colours[2] if m else colours[3] for m in met])
    for i, k in enumerate(names):
        ax.text(
            ratio[i], i, f"  {_value(actual[k])} / {_value(targets[k])}", va="center", fontsize=8
        )
    ax.axvline(1, color="0.2", lw=1, ls="--")
    ax.set_xlim(0, max(1.0, np.nanmax(ratio) if len(ratio) else 1.0) * 1.3)
    ax.invert_yaxis()
    ax.set_xlabel(
        "actual / target" + ("  (↓ lower is better)" if set(names) & set(lower_is_better) else "")
    )
    ax.set_title(title or "KPI tree against targets")
    fig.tight_layout()
    return localize(fig, language)


def _value(v: float) -> str:
    """A KPI value in a label: a share as a percentage, a count with separators, else 3 digits."""
    if 0 <= v <= 1:
        return f"{v:.1%}"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def monthly_trend(trend: pd.DataFrame, title: str | None = None, language: str = "en"):
    """Four panels month by month from :func:`closedloop.health.trend`: buyers, orders per
    buyer, average ticket and member share."""
    use_style()
    panels = [
        ("buyers", "buyers", "{:,.0f}"),
        ("frequency", "orders per buyer", "{:.2f}"),
        ("ticket", "average ticket", "{:,.2f}"),
        ("member_share", "member share", "{:.0%}"),
    ]
    labels = [f"{m:%Y-%m}" for m in trend.index]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.2), sharex=True)
    for ax, (name, words, fmt) in zip(axes.flat, panels, strict=True):
        ax.plot(labels, trend[name].to_numpy(dtype=float), marker="o", color="C0")
        ax.set_title(words)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _, f=fmt: f.format(v)))
        ax.tick_params(axis="x", rotation=45)
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    fig.suptitle(title or "Trends month by month")
    fig.tight_layout()
    return localize(fig, language)


def churn_screen(screen: pd.DataFrame, levels: list[str], title: str | None = None, language="en"):
    """Customers per churn level a quarter ago and now (:func:`closedloop.health.churn_screen`),
    side by side, with the change over each pair; ``levels`` name the rows as shown."""
    use_style()
    x = np.arange(len(screen))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.38
    ax.bar(x - width / 2, screen["before"], width, color="0.65", label="a quarter ago")
    ax.bar(x + width / 2, screen["now"], width, color="C0", label="now")
    top = float(max(screen["before"].max(), screen["now"].max(), 1))
    for i, (high, change) in enumerate(
        zip(screen[["before", "now"]].max(axis=1), screen["change"], strict=True)
    ):
        ax.text(i, high + top * 0.02, f"{change:+,d}", ha="center", va="bottom", fontsize=9)
    ax.set_ylim(0, top * 1.18)
    ax.set_xticks(x, levels)
    ax.set_ylabel("customers")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_title(title or "Churn screen: customers by churn level")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return localize(fig, language)
