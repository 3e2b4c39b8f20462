"""How the report shows things: escaped text, translated tables with ids, formatted numbers."""

from __future__ import annotations

import base64
import io

import pandas as pd

from closedloop import page
from closedloop.glossary import translate


def test_translate_keeps_data_names_and_whole_phrases():
    assert translate("target_value", "zh") == "目标值"
    assert translate("Funnel by channel: step rates", "zh") == "分渠道漏斗：逐级转化率"
    assert translate("mens buyer vs holdout", "zh") == "mens buyer 对比对照组"
    assert translate("target_value", "en") == "target_value"
    table = page.table(pd.DataFrame({"target": ["a"], "status": ["met"]}), "t", language="zh").data
    assert '<td class="cl-met">达成</td>' in table and "<th>目标</th>" in table


def test_text_and_notes_escape_what_they_are_given():
    shown = page.text("# {name}", name="<script>x</script> *bold*").data
    assert shown == '<h1 id="h-script-x-script-bold">&lt;script&gt;x&lt;/script&gt; *bold*</h1>'
    assert "&lt;b&gt;" in page.note("<b>srm</b>").data


def test_text_never_reads_a_value_as_markdown_or_latex():
    hostile = "[x](javascript:alert(1)) ![b](http://example.invalid/b.png) $x$ **no** `no`"
    shown = page.render("**{c}** · `{run}` {name}", c="spring", run="r1", name=hostile)
    assert shown == (
        "<p><strong>spring</strong> · <code>r1</code> " + hostile.replace("'", "&#x27;") + "</p>"
    )
    assert page.render("## {n}. {h:>3}", n=2, h="ab") == '<h2 id="h-2-ab">2.  ab</h2>'


def test_numbers_read_as_a_report_shows_them():
    assert page.number(0.123456) == "0.1235"
    assert page.number(25_000.4) == "25,000"
    assert page.number(float("nan")) == "–"
    formatted = page.table(pd.DataFrame({"x": [0.5]}), "t", formats={"x": "{:.1%}"}).data
    assert 'id="t"' in formatted and "<td>50.0%</td>" in formatted


def test_percent_money_and_probability_read_without_scientific_notation():
    assert page.percent(0.17789) == "17.8%" and page.percent(0.25, 0) == "25%"
    assert page.percent(float("nan")) == "–" and page.percent(0.42, 0, signed=True) == "+42%"
    assert page.money(7749.01) == "¥7,749" and page.money(3.843) == "¥3.84"
    assert page.money(-342.0, "USD") == "-$342" and page.money(12_000, "SEK") == "SEK 12,000"
    # nothing is "¥0", not "¥0.00"; a missing amount is a dash, never a money figure
    assert page.money(0.0) == "¥0" and page.money(-0.0) == "¥0" and page.money(0.004) == "¥0.00"
    assert page.money(float("nan")) == page.money(None) == "–"
    assert page.probability(0.9994) == "> 99.9%" and page.probability(4e-51) == "< 0.1%"
    assert page.probability(0.99) == "99%" and page.probability(0.995) == "99.5%"
    assert page.interval(0.21, 0.71, lambda v: page.percent(v, 0)) == "[21%, 71%]"


def test_details_open_only_when_something_is_wrong():
    inner = page.table(pd.DataFrame({"x": [1]}), "inner")
    closed = page.details("all good <ok>", inner, "dq").data
    assert 'id="dq"' in closed and " open" not in closed and "&lt;ok&gt;" in closed
    assert 'id="inner"' in closed
    assert "<details" in page.details("2 rows dropped", inner, "dq", open_=True).data
    assert " open>" in page.details("2 rows dropped", inner, "dq", open_=True).data


def _embedded_font(page_html: str):
    import base64
    import io
    import re

    from fontTools.ttLib import TTFont

    found = re.search(r"url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)", page_html)
    assert found, "no embedded font"
    return TTFont(io.BytesIO(base64.b64decode(found.group(1))))


