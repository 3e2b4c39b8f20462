"""The lift models: posterior draws of a metric's mean per customer, one model per metric kind.

Each model reads a group's sufficient statistics (the per-group summary
:func:`closedloop.lift.sufficient_statistics` builds in one group-by) and draws by Monte Carlo
from its conjugate posterior (numpy's ``Generator``, seeded by the caller, so a seed gives the
same answer every time):

- **binary** metrics (visited, converted, registered: 0/1): Beta-Binomial. The rate has the
  posterior Beta(a + x, b + n - x) under the prior Beta(a, b), by default Jeffreys'
  Beta(1/2, 1/2) (:class:`closedloop.priors.Prior` says why).
- **value** metrics (revenue per customer: mostly zeros, a long tail): a normal posterior on the
  arm's mean per customer, ybar + s / sqrt(n) z, from the customers, the sum and the sum of
  squares (the central limit theorem on the mean, whatever the shape of the order values). This
  is the model of GrowthBook's engine (gbstats; "Statistical details" in GrowthBook's docs) and
  of Eppo; the relative lift is the ratio of the posterior draws (given a positive holdout
  mean: :func:`closedloop.lift._positive_part`), whose median is about the observed ratio and
  whose spread matches the delta method's standard error (Deng, Knoblich and Lu,
  "Applying the Delta Method in Metric Analytics", KDD 2018). It replaced a two-part log-normal
  model whose mean per buyer exp(mu + s2/2) has no finite posterior expectation (the expected
  loss was Monte Carlo noise) and whose intervals covered 81% when values were gamma-shaped;
  measured coverage of both in ``benchmarks/bench_calibration.py`` (``benchmarks/results.md``).
  With few buyers the sample variance understates the spread (a sample that happens to hold
  no large order looks precise), so the variance per customer is the one implied by the arm's
  buy rate under its Beta posterior mean and its buyers' values shrunk towards those of the
  other arms (:func:`value_moments`); an arm with no buyer gets a wide interval, not a point.
- **normal** metrics (anything else, e.g. margins that can be negative): the mean has the
  reference posterior ybar + s/sqrt(n) t(n-1) from n, the sum and the sum of squares.

The interval shown beside each arm's own mean (:func:`mean_interval`) is a rate's Beta interval,
or for a value metric Hall's skewness-corrected interval with the skewness pooled over the arms
(:func:`skewed_interval`; it needs the sum of cubes). The lifts keep the normal posterior: the
skew of two arms' means largely cancels in their difference, whose normal interval covers
95-96% (skewed draws of each arm made the lift's interval cover 98-99%).

The priors (a, b and the log-value prior) come from one :class:`closedloop.priors.Prior`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from closedloop.priors import Prior

__all__ = [
    "KINDS",
    "Kind",
    "binary_means",
    "lognormal_means",
    "mean_interval",
    "moments",
    "normal_draws",
    "normal_means",
    "posterior_means",
    "rate_interval",
    "skewed_interval",
    "value_means",
    "value_moments",
    "value_skewness",
]

KINDS = ("binary", "value", "normal")
Kind = Literal["binary", "value", "normal"]


def posterior_means(
    summary: pd.DataFrame,
    i: int,
    kind: Kind,
    prior: Prior,
    rng: np.random.Generator,
    draws: int,
    pool=None,
) -> np.ndarray:
    """Posterior draws (groups x draws) of the mean of metric ``i`` in every group (row) of
    ``summary``, from the model of its ``kind``.

    ``summary`` holds, per group, ``_n`` customers and ``_s{i}`` the metric's sum; a value metric
    also ``_k{i}`` buyers (value > 0) and ``_q{i}`` the sum of squares; a normal metric ``_q{i}``
    the sum of squares. ``pool`` (one label per group, default all one) says which groups pool
    their buyers for the value model's variance floor (the groups of one segment)."""
    if kind == "value":
        return value_means(summary, i, rng, draws, pool)
    model = {"binary": binary_means, "normal": normal_means}[kind]
    return model(summary, i, prior, rng, draws)


