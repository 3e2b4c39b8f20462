"""How a report shows things: its style, escaped text, notes, tables with ids, figures inline.

Every string from a user or the data is rendered as text (HTML-escaped), never as markup; tables
and figures carry ids so tests and readers can find them; headers, statuses and captions are
translated into the report's language.
"""

from __future__ import annotations

import base64
import html
import io
import re
import string
import threading
from concurrent.futures import Future
from pathlib import Path

import pandas as pd

from closedloop import fonts
from closedloop.glossary import translate

REPORT_CSS = """
<style>
.cl-table { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 0.92em; }
.cl-table th, .cl-table td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
.cl-table th { background: #f3f5f8; }
.cl-table td:first-child, .cl-table th:first-child { text-align: left; }
.cl-met { color: #1a7f37; font-weight: 600; }
.cl-missed { color: #c62828; font-weight: 600; }
.cl-caption { color: #555; font-size: 0.9em; margin: 0.2em 0 0.8em; }
figure.cl-figure { margin: 0.6em 0 1.4em; }
figure.cl-figure img { max-width: 100%; height: auto; }
.cl-note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 12px; margin: 0.6em 0; }
.cl-verdict { background: #f3f7fc; border-left: 4px solid #2f6db5; padding: 8px 16px; margin: 0.6em 0 1em; }
.cl-verdict p { margin: 0.35em 0; line-height: 1.45; }
.cl-status { margin: 0.4em 0 1em; }
.cl-status summary { cursor: pointer; color: #333; }
.cl-status.cl-ok summary { color: #1a7f37; }
.cl-status.cl-warn summary { color: #b26a00; font-weight: 600; }
.cl-sentence { margin: 0.3em 0 0.8em; line-height: 1.45; }
</style>
"""


#: the characters a report page draws from the shipped Chinese font: CJK symbols and
#: punctuation, kana, ideographs, compatibility ideographs, vertical and fullwidth forms
CJK_RANGES = ((0x2E80, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF))
_CJK = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in CJK_RANGES) + "]")
#: the family name of the embedded font
CJK_FAMILY = "closedloop CJK"


def embed_cjk_font(page: str) -> str:
    """The HTML ``page`` with the Chinese characters it uses drawn from the shipped font.

    A browser on a machine without a CJK font draws boxes for Chinese text (a zh report, or
    Chinese store and product names in any report). This embeds the subset of Noto Sans SC
    (:mod:`closedloop.fonts`) that the page needs, made by fontTools' subsetter, as a WOFF
    ``data:`` URI (the report's Content-Security-Policy allows fonts from ``data:`` only). Its
    ``unicode-range`` keeps it to those characters, so the page's own fonts draw the rest; it
    comes first in every element's font list (``!important``: the notebook template sets fonts
    on headings), because listed after them Chromium leaves some Chinese runs as boxes. A page
    without such characters, or without the font package, is returned unchanged."""
    used = "".join(sorted(set(_CJK.findall(page))))
    path = fonts.shipped_cjk()
    if not used or path is None:
        return page
    uri = cjk_subset(path, used)
    ranges = ", ".join(f"U+{a:X}-{b:X}" for a, b in CJK_RANGES)
    family = f'"{CJK_FAMILY}"'
    style = (
        "<style>\n"
        f'@font-face {{ font-family: {family}; src: url({uri}) format("woff");'
        f" unicode-range: {ranges}; }}\n"
        f"body, body * {{ font-family: {family}, var(--jp-content-font-family, sans-serif),"
        " sans-serif !important; }\n"
        f"body pre, body code, body pre *, body code * {{ font-family: {family},"
        " var(--jp-code-font-family, monospace), monospace !important; }\n"
        "</style>\n"
    )
    return re.sub(r"(</head\s*>)", lambda m: style + m.group(1), page, count=1, flags=re.I)


#: subsets made in this process, by font file and characters: reports of one run-all mostly
#: use the same characters (in memory only: a fresh machine has no cache to rely on)
_SUBSETS: dict[tuple[str, str], str] = {}
#: the shipped font read in the background (:func:`prepare_cjk_font`), for the next subset
_PREPARED: dict[str, Future] = {}
_LOCK = threading.Lock()


def prepare_cjk_font() -> None:
    """Read and parse the shipped font in a background thread, for the next subset: reading it
    is half the subsetter's time, and a report's process has nothing else to do while its
    kernel runs. At most one prepared copy waits (a subset uses its copy up)."""
    path = fonts.shipped_cjk()
    with _LOCK:
        if path is None or str(path) in _PREPARED:
            return
        future: Future = Future()
        _PREPARED[str(path)] = future

    def read() -> None:
        try:
            future.set_result(_load_font(path))
        except BaseException as exc:  # surfaced where the font is used
            future.set_exception(exc)

    threading.Thread(target=read, name="closedloop-font", daemon=True).start()


def _options():
    from fontTools import subset  # matplotlib's dependency: the font tools are always here

    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    return options


def _load_font(path: Path):
    """The font with every table read (what the subsetter would read lazily)."""
    from fontTools import subset

    font = subset.load_font(str(path), _options(), lazy=False)
    font.ensureDecompiled()
    return font


