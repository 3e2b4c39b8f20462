"""The verdict: what a manager needs from a Check in a few sentences, in English or Chinese.

:func:`verdict` is pure: from the Check and the next plan it says whether the campaign met its
plan (targets met and missed, each probability in words), which arm worked and what it earned
(incremental revenue and margin, the ROI with the margin used), and what the next cycle changes
and why (or that the campaign should stop or be redesigned).
"""

from __future__ import annotations

import math

import pandas as pd

from closedloop import page
from closedloop.act import lift_column
from closedloop.glossary import STOPPING, likelihood, metric_name, reason, target_name
from closedloop.objectives import lead_metrics
from closedloop.plan import Plan
from closedloop.scorecard import NOT_PACED

__all__ = ["best_arm", "show_target", "stopping", "verdict"]

#: targets whose values are rates (shown as percentages); money targets are in the plan's currency
RATE_TARGETS = (
    "conversion_rate",
    "visit_rate",
    "relative_lift",
    "second_purchase_rate",
    "first_conversion_rate",
)
MONEY_TARGETS = ("incremental_revenue", "avg_ticket")
COUNT_TARGETS = ("recruits", "leads")
#: outcome metrics in money per customer (the others are shares, orders are a count per customer)
MONEY_METRICS = ("revenue", "ticket")


def show_target(name: str, value, currency: str = "CNY") -> str:
    """A target's value (or actual) as the report shows it: rates as percentages, money with the
    currency, counts whole, a target set against the baseline as its change ("baseline +10%"),
    ROI and orders per customer as plain numbers; "–" for a value not estimated (None, NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, dict) and "vs_baseline" in value:
        change = str(value["vs_baseline"])
        return f"baseline {change if change.startswith(('+', '-')) else '+' + change}"
    if name in COUNT_TARGETS and isinstance(value, int | float) and value == value:
        return f"{value:,.0f}"
    if name in RATE_TARGETS or name.startswith("funnel_"):
        whole = isinstance(value, int | float) and round(value * 100, 6) == round(value * 100)
        return page.percent(value, 0 if whole else 1)
    if name in MONEY_TARGETS:
        return page.money(value, currency)
    return f"{value:.2f}" if isinstance(value, int | float) and value == value else "–"


def show_metric(column: str, value, currency: str = "CNY") -> str:
    """An outcome metric's value per customer: a share as a percentage, money with the currency,
    orders as a plain number."""
    if column in MONEY_METRICS:
        return page.money(value, currency)
    if column == "orders":
        return f"{value:.2f}" if value == value else "–"
    return page.percent(value)


def best_arm(check) -> tuple[str, float]:
    """The arm (the holdout included) with the highest P(best) on the plan's lift metric."""
    column = lift_column(check.plan)
    rows = check.p_best[check.p_best["metric"] == column]
    top = rows.loc[rows["p_best"].idxmax()]
    return str(top["arm"]), float(top["p_best"])


def verdict(check, next_plan: Plan, language: str = "en") -> list[str]:
    """3–6 sentences: the plan met or missed, the arm that worked and its money, the next cycle."""
    zh = language == "zh"
    decision = getattr(check, "early_stop", None)
    sentences = stopping(decision, check.plan, language) if decision else []
    sentences.append(_targets(check, zh))
    sentences += _best(check, zh)
    sentences.append(_next(check, next_plan, zh))
    return [s for s in sentences if s]


def stopping(decision, plan: Plan, language: str = "en") -> list[str]:
    """The stopping rule's decision (:class:`closedloop.early_stop.Decision`) in words: what
    the rule decided and why, then the arms it stops, if any (templates:
    :data:`closedloop.glossary.STOPPING`)."""

    def small(value):  # a loss of a fraction of a cent still shows its size
        places = 2 if value <= 0 or value >= 0.1 else min(4, 1 - math.floor(math.log10(value)))
        return page.money(value, _currency(plan), places)

    words = {
        "arm": decision.arm,
        "loss": small(decision.expected_loss),
        "threshold": small(decision.loss_threshold),
        "p": page.probability(decision.p_better),
        "floor": page.probability(decision.certainty),
        "ceiling": page.probability(1 - decision.certainty),
        "day": decision.day,
        "min_days": decision.min_days,
        "customers": f"{decision.customers:,}",
        "min_customers": f"{decision.min_customers:,}",
        "dropped": ("、" if language == "zh" else ", ").join(decision.dropped),
    }
    out = [STOPPING[decision.action][language].format(**words)]
    if decision.dropped and decision.action in ("continue", "ship"):
        others = [a for a in decision.dropped if a != decision.arm]
        if others:
            words["dropped"] = ("、" if language == "zh" else ", ").join(others)
            out.append(STOPPING["dropped"][language].format(**words))
    return out


