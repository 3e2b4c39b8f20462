"""Customer lifetime value (客户终身价值): how many purchases each customer will still make, what
they will spend, and what that is worth today.

- :func:`summary` — one row per customer: ``frequency`` (repeat purchase days), ``recency``, ``T``
  and ``monetary`` (mean repeat purchase), optionally split into calibration and holdout periods;
- :func:`fit` — a purchase model, BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
  easy way", Marketing Science 24(2)) or Pareto/NBD (Schmittlein, Morrison & Colombo 1987), and the
  Gamma-Gamma spend model (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value");
  the :class:`ClvModel` it returns predicts purchases, P(alive), spend and discounted CLV;
- analyst checks: :func:`calibration_holdout` (predicted vs actual holdout purchases),
  :func:`spend_independence` (Gamma-Gamma's assumption), :func:`repeat_tracking` (cumulative repeat
  purchases, actual vs model) and :func:`clv_by_tier` (CLV by pyramid tier, 客户金字塔).

Raw transactions (pandas, polars, a DuckDB relation or a PySpark DataFrame) are reduced by one
narwhals group-by to customer-days (same-day purchases merged, as in the papers) and then per
customer, where the data lives (:mod:`closedloop._frames`); the models run on that pandas summary. Likelihoods are
the papers' closed forms written with ``scipy.special`` (``gammaln``, ``betaln``, ``hyp2f1``) and
maximised by ``scipy.optimize.minimize`` over the *unique* ``(frequency, recency, T)`` rows, each
weighted by its number of customers (Fader & Hardie's condensed data), with an analytic gradient
for BG/NBD and Gamma-Gamma. Parameters, standard errors and predictions agree with ``lifetimes``
0.11, which is archived: its Pareto/NBD fitter has no standard errors (its ``summary`` fails) and
its CLV helper is not maintained for pandas 3, so both live here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import narwhals as nw
import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from closedloop._frames import collect, lazy_frame, require, to_pandas
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

_SUMMARY_COLUMNS = ("frequency", "recency", "T")
_START = 0.1  # lifetimes' starting point: every log-parameter at 0.1
_GRADIENT_OK = 1e-5  # a fit whose optimiser stops with a larger gradient has not converged


# ---------------------------------------------------------------------------------------------
# The customer summary


def summary(transactions, asof, time_unit: str = "W", calibration_end=None) -> pd.DataFrame:
    """One row per customer: the sufficient statistics of BG/NBD, Pareto/NBD and Gamma-Gamma.

    ``transactions`` (pandas, polars, a DuckDB relation or a PySpark DataFrame; ``customer_id,
    order_date, amount``) are read up to the end of the day ``asof``; purchases on the same day are
    one purchase (amounts summed). Columns:

    - ``frequency`` — repeat purchases: purchase days after the first one;
    - ``recency`` — time from the first to the last purchase; ``T`` — from the first purchase to
      the end of the period; both in ``time_unit`` (``"W"`` weeks = days / 7, or ``"D"`` days);
    - ``monetary`` — mean amount of the repeat purchases (0 for customers without one);
    - ``first_purchase`` — the date of the first purchase.

    With ``calibration_end`` the statistics stop at that day (only customers who bought by then
    are kept) and the rest of the period up to ``asof`` is the holdout: ``frequency_holdout``
    (purchase days), ``monetary_holdout`` (their mean amount) and ``duration_holdout``.
    """
    unit = _time_unit(time_unit)
    end = _day(asof, "asof")
    cut = end if calibration_end is None else _day(calibration_end, "calibration_end")
    if cut > end:
        raise DataError("summary", f"calibration_end {cut:%Y-%m-%d} is after asof {end:%Y-%m-%d}")
    source = "clv.summary transactions"
    days = _customer_days(transactions, end, source)
    in_cal = nw.col("day") <= cut
    per = (
        days.with_columns(nw.col("day").min().over("customer_id").alias("first_day"))
        .filter(nw.col("first_day") <= cut)
        .with_columns(
            in_cal.cast(nw.Int64).alias("n_cal"),
            (~in_cal).cast(nw.Int64).alias("n_hold"),
            nw.when(in_cal).then(nw.col("day")).alias("cal_day"),
            nw.when(in_cal & (nw.col("day") > nw.col("first_day")))
            .then(nw.col("amount"))
            .otherwise(0.0)
            .alias("repeat_amount"),
            nw.when(~in_cal).then(nw.col("amount")).otherwise(0.0).alias("hold_amount"),
        )
        .group_by("customer_id")
        .agg(
            nw.col("first_day").min(),
            nw.col("cal_day").max(),
            nw.col("n_cal").sum(),
            nw.col("n_hold").sum(),
            nw.col("repeat_amount").sum(),
            nw.col("hold_amount").sum(),
        )
        .sort("customer_id")
    )
    per = collect(per)
    if per.empty:
        raise DataError(source, f"no purchases on or before {cut:%Y-%m-%d}")
    per["customer_id"] = per["customer_id"].astype("str")
    per = per.set_index("customer_id")
    first = per["first_day"].astype("datetime64[ns]")
    last = per["cal_day"].astype("datetime64[ns]")
    frequency = per["n_cal"].astype("int64") - 1
    days_per_unit = TIME_UNITS[unit]
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first).dt.days.astype("float64") / days_per_unit,
            "T": (cut - first).dt.days.astype("float64") / days_per_unit,
            "monetary": _mean(per["repeat_amount"], frequency),
            "first_purchase": first,
        },
        index=per.index,
    )
    if calibration_end is not None:
        n_hold = per["n_hold"].astype("int64")
        out["frequency_holdout"] = n_hold
        out["monetary_holdout"] = _mean(per["hold_amount"], n_hold)
        out["duration_holdout"] = (end - cut).days / days_per_unit
    out.attrs = {"asof": end, "calibration_end": cut, "time_unit": unit}
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
    maximised log-likelihood with time in ``time_unit``. Every prediction is a Series by customer
    of ``summary``.
    """

    model: str
    params: pd.Series
    standard_errors: pd.Series
    spend_params: pd.Series | None
    spend_standard_errors: pd.Series | None
    summary: pd.DataFrame
    time_unit: str
    log_likelihood: float
    _patterns: _Patterns = field(repr=False)

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

        ``t`` is a number or one value per customer (e.g. ``summary["duration_holdout"]``).
        BG/NBD: FHL (2005) eq. 10; Pareto/NBD: Schmittlein et al. (1987) eq. 22.
        """
        spec, theta = _SPECS[self.model], self.params.to_numpy()
        if np.ndim(t) == 0:
            pat = self._patterns
            growth = spec.growth(theta, float(t), pat.pair_x, pat.pair_T)[pat.pair]
            values = (growth * spec.weight(theta, pat.x, pat.tx, pat.T))[pat.inverse]
        else:
            t = np.asarray(t, dtype="float64")
            if t.shape != (len(self.summary),):
                raise DataError("expected_purchases", f"t needs one value per customer: {t.shape}")
            x, tx, T = (self.summary[c].to_numpy("float64") for c in _SUMMARY_COLUMNS)
            values = spec.growth(theta, t, x, T) * spec.weight(theta, x, tx, T)
        return self._series(values, "expected_purchases")

    def p_alive(self) -> pd.Series:
        """Probability that each customer is still active (has not churned) at the end of ``T``."""
        pat = self._patterns
        values = _SPECS[self.model].p_alive(self.params.to_numpy(), pat.x, pat.tx, pat.T)
        return self._series(values[pat.inverse], "p_alive")

    def expected_spend(self) -> pd.Series:
        """Expected mean spend per future purchase: Gamma-Gamma, Fader & Hardie (2013) eq. 5.

        ``p (gamma + x m) / (p x + q - 1)``: the customer's own mean ``m`` over ``x`` repeat
        purchases shrunk towards the population mean ``p gamma / (q - 1)``.
        """
        p, q, gamma = self._spend_params()
        x = self.summary["frequency"].to_numpy("float64")
        m = np.where(x > 0, self.summary["monetary"].to_numpy("float64"), 0.0)
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
        pat, spec = self._patterns, _SPECS[self.model]
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
        return _SPECS[self.model].population(self.params.to_numpy(), np.asarray(t, "float64"))

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
    time_unit: str | None = None,
) -> ClvModel:
    """Fit a purchase model (``"bgnbd"`` or ``"pareto"``) and, with ``spend``, Gamma-Gamma.

    ``summary``: one row per customer with ``frequency, recency, T`` (and ``monetary`` for spend),
    e.g. from :func:`summary`; its time unit is ``time_unit`` when given, else the one
    :func:`summary` recorded in ``summary.attrs``, else weeks. Maximum likelihood over the unique ``(frequency, recency, T)`` rows weighted by
    their counts: BG/NBD log-likelihood FHL (2005) eq. 6 with an analytic gradient, Pareto/NBD
    as in Fader & Hardie's note on its likelihood, Gamma-Gamma Fader & Hardie (2013) eq. 1a on the
    repeat buyers. ``penalizer`` adds ``penalizer * sum(params ** 2)`` to the mean negative
    log-likelihood (time scaled so the oldest customer has T = 1), as lifetimes' fitters do.
    Spend fitting warns (:class:`~closedloop.io.DataWarning`) when frequency and spend correlate
    (:func:`spend_independence`).
    """
    if model not in MODELS:
        raise DataError("fit", f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if penalizer < 0:
        raise DataError("fit", f"penalizer must be >= 0, got {penalizer}")
    unit = _time_unit(time_unit or summary.attrs.get("time_unit", "W"))
    frame = _checked_summary(summary, spend)
    patterns = _Patterns.of(frame)
    scale = 1.0 / max(float(patterns.T.max()), 1e-12)
    spec = _SPECS[model]
    log_theta, nll, hess = _maximise(
        spec.objective, spec.prepare(patterns, scale), len(MODELS[model]), penalizer
    )
    theta = np.exp(log_theta)
    theta[1] /= scale  # alpha back to the summary's time unit
    if model == "pareto":
        theta[3] /= scale  # and beta
    names = list(MODELS[model])
    params = pd.Series(theta, index=names, name="estimate")
    errors = _standard_errors(theta, hess, patterns.w.sum(), names)
    spend_params = spend_errors = None
    if spend:
        spend_independence(frame)
        repeat = frame[frame["frequency"] > 0]
        if len(repeat) < len(SPEND_PARAMS):
            raise DataError(
                "fit", "the spend model needs repeat buyers; too few have frequency > 0"
            )
        data = _gamma_gamma_data(repeat)
        log_spend, _, spend_hess = _maximise(_gamma_gamma_objective, data, 3, penalizer)
        spend_theta = np.exp(log_spend)
        spend_params = pd.Series(spend_theta, index=list(SPEND_PARAMS), name="estimate")
        spend_errors = _standard_errors(spend_theta, spend_hess, data[2].sum(), SPEND_PARAMS)
    return ClvModel(
        model=model,
        params=params,
        standard_errors=errors,
        spend_params=spend_params,
        spend_standard_errors=spend_errors,
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
    repeat = frame[frame["frequency"] > 0]
    if len(repeat) < 3:
        raise DataError("spend_independence", "fewer than 3 repeat buyers: nothing to correlate")
    result = stats.pearsonr(repeat["frequency"], repeat["monetary"])
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
    with the model's conditional expectation over each customer's ``duration_holdout``.
    Needs a summary made with ``calibration_end``.
    """
    frame = model.summary
    require(frame, ("frequency_holdout", "duration_holdout"), "calibration_holdout")
    predicted = model.expected_purchases(frame["duration_holdout"].to_numpy("float64"))
    labels = [str(k) for k in range(cap)] + [f"{cap}+"]
    group = pd.Categorical.from_codes(
        np.minimum(frame["frequency"].to_numpy(), cap), categories=labels, ordered=True
    )
    table = pd.DataFrame(
        {"actual": frame["frequency_holdout"], "predicted": predicted, "group": group}
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
    end = _day(asof, "asof")
    days = _customer_days(transactions, end, "clv.repeat_tracking transactions")
    days = days.with_columns(nw.col("day").min().over("customer_id").alias("first_day"))
    cut = frame["first_purchase"].max()
    repeats = collect(
        days.filter((nw.col("first_day") <= cut) & (nw.col("day") > nw.col("first_day")))
        .group_by("day")
        .agg(nw.len().alias("repeats"))
    )
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
# The models: per-row log-likelihoods and predictions (numpy / scipy.special)


@dataclass(frozen=True)
class _Patterns:
    """Unique (frequency, recency, T) rows, their customer counts and each customer's row; and
    the unique (frequency, T) pairs among them, on which the t-dependent part of a forecast
    is computed."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    w: np.ndarray
    inverse: np.ndarray
    pair_x: np.ndarray
    pair_T: np.ndarray
    pair: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Patterns:
        codes, first = _unique_rows(frame[list(_SUMMARY_COLUMNS)])
        x, tx, T = (frame[c].to_numpy("float64")[first] for c in _SUMMARY_COLUMNS)
        pair, pair_first = _unique_rows(pd.DataFrame({"x": x, "T": T}))
        weights = np.bincount(codes).astype("float64")
        return cls(x, tx, T, weights, codes, x[pair_first], T[pair_first], pair)


def _unique_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group code (hashing group-by) and the first row of each group."""
    codes = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    # unsorted group codes are numbered in order of appearance: a new group raises the maximum
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    return codes, first


class _BGNBD:
    """BG/NBD: Fader, Hardie & Lee (2005), Marketing Science 24(2), 275-284."""

    @staticmethod
    def prepare(pat: _Patterns, scale: float):
        """The patterns, and each distinct count, recency and T with its rows: the terms of the
        likelihood that depend on one of them only are evaluated once per distinct value (days
        make at most a few hundred distinct recencies and Ts among a million customers)."""
        ux, xi = np.unique(pat.x, return_inverse=True)
        utx, txi = np.unique(pat.tx * scale, return_inverse=True)
        uT, Ti = np.unique(pat.T * scale, return_inverse=True)
        xw = np.bincount(xi, weights=pat.w)
        return pat.x, pat.w, ux, xi, xw, utx, txi, uT, Ti

    @staticmethod
    def objective(u, data, penalizer):
        """Mean negative log-likelihood (eq. 6) and its gradient in log-parameters."""
        x, w, ux, xi, xw, utx, txi, uT, Ti = data
        r, alpha, a, b = theta = np.exp(u)
        W = w.sum()
        # terms that depend on the purchase count only: once per distinct count
        ll_x = (
            special.gammaln(r + ux)
            - special.gammaln(r)
            + r * np.log(alpha)
            + special.betaln(a, b + ux)
            - special.betaln(a, b)
        )
        g_x = np.stack(
            [
                special.digamma(r + ux) - special.digamma(r) + np.log(alpha),
                np.full_like(ux, r / alpha),
                special.digamma(a + b) - special.digamma(a + b + ux),
                special.digamma(a + b)
                + special.digamma(b + ux)
                - special.digamma(b)
                - special.digamma(a + b + ux),
            ]
        )
        repeat = ux > 0
        bx = np.where(repeat, b + ux - 1, 1.0)
        c_x = np.where(repeat, np.log(a) - np.log(bx), -np.inf)
        inv_bx = np.where(repeat, 1 / bx, 0.0)
        # per row: log(exp(A3) + exp(A4)) with A3 = -(r+x) ln(alpha+T) and
        # A4 = c_x - (r+x) ln(alpha+t_x), as A3 + log(1 + exp(d)), d = A4 - A3; pi = P(A4 term)
        # (sums of products, not BLAS dot: its threads are slower than one core on a busy machine)
        rx = r + x
        wrx = w * rx
        log_T, log_tx = np.log(alpha + uT)[Ti], np.log(alpha + utx)[txi]
        d = c_x[xi] + rx * (log_T - log_tx)
        e = np.exp(-np.abs(d))
        pi = np.where(d >= 0, 1.0, e) / (1 + e)  # expit(d), without overflow
        wpi = w * pi
        softplus = np.maximum(d, 0) + np.log1p(e)  # log(1 + exp(d))
        ll = xw @ ll_x - (wrx * log_T).sum() + (w * softplus).sum()
        grad = g_x @ xw + np.array(
            [
                -((w - wpi) * log_T).sum() - (wpi * log_tx).sum(),
                -(wrx * ((1 - pi) / (alpha + uT)[Ti] + pi / (alpha + utx)[txi])).sum(),
                wpi.sum() / a,
                -(wpi * inv_bx[xi]).sum(),
            ]
        )
        f = -ll / W + penalizer * (theta**2).sum()
        return f, theta * (-grad / W + 2 * penalizer * theta)

    @staticmethod
    def growth(theta, t, x, T):
        """The part of FHL (2005) eq. 10 that depends on t: it needs x and T only, not t_x.

        ``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]``
        (Euler's transform of 2F1 where it overflows).
        """
        r, alpha, a, b = theta
        ha, hb, hc = r + x, b + x, a + b + x - 1
        z = t / (alpha + T + t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_h = np.log(special.hyp2f1(ha, hb, hc, z))
            alt = np.log(special.hyp2f1(hc - ha, hc - hb, hc, z)) + (hc - ha - hb) * np.log1p(-z)
        log_h = np.where(np.isfinite(log_h), log_h, alt)
        head = (a + b + x - 1) / (a - 1)
        return head * (1 - np.exp(log_h + (r + x) * np.log((alpha + T) / (alpha + T + t))))

    @staticmethod
    def p_alive(theta, x, tx, T):
        """P(alive | x, t_x, T), FHL (2005) eq. 11 (= 1 for customers without a repeat); it is
        also the t-free factor of eq. 10: E[Y(t) | x, t_x, T] = growth * p_alive."""
        r, alpha, a, b = theta
        bx = np.where(x > 0, b + x - 1, 1.0)
        odds = (x > 0) * (a / bx) * np.exp((r + x) * np.log((alpha + T) / (alpha + tx)))
        return 1 / (1 + odds)

    weight = p_alive

    @staticmethod
    def population(theta, t):
        """E[X(t)] for a customer who just made the first purchase, FHL (2005) eq. 9."""
        r, alpha, a, b = theta
        z = t / (alpha + t)
        return (
            (a + b - 1)
            / (a - 1)
            * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))
        )


