"""The Check without a notebook: everything the report shows, and the files a run writes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from closedloop import pdca
from closedloop.datasets import write_demo
from closedloop.plan import Plan

ASOF = "2026-03-31"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=2_000)


@pytest.fixture(scope="module")
def checked(demo):
    return pdca.run_check(demo / "plan.yaml", ASOF)


def test_the_check_holds_the_customer_base_and_the_basket_rules(checked):
    check, next_plan = checked
    base = check.customer_base
    assert base.period_days == 365 and base.monetary == "average"
    assert str(base.before_asof.date()) == "2026-02-28"
    assert str(base.after_asof.date()) == "2026-03-31"
    assert base.pyramid["customers"].sum() == len(base.after)
    assert base.migration is not None
    rules = check.cross_sell
    assert len(rules) and (rules["support"] >= 0.005).all() and (rules["confidence"] >= 0.3).all()
    assert next_plan.cycle == check.plan.cycle + 1


def test_the_report_section_of_the_plan_sets_the_thresholds(demo, checked):
    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw["report"] = {"period_days": 90, "basket": {"min_support": 0.02, "min_confidence": 0.5}}
    (demo / "tight.yaml").write_text(yaml.safe_dump(raw))
    check, _ = pdca.run_check(demo / "tight.yaml", ASOF)
    assert check.customer_base.period_days == 90
    assert len(check.customer_base.after) < len(checked[0].customer_base.after)
    rules = check.cross_sell
    assert (rules["support"] >= 0.02).all() and (rules["confidence"] >= 0.5).all()
    assert len(rules) < len(checked[0].cross_sell)


def test_no_transactions_no_customer_base_and_no_items_no_rules(demo):
    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    for table in ("transactions", "items"):
        del raw["data"][table]
    (demo / "lean.yaml").write_text(yaml.safe_dump(raw))
    check, _ = pdca.run_check(demo / "lean.yaml", ASOF)
    assert check.customer_base is None and check.cross_sell is None
    assert len(check.scorecard)


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_an_interim_summary_is_strict_json(demo, tmp_path):
    """Mid-period some figures have no estimate (projections of a relative lift, a lift over too
    few conversions): summary.json holds null for them, never a bare NaN a parser refuses."""

    def refuse(constant):
        raise ValueError(f"{constant} in summary.json")

    check, next_plan = pdca.run_check(demo / "plan.yaml", "2026-03-05")
    assert check.scorecard["projected_low"].isna().any()  # what used to be written as NaN
    summary_path, _ = pdca.write(check, next_plan, tmp_path, "i1")
    summary = json.loads(summary_path.read_text(), parse_constant=refuse)
    rows = {row["target"]: row for row in summary["scorecard"]}
    assert (
        rows["relative_lift"]["actual"] is None and rows["relative_lift"]["status"] == "undefined"
    )


def test_write_records_the_summary_and_the_next_plan(checked, demo, tmp_path):
    check, next_plan = checked
    summary_path, plan_path = pdca.write(
        check, next_plan, tmp_path, "r1", plan_path=demo / "plan.yaml"
    )
    assert (summary_path.name, plan_path.name) == ("summary.json", "next_plan.yaml")
    summary = json.loads(summary_path.read_text())
    assert summary.pop("plan_path") == str((demo / "plan.yaml").resolve())
    assert summary == json.loads(json.dumps(pdca.summary(check, next_plan, "r1"), default=str))
    assert summary["run_id"] == "r1" and summary["asof"] == ASOF
    again = Plan.from_yaml(plan_path, check_paths=False)
    assert again.cycle == 2 and again.changes == next_plan.changes
    again.check_paths()  # valid from the folder it was written to
    written = yaml.safe_load(plan_path.read_text())
    assert not Path(written["data"]["transactions"]).is_absolute()  # relative: moves with both


def test_a_ready_next_plan_comes_with_its_assignment_list(checked, tmp_path):
    check, next_plan = checked
    ready = next_plan.model_copy(update={"status": "ready"})
    _, plan_path = pdca.write(check, ready, tmp_path, "r1")
    again = Plan.from_yaml(plan_path, check_paths=False)
    assert again.data.assignments == (tmp_path / "next_assignments.csv").resolve()
    assert again.data.outcomes is None
    listed = pd.read_csv(tmp_path / "next_assignments.csv")
    assert set(listed["arm"]) == set(ready.arms)
    assert set(listed["customer_id"]) <= set(check.assignments["customer_id"])
    if ready.audience.segments:
        assert set(listed["segment"]) <= set(ready.audience.segments)
    again.check_paths()


def test_load_refuses_an_asof_before_the_period(demo):
    # `closedloop check` reads through load: it must refuse what `run` refuses, not say "ready"
    from closedloop import DataError

    plan = Plan.from_yaml(demo / "plan.yaml")
    with pytest.raises(DataError, match="before the campaign period starts"):
        pdca.load(plan, asof="2026-02-20")


def test_outcomes_from_transactions_need_transactions_in_the_period(demo, tmp_path):
    # an export that ends before the period must not read as "nobody converted, drop every arm"
    from closedloop import DataError

    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw["period"] = {"start": "2026-04-01", "end": "2026-04-30"}
    raw["baseline"] = {"start": "2026-02-01", "end": "2026-03-31"}
    raw["data"] = {k: str(demo / raw["data"][k]) for k in ("transactions", "assignments")}
    raw["targets"].pop("funnel")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(raw))
    plan = Plan.from_yaml(tmp_path / "plan.yaml", data_root=demo)
    with pytest.raises(DataError, match=r"transactions.csv, column 'order_date': no transactions"):
        pdca.load(plan)


def test_ids_that_differ_only_by_format_are_warned_even_above_min_coverage(demo, tmp_path):
    # a third of the assignment ids through Excel (lower case): coverage 2/3 passes the check,
    # but those customers would count as no outcome without a word
    from closedloop.io import DataWarning

    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    assignments = pd.read_csv(demo / "assignments.csv", dtype=str)
    third = assignments.index % 3 == 0
    assignments.loc[third, "customer_id"] = assignments.loc[third, "customer_id"].str.lower()
    assignments.to_csv(tmp_path / "assignments.csv", index=False)
    raw["data"] = {"transactions": str(demo / "transactions.csv"), "assignments": "assignments.csv"}
    raw["targets"].pop("funnel")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(raw))
    plan = Plan.from_yaml(tmp_path / "plan.yaml", data_root=[demo, tmp_path])
    with pytest.warns(DataWarning, match=r"do not appear in the transactions; the ids differ"):
        pdca.load(plan)


def test_the_items_file_is_read_through_the_data_contract(demo, tmp_path):
    # an empty or Chinese (GBK) items file, or one without an item column: one line naming it
    from closedloop import DataError

    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw["data"] = {k: str(demo / raw["data"][k]) for k in ("transactions", "assignments")}
    raw["data"]["items"] = "items.csv"
    raw["targets"].pop("funnel")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(raw))
    items = pd.read_csv(demo / "items.csv").head(500)
    (tmp_path / "items.csv").write_bytes(
        items.assign(item=items["item"] + "奶").to_csv(index=False).encode("gbk")
    )
    plan = Plan.from_yaml(tmp_path / "plan.yaml", data_root=[demo, tmp_path])
    assert pdca.load(plan).items["item"].str.endswith("奶").all()
    (tmp_path / "items.csv").write_text("")
    with pytest.raises(DataError, match=r"items.csv: the items file is empty"):
        pdca.load(plan)
    items.rename(columns={"item": "product"}).to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(DataError, match=r"items.csv, column 'item': required column"):
        pdca.load(plan)


def test_money_targets_say_when_outlier_amounts_may_decide_them():
    from closedloop.pdca import _mark_outliers

    card = pd.DataFrame(
        {
            "target": ["conversion_rate", "roi"],
            "basis": ["conversion of contacted", "margin / cost"],
        }
    )
    quality = pd.DataFrame({"table": ["transactions"], "outliers": [1]})
    marked = _mark_outliers(card, quality).set_index("target")["basis"]
    assert marked["conversion_rate"] == "conversion of contacted"
    assert marked["roi"].endswith(
        "1 outlier amount(s) in the data may decide this (see data quality)"
    )
    assert _mark_outliers(card, quality.assign(outliers=0)).equals(card)


def test_the_funnel_counts_the_campaigns_customers_only(demo, checked):
    """The demo's events also hold an acquisition journey's leads: they are left out of the
    Check's funnel (and counted for its note), so the touches are the contacted customers'."""
    check, _ = checked
    events = pd.read_csv(demo / "events.csv", dtype=str)
    assigned = pd.read_csv(demo / "assignments.csv", dtype=str)
    outside = events[~events["entity_id"].isin(assigned["customer_id"])]
    assert check.funnel_outside == outside["entity_id"].nunique() > 0
    touched = (
        events[events["entity_id"].isin(assigned["customer_id"]) & (events["stage"] == "touch")]
        .groupby("channel")["entity_id"]
        .nunique()
    )
    shown = check.funnel[check.funnel["stage"] == "touch"].set_index(check.funnel.columns[0])
    assert set(shown.index) == set(touched.index)
    assert shown["entities"].astype(int).to_dict() == touched.to_dict()


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_an_interim_check_counts_the_customer_base_on_its_as_of_day(demo):
    check, _ = pdca.run_check(demo / "plan.yaml", "2026-03-15")
    base = check.customer_base
    assert str(base.after_asof.date()) == "2026-03-15"
    orders = pd.read_csv(demo / "transactions.csv", parse_dates=["order_date"])
    asof = pd.Timestamp("2026-03-15")
    recent = orders[(orders["order_date"] < asof + pd.Timedelta("1D"))]
    recent = recent[recent["order_date"] >= asof - pd.Timedelta(days=364)]
    assert len(base.after) == recent["customer_id"].nunique()
    assert base.pyramid["customers"].sum() == len(base.after)


def test_the_campaign_events_are_matched_where_the_events_live():
    """Events matched on customer_id or entity_id, in pandas and on an engine (a DuckDB
    relation here, a Spark frame with ``engine: spark``): the same rows, the same count left
    out."""
    import duckdb

    events = pd.DataFrame(
        {
            "entity_id": ["a", "b", "c", "x", "y", "y"],
            "customer_id": ["1", None, "3", None, None, None],
            "stage": ["touch"] * 6,
        }
    )
    assignments = pd.DataFrame({"customer_id": ["1", "2", "b"], "arm": ["control", "sms", "sms"]})
    # a matches on customer 1, b on its entity id; c (customer 3), x and y are not assigned
    for frame in (events, duckdb.from_df(events)):
        kept, outside = pdca._campaign_events(frame, assignments)
        kept = kept if isinstance(kept, pd.DataFrame) else kept.df()
        assert outside == 3
        assert sorted(kept["entity_id"]) == ["a", "b"] and list(kept.columns) == list(events)


def test_checks_on_the_same_tables_share_the_customer_base_and_rules_only_where_settings_match(
    demo,
):
    """run-all hands the Checks of one group a ``shared`` dict: a second plan with the same
    period and basket settings takes the first's customer base and rules (equal to its own),
    one with other basket settings computes its own rules."""
    plan = Plan.from_yaml(demo / "plan.yaml")
    data = pdca.load(plan, asof=ASOF)
    shared: dict = {}
    first = pdca.check(plan, data, asof=ASOF, shared=shared)
    second = pdca.check(plan.model_copy(update={"campaign": "other"}), data, ASOF, shared=shared)
    alone = pdca.check(plan, data, asof=ASOF)
    assert second.cross_sell is first.cross_sell and second.customer_base is first.customer_base
    pd.testing.assert_frame_equal(alone.cross_sell, first.cross_sell)
    pd.testing.assert_frame_equal(alone.customer_base.after, first.customer_base.after)
    basket = plan.report_settings.basket.model_copy(update={"min_confidence": 0.5})
    settings = plan.report_settings.model_copy(update={"basket": basket})
    stricter = plan.model_copy(update={"report": settings})
    third = pdca.check(stricter, data, asof=ASOF, shared=shared)
    assert third.cross_sell is not first.cross_sell
    assert (third.cross_sell["confidence"] >= 0.5).all()
