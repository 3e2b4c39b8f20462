"""The report's sections, and the report notebook as presentation only."""

from __future__ import annotations

import ast
import dataclasses
import html
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from closedloop import pdca, sections
from closedloop.datasets import write_demo

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "pdca_check.ipynb"
#: what a presentation cell may not hold: definitions, loops, comprehensions
ANALYSIS = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def _code_cells():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_report_notebook_only_calls_closedloop_and_displays():
    cells = _code_cells()
    params = cells[0]
    assert "parameters" in params.metadata.get("tags", [])
    for node in ast.parse(params.source).body:
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), ast.dump(node)
    allowed = {"display"}
    for cell in cells[1:]:
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, ANALYSIS), f"analysis code in a cell:\n{cell.source}"
            if isinstance(node, ast.ImportFrom):
                names = {a.asname or a.name for a in node.names}
                if node.module == "IPython.display":
                    assert names == {"display"}
                else:
                    assert node.module == "closedloop" or node.module.startswith("closedloop.")
                allowed |= names
            elif isinstance(node, ast.Import):
                raise AssertionError(f"import {ast.unparse(node)}: use from closedloop import ...")
    for cell in cells[1:]:
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call):
                root = node.func
                while isinstance(root, ast.Attribute):
                    root = root.value
                assert isinstance(root, ast.Name) and root.id in allowed, (
                    f"{ast.unparse(node.func)}: a cell calls only what it imports from closedloop"
                )
    shown = cells[2:]
    assert all(len(ast.parse(c.source).body) == 1 for c in shown), "one section per cell"


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    demo = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=2_000)
    return pdca.run_check(demo / "plan.yaml", "2026-03-31")


def _html(parts) -> str:
    return "\n".join(getattr(p, "data", "") for p in parts)


def _headings(check, next_plan, tmp_path) -> list[str]:
    parts = [
        *sections.plan_recap(check),
        *sections.scorecard(check),
        *sections.lift(check, out_dir=tmp_path),
        *sections.progress(check, out_dir=tmp_path),
        *sections.funnel(check, out_dir=tmp_path),
        *sections.who_responded(check, out_dir=tmp_path),
        *sections.customer_base(check, out_dir=tmp_path),
        *sections.cross_sell(check, out_dir=tmp_path),
        *sections.act(check, next_plan),
        *sections.next_contacts(check),
        *sections.history(check, next_plan, "r1", tmp_path / "ledger.csv", out_dir=tmp_path),
        *sections.appendix(check),
    ]
    return [html.unescape(h) for h in re.findall(r"<h2 id=\"[^\"]*\">(.*?)</h2>", _html(parts))]


def test_every_section_with_its_ids_and_numbers(checked, tmp_path):
    check, next_plan = checked
    assert _headings(check, next_plan, tmp_path) == [
        "1. Plan recap",
        "2. Scorecard",
        "3. Lift over the holdout",
        "4. Progress",
        "5. Funnel",
        "6. Who responded",
        "7. Customer base",
        "8. Cross-sell",
        "9. Act",
        "10. Next contacts",
        "11. PDCA history",
        "12. Appendix",
    ]
    progress = _html(sections.progress(check, out_dir=tmp_path))
    assert 'id="fig-progress"' in progress and 'id="progress-weekly"' in progress
    html = _html(sections.customer_base(check, out_dir=tmp_path))
    assert 'id="pyramid"' in html and 'id="fig-pyramid"' in html and 'id="fig-migration"' in html
    assert "(12 months to 2026-03-31)" in html
    assert 'id="basket-rules"' in _html(sections.cross_sell(check, out_dir=tmp_path))
    assert 'id="data-quality"' in _html(sections.header(check, run_id="r1"))
    assert "average ticket, as the method defines it" in _html(sections.appendix(check))
    assert (tmp_path / "figures" / "pyramid.png").exists()


