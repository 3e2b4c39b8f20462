"""Check and Act (检查, 处理): the plan's targets against the data, and the next cycle's plan.

``load(plan)`` reads the campaign's tables through the data contract; ``check(plan, data)``
scores every target — actual, target, met or missed, and the posterior probability that it was met
(from :mod:`closedloop.lift` and :mod:`closedloop.funnel`) — with the sample-ratio check, the
customer base before and after the period, the basket rules for cross-selling and a data-quality
summary: everything the report shows, without a notebook. ``act(check)`` writes the next plan,
each change with its reason. That last step is what closes the loop: the Check of one cycle writes
the Plan of the next. ``write`` records a run (``summary.json``, ``next_plan.yaml``).
"""

from __future__ import annotations

import json
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop import (
    assign,
    basket,
    early_stop,
    io,
    lift,
    lift_segments,
    objectives,
    rfm,
    sources,
    summaries,
)
from closedloop import contacts as contacts_mod
from closedloop import follow_up as follow_up_mod
from closedloop import funnel as funnel_mod
from closedloop import scorecard as scoring
from closedloop._frames import bounds
from closedloop.act import next_plan as _next_plan
from closedloop.errors import DataError
from closedloop.plan import METRIC_COLUMNS, Plan, PlanError
from closedloop.progress import Progress, baseline_shares, progress

__all__ = [
    "METRIC_COLUMNS",
    "CampaignData",
    "Check",
    "CustomerBase",
    "NextContacts",
    "Plan",
    "act",
    "as_of",
    "check",
    "load",
    "next_contacts",
    "on_engine",
    "period_elapsed",
    "run_check",
    "summary",
    "write",
]

FUNNEL_FIRST_STAGE = "touch"
#: the files a run records beside its report
SUMMARY_FILE, NEXT_PLAN_FILE = "summary.json", "next_plan.yaml"
#: the Do handoff: the next cycle's assignment list, beside the next plan
NEXT_ASSIGNMENTS_FILE = "next_assignments.csv"
#: the next cycle's contact lists, a folder beside the report (:func:`write`)
CONTACTS_DIR = "contacts"


@dataclass(frozen=True)
class CampaignData:
    """The campaign's tables, validated, and what the readers reported about them."""

    assignments: pd.DataFrame
    outcomes: pd.DataFrame
    transactions: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)
    points: pd.DataFrame | None = None


@dataclass(frozen=True)
class CustomerBase:
    """The customer base around the campaign: RFM tables the day before the period starts and
    on its last day (the as-of day of an interim Check), each over the ``period_days`` before it,
    the pyramid on that day and the segment migration between the two."""

    pyramid: pd.DataFrame
    migration: rfm.Migration
    monetary: str
    period_days: int
    before: pd.DataFrame
    after: pd.DataFrame
    before_asof: pd.Timestamp
    after_asof: pd.Timestamp


@dataclass(frozen=True)
class Check:
    """The Check of one cycle: the scorecard and the evidence behind it. ``customer_base`` is
    None without transactions, ``cross_sell`` (the basket rules, strongest lift first) None
    without items."""

    plan: Plan
    asof: pd.Timestamp
    scorecard: pd.DataFrame
    lift: pd.DataFrame
    lift_draws: lift.PosteriorDraws
    p_best: pd.DataFrame
    roi: pd.DataFrame
    srm: dict
    segments: pd.DataFrame
    funnel: pd.DataFrame | None
    funnel_targets: pd.DataFrame | None
    quality: pd.DataFrame
    customer_base: CustomerBase | None = None
    cross_sell: pd.DataFrame | None = None
    #: who was in which arm this cycle (``customer_id, arm`` and ``segment`` when known)
    assignments: pd.DataFrame | None = None
    #: the campaign day by day and week by week (None without transactions)
    progress: Progress | None = None
    #: the targets set against the baseline: ``target, baseline, change, implied``
    baselines: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: treated against holdout in the days after the period (``follow_up_days``), else None
    follow_up: follow_up_mod.FollowUp | None = None
    #: an interim Check of a plan with a ``stopping`` rule: its decision (else None)
    early_stop: early_stop.Decision | None = None
    #: the next cycle's contact lists (:func:`next_contacts`; None before it, or without
    #: transactions and customers)
    contacts: NextContacts | None = None
    #: entities in the events outside the campaign (not assigned), left out of the funnel
    funnel_outside: int = 0


@dataclass(frozen=True)
class NextContacts:
    """The contact lists of the week from the Check's as-of day (React, 联络名单): ``week``
    (:func:`closedloop.contacts.contact_list`) with every holdout customer left out — ``holdout``
    of them, this cycle's and the next one's (the Act step's assignment list) — written by
    :func:`write` into :data:`CONTACTS_DIR` (:func:`closedloop.contacts.file_names`)."""

    week: contacts_mod.ContactList
    holdout: int


