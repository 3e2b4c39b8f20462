"""Bayesian lift against exact and independent computations, simulated campaigns with known
truths, Hillstrom's published arm rates and the demo's true per-segment effects."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import polars as pl
import pytest
from matplotlib.figure import Figure
from scipy import integrate, optimize, stats

from closedloop import DataError
from closedloop.datasets import hillstrom, make_demo
from closedloop.figures.lift import lift_density, lift_intervals, segment_lift
from closedloop.lift import (
    LIFT_COLUMNS,
    bayesian_lift,
    lift_by_segment,
    prob_best,
    roi,
    srm_check,
)
from closedloop.priors import Prior

matplotlib.use("Agg")

HILLSTROM_ARMS = ["Mens E-Mail", "Womens E-Mail", "No E-Mail"]
HILLSTROM_METRICS = ["visit", "conversion", "spend"]


@pytest.fixture(scope="module")
def hill(hillstrom_path) -> pd.DataFrame:
    return hillstrom(hillstrom_path)


@pytest.fixture(scope="module")
def hill_lift(hill) -> pd.DataFrame:
    return bayesian_lift(hill, control="No E-Mail", metrics=HILLSTROM_METRICS)


def _frame(groups: dict[str, tuple[int, int]], metric="converted") -> pd.DataFrame:
    """One row per customer: arm -> (customers, converters)."""
    arms, values = [], []
    for arm, (n, x) in groups.items():
        arms += [arm] * n
        values += [1] * x + [0] * (n - x)
    return pd.DataFrame({"arm": arms, metric: values})


# --- Hillstrom: published rates and the exact Beta posterior ---------------------------------


def test_hillstrom_rates_by_arm_match_the_published_figures(hill, hill_lift):
    published = {  # visit %, conversion %, spend $ per customer
        "Mens E-Mail": (18.28, 1.25, 1.42),
        "Womens E-Mail": (15.14, 0.88, 1.08),
        "No E-Mail": (10.62, 0.57, 0.65),
    }
    direct = hill.groupby("arm")[HILLSTROM_METRICS].mean()
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        rows = hill_lift[hill_lift["arm"] == arm].set_index("metric")
        visit, conversion, spend = published[arm]
        assert round(100 * rows.at["visit", "mean"], 2) == visit
        assert round(100 * rows.at["conversion", "mean"], 2) == conversion
        assert round(rows.at["spend", "mean"], 2) == spend
        assert np.allclose(rows.loc[HILLSTROM_METRICS, "mean"], direct.loc[arm])
        control = published["No E-Mail"]
        assert round(100 * rows.at["visit", "control_mean"], 2) == control[0]
        assert round(100 * rows.at["conversion", "control_mean"], 2) == control[1]
        assert round(rows.at["spend", "control_mean"], 2) == control[2]
    assert hill_lift["kind"].tolist() == ["binary", "binary", "value"] * 2
    assert list(hill_lift.columns) == LIFT_COLUMNS
    assert hill_lift["n"].tolist() == [21307] * 3 + [21387] * 3
    assert (hill_lift["control_n"] == 21306).all()
    assert np.allclose(hill_lift["incremental"], hill_lift["abs_lift"] * hill_lift["n"])


def test_hillstrom_mens_beats_control_on_conversion(hill_lift):
    row = hill_lift.set_index(["arm", "metric"]).loc[("Mens E-Mail", "conversion")]
    assert row["p_better"] > 0.999
    assert row["abs_lift_low"] > 0
    assert row["expected_loss"] < 1e-6


def _beta_difference(a1, b1, a2, b2):
    """CDF of X - Y, X ~ Beta(a1, b1), Y ~ Beta(a2, b2), by numerical integration."""
    x, y = stats.beta(a1, b1), stats.beta(a2, b2)
    lo, hi = y.ppf(1e-12), y.isf(1e-12)

    def cdf(d):
        return integrate.quad(lambda t: y.pdf(t) * x.cdf(t + d), lo, hi, limit=200)[0]

    return cdf


def test_binary_intervals_equal_exact_beta_computation(hill, hill_lift):
    counts = hill.groupby("arm")["conversion"].agg(["size", "sum"])
    n_c, x_c = counts.loc["No E-Mail"]
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        n, x = counts.loc[arm]
        cdf = _beta_difference(1 + x, 1 + n - x, 1 + x_c, 1 + n_c - x_c)
        low = optimize.brentq(lambda d, cdf=cdf: cdf(d) - 0.025, -0.05, 0.05)
        high = optimize.brentq(lambda d, cdf=cdf: cdf(d) - 0.975, -0.05, 0.05)
        row = hill_lift.set_index(["arm", "metric"]).loc[(arm, "conversion")]
        width = high - low
        assert abs(row["abs_lift_low"] - low) < 0.02 * width
        assert abs(row["abs_lift_high"] - high) < 0.02 * width
        assert row["p_better"] == pytest.approx(1 - cdf(0.0), abs=0.002)


def test_p_better_and_expected_loss_equal_exact_values_when_close():
    data = _frame({"control": (400, 40), "sms": (400, 50)})
    row = bayesian_lift(data, metrics="converted").iloc[0]
    cdf = _beta_difference(51, 351, 41, 361)
    assert row["p_better"] == pytest.approx(1 - cdf(0.0), abs=0.01)
    # E[max(control - arm, 0)] = integral of P(arm - control < d) over d < 0
    loss = integrate.quad(cdf, -1, 0, limit=200)[0]
    assert row["expected_loss"] == pytest.approx(loss, rel=0.05)
    assert 0.7 < row["p_better"] < 0.9


def _lognormal_two_part(values: np.ndarray, rng, draws: int) -> np.ndarray:
    """Posterior draws of the mean per customer from scipy distributions, written separately:
    Beta(1 + k, 1 + n - k) x exp(mu + s2 / 2), s2 ~ Inv-Gamma((k-1)/2, (k-1) s^2 / 2)."""
    logs = np.log(values[values > 0])
    k, n = len(logs), len(values)
    p = stats.beta(1 + k, 1 + n - k).rvs(draws, random_state=rng)
    s2 = stats.invgamma((k - 1) / 2, scale=(k - 1) * logs.var(ddof=1) / 2).rvs(
        draws, random_state=rng
    )
    mu = stats.norm(logs.mean(), np.sqrt(s2 / k)).rvs(random_state=rng)
    return p * np.exp(mu + s2 / 2)


def test_value_intervals_equal_an_independent_large_monte_carlo(hill, hill_lift):
    rng = np.random.default_rng(12345)
    spend = {a: g.to_numpy() for a, g in hill.groupby("arm")["spend"]}
    control = _lognormal_two_part(spend["No E-Mail"], rng, 400_000)
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        diff = _lognormal_two_part(spend[arm], rng, 400_000) - control
        low, high = np.quantile(diff, [0.025, 0.975])
        rel_low, rel_high = np.quantile(diff / control, [0.025, 0.975])
        row = hill_lift.set_index(["arm", "metric"]).loc[(arm, "spend")]
        assert abs(row["abs_lift_low"] - low) < 0.03 * (high - low)
        assert abs(row["abs_lift_high"] - high) < 0.03 * (high - low)
        assert abs(row["rel_lift_low"] - rel_low) < 0.03 * (rel_high - rel_low)
        assert abs(row["rel_lift_high"] - rel_high) < 0.03 * (rel_high - rel_low)
        assert row["p_better"] == pytest.approx((diff > 0).mean(), abs=0.003)


def test_value_model_agrees_with_gaussian_approximation(hill, hill_lift):
    """Two-part model vs a Gaussian on (n, sum, sum of squares): the same answer on Hillstrom."""
    gauss = bayesian_lift(hill, control="No E-Mail", metrics="spend", kinds={"spend": "normal"})
    two_part = hill_lift[hill_lift["metric"] == "spend"].reset_index(drop=True)
    width = gauss["abs_lift_high"] - gauss["abs_lift_low"]
    assert (abs(two_part["abs_lift_low"] - gauss["abs_lift_low"]) < 0.1 * width).all()
    assert (abs(two_part["abs_lift_high"] - gauss["abs_lift_high"]) < 0.1 * width).all()
    assert np.allclose(two_part["p_better"], gauss["p_better"], atol=0.01)
    # the Gaussian approximation itself: ybar difference +- 1.96 standard errors
    spend = hill.groupby("arm")["spend"].agg(["mean", "var", "size"])
    se = np.sqrt(spend["var"] / spend["size"])
    for _, row in gauss.iterrows():
        centre = spend.at[row["arm"], "mean"] - spend.at["No E-Mail", "mean"]
        half = 1.96 * np.hypot(se[row["arm"]], se["No E-Mail"])
        assert row["abs_lift_low"] == pytest.approx(centre - half, abs=0.02 * half)
        assert row["abs_lift_high"] == pytest.approx(centre + half, abs=0.02 * half)


# --- calibration by simulation --------------------------------------------------------------


def _campaigns(sims: int, n: int, seed: int, buyer_values: str = "lognormal"):
    """``sims`` campaigns of n control and n treated customers with known true effects, as one
    frame keyed by ``campaign`` (so one call fits them all)."""
    rng = np.random.default_rng(seed)
    p_c = rng.uniform(0.03, 0.15, sims)
    p_t = p_c * rng.uniform(0.8, 1.5, sims)
    loc_c = rng.uniform(3, 4, sims)
    loc_t = loc_c + rng.uniform(-0.2, 0.3, sims)
    sd = rng.uniform(0.5, 1.0, sims)
    campaign = np.repeat(np.arange(sims), 2 * n)
    treated = np.tile(np.repeat([False, True], n), sims)
    buy = rng.random(len(campaign)) < np.where(treated, p_t[campaign], p_c[campaign])
    loc = np.where(treated, loc_t[campaign], loc_c[campaign])
    if buyer_values == "lognormal":
        value = np.exp(rng.normal(loc, sd[campaign]))
        per_buyer_c, per_buyer_t = np.exp(loc_c + sd**2 / 2), np.exp(loc_t + sd**2 / 2)
    else:  # gamma with shape 2 and the same means: the log-normal part is misspecified
        value = rng.gamma(2.0, np.exp(loc) / 2)
        per_buyer_c, per_buyer_t = np.exp(loc_c), np.exp(loc_t)
    data = pd.DataFrame(
        {
            "campaign": campaign,
            "arm": np.where(treated, "treated", "control"),
            "converted": buy.astype("int64"),
            "revenue": np.where(buy, value, 0.0),
        }
    )
    truth = {"converted": p_t - p_c, "revenue": p_t * per_buyer_t - p_c * per_buyer_c}
    return data, truth


def _coverage(result: pd.DataFrame, metric: str, truth: np.ndarray) -> float:
    rows = result[result["metric"] == metric].sort_values("campaign")
    return float(((rows["abs_lift_low"] <= truth) & (truth <= rows["abs_lift_high"])).mean())


def test_intervals_cover_the_truth_95_percent_of_the_time():
    data, truth = _campaigns(sims=1000, n=1000, seed=1)
    result = lift_by_segment(data, "campaign", metrics=["converted", "revenue"], draws=2000)
    assert 0.93 <= _coverage(result, "converted", truth["converted"]) <= 0.97
    assert 0.93 <= _coverage(result, "revenue", truth["revenue"]) <= 0.97


def test_revenue_intervals_are_not_overconfident_when_buyer_values_are_not_lognormal():
    """Gamma(2) buyer values have a lighter tail than the log-normal fitted to them: the
    two-part intervals turn conservative (wider), never too narrow; the Gaussian stays at 95%."""
    data, truth = _campaigns(sims=600, n=1000, seed=2, buyer_values="gamma")
    two_part = lift_by_segment(data, "campaign", metrics="revenue", draws=2000)
    assert 0.94 <= _coverage(two_part, "revenue", truth["revenue"]) <= 0.995
    gauss = lift_by_segment(
        data, "campaign", metrics="revenue", kinds={"revenue": "normal"}, draws=2000
    )
    assert 0.93 <= _coverage(gauss, "revenue", truth["revenue"]) <= 0.97


def test_hdi_is_never_wider_than_equal_tailed_and_covers_too():
    data, truth = _campaigns(sims=300, n=1000, seed=3)
    kw = {"metrics": "revenue", "draws": 2000}
    eti = lift_by_segment(data, "campaign", **kw).sort_values("campaign")
    hdi = lift_by_segment(data, "campaign", interval="hdi", **kw).sort_values("campaign")
    eti_width = (eti["abs_lift_high"] - eti["abs_lift_low"]).to_numpy()
    hdi_width = (hdi["abs_lift_high"] - hdi["abs_lift_low"]).to_numpy()
    assert (hdi_width <= eti_width + 1e-12).all()
    assert (hdi_width < eti_width).mean() > 0.9  # the relative lift is skewed: strictly shorter
    assert 0.92 <= _coverage(hdi, "revenue", truth["revenue"]) <= 0.98


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

    raw, covered = inside(lift_by_segment(demo.outcomes, "segment", metrics="converted"))
    assert covered.all(), raw[~covered]
    assert raw.loc[raw["segment"] == "new", "small"].all()
    assert not raw.loc[raw["segment"] != "new", "small"].any()
    # pooled: at most one of eight 95% intervals may miss, and the tiny segment gets narrower
    pooled, covered = inside(
        lift_by_segment(demo.outcomes, "segment", metrics="converted", pooling=True)
    )
    assert covered.sum() >= 7
    width = pooled["abs_lift_high"] - pooled["abs_lift_low"]
    raw_width = raw["abs_lift_high"] - raw["abs_lift_low"]
    new = (pooled["segment"] == "new").to_numpy()
    assert (width[new].to_numpy() < 0.7 * raw_width[new].to_numpy()).all()


# --- segments, ranking, pooling ---------------------------------------------------------------


def test_segments_are_ranked_by_lower_credible_bound(hill):
    result = lift_by_segment(hill, "history_segment", control="No E-Mail", metrics="conversion")
    assert list(result.columns) == ["history_segment", *LIFT_COLUMNS, "small", "rank"]
    for _, part in result.groupby("arm"):
        assert part["rank"].tolist() == list(range(1, 8))
        assert part["abs_lift_low"].is_monotonic_decreasing
    # each segment equals bayesian_lift on that segment alone
    one = hill[hill["history_segment"] == "1) $0 - $100"]
    alone = bayesian_lift(one, control="No E-Mail", metrics="conversion")
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
    raw = lift_by_segment(data, "seg", **kw).sort_values("seg")
    pooled = lift_by_segment(data, "seg", pooling=True, **kw).sort_values("seg")
    raw_error = np.mean((raw["abs_lift"].to_numpy() - true) ** 2)
    pooled_error = np.mean((pooled["abs_lift"].to_numpy() - true) ** 2)
    assert pooled_error < 0.5 * raw_error
    assert pooled["abs_lift"].std() < raw["abs_lift"].std()
    # small segments move a lot, large ones hardly at all
    moved = np.abs(pooled["abs_lift"].to_numpy() - raw["abs_lift"].to_numpy())
    small, large = raw["n"].to_numpy() == 150, raw["n"].to_numpy() == 20_000
    assert moved[small].mean() > 5 * moved[large].mean()
    assert raw["small"].to_numpy().tolist() == small.tolist()
    # the pooled draws are what roi sees
    assert np.allclose(roi(pooled, cost=0.01)["roi"], pooled["abs_lift"] / 0.01)


def test_segment_without_control_ranks_last_with_nan_lift():
    data = pd.concat(
        [
            _frame({"control": (300, 30), "sms": (300, 60)}).assign(seg="a"),
            _frame({"sms": (50, 10)}).assign(seg="b"),
        ]
    )
    result = lift_by_segment(data, "seg", metrics="converted")
    last = result.iloc[-1]
    assert last["seg"] == "b" and last["rank"] == 2 and last["control_n"] == 0
    assert np.isnan(last["abs_lift"]) and np.isnan(last["p_better"]) and last["small"]


# --- multi-arm, ROI, SRM ---------------------------------------------------------------------


def test_prob_best_sums_to_one_and_equals_p_better_for_two_arms(hill, hill_lift):
    best = prob_best(hill, metrics=HILLSTROM_METRICS)
    assert np.allclose(best.groupby("metric")["p_best"].sum(), 1.0)
    conv = best[best["metric"] == "conversion"].set_index("arm")["p_best"]
    assert conv.idxmax() == "Mens E-Mail" and conv["No E-Mail"] < 0.001
    two = _frame({"control": (400, 40), "sms": (400, 50)})
    p_best = prob_best(two, metrics="converted").set_index("arm")["p_best"]
    p_better = bayesian_lift(two, metrics="converted")["p_better"].iat[0]
    assert p_best["sms"] == pytest.approx(p_better, abs=1e-12)


def test_roi_is_incremental_margin_over_cost(hill_lift):
    spend = hill_lift[hill_lift["metric"] == "spend"]
    cost = {"Mens E-Mail": 0.10, "Womens E-Mail": 0.20}
    result = roi(spend, cost=cost, margin=0.4, target=1.0)
    per_customer = spend["arm"].map(cost).to_numpy()
    assert np.allclose(result["cost"], per_customer * spend["n"])
    assert np.allclose(result["incremental_margin"], 0.4 * spend["incremental"])
    assert np.allclose(result["roi"], 0.4 * spend["abs_lift"] / per_customer)
    # ROI is a monotone map of the lift: its interval is the lift's interval mapped
    assert np.allclose(result["roi_low"], 0.4 * spend["abs_lift_low"] / per_customer)
    assert np.allclose(result["roi_high"], 0.4 * spend["abs_lift_high"] / per_customer)
    assert result["p_target"].between(0, 1).all()
    at_zero = roi(spend, cost=cost, margin=0.4, target=0.0)
    assert np.allclose(at_zero["p_target"], spend["p_better"])


def test_roi_on_conversions_uses_value_per_conversion(hill_lift):
    conv = hill_lift[hill_lift["metric"] == "conversion"]
    result = roi(conv, cost=0.05, margin={"conversion": 30.0})
    assert np.allclose(result["roi"], 30.0 * conv["incremental"] / (0.05 * conv["n"]))
    assert "p_target" not in result


def test_srm_detects_a_planted_mismatch():
    demo = make_demo()
    assigned = demo.assignments
    control = assigned[assigned["arm"] == "control"]
    broken = assigned.drop(control.index[: len(control) // 5])  # lose 20% of the holdout
    check = srm_check(broken, demo.plan["arms"])
    assert check.mismatch and check.p_value < 0.001
    assert check.warning == check.message
    assert check.message.startswith("Sample-ratio mismatch")
    assert "do not trust the lift" in check.message
    observed = broken["arm"].value_counts()
    expected = pd.Series(demo.plan["arms"]) * len(broken)
    chi2 = (((observed - expected) ** 2) / expected).sum()
    assert check.chi2 == pytest.approx(chi2)
    assert check.table.set_index("arm")["observed"].to_dict() == observed.to_dict()


def test_srm_passes_fair_splits():
    planned = {"control": 0.1, "sms": 0.45, "wecom": 0.45}
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(200):
        counts = dict(zip(planned, rng.multinomial(20_000, list(planned.values())), strict=True))
        flagged += srm_check(counts, planned).mismatch
    assert flagged <= 2  # alpha = 0.001
    check = srm_check(pd.Series({"control": 1000, "sms": 4500, "wecom": 4500}), planned)
    assert not check.mismatch and check.warning is None and check.p_value == pytest.approx(1.0)
    assert check.message.startswith("Sample ratio as planned")


def test_hillstrom_split_is_as_planned(hill):
    check = srm_check(hill, dict.fromkeys(HILLSTROM_ARMS, 1 / 3))
    assert not check.mismatch and check.table["observed"].sum() == 64_000


# --- behaviour: kinds, determinism, frames -------------------------------------------------


def test_kinds_inferred_and_overridden():
    data = pd.DataFrame(
        {
            "arm": ["control", "sms"] * 50,
            "flag": [True, False] * 50,
            "converted": [0, 1] * 50,
            "revenue": np.arange(100.0) % 7,
            "margin": np.arange(100.0) - 50,
            "customer_id": [str(i) for i in range(100)],
        }
    )
    kinds = bayesian_lift(data).drop_duplicates("metric").set_index("metric")["kind"]
    assert kinds.to_dict() == {
        "flag": "binary",
        "converted": "binary",
        "revenue": "value",
        "margin": "normal",
    }
    forced = bayesian_lift(data, metrics="revenue", kinds={"revenue": "normal"})
    assert forced["kind"].tolist() == ["normal"]


def test_same_seed_same_answer_other_seed_close(hill):
    kw = {"control": "No E-Mail", "metrics": ["conversion", "spend"]}
    first = bayesian_lift(hill, seed=3, **kw)
    pd.testing.assert_frame_equal(first, bayesian_lift(hill, seed=3, **kw))
    other = bayesian_lift(hill, seed=4, **kw)
    assert not np.array_equal(first["abs_lift_low"], other["abs_lift_low"])
    width = first["abs_lift_high"] - first["abs_lift_low"]
    assert (abs(first["abs_lift_low"] - other["abs_lift_low"]) < 0.03 * width).all()


def test_polars_input_gives_the_pandas_answer(hill):
    kw = {"control": "No E-Mail", "metrics": ["visit", "spend"]}
    pd.testing.assert_frame_equal(
        bayesian_lift(pl.from_pandas(hill), **kw), bayesian_lift(hill, **kw)
    )


def test_prior_is_used():
    data = _frame({"control": (20, 2), "sms": (20, 6)})
    flat = bayesian_lift(data, metrics="converted")
    sceptical = bayesian_lift(data, metrics="converted", prior=Prior(alpha=10, beta=90))
    assert sceptical["p_better"].iat[0] < flat["p_better"].iat[0]
    assert (sceptical["abs_lift_high"] - sceptical["abs_lift_low"]).iat[0] < (
        flat["abs_lift_high"] - flat["abs_lift_low"]
    ).iat[0]


# --- bad input ------------------------------------------------------------------------------


def test_bad_inputs_name_the_problem():
    data = _frame({"control": (10, 1), "sms": (10, 2)})
    with pytest.raises(DataError, match=r"required column\(s\) revenue missing; found: "):
        bayesian_lift(data, metrics="revenue")
    with pytest.raises(DataError, match=r"no control arm 'holdout'; the arms are \['control'"):
        bayesian_lift(data, control="holdout")
    with pytest.raises(DataError, match="the input is empty"):
        bayesian_lift(data.iloc[:0])
    with pytest.raises(DataError, match="only the control arm"):
        bayesian_lift(data[data["arm"] == "control"])
    with pytest.raises(DataError, match="binary metric must hold only 0 and 1"):
        bayesian_lift(data.assign(converted=2), kinds={"converted": "binary"})
    with pytest.raises(DataError, match="unknown metric kind"):
        bayesian_lift(data, kinds={"converted": "poisson"})
    with pytest.raises(DataError, match="value metric cannot be negative"):
        bayesian_lift(data.assign(converted=-1.0), kinds={"converted": "value"})
    with pytest.raises(DataError, match="must be numeric or boolean"):
        bayesian_lift(data.assign(converted="yes"), metrics="converted")
    with pytest.raises(DataError, match="missing values") as err:
        bayesian_lift(data.assign(converted=[np.nan] + [1.0] * 19))
    assert err.value.column == "converted" and err.value.n_bad == 1
    with pytest.raises(DataError, match="interval must be"):
        bayesian_lift(data, interval="central")
    with pytest.raises(DataError, match="segment column"):
        lift_by_segment(data, by=[])


def test_bad_roi_and_srm_inputs():
    lift = bayesian_lift(_frame({"control": (10, 1), "sms": (10, 2)}))
    with pytest.raises(DataError, match="cost per contacted customer must be positive"):
        roi(lift, cost=0.0)
    with pytest.raises(DataError, match="pass the frame returned by bayesian_lift"):
        roi(pd.DataFrame(lift.to_dict()), cost=0.1)
    with pytest.raises(DataError, match=r"no cost given for \['sms'\]"):
        roi(lift, cost={"wecom": 0.1})
    with pytest.raises(DataError, match=r"arm\(s\) \['wecom'\] have customers but no planned"):
        srm_check({"control": 10, "wecom": 5}, {"control": 0.5, "sms": 0.5})
    with pytest.raises(DataError, match="planned shares must be non-negative"):
        srm_check({"control": 10}, {"control": -1})


# --- figures --------------------------------------------------------------------------------


def test_figures_render(hill, hill_lift):
    by_segment = lift_by_segment(hill, "channel", control="No E-Mail", metrics="spend")
    for fig in (lift_intervals(hill_lift), lift_density(hill_lift), segment_lift(by_segment)):
        assert isinstance(fig, Figure)
        assert fig.axes and fig._suptitle is not None
        matplotlib.pyplot.close(fig)
    fig = lift_intervals(hill_lift)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert any(label.startswith("P(better) ") for label in labels)
