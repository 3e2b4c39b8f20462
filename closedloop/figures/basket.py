"""Basket figures: the top cross-sell rules (by lift, or in the method's order: lift > 1, by
confidence), and where all rules sit on lift × confidence."""

from __future__ import annotations

import contextlib
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from closedloop.basket import cross_sell
from closedloop.figures import use_style

#: rules shown in the bar chart and numbered on the scatter
TOP_RULES = 15
LABELLED_RULES = 10
#: characters per line of a wrapped rule label
LABEL_WIDTH = 48


def _check(rules: pd.DataFrame) -> None:
    missing = {"rule", "support", "confidence", "lift"} - set(rules.columns)
    if missing:
        raise ValueError(f"expected the frame of basket.rules(); missing {sorted(missing)}")


def _top(rules: pd.DataFrame, n: int) -> pd.DataFrame:
    return rules.sort_values(["lift", "confidence"], ascending=False).head(n)


#: the chart's default title for each order
TITLES = {
    "lift": "Strongest cross-sell rules by lift",
    "confidence": "Cross-sell rules: lift > 1, by confidence",
}


def top_rules_chart(
    rules: pd.DataFrame,
    n: int = TOP_RULES,
    title: str | None = None,
    order: str = "lift",
):
    """Horizontal bars for ``n`` rules, labelled with lift, confidence and support.

    ``order="lift"`` (default): the ``n`` highest-lift rules, bars of lift coloured by confidence,
    the dashed line at lift 1 (no association) — the strongest associations.
    ``order="confidence"``: the method's cross-sell order (:func:`closedloop.basket.cross_sell`,
    lift > 1, ranked by confidence), bars of confidence coloured by lift — what to recommend.
    ``title`` defaults to :data:`TITLES` of the order.
    """
    _check(rules)
    if order not in TITLES:
        raise ValueError(f"order must be one of {', '.join(TITLES)}, not {order!r}")
    use_style()
    if order == "lift":
        top, bar, shade = _top(rules, n), "lift", "confidence"
    else:
        top, bar, shade = cross_sell(rules, n), "confidence", "lift"
    top = top.iloc[::-1]
    labels = [textwrap.fill(text, LABEL_WIDTH) for text in top["rule"]]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.32 * max(lines, 3)))
    low = top[shade].min() if len(top) else 0.0
    norm = plt.Normalize(low, max(top[shade].max() if len(top) else 1.0, low + 1e-9))
    cmap = sns.color_palette("crest", as_cmap=True)
    y = np.arange(len(top))
    ax.barh(y, top[bar], color=cmap(norm(top[shade])), height=0.7)
    ax.set_yticks(y, labels, fontsize=8.5)
    xmax = top[bar].max() if len(top) else 1.0
    for yi, (lift, conf, supp) in enumerate(top[["lift", "confidence", "support"]].to_numpy()):
        if order == "lift":
            text, at = f"{lift:.2f}  (conf {conf:.0%}, supp {supp:.2%})", lift
        else:
            text, at = f"{conf:.0%}  (lift {lift:.2f}, supp {supp:.2%})", conf
        ax.text(at + 0.01 * xmax, yi, text, va="center", fontsize=8)
    ax.set_xlim(0, xmax * 1.6)
    if order == "lift":
        ax.axvline(1.0, color="0.4", linestyle="--", linewidth=1)
        ax.set_xlabel("lift = P(B | A) / P(B)")
    else:
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.set_xlabel("confidence = P(B | A)")
    ax.set_title(TITLES[order] if title is None else title)
    colorbar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.01)
    if shade == "confidence":
        colorbar.set_label("confidence = P(B | A)")
        colorbar.ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    else:
        colorbar.set_label("lift = P(B | A) / P(B)")
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def lift_confidence_scatter(
    rules: pd.DataFrame,
    label: int = LABELLED_RULES,
    title: str = "All rules: lift against confidence (size = support)",
):
    """Every rule as a point (confidence across, lift up, size by support); the ``label``
    highest-lift rules are numbered and listed beside the chart."""
    _check(rules)
    use_style()
    fig, (ax, side) = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [1.4, 1]})
    sns.scatterplot(
        data=rules,
        x="confidence",
        y="lift",
        size="support",
        sizes=(8, 160),
        alpha=0.45,
        color=sns.color_palette()[0],
        edgecolor="none",
        ax=ax,
        legend="brief",
    )
    ax.axhline(1.0, color="0.4", linestyle="--", linewidth=1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    legend = ax.get_legend()
    if legend is not None:
        legend.set_title("support")
        for text in legend.get_texts():
            with contextlib.suppress(ValueError):
                text.set_text(f"{float(text.get_text()):.2%}")
    top = _top(rules, label).assign(number=lambda f: np.arange(1, len(f) + 1).astype(str))
    # rules that fall on the same point share one marker: "9,10"
    spots = top.groupby([top["confidence"].round(6), top["lift"].round(6)], sort=False)
    for (conf, lift), group in spots:
        text = ",".join(group["number"])
        ax.scatter(conf, lift, s=110 + 60 * len(text), facecolor="white", edgecolor="C3", zorder=3)
        ax.text(conf, lift, text, ha="center", va="center", fontsize=7, zorder=4)
    ax.set_xlabel("confidence = P(B | A)")
    ax.set_ylabel("lift")
    ax.set_title(title)
    side.axis("off")
    listing = "\n".join(
        textwrap.fill(
            f"{i:>2}. {text}  (lift {lift:.1f})", LABEL_WIDTH + 8, subsequent_indent="    "
        )
        for i, (text, lift) in enumerate(zip(top["rule"], top["lift"], strict=True), start=1)
    )
    side.text(0, 1, "Highest lift\n\n" + listing, va="top", fontsize=9, family="monospace")
    fig.tight_layout()
    return fig
