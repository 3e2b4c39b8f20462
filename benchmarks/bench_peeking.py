"""Peeking: how often the early-stopping rule ships an arm that is no better than the holdout.

Simulated campaigns (seeded) of a holdout and two treated arms (10% / 45% / 45%, as the demo)
over a 31-day period: each customer buys on a day with a constant probability (Poisson counts,
22% buy at least once in the holdout) and each purchase is gamma-distributed (mean 60, shape
1.5). In the null scenarios no arm is better than the holdout; in the effect scenarios arm ``a``
buys more often by the given share and arm ``b`` is no better. Each campaign is looked at every
day from day 1 with the rule of :func:`closedloop.early_stop.decide` on the lift of the data so
far (the package's own :func:`closedloop.lift.lift_from_summary` on each day's sufficient
statistics, the campaigns of a block as segments, :data:`DRAWS` posterior draws), and, against that,
once at the end (the same rule on day 31). Reported per rule and scenario: the **false-ship
rate** (campaigns where a no-better arm was shipped), the **power** (campaigns where the truly
better arm was shipped), campaigns stopped, and the mean day of the decision.

``python -m benchmarks.bench_peeking`` writes the table and ``benchmarks/peeking.png`` (about
15 minutes on 2 shared cores; run it with ``nice -n 10``); ``--quick`` runs fewer
campaigns.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop import early_stop
from closedloop.lift import lift_from_summary
from closedloop.plan import Stopping

DAYS = 31
SHARES = {"control": 0.1, "a": 0.45, "b": 0.45}
#: purchases per customer and day in the holdout (about 22% buy at least once in 31 days)
RATE = 0.008
SHAPE, MEAN_TICKET = 1.5, 60.0
BLOCK = 100
#: posterior draws per look (the package's default is 20,000; 5,000 keeps the Monte Carlo error
#: of P(better) near 0.995 at 0.001 and the run in minutes)
DRAWS = 5_000
#: name -> (customers, arm a's extra purchase rate)
SCENARIOS = {
    "null, 8,000 customers": (8_000, 0.0),
    "null, 40,000 customers": (40_000, 0.0),
    "a +20%, 8,000 customers": (8_000, 0.20),
    "a +10%, 40,000 customers": (40_000, 0.10),
}
#: the rules compared: name -> stopping fields (min_days, certainty; loss_threshold default)
RULES = {
    "expected loss only": {"min_days": 7, "certainty": 0.5 + 1e-9},
    "+ P(better) >= 0.95": {"min_days": 7, "certainty": 0.95},
    "+ P(better) >= 0.99": {"min_days": 7, "certainty": 0.99},
    "+ P(better) >= 0.995": {"min_days": 7, "certainty": 0.995},
    "defaults": {},
}
OUT = Path(__file__).with_name("peeking.png")


def _campaigns(customers: int, effect: float, sims: int, rng):
    """Each day's sufficient statistics of revenue per customer, for ``sims`` campaigns: a list
    of one frame per day (rows: sim x arm; ``_n, _s0, _k0, _q0``)."""
    arms = list(SHARES)
    sizes = [round(customers * s) for s in SHARES.values()]
    arm_of = np.repeat(np.arange(len(arms)), sizes)
    rate = np.where(arm_of == 1, RATE * (1 + effect), RATE)
    n = len(arm_of)
    counts = rng.poisson(np.tile(rate, (sims, 1)) * DAYS)  # purchases per campaign and customer
    owner = np.repeat(np.arange(sims * n), counts.ravel())
    day = rng.integers(1, DAYS + 1, owner.size)
    amount = rng.gamma(SHAPE, MEAN_TICKET / SHAPE, owner.size)
    group = (np.arange(sims)[:, None] * len(arms) + arm_of[None, :]).ravel()
    out = []
    for d in range(1, DAYS + 1):
        upto = day <= d
        spend = np.bincount(owner[upto], amount[upto], minlength=sims * n)
        g = len(arms) * sims
        out.append(
            pd.DataFrame(
                {
                    "sim": np.repeat(np.arange(sims), len(arms)),
                    "arm": np.tile(arms, sims),
                    "_n": np.bincount(group, minlength=g),
                    "_s0": np.bincount(group, spend, minlength=g),
                    "_k0": np.bincount(group, spend > 0, minlength=g),
                    "_q0": np.bincount(group, spend**2, minlength=g),
                }
            )
        )
    return out


def _decisions(days, rules, seed: int) -> dict:
    """Per rule: each campaign's first decision (day, action, arm) looking daily, and the
    decision of the single look on the last day."""
    sims = days[0]["sim"].nunique()
    first = {r: [None] * sims for r in rules}
    end = {r: [None] * sims for r in rules}
    for d, summary in enumerate(days, start=1):
        lift = lift_from_summary(
            summary,
            ["sim"],
            "arm",
            "control",
            ["revenue"],
            {"revenue": "value"},
            seed=seed + d,
            draws=DRAWS,
        )
        table, abs_lift = lift.table, lift.draws.abs_lift
        control_mean = table["control_mean"].to_numpy()
        fewest = np.minimum(table["customers"], table["control_customers"]).to_numpy()
        rows_of = table.groupby("sim").indices
        for s in range(sims):
            open_rules = [r for r in rules if first[r][s] is None or d == DAYS]
            if not open_rules:
                continue
            rows = rows_of[s]
            arms = table["arm"].iloc[rows].tolist()
            draws = np.stack([abs_lift[(s, a, "revenue")] for a in arms])
            for r in open_rules:
                decision = early_stop.decide_draws(
                    arms, draws, control_mean[rows[0]], int(fewest[rows].min()), d, rules[r]
                )
                if first[r][s] is None and decision.action in ("ship", "stop"):
                    first[r][s] = (d, decision.action, decision.arm)
                if d == DAYS:
                    end[r][s] = (d, decision.action, decision.arm)
    return {"daily": first, "single look at the end": end}


def scenario_rows(name: str, sims: int, seed: int) -> tuple[list[dict], pd.DataFrame]:
    customers, effect = SCENARIOS[name]
    rules = {r: Stopping(**fields) for r, fields in RULES.items()}
    rng = np.random.default_rng(seed)
    found = {look: {r: [] for r in rules} for look in ("daily", "single look at the end")}
    for block in range(0, sims, BLOCK):
        days = _campaigns(customers, effect, min(BLOCK, sims - block), rng)
        for look, per_rule in _decisions(days, rules, seed + block).items():
            for r, items in per_rule.items():
                found[look][r] += items
    rows, curves = [], []
    for look, per_rule in found.items():
        for r, items in per_rule.items():
            shipped = [i for i in items if i and i[1] == "ship"]
            false_ship = sum(1 for i in shipped if not (effect > 0 and i[2] == "a"))
            decided = [i[0] for i in items if i]
            rows.append(
                {
                    "scenario": name,
                    "rule": r,
                    "look": look,
                    "campaigns": len(items),
                    "false ship": false_ship / len(items),
                    "power": (len(shipped) - false_ship) / len(items) if effect > 0 else np.nan,
                    "stopped": sum(1 for i in items if i and i[1] == "stop") / len(items),
                    "mean day": float(np.mean(decided)) if decided else np.nan,
                }
            )
            if look == "daily":
                ship_day = [
                    i[0] for i in items if i and i[1] == "ship" and not (effect and i[2] == "a")
                ]
                curves.append(
                    pd.DataFrame(
                        {
                            "scenario": name,
                            "rule": r,
                            "day": np.arange(1, DAYS + 1),
                            "false ship": [
                                sum(1 for x in ship_day if x <= d) / len(items)
                                for d in range(1, DAYS + 1)
                            ],
                        }
                    )
                )
    return rows, pd.concat(curves, ignore_index=True)


def run(quick: bool = False) -> tuple[list[dict], pd.DataFrame]:
    sims = 100 if quick else 500
    rows, curves = [], []
    for i, name in enumerate(SCENARIOS):
        r, c = scenario_rows(name, sims, seed=1000 + 97 * i)
        rows += r
        curves.append(c)
    return rows, pd.concat(curves, ignore_index=True)


def figure(rows: list[dict], curves: pd.DataFrame, path: Path = OUT) -> Path:
    """Left: the false-ship rate by day under daily peeking in each null scenario (the single
    look at the end a diamond on day 31) against the 5% line; right: the power of each rule on
    the effect scenarios, daily and at the end."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from closedloop.figures import use_style

    use_style()
    frame = pd.DataFrame(rows)
    nulls = [s for s, (_, effect) in SCENARIOS.items() if effect == 0]
    effects = [s for s, (_, effect) in SCENARIOS.items() if effect > 0]
    fig, axes = plt.subplots(1, len(nulls) + 1, figsize=(5.6 * (len(nulls) + 1), 4.2))
    palette = ["#c62828", "#ef6c00", "#8e24aa", "#1565c0", "#1a7f37"]
    colors = dict(zip(RULES, palette[-len(RULES) :], strict=True))
    end = frame["look"] == "single look at the end"
    for ax, name in zip(axes, nulls, strict=False):
        for r in RULES:
            part = curves[(curves["scenario"] == name) & (curves["rule"] == r)]
            ax.plot(part["day"], part["false ship"], color=colors[r], lw=1.8, label=r)
            once = frame[(frame["scenario"] == name) & (frame["rule"] == r) & end]
            ax.scatter([DAYS + 0.8], once["false ship"], color=colors[r], marker="D", s=30)
        ax.axhline(0.05, color="0.3", ls="--", lw=1)
        ax.text(1, 0.055, "5%", color="0.3", fontsize=9, va="bottom")
        ax.set_title(f"{name}: a no-better arm shipped", fontsize=10)
        ax.set_xlabel("day looked at (diamond: one look at the end)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlim(0.5, DAYS + 2)
    ax = axes[-1]
    width = 0.8 / len(RULES)
    for j, r in enumerate(RULES):
        for k, look in enumerate(("daily", "single look at the end")):
            part = frame[(frame["rule"] == r) & (frame["look"] == look)]
            power = part.set_index("scenario").loc[effects, "power"].to_numpy()
            x = np.arange(len(effects)) * 2 + k + (j - (len(RULES) - 1) / 2) * width
            ax.bar(x, power, width, color=colors[r], alpha=1.0 if k == 0 else 0.45)
    ax.set_xticks(
        [2 * i + k for i in range(len(effects)) for k in (0, 1)],
        [f"{e.split(',')[0]}\n{look}" for e in effects for look in ("daily", "at the end")],
        fontsize=8,
    )
    ax.set_title("power: the truly better arm shipped", fontsize=10)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, 1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(RULES), frameon=False, fontsize=9)
    fig.suptitle(
        "Peeking every day with the stopping rule, against one look at the end (simulated)",
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(rows: list[dict]) -> str:
    shown = pd.DataFrame(rows)
    for c in ("false ship", "power", "stopped"):
        shown[c] = shown[c].map(lambda x: "" if pd.isna(x) else f"{x:.1%}")
    shown["mean day"] = shown["mean day"].map(lambda x: "" if pd.isna(x) else f"{x:.1f}")
    head = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    body = ["| " + " | ".join(str(v) for v in r) + " |" for r in shown.to_numpy()]
    return "\n".join([head, rule, *body])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result, daily = run(args.quick)
    print(markdown(result))
    print(f"\nfigure: {figure(result, daily)}")
    print(f"\n{time.perf_counter() - start:.0f} s")
