"""CLV (summary + BG/NBD + Gamma-Gamma + 12-month CLV) on simulated customers vs lifetimes.

Data: 1M customers (quick mode: 100k) simulated from the BG/NBD process with the CDNOW
parameters (Fader, Hardie & Lee 2005) and Gamma-Gamma spend (Fader & Hardie 2013), acquired over
two years to ASOF, purchases recorded by day. Workloads, each measured in the same run:

1. ``summary + fit + CLV`` — :func:`closedloop.clv.summary` on the raw transactions, then
   :func:`closedloop.clv.fit` and ``clv()``; the peer gets the summary for free;
2. ``fit + CLV`` — both start from the same per-customer summary.

The peer is the naive lifetimes 0.11 route: ``BetaGeoFitter.fit`` on one row per customer,
``GammaGammaFitter.fit`` on the repeat buyers and ``customer_lifetime_value``. The parameters of
both are checked to agree within 1e-4 (relative). Run from the project root:
``python -m benchmarks.bench_clv``.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

from benchmarks._measure import best_of, row
from closedloop import _frames, clv

ASOF = pd.Timestamp("2026-03-31")
DAYS = 730
#: CDNOW estimates: BG/NBD (alpha per week) and Gamma-Gamma
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def simulate(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """Transactions of the BG/NBD process: Poisson purchases at rate lambda ~ Gamma(r, alpha),
    dropout with probability p ~ Beta(a, b) after each repeat purchase, dates by day."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, DAYS, n_customers)  # day of the first purchase
    age = (DAYS - 1 - first).astype(float)  # days observed after it
    rate = rng.gamma(BGNBD["r"], 1 / BGNBD["alpha"], n_customers) / 7.0  # weekly rate, per day
    drop = rng.beta(BGNBD["a"], BGNBD["b"], n_customers)
    who, when = [np.arange(n_customers)], [np.zeros(n_customers)]
    active, clock = np.arange(n_customers), np.zeros(n_customers)
    while active.size:
        clock[active] += rng.exponential(1.0, active.size) / rate[active]
        active = active[clock[active] <= age[active]]
        who.append(active)
        when.append(clock[active].copy())
        active = active[rng.random(active.size) >= drop[active]]
    who, when = np.concatenate(who), np.concatenate(when)
    scale = rng.gamma(GAMMA_GAMMA["q"], 1 / GAMMA_GAMMA["gamma"], n_customers)
    amount = rng.gamma(GAMMA_GAMMA["p"], 1 / scale[who])
    ids = pd.array([f"C{i:07d}" for i in range(n_customers)], dtype="str")
    start = ASOF - pd.Timedelta(days=DAYS - 1)
    days = first[who] + np.floor(when).astype("int64")
    return pd.DataFrame(
        {
            "customer_id": ids[who],
            "order_date": (start + pd.to_timedelta(days, unit="D")).astype("datetime64[ns]"),
            "amount": np.round(amount, 2),
        }
    )


def ours_end_to_end(transactions: pd.DataFrame) -> clv.ClvModel:
    model = clv.fit(clv.summary(transactions, ASOF))
    model.clv()
    return model


def ours(summary: pd.DataFrame) -> clv.ClvModel:
    model = clv.fit(summary)
    model.clv()
    return model


def lifetimes_naive(summary: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(
            summary["repeat_purchases"], summary["purchase_span"], summary["age"]
        )
        repeat = summary[summary["repeat_purchases"] > 0]
        ggf = GammaGammaFitter().fit(repeat["repeat_purchases"], repeat["repeat_ticket"])
        ggf.customer_lifetime_value(
            bgf,
            summary["repeat_purchases"],
            summary["purchase_span"],
            summary["age"],
            summary["repeat_ticket"],
            time=clv.HORIZON_MONTHS,
            discount_rate=clv.DISCOUNT_RATE,
            freq="W",
        )
    return bgf, ggf


def agreement(summary: pd.DataFrame) -> float:
    """Largest relative difference of the seven parameters, ours vs lifetimes."""
    mine = ours(summary)
    bgf, ggf = lifetimes_naive(summary)
    diffs = [
        np.abs(mine.params.to_numpy() / bgf.params_.to_numpy() - 1),
        np.abs(mine.spend_params.to_numpy() / ggf.params_.to_numpy() - 1),
    ]
    return float(np.concatenate(diffs).max())


def pandas_summary(transactions: pd.DataFrame) -> pd.DataFrame:
    """The summary aggregated by pandas itself: DuckDB and polars start thread pools that forked
    children would inherit broken, so the parent never runs them before the timings."""
    engine, _frames.PANDAS_ENGINE = _frames.PANDAS_ENGINE, "pandas"
    try:
        return clv.summary(transactions, ASOF)
    finally:
        _frames.PANDAS_ENGINE = engine


def run(quick: bool = False) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    transactions = simulate(n)
    summary = pandas_summary(transactions)
    n_patterns = len(clv._Patterns.of(summary).w)
    size = f"{n / 1e6:g}M customers ({len(transactions) / 1e6:.1f}M tx, {n_patterns:,} patterns)"
    repeats = 3 if quick else 2
    peer = best_of(repeats, lifetimes_naive, summary)
    rows = [
        row(
            "summary + fit + CLV",
            size,
            best_of(repeats, ours_end_to_end, transactions),
            "lifetimes fit + CLV (summary given)",
            peer,
        ),
        row("fit + CLV", size, best_of(repeats, ours, summary), "lifetimes fit + CLV", peer),
    ]
    difference = agreement(summary)
    for r in rows:
        r["max_param_rel_diff"] = f"{difference:.1e}"
    if difference > 1e-4:
        raise AssertionError(f"parameters differ from lifetimes by {difference:.1e} (> 1e-4)")
    return rows


def _markdown(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(_markdown(run(quick="--quick" in sys.argv)))
