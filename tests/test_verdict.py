"""The verdict at the top of the report: its statements agree with the Check."""

from __future__ import annotations

import dataclasses
import re

import pytest

from closedloop import pdca
from closedloop.datasets import write_demo
from closedloop.glossary import target_name
from closedloop.plan import Plan
from closedloop.verdict import best_arm, show_target, verdict


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    demo = write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=2_000)
    return pdca.run_check(demo / "plan.yaml", "2026-03-31")


def test_the_verdict_counts_the_scorecard_and_names_the_best_arm(checked):
    check, next_plan = checked
    lines = verdict(check, next_plan)
    assert 3 <= len(lines) <= 6
    card = check.scorecard
    met, n = int((card["status"] == "met").sum()), len(card)
    counted = re.search(r"met (?:(\d+) of its (\d+)|all (\d+) of its) targets", lines[0])
    assert counted, lines[0]
    if counted.group(3):
        assert met == n == int(counted.group(3))
    else:
        assert (int(counted.group(1)), int(counted.group(2))) == (met, n)
    for target in card.loc[card["status"] != "met", "target"]:
        assert target.replace("_", " ").replace("funnel ", "funnel: ") in lines[0]
    top = check.p_best.loc[check.p_best["p_best"].idxmax(), "arm"]
    assert best_arm(check)[0] == top
    assert lines[1].startswith(f"{top} worked best") or top == check.plan.control
    zh = verdict(check, next_plan, "zh")
    assert (len(zh) == len(lines) and f"{n} 项目标中的 {met} 项" in zh[0]) or met == n
    assert not re.search(r"[A-Za-z]{4,}", re.sub(r"wecom|sms|status: redesign", "", "".join(zh)))


def test_the_verdict_states_money_with_the_margin_and_the_next_cycle(checked):
    check, next_plan = checked
    text = " ".join(verdict(check, next_plan))
    assert "¥" in text and "margin" in text and "ROI" in text
    for change in next_plan.changes:
        if change.field.startswith("arms.") and change.to == "dropped":
            assert f"drop {change.field.removeprefix('arms.')}" in text
    usd = dataclasses.replace(check, plan=check.plan.model_copy(update={"currency": "USD"}))
    assert "$" in " ".join(verdict(usd, next_plan))


def test_a_redesign_says_stop_or_redesign(checked):
    check, next_plan = checked
    draft = Plan.parse({**next_plan.model_dump(exclude_none=True), "status": "redesign"})
    assert "stop or redesign" in verdict(check, draft)[-1]
    assert "停止或重新设计" in verdict(check, draft, "zh")[-1]


def test_target_values_read_as_rates_money_or_ratios():
    assert show_target("conversion_rate", 0.25) == "25%"
    assert show_target("funnel_visit", 0.1779) == "17.8%"
    assert show_target("incremental_revenue", 7749.0) == "¥7,749"
    assert show_target("roi", 1.5) == "1.50"
    assert show_target("relative_lift", float("nan")) == "–"
    assert show_target("conversion_rate", None) == "–"


@pytest.mark.filterwarnings("ignore::closedloop.io.DataWarning")  # the rows after the as-of day
def test_an_interim_verdict_speaks_of_pace_not_of_targets_met(tmp_path):
    """Halfway through the period nothing is met or missed yet: the verdict counts the paced
    targets ahead or on track in the scorecard, names each one behind with its projected end,
    and names the funnel stages it does not pace."""
    demo = write_demo(tmp_path / "demo", seed=1, n_customers=2_000)
    check, next_plan = pdca.run_check(demo / "plan.yaml", "2026-03-15")
    everything = check.scorecard
    unpaced = everything[everything["status"] == "not paced"]
    assert unpaced["target"].str.startswith("funnel_").all() and len(unpaced) == 3
    assert unpaced[["p_met", "expected_by_now", "projected"]].isna().all().all()
    card = everything[everything["status"] != "not paced"]
    on_pace = int(card["status"].isin(["ahead", "on track"]).sum())
    lines = verdict(check, next_plan)
    text = next(line for line in lines if line.startswith("Interim Check"))
    assert "met" not in text.split(";")[0] and "missed" not in text
    assert text.endswith(
        "Not paced: funnel: visit, funnel: register, funnel: purchase (visits and funnel stages"
        " are counted from the events, which have no baseline to say how they accumulate over the"
        " period)."
    )
    if on_pace == len(card):
        assert f"all {len(card)} paced targets are ahead or on track" in text
    else:
        assert f"{on_pace} of its {len(card)} paced targets are ahead or on track" in text
        for _, row in card[~card["status"].isin(["ahead", "on track"])].iterrows():
            if row["status"] == "undefined":  # e.g. a relative lift over too few conversions
                name = target_name(row["target"], "en")
                assert f"{name} (not estimable: see the scorecard's basis)" in text
                continue
            goal = show_target(row["target"], row["target_value"], "CNY")
            end = show_target(row["target"], row["projected"], "CNY")
            assert f"(projected {end} against {goal};" in text
    zh = " ".join(verdict(check, next_plan, "zh"))
    assert f"{len(card)} 项判断进度的目标" in zh and "期中检查" in zh and "暂不判断进度：" in zh
    # the Act step's decisions are provisional until the period ends, in both languages
    assert next_plan.status == "provisional"
    assert lines[-1].startswith("Provisional (interim Check): had the period ended on 2026-03-15,")
    assert lines[-1].endswith("the Check on 2026-03-31 writes the plan to run.")
    assert verdict(check, next_plan, "zh")[-1].startswith(
        "暂定（期中检查）：若周期在 2026-03-15 结束"
    )


def test_a_campaign_with_one_target_met_says_so_in_words(checked):
    """Not "met all 1 of its targets"."""
    check, next_plan = checked
    card = check.scorecard
    one = dataclasses.replace(check, scorecard=card[card["status"] == "met"].head(1))
    assert verdict(one, next_plan)[0].startswith("The campaign met its one target: ")
    assert verdict(one, next_plan, "zh")[0].startswith("活动达成了其唯一的目标：")
