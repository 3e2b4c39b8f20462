"""The PDCA check report, section by section: what each section shows of a :class:`~closedloop.pdca.Check`.

One function per section of the report (design.md, "The PDCA check report, in order"), each
taking the Check and the report's language (and ``out_dir`` where figures are saved) and returning
the objects to display, in order: ``display(*sections.scorecard(check, language))``. A section the
data cannot fill (no events, no segments, no transactions, no items) returns nothing. Headings are
numbered over the sections the Check fills, so the numbers run on without gaps.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd

from closedloop import act as _act
from closedloop import ahead, ledger, page, pdca, sources, verdict
from closedloop.glossary import (
    change_field,
    change_to,
    column,
    contact_word,
    explain,
    label,
    metric_name,
    reason,
    rfm_segment_name,
    stage_name,
    table_name,
    target_name,
    translate,
)
from closedloop.plan import Plan
from closedloop.verdict import show_metric, show_target

__all__ = [
    "act",
    "appendix",
    "cross_sell",
    "customer_base",
    "draw_ahead",
    "follow_up",
    "funnel",
    "header",
    "history",
    "lift",
    "next_contacts",
    "plan_recap",
    "scorecard",
    "shown",
    "who_responded",
]

#: the glossary terms the appendix defines
DEFINED_TERMS = (
    "closed_loop",
    "pdca",
    "holdout",
    "lift",
    "scorecard",
    "srm",
    "roi",
    "pyramid",
    "rfm",
    "funnel",
)
LIFT_COLUMNS = [
    "arm",
    "metric",
    "customers",
    "mean",
    "control_mean",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "p_better",
    "expected_loss",
    "incremental",
]
SEGMENT_COLUMNS = [
    "segment",
    "arm",
    "customers",
    "mean",
    "control_mean",
    "abs_lift",
    "abs_lift_low",
    "abs_lift_high",
    "p_better",
    "small",
    "rank",
]
PYRAMID_FORMATS = {
    "customer_share": "{:.1%}",
    "revenue_share": "{:.1%}",
    "revenue": "{:,.0f}",
    "avg_ticket": "{:.2f}",
    "avg_frequency": "{:.2f}",
    "threshold": "{:,.0f}",
}
TOP_RULES = 10
#: the plan's objectives in Chinese
OBJECTIVES = {
    "recruit": "拉新",
    "convert": "转化",
    "second purchase": "二次购买",
    "ticket": "提升客单价",
    "frequency": "提升频次",
    "win back": "挽回",
}


def shown(check: pdca.Check) -> list[str]:
    """The numbered sections this Check fills, in the report's order (glossary keys)."""
    filled = {
        "progress": check.progress is not None,
        "follow_up": getattr(check, "follow_up", None) is not None,
        "funnel": check.funnel is not None,
        "who_responded": not check.segments.empty,
        "customer_base": check.customer_base is not None,
        "cross_sell": check.cross_sell is not None,
    }
    contacts = {"next_contacts": getattr(check, "contacts", None) is not None}
    order = ["plan_recap", "scorecard", "lift", *filled, "act", *contacts, "history", "appendix"]
    filled |= contacts
    return [key for key in order if filled.get(key, True)]


def header(
    check: pdca.Check, language: str = "en", run_id: str = "", next_plan: Plan | None = None
) -> tuple:
    """The report's style, title and run line; the verdict (given the next plan); the data-quality
    status line, open on its table when something is wrong; the sample-ratio warning if any."""
    plan, t = check.plan, _words(language)
    parts = [
        page.css(),
        page.text(
            "# {title}：{name}" if language == "zh" else "# {title}: {name}",
            title=label("header", language),
            name=plan.name or plan.campaign,
        ),
        page.text(
            "**{c}** · {cycle_w} {cycle} · {period_w} {start} {to} {end} · {asof_w} {asof} · {run_w} `{run}`",
            c=plan.campaign,
            cycle_w=t("cycle"),
            cycle=plan.cycle,
            period_w=t("period"),
            start=plan.period.start,
            to=t("to"),
            end=plan.period.end,
            asof_w=t("data as of"),
            asof=check.asof.date(),
            run_w=t("run"),
            run=run_id,
        ),
    ]
    if next_plan is None:
        next_plan = _act.next_plan(check)
    parts.append(page.paragraphs(verdict.verdict(check, next_plan, language), "verdict"))
    parts.append(data_quality(check, language))
    if check.srm["warning"]:
        parts.append(page.note(reason(check.srm["warning"], language)))
    return tuple(parts)


def quality_problems(check: pdca.Check, language: str = "en") -> list[str]:
    """What is wrong with the data, one phrase each (nothing when all is well): rows dropped,
    low coverage, outliers, a sample-ratio mismatch. Rows dated after the as-of day are not a
    fault (an interim run leaves them out by design): the table and the status line count them."""
    q, zh = check.quality, language == "zh"
    problems = []

    def total(name):
        return int(pd.to_numeric(q[name], errors="coerce").fillna(0).sum()) if name in q else 0

    for name, en, cn in (
        ("rows_dropped", "{n:,} rows dropped", "剔除 {n:,} 行"),
        ("outliers", "{n:,} outliers", "异常值 {n:,} 个"),
    ):
        if total(name):
            problems.append((cn if zh else en).format(n=total(name)))
    if "coverage" in q:
        low = q[pd.to_numeric(q["coverage"], errors="coerce") < 0.999]
        for _, row in low.iterrows():
            name, share = table_name(str(row["table"]), language), page.percent(row["coverage"])
            problems.append(f"{name}覆盖率 {share}" if zh else f"{name} covers {share}")
    if check.srm["mismatch"]:
        problems.append("样本比例与计划不符" if zh else "sample-ratio mismatch")
    return problems


