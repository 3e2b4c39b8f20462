"""Basket analysis (购物篮分析): association rules for cross-sell, "bought A → offer B".

The method's statistics (method.md §6): support = P(A, B); confidence = P(B | A) = P(A, B) / P(A);
lift = P(B | A) / P(B). A pair is recommended only when lift > 1, and among those in order of
confidence. The calls:

- :func:`rules` — frequent itemsets by FP-growth (Han, Pei & Yin 2000) and the rules drawn from
  them, by ``mlxtend`` (``fpgrowth`` and ``association_rules``; Spark ML's ``FPGrowth`` mines
  order lines given as a Spark DataFrame, on the cluster), with leverage
  (Piatetsky-Shapiro) and conviction (Brin et al. 1997) beside support, confidence and lift;
- :func:`cross_sell` — the rules to act on, in the method's order: lift > 1, then by confidence;
- :func:`recommend` — the items to offer a customer holding a basket, in the method's order;
- :func:`conditional` — Bayes' theorem on behaviour (贝叶斯定理): does buying B become likelier
  after a customer bought A?  P(B | A) against P(B), from purchase sequences.

Baskets arrive as lists of items, a one-hot frame (one row per basket, one 0/1 column per item)
or long transactions ``order_id, item``. The long form is reduced with one narwhals pass to its
distinct (order, item) pairs, so pandas and polars both work. Every form becomes a scipy CSR
matrix; items below the support threshold are dropped before mining (no itemset containing them
can be frequent), and the rest go to mlxtend as a pandas ``SparseDtype`` frame, so 50,000
distinct items cost memory in proportion to the items bought, not baskets × items.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from numbers import Real

import narwhals as nw
import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import association_rules, fpgrowth
from scipy import sparse

from closedloop._frames import collect, lazy_frame, to_pandas
from closedloop.errors import DataError
from closedloop.spark import is_spark

__all__ = [
    "CROSS_SELL_N",
    "MIN_LIFT",
    "RECOMMEND_K",
    "RULE_ARROW",
    "RULE_COLUMNS",
    "recommend",
    "rules",
]

#: a rule is worth recommending only when buying A makes B more likely than it is anyway
MIN_LIFT = 1.0
#: how many offers :func:`recommend` returns
RECOMMEND_K = 5
#: how many rules :func:`cross_sell` returns
CROSS_SELL_N = 10
#: the arrow in the readable rule text "A, B → C"
RULE_ARROW = " → "

RULE_COLUMNS = [
    "antecedents",
    "consequents",
    "rule",
    "antecedent_support",
    "consequent_support",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
]
_METRICS = {
    "antecedent support": "antecedent_support",
    "consequent support": "consequent_support",
    "support": "support",
    "confidence": "confidence",
    "lift": "lift",
    "leverage": "leverage",
    "conviction": "conviction",
}


def rules(
    baskets,
    min_support: float,
    min_confidence: float,
    max_len: int | None = None,
    consequents: int | None = 1,
    *,
    order_id: str = "order_id",
    item: str = "item",
) -> pd.DataFrame:
    """Association rules (关联规则) A → B with support, confidence, lift, leverage and conviction.

    ``baskets``: a list of item lists; a one-hot frame (rows are baskets, columns are items, values
    0/1 or bool, dense or sparse); or long transactions with columns ``order_id`` and ``item``
    (pandas or polars; repeated items in one order count once). ``max_len`` caps the items in a
    rule (antecedent plus consequent). ``consequents`` is the most items on the right-hand side:
    1 by default, the method's "bought A → offer B"; ``None`` allows any number.

    Single-item consequents are what R's ``arules::apriori`` produces, so on Groceries at support
    0.001 and confidence 0.5 this returns arules' 5,668 rules; mlxtend's own default enumerates
    every split of each frequent itemset and adds 161 rules with two-item consequents (5,829 in
    all), which ``consequents=None`` gives back.

    Returns one row per rule, strongest lift first: ``antecedents`` and ``consequents`` as
    frozensets, ``rule`` as text ("A, B → C", items in alphabetical order), then the metrics.
    Mining by mlxtend ``fpgrowth``, or, for a Spark DataFrame of order lines, by Spark ML's
    ``FPGrowth`` on the session (only the frequent itemsets come back); rule generation by
    mlxtend ``association_rules`` on either, so both give the same rules and numbers.
    """
    _check_fraction("min_support", min_support, allow_zero=False)
    _check_fraction("min_confidence", min_confidence, allow_zero=True)
    _check_count("max_len", max_len, smallest=2, allow_none=True)
    _check_count("consequents", consequents, smallest=1, allow_none=True)

    mine = _spark_itemsets if is_spark(baskets) else _mlxtend_itemsets
    itemsets, n_baskets = mine(baskets, min_support, max_len, order_id, item)
    if itemsets is None or not (itemsets["itemsets"].map(len) > 1).any():
        return _empty_rules()
    found = association_rules(
        itemsets,
        num_itemsets=n_baskets,
        metric="confidence",
        min_threshold=min_confidence,
        return_metrics=list(_METRICS),
    ).rename(columns=_METRICS)
    if consequents is not None:
        found = found[found["consequents"].map(len) <= consequents]
    if found.empty:
        return _empty_rules()
    found = found.assign(
        rule=[
            _rule_text(a, c)
            for a, c in zip(found["antecedents"], found["consequents"], strict=True)
        ]
    )
    found = found.sort_values(
        ["lift", "confidence", "support", "rule"], ascending=[False, False, False, True]
    )
    return found[RULE_COLUMNS].reset_index(drop=True)


def _mlxtend_itemsets(baskets, min_support, max_len, order_id, item):
    """The frequent itemsets of baskets in memory, by mlxtend's FP-growth, and the number of
    baskets (None when fewer than two items are frequent)."""
    matrix, labels = _encode(baskets, order_id=order_id, item=item)
    n_baskets = matrix.shape[0]
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    frequent = np.flatnonzero(counts / n_baskets >= min_support)  # mlxtend's own test
    if len(frequent) < 2:
        return None, n_baskets
    onehot = pd.DataFrame.sparse.from_spmatrix(
        matrix[:, frequent].astype(bool), columns=pd.Index(labels[frequent], dtype="str")
    )
    return fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=max_len), n_baskets


def _spark_itemsets(baskets, min_support, max_len, order_id, item):
    """The frequent itemsets of long order lines on Spark (``pyspark.ml.fpm.FPGrowth``): the
    baskets (each order's distinct items, as text) are built and mined on the session; only
    the itemsets and their counts come back. Support is count / baskets with mlxtend's test
    (``support >= min_support``), so both routes keep the same itemsets and the rules drawn
    from them by mlxtend's ``association_rules`` are the same."""
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import functions as F

    frame = lazy_frame(baskets, "baskets", (order_id, item))
    blank = nw.col(order_id).is_null() | nw.col(item).is_null()
    counts = collect(
        frame.select(nw.len().alias("rows"), blank.cast(nw.Int64).sum().alias("blank"))
    )
    if int(counts["rows"].iloc[0]) == 0:
        raise DataError("baskets", "no transactions: the frame is empty")
    if int(counts["blank"].iloc[0] or 0):
        bad = collect(frame.filter(blank).select(order_id, item).head(5))
        raise DataError(
            "baskets",
            "order ids and items must not be missing",
            column=order_id if bad[order_id].isna().any() else item,
            rows=bad,
            n_bad=int(counts["blank"].iloc[0]),
        )
    native = frame.to_native()
    lines = native.select(F.col(order_id), F.col(item).cast("string").alias("items"))
    orders = lines.groupBy(order_id).agg(F.collect_set("items").alias("items"))
    n_baskets = orders.count()
    # Spark keeps count >= ceil(minSupport * n): a hair lower, then mlxtend's test exactly
    model = FPGrowth(itemsCol="items", minSupport=min_support * (1 - 1e-9)).fit(orders)
    found = model.freqItemsets
    if max_len is not None:
        found = found.filter(F.size("items") <= max_len)
    table = found.toArrow().to_pandas()
    support = table["freq"].to_numpy(dtype="float64") / float(n_baskets)
    itemsets = pd.DataFrame(
        {"support": support, "itemsets": [frozenset(map(str, s)) for s in table["items"]]}
    )
    itemsets = itemsets[itemsets["support"] >= min_support].reset_index(drop=True)
    return (itemsets if len(itemsets) else None), n_baskets


def method_order(rules: pd.DataFrame, *, min_lift: float = MIN_LIFT) -> pd.DataFrame:
    """The method's order of rules (method.md §6): only rules with lift above ``min_lift`` (1: B
    is likelier after A than it is anyway), ranked by confidence, then lift, then support, all
    descending (then by ``rule`` text when the frame has it, so equal rules keep one order).

    The one place that order is written: :func:`cross_sell` and :func:`recommend` read it."""
    _check_rule_columns(rules)
    keys = ["confidence", "lift", "support"]
    kept = rules[rules["lift"] > min_lift]
    if "rule" in kept.columns:
        kept = kept.sort_values("rule", kind="stable")
    return kept.sort_values(keys, ascending=False, kind="stable")


def cross_sell(
    rules: pd.DataFrame, n: int = CROSS_SELL_N, *, min_lift: float = MIN_LIFT
) -> pd.DataFrame:
    """The top ``n`` cross-sell rules (关联销售) in the method's order: lift > 1, by confidence.

    ``rules`` is the frame of :func:`rules` (any frame with ``antecedents, consequents,
    support, confidence, lift``). Rules with lift at or below ``min_lift`` are left out; the rest
    are ranked by confidence, ties by lift, then support (:func:`method_order`). Same columns as
    ``rules``, index reset. ``rules.head(n)`` is the strongest *association* (lift first); this is
    what the method recommends.
    """
    _check_count("n", n, smallest=1)
    return method_order(rules, min_lift=min_lift).head(n).reset_index(drop=True)


def recommend(
    rules: pd.DataFrame,
    items: str | Iterable[str],
    k: int = RECOMMEND_K,
    *,
    min_lift: float = MIN_LIFT,
) -> pd.DataFrame:
    """What to offer a customer who holds ``items``: the method's order (method.md §6).

    Keeps the rules whose antecedents the customer already holds and whose consequents they do
    not hold yet, in :func:`method_order` (lift above ``min_lift``, by confidence, then lift, then
    support); keeps the best rule for each offer and returns the top ``k``: ``offer`` (text),
    then the rule's columns as in :func:`rules`.
    """
    _check_rule_columns(rules)
    if isinstance(items, str):
        items = [items]
    held = frozenset(str(x) for x in items)
    _check_count("k", k, smallest=1)
    usable = rules["antecedents"].map(held.issuperset) & rules["consequents"].map(held.isdisjoint)
    picked = method_order(rules[usable], min_lift=min_lift)
    picked = picked.assign(offer=picked["consequents"].map(lambda s: ", ".join(sorted(s))))
    picked = picked.drop_duplicates("offer").head(k)
    return picked[["offer", *[c for c in rules.columns if c != "offer"]]].reset_index(drop=True)


def conditional(
    purchases,
    a=None,
    b=None,
    *,
    transactions=None,
    item: str = "category",
    customer_id: str = "customer_id",
    order_date: str = "order_date",
    order_id: str = "order_id",
) -> pd.DataFrame:
    """Bayes' theorem on behaviour (贝叶斯定理): is B likelier once a customer has bought A?

    ``purchases`` has one row per item bought: ``customer_id, order_date`` and ``item`` (default
    the ``category`` column). Order lines without customer and date (the demo's ``items``) are
    joined on ``order_id`` to ``transactions``. ``a`` and ``b`` are one value, a list of values,
    or ``None`` for every value of ``item``; one row per ordered pair (A, B), A ≠ B.

    Over the customers in ``purchases`` (n):

    - ``p_a`` = P(A): share of customers who bought A;
    - ``p_b`` = P(B): share who bought B (at any time) — the prior;
    - ``p_a_then_b`` = P(A, then B): share who bought B *later* than their first purchase of A
      (strictly later in time: B in the same order is basket analysis, not a sequence);
    - ``p_b_given_a`` = P(B | A) = P(A, then B) / P(A) — the posterior, Bayes' theorem;
    - ``p_b_given_not_a``: share of customers who never bought A who bought B;
    - ``lift`` = P(B | A) / P(B): above 1, A is followed by B more often than B happens anyway.

    Counts ``customers, customers_a, customers_b, customers_a_then_b`` beside them. Sorted by
    lift, highest first. A descriptive comparison of what followed what, not a causal effect:
    customers who buy more of everything raise P(B | A) for every A.
    """
    frame = _purchase_sequences(purchases, transactions, item, customer_id, order_date, order_id)
    values = sorted(frame[item].unique())
    firsts = frame.pivot_table(index=customer_id, columns=item, values=order_date, aggfunc="min")
    lasts = frame.pivot_table(index=customer_id, columns=item, values=order_date, aggfunc="max")
    firsts, lasts = firsts.reindex(columns=values), lasts.reindex(columns=values)
    n = len(firsts)

    def chosen(x, name):
        if x is None:
            return values
        wanted = [str(v) for v in ([x] if isinstance(x, str) or not isinstance(x, Iterable) else x)]
        unknown = sorted(set(wanted) - set(values))
        if unknown:
            raise DataError("conditional", f"{name}: no purchases of {', '.join(unknown)}")
        return list(dict.fromkeys(wanted))

    first = firsts.to_numpy("datetime64[ns]")
    last = lasts.to_numpy("datetime64[ns]")
    position = {v: i for i, v in enumerate(values)}
    rows = []
    for left in chosen(a, "a"):
        i = position[left]
        bought_a = ~np.isnat(first[:, i])
        for right in chosen(b, "b"):
            if right == left:
                continue
            j = position[right]
            bought_b = ~np.isnat(last[:, j])
            then = bought_a & bought_b & (last[:, j] > first[:, i])
            rows.append(
                (
                    left,
                    right,
                    n,
                    bought_a.sum(),
                    bought_b.sum(),
                    then.sum(),
                    (bought_b & ~bought_a).sum(),
                    n - bought_a.sum(),
                )
            )
    out = pd.DataFrame(
        rows,
        columns=[
            "a",
            "b",
            "customers",
            "customers_a",
            "customers_b",
            "customers_a_then_b",
            "_b_not_a",
            "_not_a",
        ],
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        out["p_a"] = out["customers_a"] / out["customers"]
        out["p_b"] = out["customers_b"] / out["customers"]
        out["p_a_then_b"] = out["customers_a_then_b"] / out["customers"]
        out["p_b_given_a"] = out["p_a_then_b"] / out["p_a"]
        out["p_b_given_not_a"] = out["_b_not_a"] / out["_not_a"]
        out["lift"] = out["p_b_given_a"] / out["p_b"]
    out = out.drop(columns=["_b_not_a", "_not_a"])
    counts = ["customers", "customers_a", "customers_b", "customers_a_then_b"]
    out[counts] = out[counts].astype("int64")
    out = out.sort_values(["lift", "a", "b"], ascending=[False, True, True], kind="stable")
    return out.reset_index(drop=True)


def _purchase_sequences(purchases, transactions, item, customer_id, order_date, order_id):
    """``customer_id, order_date, item`` per item bought, joined to ``transactions`` on
    ``order_id`` when the lines do not carry the customer and the date."""
    lines = to_pandas(purchases, "conditional purchases", (item,))
    if not {customer_id, order_date} <= set(lines.columns):
        if transactions is None or order_id not in lines.columns:
            raise DataError(
                "conditional purchases",
                f"needs '{customer_id}' and '{order_date}', or '{order_id}' and the transactions"
                " to join them from",
            )
        orders = to_pandas(
            transactions, "conditional transactions", (order_id, customer_id, order_date)
        )
        lines = lines.drop(columns=[c for c in (customer_id, order_date) if c in lines.columns])
        orders = orders[[order_id, customer_id, order_date]].drop_duplicates(order_id)
        lines = lines.merge(orders, on=order_id, how="inner")
    frame = lines[[customer_id, order_date, item]].dropna()
    if frame.empty:
        raise DataError("conditional purchases", "no purchases with a customer, a date and an item")
    return frame.astype({customer_id: "str", item: "str"})


def _check_rule_columns(rules: pd.DataFrame) -> None:
    needed = ("antecedents", "consequents", "confidence", "lift", "support")
    missing = [c for c in needed if c not in rules]
    if missing:
        raise DataError(
            "rules",
            f"missing column(s) {', '.join(missing)}: pass the frame returned by basket.rules()",
        )


def _encode(baskets, *, order_id: str, item: str) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Baskets in any accepted form → (baskets × items 0/1 CSR matrix, item labels)."""
    frame = nw.from_native(baskets, eager_only=True, pass_through=True)
    if isinstance(frame, nw.DataFrame):
        if {order_id, item} <= set(frame.columns):
            return _encode_long(frame, order_id=order_id, item=item)
        return _encode_onehot(frame.to_pandas(), order_id=order_id, item=item)
    if isinstance(baskets, str) or not isinstance(baskets, Sequence):
        raise DataError(
            "baskets",
            "expected a list of item lists, a one-hot frame, or a frame with columns "
            f"'{order_id}' and '{item}'; got {type(baskets).__name__}",
        )
    return _encode_lists(baskets)


def _encode_lists(baskets: Sequence) -> tuple[sparse.csr_matrix, np.ndarray]:
    if len(baskets) == 0:
        raise DataError("baskets", "no baskets: the list is empty")
    flat_ok = [isinstance(b, Iterable) and not isinstance(b, str | bytes) for b in baskets]
    if not all(flat_ok):
        bad = [i for i, ok in enumerate(flat_ok) if not ok]
        raise DataError(
            "baskets",
            "every basket must be a list of items (a single basket is [['A', 'B']], not "
            "['A', 'B'])",
            rows=pd.DataFrame({"basket": [baskets[i] for i in bad[:5]]}, index=bad[:5]),
            n_bad=len(bad),
        )
    sizes = np.fromiter((len(b) for b in baskets), dtype=np.int64, count=len(baskets))
    long = pd.DataFrame(
        {
            "order_id": np.repeat(np.arange(len(baskets)), sizes),
            "item": pd.Series(list(chain.from_iterable(baskets)), dtype=object),
        }
    )
    nulls = long["item"].isna()
    if nulls.any():
        raise DataError(
            "baskets", "items must not be missing", rows=long[nulls], n_bad=int(nulls.sum())
        )
    return _to_matrix(long["order_id"].to_numpy(), long["item"].astype("str"), len(baskets))


def _encode_long(frame, *, order_id: str, item: str) -> tuple[sparse.csr_matrix, np.ndarray]:
    if len(frame) == 0:
        raise DataError("baskets", "no transactions: the frame is empty")
    pairs = frame.select(order_id, item)
    bad = pairs.filter(nw.col(order_id).is_null() | nw.col(item).is_null())
    if len(bad):
        column = order_id if bad[order_id].is_null().any() else item
        raise DataError(
            "baskets",
            "order ids and items must not be missing",
            column=column,
            rows=bad.head(5).to_pandas(),
            n_bad=len(bad),
        )
    distinct = pairs.unique().to_pandas()
    orders, _ = pd.factorize(distinct[order_id])
    return _to_matrix(orders, distinct[item].astype("str"), int(orders.max()) + 1)


def _encode_onehot(
    frame: pd.DataFrame, *, order_id: str, item: str
) -> tuple[sparse.csr_matrix, np.ndarray]:
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError("baskets", "no baskets: the one-hot frame is empty")
    bad = []
    for name, column in frame.items():
        dtype = column.dtype.subtype if isinstance(column.dtype, pd.SparseDtype) else column.dtype
        if pd.api.types.is_bool_dtype(dtype):
            continue
        if not pd.api.types.is_numeric_dtype(dtype) or not column.isin([0, 1]).all():
            bad.append(name)
    if bad:
        raise DataError(
            "baskets",
            "a one-hot frame holds only 0/1 or True/False, one column per item (long "
            f"transactions need columns '{order_id}' and '{item}')",
            column=str(bad[0]),
            n_bad=len(bad),
        )
    if all(isinstance(dt, pd.SparseDtype) for dt in frame.dtypes):
        matrix = frame.sparse.to_coo().tocsr()
    else:
        matrix = sparse.csr_matrix(frame.to_numpy(dtype=np.int8))
    matrix.eliminate_zeros()
    return matrix.astype(np.int32), np.asarray([str(c) for c in frame.columns], dtype=object)


def _to_matrix(
    orders: np.ndarray, items: pd.Series, n_baskets: int
) -> tuple[sparse.csr_matrix, np.ndarray]:
    codes, labels = pd.factorize(items)
    matrix = sparse.csr_matrix(
        (np.ones(len(codes), dtype=np.int32), (orders, codes)), shape=(n_baskets, len(labels))
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1  # an item bought twice in one basket counts once
    return matrix, np.asarray(labels, dtype=object)


def _rule_text(antecedents: frozenset, consequents: frozenset) -> str:
    return ", ".join(sorted(antecedents)) + RULE_ARROW + ", ".join(sorted(consequents))


def _empty_rules() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in RULE_COLUMNS})
    return frame.astype({"antecedents": object, "consequents": object, "rule": "str"})


def _check_fraction(name: str, value, *, allow_zero: bool) -> None:
    ok = isinstance(value, Real) and not isinstance(value, bool) and value <= 1
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        span = "[0, 1]" if allow_zero else "(0, 1]"
        raise DataError("arguments", f"{name} must be a number in {span}, got {value!r}")


def _check_count(name: str, value, *, smallest: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < smallest:
        raise DataError("arguments", f"{name} must be an integer >= {smallest}, got {value!r}")
