"""Every aggregation over raw rows on a local Spark session gives the pandas answer: the demo
tables, CDNOW (customer table and CLV summary) and Hillstrom (lift, wide funnel)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow as pa
import pytest

from closedloop import DataError, basket, clv, funnel, lift, report, rfm
from closedloop.datasets import cdnow, groceries, hillstrom, make_demo, write_demo

# frames cross to Spark and back through Arrow, never through pyspark's pandas conversion
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


@pytest.fixture(scope="session")
def spark():
    """The package's local Spark session (``local[2]``, UTC, quiet), the one a plan with
    ``engine: spark`` runs on: made once for the whole run (it needs Java 17)."""
    from closedloop import spark as spark_mod

    return spark_mod.session("local[2]")


@pytest.fixture(scope="session")
def to_spark(spark):
    """A pandas frame as a Spark DataFrame (through Arrow)."""
    return lambda frame: spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))


def test_every_aggregation_same_on_spark(to_spark, same_results):
    same_results(to_spark)


def test_cdnow_customer_table_and_clv_summary_on_spark(to_spark):
    tx = cdnow()
    remote = to_spark(tx)
    table = rfm.rfm_table(remote, "1998-06-30")
    pd.testing.assert_frame_equal(table, rfm.rfm_table(tx, "1998-06-30"))
    assert len(table) == 23_570
    expected = clv.summary(tx, "1998-06-30", calibration_end="1997-09-30")
    got = clv.summary(remote, "1998-06-30", calibration_end="1997-09-30")
    pd.testing.assert_frame_equal(got, expected)


def test_hillstrom_lift_and_funnel_on_spark(to_spark, hillstrom_path):
    data = hillstrom(hillstrom_path)
    remote = to_spark(data)
    args = {"control": "No E-Mail", "metrics": ["visit", "conversion", "spend"]}
    pd.testing.assert_frame_equal(
        lift.bayesian_lift(remote, **args).table, lift.bayesian_lift(data, **args).table
    )
    pd.testing.assert_frame_equal(
        funnel.funnel(remote, ["visit", "conversion"], by="channel"),
        funnel.funnel(data, ["visit", "conversion"], by="channel"),
    )


def test_bad_spark_input_names_the_problem(to_spark):
    tx = cdnow().head(100)
    with pytest.raises(DataError, match=r"required column\(s\) amount missing") as err:
        rfm.rfm_table(to_spark(tx.drop(columns="amount")), "1998-06-30")
    assert err.value.column == "amount"


def test_every_module_counts_the_same_orders_and_revenue_on_spark(to_spark):
    from test_summaries import agree, one_order_a_day

    from closedloop.datasets import make_demo

    agree(one_order_a_day(make_demo(seed=4, n_customers=2_000)), to_spark)


def test_a_plan_on_spark_tables_reports_the_csv_numbers(spark, to_spark, tmp_path):
    """The demo plan with its tables in the Spark session (a table and a query): the summary,
    pyramid and basket rules of the CSV run."""
    import yaml
    from test_sources import TABLES, record, same, typed_tables

    from closedloop.datasets import write_demo
    from closedloop.plan import Plan

    folder = write_demo(tmp_path / "demo", seed=2, n_customers=2_000)
    for name, frame in typed_tables(folder).items():
        to_spark(frame).createOrReplaceTempView(f"demo_{name}")
    raw = yaml.safe_load((folder / "plan.yaml").read_text())
    raw["data"] = {name: {"spark": "", "table": f"demo_{name}"} for name in TABLES}
    raw["data"]["transactions"] = {"spark": "local[2]", "query": "SELECT * FROM demo_transactions"}
    (folder / "plan_spark.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    same(
        record(Plan.from_yaml(folder / "plan_spark.yaml")),
        record(Plan.from_yaml(folder / "plan.yaml")),
    )
    with pytest.raises(DataError, match=r"^nowhere \(Spark\): .*nowhere"):
        from closedloop import sources

        sources.read(
            Plan.parse(
                {**raw, "data": {**raw["data"], "items": {"spark": "", "table": "nowhere"}}}
            ).data.items
        )


# --- the whole report on Spark ----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    return make_demo(seed=0, n_customers=2_000)


def test_basket_rules_on_spark_are_the_local_rules(to_spark, demo):
    """Spark ML's FP-growth on the demo's order lines keeps mlxtend's itemsets: the same rules,
    and each rule's support, confidence and lift are the share of orders counted in pandas."""
    items = demo.items[["order_id", "item"]]
    got = basket.rules(to_spark(items), min_support=0.005, min_confidence=0.2)
    pd.testing.assert_frame_equal(got, basket.rules(items, 0.005, 0.2))
    assert len(got) >= 10
    orders = items.drop_duplicates().groupby("order_id")["item"].agg(frozenset)
    n = len(orders)

    def share(itemset):
        return orders.map(itemset.issubset).sum() / n

    for rule in got.head(10).itertuples():
        both = share(rule.antecedents | rule.consequents)
        assert round(rule.support, 4) == round(both, 4)
        assert round(rule.confidence, 4) == round(both / share(rule.antecedents), 4)
        lift_ = both / share(rule.antecedents) / share(rule.consequents)
        assert round(rule.lift, 3) == round(lift_, 3)


