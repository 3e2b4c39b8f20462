"""A real report on hostile names: text stays text, nothing runs, nothing is fetched.

The plan name, a treated arm and an audience segment (a value from the data, carried into the
next plan) hold Markdown links and images, raw HTML and LaTeX; the report must show them as text,
hold no script, load nothing but data: URIs and declare a Content-Security-Policy.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd
import pytest
import yaml

from closedloop import report
from closedloop.datasets import write_demo

HOSTILE = (
    "[x](javascript:alert(1)) ![b](http://example.invalid/b.png) <img src=x onerror=alert(1)> $x$"
)


class Audit(HTMLParser):
    """What a browser would run or fetch from a page."""

    def __init__(self):
        super().__init__()
        self.problems, self.csp = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in {"script", "iframe", "object", "embed", "base", "link", "frame"}:
            self.problems.append(f"<{tag}>")
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = attrs.get("content")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            if name in {"href", "src", "srcset", "action", "formaction", "poster", "data"}:
                value = (value or "").strip()
                if not (value.startswith("data:") or value.startswith("#")):
                    self.problems.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag


@pytest.fixture(scope="module")
def hostile_html(tmp_path_factory):
    folder = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=1500)
    raw = yaml.safe_load((folder / "plan.yaml").read_text())
    raw["name"] = HOSTILE
    raw["arms"] = {HOSTILE if k == "sms" else k: v for k, v in raw["arms"].items()}
    raw["cost"] = {HOSTILE if k == "sms" else k: v for k, v in raw["cost"].items()}
    raw["audience"]["segments"] = [
        HOSTILE if s == "lapsed" else s for s in raw["audience"]["segments"]
    ]
    (folder / "plan.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    for name in ("assignments.csv", "outcomes.csv"):
        frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
        frame["arm"] = frame["arm"].replace({"sms": HOSTILE})
        frame["segment"] = frame["segment"].replace({"lapsed": HOSTILE})
        frame.to_csv(folder / name, index=False)
    result = report.run(folder / "plan.yaml", tmp_path_factory.mktemp("reports"), "r1")
    assert result.ok, result.error
    return result.html.read_text()


def test_nothing_in_the_report_runs_or_loads(hostile_html):
    audit = Audit()
    audit.feed(hostile_html)
    assert audit.problems == []
    assert audit.csp == report.CSP


def test_hostile_names_are_shown_as_text(hostile_html):
    escaped = HOSTILE.replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in hostile_html  # the plan name, as written
    assert "javascript:" not in hostile_html.replace(escaped, "")
    assert "example.invalid" not in hostile_html.replace(escaped, "")
    assert "<script" not in hostile_html.lower()  # no MathJax: $x$ is not typeset