def quality_formats(columns) -> dict:
    """How the data-quality table shows its numbers, in the report and in ``closedloop check``:
    counts with thousands separators, coverage as a percentage."""
    formats = {
        c: page.number
        for c in columns
        if c.startswith(("rows", "refunds", "outliers", "after_asof"))
    }
    formats.update(assigned_covered=page.number, coverage=page.percent)
    return {c: f for c, f in formats.items() if c in columns}


def data_quality(check: pdca.Check, language: str = "en"):
    """A one-line data-quality status that expands into the table (``data-quality``); open
    when something is wrong."""
    t = _words(language)
    problems = quality_problems(check, language)
    q = check.quality.copy()
    q["table"] = q["table"].map(lambda v: table_name(str(v), language))
    formats = quality_formats(q.columns)
    inner = _table(q, "data-quality", t("rows read, kept and dropped per table"), language, formats)
    rows = f"{int(pd.to_numeric(q['rows_kept'], errors='coerce').sum()):,}" if len(q) else "0"
    later = int(pd.to_numeric(q.get("after_asof", pd.Series()), errors="coerce").fillna(0).sum())
    if problems:
        sep = "；" if language == "zh" else "; "
        summary = (
            f"{label('data_quality', language)}：{sep.join(problems)}"
            if language == "zh"
            else (f"Data quality needs attention: {sep.join(problems)}")
        )
    elif language == "zh":
        summary = (
            f"数据质量：{len(q)} 张表共 {rows} 行完整读取，无剔除行"
            + (f"（截止日之后的 {later:,} 行按截止日规则不计）" if later else "")
            + "，覆盖完整（点击查看）"
        )
    else:
        summary = (
            f"Data quality: {len(q)} tables, {rows} rows read in full, none dropped"
            + (
                f" ({later:,} rows after the as-of day left out, as the as-of rule says)"
                if later
                else ""
            )
            + ", coverage complete (click for the table)"
        )
    return page.details(summary, inner, "data-quality-status", open_=bool(problems))


def plan_recap(check: pdca.Check, language: str = "en") -> tuple:
    """The plan as it was set, in sentences: objective, audience, arms, holdout; the targets."""
    plan, zh = check.plan, language == "zh"
    arms = ", ".join(f"{k} {v:.0%}" for k, v in plan.arms.items())
    audience = ", ".join(plan.audience.segments or [translate("everyone assigned", language)])
    objective = OBJECTIVES.get(plan.objective, plan.objective) if zh else plan.objective
    if zh:
        line = (
            f"目标类型：{objective}。目标人群：{audience}。分组：{arms}；对照组为 {plan.control}。"
            f"毛利率 {page.percent(plan.margin, 0)}，金额单位 {_currency(check)}。"
        )
    else:
        line = (
            f"Objective: {objective}. Audience: {audience}. Arms: {arms}; the holdout is"
            f" {plan.control}. Margin {page.percent(plan.margin, 0)}; money in {_currency(check)}."
        )
    rows = []
    for key, value in plan.targets.model_dump(exclude_none=True).items():
        name = target_name(key, language)
        if key == "funnel":
            for stage, rate in value.items():
                shown = show_target(f"funnel_{stage}", rate, _currency(check))
                rows.append(
                    (target_name(f"funnel_{stage}", language), "≥ " + translate(shown, language))
                )
        elif key == "relative_lift":
            on = {"conversion": "转化率", "revenue": "人均销售额", "visit": "到访率"}
            metric = on.get(value["metric"], value["metric"]) if zh else value["metric"]
            shown = show_target(key, value["min"], _currency(check))
            rows.append((name, f"≥ {shown}（{metric}）" if zh else f"≥ {shown} on {metric}"))
        else:
            shown = translate(show_target(key, value, _currency(check)), language)
            rows.append((name, "≥ " + shown))
    targets = pd.DataFrame(rows, columns=["target", "planned"])
    return (
        _heading(check, "plan_recap", language),
        page.sentence(line),
        _table(targets, "plan-targets", "", language),
    )


