"""The plan file: each kind of bad field is refused with a message naming it."""

from __future__ import annotations

import copy

import pytest
import yaml

from closedloop.plan import Plan, PlanError

GOOD = {
    "campaign": "spring-winback-2026",
    "name": "Spring win-back push",
    "objective": "win back",
    "period": {"start": "2026-03-01", "end": "2026-03-31"},
    "baseline": {"start": "2026-01-01", "end": "2026-02-28"},
    "audience": {"segments": ["at_risk", "lapsed"]},
    "arms": {"control": 0.10, "sms": 0.45, "wecom": 0.45},
    "cost": {"sms": 0.05, "wecom": 0.02},
    "targets": {
        "conversion_rate": 0.03,
        "relative_lift": {"metric": "conversion", "min": 0.20},
        "incremental_revenue": 50000,
        "roi": 1.5,
        "funnel": {"visit": 0.15, "register": 0.06, "purchase": {"vs_baseline": "+10%"}},
        "orders_per_customer": {"vs_baseline": "+5%"},
        "avg_ticket": 45.0,
        "second_purchase_rate": {"vs_baseline": 0.02},
        "recruits": 200,
        "first_conversion_rate": 0.4,
        "leads": 1000,
    },
    "metrics": {"second_purchase_days": 45, "lead_stage": "register"},
    "follow_up_days": [30, 60, 90],
    "stopping": {"min_days": 7, "loss_threshold": 0.05},
    "data": {"transactions": "tx.csv", "assignments": "assignments.csv"},
}


def write(tmp_path, raw, name="plan.yaml"):
    for file in ("tx.csv", "assignments.csv"):
        (tmp_path / file).write_text("customer_id\n1\n")
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def changed(path: str, value):
    raw = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


_DELETE = object()


def test_a_good_plan_loads_and_resolves_paths(tmp_path):
    plan = Plan.from_yaml(write(tmp_path, GOOD))
    assert plan.treated_arms == ["sms", "wecom"]
    assert plan.data.transactions == tmp_path / "tx.csv"
    assert plan.period.days == 31
    again = Plan.from_yaml(
        write(tmp_path, yaml.safe_load(plan.to_yaml(relative_to=tmp_path)), "b.yaml")
    )
    assert again == plan


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("budget", 100, r"budget: unknown key \(known: campaign, name"),
        (
            "targets.conversion_rat",
            0.2,
            r"targets.conversion_rat: unknown key \(known: conversion_rate",
        ),
        (
            "targets.relative_lift",
            {"metric": "clicks", "min": 0.1},
            "targets.relative_lift.metric: Input should be",
        ),
        ("targets.funnel", {"visit": 15}, "funnel target for 'visit' must be a rate"),
        (
            "period",
            {"start": "2026-03-31", "end": "2026-03-01"},
            "period: end 2026-03-01 is before start 2026-03-31",
        ),
        (
            "period",
            {"start": "2026-02-30", "end": "2026-03-01"},
            "period.start: Input should be a valid date",
        ),
        (
            "baseline",
            {"start": "2026-01-01", "end": "2026-03-05"},
            "baseline must end before the period starts",
        ),
        ("arms", {"control": 0.1, "sms": 0.5}, "arm allocations sum to 0.6, not 1"),
        ("arms", {"holdout": 0.1, "sms": 0.9}, "no control arm: arms are \\['holdout', 'sms'\\]"),
        ("arms", {"control": 1.0}, "at least one treated arm"),
        ("cost", {"email": 0.1}, r"cost given for arms that do not exist: \['email'\]"),
        ("objective", "be famous", "objective: Input should be 'recruit'"),
        ("campaign", "../../etc", "a campaign id holds only letters, digits, - and _"),
        ("campaign", "<script>", "a campaign id holds only letters"),
        ("arms", _DELETE, "arms: required"),
        ("data.transactions", _DELETE, "data: give outcomes or transactions"),
        ("cost", _DELETE, "an roi target needs the cost per contacted customer"),
        ("targets.conversion_rate", 1.5, r"conversion_rate is a rate in \[0, 1\]"),
        ("targets.avg_ticket", -3, "avg_ticket cannot be negative"),
        ("targets.roi", {"vs_baseline": "+10%"}, "roi is a lift over the holdout"),
        ("targets.leads", {"vs_baseline": "lots"}, "vs_baseline is a change such as"),
        ("follow_up_days", [60, 30], "follow_up_days must increase without repeats"),
        ("follow_up_days", [0], "follow_up_days.0: Input should be greater than or equal to 1"),
        ("metrics", {"lead": "visit"}, r"metrics.lead: unknown key \(known: second_purchase_days"),
        ("report", {"window": 30}, r"report.window: unknown key \(known: period_days, basket\)"),
        ("report", {"period_days": 0}, "report.period_days: Input should be greater than or equal"),
        (
            "report",
            {"basket": {"min_suport": 0.01}},
            r"report.basket.min_suport: unknown key \(known: min_support, min_confidence\)",
        ),
        ("report", {"basket": {"min_support": 0}}, "report.basket.min_support: Input should be"),
        ("report", {"basket": {"min_confidence": 1.5}}, "report.basket.min_confidence: Input"),
    ],
)
def test_bad_fields_are_named(tmp_path, path, value, message):
    with pytest.raises(PlanError, match=message) as err:
        Plan.from_yaml(write(tmp_path, changed(path, value)))
    assert "plan.yaml: invalid plan" in str(err.value)


