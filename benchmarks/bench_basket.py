"""Association rules with single-item consequents, ``closedloop.basket.rules`` against bare mlxtend.

Run: ``python -m benchmarks.bench_basket`` (Groceries, and 200k synthetic baskets over 50k items)
or ``--quick`` (Groceries, and 50k baskets over 20k items). Every workload gives both sides the
same list of baskets and the same thresholds, and both end with the same rules (checked):

- Groceries (support 0.001, confidence 0.5, arules' 5,668 rules): against mlxtend's apriori on the
  dense ``TransactionEncoder`` one-hot frame, and against mlxtend's fpgrowth on that same frame;
- the synthetic set: against mlxtend's fpgrowth on the sparse ``TransactionEncoder`` frame (a
  dense one would take baskets × items bytes: 10 GB at 200k × 50k).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder

from benchmarks._measure import best_of, row
from closedloop.basket import rules
from closedloop.datasets import groceries

GROCERIES = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "groceries.csv"
GROCERY_THRESHOLDS = (0.001, 0.5)
SYNTHETIC_THRESHOLDS = (0.001, 0.3)


def synthetic_baskets(n_baskets: int, n_items: int, seed: int = 0) -> list[list[str]]:
    """Baskets of 1 + Poisson(7) items drawn with Zipf-like popularity (weight 1 / rank), plus
    100 planted bundles of 2-4 items, each put whole or in part into 0.2-1% of the baskets."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1)
    sizes = 1 + rng.poisson(7, n_baskets)
    drawn = rng.choice(n_items, sizes.sum(), p=weights / weights.sum())
    baskets = [list(chunk) for chunk in np.split(drawn, np.cumsum(sizes)[:-1])]
    for _ in range(100):
        bundle = rng.choice(n_items, rng.integers(2, 5), replace=False)
        for b in rng.choice(n_baskets, int(rng.uniform(0.002, 0.01) * n_baskets), replace=False):
            baskets[b].extend(bundle[rng.random(len(bundle)) < 0.85])
    return [[f"item{i}" for i in basket] for basket in baskets]


def _single_consequent_rules(frequent: pd.DataFrame, n: int, min_confidence: float):
    found = association_rules(
        frequent, num_itemsets=n, metric="confidence", min_threshold=min_confidence
    )
    return found[found["consequents"].map(len) == 1]


def mlxtend_dense(baskets, min_support, min_confidence, algorithm=apriori):
    encoder = TransactionEncoder().fit(baskets)
    onehot = pd.DataFrame(encoder.transform(baskets), columns=encoder.columns_)
    frequent = algorithm(onehot, min_support=min_support, use_colnames=True)
    return _single_consequent_rules(frequent, len(baskets), min_confidence)


def mlxtend_sparse(baskets, min_support, min_confidence):
    encoder = TransactionEncoder().fit(baskets)
    onehot = pd.DataFrame.sparse.from_spmatrix(
        encoder.transform(baskets, sparse=True), columns=encoder.columns_
    )
    frequent = fpgrowth(onehot, min_support=min_support, use_colnames=True)
    return _single_consequent_rules(frequent, len(baskets), min_confidence)


def _same(ours: pd.DataFrame, peer: pd.DataFrame) -> None:
    mine = set(zip(ours["antecedents"], ours["consequents"], strict=True))
    theirs = set(zip(peer["antecedents"], peer["consequents"], strict=True))
    if mine != theirs:
        raise AssertionError(f"rules differ: {len(mine)} against {len(theirs)}")


def run(quick: bool = False) -> list[dict]:
    out = []
    repeats = 1 if quick else 3
    basket_lists = groceries(GROCERIES if GROCERIES.exists() else None)
    size = f"{len(basket_lists):,} baskets, 169 items"
    reference = rules(basket_lists, *GROCERY_THRESHOLDS)
    _same(reference, mlxtend_dense(basket_lists, *GROCERY_THRESHOLDS))
    ours = best_of(repeats, rules, basket_lists, *GROCERY_THRESHOLDS)
    for name, algorithm in (
        ("mlxtend apriori, dense", apriori),
        ("mlxtend fpgrowth, dense", fpgrowth),
    ):
        peer = best_of(
            repeats, mlxtend_dense, basket_lists, *GROCERY_THRESHOLDS, algorithm=algorithm
        )
        out.append(row(f"Groceries rules ({len(reference):,})", size, ours, name, peer))

    n_baskets, n_items = (50_000, 20_000) if quick else (200_000, 50_000)
    basket_lists = synthetic_baskets(n_baskets, n_items)
    size = f"{n_baskets:,} baskets, {n_items:,} items"
    reference = rules(basket_lists, *SYNTHETIC_THRESHOLDS)
    _same(reference, mlxtend_sparse(basket_lists, *SYNTHETIC_THRESHOLDS))
    ours = best_of(repeats, rules, basket_lists, *SYNTHETIC_THRESHOLDS)
    peer = best_of(repeats, mlxtend_sparse, basket_lists, *SYNTHETIC_THRESHOLDS)
    out.append(
        row(f"synthetic rules ({len(reference):,})", size, ours, "mlxtend fpgrowth, sparse", peer)
    )
    return out


if __name__ == "__main__":
    table = pd.DataFrame(run(quick="--quick" in sys.argv))
    print(table.to_markdown(index=False))
