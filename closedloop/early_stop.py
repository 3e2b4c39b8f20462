"""Early stopping (提前停止): the rule a plan declares for its interim Checks.

Looking at a running campaign every day and stopping the first time it looks good ships arms
that are no better than the holdout far more often than one look at the end would (the peeking
problem). The rule here is Bayesian decision-making with a certainty floor:

- **the minimums**: no decision before ``min_days`` of the period have passed and while any arm
  (the holdout included) has fewer than ``min_customers`` customers;
- **ship** the leading arm (the treated arm with the highest posterior mean revenue per
  customer) when its *expected loss* — E[max(best other arm or holdout − this arm, 0)], revenue
  per customer in the plan's currency, from the joint posterior draws of
  :class:`closedloop.lift.PosteriorDraws` — is below ``loss_threshold`` **and** it beats the
  holdout with probability at least ``certainty``. The expected loss alone falls below any
  threshold as the data grow even when no arm is better (choosing among equals costs little),
  so on its own it ships no-better arms; the certainty floor is what keeps daily peeking's
  false-ship rate at or below 5%, measured in ``benchmarks/bench_peeking.py``;
- **stop an arm** that beats the holdout with probability at most 1 − ``certainty`` (clearly
  worse); when every treated arm is stopped, **stop the campaign**;
- otherwise **continue**.

The defaults (:data:`DEFAULTS`) are those the simulation chose; ``loss_threshold`` left out is
:data:`LOSS_SHARE` of the holdout's revenue per customer so far.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from closedloop.lift import Lift

__all__ = ["DEFAULTS", "LOSS_SHARE", "METRIC", "Decision", "decide", "decide_draws", "settings"]

#: the metric the rule decides on: revenue per customer, in the plan's currency
METRIC = "revenue"
#: the rule's fields when the plan's ``stopping`` leaves them out (chosen in
#: ``benchmarks/bench_peeking.py``: daily peeking ships a no-better arm in at most 5% of campaigns)
DEFAULTS = {"min_days": 7, "min_customers": 200, "certainty": 0.998}
#: ``loss_threshold`` left out: this share of the holdout's revenue per customer so far
LOSS_SHARE = 0.01

Action = Literal["wait", "continue", "ship", "stop"]


@dataclass(frozen=True)
class Decision:
    """What the rule decides at one interim Check.

    ``action``: ``wait`` (the minimums are not reached), ``continue``, ``ship`` (stop and ship
    ``arm``) or ``stop`` (every treated arm is clearly worse than the holdout). ``arm`` is the
    leading arm, ``expected_loss`` its expected loss per customer, ``p_better`` its probability
    of beating the holdout; ``dropped`` the arms clearly worse than the holdout. The rest are
    the rule's settings and where the campaign stands against them."""

    action: Action
    arm: str | None
    expected_loss: float
    loss_threshold: float
    p_better: float
    certainty: float
    dropped: tuple[str, ...]
    day: int
    min_days: int
    customers: int
    min_customers: int

    def to_dict(self) -> dict:
        """The decision as summary.json records it."""
        return {**asdict(self), "dropped": list(self.dropped)}


def settings(stopping, control_mean: float) -> dict:
    """The rule's settings: the plan's ``stopping`` fields, :data:`DEFAULTS` for those left
    out, and ``loss_threshold`` (when left out) :data:`LOSS_SHARE` × ``control_mean``, the
    holdout's revenue per customer so far (0 while the holdout has bought nothing, so nothing
    ships on the default threshold before it has)."""
    given = stopping.model_dump(exclude_none=True) if stopping is not None else {}
    out = {**DEFAULTS, **given}
    out.setdefault("loss_threshold", LOSS_SHARE * max(control_mean, 0.0))
    return out


def decide(lift: Lift, day: int, stopping=None) -> Decision | None:
    """The rule's decision from the campaign's :class:`~closedloop.lift.Lift` (without segments)
    at the end of ``day`` (days of the period gone by), under the plan's ``stopping`` section
    (None: every default). None when the lift has no revenue per customer to decide on."""
    table = lift.table[lift.table["metric"] == METRIC]
    if table.empty:
        return None
    keys = table[lift.draws.keys].itertuples(index=False)
    return decide_draws(
        table["arm"].astype(str).tolist(),
        np.stack([lift.draws.abs_lift[tuple(k)] for k in keys]),
        float(table["control_mean"].iloc[0]),
        int(min(table["customers"].min(), table["control_customers"].min())),
        day,
        stopping,
    )


def decide_draws(
    arms: list[str], draws: np.ndarray, control_mean: float, customers: int, day: int, stopping
) -> Decision:
    """The rule on the posterior draws (treated ``arms`` x draws) of each arm's revenue per
    customer minus the holdout's (every row sharing the holdout's draw), the holdout's mean so
    far and the fewest customers in an arm: what :func:`decide` reads from a Lift."""
    rule = settings(stopping, control_mean)
    lead = int(np.argmax(draws.mean(axis=1)))
    rivals = np.delete(draws, lead, axis=0)
    best_other = np.maximum(rivals.max(axis=0), 0.0) if len(rivals) else 0.0
    loss = float(np.mean(np.maximum(best_other - draws[lead], 0.0)))
    p_better = (draws > 0).mean(axis=1)
    dropped = tuple(a for a, p in zip(arms, p_better, strict=True) if p <= 1 - rule["certainty"])
    if day < rule["min_days"] or customers < rule["min_customers"]:
        action: Action = "wait"
    elif loss < rule["loss_threshold"] and p_better[lead] >= rule["certainty"]:
        action = "ship"
    elif len(dropped) == len(arms):
        action = "stop"
    else:
        action = "continue"
    return Decision(
        action=action,
        arm=arms[lead],
        expected_loss=loss,
        loss_threshold=float(rule["loss_threshold"]),
        p_better=float(p_better[lead]),
        certainty=float(rule["certainty"]),
        dropped=dropped if action != "wait" else (),
        day=int(day),
        min_days=int(rule["min_days"]),
        customers=int(customers),
        min_customers=int(rule["min_customers"]),
    )
