"""Basket rules on a hand-computed basket set, against brute force, and on arules' Groceries."""

from __future__ import annotations

import tracemalloc
from itertools import combinations

import matplotlib
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop import DataError
from closedloop.basket import RULE_COLUMNS, conditional, cross_sell, recommend, rules
from closedloop.datasets import groceries
from closedloop.figures.basket import lift_confidence_scatter, top_rules_chart

matplotlib.use("Agg")

# 10 baskets. Counts: a 5, b 6, c 3, d 10; a&b 4, a&c 3, a&d 5, b&c 3, a&b&c 3.
BASKETS = [
    ["a", "b", "c", "d"],
    ["a", "b", "c", "d"],
    ["a", "b", "c", "d"],
    ["a", "b", "d"],
    ["a", "d"],
    ["b", "d"],
    ["b", "d"],
    ["d"],
    ["d"],
    ["d"],
]


def _rule(frame: pd.DataFrame, text: str) -> pd.Series:
    hit = frame[frame["rule"] == text]
    assert len(hit) == 1, f"{text!r} not found once"
    return hit.iloc[0]


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    return rules(BASKETS, min_support=0.1, min_confidence=0.5)


def test_metrics_equal_hand_computation(tiny):
    ab = _rule(tiny, "a → b")  # P(a,b) = .4, P(a) = .5, P(b) = .6
    assert ab["support"] == pytest.approx(0.4)
    assert ab["confidence"] == pytest.approx(0.8)
    assert ab["lift"] == pytest.approx(0.8 / 0.6)
    assert ab["leverage"] == pytest.approx(0.4 - 0.5 * 0.6)
    assert ab["conviction"] == pytest.approx((1 - 0.6) / (1 - 0.8))
    abc = _rule(tiny, "a, b → c")  # P(a,b,c) = .3, P(a,b) = .4, P(c) = .3
    assert abc["antecedents"] == frozenset({"a", "b"})
    assert abc["consequents"] == frozenset({"c"})
    assert (abc["support"], abc["confidence"]) == pytest.approx((0.3, 0.75))
    assert abc["lift"] == pytest.approx(2.5)
    ad = _rule(tiny, "a → d")  # d is in every basket: confidence 1, lift exactly 1
    assert (ad["confidence"], ad["lift"]) == pytest.approx((1.0, 1.0))
    assert ad["conviction"] == np.inf


def test_output_shape_order_and_thresholds(tiny):
    assert list(tiny.columns) == RULE_COLUMNS
    assert (tiny["consequents"].map(len) == 1).all()
    assert (tiny["support"] >= 0.1).all() and (tiny["confidence"] >= 0.5).all()
    assert tiny["lift"].is_monotonic_decreasing
    # "b → a" has confidence 4/6 and passes; "d → a" has 5/10 and passes; "d → c" (.3) does not
    assert "b → a" in set(tiny["rule"]) and "d → c" not in set(tiny["rule"])
    assert len(rules(BASKETS, 0.1, 0.5, max_len=2)["antecedents"].map(len).unique()) == 1
    two = rules(BASKETS, 0.1, 0.5, consequents=2)
    assert two["consequents"].map(len).max() == 2
    assert set(tiny["rule"]) < set(two["rule"])


def test_every_input_form_gives_the_same_rules(tiny):
    long = pd.DataFrame(
        [(f"O{i}", x) for i, basket in enumerate(BASKETS) for x in basket],
        columns=["order_id", "item"],
    )
    repeated = pd.concat([long, long.head(3)])  # an item twice in one order counts once
    items = sorted({x for b in BASKETS for x in b})
    dense = pd.DataFrame([[x in b for x in items] for b in BASKETS], columns=items)
    as_ints = dense.astype(int)
    sparse_frame = dense.astype(pd.SparseDtype(bool, False))
    for form in (long, repeated, pl.from_pandas(long), dense, as_ints, sparse_frame):
        got = rules(form, min_support=0.1, min_confidence=0.5)
        pd.testing.assert_frame_equal(got, tiny)
    renamed = long.rename(columns={"order_id": "ticket", "item": "sku"})
    pd.testing.assert_frame_equal(rules(renamed, 0.1, 0.5, order_id="ticket", item="sku"), tiny)