def test_groceries_rules_on_spark(to_spark, groceries_path):
    long = groceries(groceries_path, form="long")
    got = basket.rules(to_spark(long), min_support=0.001, min_confidence=0.5)
    assert len(got) == 5_668  # arules::apriori(supp = 0.001, conf = 0.5)
    pd.testing.assert_frame_equal(got, basket.rules(long, 0.001, 0.5))
    top = got.iloc[0]
    assert top["rule"] == "Instant food products, soda → hamburger meat"
    assert top["support"] * 9_835 == pytest.approx(12)


def test_missing_items_on_spark_name_the_rows(to_spark):
    lines = pd.DataFrame({"order_id": ["1", "1", "2", "3"], "item": ["a", "b", None, "a"]})
    with pytest.raises(DataError, match="must not be missing") as err:
        basket.rules(to_spark(lines), min_support=0.1, min_confidence=0.1)
    assert err.value.column == "item" and err.value.n_bad == 1
    assert err.value.rows["order_id"].tolist() == ["2"]


@pytest.mark.parametrize("model", ["first", "last", "position"])
def test_attribution_on_spark_is_the_local_attribution(to_spark, demo, model):
    events, tx = demo.events, demo.transactions
    expected = funnel.attribution(events, tx, model, costs={"sms": 500.0, "print": 80.0})
    got = funnel.attribution(
        to_spark(events), to_spark(tx), model, costs={"sms": 500.0, "print": 80.0}
    )
    pd.testing.assert_frame_equal(got, expected)
    assert expected["customers"].sum() > 0


def _tables(html: str) -> list[str]:
    """The report's tables, their numbers and labels as shown."""
    return re.findall(r"<table\b.*?</table>", html, re.S)


