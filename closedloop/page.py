"""How a report shows things: its style, escaped text, notes, tables with ids, figures inline.

Every string from a user or the data is rendered as text (HTML-escaped), never as markup; tables
and figures carry ids so tests and readers can find them; headers, statuses and captions are
translated into the report's language.
"""

from __future__ import annotations

import html
import re
import string
from pathlib import Path

import pandas as pd

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
</style>
"""


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
    for status in ("met", "missed"):
        word = html.escape(translate(status, language))
        body = body.replace(f"<td>{word}</td>", f'<td class="cl-{status}">{word}</td>')
    caption = translate(caption, language)
    caption_html = f'<div class="cl-caption">{html.escape(caption)}</div>' if caption else ""
    return HTML(body + caption_html)


def figure(fig, name: str, out_dir: str | Path, caption: str = "", language: str = "en"):
    """Save a figure as ``figures/<name>.png`` and show it inline with an id, alt text and caption;
    its wording in ``language``."""
    import base64
    import io as _io

    import matplotlib.pyplot as plt
    from IPython.display import HTML

    from closedloop.figures import localize

    localize(fig, language)
    caption = translate(caption, language)
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=130, bbox_inches="tight")
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    alt = html.escape(caption or name)
    figure_id = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    return HTML(
        f'<figure class="cl-figure" id="fig-{figure_id}">'
        f'<img src="data:image/png;base64,{data}" alt="{alt}"/>'
        f"<figcaption class='cl-caption'>{alt}</figcaption></figure>"
    )


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