def _p(p: float, zh: bool) -> str:
    return (
        f"{page.probability(p)}，{likelihood(p, 'zh')}"
        if zh
        else (f"{page.probability(p)}, {likelihood(p)}")
    )


def _targets(check, zh: bool) -> str:
    card, currency = check.scorecard, _currency(check.plan)
    if "projected" in card:
        return _pace(check, zh)
    met = card[card["status"] == "met"]
    missed = card[card["status"] != "met"]
    n, k = len(card), len(met)
    language = "zh" if zh else "en"

    def one(row) -> str:
        name = target_name(row["target"], language)
        if pd.isna(row["actual"]):
            return _no_estimate(name, zh)
        actual = show_target(row["target"], row["actual"], currency)
        goal = show_target(row["target"], row["target_value"], currency)
        if zh:
            return f"{name}（实际 {actual}，目标 {goal}；达成概率 {_p(row['p_met'], zh)}）"
        return f"{name} ({actual} against {goal}; P(met) {_p(row['p_met'], zh)})"

    if missed.empty:
        weakest = card.loc[card["p_met"].idxmin()]
        if n == 1:
            if zh:
                return f"活动达成了其唯一的目标：{one(weakest)}。"
            return f"The campaign met its one target: {one(weakest)}."
        if zh:
            return f"活动达成了全部 {n} 项目标；把握最小的是{one(weakest)}。"
        return f"The campaign met all {n} of its targets; the least sure is {one(weakest)}."
    listed = ("、" if zh else "; ").join(one(r) for _, r in missed.iterrows())
    if zh:
        return f"活动达成了 {n} 项目标中的 {k} 项；未达成：{listed}。"
    return f"The campaign met {k} of its {n} targets; it missed {listed}."


def _pace(check, zh: bool) -> str:
    """An interim Check's targets sentence: the data so far cannot meet or miss a target yet, so
    it counts the targets on pace (ahead or on track) and names those behind, each with the end
    it is projected to and its chance of reaching the target (期中检查)."""
    card, currency = check.scorecard, _currency(check.plan)
    unpaced = card[card["status"] == NOT_PACED]
    card = card[card["status"] != NOT_PACED]
    behind = card[~card["status"].isin(["ahead", "on track"])]
    n, k = len(card), len(card) - len(behind)
    language = "zh" if zh else "en"
    later = ""
    if len(unpaced):
        names = ("、" if zh else ", ").join(target_name(t, language) for t in unpaced["target"])
        later = (
            f"暂不判断进度：{names}（到访与漏斗各阶段按事件数据统计，没有基期说明它们在期内如何累积）。"
            if zh
            else f" Not paced: {names} (visits and funnel stages are counted from the events,"
            " which have no baseline to say how they accumulate over the period)."
        )

    def one(row) -> str:
        name = target_name(row["target"], language)
        if pd.isna(row["actual"]):
            return _no_estimate(name, zh)
        end = row["projected"] if pd.notna(row["projected"]) else row["actual"]
        projected = show_target(row["target"], end, currency)
        goal = show_target(row["target"], row["target_value"], currency)
        if zh:
            return f"{name}（预计期末 {projected}，目标 {goal}；达成概率 {_p(row['p_met'], zh)}）"
        return f"{name} (projected {projected} against {goal}; P(met) {_p(row['p_met'], zh)})"

    if card.empty:
        return (
            "期中检查：尚无可判断进度的目标。" if zh else "Interim Check: no target is paced."
        ) + later
    paced = "项判断进度的目标" if len(unpaced) else "项目标"
    paced_en = "paced targets" if len(unpaced) else "targets"
    if behind.empty:
        if zh:
            return f"期中检查：按目前的进度，全部 {n} {paced}都领先或正常。{later}"
        return (
            f"Interim Check: at the pace so far, all {n} {paced_en} are ahead or on track.{later}"
        )
    sep = "、" if zh else "; "
    late = behind[behind["status"] == "behind"]
    clauses = []
    if len(late):
        listed = sep.join(one(r) for _, r in late.iterrows())
        clauses.append(f"落后：{listed}" if zh else f"behind: {listed}")
    unknown = behind[behind["status"] != "behind"]  # undefined: no actual to pace
    if len(unknown):
        listed = sep.join(one(r) for _, r in unknown.iterrows())
        clauses.append(f"尚无估计：{listed}" if zh else f"no estimate yet: {listed}")
    said = ("；" if zh else "; ").join(clauses)
    if zh:
        return f"期中检查：按目前的进度，{n} {paced}中 {k} 项领先或正常；{said}。{later}"
    return (
        f"Interim Check: at the pace so far, {k} of its {n} {paced_en} are ahead or on track;"
        f" {said}.{later}"
    )


