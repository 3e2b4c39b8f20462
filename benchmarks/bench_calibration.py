"""Calibration of the lift report's statistics on simulated campaigns with known truths.

Each scenario simulates campaigns of a holdout and two treated arms (seeded), builds their
sufficient statistics directly (customers, buyers, sums of values, squares and cubes) and runs
the same code as :func:`closedloop.lift.bayesian_lift` on them
(:func:`closedloop.lift.lift_from_summary`, one call per scenario). Reported per scenario: the
coverage of every 95% interval the lift table gives (absolute lift, relative lift, each arm's
mean; revenue and conversion; the relative lift's over the rows where it is defined and
estimable, beside the shares where it is undefined, a holdout mean of 0, or not estimable,
fewer than :data:`closedloop.lift.MIN_RATIO_EVENTS` buyers or conversions in the holdout and
the arm together); the calibration of P(better) and of the scorecard's P(met) for a
relative-lift target on the primary arm, beside the former P over the maximum of the arms
(binned predicted vs observed frequency: the worst bin with at least :data:`MIN_BIN` cases and
its binomial standard error); the number of NaN or infinite numbers in the table; and, for the
value-model choice, the revenue coverage of the former log-normal model and of a Bayesian
bootstrap on the same campaigns.

``python -m benchmarks.bench_calibration`` prints the table (2,000 campaigns per scenario, 6,000
for the small-arm scenarios of :data:`MORE_CAMPAIGNS`; 5-10 minutes of CPU, most of it the
bootstrap comparison); ``--quick`` runs 300 (900).
``run(quick)`` returns its rows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from closedloop.lift import credible_interval, lift_from_summary
from closedloop.lift_models import lognormal_means
from closedloop.priors import PRIOR

LEVEL = 0.95
DRAWS = 1000
ARMS = ("control", "a", "b")
#: name -> (customers in the holdout, in each treated arm), values, buy rate range, arm effects
SCENARIOS = {
    "log-normal values (sigma 1)": ((2000, 2000), ("lognormal", 1.0), (0.05, 0.15), "independent"),
    "gamma values (shape 0.5)": ((2000, 2000), ("gamma", 0.5), (0.05, 0.15), "independent"),
    "heavy tail: log-normal sigma 2": (
        (2000, 2000),
        ("lognormal", 2.0),
        (0.05, 0.15),
        "independent",
    ),
    "heavy tail: Pareto alpha 1.5": ((2000, 2000), ("pareto", 1.5), (0.05, 0.15), "independent"),
    "tiny arms (n = 200)": ((200, 200), ("lognormal", 1.0), (0.05, 0.15), "independent"),
    "1:9 split (300 : 2,700)": ((300, 2700), ("lognormal", 1.0), (0.05, 0.15), "independent"),
    "zero-conversion controls": ((300, 300), ("lognormal", 1.0), (0.002, 0.01), "independent"),
    "similar arm effects": ((2000, 2000), ("lognormal", 1.0), (0.05, 0.15), "similar"),
    "different arm effects": ((2000, 2000), ("lognormal", 1.0), (0.05, 0.15), "different"),
}


def _simulate(scenario, sims: int, rng):
    (n_c, n_t), (dist, shape), (p_lo, p_hi), effects = scenario
    p_c = rng.uniform(p_lo, p_hi, sims)
    value_c = rng.uniform(20, 60, sims)
    # true effects: log multipliers spread widely around a small gain, so that a flat prior is
    # close to right and P(better), P(met) can be calibrated where the data are informative
    conv, val = np.exp(rng.normal(0.1, 0.4, (sims, 2))), np.exp(rng.normal(0.05, 0.2, (sims, 2)))
    if effects == "similar":  # both treated arms have the same true effect
        conv, val = np.repeat(conv[:, :1], 2, axis=1), np.repeat(val[:, :1], 2, axis=1)
    elif effects == "different":  # arm b is clearly better than arm a
        conv, val = conv * [1.0, 1.5], val * [1.0, 1.2]
    p = np.minimum(np.column_stack([p_c, p_c[:, None] * conv]), 0.9)  # sims x 3
    m = np.column_stack([value_c, value_c[:, None] * val])
    n = np.tile([n_c, n_t, n_t], (sims, 1)).astype("float64")
    k = rng.binomial(n.astype("int64"), p)
    owner = np.repeat(np.arange(k.size), k.ravel())
    mean = m.ravel()[owner]
    if dist == "lognormal":
        v = np.exp(rng.normal(np.log(mean) - shape**2 / 2, shape))
    elif dist == "gamma":
        v = rng.gamma(shape, mean / shape)
    else:  # Pareto I with minimum x_m and mean alpha x_m / (alpha - 1)
        v = mean * (shape - 1) / shape * (1 + rng.pareto(shape, len(mean)))
    size = k.size

    def total(w):
        return np.bincount(owner, weights=w, minlength=size)

    summary = pd.DataFrame(
        {
            "campaign": np.repeat(np.arange(sims), 3),
            "arm": np.tile(ARMS, sims),
            "_n": n.ravel(),
            "_s0": total(v),
            "_k0": k.ravel(),
            "_q0": total(v**2),
            "_c0": total(v**3),
            "_s1": k.ravel().astype("float64"),
        }
    )
    logs = (total(np.log(v)), total(np.log(v) ** 2))
    truth = {"revenue": (p * m).ravel(), "converted": p.ravel()}
    return summary, truth, logs, (owner, v)


#: probability bins for calibration: wide in the middle, where few campaigns fall
BIN_EDGES = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
#: a bin is judged only with at least this many cases (binomial SE at most 3.5 points)
MIN_BIN = 200


def _calibration(predicted, observed) -> tuple[float, str]:
    """Calibration over :data:`BIN_EDGES`: the largest |observed - predicted| frequency over the
    bins with at least :data:`MIN_BIN` cases, and that bin as 'gap (binomial SE, cases)'."""
    predicted, observed = np.asarray(predicted), np.asarray(observed, dtype="float64")
    bins = np.clip(np.searchsorted(BIN_EDGES, predicted, side="right") - 1, 0, len(BIN_EDGES) - 2)
    worst, shown = 0.0, "-"
    for b in range(len(BIN_EDGES) - 1):
        inside = bins == b
        cases = int(inside.sum())
        if cases >= MIN_BIN:
            freq = observed[inside].mean()
            gap = freq - predicted[inside].mean()
            if abs(gap) >= worst:
                se = np.sqrt(freq * (1 - freq) / cases)
                worst, shown = abs(gap), f"{gap:+.3f} ({se:.3f}, {cases})"
    return worst, shown


def _covered(low, high, truth):
    return float(np.mean((low <= truth) & (truth <= high)))


def _bayesian_bootstrap(summary, owner, v, rng, draws: int = 1000, chunk: int = 300):
    """Bayesian bootstrap draws of each group's mean (Rubin 1981): Dirichlet weights, with the
    n - k zeros of a group carrying one Gamma(n - k) weight between them."""
    groups = len(summary)
    n, k = summary["_n"].to_numpy(), summary["_k0"].to_numpy().astype("int64")
    out = np.empty((groups, draws))
    starts = np.concatenate([[0], np.cumsum(k)])
    for g0 in range(0, groups, chunk):
        g1 = min(g0 + chunk, groups)
        a, b = starts[g0], starts[g1]
        w = rng.standard_exponential((b - a, draws))
        num = np.zeros((g1 - g0, draws))
        den = rng.gamma(np.maximum(n[g0:g1] - k[g0:g1], 1e-9)[:, None], 1.0, (g1 - g0, draws))
        np.add.at(num, owner[a:b] - g0, w * v[a:b, None])
        np.add.at(den, owner[a:b] - g0, w)
        out[g0:g1] = num / den
    return out


def scenario_row(name: str, sims: int, seed: int, alternatives: bool) -> dict:
    rng = np.random.default_rng(seed)
    summary, truth, logs, raw = _simulate(SCENARIOS[name], sims, rng)
    kinds = {"revenue": "value", "converted": "binary"}
    lift = lift_from_summary(
        summary,
        ["campaign"],
        "arm",
        "control",
        ["revenue", "converted"],
        kinds,
        seed=seed,
        draws=DRAWS,
    )
    table, draws = lift.table, lift.draws
    numeric = table.select_dtypes("number").drop(
        columns=["rel_lift", "rel_lift_low", "rel_lift_high"]
    )
    bad = int((~np.isfinite(numeric.to_numpy())).sum())
    rel_cols = table[["rel_lift", "rel_lift_low", "rel_lift_high"]].to_numpy()
    bad += int(np.isinf(rel_cols).sum())
    row = {"scenario": name, "campaigns": sims, "n": "{:,} / {:,}".format(*SCENARIOS[name][0])}
    index = {
        (c, a): i for i, (c, a) in enumerate(zip(summary["campaign"], summary["arm"], strict=True))
    }
    for metric, label in (("revenue", "rev"), ("converted", "conv")):
        part = table[table["metric"] == metric]
        t_idx = np.array(
            [index[(c, a)] for c, a in zip(part["campaign"], part["arm"], strict=True)]
        )
        c_idx = np.array([index[(c, "control")] for c in part["campaign"]])
        true_t, true_c = truth[metric][t_idx], truth[metric][c_idx]
        row[f"abs {label}"] = _covered(part["abs_lift_low"], part["abs_lift_high"], true_t - true_c)
        defined = part["rel_lift"].notna().to_numpy()
        true_rel = true_t / true_c - 1
        row[f"rel {label}"] = _covered(
            part["rel_lift_low"][defined], part["rel_lift_high"][defined], true_rel[defined]
        )
        keys = [tuple(r) for r in part[draws.keys].itertuples(index=False)]
        # each arm's mean as the table shows it (Beta for a rate, skewness-corrected for revenue)
        first = slice(None, None, 2)  # one row per campaign for its holdout
        cover = np.concatenate(
            [
                (part["mean_low"] <= true_t) & (true_t <= part["mean_high"]),
                (part["control_mean_low"].to_numpy()[first] <= true_c[first])
                & (true_c[first] <= part["control_mean_high"].to_numpy()[first]),
            ]
        )
        row[f"mean {label}"] = float(cover.mean())
        zero = (part["control_mean"] == 0).to_numpy()
        row[f"undefined rel {label}"] = float(zero.mean())
        # fewer than MIN_RATIO_EVENTS buyers or conversions in the holdout and the arm together
        row[f"not estimable rel {label}"] = float((~defined & ~zero).mean())
        # P(better): pooled over the arms of both metrics below
        row.setdefault("_pb", []).append((part["p_better"].to_numpy(), (true_t > true_c)))
        # P(met) for a relative-lift target on the primary arm (a), one target per campaign
        # around its observed lift; and, for comparison, on the best arm by the maximum
        ok = defined.reshape(-1, 2).all(axis=1)
        rel_draws = np.stack([draws.rel_lift[key] for key in keys]).reshape(sims, 2, -1)[ok]
        observed = part["rel_lift"].to_numpy().reshape(sims, 2)[ok]
        true_arms = true_rel.reshape(sims, 2)[ok]
        spread = (part["rel_lift_high"] - part["rel_lift_low"]).to_numpy().reshape(sims, 2)[ok]
        shift = rng.uniform(-0.6, 0.6, (2, ok.sum()))
        target = observed[:, 0] + shift[0] * spread[:, 0]
        p_met = (rel_draws[:, 0] >= target[:, None]).mean(axis=1)
        target_best = observed.max(axis=1) + shift[1] * spread.max(axis=1)
        p_max = (rel_draws.max(axis=1) >= target_best[:, None]).mean(axis=1)
        row.setdefault("_pm", []).append(
            (p_met, true_arms[:, 0] >= target, p_max, true_arms.max(axis=1) >= target_best)
        )
    pb = np.concatenate([p for p, _ in row["_pb"]]), np.concatenate([o for _, o in row.pop("_pb")])
    _, row["P(better) worst bin"] = _calibration(*pb)
    pm = row.pop("_pm")
    p_met, met, p_max, met_max = (np.concatenate([x[i] for x in pm]) for i in range(4))
    _, row["P(met) worst bin"] = _calibration(p_met, met)
    _, row["P(met) of the max, worst bin"] = _calibration(p_max, met_max)
    row["NaN/inf"] = bad
    if alternatives:
        n, k = summary["_n"].to_numpy(), summary["_k0"].to_numpy()
        old = lognormal_means(n, k, *logs, PRIOR, rng, DRAWS)
        boot = _bayesian_bootstrap(summary, *raw, rng)
        true = truth["revenue"]
        is_c = (summary["arm"] == "control").to_numpy()
        for label, post in (("log-normal", old), ("bootstrap", boot)):
            diff = post[~is_c] - np.repeat(post[is_c], 2, axis=0)
            lo, hi = credible_interval(diff, LEVEL, "equal-tailed")
            row[f"abs rev, {label}"] = _covered(lo, hi, true[~is_c] - np.repeat(true[is_c], 2))
            loss = np.maximum(-diff, 0).mean(axis=1)
            row[f"non-finite loss, {label}"] = float(np.mean(~np.isfinite(loss)))
    return row


#: scenarios run with this many times the campaigns: small arms, whose P(met) bins otherwise
#: hold 200-400 cases (a binomial SE of 2.5 points, too coarse to judge a 5-point bound)
MORE_CAMPAIGNS = {
    "tiny arms (n = 200)": 3,
    "1:9 split (300 : 2,700)": 3,
    "zero-conversion controls": 3,
}


def run(quick: bool = False) -> list[dict]:
    sims = 300 if quick else 2000
    rows = []
    for i, name in enumerate(SCENARIOS):
        alternatives = name.split(" ")[0] in ("log-normal", "gamma", "heavy", "tiny")
        more = MORE_CAMPAIGNS.get(name, 1)
        rows.append(scenario_row(name, sims * more, seed=100 + i, alternatives=alternatives))
    return rows


def markdown(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows)
    cover = [c for c in frame.columns if c.startswith(("abs", "rel", "mean"))]
    shown = frame.copy()
    for c in cover + [c for c in frame.columns if c.startswith(("undefined", "not estimable"))]:
        shown[c] = frame[c].map(lambda x: "" if pd.isna(x) else f"{x:.3f}")
    for c in [c for c in frame.columns if c.startswith("non-finite")]:
        shown[c] = frame[c].map(lambda x: "" if pd.isna(x) else f"{x:.1%}")
    head = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    body = ["| " + " | ".join(str(v) for v in r) + " |" for r in shown.fillna("").to_numpy()]
    return "\n".join([head, rule, *body])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result = run(args.quick)
    print(markdown(result))
    print(f"\n{time.perf_counter() - start:.0f} s")
