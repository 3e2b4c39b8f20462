"""closedloop.clv: the CDNOW figures of the BG/NBD, Pareto/NBD and Gamma-Gamma papers, agreement
with lifetimes' fitters, the CLV formula, the analyst tables and input validation."""

from __future__ import annotations

import warnings

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import special

from closedloop import DataError, _frames, clv, clv_models
from closedloop.datasets import cdnow, cdnow_summary
from closedloop.io import DataWarning

ASOF, CALIBRATION_END = "1998-06-30", "1997-09-30"

with warnings.catch_warnings():  # importing lifetimes 0.11 sets an option pandas 3 deprecates
    warnings.filterwarnings("ignore", "The 'mode.chained_assignment' option is deprecated")
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


def as_published(value: float, published: float) -> bool:
    """Equal to the published figure to the digits it was printed with."""
    decimals = len(f"{published}".split(".")[1])
    return abs(value - published) <= 0.5 * 10**-decimals + 1e-12


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return cdnow(sample=True)


@pytest.fixture(scope="module")
def cal(transactions) -> pd.DataFrame:
    return clv.summary(transactions, ASOF, calibration_end=CALIBRATION_END)


@pytest.fixture(scope="module")
def model(cal) -> clv.ClvModel:
    return clv.fit(cal)


@pytest.fixture(scope="module")
def lifetimes_fit(cal):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(cal["repeat_purchases"], cal["purchase_span"], cal["age"])
        repeat = cal[cal["repeat_purchases"] > 0]
        ggf = GammaGammaFitter().fit(repeat["repeat_purchases"], repeat["repeat_ticket"])
    return bgf, ggf


# --- summary ------------------------------------------------------------------------------------


def test_calibration_summary_matches_lifetimes_published_summary(cal):
    published = cdnow_summary()
    assert len(cal) == 2357
    assert cal.index.sort_values().equals(published.index.sort_values())
    ours = cal.loc[published.index]
    # lifetimes' names: frequency = x, recency = t_x, T = T
    assert (ours["repeat_purchases"] == published["frequency"]).all()
    # the published file is rounded to 2 decimals
    np.testing.assert_allclose(ours["purchase_span"], published["recency"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(ours["age"], published["T"], atol=0.005 + 1e-9)
    assert (cal["holdout_length"] == 39.0).all()


def test_fit_reads_a_summary_in_lifetimes_names():
    published = cdnow_summary()
    ours = clv.fit(published[["frequency", "recency", "T"]], spend=False)
    assert ours.params["r"] == pytest.approx(0.2426, abs=5e-5)
    assert ours.params["alpha"] == pytest.approx(4.4136, abs=5e-4)


def test_summary_merges_same_day_purchases_and_splits_holdout():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "b", "c"],
            "order_date": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-08 10:00",
                    "2024-01-08 18:00",  # same day: one purchase of 30
                    "2024-01-15 00:00",
                    "2024-02-05 00:00",  # holdout
                    "2024-01-10 00:00",
                    "2024-01-20 00:00",  # first purchase after calibration end: not in the cohort
                ]
            ),
            "amount": [5.0, 10.0, 20.0, 50.0, 8.0, 7.0, 9.0],
        }
    )
    out = clv.summary(tx, "2024-02-14", time_unit="D", calibration_end="2024-01-15")
    assert list(out.index) == ["a", "b"]
    a, b = out.loc["a"], out.loc["b"]
    assert a["repeat_purchases"] == 2  # Jan 8 and Jan 15 after the first day
    assert a["purchase_span"] == 14 and a["age"] == 14
    assert a["repeat_ticket"] == pytest.approx(40.0)  # (30 + 50) / 2
    assert a["holdout_purchases"] == 1 and a["holdout_ticket"] == 8.0
    assert a["holdout_length"] == 30
    assert (b["repeat_purchases"], b["purchase_span"], b["age"], b["repeat_ticket"]) == (0, 0, 5, 0)
    weeks = clv.summary(tx, "2024-01-15")
    assert weeks.loc["a", "age"] == pytest.approx(2.0)
    assert "c" not in weeks.index and "holdout_purchases" not in weeks