def test_the_report_on_spark_is_the_local_report(spark, tmp_path):
    """``engine: spark``: the demo's report computed on the Spark session has the local run's
    summary.json and the same tables, number for number."""
    import yaml

    from closedloop import pdca
    from closedloop.plan import Plan

    folder = write_demo(tmp_path / "demo", seed=2, n_customers=2_000)
    raw = yaml.safe_load((folder / "plan.yaml").read_text())
    (folder / "plan_spark.yaml").write_text(
        yaml.safe_dump({**raw, "engine": "spark"}, sort_keys=False)
    )
    plan = Plan.from_yaml(folder / "plan_spark.yaml")
    assert plan.on_spark and plan.spark_master == "local[2]"
    data = pdca.on_engine(plan, pdca.load(plan))
    assert type(data.transactions).__module__.startswith("pyspark")
    runs = {
        name: report.run(folder / f"{name}.yaml", tmp_path / name, "r1")
        for name in ("plan", "plan_spark")
    }
    assert all(r.ok for r in runs.values()), [r.error for r in runs.values()]
    summaries = {}
    for name, run in runs.items():
        record = json.loads((run.folder / "summary.json").read_text())
        record.pop("plan_path")
        summaries[name] = json.dumps(record, sort_keys=True)  # as text: NaN equals NaN
    assert summaries["plan_spark"] == summaries["plan"]
    local, remote = (_tables(r.html.read_text()) for r in runs.values())
    assert len(local) >= 10 and remote == local


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # rows after the as-of day
def test_an_interim_check_with_outcomes_from_transactions_on_spark(tmp_path):
    """The paths the demo report does not take: outcomes counted from the transactions (orders,
    ticket, second purchase, recruits, leads), a target against the baseline, the pace of an
    interim Check, follow-up windows, a stopping rule. The Spark Check is the local one."""
    import yaml

    from closedloop import pdca
    from closedloop.plan import Plan

    folder = write_demo(tmp_path / "demo", seed=2, n_customers=2_000)
    raw = yaml.safe_load((folder / "plan.yaml").read_text())
    raw["targets"].update(
        {
            "orders_per_customer": {"vs_baseline": "+5%"},
            "second_purchase_rate": 0.05,
            "leads": 100,
            "recruits": 10,
            "first_conversion_rate": 0.2,
            "avg_ticket": 30.0,
        }
    )
    raw |= {"follow_up_days": [30], "stopping": {"min_days": 7}}
    del raw["data"]["outcomes"]
    checks = {}
    for engine in ("local", "spark"):
        path = folder / f"plan_{engine}.yaml"
        path.write_text(yaml.safe_dump({**raw, "engine": engine}, sort_keys=False))
        plan = Plan.from_yaml(path)
        data = pdca.load(plan, asof="2026-03-20")
        result = pdca.check(plan, data, asof="2026-03-20")
        next_plan = pdca.act(result)
        result = pdca.next_contacts(result, next_plan, data)
        summary = pdca.summary(result, next_plan, "r1")
        checks[engine] = (json.dumps(summary, default=str, sort_keys=True), result)
    local, remote = checks["local"][1], checks["spark"][1]
    assert checks["spark"][0] == checks["local"][0]
    assert {"orders_per_customer", "second_purchase_rate", "recruits"} <= set(
        local.scorecard["target"]
    )
    assert local.early_stop is not None and local.follow_up is not None
    pd.testing.assert_frame_equal(remote.progress.daily, local.progress.daily)
    pd.testing.assert_frame_equal(remote.progress.weekly, local.progress.weekly)
    pd.testing.assert_frame_equal(remote.contacts.week.rows, local.contacts.week.rows)
    assert len(local.contacts.week.rows) > 0


def test_a_session_that_cannot_start_is_one_line_without_its_token(monkeypatch):
    from closedloop import spark as spark_mod

    monkeypatch.delenv("CL_SPARK_TOKEN", raising=False)
    with pytest.raises(DataError) as err:
        spark_mod.session("sc://127.0.0.1:1/;token=${CL_SPARK_TOKEN}")
    assert str(err.value) == (
        "Spark session sc://127.0.0.1:1/;token=***: the environment variable CL_SPARK_TOKEN"
        " is not set"
    )


@pytest.mark.parametrize("with_customer_id", [True, False])
def test_campaign_events_on_spark_are_the_assigned_customers_events(to_spark, with_customer_id):
    """The funnel's events on Spark keep the assigned customers' events (matched on customer_id
    or entity_id) and count the other entities, as a plain pandas filter does; an events table
    without a customer_id column is matched on entity_id alone."""
    from closedloop import pdca

    events = pd.DataFrame(
        {
            "entity_id": ["L1", "L1", "C2", "C3", "V9", "V9", "C1"],
            "customer_id": ["C1", "C1", None, None, None, None, None],
            "stage": ["touch", "visit", "touch", "touch", "touch", "visit", "touch"],
            "timestamp": pd.to_datetime(["2026-03-0" + str(d) for d in range(1, 8)]),
        }
    )
    if not with_customer_id:
        events = events.drop(columns="customer_id")
    assignments = pd.DataFrame({"customer_id": ["C1", "C2", "C4"], "arm": ["a", "b", "a"]})
    keys = ["customer_id", "entity_id"] if with_customer_id else ["entity_id"]
    inside = events[keys].isin(set(assignments["customer_id"])).any(axis=1)
    expected = events[inside].reset_index(drop=True)
    got, outside = pdca._campaign_events(to_spark(events), assignments)
    got = got.toArrow().to_pandas().sort_values("timestamp", ignore_index=True)
    assert outside == events.loc[~inside, "entity_id"].nunique() == (2 if with_customer_id else 3)
    pd.testing.assert_frame_equal(got[list(expected.columns)], expected, check_dtype=False)
