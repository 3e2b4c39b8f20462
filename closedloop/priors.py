"""The priors of every Bayesian estimate in the package, in one place.

One :class:`Prior` serves the lift models (:mod:`closedloop.lift_models`), the funnel's rate
intervals and targets (:mod:`closedloop.funnel`) and the PDCA scorecard's P(met) for rate targets
(:mod:`closedloop.pdca`), so a rate means the same posterior wherever it is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from closedloop.errors import DataError

__all__ = ["PRIOR", "Prior"]


@dataclass(frozen=True)
class Prior:
    """Prior distributions, one home for all of them.

    ``alpha, beta``: the Beta(alpha, beta) prior on every rate (binary lift metrics, P(buy) of
    value metrics, funnel stage rates, the scorecard's rate targets); a rate with x successes in
    n trials has the posterior Beta(alpha + x, beta + n - x). The default is Jeffreys' prior
    Beta(1/2, 1/2): its equal-tailed interval has close to nominal frequentist coverage even for
    rates near 0 (Brown, Cai and DasGupta, "Interval Estimation for a Binomial Proportion",
    Statistical Science 16, 2001). The uniform Beta(1, 1) adds a whole success to each arm, which
    dominates an arm of 300 with 0-3 conversions: its lift intervals covered 98-99% there, the
    Jeffreys intervals 96-97% (``benchmarks/bench_calibration.py``).

    ``log_mean, log_mean_weight, log_var_dof, log_var``: the Normal-scaled-inverse-chi-square
    prior (mu0, kappa0, nu0, sigma0^2) on the log value per buyer of value metrics (Gelman et al.,
    *Bayesian Data Analysis*, 3rd ed., §3.3). The default (kappa0 = 0, nu0 = -1) is the reference
    prior p(mu, s2) ∝ 1/s2 of §3.2, which needs at least two buyers per arm; a proper prior
    (kappa0 > 0, nu0 > 0) works with fewer.
    """

    alpha: float = 0.5
    beta: float = 0.5
    log_mean: float = 0.0
    log_mean_weight: float = 0.0
    log_var_dof: float = -1.0
    log_var: float = 0.0

    def __post_init__(self):
        values = (self.alpha, self.beta, self.log_mean, self.log_mean_weight)
        if not all(math.isfinite(v) for v in (*values, self.log_var_dof, self.log_var)):
            raise DataError("prior", "every prior parameter must be a finite number")
        if not (self.alpha > 0 and self.beta > 0):
            raise DataError("prior", "the Beta prior needs alpha > 0 and beta > 0")
        if self.log_mean_weight < 0 or self.log_var < 0 or self.log_var_dof < -1:
            raise DataError(
                "prior",
                "the log-value prior needs log_mean_weight >= 0, log_var >= 0, log_var_dof >= -1",
            )


#: the default prior: Jeffreys' Beta(1/2, 1/2) on rates, reference prior on log value per buyer
PRIOR = Prior()