def _no_estimate(name: str, zh: bool) -> str:
    """A target whose actual cannot be computed (undefined or not estimable): words, no number."""
    if zh:
        return f"{name}（无法可靠估计，见记分卡的依据）"
    return f"{name} (not estimable: see the scorecard's basis)"


def _best(check, zh: bool) -> list[str]:
    plan, currency = check.plan, _currency(check.plan)
    column = lift_column(plan)
    arm, p_best = best_arm(check)
    metric = metric_name(column, "zh" if zh else "en")
    if arm == plan.control:
        if zh:
            none = f"在{metric}上没有实验组优于对照组：对照组为最佳的概率为 {_p(p_best, zh)}。"
        else:
            none = (
                f"No arm did better than the holdout on {metric}: the holdout is best with P"
                f" {_p(p_best, zh)}."
            )
        return [none, *_also(check, zh)]
    row = check.lift[(check.lift["arm"] == arm) & (check.lift["metric"] == column)].iloc[0]
    show = lambda v: show_metric(column, v, currency)  # noqa: E731
    rel = page.interval(row["rel_lift_low"], row["rel_lift_high"], lambda v: page.percent(v, 0))
    if zh:
        first = (
            f"效果最好的是 {arm}：{metric} {show(row['mean'])}，对照组 {show(row['control_mean'])}，"
            f"相对提升 {page.percent(row['rel_lift'], 0, signed=True)}（95% 区间 {rel}）；"
            f"为最佳分组的概率 {_p(p_best, zh)}。"
        )
    else:
        first = (
            f"{arm} worked best on {metric}: {show(row['mean'])} against"
            f" {show(row['control_mean'])} in the holdout, a relative lift of"
            f" {page.percent(row['rel_lift'], 0, signed=True)} (95% interval {rel});"
            f" P(best) {_p(p_best, zh)}."
        )
    money = _money(check, arm, zh)
    return [first, *_also(check, zh), *([money] if money else [])]


def _also(check, zh: bool) -> list[str]:
    """One sentence per further metric the objective leads with (recruit: first conversion)."""
    sentences, currency = [], _currency(check.plan)
    for column in lead_metrics(check.plan)[1:]:
        rows = check.lift[check.lift["metric"] == column]
        if rows.empty:
            continue
        row = rows.loc[rows["p_better"].idxmax()]
        name = metric_name(column, "zh" if zh else "en")
        mean, control = (show_metric(column, row[k], currency) for k in ("mean", "control_mean"))
        rel = (
            page.percent(row["rel_lift"], 0, signed=True)
            if row["rel_lift"] == row["rel_lift"]
            else "–"
        )
        if zh:
            sentences.append(
                f"{name}：{row['arm']} {mean}，对照组 {control}（相对提升 {rel}；优于对照组的概率"
                f" {_p(row['p_better'], zh)}）。"
            )
        else:
            sentences.append(
                f"On {name}, {row['arm']} reached {mean} against {control} in the holdout"
                f" ({rel}; P(better) {_p(row['p_better'], zh)})."
            )
    return sentences