def moments(summary: pd.DataFrame, i: int, kind: Kind, prior: Prior, pool=None):
    """Per group: the mean per customer, the variance per customer a normal posterior on the mean
    uses and the sample variance: for a value metric the model variance of
    :func:`value_moments`, for a binary one p (1 - p) at the Beta posterior mean p, for a normal
    one the sample variance."""
    n, total = summary["_n"].to_numpy("float64"), summary[f"_s{i}"].to_numpy("float64")
    if kind == "value":
        return value_moments(n, total, summary[f"_q{i}"], summary[f"_k{i}"], pool)
    mean = total / n
    if kind == "binary":
        with np.errstate(invalid="ignore", divide="ignore"):
            sample = np.where(n > 1, total * (n - total) / (n * (n - 1)), 0.0)
        p = (prior.alpha + total) / (prior.alpha + prior.beta + n)
        return mean, p * (1 - p), sample
    sq = summary[f"_q{i}"].to_numpy("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        sample = np.where(n > 1, np.maximum(sq - total * mean, 0.0) / (n - 1), 0.0)
    return mean, sample, sample


def binary_means(summary: pd.DataFrame, i: int, prior: Prior, rng, draws: int) -> np.ndarray:
    """Beta-Binomial: the rate's posterior Beta(a + x, b + n - x) under the prior Beta(a, b)."""
    n, total = _column(summary, "_n"), _column(summary, f"_s{i}")
    return rng.beta(prior.alpha + total, prior.beta + n - total, (len(summary), draws))


def normal_means(summary: pd.DataFrame, i: int, prior: Prior, rng, draws: int) -> np.ndarray:
    """The reference posterior of a normal mean, ybar + s/sqrt(n) t(n-1) (BDA3 §3.2); NaN for a
    group of fewer than two customers. The normal model takes no prior parameters."""
    n, total, sq = _column(summary, "_n"), _column(summary, f"_s{i}"), _column(summary, f"_q{i}")
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(sq - total**2 / n, 0.0) / (n - 1)
        t = rng.standard_t(np.maximum(n - 1, 1.0), (len(summary), draws))
        return np.where(n > 1, total / n + np.sqrt(var / n) * t, np.nan)


#: pseudo-buyers: how many buyers' worth of the pooled value distribution each arm's is shrunk to
PSEUDO_BUYERS = 10.0
#: the variance floor's buy rate is (k + PSEUDO_BUYS) / (n + 2 PSEUDO_BUYS), Laplace's rule
PSEUDO_BUYS = 1.0


def value_moments(n, total, squares, buyers, pool=None):
    """Mean, model variance and sample variance per customer of a value metric in each group,
    from the customers ``n``, the ``total``, the sum of ``squares`` and the ``buyers`` (arrays,
    one entry per group).

    The model variance is that of a customer who buys with the rate p = (k + 1) / (n + 2)
    (:data:`PSEUDO_BUYS`; Laplace's rule of succession) and spends like the arm's k buyers plus :data:`PSEUDO_BUYERS`
    pseudo-buyers drawn from the buyers of all the groups with the same ``pool`` label (a
    segment's arms): p m2 - p^2 m^2, with m and m2 the shrunk mean and mean square per buyer.
    With hundreds of buyers it is the sample variance; with 0 or 3 it borrows the other arms'
    spread, so an arm with few buyers does not look certain (a sample that happens to hold no
    large order has a small sample variance). The floor's rate is not the rate's posterior mean
    under Jeffreys' prior, (k + 1/2) / (n + 1), which halves the variance of an arm with no buyer:
    there its interval covered 77% of the arms with no buyer and 91% of all arms in the harness's
    zero-conversion campaigns, against 82% and 93.5% with this floor."""
    n, total, squares, buyers = (
        np.asarray(a, dtype="float64") for a in (n, total, squares, buyers)
    )
    pool = np.zeros(len(n), dtype="int64") if pool is None else np.asarray(pool)
    k0 = PSEUDO_BUYERS
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / n, 0.0)
        sample = np.where(n > 1, np.maximum(squares - total * mean, 0.0) / (n - 1), 0.0)
        k = np.bincount(pool, weights=buyers)[pool]
        m_pool = np.where(k > 0, np.bincount(pool, weights=total)[pool] / k, 0.0)
        m2_pool = np.where(k > 0, np.bincount(pool, weights=squares)[pool] / k, 0.0)
        m = (total + k0 * m_pool) / (buyers + k0)
        m2 = (squares + k0 * m2_pool) / (buyers + k0)
        p = (buyers + PSEUDO_BUYS) / (n + 2 * PSEUDO_BUYS)
        var = np.maximum(p * m2 - p**2 * m**2, 0.0)
    return mean, var, sample