def as_of(plan: Plan, asof=None) -> pd.Timestamp:
    """The day a Check is made: ``asof`` (the end of that day), by default the period's last day."""
    return summaries.day(asof if asof else plan.period.end)


def period_elapsed(plan: Plan, asof: pd.Timestamp) -> float:
    """The share of the period's days gone by at the end of the ``asof`` day: 1 at or after its
    last day (a final Check), less before it (an interim Check)."""
    start = pd.Timestamp(plan.period.start)
    if asof < start:
        raise DataError(
            "asof",
            f"asof {asof:%Y-%m-%d} is before the campaign period starts ({plan.period.start}):"
            " there is nothing to check yet",
        )
    return min(1.0, ((asof - start).days + 1) / plan.period.days)


def load(plan: Plan, asof=None) -> CampaignData:
    """Read the plan's tables through the data contract (column mappings from ``plan.columns``,
    file formats from ``plan.formats``, the outlier rule from ``plan.outliers``), leaving out
    rows dated after the ``asof`` day (default: the period's last day).

    Outcomes: a customer absent from the outcomes table has no outcome (0 for every metric); a
    blank cell in the table is an error (see :func:`closedloop.io.read_outcomes`). Coverage: the
    share of assigned customers found in the transactions, the outcomes and (of the contacted
    arms) the events is reported in the quality table and must reach
    ``plan.quality.min_coverage``, or the join key is taken to be wrong (:func:`_coverage`).
    """
    asof = as_of(plan, asof)
    period_elapsed(plan, asof)  # an asof before the period is refused before any table is read
    paths, cols, rule = plan.data, plan.columns, plan.outliers.rule
    tx = (
        io.read_transactions(
            paths.transactions,
            cols.get("transactions"),
            asof=asof,
            outliers=rule,
            **_formats(plan, "transactions"),
        )
        if paths.transactions
        else None
    )
    assignments = io.read_assignments(
        paths.assignments, cols.get("assignments"), **_formats(plan, "assignments")
    )
    _check_arms(plan, assignments)
    events = (
        io.read_events(paths.events, cols.get("events"), asof=asof, **_formats(plan, "events"))
        if paths.events
        else None
    )
    customers = (
        io.read_customers(paths.customers, cols.get("customers"), **_formats(plan, "customers"))
        if paths.customers
        else None
    )
    items = (
        io.read_items(paths.items, cols.get("items"), **_formats(plan, "items"))
        if paths.items
        else None
    )
    outcomes_read = None
    excluded: list[str] = []
    interim = asof < pd.Timestamp(plan.period.end)
    if interim and paths.outcomes and tx is None:
        raise DataError(
            sources.label(paths.outcomes, "outcomes"),
            f"an interim Check (asof {asof:%Y-%m-%d}, before the period ends on"
            f" {plan.period.end}) needs transactions: an outcomes file has no dates to cut at"
            " asof (give data.transactions, or check after the period)",
        )
    if paths.outcomes and not interim:
        formats = _formats(plan, "outcomes")
        formats.pop("timezone", None)
        outcomes_read = io.read_outcomes(
            paths.outcomes, cols.get("outcomes"), outliers=rule, **formats
        )
        excluded = outcomes_read.attrs["quality"].get("excluded_ids", [])
        outcomes = outcomes_read.drop(columns=["arm", "segment"], errors="ignore")
    else:  # an interim Check counts the outcomes of the days so far, from the transactions
        if paths.outcomes:
            warnings.warn(
                f"{sources.name(paths.outcomes, 'outcomes')}: not read before the period ends;"
                " an interim Check counts its outcomes from the transactions",
                io.DataWarning,
                stacklevel=2,
            )
        _check_period_covered(tx, plan, asof)
        outcomes = _outcomes_from_transactions(tx, plan, asof)
    tables = {
        "transactions": tx,
        "assignments": assignments,
        "outcomes": outcomes_read,
        "events": events,
        "customers": customers,
    }
    coverage = _coverage(plan, assignments, tables)
    if outcomes_read is not None:
        stray = ~outcomes["customer_id"].isin(assignments["customer_id"])
        if stray.any():
            warnings.warn(
                f"{sources.name(paths.outcomes, 'outcomes')}: {int(stray.sum()):,} outcome row(s) for customers"
                " without an assignment are not used",
                io.DataWarning,
                stacklevel=2,
            )
    keep = [c for c in ("customer_id", "arm", "segment") if c in assignments.columns]
    assigned = assignments[keep]
    if excluded:  # the outlier rule 'exclude' leaves these customers out of the campaign
        assigned = assigned[~assigned["customer_id"].isin(excluded)]
    outcomes = assigned.merge(outcomes, on="customer_id", how="left", indicator="_found")
    absent = (outcomes.pop("_found") == "left_only").to_numpy()
    for column in outcomes.columns.difference(keep):
        if pd.api.types.is_numeric_dtype(outcomes[column]):
            # absence from the outcomes (or from the period's transactions) is "no outcome"
            outcomes[column] = outcomes[column].mask(absent, 0)
    if plan.audience.segments and "segment" in outcomes.columns:
        unknown = sorted(set(plan.audience.segments) - set(outcomes["segment"]))
        if unknown:
            raise PlanError(f"audience segments {unknown} do not occur in the assignments")
    points = (
        io.read_points(paths.points, cols.get("points"), asof=asof, **_formats(plan, "points"))
        if paths.points
        else None
    )
    tables["points"] = points  # in the quality table (its rows after asof too), not the coverage
    quality = pd.DataFrame(
        [
            _quality(name, frame, coverage.get(name))
            for name, frame in tables.items()
            if frame is not None
        ]
    )
    return CampaignData(assignments, outcomes, tx, events, customers, items, quality, points)