class _ParetoNBD:
    """Pareto/NBD: Schmittlein, Morrison & Colombo (1987); likelihood as in Fader, Hardie & Lee
    (2005), "A note on deriving the Pareto/NBD model and related expressions", eq. 22."""

    @staticmethod
    def prepare(pat: _Patterns, scale: float):
        return pat.x, pat.tx * scale, pat.T * scale, pat.w

    @staticmethod
    def objective(u, data, penalizer):
        """Mean negative log-likelihood; central-difference gradient (2F1 has no closed derivative)."""
        x, tx, T, w = data

        def f(v):
            theta = np.exp(v)
            ll = _ParetoNBD.loglik(theta, x, tx, T)
            return -(w @ ll) / w.sum() + penalizer * (theta**2).sum()

        step = 1e-6
        grad = np.array([(f(u + step * e) - f(u - step * e)) / (2 * step) for e in np.eye(len(u))])
        return f(u), grad

    @staticmethod
    def loglik(theta, x, tx, T):
        r, alpha, s, beta = theta
        head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        tail = np.logaddexp(
            -(r + x) * np.log(alpha + T) - s * np.log(beta + T),
            np.log(s) + _ParetoNBD._log_a0(theta, x, tx, T) - np.log(r + s + x),
        )
        return head + tail

    @staticmethod
    def _log_a0(theta, x, tx, T):
        r, alpha, s, beta = theta
        low, high, second = (alpha, beta, r + x) if alpha < beta else (beta, alpha, s + 1)
        rsx = r + s + x
        q1, q2 = high + tx, high + T
        with np.errstate(divide="ignore"):
            l1 = np.log(special.hyp2f1(rsx, second, rsx + 1, (high - low) / q1)) + rsx * np.log(q2)
            l2 = np.log(special.hyp2f1(rsx, second, rsx + 1, (high - low) / q2)) + rsx * np.log(q1)
            return l1 + np.log1p(-np.exp(l2 - l1)) - rsx * np.log(q1 * q2)

    @staticmethod
    def growth(theta, t, x, T):
        """The t-dependent factor of Schmittlein et al. (1987) eq. 22 (a function of T only)."""
        s, beta = theta[2:]
        return (1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1) + 0 * x

    @staticmethod
    def weight(theta, x, tx, T):
        """The t-free factor of eq. 22, written with the customer's likelihood."""
        r, alpha, s, beta = theta
        log_ll = _ParetoNBD.loglik(theta, x, tx, T)
        head = (
            special.gammaln(r + x)
            - special.gammaln(r)
            + r * np.log(alpha)
            + s * np.log(beta)
            - (r + x) * np.log(alpha + T)
            - s * np.log(beta + T)
        )
        return np.exp(head + np.log(r + x) + np.log(beta + T) - np.log(alpha + T) - log_ll)

    @staticmethod
    def p_alive(theta, x, tx, T):
        """P(alive | x, t_x, T), Schmittlein et al. (1987) eq. 18."""
        r, alpha, s, beta = theta
        log_a0 = _ParetoNBD._log_a0(theta, x, tx, T)
        return 1 / (
            1
            + np.exp(
                np.log(s)
                - np.log(r + s + x)
                + (r + x) * np.log(alpha + T)
                + s * np.log(beta + T)
                + log_a0
            )
        )

    @staticmethod
    def population(theta, t):
        """E[X(t)] for a new customer: r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s-1)]."""
        r, alpha, s, beta = theta
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


