"""Lift by segment: the demo's true per-segment effects, ranking by credible uplift, partial
pooling and segments without a control."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import binary_outcomes as _frame

from closedloop import DataError
from closedloop.datasets import hillstrom, make_demo
from closedloop.lift import LIFT_COLUMNS, bayesian_lift, roi
from closedloop.lift_segments import lift_by_segment


@pytest.fixture(scope="module")
def hill(hillstrom_path) -> pd.DataFrame:
    return hillstrom(hillstrom_path)


# --- the demo's known per-segment effects --------------------------------------------------


def test_demo_true_segment_effects_fall_inside_the_intervals():
    demo = make_demo()
    truth = demo.effects.loc[demo.effects["arm"] != "control", ["arm", "segment", "abs_lift"]]
    truth = truth.rename(columns={"abs_lift": "true_lift"})

    def inside(result):
        merged = result.merge(truth, on=["arm", "segment"])
        assert len(merged) == 8
        low, high = merged["abs_lift_low"], merged["abs_lift_high"]
        return merged, (low <= merged["true_lift"]) & (merged["true_lift"] <= high)

    raw, covered = inside(lift_by_segment(demo.outcomes, "segment", metrics="converted").table)
    assert covered.all(), raw[~covered]
    assert raw.loc[raw["segment"] == "new", "small"].all()
    assert not raw.loc[raw["segment"] != "new", "small"].any()
    # pooled: at most one of eight 95% intervals may miss, and the tiny segment gets narrower
    pooled, covered = inside(
        lift_by_segment(demo.outcomes, "segment", metrics="converted", pooling=True).table
    )
    assert covered.sum() >= 7
    width = pooled["abs_lift_high"] - pooled["abs_lift_low"]
    raw_width = raw["abs_lift_high"] - raw["abs_lift_low"]
    new = (pooled["segment"] == "new").to_numpy()
    assert (width[new].to_numpy() < 0.7 * raw_width[new].to_numpy()).all()


# --- segments, ranking, pooling ---------------------------------------------------------------


def test_segments_are_ranked_by_lower_credible_bound(hill):
    result = lift_by_segment(
        hill, "history_segment", control="No E-Mail", metrics="conversion"
    ).table
    assert list(result.columns) == ["history_segment", *LIFT_COLUMNS, "small", "rank"]
    for _, part in result.groupby("arm"):
        assert part["rank"].tolist() == list(range(1, 8))
        assert part["abs_lift_low"].is_monotonic_decreasing
    # each segment equals bayesian_lift on that segment alone
    one = hill[hill["history_segment"] == "1) $0 - $100"]
    alone = bayesian_lift(one, control="No E-Mail", metrics="conversion").table
    seg = result[result["history_segment"] == "1) $0 - $100"].sort_values("arm")
    assert np.allclose(seg["mean"], alone["mean"])
    assert np.allclose(seg["abs_lift"], alone["abs_lift"])
    assert np.allclose(seg["abs_lift_low"], alone["abs_lift_low"], atol=3e-4)


def test_pooling_shrinks_noisy_segments_and_lowers_error():
    rng = np.random.default_rng(7)
    segments = 40
    sizes = rng.choice([150, 400, 20_000], segments)
    base = rng.uniform(0.05, 0.15, segments)
    true = rng.normal(0.03, 0.01, segments)
    rows = []
    for s in range(segments):
        for arm, p in (("control", base[s]), ("sms", base[s] + true[s])):
            rows.append(pd.DataFrame({"seg": s, "arm": arm, "converted": rng.random(sizes[s]) < p}))
    data = pd.concat(rows, ignore_index=True)
    kw = {"metrics": "converted", "draws": 4000}
    raw = lift_by_segment(data, "seg", **kw).table.sort_values("seg")
    pooled_lift = lift_by_segment(data, "seg", pooling=True, **kw)
    pooled = pooled_lift.table.sort_values("seg")
    raw_error = np.mean((raw["abs_lift"].to_numpy() - true) ** 2)
    pooled_error = np.mean((pooled["abs_lift"].to_numpy() - true) ** 2)
    assert pooled_error < 0.5 * raw_error
    assert pooled["abs_lift"].std() < raw["abs_lift"].std()
    # small segments move a lot, large ones hardly at all
    moved = np.abs(pooled["abs_lift"].to_numpy() - raw["abs_lift"].to_numpy())
    small, large = raw["customers"].to_numpy() == 150, raw["customers"].to_numpy() == 20_000
    assert moved[small].mean() > 5 * moved[large].mean()
    assert raw["small"].to_numpy().tolist() == small.tolist()
    # the pooled draws are what roi sees
    assert np.allclose(roi(pooled_lift, cost=0.01)["roi"], pooled_lift.table["abs_lift"] / 0.01)


def test_segment_without_control_ranks_last_with_nan_lift():
    data = pd.concat(
        [
            _frame({"control": (300, 30), "sms": (300, 60)}).assign(seg="a"),
            _frame({"sms": (50, 10)}).assign(seg="b"),
        ]
    )
    result = lift_by_segment(data, "seg", metrics="converted").table
    last = result.iloc[-1]
    assert last["seg"] == "b" and last["rank"] == 2 and last["control_customers"] == 0
    assert np.isnan(last["abs_lift"]) and np.isnan(last["p_better"]) and last["small"]


def test_pooling_leaves_out_a_segment_where_nobody_bought():
    """A segment with no buyer in either arm has a lift without spread: pooled with the others
    it gave every segment NaN. It keeps its unpooled 0 (P(better) 0.5), the others are pooled."""
    rng = np.random.default_rng(3)
    n = 300
    parts = [
        ("zeros", np.zeros(n), np.zeros(n)),
        ("young", rng.gamma(2, 25, n), rng.gamma(2, 27, n)),
        ("old", rng.gamma(2, 25, n), rng.gamma(2, 30, n)),
    ]
    frame = pd.concat(
        pd.DataFrame({"tier": name, "arm": ["control"] * n + ["sms"] * n, "revenue": np.r_[c, t]})
        for name, c, t in parts
    )
    table = lift_by_segment(frame, "tier", pooling=True, metrics="revenue").table.set_index("tier")
    assert np.isfinite(table.loc[["young", "old"], ["abs_lift", "abs_lift_low"]]).all().all()
    zero = table.loc["zeros"]
    assert zero["abs_lift"] == zero["abs_lift_low"] == zero["abs_lift_high"] == 0
    assert zero["p_better"] == 0.5


def test_bad_segment_inputs_name_the_problem():
    data = _frame({"control": (10, 1), "sms": (10, 2)})
    with pytest.raises(DataError, match="segment column"):
        lift_by_segment(data, by=[])


def test_a_pooled_relative_lift_is_never_below_minus_100_and_keeps_its_point_inside():
    """Pooling draws each segment's lift again: its relative lift is read as the unpooled one
    (over a positive holdout mean, never a fall of more than 100% for revenue or a rate), and
    its point is the pooled ratio's median, inside its interval."""
    rng = np.random.default_rng(2)
    parts = []
    for seg, (kc, kt) in {"A": (40, 60), "B": (12, 0), "C": (5, 30)}.items():
        converted = np.r_[np.ones(kc), np.zeros(300 - kc), np.ones(kt), np.zeros(300 - kt)]
        parts.append(
            pd.DataFrame(
                {"arm": ["control"] * 300 + ["t"] * 300, "seg": seg, "converted": converted}
            )
        )
    data = pd.concat(parts, ignore_index=True)
    data["revenue"] = data["converted"] * rng.gamma(2, 50, len(data))
    table = lift_by_segment(data, "seg", metrics=["revenue", "converted"], pooling=True).table
    shown = table.dropna(subset=["rel_lift"])
    assert len(shown) == 5  # segment B's revenue: 12 buyers together, not estimable
    assert (shown["rel_lift_low"] >= -1).all()
    assert (shown["rel_lift_low"] <= shown["rel_lift"]).all()
    assert (shown["rel_lift"] <= shown["rel_lift_high"]).all()