def test_sections_without_data_are_left_out_and_the_numbers_run_on(checked, tmp_path):
    check, next_plan = checked
    lean = dataclasses.replace(
        check, customer_base=None, cross_sell=None, funnel=None, progress=None, contacts=None
    )
    assert sections.customer_base(lean) == sections.cross_sell(lean) == sections.funnel(lean) == ()
    assert sections.progress(lean) == sections.next_contacts(lean) == ()
    assert _headings(lean, next_plan, tmp_path) == [
        "1. Plan recap",
        "2. Scorecard",
        "3. Lift over the holdout",
        "4. Who responded",
        "5. Act",
        "6. PDCA history",
        "7. Appendix",
    ]
    assert "RFM monetary" not in _html(sections.appendix(lean))


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # fonts: test_pdca_report.py
def test_a_shorter_window_is_named_in_chinese_too(checked, tmp_path):
    check, _ = checked
    base = dataclasses.replace(check.customer_base, period_days=90)
    short = dataclasses.replace(check, customer_base=base)
    assert "(90 days to 2026-03-31)" in _html(sections.customer_base(short, out_dir=tmp_path))
    zh = _html(sections.customer_base(short, "zh", out_dir=tmp_path))
    assert "90 天，截至 2026-03-31" in zh


def test_the_report_cross_sells_in_the_methods_order(checked, tmp_path):
    """method.md §6: recommend a pair only when lift > 1, and among those by confidence."""
    html = _html(sections.cross_sell(checked[0], out_dir=tmp_path))
    table = re.search(r'<table[^>]*id="basket-rules".*?</table>', html, re.S).group(0)
    rows = [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    rows = [r for r in rows if r]
    assert len(rows) > 3
    confidence = [float(r[2].rstrip("%")) for r in rows]
    assert all(float(r[3]) > 1 for r in rows)
    assert confidence == sorted(confidence, reverse=True)


def _cells(html_text: str, table_id: str) -> list[list[str]]:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html_text, re.S).group(0)
    rows = [
        [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]
    return [r for r in rows if r]


def test_next_contacts_shows_the_files_it_writes_and_no_holdout_customer(checked, tmp_path):
    """The counts the section shows are the rows of the files the run writes, and nobody in this
    cycle's holdout or in the next cycle's (next_assignments.csv) is in them."""
    import pandas as pd

    check, next_plan = checked
    pdca.write(check, next_plan, tmp_path, "r1")
    folder = tmp_path / pdca.CONTACTS_DIR
    files = {
        c: pd.read_csv(folder / f"contacts_{c}.csv", dtype=str)
        for c in ("wecom", "group", "app", "sms")
    }
    written = pd.concat(files.values(), ignore_index=True)
    assert len(written) > 100 and written["customer_id"].is_unique  # the weekly cap: one each
    for channel, frame in files.items():
        assert (frame["channel"] == channel).all()
    for channel in files:
        parquet = pd.read_parquet(folder / f"contacts_{channel}.parquet")
        assert len(parquet) == len(files[channel])

    shown = _html(sections.next_contacts(check))
    listed = {row[0]: row[1] for row in _cells(shown, "contact-files")}
    for channel, frame in files.items():
        assert listed[f"contacts/contacts_{channel}.csv"] == f"{len(frame):,}"
    counts = _cells(shown, "contact-counts")
    header = ["wecom", "group", "app", "sms", "total"]
    total = dict(zip(header, counts[-1][2:], strict=True))
    assert counts[-1][0] == "total"
    assert total == {c: f"{len(files[c]):,}" for c in files} | {"total": f"{len(written):,}"}
    by_type = {}
    for row in counts[:-1]:
        by_type[row[0]] = by_type.get(row[0], 0) + int(row[-1].replace(",", ""))
    assert by_type == written["type"].value_counts().to_dict()
    assert f"<strong>{len(written):,}</strong> contacts" in shown

    assignments = pd.read_csv(check.plan.data.assignments, dtype=str)
    upcoming = (
        pd.read_csv(tmp_path / pdca.NEXT_ASSIGNMENTS_FILE, dtype=str)
        if (tmp_path / pdca.NEXT_ASSIGNMENTS_FILE).exists()
        else assignments.iloc[:0]
    )
    holdout = set(assignments.loc[assignments["arm"] == check.plan.control, "customer_id"])
    holdout |= set(upcoming.loc[upcoming["arm"] == next_plan.control, "customer_id"])
    assert len(holdout) > 50
    assert not holdout & set(written["customer_id"])
    assert check.contacts.holdout == len(holdout)
    reasons = _cells(shown, "contact-reasons")
    rules = written.merge(
        pd.DataFrame(
            {
                "customer_id": check.contacts.week.rows["customer_id"],
                "rule": check.contacts.week.rows["rule"],
            }
        ),
        on="customer_id",
    )["rule"].value_counts()
    assert [int(r[2].replace(",", "")) for r in reasons] == rules.head(len(reasons)).tolist()


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_next_contacts_in_chinese(checked):
    shown = _html(sections.next_contacts(checked[0], "zh"))
    assert "下一步联络" in shown and "企业微信一对一" in shown and "挽回" in shown
    assert "本周联络名单共" in shown and "合计" in shown and ">total<" not in shown


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_a_chinese_report_gives_its_contact_reasons_in_chinese(tmp_path):
    """The example reasons of a Chinese report's Next contacts, and the reasons in the files it
    writes, hold no English: only the item names the data gives are Latin letters."""
    import pandas as pd

    demo = write_demo(tmp_path / "demo", seed=1, n_customers=2_000)
    check, next_plan = pdca.run_check(demo / "plan.yaml", "2026-03-31", language="zh")
    items = sorted(set(pd.read_csv(demo / "items.csv")["item"]), key=len, reverse=True)

    def english(text: str) -> bool:
        for item in items:
            text = text.replace(item, "")
        return bool(re.search(r"[A-Za-z]", text))

    examples = [
        row[4] for row in _cells(_html(sections.next_contacts(check, "zh")), "contact-reasons")
    ]
    assert len(examples) >= 3 and not [e for e in examples if english(e)], examples
    pdca.write(check, next_plan, tmp_path / "run", "zh-run")
    written = pd.concat(
        pd.read_csv(tmp_path / "run" / pdca.CONTACTS_DIR / f"contacts_{c}.csv")
        for c in ("wecom", "group", "app", "sms")
    )
    assert len(written) > 100 and not written["reason"].map(english).any()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_scorecard_and_lift_say_in_a_sentence_what_their_probabilities_mean(
    checked, tmp_path, language
):
    check, _ = checked
    # the example is the table's probability nearest 50%
    p_met, p_better = (
        min(check.scorecard["p_met"].dropna(), key=lambda p: abs(p - 0.5)),
        min(check.lift["p_better"].dropna(), key=lambda p: abs(p - 0.5)),
    )
    card = html.unescape(_html(sections.scorecard(check, language)))
    lift = html.unescape(_html(sections.lift(check, language, out_dir=tmp_path)))
    if language == "en":
        assert f"P(met) {p_met:.2f}: given the data, the chance that" in card
        assert f"reached the target is {p_met:.0%} (" in card
        assert f"P(better) {p_better:.2f}: given the data, the chance that" in lift
        assert f"above the holdout's is {p_better:.0%}." in lift
    else:
        assert f"达成概率 {p_met:.2f}：根据数据，真实值达到目标的概率为 {p_met:.0%}" in card
        assert f"优于对照概率 {p_better:.2f}：根据数据" in lift


def test_a_chinese_migration_heatmap_names_the_rfm_segments_in_chinese(
    checked, monkeypatch, tmp_path
):
    """The RFM segments are the method's names, not the data's: a zh report's migration heatmap
    shows 即将沉睡客户, never about_to_sleep, with the same counts."""
    from closedloop import rfm
    from closedloop.figures import rfm as rfm_fig
    from closedloop.glossary import RFM_SEGMENT_NAMES

    assert set(rfm.SEGMENTS["segment"]) | {rfm.ABSENT} == set(RFM_SEGMENT_NAMES)
    check, _ = checked
    drawn = []
    real = rfm_fig.migration_heatmap
    monkeypatch.setattr(rfm_fig, "migration_heatmap", lambda m: drawn.append(m) or real(m))
    sections.customer_base(check, out_dir=tmp_path, language="zh")
    counts, before = drawn[0].counts, check.customer_base.migration.counts
    assert list(counts.index) == [RFM_SEGMENT_NAMES[s] for s in before.index]
    assert list(counts.columns) == [RFM_SEGMENT_NAMES[s] for s in before.columns]
    assert (counts.to_numpy() == before.to_numpy()).all()
    assert not any(re.search(r"[a-z]", s) for s in [*counts.index, *counts.columns])
    sections.customer_base(check, out_dir=tmp_path)
    assert list(drawn[1].counts.index) == list(before.index)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_funnel_says_how_many_entities_it_left_out(checked, tmp_path, language):
    check, _ = checked
    notes = lambda c: re.findall(  # noqa: E731
        r'<div class="cl-note">(.*?)</div>',
        html.unescape(_html(sections.funnel(c, language, tmp_path))),
    )
    (said,) = notes(check)
    assert check.funnel_outside > 0 and f" {check.funnel_outside:,} " in said
    assert notes(dataclasses.replace(check, funnel_outside=0)) == []


def test_who_responded_explains_an_uplift_pooled_across_zero(checked, tmp_path):
    check, _ = checked
    seg = check.segments.copy()
    row = seg.index[0]
    seg.loc[row, "control_mean"] = seg.loc[row, "mean"] + abs(seg.loc[row, "abs_lift"]) + 0.01
    seg.loc[row, "abs_lift"] = abs(seg.loc[row, "abs_lift"]) or 0.001
    flipped = int((((seg["mean"] - seg["control_mean"]) * seg["abs_lift"]) < 0).sum())
    text = html.unescape(
        _html(sections.who_responded(dataclasses.replace(check, segments=seg), out_dir=tmp_path))
    )
    assert f"in {flipped} row(s) it points the other way" in text
    raw = check.segments["mean"] - check.segments["control_mean"]
    if not ((raw * check.segments["abs_lift"]) < 0).any():
        assert "points the other way" not in html.unescape(
            _html(sections.who_responded(check, out_dir=tmp_path))
        )


@pytest.fixture(scope="module")
def interim(tmp_path_factory):
    demo = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=2_000)
    return pdca.run_check(demo / "plan.yaml", "2026-03-15")