def test_no_frequent_pairs_gives_an_empty_frame():
    empty = rules([["a"], ["b"], ["c"]], min_support=0.5, min_confidence=0.1)
    assert empty.empty and list(empty.columns) == RULE_COLUMNS


def _brute_force(baskets, min_support, min_confidence):
    sets = [frozenset(b) for b in baskets]
    n = len(sets)
    universe = sorted(frozenset().union(*sets))

    def support(items):
        return sum(items <= s for s in sets) / n

    found = {}
    for size in range(2, len(universe) + 1):
        for combo in combinations(universe, size):
            whole = frozenset(combo)
            s = support(whole)
            if s < min_support:
                continue
            for b in combo:
                ante = whole - {b}
                conf = s / support(ante)
                if conf >= min_confidence:
                    found[(ante, frozenset({b}))] = (s, conf, conf / support(frozenset({b})))
    return found


@settings(max_examples=40, deadline=None)
@given(
    baskets=st.lists(
        st.lists(st.sampled_from("pqrstu"), min_size=1, max_size=5), min_size=1, max_size=25
    ),
    min_support=st.sampled_from([0.05, 0.1, 0.2, 0.3]),
    min_confidence=st.sampled_from([0.0, 0.3, 0.6, 0.9]),
)
def test_rules_match_brute_force_enumeration(baskets, min_support, min_confidence):
    got = rules(baskets, min_support, min_confidence)
    expected = _brute_force(baskets, min_support, min_confidence)
    assert len(got) == len(expected)
    for row in got.itertuples():
        s, conf, lift = expected[(row.antecedents, row.consequents)]
        assert (row.support, row.confidence, row.lift) == pytest.approx((s, conf, lift))


def test_fifty_thousand_items_stay_sparse():
    rng = np.random.default_rng(0)
    n_baskets, n_items = 20_000, 50_000
    sizes = rng.integers(1, 6, n_baskets)
    orders = np.repeat(np.arange(n_baskets), sizes)
    items = rng.permutation(np.resize(np.arange(n_items), len(orders)))  # every item sold
    # plant "x → y": x in 2% of baskets, y with it 90% of the time
    x_rows = rng.choice(n_baskets, 400, replace=False)
    y_rows = x_rows[:360]
    long = pd.DataFrame(
        {
            "order_id": np.concatenate([orders, x_rows, y_rows]).astype(str),
            "item": np.concatenate([items.astype(str), ["x"] * 400, ["y"] * 360]),
        }
    )
    assert long["item"].nunique() == n_items + 2
    tracemalloc.start()
    found = rules(long, min_support=0.005, min_confidence=0.5)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert set(found["rule"]) == {"x → y", "y → x"}
    assert _rule(found, "x → y")["confidence"] == pytest.approx(0.9)
    assert peak < 100, f"peak {peak:.0f} MB; a dense 20k × 50k encoding needs about 1,000 MB"


def test_recommend_orders_by_confidence_not_lift(tiny):
    got = recommend(tiny, ["a"])
    # a → b: confidence .8, lift 1.33; a → c: confidence .6, lift 2; a → d: lift 1, left out
    assert list(got["offer"]) == ["b", "c"]
    assert got["confidence"].tolist() == pytest.approx([0.8, 0.6])
    assert list(got.columns) == ["offer", *RULE_COLUMNS]


def test_recommend_skips_held_items_keeps_best_rule_per_offer(tiny):
    got = recommend(tiny, ["a", "b"])
    # c is offered through a → c (.6), b → c (.5) and a, b → c (.75): the best one is kept
    assert list(got["offer"]) == ["c"]
    assert got.loc[0, "rule"] == "a, b → c"
    assert got.loc[0, "confidence"] == pytest.approx(0.75)
    assert recommend(tiny, ["a", "b", "c"]).empty  # only d is left, and its lift is 1


def test_recommend_breaks_confidence_ties_by_lift_and_caps_k(tiny):
    got = recommend(tiny, "c")  # c → a and c → b both have confidence 1; lifts 2 and 1.67
    assert list(got["offer"]) == ["a", "b"]
    assert list(recommend(tiny, "c", k=1)["offer"]) == ["a"]
    assert recommend(tiny, ["unknown item"]).empty