def cjk_subset(path: Path, characters: str) -> str:
    """The ``characters`` of the font at ``path`` as a WOFF ``data:`` URI (fontTools' subsetter),
    made once per process for each set of characters."""
    from fontTools import subset

    key = (str(path), characters)
    if key in _SUBSETS:
        return _SUBSETS[key]
    with _LOCK:
        prepared = _PREPARED.pop(str(path), None)
    font = prepared.result() if prepared is not None else subset.load_font(str(path), _options())
    options = _options()
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters)
    subsetter.subset(font)
    data = io.BytesIO()
    subset.save_font(font, data, options)
    uri = "data:font/woff;base64," + base64.b64encode(data.getvalue()).decode("ascii")
    _SUBSETS[key] = uri
    return uri


def css():
    """The report's own style (inline, so the HTML stays self-contained)."""
    from IPython.display import HTML

    return HTML(REPORT_CSS)


def text(template: str, **values):
    """HTML from a tiny fixed template syntax, every value HTML-escaped and shown as text.

    The template (the report's own words, never a user's) may start a line with ``# `` / ``## ``
    / ``### `` for a heading (with an id) and use ``**bold**`` and ```code```; other lines are
    paragraphs. Values (``{name}``, with format specs) are escaped and never read as markup:
    no Markdown, no LaTeX, no HTML, whatever a plan name or a segment in the data holds.
    """
    from IPython.display import HTML

    return HTML(render(template, **values))


_TOKEN = "\ue000{}\ue001"
_TOKENS = re.compile("\ue000(\\d+)\ue001")
_HEADING = re.compile(r"(#{1,3}) (.*)")


def render(template: str, **values) -> str:
    """The HTML :func:`text` shows (a string, for tests and other callers)."""
    formatter = string.Formatter()
    shown: list[str] = []
    parts = []
    for literal, field, spec, conversion in formatter.parse(template):
        parts.append(literal.replace("\ue000", "").replace("\ue001", ""))
        if field is None:
            continue
        value, _ = formatter.get_field(field, (), values)
        value = formatter.format_field(formatter.convert_field(value, conversion), spec or "")
        parts.append(_TOKEN.format(len(shown)))
        shown.append(html.escape(str(value)))
    blocks = []
    for line in "".join(parts).split("\n"):
        if not line.strip():
            continue
        heading = _HEADING.fullmatch(line.strip())
        body = _markup(html.escape(heading.group(2) if heading else line))
        if heading:
            level = len(heading.group(1))
            plain = _TOKENS.sub(lambda m: html.unescape(shown[int(m.group(1))]), heading.group(2))
            blocks.append(f'<h{level} id="{_slug(plain)}">{body}</h{level}>')
        else:
            blocks.append(f"<p>{body}</p>")
    return _TOKENS.sub(lambda m: shown[int(m.group(1))], "\n".join(blocks))


def _markup(escaped: str) -> str:
    """``**bold**`` and ```code``` of the template (values are still tokens here)."""
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _slug(words: str) -> str:
    """A heading's id: letters, digits and dashes only (from any text, in any script)."""
    slug = re.sub(r"[^\w]+", "-", words.lower(), flags=re.UNICODE).strip("-_")
    return "h-" + (slug[:60] or "section")


def paragraphs(sentences, element_id: str, css_class: str = "cl-verdict"):
    """Sentences as escaped paragraphs in one block with an id (the verdict at the top)."""
    from IPython.display import HTML

    body = "".join(f"<p>{html.escape(s)}</p>" for s in sentences)
    return HTML(f'<div class="{css_class}" id="{html.escape(element_id)}">{body}</div>')


def sentence(message: str):
    """One escaped sentence as a paragraph of the report (plain HTML, no markup)."""
    from IPython.display import HTML

    return HTML(f'<p class="cl-sentence">{html.escape(message)}</p>')


def details(summary: str, inner, element_id: str, open_: bool = False):
    """A status line that expands into ``inner`` (an HTML displayable, e.g. a table): a
    ``<details>`` element, so no script is needed; ``open_`` when something needs attention."""
    from IPython.display import HTML

    state = "cl-warn" if open_ else "cl-ok"
    return HTML(
        f'<details class="cl-status {state}" id="{html.escape(element_id)}"'
        f"{' open' if open_ else ''}><summary>{html.escape(summary)}</summary>"
        f"{getattr(inner, 'data', '')}</details>"
    )


def note(message: str):
    """A highlighted one-line note (warnings a reader must not miss)."""
    from IPython.display import HTML

    return HTML(f'<div class="cl-note">{html.escape(message)}</div>')


#: columns whose values are the report's own words (translated with the headers)
WORDED_COLUMNS = ("status", "basis", "to", "reason")