def _rows(table_html: str) -> list[list[str]]:
    """The cells of the first table in ``table_html``, row by row, as text."""
    body = table_html.split("</table>")[0]
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)
        ]
        for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_an_interim_funnel_shows_the_status_the_scorecard_shows(interim, tmp_path):
    """An interim funnel is not paced: the actual so far against the whole target, no expected
    value or P(met), the scorecard's status."""
    check, _ = interim
    header, *rows = _rows(_html(sections.funnel(check, "en", tmp_path)))
    card = check.scorecard.set_index("target")
    planned = check.plan.targets.funnel
    assert header == ["Stage", "Actual", "Target", "Status"] and len(rows) == len(planned)
    for row in rows:
        cells = dict(zip(header, row, strict=True))
        key = f"funnel_{cells['Stage']}"
        assert cells["Status"] == card.loc[key, "status"] == "not paced"
        assert cells["Target"] == f"{planned[cells['Stage']]:.1%}"
        assert cells["Actual"] == f"{card.loc[key, 'actual']:.1%}"


def test_the_act_section_names_the_next_plan_in_either_language(checked):
    check, next_plan = checked
    said = {
        language: re.sub(
            r"<[^>]+>", "", html.unescape(_html(sections.act(check, next_plan, language)))
        )
        for language in ("en", "zh")
    }
    assert "The next plan is written beside this report as next_plan.yaml." in said["en"]
    assert "下一周期的计划已写在本报告旁：next_plan.yaml。" in said["zh"]


