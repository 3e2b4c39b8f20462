"""The PDCA check report, section by section: what each section shows of a :class:`~closedloop.pdca.Check`.

One function per section of the report (design.md, "The PDCA check report, in order"), each
taking the Check and the report's language (and ``out_dir`` where figures are saved) and returning
the objects to display, in order: ``display(*sections.scorecard(check, language))``. A section the
data cannot fill (no events, no segments, no transactions, no items) returns nothing. Headings are
numbered over the sections the Check fills, so the numbers run on without gaps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from closedloop import ledger, page, pdca
from closedloop.glossary import label, translate
from closedloop.plan import Plan

__all__ = [
    "act",
    "appendix",
    "cross_sell",
    "customer_base",
    "funnel",
    "header",
    "history",
    "lift",
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


def shown(check: pdca.Check) -> list[str]:
    """The numbered sections this Check fills, in the report's order (glossary keys)."""
    filled = {
        "funnel": check.funnel is not None,
        "who_responded": not check.segments.empty,
        "customer_base": check.customer_base is not None,
        "cross_sell": check.cross_sell is not None,
    }
    order = ["plan_recap", "scorecard", "lift", *filled, "act", "history", "appendix"]
    return [key for key in order if filled.get(key, True)]


def header(check: pdca.Check, language: str = "en", run_id: str = "") -> tuple:
    """The report's style, title, run line and data quality; the sample-ratio warning if any."""
    plan, t = check.plan, _words(language)
    parts = [
        page.css(),
        page.text(
            "# {title}: {name}", title=label("header", language), name=plan.name or plan.campaign
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
        page.table(
            check.quality,
            "data-quality",
            f"{label('data_quality', language)}: {t('rows read, kept and dropped per table')}",
            language=language,
        ),
    ]
    if check.srm["warning"]:
        parts.append(page.note(check.srm["warning"]))
    return tuple(parts)


def plan_recap(check: pdca.Check, language: str = "en") -> tuple:
    """The plan as it was set: objective, audience, arms, holdout and the targets."""
    plan, t = check.plan, _words(language)
    targets = pd.DataFrame(
        [
            (k, json.dumps(v) if isinstance(v, dict) else v)
            for k, v in plan.targets.model_dump(exclude_none=True).items()
        ],
        columns=["target", "value"],
    )
    return (
        _heading(check, "plan_recap", language),
        page.text(
            "{o_w}: **{o}** · {a_w}: {a} · {arms_w}: {arms} · {h_w}: {ctl}",
            o_w=t("Objective"),
            o=plan.objective,
            a_w=t("audience"),
            a=", ".join(plan.audience.segments or [t("everyone assigned")]),
            arms_w=t("arms"),
            arms=", ".join(f"{k} {v:.0%}" for k, v in plan.arms.items()),
            h_w=label("holdout", language),
            ctl=plan.control,
        ),
        page.table(targets, "plan-targets", formats={"value": "number"}, language=language),
    )


def scorecard(check: pdca.Check, language: str = "en") -> tuple:
    """Each target: actual, target, met or missed, P(met), basis."""
    return (
        _heading(check, "scorecard", language),
        page.table(
            check.scorecard,
            "scorecard",
            "P(met): posterior probability that the target was reached",
            formats={"actual": "number", "target_value": "number", "p_met": "{:.3f}"},
            language=language,
        ),
    )


def lift(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """Each arm against the holdout, its figure, the sample-ratio line and the ROI."""
    from closedloop.figures import lift as lift_fig

    table = check.lift[LIFT_COLUMNS]
    parts = [
        _heading(check, "lift", language),
        page.table(
            table,
            "lift-table",
            "relative lift with its 95% credible interval",
            formats={**{c: "number" for c in table.columns[3:]}, "p_better": "{:.3f}"},
            language=language,
        ),
        page.figure(
            lift_fig.lift_intervals(check.lift),
            "lift",
            out_dir,
            "Posterior lift of each arm over the holdout (95% interval)",
            language=language,
        ),
        page.text("{m}", m=check.srm["message"]),
    ]
    if len(check.roi):
        parts.append(
            page.table(
                check.roi,
                "roi",
                label("roi", language),
                formats={c: "number" for c in check.roi.columns[2:]},
                language=language,
            )
        )
    return tuple(parts)


def funnel(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """The funnel against its stage targets, by channel (nothing without events)."""
    if check.funnel is None:
        return ()
    from closedloop.figures import funnel as funnel_fig

    targets = check.funnel_targets
    status = targets["met"].map({True: "met", False: "missed"})
    return (
        _heading(check, "funnel", language),
        page.table(
            targets.assign(status=status).drop(columns="met"),
            "funnel-targets",
            "share of touched reaching each stage",
            formats={"actual": "{:.3f}", "target": "{:.3f}", "p_met": "{:.3f}"},
            language=language,
        ),
        page.figure(
            funnel_fig.funnel_chart(check.funnel),
            "funnel",
            out_dir,
            "Funnel by channel: step rates",
            language=language,
        ),
        page.figure(
            funnel_fig.step_heatmap(check.funnel),
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

    table = check.segments[SEGMENT_COLUMNS]
    return (
        _heading(check, "who_responded", language),
        page.table(
            table,
            "segments",
            "conversion uplift by segment, partially pooled",
            formats={c: "{:.4f}" for c in table.columns[3:9]},
            language=language,
        ),
        page.figure(
            lift_fig.segment_lift(check.segments),
            "segments",
            out_dir,
            "Who responded: uplift by segment",
            language=language,
        ),
    )


def customer_base(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """The pyramid on the period's last day and the RFM segment migration over the period
    (nothing without transactions)."""
    base = check.customer_base
    if base is None:
        return ()
    from closedloop.figures import rfm as rfm_fig

    t = _words(language)
    window = t("12 months to") if base.period_days == 365 else f"{base.period_days} {t('days to')}"
    return (
        _heading(check, "customer_base", language),
        page.table(
            base.pyramid,
            "pyramid",
            f"{label('pyramid', language)} ({window} {base.after_asof:%Y-%m-%d})",
            formats=PYRAMID_FORMATS,
            language=language,
        ),
        page.figure(
            rfm_fig.pyramid(base.pyramid), "pyramid", out_dir, label("pyramid", language), language
        ),
        page.figure(
            rfm_fig.migration_heatmap(base.migration),
            "migration",
            out_dir,
            "RFM segment migration over the campaign period",
            language=language,
        ),
    )


def cross_sell(check: pdca.Check, language: str = "en", out_dir: str | Path = ".") -> tuple:
    """The strongest basket rules for the next offer (nothing without items)."""
    rules = check.cross_sell
    if rules is None:
        return ()
    from closedloop.figures import basket as basket_fig

    parts = [
        _heading(check, "cross_sell", language),
        page.table(
            rules.head(TOP_RULES)[["rule", "support", "confidence", "lift"]],
            "basket-rules",
            "bought A → offer B: lift > 1, by confidence",
            formats={"support": "{:.4f}", "confidence": "{:.3f}", "lift": "{:.2f}"},
            language=language,
        ),
    ]
    if len(rules):
        parts.append(
            page.figure(
                basket_fig.top_rules_chart(rules, n=TOP_RULES),
                "basket",
                out_dir,
                "Strongest basket rules for the next offer",
                language=language,
            )
        )
    return tuple(parts)


def act(check: pdca.Check, next_plan: Plan, language: str = "en") -> tuple:
    """Every change the Act step made to the plan, each with its reason."""
    decisions = pd.DataFrame([c.model_dump() for c in next_plan.changes])
    return (
        _heading(check, "act", language),
        page.table(decisions, "decisions", "each change with its reason", language=language),
        page.text(
            "{s} `next_plan.yaml`.",
            s=translate("The next plan is written beside this report as", language),
        ),
    )


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
        parts.append(
            page.text("{s} {c}.", s=t("This is the first recorded cycle of"), c=check.plan.campaign)
        )
    words = label("history", language)
    parts += [
        page.table(
            history_table(runs, language), "history", f"{words}: actual / target", language=language
        ),
        page.figure(
            pdca_fig.history(runs),
            "history",
            out_dir,
            f"{words}: {t('each target, cycle after cycle')}",
            language=language,
        ),
    ]
    return tuple(parts)


def history_table(runs: pd.DataFrame, language: str = "en") -> pd.DataFrame:
    """The long history as a table: one row per target, one column per run, cells
    "actual / target status"."""
    result = [
        f"{page.number(a)} / {page.number(t)} {translate(s, language)}"
        for a, t, s in zip(runs["actual"], runs["target_value"], runs["status"], strict=True)
    ]
    wide = runs.assign(result=result).pivot(index="target", columns="run", values="result")
    wide = wide.reindex(
        index=list(dict.fromkeys(runs["target"])), columns=list(dict.fromkeys(runs["run"]))
    )
    return wide.reset_index()


def appendix(check: pdca.Check, language: str = "en") -> tuple:
    """Method notes, the data's lineage and the definitions in both languages."""
    base = check.customer_base
    files = check.plan.data.model_dump(exclude_none=True).items()
    definitions = pd.DataFrame(
        [(label(k, "en"), label(k, "zh")) for k in DEFINED_TERMS], columns=["en", "zh"]
    )
    return (
        _heading(check, "appendix", language),
        page.text(
            "Lift: Beta-Binomial for 0/1 outcomes (Beta(1, 1) prior), a normal posterior on each"
            " arm's mean for revenue (from customers, sums and sums of squares, as GrowthBook"
            " does); intervals are 95% equal-tailed.{m} Data: {files}.",
            m=(
                " RFM monetary (M) is each customer's average ticket, as the method defines it."
                if base.monetary == "average"
                else " RFM monetary (M) is each customer's total spend."
            )
            if base
            else "",
            files=", ".join(f"{k} = {Path(v).name}" for k, v in files),
        ),
        page.table(definitions, "definitions", "Definitions", language=language),
    )


def _heading(check: pdca.Check, key: str, language: str):
    """``## N. Heading``: N counts the sections this Check fills."""
    words = label(key, language)
    number = shown(check).index(key) + 1
    return page.text("## {n}. {h}", n=number, h=words[:1].upper() + words[1:])


def _words(language: str):
    return lambda text: translate(text, language)
