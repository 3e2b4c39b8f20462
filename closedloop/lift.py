"""Campaign effect: Bayesian lift of each arm over the holdout (闭环营销's "judge against those
who did not get the campaign"), the probability that each arm is best, the campaign's ROI and a
sample-ratio check. Lift by segment (分群) is in :mod:`closedloop.lift_segments`, the models in
:mod:`closedloop.lift_models`, their priors in :mod:`closedloop.priors`.

Raw rows are checked in one pass and reduced in one narwhals group-by to per-arm sufficient
statistics (customers, sums, converters, converters' sum of logs and of squared logs ...), run
where the data lives: pandas (aggregated by DuckDB), polars, a DuckDB relation or a PySpark
DataFrame (:mod:`closedloop._frames`), so a 100M-row campaign costs two scans. The models run on
those summaries by Monte Carlo from their posteriors (seeded, so a seed gives the same answer
every time): Beta-Binomial for **binary** metrics, a normal posterior on the mean per customer
from (n, sum, sum of squares) for **value** metrics (GrowthBook's and Eppo's model; right whatever
the shape of the order values), the reference normal posterior for **normal** metrics.

The lift of an arm is its posterior mean minus the control's (``abs_lift``) and that over the
control's (``rel_lift``); ``p_better`` is P(arm > control), ``expected_loss`` is
E[max(control - arm, 0)], the expected cost, in the metric's units per customer, of choosing the
arm if it is in fact worse. Points (``mean``, ``abs_lift``, ``rel_lift``) are the observed values;
intervals are equal-tailed by default, highest-density (HDI) on request. For value metrics the
observed difference is the centre of the posterior of the difference and the observed ratio the
median of the ratio's posterior (a little above it where the holdout's posterior reaches 0 and
the ratio is taken given a positive holdout mean, :func:`_positive_part`), so a point lies inside
its interval.

Edge cases are answered, not NaN: an arm with few buyers gets a wide interval and a ``note``; a
relative lift over a holdout whose mean is 0 is undefined (``rel_lift`` and its interval NaN, with
a note), while the absolute lift and its interval are always defined. A relative lift is also
not estimable (NaN, with a note) when the holdout and the arm have fewer than
:data:`MIN_RATIO_EVENTS` conversions (10) or buyers (20) between them. The rule reads their
total, not each count: given the total, the arm's share of the conversions is binomial with a
probability that depends on the ratio of the two rates alone (the conditional test of two
Poisson means, Przyborowski and Wilenski, Biometrika 31, 1940), so a rule on the total selects
campaigns without biasing their ratio, where a rule on each count keeps the campaigns whose
holdout and arm were both lucky (in ``benchmarks/bench_calibration.py``, with at most 3 holdout
conversions expected, 5 or more in each left intervals covering 98-100%; 10 between them
covers 95%). With fewer, the ratio's posterior is the prior's more than the data's (its P(met)
was 13-22 points from the observed frequency). A revenue ratio needs twice as many buyers: below
20 between two arms the variance floor's pseudo-buyers (:data:`closedloop.lift_models.PSEUDO_BUYERS`,
10 an arm) and not the buyers set the width of its interval. The relative lift of a metric that
cannot be negative (a rate, revenue without refunds) is never below -100%: an arm's draw of its
mean below 0 counts as a fall of 100%.

**Variance reduction (CUPED)**: ``covariates`` maps a metric to a pre-period column (the same
customer's revenue or purchases before the campaign). Each outcome is adjusted as
y - theta (x - mean x), theta = cov(y, x) / var(x) pooled within arms (Deng, Xu, Kohavi and
Walker, "Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment
Data", WSDM 2013), and the lift is read from a normal posterior on the adjusted means; the
``variance_reduction`` column is 1 - Var(adjusted lift) / Var(unadjusted lift), so the interval
is narrower by 1 - sqrt(1 - variance_reduction). :func:`pre_period` builds those columns from
transactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import narwhals as nw
import numpy as np
import pandas as pd

from closedloop._frames import collect, lazy_frame, require
from closedloop.errors import DataError
from closedloop.lift_models import (
    KINDS,
    Kind,
    mean_interval,
    moments,
    normal_draws,
    posterior_means,
)
from closedloop.priors import PRIOR, Prior

__all__ = [
    "CREDIBLE_LEVEL",
    "DRAWS",
    "KINDS",
    "LIFT_COLUMNS",
    "MIN_RATIO_EVENTS",
    "NOT_CREDIBLY_POSITIVE",
    "SRM_ALPHA",
    "UNDEFINED_NOTE",
    "Lift",
    "PosteriorDraws",
    "SampleRatio",
    "bayesian_lift",
    "pre_period",
    "prob_best",
    "prob_better",
    "roi",
    "srm_check",
]

Interval = Literal["equal-tailed", "hdi"]


#: probability mass of the credible intervals
CREDIBLE_LEVEL = 0.95
#: Monte Carlo draws from each posterior
DRAWS = 20_000
#: sample-ratio mismatch is declared below this p-value (strict: a real SRM is rarely subtle)
SRM_ALPHA = 0.001
#: columns never taken as metrics when ``metrics`` is not given
ID_COLUMNS = ("customer_id",)
#: a value metric with fewer buyers than this in the arm or the holdout gets a ``note``
MIN_BUYERS = 30
#: a relative lift needs at least this many conversions (binary metrics) or buyers (value and
#: normal metrics) in the holdout and the arm together; below it the ratio is not estimable
MIN_RATIO_EVENTS = {"conversion": 10, "buyer": 20}
#: the notes' words for a relative lift without estimate, which the scorecard's basis repeats
UNDEFINED_NOTE = "relative lift undefined: the holdout's mean"
NOT_CREDIBLY_POSITIVE = "is not credibly above 0"
#: the largest metric value taken: squared and summed over 10^8 customers it stays finite
MAX_METRIC = 1e100

LIFT_COLUMNS = [
    "arm",
    "metric",
    "kind",
    "customers",
    "control_customers",
    "mean",
    "mean_low",
    "mean_high",
    "control_mean",
    "control_mean_low",
    "control_mean_high",
    "abs_lift",
    "abs_lift_low",
    "abs_lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "p_better",
    "expected_loss",
    "incremental",
    "variance_reduction",
    "note",
]


@dataclass(frozen=True, eq=False)
class PosteriorDraws:
    """Posterior draws of each lift-table row's absolute and relative lift and of its control's
    mean, keyed by the row's ``keys`` values (segments, arm, metric): ``abs_lift[key]`` is an array
    of draws. ``level`` and ``interval`` are those of the table's credible intervals. Compares by
    identity (it holds arrays)."""

    keys: list[str]
    level: float
    interval: str
    abs_lift: dict[tuple, np.ndarray] = field(repr=False)
    rel_lift: dict[tuple, np.ndarray] = field(repr=False)
    control: dict[tuple, np.ndarray] = field(repr=False)


@dataclass(frozen=True, eq=False)
class Lift:
    """What :func:`bayesian_lift` and :func:`closedloop.lift_segments.lift_by_segment` return:
    the lift table and the posterior draws behind it (for :func:`roi` and the figures).

    ``table`` has one row per (segment, arm, metric), the columns :data:`LIFT_COLUMNS`, after
    the segment columns of :func:`~closedloop.lift_segments.lift_by_segment` (which adds
    ``small`` and ``rank``):

    - ``arm, metric, kind``: the treated arm, the metric and its kind (binary, value, normal);
    - ``customers, control_customers``: customers in the arm and in its control;
    - ``mean, control_mean``: the metric's observed mean per customer in the arm and the control,
      each with its 95% interval ``_low, _high`` (:func:`closedloop.lift_models.mean_interval`:
      Beta for a rate, skewness-corrected for revenue);
    - ``abs_lift`` (mean - control_mean), ``rel_lift`` (abs_lift / control_mean), each with its
      credible interval ``_low, _high``;
    - ``p_better``: P(arm > control); ``expected_loss``: E[max(control - arm, 0)];
    - ``incremental``: abs_lift x customers, the conversions or revenue the arm added;
    - ``variance_reduction``: with a covariate (CUPED), 1 - Var(adjusted lift) / Var(lift),
      else 0; under a covariate ``abs_lift`` is the adjusted difference (``mean`` and
      ``control_mean`` stay the observed means);
    - ``note``: why a row should be read with care ("3 buyers in holdout: ..."), or "".

    No numeric column is ever NaN or infinite except ``rel_lift`` and its interval when the
    holdout's mean is 0 (undefined) or the holdout and the arm have fewer than
    :data:`MIN_RATIO_EVENTS` conversions or buyers together (not estimable; the note says so), and
    every lift column of a segment with no holdout customers.

    ``draws`` holds the posterior draws of every row, keyed by its ``draws.keys`` columns.
    """

    table: pd.DataFrame
    draws: PosteriorDraws

    def filter(self, rows) -> Lift:
        """The rows of the table where the boolean mask ``rows`` is True, with the same draws
        (e.g. one metric for :func:`roi`: ``lift.filter(lift.table["metric"] == "revenue")``)."""
        return Lift(self.table.loc[rows], self.draws)


# --- public API ------------------------------------------------------------------------------


def bayesian_lift(
    data,
    arm: str = "arm",
    control: str = "control",
    metrics: str | Sequence[str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    prior: Prior = PRIOR,
    seed: int = 0,
    *,
    level: float = CREDIBLE_LEVEL,
    interval: Interval = "equal-tailed",
    draws: int = DRAWS,
    covariates: Mapping[str, str] | None = None,
) -> Lift:
    """Each arm against the control arm: posterior lift, credible interval, P(better), expected
    loss and incremental conversions or revenue (the models: :mod:`closedloop.lift_models`).

    ``data`` has one row per customer: the ``arm`` column and one column per metric (the
    outcomes table of the data contract; pandas, polars, DuckDB or Spark). ``metrics`` defaults to every numeric
    or boolean column except ``arm`` and ``customer_id``. A metric's kind is ``binary`` when every
    value is 0 or 1, ``value`` when every value is >= 0, ``normal`` otherwise; ``kinds`` overrides
    it per metric. Returns a :class:`Lift`: its ``table`` has one row per (arm, metric) in
    :data:`LIFT_COLUMNS` order, arms sorted, metrics in the given order; its ``draws`` are the
    posterior draws for :func:`roi` and the figures.

    ``covariates`` (CUPED) maps metrics to pre-period columns of ``data``, e.g.
    ``{"revenue": "pre_revenue", "converted": "pre_orders"}`` (see :func:`pre_period`); those
    metrics are adjusted by their covariate and read from a normal posterior on the adjusted
    means, with ``variance_reduction`` saying how much was gained.
    """
    return compare_arms(
        data, [], arm, control, metrics, kinds, prior, seed, level, interval, draws, covariates
    )


def prob_best(
    data,
    arm: str = "arm",
    metrics: str | Sequence[str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    prior: Prior = PRIOR,
    seed: int = 0,
    *,
    draws: int = DRAWS,
) -> pd.DataFrame:
    """Multi-arm: the posterior probability that each arm (the control included) has the highest
    mean of each metric, from the same posteriors as :func:`bayesian_lift`.
    Output: ``arm, metric, mean, p_best``, one row per (arm, metric)."""
    frame = lazy_frame(data, "lift data")
    metrics = _metrics(frame, metrics, [arm])
    require(frame, [arm, *metrics], "lift data")
    kinds = _kinds(frame, metrics, kinds)
    summary = sufficient_statistics(frame, [arm], metrics, kinds)
    rng = np.random.default_rng(seed)
    rows = []
    for i, metric in enumerate(metrics):
        post = posterior_means(summary, i, kinds[metric], prior, rng, draws)
        best = np.nanargmax(np.where(np.isnan(post), -np.inf, post), axis=0)
        share = np.bincount(best, minlength=len(summary)) / draws
        for j, name in enumerate(summary[arm]):
            rows.append((name, metric, summary[f"_s{i}"].iat[j] / summary["_n"].iat[j], share[j]))
    return pd.DataFrame(rows, columns=["arm", "metric", "mean", "p_best"])


def roi(
    lift: Lift,
    cost: float | Mapping[str, float],
    margin: float | Mapping[str, float] = 1.0,
    target: float | None = None,
) -> pd.DataFrame:
    """Return on the campaign's spend: ROI = incremental margin / cost, with its posterior.

    ``lift`` is the :class:`Lift` from :func:`bayesian_lift` or
    :func:`~closedloop.lift_segments.lift_by_segment` (or the rows of it from
    :meth:`Lift.filter`); ``cost`` is the cost per contacted customer, one number or per arm (as the
    plan's ``cost``); ``margin`` turns one unit of the metric into profit: the gross-margin rate
    for revenue, the value of one conversion for a binary metric; one number or per metric.
    Incremental margin = ``incremental`` x margin, cost = cost per customer x ``customers``, so
    ROI =
    abs_lift x margin / cost per customer (ROI 1 pays back the spend). Output: the lift table's
    key columns, ``customers, cost, incremental, incremental_margin, roi, roi_low, roi_high`` and, with a
    ``target``, ``target`` and ``p_target`` = P(ROI > target).
    """
    if not isinstance(lift, Lift):
        raise DataError(
            "roi",
            "pass the Lift returned by bayesian_lift or lift_by_segment (the table and its "
            f"posterior draws), not a {type(lift).__name__}",
        )
    table, posterior = lift.table, lift.draws
    keys = posterior.keys
    out = table[[*keys, "customers", "incremental"]].copy()
    per_customer = _per_arm(cost, out["arm"], "cost")
    if (per_customer <= 0).any():
        raise DataError("roi", "the cost per contacted customer must be positive", "cost")
    unit_margin = _per_arm(margin, table["metric"], "margin")
    out["cost"] = per_customer * out["customers"]
    out["incremental_margin"] = out["incremental"] * unit_margin
    out["roi"] = out["incremental_margin"] / out["cost"]
    samples = np.stack(
        [
            posterior.abs_lift[tuple(r)] * m / c
            for r, m, c in zip(
                table[keys].itertuples(index=False), unit_margin, per_customer, strict=True
            )
        ]
    )
    out["roi_low"], out["roi_high"] = credible_interval(
        samples, posterior.level, posterior.interval
    )
    if target is not None:
        out["target"] = float(target)
        out["p_target"] = (samples > target).mean(axis=1)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class SampleRatio:
    """A sample-ratio check: the table of observed vs planned split and the chi-square test.

    ``mismatch`` is True when the p-value is below ``alpha``; ``message`` says so in words a
    report can show as is, and ``warning`` is that message on a mismatch, else None."""

    table: pd.DataFrame
    chi2: float
    dof: int
    p_value: float
    alpha: float
    mismatch: bool
    message: str = field(repr=False)

    @property
    def warning(self) -> str | None:
        return self.message if self.mismatch else None


def srm_check(counts, planned: Mapping[str, float], *, arm: str = "arm", alpha: float = SRM_ALPHA):
    """Sample-ratio mismatch (SRM): do the arms' head counts match the planned allocation?

    A chi-square goodness-of-fit test of the observed counts against total x planned share
    (Pearson's statistic and ``scipy.special.chdtrc``, as ``scipy.stats.chisquare`` computes
    them, without the import of scipy.stats, which takes most of a second in a run). A mismatch means assignment or data collection is broken (customers
    lost or duplicated in one arm), and every lift read from the data is suspect; see Fabijan et
    al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019.
    ``counts``: a mapping or Series arm -> customers, or a frame with one row per customer and
    an ``arm`` column. ``planned``: arm -> planned share (normalised to sum to 1, as the plan's
    ``arms``). Returns a :class:`SampleRatio`.
    """
    from scipy import special

    observed = _arm_counts(counts, arm)
    shares = pd.Series(planned, dtype="float64")
    if shares.empty or (shares < 0).any() or shares.sum() <= 0:
        raise DataError("sample-ratio check", "planned shares must be non-negative, not all 0")
    unknown = sorted(set(observed.index) - set(shares.index))
    if unknown:
        raise DataError(
            "sample-ratio check",
            f"arm(s) {unknown} have customers but no planned share (planned: {list(shares.index)})",
        )
    shares = shares / shares.sum()
    observed = observed.reindex(shares.index, fill_value=0).astype("int64")
    total = int(observed.sum())
    if total == 0:
        raise DataError("sample-ratio check", "no customers in any arm")
    expected = shares * total
    deviations = observed.to_numpy("float64") - expected.to_numpy()
    statistic = float((deviations**2 / expected.to_numpy()).sum())
    pvalue = float(special.chdtrc(len(shares) - 1, statistic))
    table = pd.DataFrame(
        {
            "arm": shares.index.astype("str"),
            "observed": observed.to_numpy(),
            "expected": expected.to_numpy(),
            "planned_share": shares.to_numpy(),
            "observed_share": (observed / total).to_numpy(),
        }
    )
    mismatch = bool(pvalue < alpha)
    split = " / ".join(
        f"{a} {o:.1%}" for a, o in zip(table["arm"], table["observed_share"], strict=True)
    )
    plan = " / ".join(f"{p:.1%}" for p in table["planned_share"])
    stat = f"chi-square {statistic:.2f}, {len(table) - 1} df, p = {pvalue:.2g}"
    if mismatch:
        message = (
            f"Sample-ratio mismatch: the arms hold {split} of {total:,} customers against a "
            f"planned {plan} ({stat} < {alpha:g}). Assignment or data collection is broken; "
            "do not trust the lift until the cause is found."
        )
    else:
        message = (
            f"Sample ratio as planned: {split} of {total:,} customers against {plan} ({stat})."
        )
    return SampleRatio(table, statistic, len(table) - 1, pvalue, alpha, mismatch, message)


# --- aggregation: one narwhals group-by to sufficient statistics ------------------------------


def _metrics(frame: nw.LazyFrame, metrics, exclude) -> list[str]:
    if metrics is None:
        skip = {*exclude, *ID_COLUMNS}
        metrics = [
            c
            for c, dtype in frame.collect_schema().items()
            if c not in skip and (dtype.is_numeric() or dtype == nw.Boolean)
        ]
        if not metrics:
            raise DataError("lift data", "no numeric metric columns found; pass `metrics`")
        return metrics
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise DataError("lift data", "`metrics` is empty")
    return metrics


def _kinds(frame: nw.LazyFrame, metrics: list[str], kinds) -> dict[str, str]:
    """Check the rows (some, every metric numeric, no nulls, the right values for its kind) and
    infer kinds, in one pass over the rows."""
    kinds = dict(kinds or {})
    bad_kind = {m: k for m, k in kinds.items() if k not in KINDS}
    if bad_kind:
        raise DataError("lift data", f"unknown metric kind(s) {bad_kind}; use one of {KINDS}")
    schema = frame.collect_schema()
    for m in metrics:
        dtype = schema[m]
        if not (dtype.is_numeric() or dtype == nw.Boolean):
            raise DataError("lift data", f"a metric must be numeric or boolean, not {dtype}", m)
    cols = [nw.col(m).cast(nw.Float64) for m in metrics]
    rows, *checks = collect(
        frame.select(
            nw.len().alias("_rows"),
            *[c.null_count().alias(f"_null{i}") for i, c in enumerate(cols)],
            *[c.min().alias(f"_min{i}") for i, c in enumerate(cols)],
            *[
                (~c.is_in([0.0, 1.0])).cast(nw.Int64).sum().alias(f"_odd{i}")
                for i, c in enumerate(cols)
            ],
            *[c.abs().max().alias(f"_max{i}") for i, c in enumerate(cols)],
        )
    ).to_numpy()[0]
    if rows == 0:
        raise DataError("lift data", "the input is empty (no rows)")
    k = len(metrics)
    out = {}
    for i, m in enumerate(metrics):
        nulls, low, odd, large = checks[i], checks[k + i], checks[2 * k + i], checks[3 * k + i]
        if nulls:
            rows = collect(frame.filter(nw.col(m).is_null()).head(5))
            raise DataError("lift data", "a metric has missing values", m, rows, int(nulls))
        if not np.isfinite(large) or large > MAX_METRIC:  # sums of squares would overflow
            wild = ~nw.col(m).cast(nw.Float64).is_finite() | (nw.col(m).abs() > MAX_METRIC)
            rows = collect(frame.filter(wild).head(5))
            raise DataError(
                "lift data",
                f"a metric has infinite values or values beyond {MAX_METRIC:.0e}",
                m,
                rows,
            )
        inferred = "binary" if odd == 0 else ("value" if low >= 0 else "normal")
        kind = kinds.get(m, inferred)
        if kind == "binary" and odd:
            raise DataError("lift data", "a binary metric must hold only 0 and 1", m)
        if kind == "value" and low < 0:
            raise DataError("lift data", "a value metric cannot be negative (use kind 'normal')", m)
        out[m] = kind
    return out


def sufficient_statistics(
    frame: nw.LazyFrame, keys: list[str], metrics, kinds, covariates=None
) -> pd.DataFrame:
    """Per group: ``_n`` customers and, for metric i, ``_s{i}`` sum; value metrics also ``_k{i}``
    buyers (value > 0), ``_q{i}`` the sum of squares and ``_c{i}`` of cubes; normal metrics
    ``_q{i}`` the sum of squares and ``_k{i}`` the customers with a value above 0 (the buyers of
    a revenue with refunds). A metric with a covariate x (``covariates``: metric -> column) also has ``_q{i}``
    and ``_x{i}``, ``_xx{i}``, ``_xy{i}``: the sums of x, x^2 and x y."""
    covariates = covariates or {}
    derived, squares, sums = [], [], []
    for i, m in enumerate(metrics):
        y = nw.col(m).cast(nw.Float64)
        derived.append(y.alias(f"_s{i}"))
        sums.append(f"_s{i}")
        if kinds[m] != "binary":
            derived.append((y > 0).cast(nw.Int64).alias(f"_k{i}"))
            sums.append(f"_k{i}")
        if kinds[m] == "value":
            squares.append((nw.col(f"_s{i}") ** 3).alias(f"_c{i}"))
            sums.append(f"_c{i}")
        if kinds[m] != "binary" or m in covariates:
            squares.append((nw.col(f"_s{i}") ** 2).alias(f"_q{i}"))
            sums.append(f"_q{i}")
        if m in covariates:
            derived.append(nw.col(covariates[m]).cast(nw.Float64).alias(f"_x{i}"))
            squares += [
                (nw.col(f"_x{i}") ** 2).alias(f"_xx{i}"),
                (nw.col(f"_x{i}") * nw.col(f"_s{i}")).alias(f"_xy{i}"),
            ]
            sums += [f"_x{i}", f"_xx{i}", f"_xy{i}"]
    rows = frame.select(*[nw.col(k) for k in keys], *derived)
    out = collect(
        (rows.with_columns(*squares) if squares else rows)
        .group_by(keys)
        .agg(nw.len().alias("_n"), nw.col(*sums).sum())
        .sort(keys)
    )
    if out[keys].isna().any().any():
        raise DataError("lift data", "group columns have missing values", keys[0])
    return out


def pre_period(outcomes: pd.DataFrame, transactions, start, end) -> tuple[pd.DataFrame, dict]:
    """The CUPED inputs: ``outcomes`` (one row per customer, ``customer_id``) with each customer's
    ``pre_revenue`` and ``pre_orders`` over the baseline days ``start`` .. ``end`` (inclusive;
    from :func:`closedloop.summaries.per_customer`, 0 for a customer who did not buy), and the
    ``covariates`` mapping for :func:`bayesian_lift`: revenue by pre-period revenue, conversions
    and orders by pre-period purchases (for the outcome columns present)."""
    from closedloop import summaries

    per = summaries.per_customer(transactions, end, start=start, source="transactions")
    ids = outcomes["customer_id"].astype("str")
    out = outcomes.assign(
        pre_revenue=ids.map(per["revenue"]).fillna(0.0).to_numpy("float64"),
        pre_orders=ids.map(per["orders"]).fillna(0).to_numpy("float64"),
    )
    wanted = {"revenue": "pre_revenue", "converted": "pre_orders", "orders": "pre_orders"}
    return out, {m: c for m, c in wanted.items() if m in outcomes.columns}


# --- intervals and the comparison of arms ---------------------------------------------------


def credible_interval(samples: np.ndarray, level: float, interval: str):
    """Row-wise credible interval of ``samples`` (rows x draws): equal-tailed or HDI."""
    if interval == "equal-tailed":
        tail = (1 - level) / 2
        # a draw, not an interpolation: a long-tailed posterior may hold infinite draws
        low, high = np.quantile(samples, [tail, 1 - tail], axis=1, method="inverted_cdf")
        return low, high
    ordered = np.sort(samples, axis=1)  # NaN sorts last and makes the width NaN
    keep = int(np.ceil(level * samples.shape[1]))
    widths = ordered[:, keep - 1 :] - ordered[:, : samples.shape[1] - keep + 1]
    start = np.argmin(np.where(np.isnan(widths), np.inf, widths), axis=1)
    rows = np.arange(len(samples))
    low, high = ordered[rows, start], ordered[rows, start + keep - 1]
    bad = np.isnan(samples).any(axis=1)
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def prob_better(diff: np.ndarray) -> np.ndarray:
    """P(arm > holdout) per row of draws of their difference, a tie counted half: two arms where
    nobody bought have every draw 0, and are no more likely worse than better."""
    return (diff > 0).mean(axis=1) + 0.5 * (diff == 0).mean(axis=1)


def _positive_part(draws: np.ndarray) -> np.ndarray:
    """Each row's draws (rows x draws) conditioned on a positive value, keeping their order.

    A relative lift is a ratio over the holdout's mean, defined only when that mean is positive,
    so its posterior is the ratio's given a positive holdout mean. A normal posterior on a small
    mean puts some draws at or below 0, where the ratio explodes: with 200 customers an arm and 5-20 buyers the revenue
    lift's interval covered 97.6% (``benchmarks/bench_calibration.py``). A row
    with such draws has them carried to the positive part by their rank (the empirical inverse
    CDF: rank r of D goes to the positive draws' quantile q + (1 - q) (r + 1/2) / D, q the share at
    or below 0), so each draw keeps its place beside the arm's draw it was paired with. Rows
    without a draw at or below 0, or without a positive one, are returned as they are."""
    mixed = np.flatnonzero((draws <= 0).any(axis=1) & (draws > 0).any(axis=1))
    if not len(mixed):
        return draws
    out = draws.copy()
    size = draws.shape[1]
    for r in mixed:
        order = np.argsort(draws[r], kind="stable")
        low = int((draws[r] <= 0).sum())
        place = low + ((size - low) * (np.arange(size) + 0.5) / size).astype("int64")
        out[r, order] = draws[r, order[place]]
    return out


def relative_draws(arm: np.ndarray, control: np.ndarray, kind: str) -> np.ndarray:
    """Draws of the relative lift: the arm's mean over the holdout's given a positive holdout
    mean (:func:`_positive_part`), minus 1; never below -100% for a metric that cannot be
    negative (``kind`` binary or value), where an arm's draw below 0 is a fall of 100%."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rel = arm / _positive_part(control) - 1
    return rel if kind == "normal" else np.maximum(rel, -1.0)


def compare_arms(
    data, by, arm, control, metrics, kinds, prior, seed, level, interval, draws, covariates=None
):
    """The :class:`Lift` of every (``by`` segment, treated arm, metric) against the control of
    its segment (``by`` may be empty); shared by :func:`bayesian_lift` and
    :func:`closedloop.lift_segments.lift_by_segment`."""
    source = "lift data"
    if interval not in ("equal-tailed", "hdi"):
        raise DataError(source, f"interval must be 'equal-tailed' or 'hdi', not {interval!r}")
    if not 0 < level < 1:
        raise DataError(source, f"the credible level must be between 0 and 1, not {level}")
    if draws < 100:
        raise DataError(source, f"use at least 100 posterior draws, not {draws}")
    frame = lazy_frame(data, source)
    covariates = dict(covariates or {})
    metrics = _metrics(frame, metrics, [arm, *by, *covariates.values()])
    stray = sorted(set(covariates) - set(metrics))
    if stray:
        raise DataError(source, f"covariate(s) given for {stray}, which are not metrics")
    require(frame, [arm, *by, *metrics, *covariates.values()], source)
    kinds = _kinds(frame, metrics, kinds)
    if covariates:
        _kinds(
            frame, sorted(set(covariates.values())), dict.fromkeys(covariates.values(), "normal")
        )
    summary = sufficient_statistics(frame, [*by, arm], metrics, kinds, covariates)
    return lift_from_summary(
        summary, by, arm, control, metrics, kinds, prior, seed, level, interval, draws, covariates
    )


def lift_from_summary(
    summary: pd.DataFrame,
    by: list[str],
    arm: str,
    control: str,
    metrics: list[str],
    kinds: Mapping[str, str],
    prior: Prior = PRIOR,
    seed: int = 0,
    level: float = CREDIBLE_LEVEL,
    interval: str = "equal-tailed",
    draws: int = DRAWS,
    covariates: Mapping[str, str] | None = None,
) -> Lift:
    """The :class:`Lift` from the per-group :func:`sufficient_statistics` (one row per ``by``
    segment and arm), as :func:`bayesian_lift` computes it; for simulations that build the
    summaries directly (``benchmarks/bench_calibration.py``)."""
    source = "lift data"
    covariates = dict(covariates or {})
    arms = summary[arm].unique().tolist()
    if control not in arms:
        raise DataError(
            source, f"no control arm {control!r}; the arms are {sorted(map(str, arms))}", arm
        )
    if len(arms) < 2:
        raise DataError(source, "only the control arm is present; nothing to compare", arm)

    # pair every (segment, arm) row with its segment's control row
    is_control = (summary[arm] == control).to_numpy()
    segment = (
        summary[by].astype("str").agg("\x1f".join, axis=1)
        if by
        else pd.Series("", index=summary.index)
    )
    pool = pd.factorize(segment)[0]
    control_row = pd.Series(np.flatnonzero(is_control), index=segment[is_control].to_numpy())
    treated = np.flatnonzero(~is_control)
    partner = segment.iloc[treated].map(control_row).to_numpy("float64")
    has_control = ~np.isnan(partner)
    partner = np.where(has_control, partner, 0).astype("int64")
    arm_names = summary[arm].iloc[treated].astype("str").to_numpy()

    rng = np.random.default_rng(seed)
    n = summary["_n"].to_numpy("float64")
    keys = [*by, "arm", "metric"]
    parts, draws_abs, draws_rel, draws_ctl = [], {}, {}, {}
    for i, metric in enumerate(metrics):
        kind = kinds[metric]
        means = summary[f"_s{i}"].to_numpy("float64") / n
        reduction = np.zeros(len(treated))
        if metric in covariates:
            centre, var, var_raw = _cuped(summary, i, kind, prior, pool)
            post = normal_draws(centre, var, n, rng, draws)
            se2 = var / n
            se2_raw = var_raw / n
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = (se2[treated] + se2[partner]) / (se2_raw[treated] + se2_raw[partner])
            reduction = np.where(has_control & np.isfinite(ratio), 1 - ratio, 0.0)
        else:
            post = posterior_means(summary, i, kind, prior, rng, draws, pool=pool)
            centre = means
        arm_draws = post[treated]
        ctl_draws = np.where(has_control[:, None], post[partner], np.nan)
        diff = arm_draws - ctl_draws
        ctl_centre = np.where(has_control, centre[partner], np.nan)
        low, high = mean_interval(summary, i, kind, prior, level, pool)
        # undefined relative lift: the holdout's observed mean is 0 (no buyer, no conversion),
        # or below 0 (refunds outweigh purchases, or so after the pre-period adjustment): a
        # ratio over it has no meaning
        zero = has_control & ((means[partner] <= 0) | (centre[partner] <= 0))
        few = has_control & ~zero & _few_events(summary, i, kind, treated, partner)
        # a metric that can be negative, whose holdout mean is not credibly above 0
        unsure = has_control & ~zero & ~few & (kind == "normal") & (low[partner] <= 0)
        blank = zero | few | unsure
        rel = np.where(blank[:, None], np.nan, relative_draws(arm_draws, ctl_draws, kind))
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            abs_point = centre[treated] - ctl_centre
            rel_point = np.where(blank, np.nan, abs_point / ctl_centre)
        if kind != "normal":  # a metric that cannot be negative cannot fall by more than 100%
            rel_point = np.maximum(rel_point, -1.0)
        abs_low, abs_high = credible_interval(diff, level, interval)
        rel_low, rel_high = credible_interval(rel, level, interval)
        if kind == "binary":  # an arm at a rate of 0 or 1: the bound reaches the observed point
            abs_low, abs_high = np.fmin(abs_low, abs_point), np.fmax(abs_high, abs_point)
            rel_low, rel_high = np.fmin(rel_low, rel_point), np.fmax(rel_high, rel_point)
        undefined = np.isnan(diff).any(axis=1)
        part = summary.iloc[treated][by].reset_index(drop=True)
        part = part.assign(
            arm=arm_names,
            metric=metric,
            kind=kind,
            customers=n[treated].astype("int64"),
            control_customers=np.where(has_control, n[partner], 0).astype("int64"),
            mean=means[treated],
            mean_low=low[treated],
            mean_high=high[treated],
            control_mean=np.where(has_control, means[partner], np.nan),
            control_mean_low=np.where(has_control, low[partner], np.nan),
            control_mean_high=np.where(has_control, high[partner], np.nan),
            abs_lift=abs_point,
            abs_lift_low=abs_low,
            abs_lift_high=abs_high,
            rel_lift=np.where(np.isfinite(rel_point), rel_point, np.nan),
            rel_lift_low=rel_low,
            rel_lift_high=rel_high,
            p_better=np.where(undefined, np.nan, prob_better(diff)),
            expected_loss=np.where(undefined, np.nan, np.maximum(-diff, 0).mean(axis=1)),
            incremental=abs_point * n[treated],
            variance_reduction=reduction,
            note=_notes(
                summary,
                i,
                kind,
                metric,
                means,
                treated,
                partner,
                has_control,
                (zero, few, unsure),
                arm_names,
            ),
        )
        for j, row in enumerate(part[keys].itertuples(index=False)):
            draws_abs[tuple(row)], draws_rel[tuple(row)] = diff[j], rel[j]
            draws_ctl[tuple(row)] = ctl_draws[j]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["arm"] = out["arm"].astype("str")
    metric_order = {m: i for i, m in enumerate(metrics)}
    out = out.sort_values(
        [*by, "arm", "metric"],
        key=lambda s: s.map(metric_order) if s.name == "metric" else s,
        kind="stable",
    ).reset_index(drop=True)
    out = out[[*by, *LIFT_COLUMNS]]
    return Lift(out, PosteriorDraws(keys, level, interval, draws_abs, draws_rel, draws_ctl))


def _cuped(summary: pd.DataFrame, i: int, kind: str, prior: Prior, pool: np.ndarray):
    """CUPED per group: the adjusted mean ybar - theta (xbar - pooled xbar), the adjusted
    variance per customer and the unadjusted one (the model's, :func:`moments`). theta and rho
    are pooled within arms, per ``pool`` label; the adjusted variance is the model variance
    times the group's sample ratio Var(y - theta x) / Var(y) (1 - rho^2 where Var(y) is 0)."""
    col = {c: summary[f"_{c}{i}"].to_numpy("float64") for c in ("s", "q", "x", "xx", "xy")}
    n = summary["_n"].to_numpy("float64")
    _, var_raw, _ = moments(summary, i, kind, prior, pool)
    cyy = np.maximum(col["q"] - col["s"] ** 2 / n, 0.0)
    cxx = np.maximum(col["xx"] - col["x"] ** 2 / n, 0.0)
    cxy = col["xy"] - col["x"] * col["s"] / n

    def pooled(v):
        return np.bincount(pool, weights=v)[pool]

    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.where(pooled(cxx) > 0, pooled(cxy) / pooled(cxx), 0.0)
        both = pooled(cxx) * pooled(cyy)
        rho2 = np.clip(np.where(both > 0, pooled(cxy) ** 2 / both, 0.0), 0.0, 1.0)
        x_all = pooled(col["x"]) / pooled(n)
        centre = col["s"] / n - theta * (col["x"] / n - x_all)
        adjusted = np.maximum(cyy - 2 * theta * cxy + theta**2 * cxx, 0.0)
        ratio = np.where(cyy > 0, adjusted / cyy, 1 - rho2)
    return centre, var_raw * ratio, var_raw


def _events(summary: pd.DataFrame, i: int, kind: str):
    """Per group, the buyers of a value or normal metric (customers with a value above 0: a
    revenue with refunds is normal) or the conversions of a binary one."""
    return summary[f"_s{i}" if kind == "binary" else f"_k{i}"].to_numpy("float64")


def event_unit(kind: str) -> str:
    """What a relative lift's events are: conversions of a binary metric, else buyers."""
    return "conversion" if kind == "binary" else "buyer"


def _few_events(summary, i, kind, treated, partner) -> np.ndarray:
    """Per treated row: True when the holdout and the arm have fewer than
    :data:`MIN_RATIO_EVENTS` conversions or buyers together (the relative lift is not
    estimable)."""
    events = _events(summary, i, kind)
    return events[partner] + events[treated] < MIN_RATIO_EVENTS[event_unit(kind)]


def _notes(summary, i, kind, metric, means, treated, partner, has_control, blank, arm_names):
    """One note per treated row: no holdout, an undefined or not estimable relative lift (the
    masks ``blank``: holdout mean at or below 0, too few events, a holdout mean not credibly
    above 0), too few buyers."""
    zero, few_ratio, unsure = blank
    buyers = summary[f"_k{i}"].to_numpy() if kind != "binary" else None
    events = _events(summary, i, kind)
    unit = event_unit(kind)
    notes = []
    for j, (t, c) in enumerate(zip(treated, partner, strict=True)):
        parts = []
        if not has_control[j]:
            parts.append("no holdout customers in this segment: the lift is not estimated")
        else:
            if zero[j]:
                sign = "0" if means[c] == 0 else "below 0"
                if means[c] > 0:  # the holdout's mean adjusted for the pre-period
                    sign = "below 0 after the pre-period adjustment"
                parts.append(f"{UNDEFINED_NOTE} {metric} is {sign}; see the absolute lift")
            elif unsure[j]:
                parts.append(
                    f"relative lift not estimable: the holdout's mean {metric}"
                    f" {NOT_CREDIBLY_POSITIVE} (its interval reaches 0); see the absolute lift"
                )
            elif few_ratio[j]:
                parts.append(
                    f"{_count(events[c], unit)} in holdout and {int(events[t])} in"
                    f" {arm_names[j]}: relative lift not estimable (fewer than"
                    f" {MIN_RATIO_EVENTS[unit]} {unit}s together); see the absolute lift"
                )
            if buyers is not None:
                few = [
                    f"{_count(buyers[r], 'buyer')} in {who}"
                    for r, who in ((c, "holdout"), (t, arm_names[j]))
                    if buyers[r] < MIN_BUYERS
                ]
                if few:
                    parts.append(
                        f"{', '.join(few)}: {metric} lift is not estimable with confidence"
                        " (the interval is wide)"
                    )
        notes.append("; ".join(parts))
    return notes


def _count(number, unit: str) -> str:
    """'1 buyer', '3 buyers'."""
    return f"{int(number)} {unit}{'s' if number != 1 else ''}"


def _per_arm(value, labels: pd.Series, what: str) -> np.ndarray:
    """A number, or a mapping looked up by ``labels`` (arm or metric), as one value per row."""
    if isinstance(value, Mapping):
        missing = sorted(set(labels) - set(value))
        if missing:
            raise DataError("roi", f"no {what} given for {missing}", what)
        return labels.map(value).to_numpy("float64")
    return np.full(len(labels), float(value))


def _arm_counts(counts, arm: str) -> pd.Series:
    """Customers per arm from a mapping, a Series or a frame with one row per customer."""
    if isinstance(counts, Mapping | pd.Series):
        observed = pd.Series(counts)
    else:
        frame = lazy_frame(counts, "sample-ratio check")
        require(frame, [arm], "sample-ratio check")
        per = collect(frame.group_by(arm).agg(nw.len().alias("n")))
        observed = pd.Series(per["n"].to_numpy(), index=per[arm].to_numpy())
    if observed.empty or not pd.api.types.is_numeric_dtype(observed) or (observed < 0).any():
        raise DataError("sample-ratio check", "counts must be non-negative numbers per arm")
    return observed
