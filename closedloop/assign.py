"""The Do handoff (执行): who gets which arm in the next cycle, ready for an SCRM import.

The Act step keeps arms and segments; :func:`randomise` turns the next audience into an
assignment list — each customer in one arm, a holdout among them — and :func:`write` saves it in
the data contract's shape (``customer_id, arm, segment``), so the next Check reads back exactly
who was contacted and who was held out.

Randomisation is complete randomisation within strata (blocked by segment): inside each segment
the customers are put in a seeded random order and cut by the planned shares, the counts rounded
by the largest-remainder rule, so every segment is split as the plan says to within one customer
and the arms stay comparable segment by segment. The same customers, shares and seed give the same
list whatever order the customers come in (they are sorted by id first); numpy's
``Generator.permutation`` does the shuffling.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop.errors import DataError

__all__ = ["ASSIGNMENT_COLUMNS", "randomise", "write"]

#: the columns of an assignment list, as the data contract reads them back
ASSIGNMENT_COLUMNS = ["customer_id", "arm", "segment"]


def randomise(
    audience: pd.DataFrame,
    arms: Mapping[str, float],
    *,
    seed: int,
    stratum: str | None = "segment",
) -> pd.DataFrame:
    """Each customer of ``audience`` (``customer_id`` and, to stratify, ``stratum``) in one of
    ``arms`` (arm -> planned share, summing to 1, the holdout among them).

    Returns ``customer_id, arm, segment`` (``segment`` is the stratum's value, empty without one),
    sorted by customer id. Within each stratum the count of each arm is its share of the stratum
    rounded by largest remainder (ties to the arm listed first)."""
    if not arms:
        raise DataError("assignments", "no arms to assign")
    shares = np.array([float(s) for s in arms.values()])
    if (shares <= 0).any() or abs(shares.sum() - 1) > 1e-6:
        raise DataError("assignments", f"arm shares must be positive and sum to 1: {dict(arms)}")
    if "customer_id" not in audience.columns:
        raise DataError("audience", "required column customer_id missing", column="customer_id")
    if stratum is not None and stratum not in audience.columns:
        raise DataError("audience", f"required column {stratum} missing", column=stratum)
    ids = audience["customer_id"].astype("str")
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise DataError(
            "audience",
            "a customer is listed twice",
            column="customer_id",
            rows=audience[ids.isin(repeated)],
            n_bad=len(repeated),
        )
    groups = (
        audience[stratum].astype("str").fillna("") if stratum else pd.Series("", index=ids.index)
    )
    frame = pd.DataFrame({"customer_id": ids.to_numpy(), "segment": groups.to_numpy()})
    frame = frame.sort_values(["segment", "customer_id"], ignore_index=True)
    rng = np.random.default_rng(seed)
    names = np.array(list(arms), dtype=object)
    arm = np.empty(len(frame), dtype=object)
    for _, rows in frame.groupby("segment", sort=True).indices.items():
        counts = _largest_remainder(len(rows), shares)
        arm[rows[rng.permutation(len(rows))]] = np.repeat(names, counts)
    frame["arm"] = arm
    return frame[ASSIGNMENT_COLUMNS].sort_values("customer_id", ignore_index=True)


def write(assignments: pd.DataFrame, path: str | Path) -> Path:
    """Save an assignment list as UTF-8 CSV with the contract's columns (an SCRM imports it; the
    next Check reads it with :func:`closedloop.io.read_assignments`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    assignments[ASSIGNMENT_COLUMNS].to_csv(path, index=False, lineterminator="\n")
    return path


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Whole counts summing to ``total`` in proportion to ``shares`` (Hamilton's method)."""
    exact = total * shares
    counts = np.floor(exact).astype("int64")
    left = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:left]] += 1
    return counts