def _formats(plan: Plan, table: str) -> dict:
    """The reader options (encoding, date_format, timezone) the plan gives for one table."""
    given = plan.formats.get(table)
    return given.model_dump() if given is not None else {}


def _coverage(plan: Plan, assignments: pd.DataFrame, tables: dict) -> dict:
    """For transactions, outcomes and events: (assigned customers found, assigned customers).

    Events are measured against the contacted arms only (the holdout is not touched) and match
    on ``customer_id`` or ``entity_id``. Below ``plan.quality.min_coverage`` the join is taken to
    be broken: one DataError naming both files, a few unmatched ids of each side by side and,
    when the ids differ only by format (a trailing .0, leading zeros, case), that hint.
    """
    threshold = plan.quality.min_coverage
    assigned = assignments["customer_id"]
    contacted = assigned[(assignments["arm"] != plan.control).to_numpy()]
    found = {}
    for name in ("transactions", "outcomes", "events"):
        frame = tables.get(name)
        if frame is None:
            continue
        columns = [c for c in ("customer_id", "entity_id") if c in frame.columns]
        ids = pd.concat([frame[c] for c in columns]) if len(columns) > 1 else frame[columns[0]]
        ids = ids.dropna() if ids.hasnans else ids
        against = contacted if name == "events" else assigned
        if against.empty:
            continue
        hit = pd.Series(summaries.is_in(against, ids), index=against.index)
        found[name] = (int(hit.sum()), len(against))
        if not hit.all():  # the ids of the table no one was assigned: other spellings?
            ids = ids[~summaries.is_in(ids, assigned)].drop_duplicates()
        ours = assignments.attrs["quality"]["source"]
        theirs = frame.attrs.get("quality", {}).get("source", name)
        whom = "contacted customers" if name == "events" else "assigned customers"
        if hit.mean() >= threshold:
            # enough ids match, but the ones that do not may be the same customers written
            # differently (some rows through Excel): they would count as no outcome unseen
            hint = None if hit.all() else io.id_format_hint(against[~hit], ids)
            if hint:
                warnings.warn(
                    f"{Path(ours).name} and {Path(theirs).name}: {int((~hit).sum()):,} of"
                    f" {len(against):,} {whom} do not appear in the {name}; {hint}"
                    " (fix the ids: unmatched customers count as no outcome)",
                    io.DataWarning,
                    stacklevel=3,
                )
            continue
        missing = against[~hit].drop_duplicates().head(5).tolist()
        extra = ids.head(5).tolist()
        width = max(len(missing), len(extra))
        rows = pd.DataFrame(
            {
                f"assigned, not in {name}": missing + [""] * (width - len(missing)),
                f"in {name}, not assigned": extra + [""] * (width - len(extra)),
            }
        )
        hint = io.id_format_hint(against[~hit], ids)
        hint = f"; {hint}" if hint else "; check that both files hold the same customer ids"
        raise DataError(
            f"{Path(ours).name} and {Path(theirs).name}",
            f"only {hit.sum():,} of {len(against):,} {whom} ({hit.mean():.1%}) appear in the"
            f" {name}, below min_coverage {threshold:g}{hint} (if this is expected, lower"
            " quality.min_coverage in the plan)",
            column="customer_id",
            rows=rows,
            n_bad=int((~hit).sum()),
        )
    return found