def _money(check, arm: str, zh: bool) -> str:
    plan, currency = check.plan, _currency(check.plan)
    roi = check.roi[check.roi["arm"] == arm] if "arm" in check.roi else check.roi.iloc[:0]
    total = check.scorecard[check.scorecard["target"] == "incremental_revenue"]
    parts = []
    if len(roi):
        r = roi.iloc[0]
        rng = page.interval(r["roi_low"], r["roi_high"], lambda v: f"{v:.1f}")
        margin = page.percent(plan.margin, 0)
        if zh:
            parts.append(
                f"{arm} 带来增量销售额 {page.money(r['incremental'], currency)}、增量毛利"
                f" {page.money(r['incremental_margin'], currency)}（毛利率 {margin}），成本"
                f" {page.money(r['cost'], currency)}：ROI {r['roi']:.1f}（95% 区间 {rng}）。"
            )
        else:
            parts.append(
                f"{arm} brought {page.money(r['incremental'], currency)} incremental revenue and"
                f" {page.money(r['incremental_margin'], currency)} incremental margin (at a"
                f" {margin} margin) for {page.money(r['cost'], currency)} of cost: ROI"
                f" {r['roi']:.1f} (95% interval {rng})."
            )
    if len(total):
        t = total.iloc[0]
        value = page.money(t["actual"], currency)
        if zh:
            parts.append(
                f"所有实验组合计增量销售额 {value}（目标 {page.money(t['target_value'], currency)}）。"
            )
        else:
            parts.append(
                f"All arms together brought {value} against a"
                f" {page.money(t['target_value'], currency)} target."
            )
    return " ".join(parts) if not zh else "".join(parts)


def _next(check, next_plan: Plan, zh: bool) -> str:
    language = "zh" if zh else "en"
    if next_plan.status == "redesign":
        if zh:
            return (
                "下一周期：停止或重新设计——没有实验组以足够的把握胜过对照组；下一周期的计划是草稿"
                "（status: redesign），须修改后才能运行。"
            )
        return (
            "Next cycle: stop or redesign — no arm beat the holdout with enough certainty; the"
            " next plan is a draft (status: redesign) to be edited before it can run."
        )
    steps = []
    for change in next_plan.changes:
        head, _, rest = change.field.partition(".")
        why = reason(change.reason, language)
        if head == "arms" and change.to == "dropped":
            steps.append(f"停用 {rest}（{why}）" if zh else f"drop {rest} ({why})")
        elif head == "targets" and change.to == "carried":
            name = target_name(rest, language)
            steps.append(
                f"{name}目标原样沿用（未达成后不改目标）"
                if zh
                else f"keep the {name} target unchanged (a missed target is not moved)"
            )
        elif head == "targets":
            key = rest.partition(".")[0]
            value = show_target(key, float(change.to), _currency(check.plan))
            name = target_name(key, language)
            steps.append(
                f"{name}目标提高到 {value}" if zh else f"raise the {name} target to {value}"
            )
        elif change.field == "audience.segments":
            steps.append(f"目标人群改为 {change.to}" if zh else f"aim at {change.to} only")
    start, end = next_plan.period.start, next_plan.period.end
    if next_plan.status == "provisional":  # an interim Check: what the data say so far
        day, last = f"{pd.Timestamp(check.asof):%Y-%m-%d}", check.plan.period.end
        if zh:
            so_far = "；".join(steps) if steps else "沿用本周期的计划"
            return (
                f"暂定（期中检查）：若周期在 {day} 结束，下一周期（{start} 至 {end}）将{so_far}；"
                f"要运行的计划由 {last} 的检查写出。"
            )
        so_far = "; ".join(steps) if steps else "run the same plan"
        return (
            f"Provisional (interim Check): had the period ended on {day}, the next cycle"
            f" ({start} to {end}) would {so_far}; the Check on {last} writes the plan to run."
        )
    if not steps:
        if zh:
            return f"下一周期（{start} 至 {end}）沿用本周期的计划。"
        return f"The next cycle ({start} to {end}) runs the same plan."
    if zh:
        return f"下一周期（{start} 至 {end}）：{'；'.join(steps)}。"
    return f"Next cycle ({start} to {end}): {'; '.join(steps)}."


def _currency(plan: Plan) -> str:
    return getattr(plan, "currency", "CNY")