def test_summary_on_polars_equals_pandas(transactions, cal, monkeypatch):
    out = clv.summary(pl.from_pandas(transactions), ASOF, calibration_end=CALIBRATION_END)
    pd.testing.assert_frame_equal(out, cal, check_dtype=False, check_index_type=False)
    # every engine that can aggregate a pandas frame runs the same narwhals query
    for engine in _frames.PANDAS_ENGINES:
        monkeypatch.setattr(_frames, "PANDAS_ENGINE", engine)
        on_engine = clv.summary(transactions, ASOF, calibration_end=CALIBRATION_END)
        pd.testing.assert_frame_equal(on_engine, cal, check_dtype=False, check_index_type=False)


# --- the published parameters ---------------------------------------------------------------------


def test_bgnbd_reproduces_fader_hardie_lee_2005(model):
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert sig3(model.params[name]) == sig3(value), name
        assert as_published(model.params[name], value), name


def test_gamma_gamma_reproduces_fader_hardie_2013(model, cal):
    assert (cal["repeat_purchases"] > 0).sum() == 946
    published = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    for name, value in published.items():
        assert sig3(model.spend_params[name]) == sig3(value), name
        assert as_published(model.spend_params[name], value), name


def test_pareto_nbd_reproduces_published_cdnow_fit_and_lifetimes(cal):
    ours = clv.fit(cal, model="pareto", spend=False)
    # the Pareto/NBD fit of the CDNOW sample reported by Fader, Hardie & Lee (2005), 3 digits
    for name, value in {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}.items():
        assert sig3(ours.params[name]) == sig3(value), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = ParetoNBDFitter().fit(cal["repeat_purchases"], cal["purchase_span"], cal["age"])
    # lifetimes fits Pareto/NBD by Nelder-Mead from random restarts: equal to ~1e-4 only
    np.testing.assert_allclose(ours.params, peer.params_, rtol=1e-3)
    args = (cal["repeat_purchases"], cal["purchase_span"], cal["age"])
    np.testing.assert_allclose(
        ours.expected_purchases(39.0),
        peer.conditional_expected_number_of_purchases_up_to_time(39.0, *args),
        rtol=1e-3,
    )
    np.testing.assert_allclose(ours.p_alive(), peer.conditional_probability_alive(*args), atol=1e-4)
    # what lifetimes' Pareto/NBD summary cannot give on this stack: standard errors
    assert ours.standard_errors.notna().all() and (ours.standard_errors > 0).all()
    assert set(ours.parameter_table()["parameter"]) == {"r", "alpha", "s", "beta"}


# --- agreement with lifetimes' fitters ---------------------------------------------------------


def test_fit_agrees_with_lifetimes_fitters(model, cal, lifetimes_fit):
    bgf, ggf = lifetimes_fit
    np.testing.assert_allclose(model.params, bgf.params_, rtol=1e-5)
    np.testing.assert_allclose(model.standard_errors, bgf.standard_errors_, rtol=1e-4)
    np.testing.assert_allclose(model.spend_params, ggf.params_, rtol=1e-5)
    np.testing.assert_allclose(model.spend_standard_errors, ggf.standard_errors_, rtol=1e-4)
    args = (cal["repeat_purchases"], cal["purchase_span"], cal["age"])
    np.testing.assert_allclose(
        model.expected_purchases(10.0),
        bgf.conditional_expected_number_of_purchases_up_to_time(10.0, *args),
        atol=1e-5,
    )
    np.testing.assert_allclose(model.p_alive(), bgf.conditional_probability_alive(*args), atol=1e-5)
    np.testing.assert_allclose(
        model.expected_spend(),
        ggf.conditional_expected_average_profit(cal["repeat_purchases"], cal["repeat_ticket"]),
        rtol=1e-5,
    )
    t = np.array([0.0, 5.0, 39.0, 78.0])
    np.testing.assert_allclose(
        model.expected_population(t), bgf.expected_number_of_purchases_up_to_time(t), rtol=1e-5
    )


