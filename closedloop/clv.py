"""Customer lifetime value (客户终身价值): how many purchases each customer will still make, what
they will spend, and what that is worth today.

- :func:`summary` — one row per customer: ``repeat_purchases`` (x, repeat purchase days),
  ``purchase_span`` (t_x), ``age`` (T) and ``repeat_ticket`` (mean repeat purchase), optionally
  split into calibration and holdout periods;
- :func:`fit` — a purchase model, BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
  easy way", Marketing Science 24(2)) or Pareto/NBD (Schmittlein, Morrison & Colombo 1987), and the
  Gamma-Gamma spend model (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value");
  the :class:`ClvModel` it returns predicts purchases, P(alive), spend and discounted CLV;
- analyst checks: :func:`calibration_holdout` (predicted vs actual holdout purchases),
  :func:`spend_independence` (Gamma-Gamma's assumption), :func:`repeat_tracking` (cumulative repeat
  purchases, actual vs model) and :func:`clv_by_tier` (CLV by pyramid tier, 客户金字塔).

Raw transactions (pandas, polars, a DuckDB relation or a PySpark DataFrame) are reduced to
customer-days (same-day purchases merged, as in the papers) and then per customer by
:mod:`closedloop.summaries`, where the data lives; the models (:mod:`closedloop.clv_models`: the
papers' closed forms with ``scipy.special``, maximised by ``scipy.optimize`` over the unique
summary rows) run on that pandas summary. Parameters, standard errors and predictions agree with ``lifetimes``
0.11, which is archived: its Pareto/NBD fitter has no standard errors (its ``summary`` fails) and
its CLV helper is not maintained for pandas 3, so both live here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from closedloop import summaries
from closedloop._frames import require, to_pandas
from closedloop.clv_models import (
    SPECS,
    SUMMARY_COLUMNS,
    Patterns,
    gamma_gamma_data,
    gamma_gamma_objective,
    maximise,
    parameter_errors,
)
from closedloop.errors import DataError
from closedloop.io import DataWarning

__all__ = [
    "DISCOUNT_RATE",
    "FREQUENCY_CAP",
    "HORIZON_MONTHS",
    "INDEPENDENCE_CORR",
    "MARGIN",
    "MODELS",
    "PENALIZER",
    "PERIODS_PER_MONTH",
    "TIME_UNITS",
    "ClvModel",
    "calibration_holdout",
    "clv_by_tier",
    "fit",
    "repeat_tracking",
    "spend_independence",
    "summary",
]

#: time units of ``recency`` and ``T``, in days: continuous time, e.g. weeks = days / 7
TIME_UNITS = {"D": 1.0, "W": 7.0}
#: time units per month in the CLV sum (lifetimes' factors: 4.345 weeks, 30 days)
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345}
#: CLV defaults: months ahead, monthly discount rate, profit margin on spend
HORIZON_MONTHS = 12
DISCOUNT_RATE = 0.01
MARGIN = 1.0
#: L2 penalty on the parameters (lifetimes' ``penalizer_coef``; 0 = plain maximum likelihood)
PENALIZER = 0.0
#: |Pearson correlation| of frequency and mean spend above which Gamma-Gamma's independence
#: assumption is flagged
INDEPENDENCE_CORR = 0.3
#: calibration purchases pooled from this number up in the calibration / holdout table ("7+")
FREQUENCY_CAP = 7
#: purchase models and their parameters
MODELS = {"bgnbd": ("r", "alpha", "a", "b"), "pareto": ("r", "alpha", "s", "beta")}
SPEND_PARAMS = ("p", "q", "gamma")

#: a summary in lifetimes' names (``summary_data_from_transaction_data``) is read as these
LIFETIMES_NAMES = {
    "frequency": "repeat_purchases",
    "recency": "purchase_span",
    "T": "age",
    "monetary_value": "repeat_ticket",
}


# ---------------------------------------------------------------------------------------------
# The customer summary


def summary(transactions, asof, time_unit: str = "W", calibration_end=None) -> pd.DataFrame:
    """One row per customer: the sufficient statistics of BG/NBD, Pareto/NBD and Gamma-Gamma.

    ``transactions`` (pandas, polars, a DuckDB relation or a PySpark DataFrame; ``customer_id,
    order_date, amount``) are read up to the end of the day ``asof`` by
    :func:`closedloop.summaries.per_customer`, counting purchase days as the papers do (a
    customer's purchases on one day are one purchase; refunds are not purchases). Columns:

    - ``repeat_purchases`` (the papers' x) — purchase days after the first one;
    - ``purchase_span`` (t_x) — time from the first to the last purchase; ``age`` (T) — from the
      first purchase to the end of the period; both in ``time_unit`` (``"W"`` weeks = days / 7,
      or ``"D"`` days);
    - ``repeat_ticket`` (m) — mean net amount of the repeat purchases (0 without one);
    - ``first_purchase`` — the date of the first purchase.

    With ``calibration_end`` the statistics stop at that day (only customers who bought by then
    are kept) and the rest of the period up to ``asof`` is the holdout: ``holdout_purchases``
    (purchase days), ``holdout_ticket`` (their mean amount) and ``holdout_length``.
    """
    unit = _time_unit(time_unit)
    end = summaries.day(asof)
    cut = end if calibration_end is None else summaries.day(calibration_end, "calibration_end")
    if cut > end:
        raise DataError("summary", f"calibration_end {cut:%Y-%m-%d} is after asof {end:%Y-%m-%d}")
    source = "clv.summary transactions"
    windows = {"calibration": (None, cut), "holdout": (cut + pd.Timedelta(days=1), None)}
    per = summaries.per_customer(
        transactions, end, windows=windows, unit="day", first_revenue=True, source=source
    )
    per = per[per["first_purchase"] <= cut]
    if per.empty:
        raise DataError(source, f"no purchases on or before {cut:%Y-%m-%d}")
    first, last = per["first_purchase"], per["last_purchase_calibration"]
    repeat = per["orders_calibration"] - 1
    days_per_unit = TIME_UNITS[unit]
    out = pd.DataFrame(
        {
            "repeat_purchases": repeat,
            "purchase_span": (last - first).dt.days.astype("float64") / days_per_unit,
            "age": (cut - first).dt.days.astype("float64") / days_per_unit,
            "repeat_ticket": _mean(per["revenue_calibration"] - per["first_revenue"], repeat),
            "first_purchase": first,
        },
        index=per.index,
    )
    if calibration_end is not None:
        holdout = per["orders_holdout"]
        out["holdout_purchases"] = holdout
        out["holdout_ticket"] = _mean(per["revenue_holdout"], holdout)
        out["holdout_length"] = (end - cut).days / days_per_unit
    return out


# ---------------------------------------------------------------------------------------------
# The fitted model


@dataclass(frozen=True, eq=False)
class ClvModel:
    """A fitted purchase model (BG/NBD or Pareto/NBD) with, when fitted, the Gamma-Gamma spend model.

    ``params`` / ``standard_errors``: the purchase model (time in ``time_unit``);
    ``spend_params`` / ``spend_standard_errors``: Gamma-Gamma ``p, q, gamma`` (``None`` when fitted
    with ``spend=False``). Standard errors come from the inverse Hessian of the log-likelihood
    (delta method from log-parameters, as lifetimes computes them); ``log_likelihood`` is the
    maximised log-likelihood with time in ``time_unit``; ``spend_excluded`` counts the repeat
    buyers left out of the spend fit (no positive repeat spend: CDNOW has one). Every prediction
    is a Series by customer of ``summary``.
    """

    model: str
    params: pd.Series
    standard_errors: pd.Series
    spend_params: pd.Series | None
    spend_standard_errors: pd.Series | None
    summary: pd.DataFrame
    time_unit: str
    log_likelihood: float
    spend_excluded: int
    _patterns: Patterns = field(repr=False)

    def parameter_table(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals, purchase then spend model."""
        parts = [(self.model, self.params, self.standard_errors)]
        if self.spend_params is not None:
            parts.append(("gamma-gamma", self.spend_params, self.spend_standard_errors))
        rows = [
            {"model": name, "parameter": key, "estimate": est[key], "se": se[key]}
            for name, est, se in parts
            for key in est.index
        ]
        table = pd.DataFrame(rows)
        table["lower_95"] = table["estimate"] - 1.96 * table["se"]
        table["upper_95"] = table["estimate"] + 1.96 * table["se"]
        return table

    def expected_purchases(self, t) -> pd.Series:
        """Expected purchases of each customer in the next ``t`` time units, given their history.

        ``t`` is a number or one value per customer (e.g. ``summary["holdout_length"]``).
        BG/NBD: FHL (2005) eq. 10; Pareto/NBD: Schmittlein et al. (1987) eq. 22.
        """
        spec, theta = SPECS[self.model], self.params.to_numpy()
        if np.ndim(t) == 0:
            pat = self._patterns
            growth = spec.growth(theta, float(t), pat.pair_x, pat.pair_T)[pat.pair]
            values = (growth * spec.weight(theta, pat.x, pat.tx, pat.T))[pat.inverse]
        else:
            t = np.asarray(t, dtype="float64")
            if t.shape != (len(self.summary),):
                raise DataError("expected_purchases", f"t needs one value per customer: {t.shape}")
            x, tx, T = (self.summary[c].to_numpy("float64") for c in SUMMARY_COLUMNS)
            values = spec.growth(theta, t, x, T) * spec.weight(theta, x, tx, T)
        return self._series(values, "expected_purchases")

    def p_alive(self) -> pd.Series:
        """Probability that each customer is still active (has not churned) at the end of ``T``."""
        pat = self._patterns
        values = SPECS[self.model].p_alive(self.params.to_numpy(), pat.x, pat.tx, pat.T)
        return self._series(values[pat.inverse], "p_alive")

    def expected_spend(self) -> pd.Series:
        """Expected mean spend per future purchase: Gamma-Gamma, Fader & Hardie (2013) eq. 5.

        ``p (gamma + x m) / (p x + q - 1)``: the customer's own mean ``m`` over ``x`` repeat
        purchases shrunk towards the population mean ``p gamma / (q - 1)``.
        """
        p, q, gamma = self._spend_params()
        x = self.summary["repeat_purchases"].to_numpy("float64")
        m = np.where(x > 0, self.summary["repeat_ticket"].to_numpy("float64"), 0.0)
        return self._series(p * (gamma + x * m) / (p * x + q - 1), "expected_spend")

    def clv(
        self,
        horizon_months: int = HORIZON_MONTHS,
        discount_rate: float = DISCOUNT_RATE,
        margin: float = MARGIN,
    ) -> pd.Series:
        """Discounted customer lifetime value over ``horizon_months``, as lifetimes defines it.

        ``margin * expected_spend * sum_m (E[X(m)] - E[X(m - 1)]) / (1 + discount_rate) ** m``
        for months ``m = 1..horizon_months``, where ``E[X(m)]`` is :meth:`expected_purchases`
        over ``m`` months (:data:`PERIODS_PER_MONTH` time units each).
        """
        if int(horizon_months) != horizon_months or horizon_months < 1:
            raise DataError("clv", f"horizon_months must be a whole number >= 1: {horizon_months}")
        if discount_rate <= -1:
            raise DataError("clv", f"discount_rate must be > -1: {discount_rate}")
        spend = self.expected_spend().to_numpy()
        pat, spec = self._patterns, SPECS[self.model]
        theta = self.params.to_numpy()
        step = PERIODS_PER_MONTH[self.time_unit]
        # E[X(t)] = growth(t; x, T) * weight(x, t_x, T): discount the growth of each (x, T) pair
        value, previous = np.zeros(len(pat.pair_x)), np.zeros(len(pat.pair_x))
        for month in range(1, int(horizon_months) + 1):
            current = spec.growth(theta, month * step, pat.pair_x, pat.pair_T)
            value += (current - previous) / (1 + discount_rate) ** month
            previous = current
        value = value[pat.pair] * spec.weight(theta, pat.x, pat.tx, pat.T)
        return self._series(margin * spend * value[pat.inverse], "clv")

    def expected_population(self, t) -> np.ndarray:
        """Expected repeat purchases of a new customer in ``t`` time units since the first one."""
        return SPECS[self.model].population(self.params.to_numpy(), np.asarray(t, "float64"))

    def _spend_params(self) -> np.ndarray:
        if self.spend_params is None:
            raise DataError("ClvModel", "no spend model: fit with spend=True for spend and CLV")
        return self.spend_params.to_numpy()

    def _series(self, values, name: str) -> pd.Series:
        return pd.Series(values, index=self.summary.index, name=name)


def fit(
    summary: pd.DataFrame,
    model: str = "bgnbd",
    spend: bool = True,
    penalizer: float = PENALIZER,
    time_unit: str = "W",
) -> ClvModel:
    """Fit a purchase model (``"bgnbd"`` or ``"pareto"``) and, with ``spend``, Gamma-Gamma.

    ``summary``: one row per customer with ``repeat_purchases, purchase_span, age`` (and
    ``repeat_ticket`` for spend), e.g. from :func:`summary`, or lifetimes' ``frequency, recency,
    T, monetary_value``; ``time_unit`` is the unit of its times (the one given to
    :func:`summary`). Maximum likelihood over the unique ``(x, t_x, T)`` rows weighted by
    their counts: BG/NBD log-likelihood FHL (2005) eq. 6 with an analytic gradient, Pareto/NBD
    as in Fader & Hardie's note on its likelihood, Gamma-Gamma Fader & Hardie (2013) eq. 1a on the
    repeat buyers. ``penalizer`` adds ``penalizer * sum(params ** 2)`` to the mean negative
    log-likelihood (time scaled so the oldest customer has T = 1), as lifetimes' fitters do.
    Spend fitting warns (:class:`~closedloop.io.DataWarning`) when repeat purchases and spend
    correlate
    (:func:`spend_independence`).
    """
    if model not in MODELS:
        raise DataError("fit", f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if penalizer < 0:
        raise DataError("fit", f"penalizer must be >= 0, got {penalizer}")
    unit = _time_unit(time_unit)
    frame = _checked_summary(summary, spend)
    patterns = Patterns.of(frame)
    scale = 1.0 / max(float(patterns.T.max()), 1e-12)
    spec = SPECS[model]
    log_theta, nll, hess = maximise(
        spec.objective, spec.prepare(patterns, scale), len(MODELS[model]), penalizer
    )
    theta = np.exp(log_theta)
    theta[1] /= scale  # alpha back to the summary's time unit
    if model == "pareto":
        theta[3] /= scale  # and beta
    names = list(MODELS[model])
    params = pd.Series(theta, index=names, name="estimate")
    errors = parameter_errors(theta, hess, patterns.w.sum(), names)
    spend_params = spend_errors = None
    spend_excluded = 0
    if spend:
        repeat, spend_excluded = _spenders(frame)
        if len(repeat) < len(SPEND_PARAMS):
            raise DataError(
                "fit",
                "the spend model needs repeat buyers with a positive repeat_ticket; too few have one",
            )
        if spend_excluded:
            warnings.warn(
                f"{spend_excluded:,} repeat buyer(s) with no positive repeat spend left out of the"
                " Gamma-Gamma fit (it models positive amounts); their expected spend is the"
                " population's, shrunk by their purchases",
                DataWarning,
                stacklevel=2,
            )
        spend_independence(frame)
        data = gamma_gamma_data(repeat)
        log_spend, _, spend_hess = maximise(gamma_gamma_objective, data, 3, penalizer)
        spend_theta = np.exp(log_spend)
        spend_params = pd.Series(spend_theta, index=list(SPEND_PARAMS), name="estimate")
        spend_errors = parameter_errors(spend_theta, spend_hess, data[2].sum(), SPEND_PARAMS)
    return ClvModel(
        model=model,
        params=params,
        standard_errors=errors,
        spend_params=spend_params,
        spend_standard_errors=spend_errors,
        spend_excluded=spend_excluded,
        summary=frame,
        time_unit=unit,
        # back from scaled time: each purchase time density gains a factor ``scale``
        log_likelihood=-nll * patterns.w.sum() + (patterns.w @ patterns.x) * np.log(scale),
        _patterns=patterns,
    )


# ---------------------------------------------------------------------------------------------
# What an analyst checks


def spend_independence(summary: pd.DataFrame, threshold: float = INDEPENDENCE_CORR) -> pd.Series:
    """Gamma-Gamma assumes spend per purchase is independent of purchase frequency: check it.

    Pearson correlation of ``frequency`` and ``monetary`` over repeat buyers (``scipy.stats``);
    warns with :class:`~closedloop.io.DataWarning` when ``|correlation| >= threshold``.
    """
    frame = _checked_summary(summary, spend=True)
    repeat, _ = _spenders(frame)
    if len(repeat) < 3:
        raise DataError("spend_independence", "fewer than 3 repeat buyers: nothing to correlate")
    result = stats.pearsonr(repeat["repeat_purchases"], repeat["repeat_ticket"])
    corr = float(result.statistic)
    independent = abs(corr) < threshold
    if not independent:
        warnings.warn(
            f"frequency and mean spend correlate (r = {corr:.2f}, |r| >= {threshold}): the "
            "Gamma-Gamma spend model assumes they are independent; treat CLV with caution",
            DataWarning,
            stacklevel=2,
        )
    return pd.Series(
        {
            "correlation": corr,
            "p_value": float(result.pvalue),
            "repeat_buyers": len(repeat),
            "threshold": threshold,
            "independent": independent,
        },
        name="spend_independence",
    )


def calibration_holdout(model: ClvModel, cap: int = FREQUENCY_CAP) -> pd.DataFrame:
    """Mean holdout purchases, actual vs predicted, by purchases in the calibration period.

    FHL (2005) Figure 3: customers grouped by calibration ``frequency`` (``cap`` and more pooled),
    with the model's conditional expectation over each customer's ``holdout_length``.
    Needs a summary made with ``calibration_end``.
    """
    frame = model.summary
    require(frame, ("holdout_purchases", "holdout_length"), "calibration_holdout")
    predicted = model.expected_purchases(frame["holdout_length"].to_numpy("float64"))
    labels = [str(k) for k in range(cap)] + [f"{cap}+"]
    group = pd.Categorical.from_codes(
        np.minimum(frame["repeat_purchases"].to_numpy(), cap), categories=labels, ordered=True
    )
    table = pd.DataFrame(
        {"actual": frame["holdout_purchases"], "predicted": predicted, "group": group}
    ).groupby("group", observed=True)
    out = pd.DataFrame(
        {
            "customers": table.size(),
            "actual": table["actual"].mean(),
            "predicted": table["predicted"].mean(),
        }
    )
    out.index.name = "calibration_purchases"
    return out


def repeat_tracking(transactions, model: ClvModel, asof) -> pd.DataFrame:
    """Repeat purchases of the calibration cohort per period, actual vs the model (FHL 2005 Fig. 1-2).

    Customers of ``model.summary`` (first purchase by its calibration end) are followed to
    ``asof``: ``actual`` counts their repeat purchase days, ``expected`` sums the model's
    expectation for a new customer over each one's time since first purchase. One row per
    ``model.time_unit`` period, counted back from ``asof`` and indexed by its last day, with
    ``actual_cumulative`` and ``expected_cumulative``.
    """
    frame = model.summary
    require(frame, ("first_purchase",), "repeat_tracking")
    end = summaries.day(asof)
    cut = frame["first_purchase"].max()
    per = summaries.by_period(
        transactions, end, freq="day", unit="day", source="clv.repeat_tracking transactions"
    )
    per = per[per["orders"] > 0]
    first = per.groupby("customer_id")["period"].transform("min")
    repeats = per[(first <= cut) & (per["period"] > first)].groupby("period").size()
    repeats = repeats.rename("repeats").rename_axis("day").reset_index()
    start = frame["first_purchase"].min()
    n_days = (end - start).days + 1
    actual = np.zeros(n_days)
    offsets = (pd.to_datetime(repeats["day"]).to_numpy() - start.to_datetime64()) // np.timedelta64(
        1, "D"
    )
    np.add.at(actual, offsets.astype("int64"), repeats["repeats"].to_numpy("float64"))
    joins = np.bincount(
        ((frame["first_purchase"] - start).dt.days).to_numpy("int64"), minlength=n_days
    )[:n_days]
    lags = np.arange(n_days) / TIME_UNITS[model.time_unit]
    cumulative = np.convolve(joins, model.expected_population(lags))[:n_days]
    per_day = np.diff(cumulative, prepend=0.0)
    step = int(TIME_UNITS[model.time_unit])
    shift = -n_days % step  # periods are counted back from asof, so the last one is whole
    period = (np.arange(n_days) + shift) // step
    ends = (np.unique(period) + 1) * step - shift - 1
    out = pd.DataFrame(
        {
            "actual": np.bincount(period, actual),
            "expected": np.bincount(period, per_day),
        },
        index=pd.DatetimeIndex(start + pd.to_timedelta(ends, "D"), name="period_end"),
    )
    out["actual_cumulative"] = out["actual"].cumsum()
    out["expected_cumulative"] = out["expected"].cumsum()
    out.attrs = {"calibration_end": frame.attrs.get("calibration_end"), "asof": end}
    return out


def clv_by_tier(clv: pd.Series, tiers: pd.Series) -> pd.DataFrame:
    """CLV by pyramid tier (客户金字塔): heads, total and mean CLV, and each tier's share of both.

    ``tiers`` maps customers to a tier (e.g. ``closedloop.rfm.tier_of``); customers without a
    tier are left out and counted in ``attrs["untiered"]``.
    """
    if not isinstance(clv, pd.Series) or not isinstance(tiers, pd.Series):
        raise DataError("clv_by_tier", "clv and tiers must be Series indexed by customer")
    tier = tiers.reindex(clv.index)
    kept = tier.notna()
    if not kept.any():
        raise DataError("clv_by_tier", "no customer of clv has a tier: do the indexes match?")
    grouped = clv[kept].groupby(tier[kept], observed=False)
    out = pd.DataFrame(
        {
            "customers": grouped.size(),
            "clv_total": grouped.sum(),
            "clv_mean": grouped.mean(),
        }
    )
    out["customer_share"] = out["customers"] / out["customers"].sum()
    out["clv_share"] = out["clv_total"] / out["clv_total"].sum()
    out.index.name = "tier"
    out.attrs = {"untiered": int((~kept).sum())}
    return out


# ---------------------------------------------------------------------------------------------
# Helpers


def _mean(total: pd.Series, count: pd.Series) -> pd.Series:
    values = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return pd.Series(values.astype("float64"), index=total.index)


def _checked_summary(summary, spend: bool) -> pd.DataFrame:
    """The summary as pandas (lifetimes' column names accepted), with the models' rules checked
    (purchase span within age, ...)."""
    source = "clv summary"
    summary = to_pandas(summary, source)
    if not set(LIFETIMES_NAMES.values()) & set(summary.columns):
        summary = summary.rename(columns=LIFETIMES_NAMES)
    needed = (*SUMMARY_COLUMNS, "repeat_ticket") if spend else SUMMARY_COLUMNS
    require(summary, needed, source)
    if summary.empty:
        raise DataError(source, "no customers")
    for col in needed:
        if not pd.api.types.is_numeric_dtype(summary[col]):
            raise DataError(source, f"must be numeric, got {summary[col].dtype}", column=col)
        _rule(summary, summary[col].isna(), source, "missing value", col)
    x, tx, T = (summary[c].to_numpy("float64") for c in SUMMARY_COLUMNS)
    _rule(
        summary,
        (x < 0) | (x != np.round(x)),
        source,
        "must be a whole number >= 0",
        "repeat_purchases",
    )
    _rule(summary, tx < 0, source, "must be >= 0", "purchase_span")
    _rule(summary, tx > T + 1e-9, source, "purchase_span must not exceed age", "purchase_span")
    _rule(
        summary, (x == 0) & (tx != 0), source, "must be 0 without repeat purchases", "purchase_span"
    )
    return summary


def _spenders(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The repeat buyers Gamma-Gamma can fit (a positive mean repeat amount), and how many repeat
    buyers are left out (all their repeat purchases free or refunded)."""
    repeat = frame["repeat_purchases"] > 0
    positive = frame["repeat_ticket"] > 0
    return frame[repeat & positive], int((repeat & ~positive).sum())


def _rule(frame: pd.DataFrame, bad, source: str, rule: str, column: str) -> None:
    bad = np.asarray(bad)
    if bad.any():
        rows = frame[bad]
        raise DataError(source, rule, column=column, rows=rows, n_bad=len(rows))


def _time_unit(unit: str) -> str:
    if unit not in TIME_UNITS:
        raise DataError("time_unit", f"must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
    return unit
