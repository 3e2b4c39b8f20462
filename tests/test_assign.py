"""closedloop.assign: the next cycle's assignment list, randomised within segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from closedloop import DataError, assign
from closedloop.io import read_assignments

ARMS = {"control": 0.1, "wecom": 0.9}


def audience(n=5_000, seed=0):
    rng = np.random.default_rng(seed)
    segments = rng.choice(["new", "at_risk", "lapsed"], size=n, p=[0.2, 0.5, 0.3])
    return pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)], "segment": segments})


def test_every_segment_is_split_as_planned():
    out = assign.randomise(audience(), ARMS, seed=1)
    assert len(out) == 5_000 and out["customer_id"].is_unique
    for _, part in out.groupby("segment"):
        holdout = (part["arm"] == "control").sum()
        assert abs(holdout - 0.1 * len(part)) < 1  # largest remainder: within one customer


def test_the_holdout_share_is_within_binomial_error_and_assignment_is_random():
    counts = []
    for seed in range(40):
        out = assign.randomise(audience(n=800, seed=seed), ARMS, seed=seed)
        counts.append((out["arm"] == "control").sum())
    low, high = stats.binom.ppf([0.001, 0.999], 800, 0.1)
    assert all(low <= c <= high for c in counts)
    # who lands in the holdout changes with the seed
    a = assign.randomise(audience(), ARMS, seed=1).set_index("customer_id")["arm"]
    b = assign.randomise(audience(), ARMS, seed=2).set_index("customer_id")["arm"]
    assert 0.05 < (a != b).mean() < 0.4


def test_same_seed_same_list_whatever_the_input_order():
    people = audience()
    first = assign.randomise(people, ARMS, seed=7)
    again = assign.randomise(people.sample(frac=1, random_state=3), ARMS, seed=7)
    pd.testing.assert_frame_equal(first, again)


def test_the_list_reads_back_through_the_contract(tmp_path):
    out = assign.randomise(audience(n=300), {"control": 0.2, "sms": 0.4, "wecom": 0.4}, seed=0)
    path = assign.write(out, tmp_path / "next" / "assignments.csv")
    back = read_assignments(path)
    assert back["arm"].value_counts().to_dict() == out["arm"].value_counts().to_dict()
    assert list(back.columns) == ["customer_id", "arm", "segment"]


def test_bad_audiences_are_refused():
    with pytest.raises(DataError, match="sum to 1"):
        assign.randomise(audience(), {"control": 0.5, "sms": 0.6}, seed=0)
    twice = pd.concat([audience(n=3), audience(n=3)])
    with pytest.raises(DataError, match="listed twice"):
        assign.randomise(twice, ARMS, seed=0)
    with pytest.raises(DataError, match="segment missing"):
        assign.randomise(audience().drop(columns="segment"), ARMS, seed=0)
    plain = assign.randomise(audience(n=10).drop(columns="segment"), ARMS, seed=0, stratum=None)
    assert (plain["arm"] == "control").sum() == 1