def test_penalized_fit_agrees_with_lifetimes(cal):
    ours = clv.fit(cal, spend=False, penalizer=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = BetaGeoFitter(penalizer_coef=0.01).fit(
            cal["repeat_purchases"], cal["purchase_span"], cal["age"]
        )
    np.testing.assert_allclose(ours.params, peer.params_, rtol=1e-4)
    assert not np.allclose(ours.params, clv.fit(cal, spend=False).params, rtol=1e-3)


def test_weighted_patterns_equal_duplicated_customers(cal, model):
    twice = pd.concat([cal, cal.rename(index=lambda i: f"{i}-copy")])
    doubled = clv.fit(twice)
    np.testing.assert_allclose(doubled.params, model.params, rtol=1e-6)
    np.testing.assert_allclose(doubled.spend_params, model.spend_params, rtol=1e-6)
    assert doubled.log_likelihood == pytest.approx(2 * model.log_likelihood, rel=1e-9)
    # twice the data, standard errors shrink by sqrt(2)
    np.testing.assert_allclose(
        doubled.standard_errors * np.sqrt(2), model.standard_errors, rtol=1e-3
    )


def test_log_likelihood_is_the_papers_value(model, cal):
    # FHL (2005) report LL = -9582.4 (BG/NBD) and -9595.0 (Pareto/NBD) on the CDNOW sample
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    pareto = clv.fit(cal, model="pareto", spend=False)
    assert pareto.log_likelihood == pytest.approx(-9595.0, abs=0.05)


# --- predictions and CLV --------------------------------------------------------------------------


def _bgnbd_expected(theta, t, x, tx, T):
    """FHL (2005) eq. 10, written out independently of the module."""
    r, alpha, a, b = theta
    h = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * h)
    den = 1 + (x > 0) * a / (b + np.maximum(x, 1) - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return num / den


def test_clv_equals_discounted_monthly_sum(model, cal):
    x, tx, T = (cal[c].to_numpy(float) for c in ("repeat_purchases", "purchase_span", "age"))
    m = cal["repeat_ticket"].to_numpy(float)
    p, q, gamma = model.spend_params
    spend = p * (gamma + x * m) / (p * x + q - 1)
    months, rate, margin, weeks = 12, 0.01, 0.3, 4.345
    expected = np.zeros(len(cal))
    for i in range(1, months + 1):
        bought = _bgnbd_expected(model.params.to_numpy(), i * weeks, x, tx, T) - _bgnbd_expected(
            model.params.to_numpy(), (i - 1) * weeks, x, tx, T
        )
        expected += margin * spend * bought / (1 + rate) ** i
    got = model.clv(horizon_months=months, discount_rate=rate, margin=margin)
    assert got.name == "clv" and got.index.equals(cal.index)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-9)
    # longer horizons add value; discounting removes it
    assert (model.clv(horizon_months=24) >= model.clv() - 1e-12).all()
    assert model.clv(discount_rate=0.05).sum() < model.clv(discount_rate=0.0).sum()


def test_clv_matches_lifetimes_where_it_runs(model, cal, lifetimes_fit):
    bgf, ggf = lifetimes_fit
    peer = ggf.customer_lifetime_value(
        bgf,
        cal["repeat_purchases"],
        cal["purchase_span"],
        cal["age"],
        cal["repeat_ticket"],
        time=12,
        freq="W",
    )
    np.testing.assert_allclose(model.clv(), peer, rtol=1e-4)


def test_predictions_are_sane(model, cal):
    alive = model.p_alive()
    assert ((alive > 0) & (alive <= 1)).all()
    assert (alive[cal["repeat_purchases"] == 0] == 1).all()
    per_customer = model.expected_purchases(cal["holdout_length"])
    np.testing.assert_allclose(per_customer, model.expected_purchases(39.0))
    assert (model.expected_purchases(0.0) == 0).all()


