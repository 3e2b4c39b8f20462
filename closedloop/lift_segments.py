"""Who responded (响应人群): the lift of each arm over the holdout within each segment, ranked
by credible uplift, optionally partially pooled across segments.

The per-segment lift is :func:`closedloop.lift.bayesian_lift` run within every segment in one
pass (one group-by over segments and arms, the same models and draws). Partial pooling uses the
hierarchical normal model of Gelman et al., *Bayesian Data Analysis*, 3rd ed., §5.4 (the "eight
schools" model), with the between-segment sd integrated out on a grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from closedloop.errors import DataError
from closedloop.lift import (
    CREDIBLE_LEVEL,
    DRAWS,
    Interval,
    Lift,
    PosteriorDraws,
    compare_arms,
    credible_interval,
    prob_better,
    relative_draws,
)
from closedloop.lift_models import Kind
from closedloop.priors import PRIOR, Prior

__all__ = ["MIN_SEGMENT_SIZE", "lift_by_segment"]

#: a segment with fewer customers than this in the arm or in the control is flagged ``small``
MIN_SEGMENT_SIZE = 200
#: partial pooling: grid points for the between-segment sd, and how far the grid reaches
TAU_GRID = 400
TAU_SPAN = 4.0


def lift_by_segment(
    data,
    by: str | Sequence[str],
    arm: str = "arm",
    control: str = "control",
    metrics: str | Sequence[str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    prior: Prior = PRIOR,
    seed: int = 0,
    *,
    pooling: bool = False,
    min_size: int = MIN_SEGMENT_SIZE,
    level: float = CREDIBLE_LEVEL,
    interval: Interval = "equal-tailed",
    draws: int = DRAWS,
) -> Lift:
    """Who responded: :func:`closedloop.lift.bayesian_lift` within each segment (RFM segment, tier, channel, any
    column), ranked by credible uplift.

    Returns a :class:`~closedloop.lift.Lift` whose table has the ``by`` columns,
    :data:`closedloop.lift.LIFT_COLUMNS`, ``small`` (fewer than ``min_size``
    customers in the arm or in the control: read with care) and ``rank``: 1 is the segment whose
    lower credible bound of ``abs_lift`` is highest, i.e. the uplift per customer one can be most
    sure of; rows are sorted by arm, metric and rank. A segment with no control (or no arm)
    customers has NaN lift and ranks last. Metric kinds are inferred on the whole data, not per
    segment.

    ``pooling=True`` shrinks each segment's lift towards the arm's average lift across segments,
    as much as the segments' own spread says (partial pooling, so tiny segments are not ranked on
    noise). Each segment's lift estimate d (observed) with posterior variance v enters the
    hierarchical normal model of Gelman et al., *Bayesian Data Analysis* 3rd ed. §5.4 (the "eight
    schools" model): true lifts ~ N(mu, tau2) across segments; given tau the posterior mean is
    B mu + (1 - B) d with B = v / (v + tau2), and tau is integrated out on a grid rather than
    plugged in, so a handful of segments does not collapse to "all equal". The segment's draws
    are shifted and scaled to the pooled mean and variance (keeping their shape), and
    ``abs_lift`` becomes the pooled mean.
    """
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise DataError("lift by segment", "name at least one segment column in `by`")
    if arm in by:
        raise DataError("lift by segment", "the arm column cannot also be a segment column", arm)
    result = compare_arms(
        data, by, arm, control, metrics, kinds, prior, seed, level, interval, draws
    )
    out, posterior = result.table, result.draws
    if pooling:
        _pool(out, posterior, level, interval)
    out["small"] = (out["customers"] < min_size) | (out["control_customers"] < min_size)
    out["rank"] = (
        out.groupby(["arm", "metric"], sort=False)["abs_lift_low"]
        .rank(ascending=False, method="first", na_option="bottom")
        .astype("int64")
    )
    order = {m: i for i, m in enumerate(dict.fromkeys(out["metric"]))}
    out = out.sort_values(
        ["arm", "metric", "rank"], key=lambda s: s.map(order) if s.name == "metric" else s
    ).reset_index(drop=True)
    return Lift(out, posterior)


def _pool(out: pd.DataFrame, posterior: PosteriorDraws, level: float, interval: str) -> None:
    """Partial pooling of segment lifts, in place (see :func:`lift_by_segment`)."""
    keys = posterior.keys
    for _, group in out.groupby(["arm", "metric"], sort=False):
        rows = [tuple(r) for r in group[keys].itertuples(index=False)]
        samples = np.stack([posterior.abs_lift[r] for r in rows])
        # a segment whose lift has no spread (nobody bought in either arm) is left as it is:
        # a variance of 0 would give it an infinite weight in the pooling
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(samples).all(axis=1) & (samples.var(axis=1) > 0)
        if ok.sum() < 2:
            continue
        rows = [r for r, keep in zip(rows, ok, strict=True) if keep]
        samples, index = samples[ok], group.index[ok]
        d = out.loc[index, "abs_lift"].to_numpy()
        v = samples.var(axis=1)
        centre, var = _hierarchical_normal(d, v)
        spread = np.sqrt(var / v)
        pooled = centre[:, None] + (samples - samples.mean(axis=1, keepdims=True)) * spread[:, None]
        # a relative lift left undefined or not estimable by the unpooled lift stays so
        blank = out.loc[index, "rel_lift"].isna().to_numpy()
        control = np.stack([posterior.control[r] for r in rows])
        rel = relative_draws(pooled + control, control, group["kind"].iat[0])
        rel[blank] = np.nan
        for r, a, b in zip(rows, pooled, rel, strict=True):
            posterior.abs_lift[r], posterior.rel_lift[r] = a, b
        out.loc[index, "abs_lift"] = centre
        # the pooled ratio's posterior median (a ratio of pooled means can fall outside it)
        median = np.full(len(rows), np.nan)
        median[~blank] = np.median(rel[~blank], axis=1)
        out.loc[index, "rel_lift"] = median
        out.loc[index, "incremental"] = centre * out.loc[index, "customers"].to_numpy()
        low, high = credible_interval(pooled, level, interval)
        out.loc[index, "abs_lift_low"], out.loc[index, "abs_lift_high"] = low, high
        low, high = credible_interval(rel, level, interval)
        out.loc[index, "rel_lift_low"], out.loc[index, "rel_lift_high"] = low, high
        out.loc[index, "p_better"] = prob_better(pooled)
        out.loc[index, "expected_loss"] = np.maximum(-pooled, 0).mean(axis=1)


def _hierarchical_normal(d: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance of each segment's lift under the hierarchical normal model
    of Gelman et al., BDA3 §5.4 (eqs. 5.17-5.21): d_j ~ N(theta_j, v_j), theta_j ~ N(mu, tau2),
    flat prior on mu, uniform prior on tau over a grid up to ``TAU_SPAN`` x (sd of the d_j + the
    largest standard error), tau integrated out on that grid."""
    tau = np.linspace(0.0, TAU_SPAN * (d.std() + np.sqrt(v.max())), TAU_GRID)[:, None]
    total = v + tau**2  # grid x segments
    weight = 1 / total
    mu = (weight * d).sum(axis=1, keepdims=True) / weight.sum(axis=1, keepdims=True)
    var_mu = 1 / weight.sum(axis=1, keepdims=True)
    log_post = 0.5 * np.log(var_mu[:, 0]) - 0.5 * (np.log(total) + (d - mu) ** 2 / total).sum(1)
    p_tau = np.exp(log_post - log_post.max())
    p_tau /= p_tau.sum()
    shrink = v / total
    mean = shrink * mu + (1 - shrink) * d
    var = (1 - shrink) * v + shrink**2 * var_mu
    centre = p_tau @ mean
    return centre, p_tau @ (var + mean**2) - centre**2