_SPECS = {"bgnbd": _BGNBD, "pareto": _ParetoNBD}


def _gamma_gamma_data(repeat: pd.DataFrame):
    """Per row only ``x`` and ``x m`` are needed each step; the rest is summed once."""
    keys = repeat.groupby(["frequency", "monetary"], sort=False).size()
    x = keys.index.get_level_values(0).to_numpy("float64")
    m = keys.index.get_level_values(1).to_numpy("float64")
    w = keys.to_numpy("float64")
    ux, xi = np.unique(x, return_inverse=True)
    log_m = np.log(m)
    return x, x * m, w, ux, np.bincount(xi, weights=w), w @ (x * log_m), w @ log_m


def _gamma_gamma_objective(u, data, penalizer):
    """Gamma-Gamma mean negative log-likelihood, Fader & Hardie (2013) eq. 1a, and gradient.

    ``gammaln(px+q) - gammaln(px) - gammaln(q) + q ln(gamma) + (px-1) ln(m) + px ln(x)
    - (px+q) ln(gamma + x m)``: the gamma functions depend on the count x only, so they are
    evaluated once per distinct count.
    """
    x, xm, w, ux, xw, s_xlogm, s_logm = data
    p, q, gamma = theta = np.exp(u)
    pu = p * ux
    dg = special.digamma(pu + q)
    per_x = (
        special.gammaln(pu + q)
        - special.gammaln(pu)
        - special.gammaln(q)
        + q * np.log(gamma)
        + pu * np.log(ux)
    )
    log_xm = np.log(gamma + xm)
    wpxq = w * (p * x + q)
    # per row: sums of products, not BLAS dot (its threads are slower on a busy machine)
    ll = xw @ per_x + p * s_xlogm - s_logm - (wpxq * log_xm).sum()
    grad = np.array(
        [
            xw @ (ux * (dg - special.digamma(pu) + np.log(ux))) + s_xlogm - (w * x * log_xm).sum(),
            xw @ (dg - special.digamma(q) + np.log(gamma)) - (w * log_xm).sum(),
            xw.sum() * q / gamma - (wpxq / (gamma + xm)).sum(),
        ]
    )
    W = w.sum()
    f = -ll / W + penalizer * (theta**2).sum()
    return f, theta * (-grad / W + 2 * penalizer * theta)


