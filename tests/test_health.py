"""The member-health report: the targets file, the check against independent pandas counts, and
``closedloop health`` end to end on the demo (English and Chinese) and on CDNOW (no stores)."""

from __future__ import annotations

import json
import re
from html import escape as html_escape

import numpy as np
import pandas as pd
import pytest
import yaml

from closedloop import glossary, health, kpi, report
from closedloop.datasets import cdnow, write_demo
from closedloop.glossary import say
from closedloop.plan import PlanError

ASOF = "2026-03-31"
MARCH = (pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-31"))
#: user strings with markup: a report name and a store name
NAME = "<script>alert('name')</script> & Co"
STORE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A small demo whose first store and report name carry markup."""
    folder = write_demo(tmp_path_factory.mktemp("demo"), seed=4, n_customers=2_000)
    for name, column in (
        ("transactions", "store"),
        ("receipts", "store"),
        ("customers", "home_store"),
    ):
        frame = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        frame.loc[frame[column] == "S01", column] = STORE
        frame.to_csv(folder / f"{name}.csv", index=False)
    plan = yaml.safe_load((folder / health.FILENAME).read_text())
    plan["name"] = NAME
    (folder / health.FILENAME).write_text(yaml.safe_dump(plan, allow_unicode=True))
    return folder


@pytest.fixture(scope="module")
def checked(demo):
    return health.run_health(demo / health.FILENAME, ASOF)


@pytest.fixture(scope="module")
def frames(demo):
    tx = pd.read_csv(
        demo / "transactions.csv", parse_dates=["order_date"], dtype={"customer_id": str}
    )
    receipts = pd.read_csv(demo / "receipts.csv", parse_dates=["order_date"])
    customers = pd.read_csv(demo / "customers.csv", dtype={"customer_id": str})
    return tx, receipts, customers


def _write(folder, text: str):
    path = folder / "health.yaml"
    path.write_text(text)
    return path


def test_the_targets_file_is_validated(tmp_path):
    (tmp_path / "tx.csv").write_text("customer_id,order_date,amount\na,2026-01-01,1\n")
    ok = health.HealthPlan.from_yaml(
        _write(tmp_path, "targets: {member_share: 0.8}\ndata: {transactions: tx.csv}\n")
    )
    assert ok.target_values == {"member_share": 0.8} and ok.by == "store"
    assert ok.data.transactions == (tmp_path / "tx.csv").resolve()
    with pytest.raises(
        PlanError,
        match=r"(?s)health.yaml: invalid health targets.*targets.member_sahre: unknown key \(known: member_share",
    ):
        health.HealthPlan.from_yaml(
            _write(tmp_path, "targets: {member_sahre: 0.8}\ndata: {transactions: tx.csv}\n")
        )
    with pytest.raises(PlanError, match=r"targets.online_rate: .*less than or equal to 1"):
        health.HealthPlan.from_yaml(
            _write(tmp_path, "targets: {online_rate: 85}\ndata: {transactions: tx.csv}\n")
        )
    # YAML reads .inf, .nan and yes as numbers: none is a target (inf was met by nothing,
    # yes was a 100% repurchase target)
    for given, message in [
        ("avg_ticket: .inf", "avg_ticket: Input should be a finite number"),
        ("churn_rate: .nan", "churn_rate: Input should be a finite number"),
        ("repurchase_rate: yes", "repurchase_rate: a target is a number, not true or false"),
    ]:
        with pytest.raises(PlanError, match=message):
            health.HealthPlan.from_yaml(
                _write(tmp_path, f"targets: {{{given}}}\ndata: {{transactions: tx.csv}}\n")
            )
    # a typo in the split is refused, naming the file, the key and what it may be
    with pytest.raises(PlanError) as typo:
        health.HealthPlan.from_yaml(_write(tmp_path, "by: stroe\ndata: {transactions: tx.csv}\n"))
    assert str(typo.value) == (
        f"{tmp_path / 'health.yaml'}: invalid health targets\n"
        "  by: must be one of store, channel, city, guide, tier (got 'stroe')"
    )
    with pytest.raises(PlanError, match=r"by: must be one of store, .*\(got 'stroe'\)"):
        health.check(
            ok,
            pd.read_csv(tmp_path / "tx.csv", parse_dates=["order_date"]),
            asof="2026-01-31",
            by="stroe",
        )
    with pytest.raises(PlanError, match="outside the data root"):
        health.HealthPlan.from_yaml(_write(tmp_path, "data: {transactions: /etc/hostname}\n"))
    with pytest.raises(PlanError, match="data: required"):
        health.HealthPlan.from_yaml(_write(tmp_path, "targets: {}\n"))
    with pytest.raises(PlanError, match="anchors and aliases"):
        health.HealthPlan.from_yaml(
            _write(tmp_path, "data: &d {transactions: tx.csv}\nother: *d\n")
        )


def test_the_scorecard_equals_pandas(checked, frames):
    tx, receipts, customers = frames
    start, end = MARCH
    day = lambda f: f[(f["order_date"] >= start) & (f["order_date"] < end + pd.Timedelta(days=1))]  # noqa: E731
    now, anonymous = day(tx), day(receipts)
    members = customers.loc[customers["is_member"], "customer_id"]
    mine = now[now["customer_id"].isin(members)]
    active = mine["customer_id"].nunique()
    expected = {
        "member_share": now["is_member"].sum() / (len(now) + len(anonymous)),
        "online_rate": customers.loc[customers["is_member"], "online"].mean(),
        "purchase_frequency": len(mine) / active,
        "avg_ticket": mine["amount"].sum() / len(mine),
        "repurchase_rate": (mine.groupby("customer_id").size() >= 2).sum() / active,
        "items_per_basket": mine["quantity"].sum() / len(mine),
    }
    card = checked.scorecard.set_index("kpi")
    for name, value in expected.items():
        assert card.loc[name, "actual"] == pytest.approx(value, rel=1e-9), name
        target = card.loc[name, "target_value"]
        assert card.loc[name, "gap"] == pytest.approx((target - value) / target)
        assert card.loc[name, "status"] == ("met" if value >= target else "missed")
    churn = card.loc["churn_rate"]
    assert churn["status"] == ("met" if churn["actual"] <= churn["target_value"] else "missed")
    assert checked.anonymous_orders == len(anonymous)


def test_the_trend_counts_each_month(checked, frames):
    tx, receipts, _ = frames
    month = tx["order_date"].dt.to_period("M").dt.start_time
    window = month >= pd.Timestamp("2025-04-01")
    orders = tx[window].groupby(month[window]).size()
    revenue = tx[window].groupby(month[window])["amount"].sum()
    buyers = tx[window].groupby(month[window])["customer_id"].nunique()
    trend = checked.trend
    assert list(trend.index) == list(pd.date_range("2025-04-01", "2026-03-01", freq="MS"))
    assert trend["orders"].tolist() == orders.tolist()
    assert trend["buyers"].tolist() == buyers.tolist()
    assert trend["revenue"].to_numpy() == pytest.approx(revenue.to_numpy())
    anon_month = receipts["order_date"].dt.to_period("M").dt.start_time
    anon = receipts[anon_month >= pd.Timestamp("2025-04-01")].groupby(anon_month).size()
    assert trend["anonymous_orders"].tolist() == anon.reindex(trend.index, fill_value=0).tolist()
    # the last month's member share is the tree's
    assert trend["member_share"].iloc[-1] == pytest.approx(checked.tree.loc["member_share", "all"])


def test_the_churn_screen_and_the_revenue_split(checked, frames):
    tx, _, _ = frames
    screen = checked.churn
    assert list(screen.index) == ["none", "light", "medium", "heavy"]
    assert screen["now"].sum() == tx.loc[tx["order_date"] < "2026-04-01", "customer_id"].nunique()
    assert (
        screen["before"].sum() == tx.loc[tx["order_date"] < "2026-01-01", "customer_id"].nunique()
    )
    assert (screen["change"] == screen["now"] - screen["before"]).all()
    assert checked.compared == (pd.Timestamp("2025-03-01"), pd.Timestamp("2025-03-31"))
    for moves in (checked.moves, checked.store_moves):
        parts = moves[["heads", "frequency", "ticket"]].sum(axis=1)
        assert parts.to_numpy() == pytest.approx(moves["change"].to_numpy(), abs=1e-6)
    march = tx[(tx["order_date"] >= "2026-03-01") & (tx["order_date"] < "2026-04-01")]
    assert checked.moves.attrs["total"]["revenue_after"] == pytest.approx(march["amount"].sum())


def test_the_store_table_is_member_kpis_by_store_ranked_by_gap(checked, frames):
    tx, receipts, customers = frames
    both = pd.concat([tx, receipts.assign(customer_id=pd.NA)], ignore_index=True)
    direct = kpi.member_kpis(both, customers, MARCH, by="store")
    stores = checked.stores
    assert set(stores.index) == set(direct.index) and STORE in stores.index
    pd.testing.assert_frame_equal(
        stores.drop(columns="gap").sort_index(), direct.sort_index(), check_dtype=False
    )
    targets = checked.plan.target_values
    for store, row in direct.iterrows():
        shortfall = 0.0
        for name, target in targets.items():
            short = (row[name] - target) if name == "churn_rate" else (target - row[name])
            shortfall += max(short / target, 0.0) if not np.isnan(row[name]) else 0.0
        assert stores.loc[store, "gap"] == pytest.approx(shortfall), store
    assert stores["gap"].is_monotonic_decreasing
    # each member in one home store: the store table adds up to the company's tree
    tree = checked.tree["all"]
    assert stores["members"].sum() == tree["members"] == customers["is_member"].sum()
    assert stores["active_members"].sum() == tree["active_members"]
    assert stores["contribution"].sum() == pytest.approx(tree["contribution"])


@pytest.fixture(scope="module")
def runs(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    english = report.health_report(demo / health.FILENAME, ASOF, out, "en1")
    assert english.ok, english.error
    with pytest.MonkeyPatch.context() as env:  # the kernel starts with an empty font cache
        env.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mplconfig")))
        chinese = report.health_report(demo / health.FILENAME, ASOF, out, "zh1", language="zh")
    assert chinese.ok, chinese.error
    return out, english, chinese


def test_the_health_report_runs_on_the_demo(runs, checked):
    out, english, _ = runs
    folder = english.folder
    assert folder == out / "member-health" / "en1"
    assert not list(folder.parent.glob(".partial-*")) and not (folder / report.CHECK_FILE).exists()
    html = english.html.read_text()
    for element in ("scorecard", "kpi-tree", "trend", "churn-screen", "store-table"):
        assert f'id="{element}"' in html, element
    for figure in ("kpi-targets", "trends", "pyramid-over-time", "churn-screen"):
        assert f'id="fig-{figure}"' in html and (folder / "figures" / f"{figure}.png").exists()
    assert 'id="fig-revenue-change-tier"' in html and 'id="fig-revenue-change-store"' in html
    assert "Content-Security-Policy" in html and "<script" not in html.lower()
    assert "member_share" not in html and "avg_ticket" not in html  # no raw names shown
    # nothing is ¥0, never ¥0.00; the store table says how members are assigned
    assert "¥0.00" not in html and "¥0<" in html
    assert "Each member counts once, in her home store" in html
    assert "Not bought yet" in html
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["campaign"] == "member-health" and summary["cycle"] == 202603
    assert summary["period"] == {"start": "2026-03-01", "end": "2026-03-31"}
    card = {row["target"]: row for row in summary["scorecard"]}
    for row in checked.scorecard.itertuples():
        assert card[row.kpi]["actual"] == pytest.approx(row.actual)
        assert card[row.kpi]["status"] == row.status
    assert summary["stores"][0]["store"] == checked.stores.index[0]
    assert summary["anonymous_orders"] == checked.anonymous_orders
    assert summary["revenue_change"]["total"]["change"] == pytest.approx(
        checked.moves.attrs["total"]["change"]
    )


def test_the_ledger_has_a_row_per_run(runs, checked):
    out, _, _ = runs
    ledger = pd.read_csv(out / "ledger.csv", dtype=str)
    assert ledger["run_id"].tolist() == ["en1", "zh1"]
    assert set(ledger["campaign"]) == {"member-health"} and set(ledger["cycle"]) == {"202603"}
    assert ledger["superseded"].tolist() == ["True", "False"]  # the month's later run stands
    for row in checked.scorecard.itertuples():
        assert ledger.loc[1, f"{row.kpi}_status"] == row.status
        assert float(ledger.loc[1, f"{row.kpi}_actual"]) == pytest.approx(row.actual)


def test_user_strings_are_escaped(runs):
    _, english, chinese = runs
    for result in (english, chinese):
        html = result.html.read_text()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the store, as text
        assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt; &amp; Co" in html


def test_the_chinese_health_report(runs, demo):
    _, _, chinese = runs
    html = chinese.html.read_text()
    for heading in (
        "会员健康度",
        "指标树对照目标",
        "逐月趋势",
        "金字塔走势",
        "定期筛检",
        "销售额为何变化",
        "按目标差距排名",
    ):
        assert heading in html, heading
    assert ">会员占比<" in html and ">未达成<" in html
    assert f"会员健康度：{html_escape(NAME, quote=False)}</h1>" in html
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert title.endswith(f" — 会员健康度 {ASOF}") and "health" not in title
    quality = re.search(r'id="data-quality".*?</table>', html, re.S).group(0)
    names = re.findall(r"<tr>\s*<td>([^<]*)</td>", quality)
    assert names == ["交易", "匿名小票", "客户"], names
    read = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>", quality)
    rows = len(pd.read_csv(demo / "transactions.csv"))
    assert rows >= 1_000 and read[0] == f"{rows:,}"  # counts with thousands separators
    executed = (chinese.folder / "report.ipynb").read_text()
    for text in (html, executed):
        assert "missing from font" not in text and "Glyph" not in text
        assert "UserWarning" not in text


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cdnow")
    cdnow().to_csv(folder / "transactions.csv", index=False)
    plan = {
        "campaign": "cdnow-health",
        "name": "CDNOW",
        "currency": "USD",
        "targets": {"purchase_frequency": 1.3, "avg_ticket": 35.0, "churn_rate": 0.7},
        "data": {"transactions": "transactions.csv"},
    }
    (folder / "health.yaml").write_text(yaml.safe_dump(plan))
    out = tmp_path_factory.mktemp("reports")
    result = report.health_report(folder / "health.yaml", "1998-06-30", out, "c1")
    assert result.ok, result.error
    return result


def test_the_health_report_runs_on_cdnow_without_stores(cdnow_run):
    raw = cdnow()
    html = cdnow_run.html.read_text()
    assert say("no_by", by="store") in html
    assert 'id="store-table"' not in html and 'id="fig-revenue-change-store"' not in html
    assert 'id="scorecard"' in html and 'id="fig-revenue-change-tier"' in html
    summary = json.loads((cdnow_run.folder / "summary.json").read_text())
    assert summary["stores_shown"] is False and summary["stores"] is None
    june = raw[(raw["order_date"] >= "1998-06-01") & (raw["order_date"] < "1998-07-01")]
    card = {row["target"]: row for row in summary["scorecard"]}
    orders = june.groupby("customer_id").size()  # one row per purchase record
    assert card["purchase_frequency"]["actual"] == pytest.approx(orders.sum() / len(orders))
    assert card["avg_ticket"]["actual"] == pytest.approx(june["amount"].sum() / len(june))
    assert summary["tree"]["all"]["member_share"] == 1.0  # every buyer: no membership data


def test_the_store_table_names_the_unplaced_members_in_chinese(checked):
    """Members placed in no store are the row "(none)"; a Chinese report calls it （无）."""
    from dataclasses import replace

    from closedloop import health_sections

    table = checked.stores.copy()
    table.index = [*table.index[:-1], "(none)"]
    table.attrs = dict(checked.stores.attrs)
    shown = replace(checked, stores=table)
    zh = "".join(part.data for part in health_sections.stores(shown, "zh"))
    assert "（无）" in zh and "(none)" not in zh and "join_store" in zh
    assert "(none)" in "".join(part.data for part in health_sections.stores(shown, "en"))


def test_the_verdict_names_the_kpi_and_the_store_furthest_behind(runs, checked):
    """The verdict tells a KPI from a store: the missed KPI with the largest shortfall, then the
    store whose KPIs fall furthest short in all."""
    _, english, chinese = runs
    card = checked.scorecard
    missed = card[card["status"] == "missed"]
    kpi_row = missed.loc[missed["gap"].idxmax()]
    worst = checked.stores["gap"].idxmax()
    text = re.sub(r"<[^>]+>", "", english.html.read_text())
    name = glossary.column(kpi_row["kpi"], "en")
    assert f"The KPI furthest behind: {name}" in text
    assert f"The store furthest behind its targets: {worst} (gap " in text
    zh = re.sub(r"<[^>]+>", "", chinese.html.read_text())
    assert (
        f"离目标最远的指标：{glossary.column(kpi_row['kpi'], 'zh')}" in zh
        and "离目标最远的门店：" in zh
    )