def normal_draws(mean, var, n, rng, draws: int) -> np.ndarray:
    """Draws (groups x draws) of a normal posterior on each group's mean: mean + sqrt(var / n) z."""
    mean, var, n = (np.asarray(a, dtype="float64")[:, None] for a in (mean, var, n))
    scale = np.sqrt(var / np.maximum(n, 1.0))
    return mean + scale * rng.standard_normal((len(mean), draws))


def value_skewness(n, total, squares, cubes, pool=None) -> np.ndarray:
    """Per group, the skewness of a customer's value, pooled over the groups with the same
    ``pool`` label (a segment's arms): M3 / M2^1.5 with M2, M3 the customer-weighted averages of
    the groups' second and third central moments (each about its own mean). The arms of a
    campaign share the shape of their order values; one arm's 200 buyers say little about it,
    and a skewness estimated from them is biased low under heavy tails."""
    n, total, squares, cubes = (np.asarray(a, dtype="float64") for a in (n, total, squares, cubes))
    pool = np.zeros(len(n), dtype="int64") if pool is None else np.asarray(pool)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / n, 0.0)
        m2 = np.maximum(squares - total * mean, 0.0)  # n x the central moments
        m3 = cubes - 3 * mean * squares + 2 * mean**2 * total
        big_m2 = np.bincount(pool, weights=m2)[pool] / np.bincount(pool, weights=n)[pool]
        big_m3 = np.bincount(pool, weights=m3)[pool] / np.bincount(pool, weights=n)[pool]
        return np.where(big_m2 > 0, big_m3 / big_m2**1.5, 0.0)


def skewed_interval(mean, var, skew, n, level: float):
    """Hall's skewness-corrected interval for a mean (Hall, "On the removal of skewness by
    transformation", JRSS B 54, 1992): the t statistic T = (ybar - mu) / se is transformed by
    g(t) = t + a t^2 + a^2 t^3 / 3 + b, a = skew / (3 sqrt n), b = skew / (6 sqrt n), so that g(T)
    is close to N(0, 1); the interval is ybar - se g^-1(+-z), with
    g^-1(x) = ((1 + 3 a (x - b))^(1/3) - 1) / a. Right-skewed revenue puts the true mean more
    often above the sample mean than below (most samples miss the largest orders): the
    symmetric interval covered an arm's mean revenue per customer 81% of the time under heavy
    tails, this one 94-96% with the skewness pooled over the arms
    (``benchmarks/bench_calibration.py``). With skew 0 it is the normal interval. The normal
    quantile is ``scipy.special.ndtri`` (what ``scipy.stats.norm.ppf`` computes, without the
    import of scipy.stats, which takes most of a second in the run's process)."""
    from scipy import special

    mean, var, skew, n = (np.asarray(a, dtype="float64") for a in (mean, var, skew, n))
    se = np.sqrt(var / np.maximum(n, 1.0))
    root = np.sqrt(np.maximum(n, 1.0))
    a, b = skew / (3 * root), skew / (6 * root)
    z = special.ndtri(0.5 + level / 2)

    def inverse(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.abs(a) > 1e-12, (np.cbrt(1 + 3 * a * (x - b)) - 1) / a, x - b)

    return mean - se * inverse(z), mean - se * inverse(-z)


def mean_interval(summary: pd.DataFrame, i: int, kind: Kind, prior: Prior, level: float, pool=None):
    """Per group: the credible or confidence interval of the mean per customer of metric ``i``
    shown beside each arm's mean: a rate's Beta interval (:func:`rate_interval`), a value
    metric's skewness-corrected one (:func:`skewed_interval`, the variance of
    :func:`value_moments` and the skewness of :func:`value_skewness`), a normal metric's
    Student-t one (``scipy.special.stdtrit``, as ``scipy.stats.t.ppf``). Each holds the
    observed mean."""
    from scipy import special

    n, total = summary["_n"].to_numpy("float64"), summary[f"_s{i}"].to_numpy("float64")
    if kind == "binary":
        _, low, high = rate_interval(total, n, prior, level)
        return low, high
    squares = summary[f"_q{i}"].to_numpy("float64")
    if kind == "value":
        mean, var, _ = value_moments(n, total, squares, summary[f"_k{i}"], pool)
        skew = value_skewness(n, total, squares, summary[f"_c{i}"], pool)
        return skewed_interval(mean, var, skew, n, level)
    mean, var, _ = moments(summary, i, kind, prior, pool)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = special.stdtrit(np.maximum(n - 1, 1.0), 0.5 + level / 2) * np.sqrt(var / n)
    return np.where(n > 1, mean - half, np.nan), np.where(n > 1, mean + half, np.nan)