def on_engine(plan: Plan, data: CampaignData) -> CampaignData:
    """The campaign's row tables (transactions, funnel events, order lines) on the plan's
    engine: unchanged for a local plan; on its Spark session (:func:`closedloop.spark.session`)
    for ``engine: spark`` or a Spark source, so that every aggregation of the Check runs there
    and only summaries come back. The small tables (assignments, outcomes, customers, the
    points ledger) stay in pandas."""
    if not plan.on_spark:
        return data
    from closedloop import spark

    session = spark.session(plan.spark_master)
    rows = {
        name: spark.to_spark(frame, session)
        for name in ("transactions", "events", "items")
        if (frame := getattr(data, name)) is not None and not spark.is_spark(frame)
    }
    return replace(data, **rows)


def check(
    plan: Plan, data: CampaignData, asof=None, seed: int = 0, shared: dict | None = None
) -> Check:
    """Score every target of the plan (actual, target, met / missed, P(met)) and gather the rest
    of the evidence the report shows; thresholds from the plan's ``report`` section. ``shared``:
    a dict that the Checks of plans on the same tables share (``closedloop run-all`` gives one to
    each group of plans reading the same tables), for what depends on the tables and its own
    settings alone (the customer base, the basket rules): computed for the first, taken by the
    others. With a
    baseline period and transactions, lift is adjusted by each customer's pre-period (CUPED) and
    an interim Check expects by now the share the days gone by carry in the baseline's week
    (:func:`closedloop.progress.baseline_shares`; pro rata by days when the transactions do
    not cover the baseline). With a ``stopping`` rule, an interim Check decides on it
    (:mod:`closedloop.early_stop`)."""
    elapsed = period_elapsed(plan, as_of(plan, asof))
    data = on_engine(plan, data)
    shares = None  # an interim Check's pace follows the baseline's week when there is one
    if elapsed < 1 and plan.baseline and data.transactions is not None:
        shares = baseline_shares(
            data.assignments,
            data.transactions,
            (plan.baseline.start, plan.baseline.end),
            (plan.period.start, plan.period.end),
            as_of(plan, asof),
        )
    scored, baselines = objectives.resolve_targets(plan, data)
    outcomes, covariates = _objective_outcomes(plan, data, asof), {}
    if plan.baseline and data.transactions is not None:  # CUPED on the baseline period
        outcomes, covariates = lift.pre_period(
            outcomes, data.transactions, plan.baseline.start, plan.baseline.end
        )
    wanted = objectives.lift_metrics(plan)
    metrics = [c for c in wanted if c in outcomes.columns and c != "ticket"]
    covariates = {m: c for m, c in covariates.items() if m in metrics}
    lift_result = lift.bayesian_lift(
        outcomes, control=plan.control, metrics=metrics, seed=seed, covariates=covariates
    )
    lead = objectives.lead_metrics(plan)
    ranked = [m for m in dict.fromkeys([*lead, "converted"]) if m in metrics]
    p_best = lift.prob_best(outcomes, metrics=ranked, seed=seed)
    if "ticket" in wanted:
        ticket, ticket_best = objectives.ticket_lift(outcomes, plan.control, seed=seed)
        lift_result = objectives.combine(lift_result, ticket)
        p_best = pd.concat([p_best, ticket_best], ignore_index=True)
    lift_result = lift.Lift(
        objectives.order_first(lift_result.table, "metric", lead), lift_result.draws
    )
    lift_table, draws = lift_result.table, lift_result.draws
    revenue = lift_result.filter(lift_table["metric"] == "revenue")
    roi_target = plan.targets.roi
    if roi_target is not None and elapsed < 1:  # as the scorecard: the share expected by now
        roi_target *= scoring.share_by_now("roi", elapsed, shares)
    roi_table = (
        lift.roi(revenue, cost=plan.cost, margin=plan.margin, target=roi_target)
        if plan.cost and len(revenue.table)
        else pd.DataFrame()
    )
    srm = lift.srm_check(outcomes, plan.arms)
    segments = pd.DataFrame()
    if "segment" in outcomes.columns:
        segments = lift_segments.lift_by_segment(
            outcomes,
            by="segment",
            control=plan.control,
            metrics="converted",
            pooling=True,
            seed=seed,
        ).table
    funnel_table = funnel_targets = None
    funnel_outside = 0
    if data.events is not None and plan.targets.funnel:
        stages = [FUNNEL_FIRST_STAGE, *plan.targets.funnel]
        events, funnel_outside = _campaign_events(data.events, data.assignments)
        funnel_table = funnel_mod.funnel(events, stages, by="channel")
        overall = funnel_mod.funnel(events, stages)
        # against the whole target: an interim Check does not pace the funnel (scorecard.UNPACED)
        funnel_targets = funnel_mod.funnel_vs_targets(overall, scored.targets.funnel)
    decision = None
    if plan.stopping is not None and elapsed < 1:
        day = (as_of(plan, asof) - pd.Timestamp(plan.period.start)).days + 1
        decision = early_stop.decide(lift_result, day, plan.stopping)
    return Check(
        plan=plan,
        asof=as_of(plan, asof),
        early_stop=decision,
        scorecard=_mark_outliers(
            _objective_first(
                plan,
                scoring.score(scored, outcomes, lift_result, funnel_targets, elapsed, shares),
                baselines,
            ),
            data.quality,
        ),
        lift=lift_table,
        lift_draws=draws,
        p_best=p_best,
        roi=roi_table,
        srm={
            "mismatch": srm.mismatch,
            "p_value": srm.p_value,
            "message": srm.message,
            "warning": srm.warning,
        },
        segments=segments,
        funnel=funnel_table,
        funnel_targets=funnel_targets,
        funnel_outside=funnel_outside,
        quality=data.quality,
        baselines=baselines,
        follow_up=_follow_up(plan, data, outcomes, asof, seed),
        customer_base=_once(
            shared,
            (
                "customer_base",
                plan.period.model_dump_json(),
                plan.report_settings.period_days,
                as_of(plan, asof),
            ),
            lambda: _customer_base(plan, data.transactions, as_of(plan, asof)),
        ),
        cross_sell=_once(
            shared,
            ("cross_sell", plan.report_settings.basket.model_dump_json()),
            lambda: _cross_sell(plan, data.items),
        ),
        assignments=data.assignments[
            [c for c in ("customer_id", "arm", "segment") if c in data.assignments.columns]
        ],
        progress=None
        if data.transactions is None
        else progress(
            data.assignments,
            data.transactions,
            plan.period.start,
            min(as_of(plan, asof), as_of(plan)),
            plan.control,
            seed=seed,
        ),
    )