def test_a_chinese_header_and_history_use_the_full_width_colon(checked, tmp_path):
    check, next_plan = checked
    name = check.plan.name or check.plan.campaign
    top = html.unescape(_html(sections.header(check, "zh", "r1", next_plan)))
    assert f"活动：{name}" in top and f"活动: {name}" not in top
    assert f"Campaign: {name}" in html.unescape(_html(sections.header(check, "en", "r1")))
    past = html.unescape(
        _html(sections.history(check, next_plan, "r1", tmp_path / "ledger.csv", "zh", tmp_path))
    )
    assert "PDCA 历史：实际 / 目标" in past and "期中运行" not in past  # a final run


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_an_interim_history_says_its_target_is_the_one_expected_by_then(interim, tmp_path):
    check, next_plan = interim
    for language, words in (
        ("en", "actual / target (interim runs: the target expected by then)"),
        ("zh", "实际 / 目标（期中运行：截至当时应达到的目标）"),
    ):
        parts = sections.history(check, next_plan, "r1", tmp_path / "l.csv", language, tmp_path)
        assert words in html.unescape(_html(parts))
    parts = sections.history(check, next_plan, "r1", tmp_path / "l.csv", "zh", tmp_path)
    zh = html.unescape(_html(parts))
    assert "周期 1 · 第 3 周（期中）" in zh and "(期中)" not in zh


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_an_interim_scorecard_shows_a_not_estimable_lift_as_a_dash(tmp_path):
    """Four days in, the holdout and the first arm of this small demo have under 10
    conversions together: the relative lift has no estimate, and its scorecard row shows "–"
    (it used to stop the report)."""
    demo = write_demo(tmp_path / "demo", seed=1, n_customers=2_000)
    check, _ = pdca.run_check(demo / "plan.yaml", "2026-03-05")
    assert (
        check.scorecard.set_index("target")
        .loc["relative_lift", "basis"]
        .startswith("not estimable: fewer than 10 conversions")
    )
    card = check.scorecard.set_index("target")
    assert card.loc["relative_lift", "status"] == "undefined"
    for language in ("en", "zh"):
        _, *rows = _rows(_html(sections.scorecard(check, language)))
        row = next(r for r in rows if r[0] in ("relative lift", "相对提升"))
        assert row[1] == "–" and "nan" not in " ".join(row).lower()


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_an_interim_roi_table_holds_the_roi_to_the_target_expected_by_now(interim, tmp_path):
    """Halfway through, the ROI so far is held to the share of its target expected by now, as
    the scorecard holds it, not to the whole period's target; the caption says so."""
    check, _ = interim
    expected = check.scorecard.set_index("target").loc["roi", "expected_by_now"]
    assert expected < check.plan.targets.roi
    assert np.allclose(check.roi["target"], expected)
    for language, words in (("en", "the part expected by now"), ("zh", "截至今日应达到的部分")):
        html_text = _html(sections.lift(check, language, tmp_path))
        assert words in html_text and f"{expected:.1f}" in html_text