def test_model_without_spend_refuses_clv(cal):
    bare = clv.fit(cal.drop(columns="repeat_ticket"), spend=False)
    assert bare.spend_params is None
    with pytest.raises(DataError, match="spend=True"):
        bare.clv()


# --- analyst tables -------------------------------------------------------------------------------


def test_calibration_holdout_table(model, cal):
    table = clv.calibration_holdout(model)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].sum() == 2357
    assert table.loc["0", "actual"] == pytest.approx(
        cal.loc[cal["repeat_purchases"] == 0, "holdout_purchases"].mean()
    )
    assert table.loc["7+", "customers"] == (cal["repeat_purchases"] >= 7).sum()
    assert table["predicted"].is_monotonic_increasing
    # the model tracks the holdout: within 0.4 purchases in every group (FHL 2005, Figure 3)
    assert (table["predicted"] - table["actual"]).abs().max() < 0.4
    with pytest.raises(DataError, match="holdout_purchases"):
        clv.calibration_holdout(clv.fit(cdnow_summary(), spend=False))


def test_spend_independence_check(cal):
    check = clv.spend_independence(cal)
    assert check["repeat_buyers"] == 946
    assert check["correlation"] == pytest.approx(0.1139, abs=1e-3)
    assert check["independent"]
    tied = cal.assign(
        repeat_ticket=np.where(cal["repeat_purchases"] > 0, 5.0 + 10 * cal["repeat_purchases"], 0.0)
    )
    with pytest.warns(DataWarning, match="correlate"):
        out = clv.spend_independence(tied)
    assert not out["independent"]


def test_repeat_tracking(transactions, model, cal):
    track = clv.repeat_tracking(transactions, model, ASOF)
    assert len(track) == 78
    assert track.index[-1] == pd.Timestamp(ASOF)
    total = cal["repeat_purchases"].sum() + cal["holdout_purchases"].sum()
    assert track["actual_cumulative"].iloc[-1] == total
    at_cut = track.loc[pd.Timestamp(CALIBRATION_END)]
    assert at_cut["actual_cumulative"] == cal["repeat_purchases"].sum()
    assert at_cut["expected_cumulative"] == pytest.approx(
        model.expected_population(cal["age"].to_numpy()).sum(), rel=1e-9
    )
    # the model predicts the holdout total within 5%
    assert track["expected_cumulative"].iloc[-1] == pytest.approx(total, rel=0.05)


def test_clv_by_tier(model):
    value = model.clv()
    tiers = pd.Series(np.where(value > value.quantile(0.8), "top", "rest"), index=value.index)
    tiers = tiers.astype(pd.CategoricalDtype(["top", "rest"], ordered=True)).iloc[10:]
    table = clv.clv_by_tier(value, tiers)
    assert list(table.index) == ["top", "rest"]
    assert table["customers"].sum() == len(value) - 10 and table.attrs["untiered"] == 10
    assert table["clv_share"].sum() == pytest.approx(1.0)
    assert table.loc["top", "clv_mean"] > table.loc["rest", "clv_mean"]
    with pytest.raises(DataError, match="indexes match"):
        clv.clv_by_tier(value, tiers.set_axis([f"z{i}" for i in range(len(tiers))]))