def _maximise(objective, data, k: int, penalizer: float):
    """Minimise a mean negative log-likelihood over log-parameters (BFGS, lifetimes' start)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = optimize.minimize(
            objective,
            np.full(k, _START),
            args=(data, penalizer),
            jac=True,
            method="BFGS",
            options={"gtol": 1e-9, "maxiter": 2000},
        )
        grad = objective(result.x, data, penalizer)[1]
    if not (np.all(np.isfinite(result.x)) and np.max(np.abs(grad)) < _GRADIENT_OK):
        raise DataError(
            "fit",
            f"the model did not converge ({result.message}); try a penalizer such as 0.001",
        )
    hess = _hessian(lambda v: objective(v, data, penalizer)[1], result.x)
    return result.x, float(result.fun), hess


def _hessian(grad, u: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Hessian by central differences of the gradient, symmetrised."""
    rows = [(grad(u + step * e) - grad(u - step * e)) / (2 * step) for e in np.eye(len(u))]
    hess = np.array(rows)
    return (hess + hess.T) / 2


def _standard_errors(theta, hess, n: float, names) -> pd.Series:
    """Delta method from log-parameters: se = theta * sqrt(diag(H^-1) / n), as lifetimes."""
    try:
        cov = np.linalg.inv(hess) / n
    except np.linalg.LinAlgError:
        cov = np.full_like(hess, np.nan)
    return pd.Series(theta * np.sqrt(np.clip(np.diag(cov), 0, None)), index=list(names), name="se")