def test_the_funnel_says_why_its_purchase_stage_reads_below_the_conversion(checked, tmp_path):
    """The demo: 17.8% of the touched bought, 12.5% bought after visiting and registering."""
    check, _ = checked
    for language, words in (
        ("en", "counts only those who reached every stage before it"),
        ("zh", "只计按顺序经过了之前所有阶段的对象"),
    ):
        assert words in _html(sections.funnel(check, language, tmp_path))


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_the_roi_table_reads_its_numbers_as_the_scorecard_and_names_a_target_only_if_set(
    interim, tmp_path
):
    check, _ = interim
    expected = check.scorecard.set_index("target").loc["roi", "expected_by_now"]
    shown = _html(sections.lift(check, "en", tmp_path))
    assert f">{expected:.2f}<" in shown  # as the scorecard shows it
    targets = check.plan.targets.model_copy(update={"roi": None})
    bare = dataclasses.replace(check, plan=check.plan.model_copy(update={"targets": targets}))
    bare = dataclasses.replace(bare, roi=bare.roi.drop(columns=["target", "p_target"]))
    for language in ("en", "zh"):
        text = _html(sections.lift(bare, language, tmp_path))
        assert "expected by now" not in text and "截至今日" not in text


def test_the_funnel_names_the_conversion_only_where_the_scorecard_shows_one(checked, tmp_path):
    check, _ = checked
    card = check.scorecard[check.scorecard["target"] != "conversion_rate"]
    text = _html(sections.funnel(dataclasses.replace(check, scorecard=card), "en", tmp_path))
    assert "counts only those who reached every stage" not in text


def test_a_tier_nobody_is_in_shows_a_dash_not_nan(checked, tmp_path):
    """A tiny base leaves the top tiers empty: their purchases per customer are missing, shown
    as "–" like every other missing number (the table showed "nan")."""
    check, _ = checked
    pyramid = check.customer_base.pyramid.copy()
    pyramid.loc[pyramid.index[0], "avg_frequency"] = float("nan")
    base = dataclasses.replace(check.customer_base, pyramid=pyramid)
    text = _html(
        sections.customer_base(dataclasses.replace(check, customer_base=base), "en", tmp_path)
    )
    table = text.split('id="pyramid"')[1].split("</table>")[0]
    assert "nan" not in table.lower() and "–" in table


def test_the_next_contacts_sentence_reads_as_chinese_in_a_chinese_report(checked):
    """Written in each language, not stitched from English words and punctuation."""
    check, _ = checked
    text = re.sub(r"<[^>]+>", "", html.unescape(_html(sections.next_contacts(check, "zh"))))
    sentence = next(line for line in text.splitlines() if "本周联络名单共" in line)
    assert f"自 {check.asof:%Y-%m-%d} 起一周。未列入：" in sentence
    assert ". " not in sentence and ", " not in sentence and sentence.endswith("。")