def _hand_rules(rows) -> pd.DataFrame:
    """A rules frame by hand: (rule text, support, confidence, lift)."""
    frame = pd.DataFrame(rows, columns=["rule", "support", "confidence", "lift"])
    sides = frame["rule"].str.split(" → ")
    return frame.assign(
        antecedents=sides.map(lambda s: frozenset(s[0].split(", "))),
        consequents=sides.map(lambda s: frozenset([s[1]])),
    )


def test_cross_sell_is_lift_above_one_then_confidence():
    """The method (§6): recommend a pair only when lift > 1; among those, by confidence."""
    hand = _hand_rules(
        [
            ("x → y", 0.01, 0.30, 9.0),  # the highest lift, the lowest confidence
            ("a → b", 0.20, 0.90, 1.0),  # lift exactly 1: no association, left out
            ("c → d", 0.05, 0.95, 0.8),  # confident but B is rarer after A: left out
            ("e → f", 0.10, 0.70, 1.5),
            ("g → h", 0.02, 0.70, 1.5),  # ties e → f on confidence and lift: lower support
            ("i → j", 0.03, 0.70, 2.0),  # ties on confidence, higher lift: first of the three
        ]
    )
    got = cross_sell(hand, n=10)
    assert got["rule"].tolist() == ["i → j", "e → f", "g → h", "x → y"]
    assert (got["lift"] > 1).all() and got["confidence"].is_monotonic_decreasing
    assert cross_sell(hand, n=2)["rule"].tolist() == ["i → j", "e → f"]
    # the head of the lift-sorted frame is a different list
    assert hand.sort_values("lift", ascending=False)["rule"].iloc[0] == "x → y"
    # recommend reads the same order for one customer's basket
    assert recommend(hand, ["e", "g", "i", "x"], k=10)["rule"].tolist() == got["rule"].tolist()
    with pytest.raises(DataError, match="missing column"):
        cross_sell(hand.drop(columns="lift"))


def test_rules_chart_in_the_methods_order():
    hand = _hand_rules(
        [("x → y", 0.01, 0.30, 9.0), ("a → b", 0.2, 0.9, 1.0), ("e → f", 0.1, 0.7, 1.5)]
    )
    fig = top_rules_chart(hand, order="confidence")
    ax = fig.axes[0]
    # bars bottom up: the most confident rule at the top; lift 1 is not shown
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x → y", "e → f"]
    assert ax.get_title() == "Cross-sell rules: lift > 1, by confidence"
    assert top_rules_chart(hand).axes[0].get_title() == "Strongest cross-sell rules by lift"
    with pytest.raises(ValueError, match="order must be one of"):
        top_rules_chart(hand, order="support")


def test_conditional_is_bayes_on_purchase_sequences():
    """P(B | A) = P(A, then B) / P(A), against P(B): customers who bought A and later B."""
    rows = [
        ("u1", "2026-01-01", "milk"),
        ("u1", "2026-02-01", "bread"),  # milk, then bread
        ("u2", "2026-01-05", "milk"),
        ("u2", "2026-01-05", "bread"),  # the same day and order: not "later"
        ("u3", "2026-01-01", "bread"),
        ("u3", "2026-03-01", "milk"),  # bread, then milk: not milk then bread
        ("u4", "2026-01-01", "milk"),
        ("u4", "2026-01-20", "tea"),
        ("u4", "2026-02-20", "bread"),  # milk, then bread (later still)
        ("u5", "2026-01-01", "tea"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "order_date", "category"])
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    got = conditional(frame, "milk", "bread").iloc[0]
    # n = 5; milk: u1 u2 u3 u4 (4); bread: u1 u2 u3 u4 (4); milk then bread: u1, u4 (2)
    assert (got["customers"], got["customers_a"], got["customers_b"]) == (5, 4, 4)
    assert got["customers_a_then_b"] == 2
    assert got["p_b_given_a"] == pytest.approx(2 / 4)
    assert got["p_b"] == pytest.approx(4 / 5)
    assert got["p_b_given_a"] == pytest.approx(got["p_a_then_b"] / got["p_a"])  # Bayes
    assert got["lift"] == pytest.approx((2 / 4) / (4 / 5))
    assert got["p_b_given_not_a"] == 0.0  # u5, the one customer without milk, bought no bread
    every = conditional(frame)
    assert len(every) == 3 * 2 and every["lift"].is_monotonic_decreasing
    tea_bread = every[(every["a"] == "tea") & (every["b"] == "bread")].iloc[0]
    assert tea_bread["customers_a_then_b"] == 1 and tea_bread["p_b_given_a"] == 0.5
    # order lines joined to their orders
    lines = pd.DataFrame({"order_id": ["o1", "o2"], "category": ["milk", "bread"]})
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2"],
            "customer_id": ["u1", "u1"],
            "order_date": pd.to_datetime(["2026-01-01", "2026-01-02"]),
        }
    )
    joined = conditional(lines, "milk", "bread", transactions=orders).iloc[0]
    assert joined["customers_a_then_b"] == 1 and joined["p_b_given_a"] == 1.0
    with pytest.raises(DataError, match="no purchases of cheese"):
        conditional(frame, "cheese")


