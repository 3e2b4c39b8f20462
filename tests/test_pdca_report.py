"""The PDCA report beyond the demo: Hillstrom's test as a plan, the Chinese report, the history."""

from __future__ import annotations

import json
import re

import matplotlib
import pandas as pd
import pytest
import yaml
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from closedloop import DataError, figures, report
from closedloop.datasets import hillstrom, write_demo, write_hillstrom
from closedloop.plan import Plan

CHINESE = "客户金字塔目标达成闭环"


@pytest.fixture(scope="module")
def hillstrom_run(hillstrom_path, tmp_path_factory):
    folder = write_hillstrom(tmp_path_factory.mktemp("hillstrom"), hillstrom_path)
    out = tmp_path_factory.mktemp("reports")
    result = report.run(folder / "plan.yaml", out, "h1")
    assert result.ok, result.error
    return result


def test_hillstrom_plan_runs_end_to_end(hillstrom_run, hillstrom_path):
    raw = hillstrom(hillstrom_path)
    treated = raw[raw["arm"] != "No E-Mail"]
    summary = json.loads((hillstrom_run.folder / "summary.json").read_text())
    card = {row["target"]: row for row in summary["scorecard"]}
    assert card["visit_rate"]["actual"] == pytest.approx(treated["visit"].mean(), rel=1e-12)
    assert card["conversion_rate"]["actual"] == pytest.approx(
        treated["conversion"].mean(), rel=1e-12
    )
    rates = raw.groupby("arm")["conversion"].mean()
    assert card["relative_lift"]["actual"] == pytest.approx(
        rates["Mens E-Mail"] / rates["No E-Mail"] - 1, rel=0.02
    )
    assert card["relative_lift"]["basis"] == (
        "primary arm (Mens E-Mail, the plan's first treated arm) on converted"
    )
    assert {row["status"] for row in summary["scorecard"]} == {"met"}
    html = hillstrom_run.html.read_text()
    assert 'id="scorecard"' in html and 'id="fig-lift"' in html
    assert 'id="pyramid"' not in html  # no transactions: no customer-base section


def test_hillstrom_act_drops_the_womens_email(hillstrom_run):
    nxt = Plan.from_yaml(hillstrom_run.folder / "next_plan.yaml", check_paths=False)
    assert set(nxt.arms) == {"No E-Mail", "Mens E-Mail"}
    assert any(c.field == "arms.Womens E-Mail" and c.to == "dropped" for c in nxt.changes)


def test_the_style_finds_a_font_for_chinese():
    figures.use_style()
    prop = font_manager.FontProperties(family=matplotlib.rcParams["font.family"])
    fonts = font_manager.fontManager._find_fonts_by_props(prop)
    covered = {
        ch for path in fonts for ch in CHINESE if FT2Font(str(path)).get_char_index(ord(ch)) != 0
    }
    assert covered == set(CHINESE)  # the package ships a CJK font: no system font needed


@pytest.fixture(scope="module")
def chinese_run(tmp_path_factory):
    folder = write_demo(tmp_path_factory.mktemp("demo"), seed=2, n_customers=3_000)
    out = tmp_path_factory.mktemp("reports")
    first = report.run(folder / "plan.yaml", out, "en1", asof="2026-03-31")
    assert first.ok, first.error
    with pytest.MonkeyPatch.context() as env:  # the kernel starts with an empty font cache
        env.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mplconfig")))
        result = report.run(folder / "plan.yaml", out, "zh1", asof="2026-03-31", language="zh")
    assert result.ok, result.error
    return result


def test_chinese_report_has_chinese_headings_and_no_missing_glyphs(chinese_run):
    html = chinese_run.html.read_text()
    for heading in ("计划回顾", "目标达成", "提升", "处理", "PDCA 历史"):
        assert heading in html
    assert ">达成<" in html and ">未达成<" in html  # statuses, in Chinese
    executed = (chinese_run.folder / "report.ipynb").read_text()
    for text in (html, executed):  # no warning of matplotlib's reaches the report
        assert "missing from font" not in text and "Glyph" not in text
        assert "UserWarning" not in text


def test_the_chinese_report_carries_the_font_for_every_chinese_character_it_shows(chinese_run):
    """A browser without a CJK font draws the page's Chinese from the font the page embeds."""
    import base64
    import io

    from fontTools.ttLib import TTFont

    from closedloop import page

    html = chinese_run.html.read_text()
    (data,) = re.findall(r"url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)", html)
    cmap = TTFont(io.BytesIO(base64.b64decode(data))).getBestCmap()
    shown = set(page._CJK.findall(html))
    assert len(shown) > 200 and {ord(ch) for ch in shown} <= set(cmap)


def test_history_shows_earlier_runs_and_this_one(chinese_run):
    html = chinese_run.html.read_text()
    assert 'id="history"' in html and 'id="fig-history"' in html
    assert "周期 1" in html  # one entry for the cycle: the zh run replaced the en run
    assert (chinese_run.folder / "figures" / "history.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    """A shop's own files, named its own way, as in the README's example."""
    demo = write_demo(tmp_path_factory.mktemp("demo"), seed=3, n_customers=2_000)
    folder = tmp_path_factory.mktemp("shop")
    tx = pd.read_csv(demo / "transactions.csv")
    orders = tx.groupby(["order_id", "customer_id", "order_date"], as_index=False)["amount"].sum()
    orders.rename(
        columns={
            "order_id": "Receipt",
            "customer_id": "Member No",
            "order_date": "Order Date",
            "amount": "Paid (EUR)",
        }
    ).to_csv(folder / "orders.csv", index=False)
    groups = pd.read_csv(demo / "assignments.csv")[["customer_id", "arm"]]
    groups["arm"] = groups["arm"].map({"control": "holdout", "sms": "text", "wecom": "chat"})
    groups.rename(columns={"customer_id": "Member No", "arm": "Group"}).to_csv(
        folder / "campaign.csv", index=False
    )
    plan = {
        "campaign": "march-reactivation",
        "objective": "win back",
        "period": {"start": "2026-03-01", "end": "2026-03-31"},
        "arms": {"holdout": 0.1, "text": 0.45, "chat": 0.45},
        "control": "holdout",
        "targets": {"conversion_rate": 0.15},
        "data": {"transactions": "orders.csv", "assignments": "campaign.csv"},
        "columns": {
            "transactions": {
                "Member No": "customer_id",
                "Order Date": "order_date",
                "Paid (EUR)": "amount",
                "Receipt": "order_id",
            },
            "assignments": {"Member No": "customer_id", "Group": "arm"},
        },
    }
    return folder, plan


def test_own_data_with_other_column_names(own_data):
    from closedloop import pdca

    folder, raw = own_data
    (folder / "plan.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = Plan.from_yaml(folder / "plan.yaml")
    data = pdca.load(plan, asof="2026-03-31")
    result = pdca.check(plan, data, asof="2026-03-31")
    assignments = pd.read_csv(folder / "campaign.csv")
    assert len(data.outcomes) == len(assignments)
    assert set(result.lift["arm"]) == {"text", "chat"}
    assert result.scorecard.loc[0, "target"] == "conversion_rate"


def test_arms_that_differ_from_the_plan_are_named(own_data):
    from closedloop import pdca

    folder, raw = own_data
    raw = {**raw, "arms": {"holdout": 0.1, "sms": 0.45, "chat": 0.45}}
    (folder / "renamed.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = Plan.from_yaml(folder / "renamed.yaml")
    with pytest.raises(DataError, match=r"arm\(s\) \['text'\] are not in the plan; plan arm"):
        pdca.load(plan, asof="2026-03-31")