def test_a_page_with_chinese_carries_the_glyphs_it_draws():
    """A browser without a CJK font still draws the page's Chinese: every Chinese character
    of the page (text from the glossary or from the data) is in the embedded font."""
    body = "<p>复盘：会员份额 95%（门店「静安寺」）</p><p>revenue ¥1,200</p>"
    shown = page.embed_cjk_font(f"<html><head><title>t</title></head><body>{body}</body></html>")
    assert shown.count("@font-face") == 1 and shown.index("@font-face") < shown.index("</head>")
    assert page.CJK_FAMILY in shown and "unicode-range" in shown
    cmap = _embedded_font(shown).getBestCmap()
    for char in "复盘：会员份额（门店「静安寺」）":
        assert ord(char) in cmap, char
    assert ord("漢") not in cmap  # only what the page uses: the font stays small
    assert len(shown) < 200_000


def test_a_page_without_chinese_is_left_as_it_is():
    plain = "<html><head></head><body><p>revenue £1,200 — met</p></body></html>"
    assert page.embed_cjk_font(plain) == plain


def test_a_font_read_ahead_gives_the_same_subset_as_one_read_on_demand():
    """The font read in the background while a kernel runs, and the subset kept for the next
    page with the same characters, embed exactly what a fresh read embeds."""
    from fontTools import subset

    from closedloop import fonts

    path, characters = fonts.shipped_cjk(), "会员门店复盘"
    options = page._options()
    font = subset.load_font(str(path), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters)
    subsetter.subset(font)
    data = io.BytesIO()
    subset.save_font(font, data, options)
    expected = "data:font/woff;base64," + base64.b64encode(data.getvalue()).decode("ascii")
    page._SUBSETS.clear()
    page.prepare_cjk_font()
    assert str(path) in page._PREPARED
    assert page.cjk_subset(path, characters) == expected
    assert str(path) not in page._PREPARED  # the read-ahead copy was used up
    page.prepare_cjk_font()
    page._PREPARED[str(path)].result()
    assert page.cjk_subset(path, characters) == expected  # from the cache
    assert str(path) in page._PREPARED  # still waiting for a page with other characters
    assert page.cjk_subset(path, characters + "漢") != expected


def test_a_figure_is_drawn_once_and_shown_at_its_page_size(tmp_path):
    """The page carries the saved PNG itself, at the size a 110-dpi drawing would have."""
    import re

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2, 3], [3, 1, 2])
    shown = page.figure(fig, "line <x>", tmp_path, caption="a <b>line</b>").data
    saved = (tmp_path / "figures" / "line <x>.png").read_bytes()
    (data,) = re.findall(r'src="data:image/png;base64,([^"]+)"', shown)
    assert base64.b64decode(data) == saved
    width, height = Image.open(io.BytesIO(saved)).size
    assert 'id="fig-line--x-"' in shown and 'alt="a &lt;b&gt;line&lt;/b&gt;"' in shown
    assert f'width="{round(width * 110 / 130)}" height="{round(height * 110 / 130)}"' in shown
    assert (width, height) == (4 * 130, 3 * 130)  # English: the canvas as laid out


def test_a_translated_figure_is_cropped_to_what_it_draws(tmp_path):
    """A translated label may be wider than the English one the layout made room for: the
    Chinese figure is cropped to its artists, past the canvas where they reach past it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from closedloop import figures

    figures.use_style()
    sizes = {}
    for language in ("en", "zh"):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([1, 2, 3], [3, 1, 2])
        ax.set_title("store")
        fig.tight_layout()
        ax.set_title("Westfield store " * 4)  # reaches past both sides of the canvas
        page.figure(fig, language, tmp_path, language=language)
        sizes[language] = Image.open(tmp_path / "figures" / f"{language}.png").size
    assert sizes["en"] == (4 * 130, 3 * 130)
    assert sizes["zh"][0] > 4 * 130  # widened to hold the label
