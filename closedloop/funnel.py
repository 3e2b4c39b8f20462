"""Funnels and channel attribution: closed-loop measurement by stage and by source (闭环营销).

The Check step of PDCA looks at "funnel conversion at every stage" against the plan, and the
closed loop asks "which channel brought the most customers, and the most value" (渠道二维码:
the source of every contact is recorded at the scan). Three calls answer that:

- :func:`funnel` — entities reaching each stage, step and cumulative conversion with Beta credible
  intervals, drop-off and time between stages, optionally by channel;
- :func:`funnel_vs_targets` — each stage's rate against the plan's target, with the posterior
  probability that the target was met;
- :func:`attribution` — leads, customers, revenue, conversion and cost per acquisition by source
  channel under a first-touch, last-touch or position-based (U-shaped) model.

Raw rows are reduced once with a narwhals group-by (per entity: first time at each stage; per
customer: first purchase and net revenue since the first touch, from
:func:`closedloop.summaries.since`), so the same code runs on pandas or polars; the ordered-funnel
logic is vectorised over the per-entity summary, and the Beta quantiles come from scipy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import narwhals as nw
import numpy as np
import pandas as pd
import pyarrow as pa

from closedloop import summaries
from closedloop._frames import (
    alongside,
    bounds,
    collect,
    eager_frame,
    epoch_microseconds,
    lazy_frame,
    require,
)
from closedloop.errors import DataError
from closedloop.lift import CREDIBLE_LEVEL
from closedloop.lift_models import rate_interval as _beta_rate
from closedloop.priors import PRIOR, Prior

__all__ = [
    "CREDIBLE_LEVEL",
    "FUNNEL_COLUMNS",
    "POSITION_WEIGHTS",
    "SLOW_QUANTILE",
    "attribution",
    "funnel",
    "funnel_vs_targets",
]

#: the slow-tail quantile reported beside the median time between stages
SLOW_QUANTILE = 0.9
#: position-based (U-shaped) credit: first touch, all middle touches together, last touch
POSITION_WEIGHTS = (0.4, 0.2, 0.4)

FUNNEL_COLUMNS = [
    "stage",
    "entities",
    "step_rate",
    "step_rate_low",
    "step_rate_high",
    "cum_rate",
    "cum_rate_low",
    "cum_rate_high",
    "dropped",
    "median_time_from_prev",
    "p90_time_from_prev",
]
_EVENT_COLUMNS = ("entity_id", "stage", "timestamp")
#: up to this many distinct group values, codes come from comparisons (faster than a lookup)
_FEW_GROUPS = 16
_MICROSECOND = pd.Timedelta(microseconds=1)


def funnel(
    events,
    stages: Sequence[str],
    by: str | Sequence[str] | None = None,
    window=None,
    ordered: bool = True,
    *,
    prior: Prior = PRIOR,
    level: float = CREDIBLE_LEVEL,
) -> pd.DataFrame:
    """Stage counts and conversion (转化率) at every stage, optionally by channel.

    ``events`` is either a long event log (``entity_id, stage, timestamp`` and any ``by`` columns,
    as from :func:`closedloop.io.read_events`) or a wide frame with one 0/1 (or bool) column per
    stage and one row per entity (as Hillstrom's ``visit, conversion``). ``stages`` lists the
    funnel in order; the first stage defines who entered. ``window`` (a ``Timedelta`` or string
    such as ``"7D"``) limits each entity's funnel to that long after its entry; long logs only.

    How events count (long log):

    - the funnel's population is the entities with an event at the first stage; they enter at
      their *earliest* first-stage event, and their ``by`` group is taken from that event;
      events of entities that never reached the first stage are ignored;
    - a repeated stage counts once, at its *earliest* occurrence; later repeats change nothing;
    - events later than entry + ``window`` are ignored;
    - ``ordered=True``: an entity is at stage k when it is at stage k-1 and its earliest stage-k
      event is not before its earliest stage-(k-1) event (equal times are in order). An
      out-of-order stage stops the entity there, even if the stage repeats later; an entity that
      skips a stage is not counted at any later stage;
    - ``ordered=False``: an entity is at stage k when it entered and has a stage-k event at all,
      in any order; skipping a stage does not matter, so counts need not fall stage by stage.

    A wide frame follows the same rules with flags for events: ordered, a flag counts only when
    all earlier flags are set; unordered, every set flag of an entrant counts.

    Output: one row per (group, stage), in funnel order. ``entities`` reached the stage;
    ``step_rate`` is the share of the previous stage's entities that also reached this one and
    ``dropped`` the number that did not (ordered: simply the previous count minus this one);
    ``cum_rate`` is ``entities`` over the first stage's count. The first stage has rates 1 and
    nothing dropped. Rates come with equal-tailed ``level`` credible intervals from the Beta
    posterior Beta(alpha + x, beta + n - x) under the ``prior``'s Beta(alpha, beta) (a
    :class:`closedloop.priors.Prior`, Jeffreys' Beta(1/2, 1/2) by default); the point value is the observed
    share x / n. A stage nobody reached has rate 0 and a positive upper bound; a rate whose
    denominator is 0 (after a stage nobody reached) is undefined: NaN. With ``by`` and no entrant
    at all the frame is empty. ``median_time_from_prev`` and ``p90_time_from_prev`` are
    Timedeltas from the previous stage over the entities counted at both (unordered: may be
    negative when a stage came first); NaT for a wide frame.
    """
    stages = _check_stages(stages)
    by = [by] if isinstance(by, str) else list(by or [])
    frame = lazy_frame(events, "funnel events")
    if "stage" in frame.collect_schema():
        per_entity, labels = _entities_from_log(frame, stages, by, window, ordered)
    else:
        if window is not None:
            raise DataError(
                "funnel events",
                "a window needs a long event log with timestamps (entity_id, stage, timestamp);"
                " a wide frame of stage flags has no times",
                column="stage",
            )
        per_entity, labels = _entities_from_flags(frame, stages, by, ordered), None
    return _summarise(per_entity, stages, by, labels, prior, level)


def funnel_vs_targets(
    funnel: pd.DataFrame,
    targets: Mapping[str, float],
    rate: str = "cum_rate",
    *,
    prior: Prior = PRIOR,
) -> pd.DataFrame:
    """Each targeted stage against the plan: actual, target, met, and P(rate ≥ target).

    ``targets`` maps stage → target rate, as the plan's ``targets.funnel``. ``rate`` says what the
    targets measure: ``"cum_rate"`` (share of the first stage, the plan's convention) or
    ``"step_rate"`` (share of the previous stage). ``met`` compares the observed rate;
    ``p_met`` is the posterior probability that the true rate is at least the target, from the
    same Beta posterior as the funnel's intervals, Beta(alpha + x, beta + n - x) under the
    ``prior`` (the Beta survival function, ``scipy.special.betaincc``, as ``scipy.stats.beta.sf``).
    """
    from scipy import special

    if rate not in ("cum_rate", "step_rate"):
        raise DataError("funnel targets", f"rate must be 'cum_rate' or 'step_rate', not {rate!r}")
    missing = [c for c in FUNNEL_COLUMNS if c not in funnel.columns]
    if missing:
        raise DataError(
            "funnel", f"not a funnel() result: column(s) {', '.join(missing)} missing", missing[0]
        )
    present = list(dict.fromkeys(funnel["stage"]))
    unknown = [s for s in targets if s not in present]
    if unknown:
        raise DataError(
            "funnel targets",
            f"target stage(s) {', '.join(map(repr, unknown))} not in the funnel;"
            f" its stages: {', '.join(present)}",
            column="stage",
        )
    by = list(funnel.columns[: list(funnel.columns).index("stage")])
    frame = funnel.reset_index(drop=True)
    if by:
        grouped = frame.groupby(by, sort=False, dropna=False)["entities"]
        entered, previous = grouped.transform("first"), grouped.shift(1)
    else:
        entered, previous = frame["entities"].iloc[0], frame["entities"].shift(1)
    if rate == "cum_rate":
        trials, successes = entered, frame["entities"]
    else:
        trials, successes = previous, previous - frame["dropped"]
    keep = frame["stage"].isin(list(targets)).to_numpy()
    n = np.broadcast_to(np.asarray(trials, dtype=float), (len(frame),))[keep]
    x = np.asarray(successes, dtype=float)[keep]
    out = frame.loc[keep, [*by, "stage"]].reset_index(drop=True)
    out["actual"] = frame.loc[keep, rate].to_numpy()
    out["target"] = out["stage"].map(dict(targets)).astype(float)
    out["met"] = out["actual"] >= out["target"]
    with np.errstate(invalid="ignore"):
        p_met = special.betaincc(prior.alpha + x, prior.beta + n - x, out["target"].to_numpy())
    out["p_met"] = np.where(np.isnan(out["actual"]), np.nan, p_met)
    return out


def attribution(
    events_or_customers,
    transactions,
    model: str = "first",
    costs: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Which channel brought the most customers, and the most value: credit by source channel.

    ``events_or_customers`` is either an event log (``entity_id, timestamp, channel`` and
    optionally ``customer_id``; every event with a channel is a touch) or a customer table
    (``customer_id, source_channel`` and optionally ``join_date``), where each customer has one
    source and every model gives the same answer. A lead converts when its customer has a
    transaction at or after its first touch (customer table: on or after ``join_date``, or any
    transaction without it); ``revenue`` sums those transactions. ``customer_id`` links events to
    transactions; where it is missing or absent, ``entity_id`` stands in for it.

    ``model`` splits each lead's credit over its touches up to its first purchase (all touches
    when it never bought): ``"first"`` (all to the first touch), ``"last"`` (all to the last) or
    ``"position"`` (U-shaped: :data:`POSITION_WEIGHTS` — 40% first, 40% last, 20% shared by the
    middle touches; two touches get half each). ``leads``, ``customers`` and ``revenue`` are sums
    of credit, so they can be fractional under ``"position"``. ``conversion`` is customers over
    leads. ``costs`` maps channel → total spend over the period; it adds ``cost`` and
    ``cost_per_acquisition`` (spend per attributed customer; NaN with no customer), and a channel
    that spent but brought no lead still gets a row.

    Both tables may be pandas or polars frames, or Spark DataFrames (or another lazy frame):
    then the paths are ordered and credited on the engine, and only the channels' sums return.
    """
    if model not in ("first", "last", "position"):
        raise DataError(
            "attribution", f"model must be 'first', 'last' or 'position', not {model!r}"
        )
    leads = _rows(events_or_customers, "attribution leads")
    tx = _rows(transactions, "transactions")
    require(tx, ("customer_id", "order_date", "amount"), "transactions")
    columns = set(leads.collect_schema().names())
    if {"entity_id", "timestamp", "channel"} <= columns:
        touches = _touches_from_log(leads)
    elif {"customer_id", "source_channel"} <= columns:
        touches = _touches_from_customers(leads)
    else:
        raise DataError(
            "attribution leads",
            "expected an event log (entity_id, timestamp, channel) or a customer table"
            f" (customer_id, source_channel); found: {', '.join(sorted(columns))}",
        )
    credit = _credit(touches, tx, model)
    out = collect(credit.group_by("channel").agg(nw.col("leads", "customers", "revenue").sum()))
    if costs is not None:
        spent = pd.DataFrame({"channel": list(costs), "cost": [float(v) for v in costs.values()]})
        out = out.merge(spent.astype({"channel": out["channel"].dtype}), on="channel", how="outer")
        out = out.fillna({"leads": 0.0, "customers": 0.0, "revenue": 0.0})
    out["conversion"] = out["customers"] / out["leads"].where(out["leads"] > 0)
    if costs is not None:
        out["cost_per_acquisition"] = out["cost"] / out["customers"].where(out["customers"] > 0)
    out = out.sort_values(["customers", "revenue", "channel"], ascending=[False, False, True])
    columns = ["channel", "leads", "customers", "revenue", "conversion"]
    columns += ["cost", "cost_per_acquisition"] if costs is not None else []
    return out[columns].reset_index(drop=True)


# --- funnel internals ------------------------------------------------------------------------


def _check_stages(stages) -> list[str]:
    if isinstance(stages, str) or not len(stages):
        raise DataError("funnel stages", "give the stages as a non-empty list, in funnel order")
    stages = [str(s) for s in stages]
    repeated = sorted({s for s in stages if stages.count(s) > 1})
    if repeated:
        raise DataError("funnel stages", f"stage(s) listed twice: {', '.join(repeated)}")
    return stages


def _entities_from_log(frame, stages, by, window, ordered) -> tuple[nw.LazyFrame, dict]:
    """One group-by over the log: each entity's earliest time at every stage and entry group.

    The entry group is the group of the earliest first-stage event (ties: the smallest group
    code, missing first). Each group value is coded 1..n (0: missing) and folded with the event's
    time into one integer, ``microseconds since the log's first event x (n + 1) + code``, whose
    minimum over an entity's first-stage events carries both, so one plain ``min`` finds it on
    every engine."""
    require(frame, (*_EVENT_COLUMNS, *by), "funnel events")
    schema = frame.collect_schema()
    if schema["timestamp"] not in (nw.Datetime, nw.Date):
        raise DataError(
            "funnel events",
            f"timestamp must be a datetime column, not {schema['timestamp']}"
            " (read the log with closedloop.io.read_events)",
            column="timestamp",
        )
    if schema["timestamp"] == nw.Date:
        frame = frame.with_columns(nw.col("timestamp").cast(nw.Datetime("us")))
    events, frame = frame, epoch_microseconds(frame, "timestamp", "_us")
    at = [nw.col("stage") == s for s in stages]
    rows, missing, no_id, first, last, *present = collect(
        frame.select(
            nw.len().alias("rows"),
            nw.col("_us").null_count().alias("missing"),
            nw.col("entity_id").null_count().alias("no_id"),
            nw.col("_us").min().alias("first"),
            nw.col("_us").max().alias("last"),
            *[a.cast(nw.Int64).sum().alias(f"_n{k}") for k, a in enumerate(at)],
        )
    ).to_numpy()[0]
    if rows == 0:
        raise DataError("funnel events", "the input is empty (no rows)")
    for column, n, rule in (
        (
            "entity_id",
            no_id,
            "missing entity id: events without one would be counted as one person",
        ),
        ("timestamp", missing, "missing timestamp: an event without a time cannot be ordered"),
    ):
        if n:
            rows = collect(events.filter(nw.col(column).is_null()).head(5))
            raise DataError("funnel events", rule, column=column, rows=rows, n_bad=int(n))
    _check_stage_names(frame, stages, present)
    labels = [
        collect(frame.select(b).unique().filter(~nw.col(b).is_null()).sort(b))[b].tolist()
        for b in by
    ]
    span = int(last) - int(first) + 1
    too_many = [
        b for b, values in zip(by, labels, strict=True) if span * (len(values) + 1) >= 2**63
    ]
    if too_many:
        raise DataError(
            "funnel events",
            f"too many distinct values ({len(labels[by.index(too_many[0])]):,}) over too long a"
            f" time span ({span * _MICROSECOND}) to find each entrant's group: split"
            " the log by time or group the values",
            column=too_many[0],
        )
    since = nw.col("_us") - int(first)
    times = [f"_t{k}" for k in range(len(stages))]
    masked = [nw.when(at[k]).then(nw.col("_us")).alias(t) for k, t in enumerate(times)]
    masked += [
        nw.when(at[0]).then(since * (len(values) + 1) + _codes(b, values)).alias(f"_e{i}")
        for i, (b, values) in enumerate(zip(by, labels, strict=True))
    ]
    entries = [f"_e{i}" for i in range(len(by))]
    per = (
        frame.select("entity_id", *masked)
        .group_by("entity_id")
        .agg(nw.col(*times, *entries).min())
        .filter(~nw.col("_t0").is_null())
    )
    limit = nw.col("_t0") + pd.Timedelta(window) // _MICROSECOND if window is not None else None
    reached = [~nw.col("_t0").is_null()]
    both = [reached[0]]
    for k in range(1, len(stages)):
        t_k, t_prev = nw.col(times[k]), nw.col(times[k - 1])
        seen = ~t_k.is_null() if limit is None else ~t_k.is_null() & (t_k <= limit)
        if ordered:
            reached.append(reached[k - 1] & seen & (t_k >= t_prev))
            both.append(reached[k])
        else:
            reached.append(seen)
            both.append(reached[k - 1] & seen)
    gaps = [
        nw.when(both[k]).then(nw.col(times[k]) - nw.col(times[k - 1])).alias(f"_d{k}")
        for k in range(1, len(stages))
    ]
    per = per.select(
        *[
            (nw.col(e) % (len(values) + 1)).cast(nw.Int64).alias(b)
            for e, b, values in zip(entries, by, labels, strict=True)
        ],
        *[r.fill_null(False).cast(nw.Int64).alias(f"_r{k}") for k, r in enumerate(reached)],
        *[b.fill_null(False).cast(nw.Int64).alias(f"_b{k}") for k, b in enumerate(both)],
        *gaps,
    )
    return per, dict(zip(by, labels, strict=True))


def _codes(column: str, values: list) -> nw.Expr:
    """Codes 1..n of a group column's values, 0 for a missing value."""
    col = nw.col(column)
    if len(values) <= _FEW_GROUPS:  # comparisons are faster than a lookup
        return nw.sum_horizontal(
            nw.lit(0), *[(col == v).cast(nw.Int64) * (i + 1) for i, v in enumerate(values)]
        )
    return col.replace_strict(
        values, range(1, len(values) + 1), default=0, return_dtype=nw.Int64
    ).fill_null(0)


def _check_stage_names(frame, stages, present) -> None:
    """A stage with no event at all is a typo unless the stage column declares it (categorical)."""
    absent = [s for s, n in zip(stages, present, strict=True) if n == 0]
    if not absent:
        return
    dtype = frame.collect_schema()["stage"]
    declared = set()
    if isinstance(dtype, nw.Enum):
        declared = set(map(str, dtype.categories))
    elif dtype == nw.Categorical:
        declared = set(
            map(str, collect(frame.select(nw.col("stage").cat.get_categories()))["stage"])
        )
    unknown = [s for s in absent if s not in declared]
    if unknown:
        found = collect(frame.select("stage").unique().filter(~nw.col("stage").is_null()))
        raise DataError(
            "funnel events",
            f"unknown stage(s) {', '.join(map(repr, unknown))}: no event has them; stages in"
            f" the log: {', '.join(sorted(map(str, found['stage'])))} (to report a stage nobody"
            " has reached yet, make stage a categorical column that lists it)",
            column="stage",
        )


def _entities_from_flags(frame, stages, by, ordered) -> nw.LazyFrame:
    """One row per entity with a 0/1 (or bool) column per stage."""
    names = frame.collect_schema().names()
    missing = [s for s in stages if s not in names]
    if missing:
        raise DataError(
            "funnel events",
            f"unknown stage(s) {', '.join(map(repr, missing))}: expected a long event log"
            " (entity_id, stage, timestamp) or a wide frame with one 0/1 column per stage;"
            f" found: {', '.join(names)}",
            column=missing[0],
        )
    require(frame, by, "funnel events")
    bad = [~nw.col(s).cast(nw.Float64).is_in([0.0, 1.0]) | nw.col(s).is_null() for s in stages]
    rows, *counts = collect(
        frame.select(
            nw.len().alias("rows"),
            *[b.cast(nw.Int64).sum().alias(f"_x{k}") for k, b in enumerate(bad)],
        )
    ).to_numpy()[0]
    if rows == 0:
        raise DataError("funnel events", "the input is empty (no rows)")
    for s, b, n in zip(stages, bad, counts, strict=True):
        if n:
            raise DataError(
                "funnel events",
                "a stage flag must be 0/1 or true/false",
                column=s,
                rows=collect(frame.filter(b).head(5)),
                n_bad=int(n),
            )
    flags = [nw.col(s).cast(nw.Float64) == 1.0 for s in stages]
    reached, both = [flags[0]], [flags[0]]
    for k in range(1, len(stages)):
        reached.append((reached[k - 1] if ordered else flags[0]) & flags[k])
        both.append(reached[k - 1] & reached[k])
    return frame.filter(flags[0]).select(
        *by,
        *[r.cast(nw.Int64).alias(f"_r{k}") for k, r in enumerate(reached)],
        *[b.cast(nw.Int64).alias(f"_b{k}") for k, b in enumerate(both)],
        *[nw.lit(None, nw.Float64).alias(f"_d{k}") for k in range(1, len(stages))],
    )


def _summarise(per, stages, by, labels, prior, level) -> pd.DataFrame:
    """Second group-by: counts and time quantiles per group and stage, then Beta intervals.

    From a log the group columns hold codes (``labels``: the values behind codes 1..n, 0 is
    missing), turned back into values on the small summary."""
    k_all = range(len(stages))
    aggs = [nw.col(f"_r{k}").sum().alias(f"n{k}") for k in k_all]
    aggs += [nw.col(f"_b{k}").sum().alias(f"x{k}") for k in k_all]
    for k in k_all[1:]:
        gap = nw.col(f"_d{k}")
        aggs += [
            gap.median().alias(f"m{k}"),
            gap.quantile(SLOW_QUANTILE, interpolation="linear").alias(f"q{k}"),
        ]
    per = per.with_columns(nw.col(f"_d{k}").cast(nw.Float64) for k in k_all[1:])
    summary = collect(per.group_by(*by).agg(*aggs) if by else per.select(*aggs))
    for b, values in (labels or {}).items():
        summary[b] = pd.array([None, *values]).take(summary[b].to_numpy().astype("int64"))
    if by:
        summary = summary.sort_values(by, na_position="last").reset_index(drop=True)
    rows = []
    for k, stage in enumerate(stages):
        part = summary[by].copy()
        part["stage"] = stage
        part["entities"] = summary[f"n{k}"].astype("int64")
        prev = summary[f"n{k - 1}"] if k else summary["n0"]
        part["_x"] = summary[f"x{k}"].astype(float)
        part["_n"] = prev.astype(float)
        part["_entered"] = summary["n0"].astype(float)
        part["dropped"] = (prev - summary[f"x{k}"]).astype("int64")
        for name, letter in (("median_time_from_prev", "m"), ("p90_time_from_prev", "q")):
            micro = summary[f"{letter}{k}"] if k else pd.Series(np.nan, index=summary.index)
            part[name] = pd.to_timedelta(micro.astype(float).round(), unit="us").astype(
                "timedelta64[ns]"
            )
        part["_group"], part["_k"] = np.arange(len(summary)), k
        rows.append(part)
    long = pd.concat(rows, ignore_index=True).sort_values(["_group", "_k"], kind="stable")
    long = long.reset_index(drop=True)
    first = (long["stage"] == stages[0]).to_numpy()
    step = _beta_rate(long["_x"], long["_n"], prior, level)
    cum = _beta_rate(long["entities"].astype(float), long["_entered"], prior, level)
    for name, (rate, low, high) in (("step_rate", step), ("cum_rate", cum)):
        defined = ~np.isnan(rate)
        long[name] = np.where(first & defined, 1.0, rate)
        long[f"{name}_low"] = np.where(first & defined, 1.0, low)
        long[f"{name}_high"] = np.where(first & defined, 1.0, high)
    if not len(long) and by:
        return pd.DataFrame(columns=[*by, *FUNNEL_COLUMNS])
    return long[[*by, *FUNNEL_COLUMNS]]


# --- attribution internals -------------------------------------------------------------------


def _rows(data, source: str):
    """Leads or transactions as narwhals: a pandas or polars frame eagerly (it is in memory
    already), a Spark DataFrame or another lazy frame lazily, so the paths are built where the
    rows are and only the channels' sums come back."""
    frame = nw.from_native(data, pass_through=True)
    if isinstance(frame, nw.LazyFrame):
        return frame
    return eager_frame(data, source)


def _touches_from_log(frame):
    kind = frame.collect_schema()["timestamp"]
    if kind not in (nw.Datetime, nw.Date):
        raise DataError(
            "attribution leads",
            f"timestamp must be a datetime column, not {kind}",
            column="timestamp",
        )
    unit = nw.col("entity_id").cast(nw.String)
    if "customer_id" in frame.columns:
        unit = nw.coalesce(nw.col("customer_id").cast(nw.String), unit)
    return frame.filter(~nw.col("channel").is_null()).select(
        unit.alias("customer_id"), "timestamp", nw.col("channel").cast(nw.String)
    )


def _touches_from_customers(frame):
    since = (
        nw.col("join_date")
        if "join_date" in frame.collect_schema().names()
        else nw.lit(None, nw.Datetime())
    )
    return frame.filter(~nw.col("source_channel").is_null()).select(
        nw.col("customer_id").cast(nw.String),
        since.cast(nw.Datetime()).alias("timestamp"),
        nw.col("source_channel").cast(nw.String).alias("channel"),
    )


def _credit(touches, tx, model):
    """Per touch: its share of the lead's credit, and whether / how much the lead bought."""
    start = touches.group_by("customer_id").agg(nw.col("timestamp").min().alias("start"))
    # every purchase given counts: the transactions' last day is the attribution's asof
    since = summaries.since(
        tx.to_native(),
        start.to_native(),
        bounds(tx.to_native(), "order_date")[1],
        source="transactions",
    )
    since = since[since["orders"] > 0].reset_index()
    since = since[["customer_id", "first_purchase", "revenue"]]
    if isinstance(touches, nw.DataFrame):
        table = pa.Table.from_pandas(since, preserve_index=False)
        bought = nw.from_arrow(table, backend=touches.implementation)
    else:
        bought = alongside(since, touches, "attribution purchases")
    # each lead's touches in time order (undated last, ties by channel), counted per lead
    order = ["_undated", "timestamp", "channel"]
    path = (
        touches.join(bought.rename({"first_purchase": "_first_buy"}), on="customer_id", how="left")
        .filter(
            nw.col("_first_buy").is_null()
            | nw.col("timestamp").is_null()
            | (nw.col("timestamp") <= nw.col("_first_buy"))
        )
        .with_columns(nw.col("timestamp").is_null().alias("_undated"))
        .with_columns(
            (~nw.col("_first_buy").is_null()).cast(nw.Float64).alias("converted"),
            nw.col("revenue").fill_null(0.0),
            nw.col("channel").cum_count().over("customer_id", order_by=order).alias("_rank"),
            nw.len().over("customer_id").alias("_touches"),
        )
    )
    first, middle, last = POSITION_WEIGHTS
    is_first, is_last = nw.col("_rank") == 1, nw.col("_rank") == nw.col("_touches")
    if model == "first":
        weight = is_first.cast(nw.Float64)
    elif model == "last":
        weight = is_last.cast(nw.Float64)
    else:
        n = nw.col("_touches").cast(nw.Float64)
        weight = (
            nw.when(n == 1)
            .then(1.0)
            .when(n == 2)
            .then(0.5)
            .when(is_first)
            .then(first)
            .when(is_last)
            .then(last)
            .otherwise(middle / (n - 2))
        )
    return path.select(
        "channel",
        weight.alias("leads"),
        (weight * nw.col("converted")).alias("customers"),
        (weight * nw.col("revenue")).alias("revenue"),
    )
