"""Plans that read their tables from PostgreSQL, a DuckDB file, a partitioned Parquet folder and
a Parquet glob give the report the CSV files give, to the last digit; credentials stay out of
every output; a source that cannot be reached is one line naming it.

PostgreSQL is a real server (``scripts/postgres.sh``, the ``postgres`` fixture in conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import free_port

from closedloop import DataError, pdca, sources
from closedloop.cli import main
from closedloop.plan import Plan, PlanError

TABLES = ("transactions", "assignments", "outcomes", "events", "customers", "items")
IDS = {"customer_id", "order_id", "store", "referrer_id", "entity_id"}
TIMES = {"order_date", "join_date", "birthday", "sent_at", "timestamp"}
MONEY = {"amount", "revenue", "price", "cost"}
PASSWORD_VARIABLE = "CLOSEDLOOP_TEST_PG_PASSWORD"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo written by ``closedloop make-demo`` (5,000 customers)."""
    folder = tmp_path_factory.mktemp("demo")
    assert main(["make-demo", "--out", str(folder), "--customers", "5000"]) == 0
    return folder


def typed_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The demo's tables as a warehouse types them: ids and labels text, times timestamps,
    flags booleans, counts integers."""
    frames = {}
    for name in TABLES:
        frame = pd.read_csv(folder / f"{name}.csv", dtype=dict.fromkeys(IDS, str))
        for column in TIMES & set(frame.columns):
            frame[column] = pd.to_datetime(frame[column])
        frames[name] = frame
    return frames


@pytest.fixture(scope="module")
def typed(demo) -> dict[str, pd.DataFrame]:
    return typed_tables(demo)


def record(plan: Plan) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """What a run reports: summary.json's content (as text, so NaN compares equal), the pyramid
    and the basket rules."""
    result = pdca.check(plan, pdca.load(plan))
    summary = pdca.summary(result, pdca.act(result), "r1")
    return (
        json.dumps(summary, default=str, sort_keys=True),
        result.customer_base.pyramid,
        result.cross_sell,
    )


@pytest.fixture(scope="module")
def from_csv(demo):
    return record(Plan.from_yaml(demo / "plan.yaml"))


def same(got, expected) -> None:
    assert got[0] == expected[0]
    pd.testing.assert_frame_equal(got[1], expected[1])
    pd.testing.assert_frame_equal(got[2], expected[2])


def with_data(demo: Path, data: dict, name: str, data_root=None) -> Path:
    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw["data"] = {**raw["data"], **data}
    path = demo / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# --- PostgreSQL -------------------------------------------------------------------------------


def pg_type(frame: pd.DataFrame, column: str) -> str:
    dtype = frame[column].dtype
    if column in MONEY:
        return "numeric"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    return "text"


@pytest.fixture(scope="module")
def pg_demo(postgres, typed):
    """The demo loaded into the database ``demo``, schema ``shop``, one table per CSV file."""
    with psycopg.connect(postgres.socket(), autocommit=True) as con:
        con.execute("DROP DATABASE IF EXISTS demo")
        con.execute("CREATE DATABASE demo")
    with psycopg.connect(postgres.socket("demo")) as con:
        con.execute("CREATE SCHEMA shop")
        for name, frame in typed.items():
            columns = ", ".join(f'"{c}" {pg_type(frame, c)}' for c in frame.columns)
            con.execute(f"CREATE TABLE shop.{name} ({columns})")
            text = frame.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S")
            with con.cursor().copy(f"COPY shop.{name} FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(text)
    return postgres


def pg_data(url: str) -> dict:
    data = {name: {"postgres": url, "table": f"shop.{name}"} for name in TABLES}
    data["outcomes"] = {"postgres": url, "query": "SELECT * FROM shop.outcomes ORDER BY 1"}
    return data


def test_a_plan_on_postgres_reports_the_csv_numbers_and_no_password(
    demo, pg_demo, from_csv, tmp_path, monkeypatch, capsys
):
    """The demo plan against the server over TCP, the password given as ${VARIABLE}: the run's
    summary.json holds the CSV run's scorecard and lift, and the password is in no output."""
    secret = pg_demo.password
    monkeypatch.setenv(PASSWORD_VARIABLE, secret)
    for name in ("PGPASSWORD", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    url = f"postgresql://closedloop:${{{PASSWORD_VARIABLE}}}@127.0.0.1:{pg_demo.port}/demo"
    plan = with_data(demo, pg_data(url), "plan_postgres.yaml")
    assert secret not in plan.read_text()
    same(record(Plan.from_yaml(plan)), from_csv)

    out = tmp_path / "reports"
    assert main(["run", str(plan), "--out", str(out), "--run-id", "r1"]) == 0
    printed = capsys.readouterr()
    run = json.loads((out / "spring-winback-2026" / "r1" / "summary.json").read_text())
    expected = json.loads(from_csv[0])
    assert run["scorecard"] == expected["scorecard"]
    assert run["lift"] == expected["lift"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"report.html", "summary.json", "next_plan.yaml", "ledger.csv"} <= {
        p.name for p in files
    }
    assert not [p for p in files if secret.encode() in p.read_bytes()]
    assert secret not in printed.out + printed.err
    html = (out / "spring-winback-2026" / "r1" / "report.html").read_text()
    assert "shop.transactions (PostgreSQL demo on 127.0.0.1" in html  # the source, named safely
    assert "outcomes query (PostgreSQL demo on 127.0.0.1" in html
    assert (
        f"${{{PASSWORD_VARIABLE}}}"
        in (out / "spring-winback-2026" / "r1" / "next_plan.yaml").read_text()
    )


def test_postgres_over_the_socket_with_pg_variables(demo, pg_demo, from_csv, monkeypatch):
    """No connection string at all: libpq's PG* variables say where, as on a scheduler."""
    monkeypatch.setenv("PGHOST", str(pg_demo.folder))
    monkeypatch.setenv("PGPORT", str(pg_demo.port))
    monkeypatch.setenv("PGUSER", "closedloop")
    monkeypatch.setenv("PGDATABASE", "demo")
    plan = with_data(demo, pg_data(""), "plan_pg_env.yaml")
    same(record(Plan.from_yaml(plan)), from_csv)


def test_a_refused_port_is_one_line_naming_the_source(demo, tmp_path, capsys):
    port = free_port()  # nothing listens there
    plan = with_data(
        demo,
        {
            "transactions": {
                "postgres": f"postgresql://closedloop@127.0.0.1:{port}/demo",
                "table": "shop.transactions",
            }
        },
        "plan_refused.yaml",
    )
    assert main(["check", str(plan)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(
        f"closedloop check: shop.transactions (PostgreSQL demo on 127.0.0.1:{port}): cannot"
        " connect:"
    )
    assert "refused" in err


def test_a_wrong_password_is_one_line_without_it(demo, pg_demo, monkeypatch):
    monkeypatch.setenv(PASSWORD_VARIABLE, "not-the-password-7d1f")
    url = f"postgresql://closedloop:${{{PASSWORD_VARIABLE}}}@127.0.0.1:{pg_demo.port}/demo"
    plan = Plan.from_yaml(with_data(demo, pg_data(url), "plan_wrong.yaml"))
    with pytest.raises(DataError, match=r"cannot connect: .*password authentication failed") as err:
        pdca.load(plan)
    assert "not-the-password-7d1f" not in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    monkeypatch.delenv(PASSWORD_VARIABLE)
    with pytest.raises(DataError, match=f"the environment variable {PASSWORD_VARIABLE} is not set"):
        pdca.load(plan)


def test_postgres_errors_name_the_source(demo, pg_demo):
    url = pg_demo.socket("demo")
    missing = {"postgres": url, "table": "shop.nowhere"}
    with pytest.raises(
        DataError, match=r"^shop.nowhere \(PostgreSQL demo on .*\): .*does not exist"
    ):
        sources.read(Plan.parse(_plan_with({"transactions": missing})).data.transactions)
    with psycopg.connect(url) as con:
        con.execute("CREATE SEQUENCE IF NOT EXISTS shop.counter")
    writes = {"postgres": url, "query": "SELECT nextval('shop.counter') AS customer_id"}
    with pytest.raises(DataError, match=r"^transactions query \(.*read-only transaction"):
        sources.read(
            Plan.parse(_plan_with({"transactions": writes})).data.transactions, "transactions"
        )
    empty = {"postgres": url, "query": "SELECT * FROM shop.transactions WHERE false -- none"}
    with pytest.raises(DataError, match="the transactions table is empty"):
        from closedloop import io

        io.read_transactions(Plan.parse(_plan_with({"transactions": empty})).data.transactions)


def test_postgres_types_keep_ids_text_and_times_on_their_day(pg_demo):
    """Text ids keep their leading zeros; a timestamptz is an instant, read in the plan's zone."""
    from closedloop import io

    query = (
        "SELECT '007'::text AS customer_id, timestamptz '2026-03-01 23:30:00+08' AS order_date,"
        " 12.50::numeric AS amount, true AS is_member, NULL::bigint AS quantity"
    )
    source = Plan.parse(
        _plan_with({"transactions": {"postgres": pg_demo.socket(), "query": query}})
    ).data.transactions
    tx = io.read_transactions(source, timezone="Asia/Shanghai")
    assert tx.drop(columns="quantity").to_dict("records") == [
        {
            "customer_id": "007",
            "order_date": pd.Timestamp("2026-03-01 23:30"),
            "amount": 12.5,
            "is_member": True,
        }
    ]
    assert pd.isna(tx["quantity"].iloc[0])
    utc = io.read_transactions(source)
    assert utc["order_date"].iloc[0] == pd.Timestamp("2026-03-01 15:30")


def _plan_with(data: dict) -> dict:
    return {
        "campaign": "c",
        "objective": "win back",
        "period": {"start": "2026-03-01", "end": "2026-03-31"},
        "arms": {"control": 0.5, "sms": 0.5},
        "targets": {"conversion_rate": 0.2},
        "data": {"assignments": "a.csv", "outcomes": "o.csv", **data},
    }


@pytest.mark.parametrize(
    "conninfo",
    [
        "postgresql://closedloop:hunter2@db.example/crm",
        "postgresql://db.example/crm?sslmode=require&password=hunter2",
        "host=db.example dbname=crm password=hunter2",
        "host=db.example password = 'hunter2' dbname=crm",
        # libpq decodes %xx in a URL's parameter names: these are password=hunter2 to it
        "postgresql://db.example/crm?pass%77ord=hunter2",
        "postgresql://db.example/crm?%70assword=hunter2",
    ],
)
def test_a_password_in_the_plan_is_refused(conninfo):
    with pytest.raises(PlanError, match="a password in the plan is refused") as err:
        Plan.parse(_plan_with({"transactions": {"postgres": conninfo, "table": "t"}}))
    assert "hunter2" not in str(err.value)


def test_a_spark_token_in_the_plan_is_refused():
    spark = {"spark": "sc://spark.example:15002/;token=hunter2", "table": "t"}
    with pytest.raises(PlanError, match="a token in the plan is refused") as err:
        Plan.parse(_plan_with({"transactions": spark}))
    assert "hunter2" not in str(err.value)
    spark["spark"] = "sc://spark.example:15002/;token=${SPARK_TOKEN}"
    assert Plan.parse(_plan_with({"transactions": spark})).data.transactions.engine == "spark"


def test_a_source_is_typed():
    ok = Plan.parse(_plan_with({"transactions": {"postgres": "service=crm", "table": "a.b"}}))
    assert ok.data.transactions.engine == "postgres"
    for bad, rule in [
        ({"postgres": "", "duckdb": "x.duckdb", "table": "t"}, "exactly one of duckdb, postgres"),
        ({"postgres": "", "table": "t", "query": "SELECT 1"}, "exactly one of table"),
        ({"postgres": "", "table": "t; DROP TABLE t"}, "is not a table name"),
        ({"postgres": "", "tabel": "t"}, r"data.transactions.tabel: unknown key"),
    ]:
        with pytest.raises(PlanError, match=rule):
            Plan.parse(_plan_with({"transactions": bad}))


# --- DuckDB and Parquet -----------------------------------------------------------------------


def test_a_plan_on_a_duckdb_file_reports_the_csv_numbers(demo, typed, from_csv):
    with duckdb.connect(str(demo / "shop.duckdb")) as con:
        for name, frame in typed.items():
            con.register("frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
    data = {name: {"duckdb": "shop.duckdb", "table": name} for name in TABLES}
    data["outcomes"] = {"duckdb": "shop.duckdb", "query": "SELECT * FROM outcomes ORDER BY 1"}
    plan = with_data(demo, data, "plan_duckdb.yaml")
    same(record(Plan.from_yaml(plan)), from_csv)
    written = Plan.from_yaml(plan).to_yaml(relative_to=demo)
    assert "duckdb: shop.duckdb" in written  # the next plan names the file as the plan did
    broken = with_data(demo, {"items": {"duckdb": "shop.duckdb", "table": "nowhere"}}, "p.yaml")
    with pytest.raises(DataError, match=r"^nowhere \(DuckDB shop.duckdb\): .*nowhere"):
        pdca.load(Plan.from_yaml(broken))
    # a query reads the database file, not other files around the data root
    around = {"duckdb": "shop.duckdb", "query": f"SELECT * FROM read_csv('{demo / 'items.csv'}')"}
    broken = with_data(demo, {"items": around}, "p.yaml")
    with pytest.raises(DataError, match=r"^items query \(DuckDB shop.duckdb\): .*disabled"):
        pdca.load(Plan.from_yaml(broken))


def test_a_plan_on_parquet_folders_and_globs_reports_the_csv_numbers(demo, typed, from_csv):
    """Transactions as a hive-partitioned folder (channel=.../), items as a glob of parts, the
    rest single Parquet files."""
    lake = demo / "lake"
    pq.write_to_dataset(
        pa.Table.from_pandas(typed["transactions"], preserve_index=False),
        lake / "transactions",
        partition_cols=["channel"],
    )
    (lake / "items").mkdir(parents=True)
    items = typed["items"]
    half = len(items) // 2
    items.iloc[:half].to_parquet(lake / "items" / "part-0.parquet", index=False)
    items.iloc[half:].to_parquet(lake / "items" / "part-1.parquet", index=False)
    data = {"transactions": "lake/transactions", "items": "lake/items/part-*.parquet"}
    for name in ("assignments", "outcomes", "events", "customers"):
        typed[name].to_parquet(lake / f"{name}.parquet", index=False)
        data[name] = f"lake/{name}.parquet"
    plan = with_data(demo, data, "plan_parquet.yaml")
    same(record(Plan.from_yaml(plan)), from_csv)


def test_globs_and_folders_are_checked(demo, tmp_path):
    nothing = with_data(demo, {"items": "lake/none-*.parquet"}, "p_none.yaml")
    with pytest.raises(PlanError, match="no file matches the pattern"):
        Plan.from_yaml(nothing)
    (demo / "mixed").mkdir(exist_ok=True)
    (demo / "mixed" / "a.csv").write_text("order_id,item\n1,milk\n")
    pd.DataFrame({"order_id": ["2"], "item": ["tea"]}).to_parquet(demo / "mixed" / "b.parquet")
    mixed = with_data(demo, {"items": "mixed/*"}, "p_mixed.yaml")
    with pytest.raises(DataError, match="matches Parquet and other files"):
        pdca.load(Plan.from_yaml(mixed))
    (demo / "mixed" / "b.parquet").unlink()
    (demo / "mixed" / "c.csv").write_text("order_id,item\n3,bread\n")
    from closedloop import io

    stacked = io.read_items(demo / "mixed" / "*.csv")  # CSV files stacked, ids as text
    assert stacked.to_dict("list") == {"order_id": ["1", "3"], "item": ["milk", "bread"]}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.parquet").write_bytes(b"")
    away = with_data(demo, {"items": f"{outside}/*.parquet"}, "p_away.yaml")
    with pytest.raises(PlanError, match="is outside the data root"):
        Plan.from_yaml(away)
    (demo / "linked").mkdir()
    (demo / "linked" / "x.parquet").symlink_to(outside / "x.parquet")
    linked = with_data(demo, {"items": "linked"}, "p_linked.yaml")
    with pytest.raises(PlanError, match=r"linked: x.parquet is outside the data root"):
        Plan.from_yaml(linked)
    # the folder reads .pq and .PARQUET files too: a link under either name is judged as well
    (demo / "linked" / "x.parquet").unlink()
    pd.DataFrame({"order_id": ["2"], "item": ["tea"]}).to_parquet(demo / "linked" / "in.parquet")
    for name in ("x.pq", "x.PARQUET"):
        (demo / "linked" / name).symlink_to(outside / "x.parquet")
        with pytest.raises(PlanError, match=rf"linked: {name} is outside the data root"):
            Plan.from_yaml(linked)
        (demo / "linked" / name).unlink()


def test_folders_and_globs_keep_the_time_zone_their_files_are_written_in(tmp_path):
    """A purchase at 01:00 in Shanghai is on 1 March whether its file is read alone (pyarrow) or
    as part of a folder or glob (DuckDB, whose session zone would put it on 28 February); files
    that write one column in different zones are refused, naming it."""
    from closedloop import io

    times = pd.to_datetime(["2026-03-01 01:00", "2026-03-02 23:30"]).tz_localize("Asia/Shanghai")
    frame = pd.DataFrame(
        {"order_id": ["o1", "o2"], "customer_id": ["1", "2"], "order_date": times}
    ).assign(amount=[10.0, 20.0])
    (tmp_path / "tx").mkdir()
    frame.iloc[:1].to_parquet(tmp_path / "tx" / "a.parquet")
    frame.iloc[1:].to_parquet(tmp_path / "tx" / "b.parquet")
    frame.to_parquet(tmp_path / "one.parquet")
    wall = pd.to_datetime(["2026-03-01 01:00", "2026-03-02 23:30"]).tolist()
    for where in (tmp_path / "one.parquet", tmp_path / "tx", str(tmp_path / "tx" / "*.parquet")):
        read = io.read_transactions(where, asof="2026-04-01")
        assert read["order_date"].tolist() == wall, where
        utc = io.read_transactions(where, asof="2026-04-01", timezone="UTC")
        assert utc["order_date"].iloc[0] == pd.Timestamp("2026-02-28 17:00"), where
    frame.iloc[1:].assign(order_date=times[1:].tz_convert("UTC")).to_parquet(
        tmp_path / "tx" / "b.parquet"
    )
    with pytest.raises(DataError, match=r"'order_date' in different time zones \(Asia/Shanghai"):
        io.read_transactions(tmp_path / "tx", asof="2026-04-01")
    # a file without a zone beside zoned ones: DuckDB would shift its wall clock
    frame.iloc[1:].assign(order_date=times[1:].tz_localize(None)).to_parquet(
        tmp_path / "tx" / "b.parquet"
    )
    with pytest.raises(DataError, match=r"\(Asia/Shanghai in a.parquet, no time zone in b.parquet"):
        io.read_transactions(tmp_path / "tx", asof="2026-04-01")


def test_labels_name_the_place_not_the_credentials(monkeypatch):
    def label(**source):
        return sources.label(Plan.parse(_plan_with({"items": source})).data.items)

    assert label(postgres="postgresql://ann:${PW}@db.example:5433/crm", table="s.t") == (
        "s.t (PostgreSQL crm on db.example:5433)"
    )
    monkeypatch.setenv("PGHOST", "/run/postgresql")
    assert label(postgres="dbname=crm", query="SELECT 1") == "query (PostgreSQL crm on postgresql)"
    assert (
        label(spark="sc://spark.example:15002/;token=${T}", table="t")
        == "t (Spark spark.example:15002)"
    )
    assert label(duckdb="/data/shop.duckdb", table="t") == "t (DuckDB shop.duckdb)"


def test_starting_a_running_server_again_prints_its_variables(postgres):
    """``eval "$(scripts/postgres.sh start DIR)"`` a second time (a new shell) still sets the
    variables, those of the running server, instead of failing with the server's log."""
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"
    again = subprocess.run(
        ["bash", str(script), "start", str(postgres.folder), str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"export PGHOST={postgres.folder} PGPORT={postgres.port} PGUSER=closedloop"
        " PGDATABASE=postgres"
    )
    assert "already running" in again.stderr and "FATAL" not in again.stderr


# rows after the as-of day and refunds are warned about, as they should be
@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")
def test_the_scale_plan_reports_the_same_numbers_from_parquet_duckdb_and_csv(tmp_path):
    """The warehouse-scale benchmark's plan (``benchmarks/bench_scale.py``) at a small size: the
    Parquet and DuckDB routes (checked in the engine) and the CSV route (checked in pandas)
    give the same summary.json and data-quality rows, and the control arm's conversion is the
    one plain pandas counts from the CSV files."""
    from benchmarks.bench_scale import write

    plans = write(tmp_path, 30_000, 3_000, kinds=("parquet", "duckdb", "csv"))
    records, qualities = {}, {}
    for kind, path in plans.items():
        plan = Plan.from_yaml(path)
        data = pdca.load(plan)
        result = pdca.check(plan, data)
        summary = pdca.summary(result, pdca.act(result), "r1")
        records[kind] = json.dumps(summary, default=str, sort_keys=True)
        qualities[kind] = data.quality.drop(columns="source")
    assert records["parquet"] == records["csv"] == records["duckdb"]
    pd.testing.assert_frame_equal(qualities["parquet"], qualities["csv"])
    pd.testing.assert_frame_equal(qualities["duckdb"], qualities["csv"])
    assert qualities["csv"].loc[0, "after_asof"] > 0 and qualities["csv"].loc[0, "refunds"] > 0

    tx = pd.read_csv(tmp_path / "transactions.csv", parse_dates=["order_date"])
    arms = pd.read_csv(tmp_path / "assignments.csv")
    march = tx[(tx["order_date"] >= "2026-03-01") & (tx["order_date"] < "2026-04-01")]
    per = march.groupby("customer_id").agg(
        orders=("amount", lambda a: int((a >= 0).sum())), revenue=("amount", "sum")
    )
    converted = (per["orders"] > 0) & (per["revenue"] > 0)
    control = arms.loc[arms["arm"] == "control", "customer_id"]
    expected = converted.reindex(control, fill_value=False).mean()
    lift_rows = json.loads(records["csv"])["lift"]
    (row,) = [r for r in lift_rows if r["arm"] == "sms" and r["metric"] == "converted"]
    assert row["control_customers"] == len(control)
    assert row["control_mean"] == pytest.approx(expected, rel=1e-12)