@pytest.mark.parametrize(
    ("baskets", "message"),
    [
        ([], "no baskets: the list is empty"),
        (["a", "b"], "every basket must be a list of items"),
        ([["a", None]], "items must not be missing"),
        (pd.DataFrame({"order_id": [], "item": []}), "no transactions"),
        (pd.DataFrame({"order_id": ["1", None], "item": ["a", "b"]}), "column 'order_id'"),
        (pd.DataFrame({"a": [1, 2], "b": [0, 1]}), "only 0/1 or True/False"),
        (pd.DataFrame({"order_id": ["1"], "sku": ["a"]}), "columns 'order_id' and 'item'"),
        ("milk", "expected a list of item lists"),
    ],
)
def test_bad_baskets_raise_a_clear_error(baskets, message):
    with pytest.raises(DataError, match=message):
        rules(baskets, 0.1, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_support": 0}, r"min_support must be a number in \(0, 1\]"),
        ({"min_support": 1.5}, "min_support"),
        ({"min_confidence": -0.1}, r"min_confidence must be a number in \[0, 1\]"),
        ({"max_len": 1}, "max_len must be an integer >= 2"),
        ({"consequents": 0}, "consequents must be an integer >= 1"),
    ],
)
def test_bad_thresholds_raise_a_clear_error(kwargs, message):
    args = {"min_support": 0.1, "min_confidence": 0.5} | kwargs
    with pytest.raises(DataError, match=message):
        rules(BASKETS, **args)


def test_recommend_rejects_a_frame_that_is_not_rules(tiny):
    with pytest.raises(DataError, match="missing column"):
        recommend(pd.DataFrame({"rule": ["a → b"]}), ["a"])
    with pytest.raises(DataError, match="k must be an integer >= 1"):
        recommend(tiny, ["a"], k=0)


@pytest.fixture(scope="module")
def grocery_rules(groceries_path) -> pd.DataFrame:
    return rules(groceries(groceries_path), min_support=0.001, min_confidence=0.5)


def test_groceries_reproduces_arules(grocery_rules):
    assert len(grocery_rules) == 5_668  # arules::apriori(supp = 0.001, conf = 0.5)
    top = grocery_rules.iloc[0]
    assert top["rule"] == "Instant food products, soda → hamburger meat"
    assert top["lift"] == pytest.approx(18.996, abs=5e-4)
    assert top["support"] * 9_835 == pytest.approx(12)
    assert top["confidence"] == pytest.approx(12 / 19)


def test_groceries_multi_item_consequents_match_mlxtend_default(groceries_path, grocery_rules):
    long = groceries(groceries_path, form="long")
    everything = rules(long, min_support=0.001, min_confidence=0.5, consequents=None)
    assert len(everything) == 5_829
    assert (everything["consequents"].map(len) > 1).sum() == 5_829 - 5_668
    single = everything[everything["consequents"].map(len) == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(single, grocery_rules)


def test_figures_draw_the_top_rules(grocery_rules, tmp_path):
    bars = top_rules_chart(grocery_rules, n=8)
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    assert len(labels) == 8 and labels[-1] == "Instant food products, soda → hamburger meat"
    scatter = lift_confidence_scatter(grocery_rules, label=5)
    assert "1. Instant food products, soda → hamburger meat" in scatter.axes[1].texts[0].get_text()
    for fig in (bars, scatter):
        fig.savefig(tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 10_000