def run_check(
    plan_path: str | Path, asof=None, seed: int = 0, language: str = "en"
) -> tuple[Check, Plan]:
    """The Check of a plan file and the next plan: load, check, act (the next contacts' reasons
    in ``language``)."""
    plan = Plan.from_yaml(plan_path)
    data = load(plan, asof=asof or None)
    result = check(plan, data, asof=asof or None, seed=seed)
    next_plan = act(result)
    return next_contacts(result, next_plan, data, language), next_plan


def _campaign_events(events, assignments: pd.DataFrame) -> tuple:
    """The events of the campaign's customers (matched on ``customer_id`` or ``entity_id``, as
    the coverage check matches them), and how many other entities the table holds: an events
    export often carries other journeys too (leads of an acquisition funnel, anonymous
    visitors), whose touches would otherwise count as the campaign's. Events on an engine
    (``engine: spark``) are matched there, joined to the assigned ids (narwhals)."""
    if not isinstance(events, pd.DataFrame):
        return _campaign_events_on_engine(events, assignments)
    assigned = assignments["customer_id"]
    inside = np.zeros(len(events), dtype=bool)
    for column in ("customer_id", "entity_id"):
        if column in events.columns:
            inside |= events[column].isin(assigned).to_numpy()
    outside = int(events.loc[~inside, "entity_id"].nunique())
    return (events[inside] if outside else events), outside


def _campaign_events_on_engine(events, assignments: pd.DataFrame) -> tuple:
    """:func:`_campaign_events` where the events live: a left join per id column to the
    assigned ids flags the campaign's rows; only the count of the others comes back."""
    import narwhals as nw

    from closedloop._frames import alongside, collect, lazy_frame

    frame = lazy_frame(events, "events")
    ids = assignments["customer_id"].drop_duplicates()
    columns = [c for c in ("customer_id", "entity_id") if c in frame.collect_schema().names()]
    for column in columns:  # ids are unique, so a left join keeps every event once
        right = pd.DataFrame({f"_id_{column}": ids.to_numpy(), f"_in_{column}": True})
        frame = frame.join(
            alongside(right, frame, "assignments"),
            left_on=column,
            right_on=f"_id_{column}",
            how="left",
        )
    inside = nw.any_horizontal(*(~nw.col(f"_in_{c}").is_null() for c in columns), ignore_nulls=True)
    counted = collect(frame.filter(~inside).select(nw.col("entity_id").n_unique().alias("n")))
    outside = int(counted["n"].iloc[0]) if len(counted) else 0
    if not outside:
        return events, 0
    added = [c for c in frame.collect_schema().names() if c.startswith(("_id_", "_in_"))]
    return frame.filter(inside).drop(added).to_native(), outside


