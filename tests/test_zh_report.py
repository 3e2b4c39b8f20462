"""A Chinese report is Chinese: every sentence, header, caption and figure text, apart from data
values (arm, segment, item names, ids) and a few abbreviations."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.text
import pytest

from closedloop import page, pdca, sections
from closedloop.datasets import write_demo

#: abbreviations a Chinese report writes as they are
ABBREVIATIONS = {"RFM", "ROI", "PDCA", "CLV", "P", "SMS", "WeCom", "Beta", "GrowthBook", "CNY"}
ABBREVIATIONS |= {
    "Binomial",
    "M",
    "A",
    "B",
    "F",
    "R",
    "p",
    "status",
    "redesign",
    "next_plan",
    "yaml",
}
#: table columns whose cells are data values (their headers, in Chinese)
DATA_COLUMNS = {"实验组", "分群", "规则", "文件", "英文"}


class _Text(HTMLParser):
    """The visible text of a report, leaving out the cells of data-value columns."""

    def __init__(self):
        super().__init__()
        self.words, self.headers, self.column, self.skip = [], [], -1, 0
        self.cell = None

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.skip += 1
        if tag == "tr":
            self.column = -1
        if tag == "thead":
            self.headers = []
        if tag in ("td", "th"):
            self.column += 1
            self.cell = tag

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self.skip -= 1
        if tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.skip:
            return
        if self.cell == "th":
            self.headers.append(data.strip())
        elif (
            self.cell == "td"
            and self.column < len(self.headers)
            and self.headers[self.column] in DATA_COLUMNS
        ):
            return
        self.words.append(data)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    demo = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=2_000)
    return pdca.run_check(demo / "plan.yaml", "2026-03-31")


def _english(text: str, allowed: set[str]) -> set[str]:
    return {w for w in re.findall(r"[A-Za-z][A-Za-z_]*", text) if w not in allowed}


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_the_chinese_report_has_no_english_outside_data_values(checked, tmp_path, monkeypatch):
    check, next_plan = checked
    data = {*map(str, check.plan.arms), *check.segments["segment"].astype(str)}
    data |= {str(c) for c in check.funnel["channel"]} if check.funnel is not None else set()
    data |= {check.plan.campaign, *re.findall(r"[A-Za-z_]+", check.plan.campaign)}
    data |= set(re.findall(r"[A-Za-z_]+", check.plan.name))
    data |= {w for r in check.cross_sell["rule"] for w in re.findall(r"[A-Za-z_]+", str(r))}
    data |= {w for t in check.quality["source"] for w in re.findall(r"[A-Za-z_]+", str(t))}
    data |= {Path(v).stem for v in check.plan.data.model_dump(exclude_none=True).values()}
    data |= {"r", "csv"}  # the run id r1, file names
    base = check.customer_base
    data |= {*base.before["segment"].astype(str), *base.after["segment"].astype(str)}
    data |= {"absent"}  # the migration's "(absent)" row: a tick label, not yet translated
    figure_texts = []
    shown = page.figure

    def keep(fig, name, out_dir, caption="", language="en"):
        from closedloop.figures import localize

        localize(fig, language)
        figure_texts.extend(
            (name, t.get_text()) for t in fig.findobj(matplotlib.text.Text) if t.get_text()
        )
        return shown(fig, name, out_dir, caption, language)

    monkeypatch.setattr(page, "figure", keep)
    parts = [
        *sections.header(check, "zh", "r1", next_plan),
        *sections.plan_recap(check, "zh"),
        *sections.scorecard(check, "zh"),
        *sections.lift(check, "zh", tmp_path),
        *sections.progress(check, "zh", tmp_path),
        *sections.funnel(check, "zh", tmp_path),
        *sections.who_responded(check, "zh", tmp_path),
        *sections.customer_base(check, "zh", tmp_path),
        *sections.cross_sell(check, "zh", tmp_path),
        *sections.act(check, next_plan, "zh"),
        *sections.appendix(check, "zh"),
    ]
    allowed = ABBREVIATIONS | data
    reader = _Text()
    for part in parts:
        body = getattr(part, "data", "")
        reader.feed(re.sub(r'src="data:image/png;base64,[^"]*"', "", body))
    text = " ".join(reader.words)
    assert not _english(text, allowed), sorted(_english(text, allowed))
    assert figure_texts
    stray = {(name, t) for name, t in figure_texts if _english(t, allowed)}
    assert not stray, sorted(stray)