# ---------------------------------------------------------------------------------------------
# Helpers


def _customer_days(transactions, end: pd.Timestamp, source: str):
    """Purchases up to the end of ``end`` merged to one row per customer and day (amounts summed)."""
    frame = lazy_frame(transactions, source, ("customer_id", "order_date", "amount"))
    schema = frame.collect_schema()
    if not isinstance(schema["order_date"], nw.Datetime):
        raise DataError(
            source, f"must be a datetime, got {schema['order_date']}", column="order_date"
        )
    return (
        frame.filter(nw.col("order_date") < end + pd.Timedelta(days=1))
        .with_columns(nw.col("order_date").dt.truncate("1d").alias("day"))
        .group_by("customer_id", "day")
        .agg(nw.col("amount").sum())
    )


def _mean(total: pd.Series, count: pd.Series) -> pd.Series:
    values = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return pd.Series(values.astype("float64"), index=total.index)


def _checked_summary(summary, spend: bool) -> pd.DataFrame:
    """The summary as pandas, with the rules of the models checked (recency within T, ...)."""
    source = "clv summary"
    summary = to_pandas(summary, source)
    needed = (*_SUMMARY_COLUMNS, "monetary") if spend else _SUMMARY_COLUMNS
    require(summary, needed, source)
    if summary.empty:
        raise DataError(source, "no customers")
    for col in needed:
        if not pd.api.types.is_numeric_dtype(summary[col]):
            raise DataError(source, f"must be numeric, got {summary[col].dtype}", column=col)
        _rule(summary, summary[col].isna(), source, "missing value", col)
    x, tx, T = (summary[c].to_numpy("float64") for c in _SUMMARY_COLUMNS)
    _rule(summary, (x < 0) | (x != np.round(x)), source, "must be a whole number >= 0", "frequency")
    _rule(summary, tx < 0, source, "must be >= 0", "recency")
    _rule(summary, tx > T + 1e-9, source, "recency must not exceed T", "recency")
    _rule(summary, (x == 0) & (tx != 0), source, "must be 0 when frequency is 0", "recency")
    if spend:
        _rule(
            summary,
            (x > 0) & ~(summary["monetary"].to_numpy("float64") > 0),
            source,
            "must be > 0 for repeat buyers (frequency > 0)",
            "monetary",
        )
    return summary


def _rule(frame: pd.DataFrame, bad, source: str, rule: str, column: str) -> None:
    bad = np.asarray(bad)
    if bad.any():
        rows = frame[bad]
        raise DataError(source, rule, column=column, rows=rows, n_bad=len(rows))


def _time_unit(unit: str) -> str:
    if unit not in TIME_UNITS:
        raise DataError("time_unit", f"must be one of {', '.join(TIME_UNITS)}, got {unit!r}")
    return unit


def _day(value, name: str) -> pd.Timestamp:
    if value is None:
        raise DataError(name, f"{name} is required (a date, e.g. 1998-06-30)")
    try:
        return pd.Timestamp(value).normalize()
    except (TypeError, ValueError) as exc:
        raise DataError(name, f"not a date: {value!r}") from exc