def _objective_outcomes(plan: Plan, data: CampaignData, asof) -> pd.DataFrame:
    """The outcomes with the columns the plan's objective and targets need and the outcomes do
    not hold (orders, ticket, second purchase, recruits, leads), counted over the period up to
    the ``asof`` day (:func:`closedloop.objectives.outcomes`)."""
    outcomes = data.outcomes
    needed = [*objectives.lead_metrics(plan), *objectives.lift_metrics(plan)]
    for name in plan.targets.levels():
        needed += list(scoring.OBJECTIVE_TARGETS.get(name, ()))
    needed = [
        c
        for c in dict.fromkeys(needed)
        if c not in outcomes.columns and c not in objectives.BASE_METRICS
    ]
    if not needed:
        return outcomes
    end = min(as_of(plan, asof), as_of(plan))
    extra = objectives.outcomes(plan, data, outcomes["customer_id"], plan.period.start, end, needed)
    return outcomes.merge(extra, on="customer_id", how="left", validate="one_to_one")


def _follow_up(plan: Plan, data: CampaignData, outcomes: pd.DataFrame, asof, seed: int):
    """The follow-up windows of the plan, measured as far as the data reaches: the as-of day, or
    the last transaction's day when that comes first (None without follow_up_days or
    transactions)."""
    if not plan.follow_up_days or data.transactions is None:
        return None
    _, last = bounds(data.transactions, "order_date")
    until = min(as_of(plan, asof), summaries.day(last)) if pd.notna(last) else as_of(plan)
    return follow_up_mod.follow_up(
        outcomes[["customer_id", "arm"]],
        data.transactions,
        (plan.period.start, plan.period.end),
        plan.follow_up_days,
        plan.control,
        until,
        seed=seed,
    )