def scorecard(check: pdca.Check, language: str = "en") -> tuple:
    """Each target: actual, target, met or missed, P(met), basis."""
    card, currency = check.scorecard, _currency(check)
    shown = pd.DataFrame(
        {
            "target": [target_name(k, language) for k in card["target"]],
            "actual": [
                show_target(k, v, currency)
                for k, v in zip(card["target"], card["actual"], strict=True)
            ],
            "target_value": [
                show_target(k, v, currency)
                for k, v in zip(card["target"], card["target_value"], strict=True)
            ],
            "status": [translate(str(v), language) for v in card["status"]],
            "p_met": [page.probability(v) for v in card["p_met"]],
            "basis": [_basis(v, language) for v in card["basis"]],
        }
    )
    if "baseline" in card.columns:  # targets set against the baseline: its value and the change
        shown.insert(
            3,
            "baseline",
            [
                f"{show_target(k, b, currency)} ({c})" if pd.notna(b) else ""
                for k, b, c in zip(card["target"], card["baseline"], card["change"], strict=True)
            ],
        )
    if "expected_by_now" in card.columns:  # an interim Check: the pace, not met / missed yet
        shown.insert(
            3,
            "expected_by_now",
            [
                show_target(k, v, currency)
                for k, v in zip(card["target"], card["expected_by_now"], strict=True)
            ],
        )
        shown.insert(
            4,
            "projected",
            [
                f"{show_target(k, v, currency)} "
                + (
                    f"[{show_target(k, lo, currency)}, {show_target(k, hi, currency)}]"
                    if pd.notna(lo)
                    else ""
                )
                for k, v, lo, hi in zip(
                    card["target"],
                    card["projected"],
                    card["projected_low"],
                    card["projected_high"],
                    strict=True,
                )
            ],
        )
    caption = (
        "达成概率：根据数据，真实值达到目标的概率"
        if language == "zh"
        else "P(met): given the data, the chance the true value reached the target"
    )
    if "expected_by_now" in card.columns:
        caption = (
            "期中检查：达成概率为按目前进度期末达到目标的概率；领先 ≥ 75%，落后 < 25%"
            if language == "zh"
            else "Interim Check: P(met) is the chance of ending at or above the target at the pace"
            " so far; ahead from 75%, behind under 25%"
        )
    parts = [_heading(check, "scorecard", language), _table(shown, "scorecard", caption, language)]
    if check.early_stop is not None:  # the plan's stopping rule, on an interim Check
        parts.append(
            page.paragraphs(
                verdict.stopping(check.early_stop, check.plan, language),
                "early-stop",
                "cl-sentence",
            )
        )
    plan = check.plan
    if "baseline" in card.columns and plan.baseline and plan.baseline.days != plan.period.days:
        b, p = plan.baseline.days, plan.period.days
        parts.append(
            page.note(
                f"基线期 {b} 天、活动期 {p} 天：购买次数、招募数和线索数按天数折算到活动期，"
                "比率按实际口径比较（基线期与活动期等长时最可比）"
                if language == "zh"
                else f"The baseline is {b} days, the period {p}: orders per customer, recruits"
                " and leads are scaled to the period's days, rates are compared as measured"
                " (a baseline as long as the period compares like with like)."
            )
        )
    scored = card["p_met"].dropna()
    if len(scored):  # what one of the table's probabilities means, in a sentence
        which = "p_met_interim" if "expected_by_now" in card.columns else "p_met"
        parts.append(page.sentence(explain(which, _telling(scored), language)))
    if check.plan.targets.funnel and check.funnel_targets is None:
        parts.append(
            page.note(
                "漏斗目标未评分：计划没有漏斗事件表（data.events）"
                if language == "zh"
                else "The funnel targets are not scored: the plan has no funnel events (data.events)."
            )
        )
    return tuple(parts)


