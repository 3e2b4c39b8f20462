"""The lift models: posterior draws of a metric's mean per customer, one model per metric kind.

Each model reads a group's sufficient statistics (the per-group summary
:func:`closedloop.lift.sufficient_statistics` builds in one group-by) and draws by Monte Carlo
from its conjugate posterior (numpy's ``Generator``, seeded by the caller, so a seed gives the
same answer every time):

- **binary** metrics (visited, converted, registered: 0/1): Beta-Binomial. The rate has the
  posterior Beta(a + x, b + n - x) under the prior Beta(a, b), by default Beta(1, 1) (uniform).
- **value** metrics (revenue per customer: mostly zeros, a long tail): a two-part ("delta
  log-normal") model. Revenue per customer = P(buy) x mean value per buyer, each part with its
  own posterior: P(buy) ~ Beta(a + k, b + n - k) over the k customers with a positive value, and
  the buyers' values are log-normal, log y ~ N(mu, s2), with the conjugate Normal-scaled-inverse-
  chi-square posterior on (mu, s2) (Gelman et al., *Bayesian Data Analysis*, 3rd ed., §3.3,
  eqs. 3.6-3.7; the default is the reference prior p(mu, s2) ∝ 1/s2 of §3.2). The mean value per
  buyer is exp(mu + s2/2). Zeros and the tail are modelled separately instead of forcing a bell
  curve onto a spike at zero; the tests cross-check it against the Gaussian approximation below.
- **normal** metrics (anything else, e.g. margins that can be negative): the mean has the
  reference posterior ybar + s/sqrt(n) t(n-1) from n, the sum and the sum of squares.

The priors (a, b and the log-value prior) come from one :class:`closedloop.priors.Prior`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from closedloop.priors import Prior

__all__ = ["KINDS", "Kind", "binary_means", "normal_means", "posterior_means", "value_means"]

KINDS = ("binary", "value", "normal")
Kind = Literal["binary", "value", "normal"]


def posterior_means(
    summary: pd.DataFrame, i: int, kind: Kind, prior: Prior, rng: np.random.Generator, draws: int
) -> np.ndarray:
    """Posterior draws (groups x draws) of the mean of metric ``i`` in every group (row) of
    ``summary``, from the model of its ``kind``.

    ``summary`` holds, per group, ``_n`` customers and ``_s{i}`` the metric's sum; a value metric
    also ``_k{i}`` buyers (value > 0) and ``_l{i}``, ``_q{i}`` their sum of logs and of squared
    logs; a normal metric ``_q{i}`` the sum of squares."""
    model = {"binary": binary_means, "value": value_means, "normal": normal_means}[kind]
    return model(summary, i, prior, rng, draws)


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


def value_means(summary: pd.DataFrame, i: int, prior: Prior, rng, draws: int) -> np.ndarray:
    """Two-part model: P(buy) x exp(mu + s2 / 2), with P(buy) ~ Beta(a + k, b + n - k) and the
    Normal-scaled-inverse-chi-square posterior (BDA3 §3.3, eqs. 3.6-3.7) on the mean mu and the
    variance s2 of the buyers' log values; NaN where that posterior is improper (under the
    reference prior: fewer than two buyers)."""
    n, k = _column(summary, "_n"), _column(summary, f"_k{i}")
    log_sum, log_sq = _column(summary, f"_l{i}"), _column(summary, f"_q{i}")
    size = (len(summary), draws)
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
