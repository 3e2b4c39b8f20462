"""The method's words in Chinese: the glossary holds them, and the tour's figures draw them whole,
with real glyphs."""

from __future__ import annotations

import re
import warnings

import matplotlib
import matplotlib.pyplot as plt
import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from closedloop import basket, clv, funnel, lift, rfm
from closedloop.datasets import make_demo
from closedloop.figures import basket as basket_fig
from closedloop.figures import clv as clv_fig
from closedloop.figures import funnel as funnel_fig
from closedloop.figures import lift as lift_fig
from closedloop.figures import localize, use_style
from closedloop.figures import rfm as rfm_fig
from closedloop.glossary import glossary, label, translate

#: the terms a reader of the method meets first; each must be in the glossary with its Chinese name
METHOD_TERMS = [
    "闭环",
    "PDCA",
    "数人头",
    "客户金字塔",
    "会员等级",
    "分级",
    "分群",
    "进 活 粘 值 荐",
    "CIDR",
    "RFM",
    "支持度",
    "置信度",
    "提升度",
    "会员占比",
    "在线率",
    "复购率",
    "连带率",
    "流失",
    "轻度流失",
    "中度流失",
    "重度流失",
    "私域",
    "公域",
]
CHINESE = "客户金字塔会员等级数人头流失私域"


def test_every_method_term_is_in_the_glossary():
    chinese = " | ".join(glossary()["zh"])
    missing = [term for term in METHOD_TERMS if term not in chinese]
    assert not missing, f"add {missing} to closedloop.glossary.TERMS"


def test_label_gives_either_language():
    assert label("pyramid") == "customer pyramid"
    assert label("pyramid", "zh") == "客户金字塔"
    assert label("churn_none", both=True) == "no churn (未流失)"


def test_annotations_translate_whole():
    assert translate("6.0% of customers → 40% of revenue", "zh") == "6.0% 的客户 → 40% 的销售额"
    assert translate("16  ·  step 20%  ·  cum 20%", "zh") == "16  ·  逐级 20%  ·  累计 20%"
    assert translate("P(better) >99.9%", "zh") == "P(优于对照组) >99.9%"


def test_the_style_resolves_fonts_with_chinese_glyphs():
    """matplotlib draws each glyph with the first font of font.family that has it."""
    use_style()
    fonts = [
        font_manager.findfont(font_manager.FontProperties(family=[family]))
        for family in matplotlib.rcParams["font.family"]
    ]
    for char in CHINESE:
        assert any(FT2Font(path).get_char_index(ord(char)) != 0 for path in fonts), (
            f"no font in {fonts} draws {char}"
        )


@pytest.fixture(scope="module")
def tour_figures():
    """The tour's figures, drawn from a small demo with the tour's calls, titled and localized."""
    demo = make_demo(seed=3, n_customers=1_500)
    tx, asof = demo.transactions, "2026-03-31"
    table = rfm.rfm_table(tx, asof)
    churn = rfm.churn_severity(tx, asof, period_days=180)
    levels = churn["severity"].cat.rename_categories(lambda level: label(f"churn_{level}", "zh"))
    calibration = clv.summary(tx, asof, calibration_end="2025-09-30")
    hill_like = demo.outcomes.rename(
        columns={"visited": "visit", "converted": "conversion", "revenue": "spend"}
    )
    figures = {
        "pyramid": rfm_fig.pyramid(rfm.pyramid(table)),
        "heatmap": rfm_fig.rfm_heatmap(table),
        "head_share": rfm_fig.head_share_curve(rfm.head_share_curve(table), rfm.head_share(table)),
        "churn": rfm_fig.churn_levels(churn.assign(severity=levels)),
        "clv": clv_fig.calibration_holdout(clv.calibration_holdout(clv.fit(calibration))),
        "lift": lift_fig.lift_intervals(
            lift.bayesian_lift(
                demo.outcomes, control="control", metrics=["converted", "revenue", "visited"]
            )
        ),
        "lift_hillstrom": lift_fig.lift_intervals(
            lift.bayesian_lift(
                hill_like, control="control", metrics=["visit", "conversion", "spend"]
            )
        ),
        "funnel": funnel_fig.funnel_chart(
            funnel.funnel(demo.events, ["touch", "visit", "register", "purchase"], by="channel")
        ),
        "basket": basket_fig.top_rules_chart(basket.rules(demo.items, 0.005, 0.3), n=10),
    }
    for fig in figures.values():
        for ax in fig.axes:
            if ax.get_title():
                ax.set_title(label("pyramid", "zh"))
        if fig._suptitle is not None:
            fig.suptitle(label("funnel", "zh"))
        localize(fig, "zh")
    yield figures
    for fig in figures.values():
        plt.close(fig)


def _words(fig) -> list[str]:
    """Every text of the figure but its tick labels, which are data (arms, stages, items)."""
    ticks = {
        id(label)
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for tick in (*axis.get_major_ticks(), *axis.get_minor_ticks())
        for label in (tick.label1, tick.label2)
    }
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if id(t) not in ticks]


@pytest.mark.parametrize(
    "name",
    [
        "pyramid",
        "heatmap",
        "head_share",
        "churn",
        "clv",
        "lift",
        "lift_hillstrom",
        "funnel",
        "basket",
    ],
)
def test_the_tour_figures_have_no_english_left_in_chinese(tour_figures, name):
    english = [w for w in _words(tour_figures[name]) if re.search(r"[A-Za-z]{3,}", w)]
    assert not english, f"{name}: untranslated {english}"


def test_churn_levels_are_named_with_the_method_terms(tour_figures):
    ax = tour_figures["churn"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "未流失",
        "轻度流失",
        "中度流失",
        "重度流失",
    ]


def test_chinese_figures_draw_without_missing_glyphs(tour_figures, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, fig in tour_figures.items():
            fig.savefig(tmp_path / f"{name}.png")
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing[:3]


@pytest.mark.parametrize("name", ["pyramid", "churn", "lift", "funnel"])
def test_every_chinese_character_has_a_font_that_draws_it(tour_figures, name):
    """Each text's own font list (what matplotlib falls back across) covers its characters."""
    undrawn = set()
    for text in tour_figures[name].findobj(matplotlib.text.Text):
        chars = {c for c in text.get_text() if not c.isascii()}
        if chars:
            fonts = font_manager.fontManager._find_fonts_by_props(text.get_fontproperties())
            cmaps = [FT2Font(str(path)).get_charmap() for path in fonts]
            undrawn |= {c for c in chars if not any(ord(c) in cmap for cmap in cmaps)}
    assert not undrawn, f"{name}: no font draws {sorted(undrawn)}"


def test_dollar_signs_in_names_are_drawn_as_text(tmp_path):
    """A store named with dollar signs (or a whole ``$...$``) is drawn as the characters it holds,
    not as matplotlib's math markup; an unpaired ``$`` does not break the drawing."""
    import pandas as pd

    from closedloop.figures import kpi as kpi_fig

    names = ["$x^2$ outlet", "Store $5 off", r"$\alpha$"]
    table = pd.DataFrame(
        {"heads": [0.3, -0.5, 1.0], "frequency": [0.2, 0.0, 1.0], "ticket": [0.5, -1.5, 1.0]},
        index=pd.Index(names, name="store"),
    )
    table["change"] = table.sum(axis=1)
    fig = kpi_fig.revenue_change(table)
    fig.savefig(tmp_path / "f.png")
    labels = fig.axes[0].get_yticklabels()
    assert [t.get_text() for t in labels] == names
    assert not any(t._preprocess_math(t.get_text())[1] for t in labels)
    plt.close(fig)
