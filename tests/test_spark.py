"""Every aggregation over raw rows on a local Spark session gives the pandas answer: the demo
tables, CDNOW (customer table and CLV summary) and Hillstrom (lift, wide funnel)."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pyarrow as pa
import pytest

from closedloop import DataError, clv, funnel, lift, rfm
from closedloop.datasets import cdnow, hillstrom

# frames cross to Spark and back through Arrow, never through pyspark's pandas conversion
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (2 cores, UTC) for the whole run."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is missing (no java on PATH, no JAVA_HOME): Spark needs Java 17")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("closedloop-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


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
