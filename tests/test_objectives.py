"""Objectives that drive the metrics, and targets set against the baseline: a plan per objective
on the demo, each measured again here in plain pandas."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from closedloop import act, assign, objectives, pdca, sections, verdict
from closedloop.datasets import write_demo
from closedloop.plan import Plan, PlanError

START, END = pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-31")
BASE_START, BASE_END = pd.Timestamp("2026-01-01"), pd.Timestamp("2026-02-28")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=2_000)
    # a recruiting campaign: prospects and new members randomised at the period's start
    customers = pd.read_csv(folder / "customers.csv", parse_dates=["join_date"])
    prospects = customers.loc[customers["join_date"] >= "2026-01-15", ["customer_id"]]
    arms = {"control": 0.2, "sms": 0.4, "wecom": 0.4}
    listed = assign.randomise(prospects, arms, seed=3, stratum=None)
    listed[["customer_id", "arm"]].to_csv(folder / "prospects.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def tables(demo):
    tx = pd.read_csv(demo / "transactions.csv", parse_dates=["order_date"])
    return {
        "tx": tx,
        "assignments": pd.read_csv(demo / "assignments.csv"),
        "prospects": pd.read_csv(demo / "prospects.csv"),
        "customers": pd.read_csv(demo / "customers.csv", parse_dates=["join_date"]),
        "events": pd.read_csv(demo / "events.csv", parse_dates=["timestamp"]),
    }


def _plan(demo, objective, targets=None, **extra) -> Plan:
    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw["data"] = {k: str(demo / v) for k, v in raw["data"].items()}
    raw.update(objective=objective, **extra)
    if targets is None:
        raw.pop("targets")
    else:
        raw["targets"] = targets
    return Plan.parse(raw)


def _check(plan):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pdca.check(plan, pdca.load(plan))


def _contacted(assignments, control="control"):
    return assignments.loc[assignments["arm"] != control, "customer_id"]


def _in(tx, start, end):
    return tx[(tx["order_date"] >= start) & (tx["order_date"] < end + pd.Timedelta(days=1))]


def _orders(tx, ids, start, end):
    """Orders and net revenue per customer of ``ids`` in the days start..end (plain pandas)."""
    part = _in(tx, start, end)
    bought = part[part["amount"] >= 0]
    orders = bought.groupby("customer_id")["order_id"].nunique().reindex(ids, fill_value=0)
    revenue = part.groupby("customer_id")["amount"].sum().reindex(ids, fill_value=0.0)
    return orders, revenue


def recruit_plan(demo, **targets):
    extra = {
        "data": {
            "assignments": "prospects.csv",
            "transactions": "transactions.csv",
            "customers": "customers.csv",
        }
    }
    raw = yaml.safe_load((demo / "plan.yaml").read_text())
    raw.update(objective="recruit", arms={"control": 0.2, "sms": 0.4, "wecom": 0.4})
    raw["data"] = {k: str(demo / v) for k, v in extra["data"].items()}
    raw["quality"] = {"min_coverage": 0.0}
    raw.pop("audience")
    raw["targets"] = targets or {"recruits": 20, "first_conversion_rate": 0.5}
    return Plan.parse(raw)


#: objective -> (targets, the lift metric it leads with, the target it shows first)
SIX = {
    "convert": ({"conversion_rate": 0.2, "leads": 100}, "converted", "conversion_rate"),
    "second purchase": ({"second_purchase_rate": 0.02}, "second_purchase", "second_purchase_rate"),
    "ticket": ({"incremental_revenue": 500, "avg_ticket": 40}, "ticket", "avg_ticket"),
    "frequency": ({"roi": 1.0, "orders_per_customer": 0.2}, "orders", "orders_per_customer"),
    "win back": (
        {"relative_lift": {"metric": "conversion", "min": 0.1}, "conversion_rate": 0.2},
        "converted",
        "conversion_rate",
    ),
}


@pytest.mark.parametrize("objective", [*SIX, "recruit"])
def test_a_plan_per_objective_runs_and_shows_its_own_metrics_first(demo, objective):
    if objective == "recruit":
        plan, lead, first = recruit_plan(demo), "recruited", "recruits"
    else:
        targets, lead, first = SIX[objective]
        plan = _plan(demo, objective, targets)
    check = _check(plan)
    assert check.scorecard["target"].iloc[0] == first
    assert check.lift["metric"].iloc[0] == lead
    assert act.lift_column(plan) == lead
    sentences = verdict.verdict(check, act.next_plan(check))
    name = verdict.metric_name(lead)
    best = [s for s in sentences if " on " in s or "holdout" in s]
    assert name in " ".join(sentences), (name, sentences)
    assert sentences[0].count(";") >= 0 and best
    # the report's scorecard and lift tables lead with them too
    card_html = sections.scorecard(check)[1].data
    assert card_html.index(verdict.target_name(first)) < card_html.index("</tbody>")
    lift_html = sections.lift(check, out_dir=demo / "out")[1].data
    first_row = lift_html.split("<tbody>")[1].split("</tr>")[0]
    assert name in first_row
    if objective == "recruit":  # recruit leads with recruits and first conversion
        assert any(verdict.metric_name("first_conversion") in s for s in sentences)


def test_the_objectives_metrics_are_those_counted_by_hand(demo, tables):
    tx, assignments = tables["tx"], tables["assignments"]
    plan = _plan(
        demo,
        "frequency",
        {
            "orders_per_customer": 0.2,
            "avg_ticket": 40,
            "second_purchase_rate": 0.02,
            "leads": 50,
        },
    )
    check = _check(plan)
    card = check.scorecard.set_index("target")
    ids = _contacted(assignments)
    orders, revenue = _orders(tx, ids, START, END)
    assert card.loc["orders_per_customer", "actual"] == pytest.approx(orders.mean())
    bought = orders > 0
    assert card.loc["avg_ticket", "actual"] == pytest.approx(
        revenue[bought].sum() / orders[bought].sum()
    )
    # second purchase: two purchases in the period, the second within 30 days of the first
    period = _in(tx, START, END)
    period = period[period["amount"] >= 0].sort_values("order_date")
    first = period.groupby("customer_id")["order_date"].transform("min")
    within = period[period["order_date"] < first + pd.Timedelta(days=30)]
    twice = within.groupby("customer_id")["order_id"].nunique() >= 2
    expected = ids.isin(twice[twice].index).mean()
    assert card.loc["second_purchase_rate", "actual"] == pytest.approx(expected)
    # leads: contacted customers with a visit in the period
    events = tables["events"]
    visits = events[
        (events["stage"] == "visit")
        & events["timestamp"].between(START, END + pd.Timedelta(days=1))
    ]
    who = visits["customer_id"].fillna(visits["entity_id"])
    assert card.loc["leads", "actual"] == ids.isin(set(who)).sum()
    # the frequency objective judges the arms on orders per customer, holdout against each arm
    rows = check.lift[check.lift["metric"] == "orders"].set_index("arm")
    all_orders, _ = _orders(tx, assignments["customer_id"], START, END)
    by_arm = all_orders.groupby(assignments.set_index("customer_id")["arm"]).mean()
    assert rows.loc["sms", "mean"] == pytest.approx(by_arm["sms"])
    assert rows.loc["sms", "control_mean"] == pytest.approx(by_arm["control"])


def test_the_ticket_lift_is_revenue_per_order_of_each_arms_buyers(demo, tables):
    check = _check(_plan(demo, "ticket", {"avg_ticket": 40}))
    tx, assignments = tables["tx"], tables["assignments"]
    orders, revenue = _orders(tx, assignments["customer_id"], START, END)
    arm = assignments.set_index("customer_id")["arm"]
    bought = orders > 0
    ticket = revenue[bought].groupby(arm).sum() / orders[bought].groupby(arm).sum()
    rows = check.lift[check.lift["metric"] == "ticket"].set_index("arm")
    for name in ("sms", "wecom"):
        assert rows.loc[name, "mean"] == pytest.approx(ticket[name])
        assert rows.loc[name, "control_mean"] == pytest.approx(ticket["control"])
        assert rows.loc[name, "customers"] == bought[arm == name].sum()
        assert (
            rows.loc[name, "abs_lift_low"]
            < ticket[name] - ticket["control"]
            < rows.loc[name, "abs_lift_high"]
        )
    # the delta method: each arm's ticket has the standard error of its buyers' linearised
    # values, and the normal model reads it as ticket + se t(n - 1); the interval of the
    # difference, drawn here from those two posteriors, is the table's
    rng = np.random.default_rng(0)

    def posterior(name):
        frame = pd.DataFrame(
            {"o": orders[bought & (arm == name)], "r": revenue[bought & (arm == name)]}
        )
        ratio = frame["r"].sum() / frame["o"].sum()
        linear = (frame["r"] - ratio * frame["o"]) / frame["o"].mean()
        se = linear.std(ddof=1) / np.sqrt(len(frame))
        return ratio + se * rng.standard_t(len(frame) - 1, 400_000)

    low, high = np.quantile(posterior("sms") - posterior("control"), [0.025, 0.975])
    width = rows.loc["sms", "abs_lift_high"] - rows.loc["sms", "abs_lift_low"]
    assert width == pytest.approx(high - low, rel=0.03)


def test_recruits_and_their_first_conversion_are_counted_from_the_join_dates(demo, tables):
    check = _check(recruit_plan(demo))
    card = check.scorecard.set_index("target")
    customers, prospects, tx = tables["customers"], tables["prospects"], tables["tx"]
    ids = _contacted(prospects)
    joined = customers[customers["join_date"].between(START, END + pd.Timedelta(hours=23))]
    recruits = joined[joined["customer_id"].isin(ids)]
    assert len(recruits) > 10
    assert card.loc["recruits", "actual"] == len(recruits)
    after = tx.merge(recruits[["customer_id", "join_date"]], on="customer_id")
    after = after[
        (after["order_date"] >= after["join_date"])
        & (after["order_date"] < END + pd.Timedelta(days=1))
        & (after["amount"] >= 0)
    ]
    assert card.loc["first_conversion_rate", "actual"] == pytest.approx(
        after["customer_id"].nunique() / len(recruits)
    )


def test_a_plan_without_targets_aims_at_its_objectives_metric(demo):
    plan = _plan(demo, "frequency")
    assert plan.targets.relative_lift.metric == "orders" and plan.targets.relative_lift.min == 0
    check = _check(plan)
    row = check.scorecard.iloc[0]
    best = check.lift[check.lift["metric"] == "orders"]["rel_lift"].max()
    assert row["target"] == "relative_lift" and row["actual"] == pytest.approx(best)


# --- targets against the baseline ---------------------------------------------------------------


def test_targets_against_the_baseline_are_the_baseline_metric_changed(demo, tables):
    tx, assignments = tables["tx"], tables["assignments"]
    plan = _plan(
        demo,
        "frequency",
        {
            "conversion_rate": {"vs_baseline": "+10%"},
            "orders_per_customer": {"vs_baseline": "-5%"},
            "avg_ticket": {"vs_baseline": "+10%"},
            "second_purchase_rate": {"vs_baseline": 0.02},
        },
    )
    check = _check(plan)
    card = check.scorecard.set_index("target")
    ids = _contacted(assignments)
    orders, revenue = _orders(tx, ids, BASE_START, BASE_END)
    converted = ((orders > 0) & (revenue > 0)).mean()
    assert card.loc["conversion_rate", "baseline"] == pytest.approx(converted)
    assert card.loc["conversion_rate", "target_value"] == pytest.approx(converted * 1.1)
    # orders per customer grow with the days counted: the 59-day baseline scaled to 31 days
    per_period = orders.mean() * 31 / 59
    assert card.loc["orders_per_customer", "baseline"] == pytest.approx(per_period)
    assert card.loc["orders_per_customer", "target_value"] == pytest.approx(per_period * 0.95)
    bought = orders > 0
    ticket = revenue[bought].sum() / orders[bought].sum()
    assert card.loc["avg_ticket", "target_value"] == pytest.approx(ticket * 1.1)
    base = tx[
        (tx["order_date"] >= BASE_START) & (tx["order_date"] < BASE_END + pd.Timedelta(days=1))
    ]
    base = base[(base["amount"] >= 0) & base["customer_id"].isin(ids)].sort_values("order_date")
    first = base.groupby("customer_id")["order_date"].transform("min")
    again = (
        base[base["order_date"] < first + pd.Timedelta(days=30)]
        .groupby("customer_id")["order_id"]
        .nunique()
    )
    rate = ids.isin(again[again >= 2].index).mean()
    assert card.loc["second_purchase_rate", "baseline"] == pytest.approx(rate)
    assert card.loc["second_purchase_rate", "target_value"] == pytest.approx(rate + 0.02)
    assert card.loc["second_purchase_rate", "change"] == "+0.02"
    # met or missed against the implied target, the scorecard shows both numbers
    actual = card.loc["conversion_rate", "actual"]
    assert card.loc["conversion_rate", "status"] == (
        "met" if actual >= converted * 1.1 else "missed"
    )
    html = sections.scorecard(check)[1].data
    assert "(+10%)" in html and "(-5%)" in html
    note = sections.scorecard(check)[2].data
    assert "The baseline is 59 days, the period 31" in note
    record = pdca.summary(check, act.next_plan(check), "r1")
    assert {r["target"] for r in record["baselines"]} == {
        "conversion_rate",
        "orders_per_customer",
        "avg_ticket",
        "second_purchase_rate",
    }
    recap = sections.plan_recap(check)[2].data
    assert "baseline +10%" in recap


def test_recruits_against_the_baseline_count_the_baseline_joins(demo, tables):
    check = _check(recruit_plan(demo, recruits={"vs_baseline": "+50%"}))
    customers, prospects = tables["customers"], tables["prospects"]
    ids = _contacted(prospects)
    joined = customers[customers["customer_id"].isin(ids)]
    before = joined["join_date"].between(BASE_START, BASE_END + pd.Timedelta(hours=23)).sum()
    card = check.scorecard.set_index("target")
    assert before > 0
    assert card.loc["recruits", "baseline"] == pytest.approx(before * 31 / 59)
    assert card.loc["recruits", "target_value"] == pytest.approx(before * 31 / 59 * 1.5)


def test_a_baseline_target_needs_a_baseline_the_data_covers(demo):
    with pytest.raises(PlanError, match="no baseline period"):
        _check(_plan(demo, "convert", {"conversion_rate": {"vs_baseline": "+10%"}}, baseline=None))
    # the demo's funnel events start with the period: they do not cover January
    with pytest.raises(
        PlanError, match=r"events\.csv starts on 2026-03-01.*does not cover the baseline"
    ):
        _check(_plan(demo, "convert", {"funnel": {"visit": {"vs_baseline": "+10%"}}}))
    early = {"start": "2024-01-01", "end": "2024-02-29"}
    with pytest.raises(PlanError, match=r"transactions\.csv starts on 2024-04-01"):
        _check(_plan(demo, "convert", {"conversion_rate": {"vs_baseline": "+10%"}}, baseline=early))


@pytest.mark.parametrize(
    "targets, message",
    [
        ({"roi": {"vs_baseline": "+10%"}}, "roi is a lift over the holdout"),
        (
            {"relative_lift": {"metric": "orders", "min": {"vs_baseline": "+1%"}}},
            "relative_lift is a lift",
        ),
        ({"conversion_rate": {"vs_baseline": "ten percent"}}, "vs_baseline is a change such as"),
        # numbers Python's float() reads but no one writes as a change: each would turn the
        # implied target into inf, nan or a silent thousand
        *(
            ({"conversion_rate": {"vs_baseline": bad}}, "vs_baseline is a change such as")
            for bad in ["nan", "inf", "-inf", "1e309", float("nan"), float("inf"), True, "1_000"]
        ),
        ({"avg_ticket": {"vs_baseline": "+1" + "0" * 400 + "%"}}, "vs_baseline is a change"),
        ({"avg_ticket": {"vs_baseline": "-200%"}}, "more than 100% below the baseline"),
        # a plain target YAML reads as inf, nan or true is no target either
        ({"avg_ticket": float("inf")}, "avg_ticket.float: Input should be a finite number"),
        ({"roi": float("nan")}, "roi: Input should be a finite number"),
        ({"relative_lift": {"min": float("inf")}}, "relative_lift.min: Input should be a finite"),
        ({"conversion_rate": True}, "conversion_rate: a target is a number, not true or false"),
        ({"funnel": {"visit": True}}, "funnel: a target is a number, not true or false"),
    ],
)
def test_baseline_targets_the_plan_cannot_mean_are_refused(demo, targets, message):
    with pytest.raises(PlanError, match=message):
        _plan(demo, "convert", targets)


def test_a_baseline_change_that_leaves_the_possible_range_is_refused(demo):
    # the demo's contacted customers converted at about 22% in the baseline: +900% asks for
    # a conversion rate above 1, which the scorecard would otherwise show as a missed target
    with pytest.raises(PlanError, match=r"conversion_rate \+900% .* asks for 2\.\d+"):
        _check(_plan(demo, "convert", {"conversion_rate": {"vs_baseline": "+900%"}}))


def test_a_baseline_change_parses_as_written():
    from closedloop.plan import VsBaseline

    assert VsBaseline(vs_baseline="+10%").implied(0.2) == pytest.approx(0.22)
    assert VsBaseline(vs_baseline="-5%").implied(2.0) == pytest.approx(1.9)
    assert VsBaseline(vs_baseline=0.02).implied(0.1) == pytest.approx(0.12)
    assert (
        not VsBaseline(vs_baseline=0.02).relative and str(VsBaseline(vs_baseline=0.02)) == "+0.02"
    )
    assert objectives.default_targets("ticket") == {
        "relative_lift": {"metric": "ticket", "min": 0.0}
    }


def test_an_interim_check_prorates_the_objectives_counts_not_the_ticket(demo):
    plan = _plan(demo, "frequency", {"orders_per_customer": 0.2, "avg_ticket": 40, "leads": 90})
    # without a baseline the pace is pro rata by days (its week shapes it otherwise:
    # tests/test_interim_history.py)
    plan = plan.model_copy(update={"baseline": None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = pdca.check(plan, pdca.load(plan, asof="2026-03-14"), asof="2026-03-14")
    card = check.scorecard.set_index("target")
    assert card.loc["orders_per_customer", "expected_by_now"] == pytest.approx(0.2 * 14 / 31)
    assert card.loc["leads", "expected_by_now"] == pytest.approx(90 * 14 / 31)
    assert card.loc["avg_ticket", "expected_by_now"] == pytest.approx(40)
    projected = card.loc["orders_per_customer"]
    assert projected["projected"] == pytest.approx(projected["actual"] * 31 / 14)
    assert projected["projected_low"] < projected["projected"] < projected["projected_high"]
    assert set(card["status"]) <= {"ahead", "on track", "behind"}