def _objective_first(plan: Plan, card: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """The scorecard with the objective's targets first and, when a target is set against the
    baseline, the baseline's value beside the target it implies (``baseline``, ``change``)."""
    card = objectives.order_first(card, "target", objectives.OBJECTIVE_TARGETS[plan.objective])
    if baselines.empty:
        return card
    by = baselines.set_index("target")
    return card.assign(
        baseline=card["target"].map(by["baseline"]), change=card["target"].map(by["change"])
    )


#: targets a few extreme amounts can decide
MONEY_TARGETS = ("incremental_revenue", "roi")


def _mark_outliers(card: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """Say on the money targets that flagged outlier amounts are in the data (they can decide
    such a target; ``outliers: {rule: cap}`` or ``exclude`` in the plan settles it)."""
    found = int(quality["outliers"].sum()) if "outliers" in quality.columns else 0
    if not found:
        return card
    money = card["target"].isin(MONEY_TARGETS)
    note = f"; {found:,} outlier amount(s) in the data may decide this (see data quality)"
    return card.assign(basis=card["basis"].where(~money, card["basis"] + note))


def _once(shared: dict | None, key: tuple, compute):
    """``compute()``, or what it gave for ``key`` in ``shared`` before (see :func:`check`)."""
    if shared is None:
        return compute()
    if key not in shared:
        shared[key] = compute()
    return shared[key]


def _customer_base(
    plan: Plan, transactions: pd.DataFrame | None, asof: pd.Timestamp
) -> CustomerBase | None:
    """The base before the period and on its last day, or on the as-of day of an interim Check
    (the data stop there, so a later day would count days nobody could have bought on)."""
    if transactions is None:
        return None
    days = plan.report_settings.period_days
    before_day = pd.Timestamp(plan.period.start) - pd.Timedelta("1D")
    after_day = min(pd.Timestamp(plan.period.end), asof)
    before = rfm.rfm_table(transactions, before_day, period_days=days)
    after = rfm.rfm_table(transactions, after_day, period_days=days)
    return CustomerBase(
        pyramid=rfm.pyramid(after),
        migration=rfm.migration(before, after, by="segment"),
        monetary=after.attrs.get("monetary", "total"),
        period_days=days,
        before=before,
        after=after,
        before_asof=before_day,
        after_asof=after_day,
    )


def _cross_sell(plan: Plan, items: pd.DataFrame | None) -> pd.DataFrame | None:
    if items is None:
        return None
    settings = plan.report_settings.basket
    return basket.rules(
        items, min_support=settings.min_support, min_confidence=settings.min_confidence
    )


def act(result: Check) -> Plan:
    """The next cycle's plan, each change with its reason (the loop closes here): the rules are
    in :mod:`closedloop.act`."""
    return _next_plan(result)


def summary(result: Check, next_plan: Plan, run_id: str) -> dict:
    """What a run records: the scorecard, the lift table and the decisions (summary.json)."""
    plan = result.plan
    return {
        "campaign": plan.campaign,
        "cycle": plan.cycle,
        "run_id": run_id,
        "asof": str(result.asof.date()),
        "period": {"start": str(plan.period.start), "end": str(plan.period.end)},
        "status": next_plan.status,
        "scorecard": result.scorecard.to_dict(orient="records"),
        "lift": result.lift.to_dict(orient="records"),
        "srm": result.srm,
        "decisions": [c.model_dump() for c in next_plan.changes],
        "baselines": result.baselines.to_dict(orient="records"),
        "follow_up": None
        if result.follow_up is None
        else {
            "reached": result.follow_up.reached,
            "not_reached": result.follow_up.pending,
            "windows": result.follow_up.windows.to_dict(orient="records"),
            "lift": result.follow_up.table.to_dict(orient="records"),
        },
        "early_stop": None if result.early_stop is None else result.early_stop.to_dict(),
    }


def write(
    result: Check,
    next_plan: Plan,
    folder: str | Path,
    run_id: str,
    *,
    plan_path: str | Path | None = None,
) -> tuple[Path, Path]:
    """Record a run in ``folder``: ``summary.json`` (:func:`summary`), ``next_plan.yaml`` and,
    when the next plan is ready to run, the Do handoff ``next_assignments.csv``: the next
    audience (this cycle's assigned customers in the segments the next plan keeps) randomised
    into its arms and holdout within segments (:func:`closedloop.assign.randomise`, seeded by
    campaign and cycle). The next plan reads that list, derives its outcomes from the
    transactions, and names every data path relative to ``folder``, so it runs from where it
    is written (a report folder, or where ``closedloop next`` copies it). The next cycle's
    contact lists, when the Check has them (:func:`next_contacts`), go into
    :data:`CONTACTS_DIR` (:func:`closedloop.contacts.write_contacts`). Returns the summary and
    next-plan paths."""
    folder = Path(folder)
    summary_file, next_file = folder / SUMMARY_FILE, folder / NEXT_PLAN_FILE
    if next_plan.status == "ready" and result.assignments is not None:
        listed = folder / NEXT_ASSIGNMENTS_FILE
        assign.write(next_assignments(result.assignments, next_plan), listed)
        data = {"assignments": listed.resolve()}
        if next_plan.data.transactions is not None:
            data["outcomes"] = None  # next cycle's outcomes come from its transactions
        next_plan = next_plan.model_copy(update={"data": next_plan.data.model_copy(update=data)})
    next_plan.to_yaml(next_file, relative_to=folder)
    if result.contacts is not None:
        contacts_mod.write_contacts(result.contacts.week, folder / CONTACTS_DIR)
    record = summary(result, next_plan, run_id)
    if plan_path is not None:
        record["plan_path"] = str(Path(plan_path).resolve())
    summary_file.write_text(
        json.dumps(_strict_json(record), indent=2, default=str, allow_nan=False)
    )
    return summary_file, next_file


def _strict_json(value):
    """``value`` with NaN and infinities as None: summary.json is read by other programs, and
    JSON has no NaN (a bare ``NaN`` fails a strict parser such as JavaScript's)."""
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    return value


def next_contacts(
    result: Check,
    next_plan: Plan,
    data: CampaignData,
    language: str = "en",
    exclude=None,
    **options,
) -> Check:
    """The Check with the next cycle's contact lists (:class:`NextContacts`): who to contact in
    the week from the as-of day, why and through which channel, from the transactions, the
    customers (join dates, birthdays, reachability), the points ledger and the items with the
    Check's basket rules. Nobody in a holdout is in them: neither this cycle's (still the
    comparison) nor the next one's, drawn as :func:`write` draws it. Unchanged without
    transactions or customers. The reasons are worded in ``language`` (en, zh). ``exclude``:
    more customers never contacted; ``options``: ``cap`` and ``expiry`` of
    :func:`closedloop.contacts.contact_list`."""
    if data.transactions is None or data.customers is None:
        return result
    data = on_engine(result.plan, data)
    plan, holdout = result.plan, []
    if result.assignments is not None:
        now = result.assignments
        holdout.append(now.loc[now["arm"].astype(str) == plan.control, "customer_id"])
        if next_plan.status == "ready":
            upcoming = next_assignments(now, next_plan)
            holdout.append(
                upcoming.loc[upcoming["arm"].astype(str) == next_plan.control, "customer_id"]
            )
    if exclude is not None:
        holdout.append(contacts_mod.exclusion_ids(exclude).to_series())
    ids = contacts_mod.exclusion_ids(pd.concat(holdout) if holdout else None)
    extra = {}
    if data.items is not None and result.cross_sell is not None:
        extra = {"items": data.items, "basket_rules": result.cross_sell}
    week = contacts_mod.contact_list(
        data.transactions,
        data.customers,
        result.asof,
        points_ledger=data.points,
        exclude=ids,
        language=language,
        **extra,
        **options,
    )
    found = NextContacts(week=week, holdout=int(week.dropped["excluded"]))
    return replace(result, contacts=found)


def next_assignments(assignments: pd.DataFrame, next_plan: Plan) -> pd.DataFrame:
    """The next cycle's assignment list: this cycle's customers in the next plan's audience
    segments (all of them without segments), randomised into its arms within segments."""
    audience = assignments
    segments = next_plan.audience.segments
    if segments and "segment" in audience.columns:
        audience = audience[audience["segment"].astype(str).isin(segments)]
    stratum = "segment" if "segment" in audience.columns else None
    seed = zlib.crc32(f"{next_plan.campaign}:{next_plan.cycle}".encode())
    return assign.randomise(audience, next_plan.arms, seed=seed, stratum=stratum)


def _check_arms(plan: Plan, assignments: pd.DataFrame) -> None:
    """The arms in the data are the plan's arms: a renamed arm must not pass as a missing one."""
    found = set(assignments["arm"].unique())
    extra, absent = sorted(found - set(plan.arms)), sorted(set(plan.arms) - found)
    if extra or absent:
        source = assignments.attrs["quality"]["source"]
        rows = assignments[assignments["arm"].isin(extra)] if extra else assignments.head(0)
        parts = [f"arm(s) {extra} are not in the plan" if extra else ""]
        parts.append(f"plan arm(s) {absent} have nobody assigned" if absent else "")
        raise DataError(
            source,
            "; ".join(p for p in parts if p) + f" (plan arms: {sorted(plan.arms)})",
            column="arm",
            rows=rows,
            n_bad=len(rows),
        )


def _check_period_covered(tx: pd.DataFrame, plan: Plan, asof: pd.Timestamp) -> None:
    """Outcomes counted from transactions need transactions of the period: a file with none (an
    export made before the period, the wrong file) would make every customer a non-converter."""
    start, last = pd.Timestamp(plan.period.start), min(asof, as_of(plan))
    dates = tx["order_date"]
    inside = (dates >= start) & (dates < summaries.end_of_day(last))
    if inside.any():
        return
    quality = tx.attrs.get("quality", {})
    span = f"{quality.get('date_min')} to {quality.get('date_max')}"
    raise DataError(
        quality.get("source", "transactions"),
        f"no transactions in the campaign period {start:%Y-%m-%d} to {last:%Y-%m-%d} (the file"
        f" runs from {span}): the outcomes are counted from them, so every customer would count"
        " as not converted; give the transactions of the period, or an outcomes file",
        column="order_date",
    )


def _outcomes_from_transactions(tx: pd.DataFrame, plan: Plan, asof=None) -> pd.DataFrame:
    """Each customer's campaign outcome over the plan's period (inclusive days; up to the end
    of the ``asof`` day when that comes first): ``orders`` (purchases), ``revenue`` (net of
    refunds) and ``converted``: at least one purchase and a positive net spend, so a refund
    never makes a conversion."""
    end = plan.period.end if asof is None else min(as_of(plan, asof), as_of(plan))
    per = summaries.per_customer(tx, end, start=plan.period.start, source="transactions")
    per = per[["orders", "revenue"]].reset_index()
    per["converted"] = ((per["orders"] > 0) & (per["revenue"] > 0)).astype(int)
    return per


def _quality(name: str, frame: pd.DataFrame, coverage: tuple[int, int] | None = None) -> dict:
    q = frame.attrs.get("quality", {})
    covered, assigned = coverage if coverage else (None, None)
    dropped = dict(q.get("dropped", {}))
    later = dropped.pop("dated after asof", 0)  # the as-of rule, not a fault of the data
    return {
        "table": name,
        "source": Path(q.get("source", "")).name,
        "rows_read": q.get("rows_read", len(frame)),
        "rows_kept": q.get("rows_kept", len(frame)),
        "rows_dropped": sum(dropped.values()),
        "after_asof": later,
        "refunds": q.get("refunds", 0),
        "outliers": q.get("outliers", 0),
        "assigned_covered": covered,
        "coverage": covered / assigned if assigned else None,
        "first_date": q.get("date_min"),
        "last_date": q.get("date_max"),
    }
