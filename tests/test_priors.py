"""The one prior type: its checks, and that lift and the funnel read the same Beta prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from closedloop import DataError
from closedloop.funnel import funnel, funnel_vs_targets
from closedloop.priors import PRIOR, Prior


def test_default_is_jeffreys_on_rates_and_the_reference_prior_on_log_values():
    assert (PRIOR.alpha, PRIOR.beta) == (0.5, 0.5)
    assert (PRIOR.log_mean_weight, PRIOR.log_var_dof, PRIOR.log_var) == (0.0, -1.0, 0.0)
    with pytest.raises(AttributeError):
        PRIOR.alpha = 2.0  # frozen: the default cannot drift


def test_bad_priors_name_the_problem():
    with pytest.raises(DataError, match="Beta prior needs alpha > 0"):
        Prior(alpha=0)
    with pytest.raises(DataError, match="Beta prior needs alpha > 0"):
        Prior(beta=-1.0)
    with pytest.raises(DataError, match="log-value prior needs"):
        Prior(log_var_dof=-2.0)
    for bad in ({"alpha": float("inf")}, {"beta": float("nan")}, {"log_var": float("inf")}):
        with pytest.raises(DataError, match="must be a finite number"):
            Prior(**bad)


def test_funnel_rates_use_the_prior():
    flags = pd.DataFrame({"touch": [1] * 20, "visit": [1] * 5 + [0] * 15})
    sceptical = Prior(alpha=2.0, beta=8.0)
    rows = funnel(flags, ["touch", "visit"], prior=sceptical).set_index("stage")
    low, high = stats.beta(2 + 5, 8 + 15).ppf([0.025, 0.975])
    assert rows.at["visit", "cum_rate"] == 0.25
    assert np.allclose(rows.loc["visit", ["cum_rate_low", "cum_rate_high"]], [low, high])
    targets = funnel_vs_targets(funnel(flags, ["touch", "visit"]), {"visit": 0.3}, prior=sceptical)
    assert targets["p_met"].iat[0] == pytest.approx(stats.beta(2 + 5, 8 + 15).sf(0.3))