def table(
    frame: pd.DataFrame,
    table_id: str,
    caption: str = "",
    formats: dict | None = None,
    language: str = "en",
):
    """A table with an id (so tests and readers can find it), values escaped, numbers formatted
    (``formats``: column -> format string or ``"number"``); headers, statuses and caption in
    ``language``."""
    from IPython.display import HTML

    shown = frame.copy()
    for column, fmt in (formats or {}).items():
        if column in shown.columns:
            shown[column] = shown[column].map(lambda v, f=fmt: _fmt(f, v))
    shown = shown.astype(object).where(shown.notna(), "–")
    for column in WORDED_COLUMNS:
        if column in shown.columns:
            shown[column] = shown[column].map(lambda v: translate(str(v), language))
    shown.columns = [translate(str(c), language) for c in shown.columns]
    body = shown.to_html(
        index=False, table_id=table_id, classes="cl-table", escape=True, na_rep="–"
    )
    # final statuses and, in an interim Check, the pace: coloured like met / missed
    for status, style in (
        ("met", "met"),
        ("missed", "missed"),
        ("ahead", "met"),
        ("behind", "missed"),
    ):
        word = html.escape(translate(status, language))
        body = body.replace(f"<td>{word}</td>", f'<td class="cl-{style}">{word}</td>')
    caption = translate(caption, language)
    caption_html = f'<div class="cl-caption">{html.escape(caption)}</div>' if caption else ""
    return HTML(body + caption_html)


#: the resolution of a figure's PNG file, and the one the page shows it at (its size on the page)
FIGURE_DPI, SHOWN_DPI = 130, 110


def figure(fig, name: str, out_dir: str | Path, caption: str = "", language: str = "en"):
    """Save a figure as ``figures/<name>.png`` and show it inline with an id, alt text and caption;
    its wording in ``language``. Drawn once: the page carries the file's PNG, sized as a
    :data:`SHOWN_DPI` image would be (so it is sharp on a high-density screen, and drawing a
    figure a second time for the page is not needed).

    An English figure is saved as its ``tight_layout`` laid it out, every artist inside the
    canvas: no second layout pass to crop it (``bbox_inches="tight"``, a third of the saving's
    time). A translated one is cropped to what it draws, since its layout was made for the
    English words and a translation may reach past the canvas."""
    import matplotlib.pyplot as plt
    from IPython.display import HTML

    from closedloop.figures import localize

    localize(fig, language)
    caption = translate(caption, language)
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    crop = None if language == "en" else "tight"
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches=crop)
    plt.close(fig)
    png = buffer.getvalue()
    (folder / f"{name}.png").write_bytes(png)
    width, height = (
        round(int.from_bytes(png[i : i + 4]) * SHOWN_DPI / FIGURE_DPI) for i in (16, 20)
    )
    data = base64.b64encode(png).decode()
    alt = html.escape(caption or name)
    figure_id = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    return HTML(
        f'<figure class="cl-figure" id="fig-{figure_id}">'
        f'<img src="data:image/png;base64,{data}" width="{width}" height="{height}" alt="{alt}"/>'
        f"<figcaption class='cl-caption'>{alt}</figcaption></figure>"
    )


#: currency code -> symbol shown before the amount (unknown codes are shown as "CODE 1,234")
CURRENCIES = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def percent(value, digits: int = 1, signed: bool = False) -> str:
    """A rate as a percentage: ``percent(0.1779)`` -> "17.8%"; "–" for a missing value."""
    if _missing(value):
        return "–"
    return f"{value:{'+' if signed else ''}.{digits}%}"


def money(value, currency: str = "CNY", digits: int | None = None) -> str:
    """An amount with its currency: ``money(7749.0)`` -> "¥7,749", ``money(3.84)`` -> "¥3.84"
    (two decimals below 100 unless ``digits``), "-¥342" when negative, "¥0" for nothing (no
    decimals that suggest a measured amount); "–" for a missing one."""
    if _missing(value):
        return "–"
    digits = (2 if 0 < abs(value) < 100 else 0) if digits is None else digits
    amount = f"{abs(value):,.{digits}f}"
    symbol = CURRENCIES.get(currency.upper())
    shown = f"{symbol}{amount}" if symbol else f"{currency} {amount}"
    return f"-{shown}" if value < 0 and float(amount.replace(",", "")) else shown


def probability(value) -> str:
    """A probability as a reader takes it in: "99%", "> 99.9%", "< 0.1%", "0.5%"."""
    if _missing(value):
        return "–"
    if value > 0.999:
        return "> 99.9%"
    if value < 0.001:
        return "< 0.1%"
    if 0.01 <= value <= 0.99:
        return f"{value:.0%}"
    return f"{value:.1%}"


def interval(low, high, show=None) -> str:
    """A credible interval in one cell: "[low, high]", each end shown with ``show``."""
    show = show or number
    if _missing(low) or _missing(high):
        return "–"
    return f"[{show(low)}, {show(high)}]"


def number(value: float) -> str:
    """A number as a report shows it: 4 significant digits, or thousands separators from 1,000."""
    return _fmt("number", value)


def _fmt(fmt: str, value) -> str:
    """``fmt`` applied to a number; ``"number"`` gives 4 significant digits below 1,000 and
    thousands separators from there on (no 2.5e+04 in a report)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if pd.isna(value):
        return "–"
    if fmt == "number":
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return fmt.format(value)