# --- the gradients behind the speed ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["bgnbd", "gamma-gamma"])
def test_analytic_gradient_matches_finite_differences(cal, which):
    pat = clv_models.Patterns.of(cal)
    if which == "bgnbd":
        objective, data = clv_models.BGNBD.objective, clv_models.BGNBD.prepare(pat, 1 / pat.T.max())
        u = np.log([0.3, 0.2, 0.7, 2.0])
    else:
        objective = clv_models.gamma_gamma_objective
        data = clv_models.gamma_gamma_data(cal[cal["repeat_purchases"] > 0])
        u = np.log([5.0, 3.0, 12.0])
    _, grad = objective(u, data, 0.01)
    step = 1e-6
    numeric = [
        (objective(u + step * e, data, 0.01)[0] - objective(u - step * e, data, 0.01)[0])
        / (2 * step)
        for e in np.eye(len(u))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.assign(purchase_span=s["age"] + 1), "purchase_span must not exceed age"),
        (lambda s: s.assign(repeat_purchases=-1), "whole number >= 0"),
        (lambda s: s.assign(repeat_purchases=s["repeat_purchases"] + 0.5), "whole number >= 0"),
        (
            lambda s: s.assign(repeat_ticket=0.0),
            "needs repeat buyers with a positive repeat_ticket",
        ),
        (lambda s: s.drop(columns="age"), r"required column.*age"),
        (lambda s: s.iloc[:0], "no customers"),
        (lambda s: s.assign(purchase_span=np.nan), "missing value"),
    ],
)
def test_fit_rejects_bad_summaries(cal, change, message):
    with pytest.raises(DataError, match=message):
        clv.fit(change(cal))


def test_fit_error_names_the_offending_rows(cal):
    bad = cal.copy()
    bad.loc["1", "purchase_span"] = 99.0
    with pytest.raises(DataError) as info:
        clv.fit(bad)
    text = str(info.value)
    assert "column 'purchase_span'" in text and "1 offending row" in text and "99" in text


def test_bad_arguments(cal, transactions):
    with pytest.raises(DataError, match="model must be one of bgnbd, pareto"):
        clv.fit(cal, model="bg")
    with pytest.raises(DataError, match="penalizer must be >= 0"):
        clv.fit(cal, penalizer=-1)
    with pytest.raises(DataError, match="time_unit: must be one of D, W"):
        clv.summary(transactions, ASOF, time_unit="M")
    with pytest.raises(DataError, match="after asof"):
        clv.summary(transactions, "1997-06-30", calibration_end=CALIBRATION_END)
    with pytest.raises(DataError, match="no purchases on or before 1990-01-01"):
        clv.summary(transactions, "1990-01-01")
    with pytest.raises(DataError, match=r"required column.*amount"):
        clv.summary(transactions.drop(columns="amount"), ASOF)
    with pytest.raises(DataError, match=r"order_date must be a date or datetime"):
        clv.summary(transactions.assign(order_date="1997-01-01"), ASOF)
    with pytest.raises(DataError, match="asof is required"):
        clv.summary(transactions, None)
    with pytest.raises(DataError, match="horizon_months"):
        clv.fit(cal).clv(horizon_months=0)


def test_summary_reads_through_narwhals(transactions):
    lazy = nw.from_native(pl.from_pandas(transactions).lazy()).to_native()
    out = clv.summary(lazy, "1997-09-30")
    assert len(out) == 2357 and out["repeat_purchases"].sum() == cdnow_summary()["frequency"].sum()


# --- figures --------------------------------------------------------------------------------------


def test_figures_render(transactions, model):
    from matplotlib.figure import Figure

    from closedloop.figures import clv as figures

    value = model.clv()
    tiers = pd.Series(np.where(value > value.median(), "upper", "lower"), index=value.index)
    made = {
        "Holdout purchases": figures.calibration_holdout(clv.calibration_holdout(model)),
        "Repeat purchases": figures.repeat_tracking(clv.repeat_tracking(transactions, model, ASOF)),
        "still active": figures.p_alive_map(model.summary.assign(p_alive=model.p_alive())),
        "share of CLV": figures.clv_by_tier(clv.clv_by_tier(value, tiers)),
    }
    for words, fig in made.items():
        assert isinstance(fig, Figure)
        assert words in fig.axes[0].get_title(loc="left") + fig.axes[0].get_title()


def test_full_cdnow_fits_leaving_out_the_repeat_buyer_with_no_spend():
    full = clv.summary(cdnow(), "1998-06-30")
    assert ((full["repeat_purchases"] > 0) & (full["repeat_ticket"] <= 0)).sum() == 1
    with pytest.warns(DataWarning, match="1 repeat buyer"):
        model = clv.fit(full)
    assert model.spend_excluded == 1
    assert np.isfinite(model.clv()).all()