def rate_interval(x, n, prior: Prior, level: float):
    """Observed share x / n and the equal-tailed Beta(alpha + x, beta + n - x) credible interval,
    with its lower bound set to 0 when nobody reached the stage and its upper bound to 1 when
    everybody did, so the interval holds the observed rate: the boundary rule of the Jeffreys
    interval (Brown, Cai and DasGupta, Statistical Science 16, 2001, §4.1). An equal-tailed
    interval at an observed 0 was [0.000084, 0.0122] and excluded it; the former one-sided
    [0, 95% quantile] covered 84% of the arms with 0 conversions in 300 of the harness's
    zero-conversion campaigns, this one 95% (``benchmarks/bench_calibration.py``). The
    quantiles are ``scipy.special.betaincinv``, what ``scipy.stats.beta.ppf`` computes."""
    from scipy import special

    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, x / n, np.nan)
        a, b = prior.alpha + x, prior.beta + n - x
        none, every = (x == 0) & (n > 0), (x == n) & (n > 0)
        low = np.where(n > 0, special.betaincinv(a, b, tail), np.nan)
        high = np.where(n > 0, special.betaincinv(a, b, 1 - tail), np.nan)
        low, high = np.where(none, 0.0, low), np.where(every, 1.0, high)
    return rate, low, high


def value_means(summary: pd.DataFrame, i: int, rng, draws: int, pool=None) -> np.ndarray:
    """The normal posterior on the mean per customer, ybar + s / sqrt(n) z, with the variance of
    :func:`value_moments` (the sample variance, shrunk to the pooled buyers' where few)."""
    mean, var, _ = value_moments(
        summary["_n"], summary[f"_s{i}"], summary[f"_q{i}"], summary[f"_k{i}"], pool
    )
    return normal_draws(mean, var, summary["_n"], rng, draws)


def lognormal_means(n, buyers, log_sum, log_squares, prior: Prior, rng, draws: int) -> np.ndarray:
    """The former value model, kept as the benchmark's reference: P(buy) x exp(mu + s2 / 2), with
    P(buy) ~ Beta(a + k, b + n - k) and the Normal-scaled-inverse-chi-square posterior (BDA3
    §3.3, eqs. 3.6-3.7) on the mean mu and the variance s2 of the buyers' log values; NaN where
    that posterior is improper (under the reference prior: fewer than two buyers). Its posterior
    mean is infinite (E[exp(s2 / 2)] diverges under an inverse-chi-square s2), which is why it
    is no longer the value model."""
    n, k, log_sum, log_sq = (
        np.asarray(a, dtype="float64")[:, None] for a in (n, buyers, log_sum, log_squares)
    )
    size = (len(n), draws)
    p = rng.beta(prior.alpha + k, prior.beta + n - k, size)
    mu0, kappa0, nu0, s0 = (
        prior.log_mean,
        prior.log_mean_weight,
        prior.log_var_dof,
        prior.log_var,
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        log_mean = log_sum / k
        ss = np.maximum(log_sq - log_sum * log_mean, 0.0)  # sum of squared deviations
        kappa = kappa0 + k
        nu = nu0 + k
        mu_n = (kappa0 * mu0 + log_sum) / kappa
        scale = nu0 * s0 + ss + np.where(k > 0, kappa0 * k / kappa * (log_mean - mu0) ** 2, 0.0)
        ok = (nu > 0) & (kappa > 0) & (scale > 0)
        s2 = np.where(ok, scale, 1.0) / rng.chisquare(np.where(ok, nu, 1.0), size)
        mu = rng.normal(np.where(ok, mu_n, 0.0), np.sqrt(s2 / np.where(ok, kappa, 1.0)))
        return np.where(ok, p * np.exp(mu + s2 / 2), np.nan)


def _column(summary: pd.DataFrame, name: str) -> np.ndarray:
    """One summary column as a float column vector (groups x 1), to broadcast against draws."""
    return summary[name].to_numpy("float64")[:, None]