def lift(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """Each arm against the holdout, its figure, the sample-ratio line and the ROI."""
    from closedloop.figures import lift as lift_fig

    currency, zh = _currency(check), language == "zh"
    rows = []
    for _, r in check.lift.iterrows():
        binary, metric = r["kind"] == "binary", r["metric"]
        value = lambda v, m=metric: show_metric(m, v, currency)  # noqa: E731
        rel = lambda v: page.percent(v, 1, signed=True)  # noqa: E731
        loss = (lambda v: page.percent(v, 2)) if binary else value
        incremental = (
            f"{r['incremental']:,.0f} {'人' if zh else 'customers'}"
            if binary
            else (
                f"{r['incremental']:,.0f} {'单' if zh else 'orders'}"
                if metric == "orders"
                else page.money(r["incremental"], currency)
            )
        )
        rows.append(
            {
                "arm": r["arm"],
                "metric": _metric(r["metric"], language),
                "customers": f"{int(r['customers']):,}",
                "mean": f"{value(r['mean'])} {page.interval(r['mean_low'], r['mean_high'], value)}",
                "control_mean": f"{value(r['control_mean'])} "
                + page.interval(r["control_mean_low"], r["control_mean_high"], value),
                "rel_lift": rel(r["rel_lift"]),
                "rel_interval": page.interval(r["rel_lift_low"], r["rel_lift_high"], rel),
                "p_better": page.probability(r["p_better"]),
                "expected_loss": loss(r["expected_loss"]),
                "incremental": incremental,
            }
        )
    caption = (
        "各实验组对比对照组：均值与相对提升及其 95% 区间；转化的增量为多转化的人数"
        if zh
        else "each arm against the holdout: means and relative lift with their 95% intervals;"
        " incremental conversion in extra customers converted"
    )
    parts = [
        _heading(check, "lift", language),
        _table(pd.DataFrame(rows), "lift-table", caption, language),
        page.figure(
            lift_fig.lift_intervals(check.lift),
            "lift",
            out_dir,
            "Posterior lift of each arm over the holdout (95% interval)",
            language=language,
        ),
        page.sentence(reason(check.srm["message"], language)),
    ]
    better = check.lift["p_better"].dropna()
    if len(better):
        parts.insert(2, page.sentence(explain("p_better", _telling(better), language)))
    if len(check.roi):
        roi = check.roi
        nan = pd.Series(float("nan"), index=roi.index)  # no roi target: no P(ROI >= target)
        margin = page.percent(check.plan.margin, 0)
        shown = pd.DataFrame(
            {
                "arm": roi["arm"],
                "customers": [f"{int(v):,}" for v in roi["customers"]],
                "incremental_revenue": [page.money(v, currency) for v in roi["incremental"]],
                "incremental_margin": [page.money(v, currency) for v in roi["incremental_margin"]],
                "margin": margin,
                "cost": [page.money(v, currency) for v in roi["cost"]],
                "roi": [show_target("roi", v) for v in roi["roi"]],
                "roi_interval": [
                    page.interval(a, b, lambda v: show_target("roi", v))
                    for a, b in zip(roi["roi_low"], roi["roi_high"], strict=True)
                ],
                "target": [show_target("roi", v) for v in roi.get("target", nan)],
                "p_target": [page.probability(v) for v in roi.get("p_target", nan)],
            }
        )
        caption = (
            f"投资回报率 = 增量毛利 / 成本（毛利率 {margin}）"
            if zh
            else f"return on investment = incremental margin / cost (at a {margin} margin)"
        )
        paced = "expected_by_now" in check.scorecard.columns  # interim: the target's share by now
        if paced and check.plan.targets.roi is not None:
            caption += (
                "；目标为截至今日应达到的部分，与记分卡相同"
                if zh
                else "; the target is the part expected by now, as in the scorecard"
            )
        parts.append(_table(shown, "roi", caption, language))
    return tuple(parts)


def progress(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """The campaign day by day (conversion so far by arm, the cumulative lift with its interval)
    and week by week (purchases, first-time buyers and revenue by arm); nothing without
    transactions."""
    if check.progress is None:
        return ()
    from closedloop.figures import progress as progress_fig

    currency = _currency(check)
    weekly = check.progress.weekly.assign(week=lambda w: w["week"].dt.strftime("%Y-%m-%d"))
    return (
        _heading(check, "progress", language),
        page.figure(
            progress_fig.progress(check.progress.daily, check.plan.control),
            "progress",
            out_dir,
            "When the effect appeared and whether it holds: day by day",
            language=language,
        ),
        _table(
            weekly,
            "progress-weekly",
            "week by week, by arm",
            language,
            {"purchases": lambda v: f"{v:,.0f}", "revenue": lambda v: page.money(v, currency)},
        ),
    )


def follow_up(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """After the campaign (扩大战果): which follow-up windows the data reaches, each arm's lift
    over the holdout in them (a figure and a table) and whether the effect lasted; nothing
    without ``follow_up_days``."""
    result = getattr(check, "follow_up", None)
    if result is None:
        return ()
    from closedloop.figures import follow_up as follow_fig
    from closedloop.follow_up import PERSIST_P, lasting

    zh, currency = language == "zh", _currency(check)
    windows = result.windows
    until = windows["data_until"].iloc[0]
    reached, pending = result.reached, result.pending
    waiting = windows[~windows["reached"]]
    later = ", ".join(
        f"{int(d)} ({e:%Y-%m-%d})" for d, e in zip(waiting["days"], waiting["end"], strict=True)
    )
    if zh:
        line = (
            f"数据截至 {until:%Y-%m-%d}。"
            + (f"已衡量活动结束后 {'、'.join(map(str, reached))} 天。" if reached else "")
            + (
                f"尚未到达的时间窗（天，结束日）：{later}，待数据覆盖后再次运行即可衡量。"
                if pending
                else ""
            )
        )
    else:
        line = (
            f"Data to {until:%Y-%m-%d}."
            + (
                f" Measured {', '.join(map(str, reached))} days after the period."
                if reached
                else ""
            )
            + (
                f" Not yet reached (days, last day): {later}; run again once the data covers them."
                if pending
                else ""
            )
        )
    parts = [_heading(check, "follow_up", language), page.sentence(line)]
    if not reached:
        return tuple(parts)
    chance = lasting(result, "revenue")
    for arm, p in chance.items():
        lasted = p >= PERSIST_P
        days = max(reached)
        if zh:
            word = "效果持续" if lasted else "效果未持续"
            parts.append(
                page.sentence(
                    f"{arm}：活动结束后 {days} 天内消费额优于对照组的概率 {page.probability(p)}，{word}。"
                )
            )
        else:
            word = "the effect lasted" if lasted else "the effect did not last"
            parts.append(
                page.sentence(
                    f"{arm}: P(spend above the holdout in the {days} days after the period)"
                    f" {page.probability(p)}; {word}."
                )
            )
    table = result.table
    rows = []
    for _, r in table.iterrows():
        metric = r["metric"]
        share = metric in ("converted", "second_purchase")
        value = (
            (lambda v: page.percent(v, 1))
            if share
            else (lambda v, m=metric: show_metric(m, v, currency))
        )
        lift_value = (lambda v: page.percent(v, 1, signed=True)) if share else value
        rows.append(
            {
                "days": f"{int(r['days'])}",
                "arm": r["arm"],
                "metric": translate(FOLLOW_UP_NAMES[metric], language)
                if metric in FOLLOW_UP_NAMES
                else metric_name(metric, language),
                "mean": value(r["mean"]),
                "control_mean": value(r["control_mean"]),
                "abs_lift_value": lift_value(r["abs_lift"]),
                "lift_interval": page.interval(r["abs_lift_low"], r["abs_lift_high"], lift_value),
                "p_better": page.probability(r["p_better"]),
            }
        )
    parts += [
        page.figure(
            follow_fig.follow_up(table),
            "follow_up",
            out_dir,
            "Each arm against the holdout after the period (95% interval)",
            language=language,
        ),
        _table(
            pd.DataFrame(rows),
            "follow-up",
            "each arm against the holdout from day 1 to the window's last day after the period",
            language,
        ),
    ]
    return tuple(parts)


#: the follow-up's metrics as the report names them
FOLLOW_UP_NAMES = {
    "converted": "bought in the window",
    "revenue": "spend in the window",
    "second_purchase": "came back",
}


@ahead.drawable
def funnel(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """The funnel against its stage targets, by channel (nothing without events)."""
    if check.funnel is None:
        return ()
    from closedloop.figures import funnel as funnel_fig

    targets = check.funnel_targets
    shown = pd.DataFrame(
        {
            "stage": [stage_name(v, language) for v in targets["stage"]],
            "actual": [page.percent(v) for v in targets["actual"]],
            "target": [page.percent(v) for v in targets["target"]],
            "status": [translate("met" if m else "missed", language) for m in targets["met"]],
            "p_met": [page.probability(v) for v in targets["p_met"]],
        }
    )
    card = check.scorecard.set_index("target")
    if "expected_by_now" in card.columns:  # interim: the scorecard's status (not paced)
        rows = card.reindex([f"funnel_{v}" for v in targets["stage"]])
        shown["status"] = [translate(str(v), language) for v in rows["status"]]
        shown = shown.drop(columns="p_met")
    stages = check.funnel.assign(stage=check.funnel["stage"].map(lambda v: stage_name(v, language)))
    outside = ()
    if check.funnel_outside:
        outside = (
            page.note(
                f"事件表中另有 {check.funnel_outside:,} 个不在本活动分组名单中的对象（例如拉新旅程的线索），"
                "未计入漏斗。"
                if language == "zh"
                else f"The events also hold {check.funnel_outside:,} entities outside the"
                " campaign's assignment list (leads of an acquisition journey, for example):"
                " they are not counted in this funnel."
            ),
        )
    ordered = ()  # only where both are shown
    if "purchase" in set(targets["stage"]) and "conversion_rate" in card.index:
        ordered = (
            page.sentence(
                "漏斗的每一阶段只计按顺序经过了之前所有阶段的对象；记分卡的转化率计入各组的所有购买者，"
                "不论其经过哪些阶段，因此漏斗的购买阶段可能低于转化率。"
                if language == "zh"
                else "A stage counts only those who reached every stage before it, in order;"
                " the scorecard's conversion counts every buyer in the arms, whichever stages"
                " they passed, so the funnel's purchase stage can read lower than the conversion."
            ),
        )
    return (
        _heading(check, "funnel", language),
        _table(shown, "funnel-targets", "share of touched reaching each stage", language),
        *ordered,
        *outside,
        page.figure(
            funnel_fig.funnel_chart(stages),
            "funnel",
            out_dir,
            "Funnel by channel: step rates",
            language=language,
        ),
        page.figure(
            funnel_fig.step_heatmap(stages),
            "funnel-heatmap",
            out_dir,
            "Step conversion by channel and stage",
            language=language,
        ),
    )


def who_responded(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """Conversion uplift by segment, ranked (nothing without segments)."""
    if check.segments.empty:
        return ()
    from closedloop.figures import lift as lift_fig

    seg, zh = check.segments, language == "zh"
    pp = lambda v: "–" if v != v else f"{100 * v:+.1f}"  # noqa: E731
    shown = pd.DataFrame(
        {
            "segment": seg["segment"].astype(str),
            "arm": seg["arm"].astype(str),
            "customers": [f"{int(v):,}" for v in seg["customers"]],
            "mean": [page.percent(v) for v in seg["mean"]],
            "control_mean": [page.percent(v) for v in seg["control_mean"]],
            "abs_lift": [pp(v) for v in seg["abs_lift"]],
            "abs_interval": [
                page.interval(a, b, pp)
                for a, b in zip(seg["abs_lift_low"], seg["abs_lift_high"], strict=True)
            ],
            "p_better": [page.probability(v) for v in seg["p_better"]],
            "small": [("是" if zh else "yes") if v else "" for v in seg["small"]],
            "rank": seg["rank"],
        }
    )
    raw = seg["mean"] - seg["control_mean"]
    flipped = int(((raw * seg["abs_lift"]) < 0).sum())  # pooling moved the sign
    pooled = ()
    if flipped:
        pooled = (
            page.sentence(
                f"提升经部分汇总（partial pooling）：小分群的估计会被拉向整体提升，因此有 {flipped} 行"
                "的提升与该分群自身的原始转化率之差方向相反。"
                if zh
                else "The uplifts are partially pooled: a segment's estimate is pulled toward the"
                " campaign's overall uplift, the more so the fewer its customers, so in"
                f" {flipped} row(s) it points the other way from the segment's own raw"
                " rate against its holdout's."
            ),
        )
    return (
        _heading(check, "who_responded", language),
        _table(shown, "segments", "conversion uplift by segment, partially pooled", language),
        *pooled,
        page.figure(
            _ticks(lift_fig.segment_lift(check.segments), language),
            "segments",
            out_dir,
            "Who responded: uplift by segment",
            language=language,
        ),
    )


@ahead.drawable
def customer_base(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """The pyramid on the period's last day and the RFM segment migration over the period
    (nothing without transactions)."""
    base = check.customer_base
    if base is None:
        return ()
    from closedloop.figures import rfm as rfm_fig

    t, currency = _words(language), _currency(check)
    window = t("12 months to") if base.period_days == 365 else f"{base.period_days} {t('days to')}"
    cash = lambda v: page.money(v, currency)  # noqa: E731
    formats = {
        "tier": lambda v: _tier(str(v), language),
        "customers": page.number,
        "customer_share": page.percent,
        "revenue_share": page.percent,
        "revenue": lambda v: page.money(v, currency, 0),
        "avg_ticket": cash,
        "avg_frequency": lambda v: f"{v:.2f}",
        "threshold": cash,
    }
    return (
        _heading(check, "customer_base", language),
        _table(
            base.pyramid,
            "pyramid",
            f"{label('pyramid', language)} ({window} {base.after_asof:%Y-%m-%d})",
            language,
            formats,
        ),
        page.figure(
            _ticks(rfm_fig.pyramid(base.pyramid), language),
            "pyramid",
            out_dir,
            label("pyramid", language),
            language,
        ),
        page.figure(
            rfm_fig.migration_heatmap(_segment_names(base.migration, language)),
            "migration",
            out_dir,
            "RFM segment migration over the campaign period",
            language=language,
        ),
    )


def cross_sell(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """The basket rules to use in the next offer, in the method's order: lift > 1, then by
    confidence (:func:`closedloop.basket.cross_sell`; nothing without items)."""
    if check.cross_sell is None:
        return ()
    from closedloop.basket import cross_sell as method_order
    from closedloop.figures import basket as basket_fig

    rules = method_order(check.cross_sell, n=TOP_RULES)
    formats = {
        "support": lambda v: page.percent(v, 2),
        "confidence": page.percent,
        "lift": lambda v: f"{v:.2f}",
    }
    parts = [
        _heading(check, "cross_sell", language),
        _table(
            rules[["rule", "support", "confidence", "lift"]],
            "basket-rules",
            "bought A → offer B: lift > 1, by confidence",
            language,
            formats,
        ),
    ]
    if len(rules):
        parts.append(
            page.figure(
                basket_fig.top_rules_chart(check.cross_sell, n=TOP_RULES, order="confidence"),
                "basket",
                out_dir,
                "Cross-sell rules for the next offer: lift > 1, by confidence",
                language=language,
            )
        )
    return tuple(parts)


def act(check: pdca.Check, next_plan: Plan, language: str = "en") -> tuple:
    """Every change the Act step made to the plan, each with its reason."""
    decisions = pd.DataFrame(
        [
            {
                "field": change_field(c.field, language),
                "to": _changed_to(c.field, c.to, language, _currency(check)),
                "reason": reason(c.reason, language),
            }
            for c in next_plan.changes
        ],
        columns=["field", "to", "reason"],
    )
    return (
        _heading(check, "act", language),
        _table(decisions, "decisions", "each change with its reason", language),
        page.text(
            "{s}`next_plan.yaml`。" if language == "zh" else "{s} `next_plan.yaml`.",
            s=translate("The next plan is written beside this report as", language),
        ),
    )


def next_contacts(check: pdca.Check, language: str = "en") -> tuple:
    """The next cycle's contact lists (React, 联络名单; :func:`closedloop.pdca.next_contacts`):
    contacts by type × member tier × channel, the triggers behind most of them with an example
    reason, and the files written beside the report for the SCRM (nothing without the lists)."""
    found = getattr(check, "contacts", None)
    if found is None:
        return ()
    from closedloop import contacts as contacts_mod
    from closedloop.pdca import CONTACTS_DIR

    week = found.week
    rows = week.rows
    types = lambda v: v if language != "zh" else contacts_mod.TYPES.get(v, contact_word(v, "zh"))  # noqa: E731
    table = contacts_mod.counts(rows).rename(
        columns={"type": "contact_type", "tier": "member_tier", "total": "contacts_total"}
        | {c: f"channel_{c}" for c in contacts_mod.CHANNELS}
    )
    shown = {f"channel_{c}": page.number for c in contacts_mod.CHANNELS}
    words = lambda v: contact_word(str(v), language)  # noqa: E731
    formats = {"contact_type": types, "member_tier": words, "contacts_total": page.number, **shown}
    reasons = contacts_mod.top_reasons(rows).rename(
        columns={"rule": "contact_rule", "type": "contact_type", "share": "contact_share"}
    )
    per_channel = rows["channel"].value_counts()
    files = pd.DataFrame(
        {
            "file": [f"{CONTACTS_DIR}/contacts_{c}.csv" for c in contacts_mod.CHANNELS]
            + [f"{CONTACTS_DIR}/contacts_summary.csv"],
            "contacts": [int(per_channel.get(c, 0)) for c in contacts_mod.CHANNELS] + [None],
        }
    )
    dropped = week.dropped
    return (
        _heading(check, "next_contacts", language),
        page.text(
            "本周联络名单共 **{n}** 次联络，涉及 {k} 位客户，自 {day} 起一周。未列入：{h} 位对照组客户、"
            "{u} 位任何渠道都无法触达的客户、{cap} 次超出每周上限的联络。"
            if language == "zh"
            else "The week's contact lists hold **{n}** contacts for {k} customers in the week"
            " from {day}. Left out: {h} holdout customers, {u} customers reachable on none of"
            " the channels, {cap} contacts over the weekly cap.",
            n=page.number(len(rows)),
            k=page.number(rows["customer_id"].nunique()),
            day=f"{check.asof:%Y-%m-%d}",
            h=page.number(found.holdout),
            u=page.number(int(dropped["unreachable"])),
            cap=page.number(int(dropped["over_cap"])),
        ),
        _table(
            table,
            "contact-counts",
            "contacts by type, member tier and channel",
            language,
            formats,
        ),
        _table(
            reasons,
            "contact-reasons",
            "the triggers behind most contacts, each with its strongest case",
            language,
            {
                "contact_rule": words,
                "contact_type": types,
                "contacts": page.number,
                "contact_share": page.percent,
            },
        ),
        _table(
            files,
            "contact-files",
            "written beside this report for the SCRM import, one file per channel (and Parquet)",
            language,
            {"contacts": lambda v: "–" if pd.isna(v) else page.number(v)},
        ),
    )


def _changed_to(field: str, to: str, language: str, currency: str) -> str:
    """A change's new value as the report shows values: a raised target as the scorecard shows
    it (20.5%, ¥5,000), words in the report's language."""
    name = field.removeprefix("targets.").removesuffix(".min")
    if field.startswith("targets."):
        try:
            return show_target(
                "relative_lift" if field.endswith(".min") else name, float(to), currency
            )
        except ValueError:
            pass
    return change_to(to, language)


@ahead.drawable
def history(
    check: pdca.Check,
    next_plan: Plan,
    run_id: str,
    ledger_path: str | Path,
    language: str = "en",
    out_dir: str | Path = ".",
) -> tuple:
    """The campaign's earlier runs from the ledger and this one: actual / target per target."""
    from closedloop.figures import pdca as pdca_fig

    t = _words(language)
    runs = ledger.history(ledger_path, pdca.summary(check, next_plan, run_id))
    parts = [_heading(check, "history", language)]
    if runs["run_id"].nunique() == 1:
        first = (
            "这是活动 {c} 首次记录的周期。"
            if language == "zh"
            else "This is the first recorded cycle of {c}."
        )
        parts.append(page.text(first, c=check.plan.campaign))
    zh = language == "zh"
    words, colon = label("history", language), "：" if zh else ": "
    interim = ""
    if runs["interim"].any():
        interim = (
            "（期中运行：截至当时应达到的目标）"
            if zh
            else " (interim runs: the target expected by then)"
        )
    parts += [
        page.table(
            history_table(runs, language),
            "history",
            f"{words}{colon}actual / target{interim}",
            language=language,
        ),
        page.figure(
            pdca_fig.history(runs),
            "history",
            out_dir,
            f"{words}{colon}{t('each target, cycle after cycle')}",
            language=language,
        ),
    ]
    return tuple(parts)


def draw_ahead(
    check: pdca.Check,
    next_plan: Plan,
    run_id: str,
    ledger_path: str | Path,
    language: str = "en",
    out_dir: str | Path = ".",
) -> None:
    """Draw the funnel, the customer base and the history, the report's slowest sections after
    the first ones, on a second core while the cells before them run (:mod:`closedloop.ahead`);
    their cells then show what was drawn."""
    ahead.draw(
        [
            (funnel, (check, language, out_dir)),
            (customer_base, (check, language, out_dir)),
            (history, (check, next_plan, run_id, ledger_path, language, out_dir)),
        ]
    )


def history_table(runs: pd.DataFrame, language: str = "en") -> pd.DataFrame:
    """The long history as a table: one row per target, one column per run, cells
    "actual / target status"."""
    result = [
        f"{show_target(k, a)} / {show_target(k, t)} {translate(s, language)}"
        for k, a, t, s in zip(
            runs["target"], runs["actual"], runs["target_value"], runs["status"], strict=True
        )
    ]
    wide = runs.assign(result=result).pivot(index="target", columns="run", values="result")
    wide = wide.reindex(
        index=list(dict.fromkeys(runs["target"])), columns=list(dict.fromkeys(runs["run"]))
    )
    wide.index = [target_name(name, language) for name in wide.index]
    if language == "zh":  # "cycle 1 · week 3 (interim)" as Chinese writes it
        names = {
            r.run: f"周期 {r.cycle}" + (f" · 第 {r.week} 周（期中）" if r.interim else "")
            for r in runs.itertuples()
        }
        wide.columns = [names[name] for name in wide.columns]
    return wide.rename_axis("target").reset_index()


def appendix(check: pdca.Check, language: str = "en") -> tuple:
    """Method notes, the data's lineage and the definitions in both languages."""
    base = check.customer_base
    files = ", ".join(
        f"{table_name(k, language)} = {sources.name(getattr(check.plan.data, k), k)}"
        for k in check.plan.data.model_dump(exclude_none=True)
    )
    definitions = pd.DataFrame(
        [(label(k, "en"), label(k, "zh")) for k in DEFINED_TERMS], columns=["en", "zh"]
    )
    if language == "zh":
        monetary = (
            (
                "RFM 的消费额（M）为每位客户的平均客单价，按方法的定义。"
                if base.monetary == "average"
                else "RFM 的消费额（M）为每位客户的总消费额。"
            )
            if base
            else ""
        )
        method = (
            "提升：0/1 结果用 Beta-二项模型（杰弗里斯先验 Beta(1/2, 1/2)）；销售额用各组均值的正态后验"
            "（由客户数、总和与平方和计算，与 GrowthBook 相同）；区间为 95% 等尾区间；"
            "各组销售额均值的区间按偏度校正。相对提升目标按计划的主要实验组评估。"
            f"{monetary}数据：{files}。"
        )
    else:
        monetary = (
            (
                " RFM monetary (M) is each customer's average ticket, as the method defines it."
                if base.monetary == "average"
                else " RFM monetary (M) is each customer's total spend."
            )
            if base
            else ""
        )
        method = (
            "Lift: Beta-Binomial for 0/1 outcomes (Jeffreys' Beta(1/2, 1/2) prior), a normal posterior on each"
            " arm's mean for revenue (from customers, sums and sums of squares, as GrowthBook"
            " does); intervals are 95% equal-tailed, each arm's mean revenue corrected for skew"
            " (Hall 1992). The relative-lift target is judged on the plan's primary arm."
            f"{monetary} Data: {files}."
        )
    return (
        _heading(check, "appendix", language),
        page.sentence(method),
        _table(definitions, "definitions", "Definitions", language),
    )


def _table(frame: pd.DataFrame, table_id: str, caption: str, language: str, formats=None):
    """``frame`` with its values shown by ``formats`` (column -> function; a missing value as
    "–", never "nan") and every header a label from the glossary in ``language``."""
    shown = frame.copy()
    for name, show in (formats or {}).items():
        if name in shown.columns:
            shown[name] = shown[name].map(lambda v, show=show: "–" if pd.isna(v) else show(v))
    shown.columns = [column(str(c), language) for c in shown.columns]
    return page.table(shown, table_id, caption, language=language)


def _telling(probabilities: pd.Series) -> float:
    """The probability of a table that best shows what the number means: the one nearest 50%."""
    return float(probabilities.iat[int((probabilities - 0.5).abs().argmin())])


def _basis(text: str, language: str) -> str:
    if language != "zh":
        return text
    outliers = re.fullmatch(
        r"(.*); ([\d,]+) outlier amount\(s\) in the data may decide this \(see data quality\)", text
    )
    if outliers:
        head, n = outliers.groups()
        return f"{_basis(head, language)}；数据中有 {n} 个异常金额，可能左右此项（见数据质量）"
    shaped = re.fullmatch(r"(.*); expected by now from the baseline's weekly curve", text)
    if shaped:
        return f"{_basis(shaped.group(1), language)}；目前应达值按基期的周内分布推算"
    unpaced = re.fullmatch(
        r"(.*); not paced: nothing says how it accumulates over the period", text
    )
    if unpaced:
        return f"{_basis(unpaced.group(1), language)}；暂不判断进度：没有数据说明它在期内如何累积"
    found = re.fullmatch(r"primary arm \((.+?)(, the plan's first treated arm)?\) on (\w+)", text)
    if found:
        arm, first, col = found.groups()
        return (
            f"主要实验组（{arm}{'，计划中第一个实验组' if first else ''}）的{translate(col, 'zh')}"
        )
    found = re.fullmatch(
        r"not estimable: fewer than (\d+) (buyer|conversion)s in the holdout and (.+)"
        r" together; see the absolute lift",
        text,
    )
    if found:
        n, unit, arm = found.groups()
        what = "购买客户" if unit == "buyer" else "转化"
        return f"无法可靠估计：对照组与 {arm} 的{what}合计少于 {n} 个；请看绝对提升"
    found = re.fullmatch(
        r"undefined: the holdout's mean (\w+) is (0|below 0)( after the pre-period adjustment)?;"
        r" see the absolute lift",
        text,
    )
    if found:
        column, sign, adjusted = found.groups()
        below = "为 0" if sign == "0" else "低于 0"
        after = "（按基期调整后）" if adjusted else ""
        return f"无法定义：对照组的{translate(column, 'zh')}均值{after}{below}；请看绝对提升"
    found = re.fullmatch(
        r"not estimable: the holdout's mean (\w+) is not credibly above 0; see the absolute lift",
        text,
    )
    if found:
        column = translate(found.group(1), "zh")
        return f"无法可靠估计：对照组的{column}均值不能确定高于 0；请看绝对提升"
    found = re.fullmatch(r"all arms: incremental margin \((.+)\) / cost", text)
    if found:
        return f"全部实验组：增量毛利（毛利率 {found.group(1)}）/ 成本"
    return translate(text, language)


def _metric(name: str, language: str) -> str:
    return metric_name(name, language)


def _segment_names(migration, language: str):
    """The migration with the package's RFM segment names in ``language`` (its rows and
    columns), so a Chinese report's heatmap reads 即将沉睡客户, not about_to_sleep."""
    counts = migration.counts.rename(
        index=lambda s: rfm_segment_name(s, language),
        columns=lambda s: rfm_segment_name(s, language),
    )
    return dataclasses.replace(migration, counts=counts)


def _ticks(fig, language: str):
    """The package's own words in tick labels (a tier's "top", a segment's "(small)") in
    ``language``; the data's names stay as they are."""
    if language != "zh":
        return fig
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels()
            if any(t.get_text() for t in labels):
                axis.set_ticks(axis.get_ticklocs(), [_tier(t.get_text(), language) for t in labels])
    return fig


def _tier(text: str, language: str) -> str:
    if language != "zh":
        return text
    return re.sub(r"^top ", "前 ", text).replace(" (small)", "（样本小）")


def _currency(check: pdca.Check) -> str:
    return getattr(check.plan, "currency", "CNY")


def _heading(check: pdca.Check, key: str, language: str):
    """``## N. Heading``: N counts the sections this Check fills."""
    words = label(key, language)
    number = shown(check).index(key) + 1
    return page.text("## {n}. {h}", n=number, h=words[:1].upper() + words[1:])


def _words(language: str):
    return lambda text: translate(text, language)