def test_missing_data_files_are_listed(tmp_path):
    raw = changed("data", {"transactions": "nowhere.csv", "assignments": "assignments.csv"})
    with pytest.raises(
        PlanError, match=r"data file\(s\) not found: data.transactions: .*nowhere.csv"
    ):
        Plan.from_yaml(write(tmp_path, raw))


def test_not_yaml_and_not_a_mapping(tmp_path):
    (tmp_path / "broken.yaml").write_text("campaign: [unclosed\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        Plan.from_yaml(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(PlanError, match="a plan is a mapping"):
        Plan.from_yaml(tmp_path / "list.yaml")
    with pytest.raises(PlanError, match="plan file not found"):
        Plan.from_yaml(tmp_path / "absent.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    (tmp_path / "evil.yaml").write_text("campaign: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        Plan.from_yaml(tmp_path / "evil.yaml")


def test_transactions_are_optional_when_outcomes_are_given(tmp_path):
    raw = changed("data", {"assignments": "assignments.csv", "outcomes": "assignments.csv"})
    plan = Plan.from_yaml(write(tmp_path, raw))
    assert plan.data.transactions is None
    assert plan.data.outcomes == tmp_path / "assignments.csv"


ALIAS_BOMB = """campaign: bomb
objective: win back
period: {start: 2026-03-01, end: 2026-03-31}
arms: {control: 0.5, sms: 0.5}
targets: {conversion_rate: 0.1}
data: {transactions: tx.csv, assignments: assignments.csv}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
name: *h
"""


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    import time
    import tracemalloc

    path = write(tmp_path, GOOD)
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB.encode()) < 700
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(PlanError, match=r"anchors and aliases .* are not allowed") as err:
        Plan.from_yaml(path)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 50 * 2**20
    assert len(str(err.value)) < 600


def test_duplicate_keys_are_refused(tmp_path):
    path = write(tmp_path, GOOD)
    path.write_text(path.read_text() + "margin: 0.5\nmargin: 0.9\n")
    with pytest.raises(PlanError, match="duplicate key 'margin'"):
        Plan.from_yaml(path)


def test_a_long_bad_value_is_not_repeated_whole(tmp_path):
    raw = changed("objective", "x" * 100_000)
    with pytest.raises(PlanError) as err:
        Plan.from_yaml(write(tmp_path, raw))
    assert "objective: Input should be" in str(err.value) and len(str(err.value)) < 400


def test_data_paths_stay_inside_the_data_root(tmp_path):
    (tmp_path / "outside.csv").write_text("customer_id\n1\n")
    folder = tmp_path / "campaign"
    folder.mkdir()
    raw = changed("data", {"transactions": "../outside.csv", "assignments": "assignments.csv"})
    path = write(folder, raw)
    with pytest.raises(
        PlanError, match=r"data.transactions: .*outside.csv is outside the data root"
    ):
        Plan.from_yaml(path)
    assert Plan.from_yaml(path, data_root=tmp_path).data.transactions == tmp_path / "outside.csv"
    assert Plan.from_yaml(path, check_paths=False).data.transactions == tmp_path / "outside.csv"


def test_data_paths_are_regular_files(tmp_path):
    raw = changed("data", {"transactions": "/dev/zero", "assignments": "assignments.csv"})
    with pytest.raises(PlanError, match=r"/dev/zero is not a regular file"):
        Plan.from_yaml(write(tmp_path, raw), data_root="/")
    (tmp_path / "folder").mkdir()
    raw = changed("data", {"transactions": "folder", "assignments": "assignments.csv"})
    with pytest.raises(PlanError, match=r"folder is a directory without Parquet files"):
        Plan.from_yaml(write(tmp_path, raw))
    with pytest.raises(PlanError, match="not a regular file"):
        Plan.from_yaml(tmp_path / "folder")


def test_formats_outliers_and_quality_are_typed(tmp_path):
    raw = {
        **GOOD,
        "formats": {"transactions": {"encoding": "gb18030", "date_format": "%d/%m/%Y"}},
        "outliers": {"rule": "cap"},
        "quality": {"min_coverage": 0.2},
    }
    plan = Plan.from_yaml(write(tmp_path, raw))
    assert plan.formats["transactions"].date_format == "%d/%m/%Y"
    assert plan.outliers.rule == "cap" and plan.quality.min_coverage == 0.2
    assert Plan.from_yaml(write(tmp_path, GOOD)).quality.min_coverage == 0.5
    for key, value, message in [
        ("formats", {"orders": {}}, "formats.orders"),
        ("formats", {"transactions": {"encoding": "klingon"}}, "unknown encoding 'klingon'"),
        ("formats", {"transactions": {"timezone": "Mars/Olympus"}}, "unknown timezone"),
        ("formats", {"transactions": {"datefmt": "%d"}}, r"unknown key \(known: encoding"),
        ("outliers", {"rule": "drop"}, "outliers.rule: Input should be 'flag', 'cap' or"),
        ("quality", {"min_coverage": 2}, "quality.min_coverage: Input should be less than"),
    ]:
        with pytest.raises(PlanError, match=message):
            Plan.from_yaml(write(tmp_path, {**GOOD, key: value}))


def test_the_report_section_is_optional_with_documented_defaults(tmp_path):
    plan = Plan.from_yaml(write(tmp_path, GOOD))
    assert plan.report is None
    assert plan.report_settings.period_days == 365
    assert plan.report_settings.basket.min_support == 0.005
    assert plan.report_settings.basket.min_confidence == 0.3
    assert "report" not in yaml.safe_load(plan.to_yaml())  # defaults are not written out
    raw = changed("report", {"period_days": 180, "basket": {"min_confidence": 0.5}})
    plan = Plan.from_yaml(write(tmp_path, raw, "b.yaml"))
    assert plan.report_settings.period_days == 180
    assert plan.report_settings.basket.min_confidence == 0.5
    assert plan.report_settings.basket.min_support == 0.005
    again = Plan.from_yaml(write(tmp_path, yaml.safe_load(plan.to_yaml(relative_to=tmp_path))))
    assert again == plan


def test_the_engine_is_typed_and_says_where_it_runs(tmp_path, monkeypatch):
    """``engine: local | spark``; the session from the plan's ``spark``, a Spark source, the
    CLOSEDLOOP_SPARK variable, else local[2]; written back as given, never the variable."""
    monkeypatch.delenv("CLOSEDLOOP_SPARK", raising=False)
    plan = Plan.from_yaml(write(tmp_path, GOOD))
    assert plan.engine is None and not plan.on_spark
    assert "engine" not in yaml.safe_load(plan.to_yaml())
    plan = Plan.from_yaml(write(tmp_path, changed("engine", "spark"), "a.yaml"))
    assert plan.on_spark and plan.spark_master == "local[2]"
    monkeypatch.setenv("CLOSEDLOOP_SPARK", "sc://spark.example:15002")
    assert plan.spark_master == "sc://spark.example:15002"
    written = yaml.safe_load(plan.to_yaml())
    assert written["engine"] == "spark" and "spark" not in written
    raw = {**changed("engine", "spark"), "spark": "spark://head.example:7077"}
    assert (
        Plan.from_yaml(write(tmp_path, raw, "b.yaml")).spark_master == "spark://head.example:7077"
    )
    source = {"spark": "sc://lake.example:15002/;token=${TOKEN}", "table": "sales.orders"}
    raw = {**GOOD, "data": {**GOOD["data"], "transactions": source}}
    plan = Plan.from_yaml(write(tmp_path, raw, "c.yaml"))
    assert plan.on_spark and plan.spark_master == source["spark"]
    plan = Plan.from_yaml(write(tmp_path, {**raw, "engine": "local"}, "d.yaml"))
    assert not plan.on_spark


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"engine": "dask"}, r"engine: Input should be 'local' or 'spark'"),
        ({"engine": "spark", "spark": "localhost"}, "'localhost' is not a Spark session: give"),
        ({"engine": "spark", "spark": "sc://h:15002/;token=abc"}, "a token in the plan is refused"),
        ({"engine": "spark", "spark": "sc://h:15002/?token=abc"}, "a token in the plan is refused"),
        ({"engine": "spark", "spark": "sc://h/;Password=abc"}, "a token in the plan is refused"),
        ({"engine": "spark", "spark": "sc://u:abc@h:15002"}, "a password in the plan is refused"),
        ({"engine": "spark", "spark": "spark://u:abc@h:7077"}, "a password in the plan is refused"),
        ({"engine": "spark", "spark": "sc://h:15002/x"}, "'sc://h:15002/x' is not a Spark session"),
        ({"engine": "Spark"}, r"engine: Input should be 'local' or 'spark' \(got 'Spark'\)"),
        ({"engine": " spark"}, r"engine: Input should be 'local' or 'spark'"),
        ({"spark": "local[2]"}, "names the session of engine: spark; add engine: spark"),
        ({"engine": "local", "spark": "yarn"}, "names the session of engine: spark"),
    ],
)
def test_a_bad_engine_is_one_plan_error(tmp_path, extra, message):
    with pytest.raises(PlanError, match=message) as err:
        Plan.from_yaml(write(tmp_path, {**GOOD, **extra}))
    assert str(err.value).count("\n") <= 1
    assert "abc" not in str(err.value)  # a secret is never repeated


def test_a_bad_spark_variable_is_one_plan_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOSEDLOOP_SPARK", "spark:/nowhere")
    with pytest.raises(PlanError, match=r"\$\{CLOSEDLOOP_SPARK\}: 'spark:/nowhere' is not a Spark"):
        Plan.from_yaml(write(tmp_path, changed("engine", "spark")))
