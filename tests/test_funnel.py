"""Funnels and attribution on hand-built logs whose answers are known, and on Hillstrom."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

from closedloop import DataError
from closedloop.datasets import hillstrom
from closedloop.figures.funnel import funnel_chart, step_heatmap
from closedloop.funnel import FUNNEL_COLUMNS, attribution, funnel, funnel_vs_targets

matplotlib.use("Agg")

T = pd.Timestamp
STAGES = ["touch", "visit", "purchase"]


def _log(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["entity_id", "stage", "timestamp", "channel"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


# a: in order; b: skips visit; c: visits before its touch (out of order); d: touch only
LOG = _log(
    [
        ("a", "touch", "2026-03-01 10:00", "sms"),
        ("a", "visit", "2026-03-01 11:00", "sms"),
        ("a", "purchase", "2026-03-02 00:00", "sms"),
        ("b", "touch", "2026-03-01 00:00", "wecom"),
        ("b", "purchase", "2026-03-03 00:00", "wecom"),
        ("c", "visit", "2026-03-01 09:00", "sms"),
        ("c", "touch", "2026-03-01 10:00", "sms"),
        ("c", "purchase", "2026-03-04 00:00", "sms"),
        ("d", "touch", "2026-03-01 00:00", "wecom"),
    ]
)


def _counts(result: pd.DataFrame) -> list[int]:
    return result["entities"].tolist()


def test_columns_and_order():
    result = funnel(LOG, STAGES, by="channel")
    assert list(result.columns) == ["channel", *FUNNEL_COLUMNS]
    assert result["stage"].tolist() == STAGES * 2
    assert result["channel"].tolist() == ["sms"] * 3 + ["wecom"] * 3


def test_out_of_order_and_skipped_stage_ordered_vs_unordered():
    ordered = funnel(LOG, STAGES)
    # ordered: c's visit came before its touch, b skipped visit -> only a goes on
    assert _counts(ordered) == [4, 1, 1]
    assert ordered["dropped"].tolist() == [0, 3, 0]
    unordered = funnel(LOG, STAGES, ordered=False)
    # unordered: a and c visited; a, b and c purchased (b without a visit)
    assert _counts(unordered) == [4, 2, 3]
    # step rate: of the 2 visitors, 2 also purchased; cumulative: 3 of 4 purchased
    purchase = unordered.iloc[2]
    assert (purchase["step_rate"], purchase["dropped"], purchase["cum_rate"]) == (1.0, 0, 0.75)
    # time from the previous stage may be negative unordered: c's visit preceded its touch
    assert unordered.iloc[1]["median_time_from_prev"] == pd.Timedelta(0)
    assert ordered.iloc[1]["median_time_from_prev"] == pd.Timedelta("1h")


def test_repeated_events_count_once_at_their_earliest_time():
    log = _log(
        [
            ("a", "touch", "2026-03-01 10:00", "sms"),
            ("a", "touch", "2026-03-05 10:00", "sms"),
            ("a", "visit", "2026-03-01 12:00", "sms"),
            ("a", "visit", "2026-03-02 12:00", "sms"),
            ("a", "visit", "2026-03-03 12:00", "sms"),
            # e's first visit precedes its touch; a later repeat does not rescue it
            ("e", "visit", "2026-03-01 08:00", "sms"),
            ("e", "touch", "2026-03-01 09:00", "sms"),
            ("e", "visit", "2026-03-01 10:00", "sms"),
        ]
    )
    result = funnel(log, ["touch", "visit"])
    assert _counts(result) == [2, 1]
    assert result.iloc[1]["median_time_from_prev"] == pd.Timedelta("2h")
    assert _counts(funnel(log, ["touch", "visit"], ordered=False)) == [2, 2]


def test_events_after_the_window_are_ignored():
    # a purchased 14 hours after its touch, b two days after, c two days and 14 hours after
    assert _counts(funnel(LOG, STAGES, window="12h")) == [4, 1, 0]
    assert _counts(funnel(LOG, STAGES, window=pd.Timedelta("2D"))) == [4, 1, 1]
    assert _counts(funnel(LOG, STAGES, window="2D", ordered=False)) == [4, 2, 2]


def test_stage_nobody_reached_has_rate_zero_then_undefined():
    result = funnel(LOG, STAGES, window="1D", by="channel")
    wecom = result[result["channel"] == "wecom"].set_index("stage")
    # nobody at wecom visited: rate 0 with a positive upper bound; purchase after it: undefined
    assert wecom.loc["visit", "entities"] == 0
    assert wecom.loc["visit", "step_rate"] == 0.0
    assert 0 < wecom.loc["visit", "step_rate_high"] < 1
    assert np.isnan(wecom.loc["purchase", "step_rate"])
    assert wecom.loc["purchase", "cum_rate"] == 0.0
    assert pd.isna(wecom.loc["purchase", "median_time_from_prev"])


def test_declared_stage_without_events_is_zero_not_an_error():
    log = LOG.assign(stage=pd.Categorical(LOG["stage"], [*STAGES, "review"]))
    result = funnel(log, [*STAGES, "review"])
    assert _counts(result) == [4, 1, 1, 0]
    assert result.iloc[3]["step_rate"] == 0.0


def test_nobody_entered_gives_undefined_rates():
    log = LOG.assign(stage=pd.Categorical(LOG["stage"], ["signup", *STAGES]))
    result = funnel(log, ["signup", "touch"])
    assert _counts(result) == [0, 0]
    assert result[["step_rate", "cum_rate"]].isna().all().all()


def test_unknown_stage_is_a_clear_error():
    with pytest.raises(DataError, match=r"unknown stage\(s\) 'purchse'.*stages in the log"):
        funnel(LOG, ["touch", "purchse"])
    wide = pd.DataFrame({"visit": [1, 0], "conversion": [0, 0]})
    with pytest.raises(DataError, match=r"unknown stage\(s\) 'spend'"):
        funnel(wide, ["visit", "spend"])


def test_empty_input_is_a_clear_error():
    with pytest.raises(DataError, match="empty"):
        funnel(LOG.iloc[:0], STAGES)
    with pytest.raises(DataError, match="non-empty list"):
        funnel(LOG, [])


def test_other_bad_inputs():
    with pytest.raises(DataError, match="listed twice"):
        funnel(LOG, ["touch", "visit", "touch"])
    with pytest.raises(DataError, match="datetime"):
        funnel(LOG.assign(timestamp=LOG["timestamp"].astype(str)), STAGES)
    with pytest.raises(DataError, match="channel"):
        funnel(LOG.drop(columns="channel"), STAGES, by="channel")
    wide = pd.DataFrame({"visit": [1, 2], "conversion": [0, 0]})
    with pytest.raises(DataError, match="0/1"):
        funnel(wide, ["visit", "conversion"])
    with pytest.raises(DataError, match="window needs a long event log"):
        funnel(wide.clip(upper=1), ["visit", "conversion"], window="7D")


def test_beta_credible_intervals():
    result = funnel(LOG, STAGES, ordered=False)
    visit = result.iloc[1]  # 2 of 4
    low, high = stats.beta.ppf([0.025, 0.975], 0.5 + 2, 0.5 + 2)
    assert visit["step_rate_low"] == pytest.approx(low)
    assert visit["step_rate_high"] == pytest.approx(high)
    narrow = funnel(LOG, STAGES, ordered=False, level=0.5).iloc[1]
    assert visit["step_rate_low"] < narrow["step_rate_low"] < 0.5 < narrow["step_rate_high"]
    first = result.iloc[0]
    assert first[["step_rate", "step_rate_low", "cum_rate_high"]].tolist() == [1.0, 1.0, 1.0]


def test_group_is_taken_from_the_entry_event():
    log = _log(
        [
            ("a", "touch", "2026-03-02", "sms"),
            ("a", "touch", "2026-03-01", "wecom"),  # earliest touch: a entered via wecom
            ("a", "visit", "2026-03-03", "app"),
            ("b", "touch", "2026-03-01", "sms"),
            ("c", "touch", "2026-03-01", None),
        ]
    )
    result = funnel(log, ["touch", "visit"], by="channel").set_index(["channel", "stage"])
    assert result.loc[("wecom", "visit"), "entities"] == 1
    assert result.loc[("sms", "touch"), "entities"] == 1
    assert result["entities"].xs("touch", level="stage").sum() == 3  # c: group missing


def test_many_groups_and_polars_give_the_same_answer():
    rng = np.random.default_rng(1)
    n = 3_000
    log = pd.DataFrame(
        {
            "entity_id": pd.array(rng.integers(0, 600, n).astype(str), dtype="str"),
            "stage": pd.array(rng.choice(STAGES, n), dtype="str"),
            "timestamp": T("2026-03-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "store": pd.array(np.char.add("S", (rng.integers(0, 40, n)).astype(str)), dtype="str"),
        }
    )
    ours = funnel(log, STAGES, by="store")
    assert ours["store"].nunique() > 16  # the lookup path for many group values
    assert ours["entities"].sum() > 0
    pd.testing.assert_frame_equal(
        funnel(pl.from_pandas(log), STAGES, by="store"), ours, check_dtype=False
    )
    # direct count: entities per store whose earliest touch is in that store
    first = log[log["stage"] == "touch"].sort_values("timestamp").drop_duplicates("entity_id")
    entered = ours[ours["stage"] == "touch"].set_index("store")["entities"]
    assert entered.to_dict() == first["store"].value_counts().to_dict()


def test_wide_flags_ordered_vs_unordered():
    wide = pd.DataFrame({"sent": [1, 1, 1, 1, 0], "visit": [1, 0, 1, 0, 1], "buy": [1, 1, 0, 0, 1]})
    assert _counts(funnel(wide, ["sent", "visit", "buy"])) == [4, 2, 1]
    assert _counts(funnel(wide.astype(bool), ["sent", "visit", "buy"], ordered=False)) == [4, 2, 2]


def test_hillstrom_visit_and_conversion_by_arm_equal_direct_counts(hillstrom_path):
    data = hillstrom(hillstrom_path).assign(assigned=1)
    result = funnel(data, ["assigned", "visit", "conversion"], by="arm", ordered=False)
    got = result.pivot(index="arm", columns="stage", values="entities")
    direct = data.groupby("arm")[["assigned", "visit", "conversion"]].sum()
    assert got[direct.columns].to_dict() == direct.to_dict()
    # the published rates (Hillstrom, 2008): visit 18.28% / 15.14% / 10.62%,
    # conversion 1.25% / 0.88% / 0.57% for Mens / Womens / No E-Mail
    cum = result.pivot(index="arm", columns="stage", values="cum_rate").round(4)
    assert cum["visit"].to_dict() == {
        "Mens E-Mail": 0.1828,
        "No E-Mail": 0.1062,
        "Womens E-Mail": 0.1514,
    }
    assert cum["conversion"].to_dict() == {
        "Mens E-Mail": 0.0125,
        "No E-Mail": 0.0057,
        "Womens E-Mail": 0.0088,
    }
    # every converter visited, so ordered and unordered agree
    ordered = funnel(data, ["assigned", "visit", "conversion"], by="arm")
    pd.testing.assert_frame_equal(ordered, result)


def test_funnel_vs_targets():
    result = funnel(LOG, STAGES, ordered=False)
    scored = funnel_vs_targets(result, {"visit": 0.4, "purchase": 0.8})
    assert scored["stage"].tolist() == ["visit", "purchase"]
    assert scored["actual"].tolist() == [0.5, 0.75]
    assert scored["met"].tolist() == [True, False]
    # cum rate: visit 2 of 4, purchase 3 of 4; posterior Beta(1/2 + x, 1/2 + n - x) (Jeffreys)
    expected = [stats.beta.sf(0.4, 2.5, 2.5), stats.beta.sf(0.8, 3.5, 1.5)]
    assert scored["p_met"].tolist() == pytest.approx(expected)
    step = funnel_vs_targets(result, {"purchase": 0.9}, rate="step_rate")
    assert step["p_met"].iloc[0] == pytest.approx(stats.beta.sf(0.9, 2.5, 0.5))
    by = funnel_vs_targets(funnel(LOG, STAGES, by="channel"), {"visit": 0.2})
    assert by.set_index("channel")["actual"].to_dict() == {"sms": 0.5, "wecom": 0.0}
    with pytest.raises(DataError, match="'review' not in the funnel"):
        funnel_vs_targets(result, {"review": 0.1})


TOUCHES = pd.DataFrame(
    {
        "entity_id": ["a", "a", "a", "a", "b", "b", "c", "d"],
        "timestamp": pd.to_datetime(
            [
                "2026-03-01",
                "2026-03-02",
                "2026-03-03",
                "2026-03-10",  # after a's first purchase: not part of its path
                "2026-03-01",
                "2026-03-02",
                "2026-03-05",
                "2026-03-01",
            ]
        ),
        "channel": ["poster_qr", "sms", "wecom", "sms", "sms", "wecom", "store", "sms"],
    }
)
ORDERS = pd.DataFrame(
    {
        "customer_id": ["a", "a", "b", "c", "x"],
        "order_date": pd.to_datetime(
            ["2026-03-04", "2026-03-20", "2026-03-02", "2026-03-01", "2026-03-01"]
        ),
        "amount": [100.0, 50.0, 40.0, 30.0, 999.0],
    }
)


def test_attribution_first_last_position():
    first = attribution(TOUCHES, ORDERS, "first").set_index("channel")
    # a (150) credited to poster_qr, b (40) to sms; c bought before its touch; d never bought
    assert first["customers"].to_dict() == {"poster_qr": 1, "sms": 1, "store": 0, "wecom": 0}
    assert first["revenue"].to_dict() == {"poster_qr": 150, "sms": 40, "store": 0, "wecom": 0}
    assert first["leads"].to_dict() == {"poster_qr": 1, "sms": 2, "store": 1, "wecom": 0}
    assert first.loc["sms", "conversion"] == 0.5
    assert np.isnan(first.loc["wecom", "conversion"])  # touched, but never first
    last = attribution(TOUCHES, ORDERS, "last").set_index("channel")
    assert last["revenue"].to_dict() == {"wecom": 190, "sms": 0, "store": 0, "poster_qr": 0}
    position = attribution(TOUCHES, ORDERS, "position").set_index("channel")
    # a: 0.4 poster_qr, 0.2 sms, 0.4 wecom; b: 0.5 sms, 0.5 wecom
    assert position["customers"].to_dict() == pytest.approx(
        {"wecom": 0.9, "sms": 0.7, "poster_qr": 0.4, "store": 0.0}
    )
    assert position["revenue"].sum() == pytest.approx(190.0)
    assert position["leads"].sum() == pytest.approx(4.0)


def test_attribution_costs_and_customer_table():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "source_channel": ["store", "store", "app", "app"],
            "join_date": pd.to_datetime(["2026-03-01", "2026-03-03", "2026-03-01", "2026-03-01"]),
        }
    )
    result = attribution(customers, ORDERS, costs={"store": 50.0, "app": 10.0, "tv": 80.0})
    result = result.set_index("channel")
    # b's only order precedes its join date; c bought on its join day
    assert result["customers"].to_dict() == {"store": 1.0, "app": 1.0, "tv": 0.0}
    assert result["cost_per_acquisition"]["store"] == 50.0
    assert result["cost_per_acquisition"]["app"] == 10.0
    assert np.isnan(result.loc["tv", "cost_per_acquisition"])
    assert result.loc["tv", "leads"] == 0.0


def test_attribution_bad_input():
    with pytest.raises(DataError, match="model must be"):
        attribution(TOUCHES, ORDERS, "linear")
    with pytest.raises(DataError, match="source_channel"):
        attribution(ORDERS, ORDERS)
    with pytest.raises(DataError, match="amount"):
        attribution(TOUCHES, ORDERS.drop(columns="amount"))
    with pytest.raises(DataError, match="empty"):
        attribution(TOUCHES.iloc[:0], ORDERS)


def test_figures():
    result = funnel(LOG, STAGES, by="channel")
    chart = funnel_chart(result)
    assert len(chart.axes) == 2
    labels = [t.get_text() for t in chart.axes[0].texts]
    assert any("50%" in label for label in labels)
    heat = step_heatmap(result)
    assert heat.axes[0].get_title()
    assert [t.get_text() for t in heat.axes[0].get_xticklabels()] == STAGES[1:]


def test_an_observed_zero_or_one_is_inside_its_interval():
    """Nobody reached the stage: rate 0 and the interval [0, Beta(1/2, n + 1/2) 97.5% quantile]:
    the equal-tailed Jeffreys interval with its lower bound at the boundary (an equal-tailed one
    was [0.000084, 0.0122] and excluded the observed 0); everybody did: [2.5% quantile, 1]."""
    from scipy import stats

    from closedloop.funnel import _beta_rate
    from closedloop.priors import PRIOR

    rate, low, high = _beta_rate([0, 300, 30], [300, 300, 300], PRIOR, 0.95)
    assert (
        rate[0] == 0 and low[0] == 0 and high[0] == pytest.approx(stats.beta(0.5, 300.5).ppf(0.975))
    )
    assert (
        rate[1] == 1 and high[1] == 1 and low[1] == pytest.approx(stats.beta(300.5, 0.5).ppf(0.025))
    )
    assert low[2] == pytest.approx(stats.beta(30.5, 270.5).ppf(0.025))


def test_events_without_an_entity_id_are_refused():
    from closedloop import DataError

    events = pd.DataFrame(
        {
            "entity_id": ["a", None, "b"],
            "stage": ["touch", "touch", "visit"],
            "timestamp": pd.to_datetime(["2026-03-01", "2026-03-02", "2026-03-03"]),
        }
    )
    with pytest.raises(DataError, match="missing entity id"):
        funnel(events, ["touch", "visit"])
