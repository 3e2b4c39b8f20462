"""The customer base: RFM, counting heads (数人头), member tiers, lifecycle, churn levels, migration.

Growth is planned by customers — how many, how often, how much each — rather than by products
(method.md §3, §5). The calls here answer that:

- :func:`rfm_table` — one row per customer: recency, frequency, monetary (the method's average per
  transaction by default, or the total), 1–5 scores and a named segment from a replaceable map
  (:data:`SEGMENTS`);
- :func:`pyramid` / :func:`tier_of` / :func:`pyramid_over_time` — the customer pyramid (客户金字塔):
  heads and revenue by tier, and by month or quarter so a revenue drop can be traced to a tier;
  :func:`with_members` adds the known customers who did not buy (zero spend, the bottom band);
  :func:`head_share_curve` / :func:`head_share` — what share of customers makes 40/50/80% of revenue;
- :func:`member_tiers` / :func:`upgrade_candidates` — membership tiers (会员等级) by the 80/20 rule,
  grading (分级), and the customers close to the next tier ranked by chance of upgrading ×
  contribution (提升);
- :func:`lifecycle_stage` — 进 enter, 活 active, 粘 sticky, 值 valuable, 荐 recommend, read off the
  pyramid's layers from the bottom up;
- :func:`churn_severity` — none / light / medium / heavy churn (流失): RFM of the previous period
  against the current one (the method's), or against the customer's own rhythm;
- :func:`migration` — how customers moved between segments or tiers, in heads and revenue.

Raw transactions are reduced to per-customer orders, revenue and first / last purchase by
:mod:`closedloop.summaries` (one group-by where the data lives); scores, tiers and stages are
computed on that pandas summary with numpy (scores and tiers from the order statistics at their
edges, ``np.partition``).

Grouping (分群: by category, style and channel preference, deciding the offer) is
:func:`closedloop.groups.groups`; what here ranks by value is grading (分级).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop._frames import require, to_pandas
from closedloop.errors import DataError
from closedloop.io import DataWarning

__all__ = [
    "ABSENT",
    "ACTIVE_DAYS",
    "CHURN_BASES",
    "CHURN_FALL",
    "CHURN_FALLS",
    "CHURN_LEVELS",
    "CHURN_PERIOD_DAYS",
    "CHURN_THRESHOLDS",
    "HEAD_SHARE_POINTS",
    "LIFECYCLE_BASES",
    "LIFECYCLE_STAGES",
    "MEMBER_CUTS",
    "MEMBER_TIERS",
    "PYRAMID_CUTS",
    "PYRAMID_STAGES",
    "SCORE_LEVELS",
    "SEGMENTS",
    "STICKY_ORDERS",
    "UPGRADE_RANKS",
    "UPGRADE_WITHIN",
    "VALUABLE_SHARE",
    "Migration",
    "churn_from_summary",
    "churn_severity",
    "churn_windows",
    "head_share",
    "head_share_curve",
    "lifecycle_stage",
    "member_tiers",
    "migration",
    "pyramid",
    "pyramid_over_time",
    "quantile_score",
    "rfm_table",
    "tier_labels",
    "tier_of",
    "upgrade_candidates",
    "with_members",
]

#: number of score levels: R, F and M are scored 1 (lowest) to 5 (highest)
SCORE_LEVELS = 5
#: the book's customer pyramid: cumulative shares of customers ranked from the top
PYRAMID_CUTS = (0.02, 0.05, 0.10, 0.15, 0.20, 1.0)
#: membership tiers by the 80/20 rule: top 5% platinum, next to 20% gold, the rest regular
MEMBER_CUTS = (0.05, 0.20)
MEMBER_TIERS = ("platinum", "gold", "regular")
#: an upgrade candidate is at most this share below the next tier's threshold
UPGRADE_WITHIN = 0.20
#: how upgrade_candidates ranks: chance of upgrading x contribution (the method's), or value
UPGRADE_RANKS = ("priority", "value")
#: the revenue shares the head-share curve is read at ("7% of users made 40% of revenue")
HEAD_SHARE_POINTS = (0.40, 0.50, 0.80)
#: lifecycle_stage's bases: the pyramid's layers (the method's), or the project's own rules
LIFECYCLE_BASES = ("pyramid", "rules")
#: the stage of each pyramid layer of PYRAMID_CUTS, top first: top 2% 荐, 2–5% and 5–10% 值,
#: 10–15% and 15–20% 粘, the 20–100% bottom band 活 when it bought within ACTIVE_DAYS, else 进
PYRAMID_STAGES = ("recommend", "valuable", "valuable", "sticky", "sticky", "active")
#: lifecycle: active = bought within this many days of asof (both bases) ...
ACTIVE_DAYS = 90
#: ... sticky = active with at least this many orders in the table's window ...
STICKY_ORDERS = 2
#: ... valuable = sticky and in this top share of customers by value
VALUABLE_SHARE = 0.20
#: the lifecycle ladder, bottom up, with the method's terms
LIFECYCLE_STAGES = {
    "enter": "进",
    "active": "活",
    "sticky": "粘",
    "valuable": "值",
    "recommend": "荐",
}
#: churn levels, and the bases churn_severity reads them from
CHURN_LEVELS = ("none", "light", "medium", "heavy")
CHURN_BASES = ("periods", "rhythm")
#: basis "periods": the fall in F (orders) or M (spend), previous period to current, that starts
#: light, medium and heavy churn; 1.0 = nothing bought in the current period
CHURN_FALLS = (0.25, 0.5, 1.0)
#: basis "rhythm" (the project's own): recency / own-mean-gap ratios for light, medium, heavy ...
CHURN_THRESHOLDS = (1.5, 2.0, 3.0)
#: ... and a fall of at least this share in orders or spend raises the level one step
CHURN_FALL = 0.5
#: length of the current and of the previous period compared by churn_severity
CHURN_PERIOD_DAYS = 90
#: migration's label for "not in this table" (a customer new in `after`, or gone from it)
ABSENT = "(absent)"

#: The named-segment map: rectangles on the R x F grid that cover each of the 25 cells once.
#: Replace it with any table of the same columns (``segment, r_low, r_high, f_low, f_high``,
#: optional ``action``); rfm_table checks that it partitions the grid.
SEGMENTS = pd.DataFrame(
    [
        ("champions", 5, 5, 4, 5, "reward; early access; ask for referrals"),
        ("loyal", 3, 4, 4, 5, "upsell higher-value lines; membership benefits"),
        ("potential_loyalist", 4, 5, 2, 3, "membership offer; second-category cross-sell"),
        ("new", 5, 5, 1, 1, "onboarding touches; a reason for the second purchase"),
        ("promising", 4, 4, 1, 1, "second-purchase offer while the first is recent"),
        ("need_attention", 3, 3, 3, 3, "time-limited offer based on past purchases"),
        ("about_to_sleep", 3, 3, 1, 2, "reactivation reminder; popular products"),
        ("at_risk", 1, 2, 3, 4, "personal win-back with a real offer"),
        ("cant_lose", 1, 2, 5, 5, "win back at any reasonable cost; ask what went wrong"),
        ("hibernating", 2, 2, 1, 2, "low-cost reactivation; otherwise let go"),
        ("lost", 1, 1, 1, 2, "only the cheapest channels"),
    ],
    columns=["segment", "r_low", "r_high", "f_low", "f_high", "action"],
)

_LEVELS = range(1, SCORE_LEVELS + 1)
_RFM_CODES = [f"{r}{f}{m}" for r in _LEVELS for f in _LEVELS for m in _LEVELS]


# ---------------------------------------------------------------------------------------------
# RFM


def rfm_table(
    transactions,
    asof,
    period_days: int | None = None,
    monetary: str = "average",
    *,
    segments: pd.DataFrame = SEGMENTS,
) -> pd.DataFrame:
    """One row per customer: recency, frequency, monetary, 1–5 scores and a named segment (RFM).

    ``transactions`` (pandas, polars, a DuckDB relation or a PySpark DataFrame; ``customer_id,
    order_date, amount``,
    optional ``order_id``) are counted up to the end of the day ``asof``, and over the last
    ``period_days`` days only when given (``None``: all history). An order is one ``order_id``
    (its rows summed) or, without that column, one row.

    Columns: ``recency_days`` (days from the last purchase to asof; 0 = bought on asof),
    ``frequency`` (orders), ``monetary``, ``avg_ticket`` (revenue / orders), ``revenue`` (total
    spend), ``first_purchase, last_purchase``, scores ``R, F, M``, ``rfm_code`` ("545") and
    ``segment``.

    **Monetary.** The method defines M as the *average amount per transaction* (method.md §5), so
    ``monetary="average"`` (the default) makes ``monetary`` = ``avg_ticket`` and feeds it to the M
    score; ``monetary="total"`` (what many tools use) makes it total spend, ``revenue``. Either way
    both ``avg_ticket`` and ``revenue`` are in the table, and the choice is kept in
    ``frame.attrs["monetary"]`` for a report or a figure to state which one it used (attrs are for
    display: a pandas operation may drop them). The pyramid and the member tiers rank by
    ``revenue`` (total spend over the period, as the method ranks), whatever the M choice.

    Scores are quantile scores (:func:`quantile_score`): higher is better, recency scored on
    recent-first. ``segment`` comes from the R x F rectangles of ``segments`` (:data:`SEGMENTS`).
    """
    if monetary not in ("total", "average"):
        raise DataError("rfm_table", f"monetary must be 'total' or 'average', got {monetary!r}")
    lookup, names = _segment_lookup(segments)
    day = summaries.day(asof)
    summary = _buyers(transactions, day, period_days, "rfm_table transactions")
    recency = (day - summary["last_purchase"].dt.normalize()).dt.days.astype("int64")
    avg_ticket = summary["revenue"] / summary["orders"]
    value = summary["revenue"] if monetary == "total" else avg_ticket
    r = quantile_score(-recency.to_numpy())
    f = quantile_score(summary["orders"].to_numpy())
    m = quantile_score(value.to_numpy())
    out = pd.DataFrame(
        {
            "recency_days": recency,
            "frequency": summary["orders"],
            "monetary": value,
            "avg_ticket": avg_ticket,
            "revenue": summary["revenue"],
            "first_purchase": summary["first_purchase"],
            "last_purchase": summary["last_purchase"],
            "R": r,
            "F": f,
            "M": m,
            "rfm_code": pd.Categorical.from_codes(
                ((r - 1) * SCORE_LEVELS + f - 1) * SCORE_LEVELS + m - 1, categories=_RFM_CODES
            ),
            "segment": pd.Categorical.from_codes(lookup[r - 1, f - 1], categories=names),
        },
        index=summary.index,
    )
    out.attrs = {"asof": day, "period_days": period_days, "monetary": monetary}
    return out


def quantile_score(values, levels: int = SCORE_LEVELS) -> np.ndarray:
    """Scores 1..``levels`` by quantile, higher values scoring higher.

    Tie rule (deterministic, independent of row order): a value's rank r is the *lowest* rank of
    its tie group (``scipy.stats.rankdata(method="min")``), and its score is the quantile bin of
    that position's midpoint, ``1 + floor(levels * (r - 1/2) / n)``, in exact integer arithmetic.
    Computed from the ``levels - 1`` order statistics at the bin edges (``np.partition``, linear
    time) rather than by ranking every value.
    Equal values always share a score; without ties each score holds n / levels values (±1),
    and the lowest value scores 1 and the highest ``levels`` whenever n >= 2. A large tie group
    takes the score where it starts, so a level may be empty (CDNOW's one-time buyers, half the
    base, all score F = 1 and nobody scores F = 2).
    """
    values = np.asarray(values)
    n = values.size
    if n == 0:
        return np.zeros(0, dtype="int64")
    # score > k  <=>  c >= m_k = ceil(n k / levels - 1/2), c = how many values are smaller
    # <=>  the value exceeds the m_k-th smallest: only those order statistics are needed
    k = np.arange(1, levels)
    m = -((levels - 2 * n * k) // (2 * levels))
    inner = np.unique(m[m >= 1]) - 1
    nth = np.partition(values, inner) if inner.size else values
    scores = np.ones(n, dtype="int64")
    for m_k in m:
        scores += 1 if m_k < 1 else values > nth[m_k - 1]
    return scores


# ---------------------------------------------------------------------------------------------
# Counting heads: the pyramid


def tier_labels(cuts: Sequence[float] = PYRAMID_CUTS) -> list[str]:
    """Tier names from cumulative cuts: ``top 2%``, ``2–5%``, ..., ``20–100%``."""
    cuts = _check_cuts(cuts)
    lows = (0.0, *cuts[:-1])
    return [
        f"top {hi * 100:g}%" if lo == 0 else f"{lo * 100:g}–{hi * 100:g}%"
        for lo, hi in zip(lows, cuts, strict=True)
    ]


def with_members(rfm: pd.DataFrame, members) -> pd.DataFrame:
    """``rfm`` with a zero-spend row for every customer of ``members`` who is not in it.

    The method's bottom band (20–100%) also holds ordinary members with little or no spend, new
    customers who have not bought yet and non-members (method.md §3, §9); a table built from
    transactions holds only the customers who bought in its window. ``members`` is a customers
    table (``customer_id``; every row is added, members or not: a customer the brand knows by id
    is a head) or a list of ids. Added rows have ``frequency``, ``revenue`` and ``monetary`` 0 and
    every other column missing (no recency: they did not buy in the window), so they rank at the
    bottom, equal values by ``customer_id``. ``attrs["members_added"]`` counts them.

    Non-members who bought under a customer id are ranked by their spend like anyone else;
    anonymous receipts (no customer id) are no heads at all and stay outside the pyramid — the
    member share of :func:`closedloop.kpi.member_kpis` reports them.
    """
    ids = _member_ids(members)
    extra = ids.difference(rfm.index)
    attrs = {**rfm.attrs, "members_added": len(extra)}
    if len(extra):
        zeros = {c: 0 for c in ("frequency", "revenue", "monetary") if c in rfm.columns}
        added = pd.DataFrame(zeros, index=pd.Index(extra, name=rfm.index.name))
        rfm = pd.concat([rfm, added.astype("float64")]).sort_index()
        rfm.index.name = rfm.index.name or "customer_id"
    else:
        rfm = rfm.copy()
    rfm.attrs = attrs
    return rfm


def tier_of(
    rfm: pd.DataFrame,
    value: str = "revenue",
    cuts: Sequence[float] = PYRAMID_CUTS,
    labels: Sequence[str] | None = None,
    *,
    members=None,
) -> pd.Series:
    """Each customer's pyramid tier: customers ranked by ``value``, highest first, cut by share.

    A customer ranked p-th of n is in tier k when ``cuts[k-1] * n < p <= cuts[k] * n`` (so the
    top 2% of 23,570 customers is the first 471). Equal values are ranked by ``customer_id``, so
    the split is deterministic and each tier holds exactly its share of heads. ``members`` (a
    customers table or ids) adds the known customers who did not buy as zero-spend heads
    (:func:`with_members`): they count in n and sit in the bottom tier.
    """
    cuts = _check_cuts(cuts)
    if members is not None:
        rfm = with_members(rfm, members)
    labels = list(labels) if labels is not None else tier_labels(cuts)
    if len(labels) != len(cuts):
        raise DataError("tier_of", f"{len(labels)} labels for {len(cuts)} tiers")
    codes = _tier_codes(rfm, value, cuts)
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=labels, ordered=True),
        index=rfm.index,
        name="tier",
    )


def pyramid(
    rfm: pd.DataFrame,
    value: str = "revenue",
    cuts: Sequence[float] = PYRAMID_CUTS,
    *,
    members=None,
) -> pd.DataFrame:
    """The customer pyramid (客户金字塔): one row per tier, top first.

    Customers are ranked by ``value`` (default: total spend in the table's window, as the method
    ranks; pass ``"monetary"`` to rank by the table's monetary choice). Columns: ``tier, customers,
    customer_share, revenue, revenue_share, avg_ticket`` (tier revenue / tier orders),
    ``avg_frequency`` (orders per head) and ``threshold`` (the lowest ``value`` in the tier, what it
    takes to be in it). Shares sum to 1; an empty tier has NaN averages.

    **Who is counted.** Without ``members``: the customers who bought in the table's window. With
    ``members`` (a customers table or ids), also every known customer who did not buy, as a
    zero-spend head of the bottom band (:func:`with_members`), as the method's bottom band holds
    ordinary members with little or no spend, new customers and non-members. Identified
    non-members are ranked like members; anonymous receipts are not heads.
    """
    cuts = _check_cuts(cuts)
    if members is not None:
        rfm = with_members(rfm, members)
    require(rfm, ("revenue", "frequency", value), "pyramid")
    codes = _tier_codes(rfm, value, cuts)
    k = len(cuts)
    heads = np.bincount(codes, minlength=k)
    revenue = np.bincount(codes, weights=rfm["revenue"].to_numpy(float), minlength=k)
    orders = np.bincount(codes, weights=rfm["frequency"].to_numpy(float), minlength=k)
    threshold = pd.Series(rfm[value].to_numpy(float)).groupby(codes).min()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame(
            {
                "tier": tier_labels(cuts),
                "customers": heads,
                "customer_share": heads / heads.sum(),
                "revenue": revenue,
                "revenue_share": revenue / revenue.sum(),
                "avg_ticket": revenue / orders,
                "avg_frequency": orders / heads,
                "threshold": threshold.reindex(range(k)).to_numpy(),
            }
        )
    return out


def pyramid_over_time(
    transactions,
    asof,
    period_days: int | None = 365,
    freq: str = "month",
    cuts: Sequence[float] = PYRAMID_CUTS,
    value: str = "revenue",
    *,
    summary: pd.DataFrame | None = None,
    ranked: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Revenue by pyramid tier by month or quarter, tiers fixed over the window.

    Customers are ranked once over the last ``period_days`` days to ``asof`` (as :func:`pyramid`);
    each ``freq`` ("month" or "quarter") period of that window then shows, per tier, the
    ``customers`` who bought in it, their ``orders``, ``revenue`` (net) and ``revenue_share`` of
    the period's revenue. Long format, one row per (period, tier), every tier in every period; when
    revenue falls, the rows show which tier it fell in.

    ``summary``: the :func:`closedloop.summaries.by_period` this needs, when a caller already
    made it (from the window's first day to ``asof``, by ``freq``; rows without a customer id,
    the anonymous receipts, are left out); ``ranked``: the customers who bought in the window,
    with their ``value`` there (sorted by ``customer_id``), in place of :func:`rfm_table`.
    """
    if freq not in ("month", "quarter"):
        raise DataError("pyramid_over_time", f"freq must be 'month' or 'quarter', got {freq!r}")
    rfm = rfm_table(transactions, asof, period_days) if ranked is None else ranked
    tiers = tier_of(rfm, value, cuts)
    start = summaries.period_start(asof, period_days)
    if summary is None:
        per = summaries.by_period(
            transactions, asof, start=start, freq=freq, source="pyramid_over_time transactions"
        )
    else:
        per = summary[summary["customer_id"].notna()].copy()
    # a customer with refunds only in the window is not ranked: the bottom tier holds them
    per["tier"] = summaries.lookup(tiers, per["customer_id"]).fillna(tiers.cat.categories[-1]).array
    out = (
        per.assign(customers=per["orders"] > 0)
        .groupby(["period", "tier"], observed=False)
        .agg(customers=("customers", "sum"), orders=("orders", "sum"), revenue=("revenue", "sum"))
        .reset_index()
    )
    out["period"] = out["period"].astype("datetime64[ns]")
    total = out.groupby("period")["revenue"].transform("sum")
    out["revenue_share"] = out["revenue"] / total
    return out.sort_values(["period", "tier"]).reset_index(drop=True)


def head_share_curve(rfm: pd.DataFrame, value: str = "revenue") -> pd.DataFrame:
    """The concentration curve: customers ranked by ``value`` from the top, cumulative shares.

    One row per customer: ``customers`` (1..n), ``customer_share`` and ``revenue_share`` (cumulative share
    of total revenue made by the first ``customers`` customers). Ranking as in :func:`tier_of`.
    """
    require(rfm, ("revenue", value), "head_share_curve")
    order = _ranking(rfm, value)
    revenue = rfm["revenue"].to_numpy(float)[order]
    n = len(revenue)
    heads = np.arange(1, n + 1)
    return pd.DataFrame(
        {
            "customers": heads,
            "customer_share": heads / n,
            "revenue_share": np.cumsum(revenue) / revenue.sum(),
        }
    )


def head_share(
    rfm: pd.DataFrame,
    revenue_shares: Sequence[float] = HEAD_SHARE_POINTS,
    value: str = "revenue",
) -> pd.DataFrame:
    """What share of customers makes 40% / 50% / 80% of revenue (the head-user figure).

    For each revenue share s: the fewest top customers whose revenue reaches s of the total,
    ``customers`` and ``customer_share``.
    """
    curve = head_share_curve(rfm, value)
    reached = curve["revenue_share"].to_numpy()
    rows = []
    for share in revenue_shares:
        idx = int(np.searchsorted(reached, share - 1e-12, side="left"))
        heads = int(curve["customers"].iloc[min(idx, len(curve) - 1)])
        rows.append(
            {"revenue_share": share, "customers": heads, "customer_share": heads / len(curve)}
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Member tiers


def member_tiers(
    rfm: pd.DataFrame,
    cuts: Sequence[float] = MEMBER_CUTS,
    value: str = "revenue",
    labels: Sequence[str] = MEMBER_TIERS,
) -> pd.Series:
    """Membership tiers (会员等级): ``platinum`` top 5%, ``gold`` next to 20%, ``regular`` the rest.

    Ranking and ties as in :func:`tier_of`; ``cuts`` are the upper shares of all but the last tier.
    """
    return tier_of(rfm, value, (*cuts, 1.0), labels).rename("member_tier")


def upgrade_candidates(
    rfm: pd.DataFrame,
    within: float = UPGRADE_WITHIN,
    cuts: Sequence[float] = MEMBER_CUTS,
    value: str = "revenue",
    labels: Sequence[str] = MEMBER_TIERS,
    *,
    rank: str = "priority",
    horizon_days: int | None = None,
    model=None,
) -> pd.DataFrame:
    """Customers close to the next member tier (提升, upgrade opportunity), the likeliest and most
    rewarding first.

    A tier's ``threshold`` is the lowest ``value`` in it; a customer below the top tier is a
    candidate when ``gap = threshold(next tier) - value`` is at most ``within`` x that threshold.
    Columns: ``member_tier, next_tier, value, threshold, gap, gap_share``.

    ``rank="priority"`` (default, the method's: "the highest chance of upgrading × the biggest
    contribution first", method.md §5) adds, over the next ``horizon_days`` (default: the length
    of the table's window):

    - ``expected_purchases`` λ — from the customer's own rate, the purchases of the table's window
      repeated (``frequency × horizon_days / window_days``; the window is ``attrs["period_days"]``,
      or with all history the days from the table's first purchase to asof); or, given a fitted
      :class:`closedloop.clv.ClvModel` as ``model``, its conditional expected purchases over the
      horizon (a customer the model does not know gets NaN and ranks last);
    - ``purchases_needed`` k = ceil(gap / average ticket), at least 1;
    - ``chance`` = P(N ≥ k) for N ~ Poisson(λ): the chance of spending the gap at the usual ticket;
    - ``contribution`` = λ × average ticket, the expected added spend;
    - ``priority`` = chance × contribution — sorted on it, highest first (then value, then id).

    ``rank="value"`` keeps only the first columns, sorted by value, highest first (the earlier
    behaviour). The Poisson rate and the horizon are the project's own choices; the method names
    only "chance × contribution".
    """
    if within < 0:
        raise DataError("upgrade_candidates", f"within must be >= 0, got {within}")
    if rank not in UPGRADE_RANKS:
        raise DataError("upgrade_candidates", f"rank must be 'priority' or 'value', got {rank!r}")
    tiers = member_tiers(rfm, cuts, value, labels)
    values = rfm[value].astype("float64")
    codes = tiers.cat.codes.to_numpy()
    thresholds = values.groupby(codes).min().reindex(range(len(labels))).to_numpy()
    has_next = codes > 0
    next_code = np.where(has_next, codes - 1, 0)
    threshold = thresholds[next_code]
    gap = threshold - values.to_numpy()
    keep = has_next & (gap <= within * threshold) & ~np.isnan(threshold)
    out = pd.DataFrame(
        {
            "member_tier": np.asarray(tiers.cat.categories, dtype=object)[codes[keep]],
            "next_tier": np.asarray(labels, dtype=object)[next_code[keep]],
            "value": values.to_numpy()[keep],
            "threshold": threshold[keep],
            "gap": gap[keep],
            "gap_share": gap[keep] / threshold[keep],
        },
        index=rfm.index[keep],
    )
    out["next_tier"] = out["next_tier"].astype("str")
    if rank == "value":
        return out.sort_values("value", ascending=False, kind="stable")
    require(rfm, ("frequency", "revenue"), "upgrade_candidates")
    window = _window_days(rfm)
    return _upgrade_priority(out, rfm.loc[keep], window, horizon_days, model)


def _upgrade_priority(out, rows, window, horizon_days, model) -> pd.DataFrame:
    """Chance of upgrading × contribution for the candidates ``out`` (``rows`` of the table)."""
    from scipy import stats

    horizon = float(horizon_days if horizon_days is not None else window)
    if horizon <= 0:
        raise DataError("upgrade_candidates", f"horizon_days must be > 0, got {horizon_days}")
    orders = rows["frequency"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ticket = rows["revenue"].to_numpy(float) / orders
    if model is None:
        expected = orders * horizon / window
    else:
        from closedloop.clv import TIME_UNITS

        per_unit = TIME_UNITS.get(getattr(model, "time_unit", None))
        if per_unit is None:
            raise DataError("upgrade_candidates", "model must be a fitted closedloop.clv.ClvModel")
        predicted = model.expected_purchases(horizon / per_unit)
        predicted.index = predicted.index.astype("str")
        expected = predicted.reindex(out.index.astype("str")).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        needed = np.maximum(np.ceil(out["gap"].to_numpy() / ticket - 1e-9), 1)
    chance = stats.poisson.sf(needed - 1, expected)
    contribution = expected * ticket
    out = out.assign(
        expected_purchases=expected,
        purchases_needed=needed,
        chance=chance,
        contribution=contribution,
        priority=chance * contribution,
    )
    key = out.index.name or "index"
    ranked = out.rename_axis(key).reset_index()
    ranked = ranked.sort_values(
        ["priority", "value", key], ascending=[False, False, True], na_position="last"
    )
    return ranked.set_index(key)


def _window_days(rfm: pd.DataFrame) -> float:
    """Days in the rfm table's window: ``period_days``, else its first purchase to asof."""
    attrs = rfm.attrs or {}
    if attrs.get("period_days") is not None:
        return float(attrs["period_days"])
    if attrs.get("asof") is not None and "first_purchase" in rfm.columns:
        first = pd.Timestamp(rfm["first_purchase"].min()).normalize()
        return float((pd.Timestamp(attrs["asof"]) - first).days + 1)
    raise DataError(
        "upgrade_candidates",
        "the table does not say its window (attrs period_days / asof): pass the frame of"
        " rfm_table, or rank='value'",
    )


# ---------------------------------------------------------------------------------------------
# Lifecycle 进 活 粘 值 荐


def lifecycle_stage(
    rfm: pd.DataFrame,
    customers=None,
    *,
    basis: str = "pyramid",
    cuts: Sequence[float] = PYRAMID_CUTS,
    stages: Sequence[str] = PYRAMID_STAGES,
    active_days: int = ACTIVE_DAYS,
    sticky_orders: int = STICKY_ORDERS,
    valuable_share: float = VALUABLE_SHARE,
    value: str = "revenue",
    referrer: str = "referrer_id",
) -> pd.Series:
    """Each customer's lifecycle stage (生命周期): 进 enter, 活 active, 粘 sticky, 值 valuable,
    荐 recommend.

    ``basis="pyramid"`` (default, the method's: the stages "correspond to layers of the pyramid,
    from the bottom up", method.md §3, §9). Customers are ranked as in :func:`tier_of` — with
    ``customers``, every known customer who did not buy joins as a zero-spend head of the bottom
    band (:func:`with_members`) — and each pyramid layer of ``cuts`` has its stage in ``stages``
    (:data:`PYRAMID_STAGES`, top first):

    ======================  =====================================================
    layer                   stage
    ======================  =====================================================
    top 2%                  荐 recommend — the head customers, the ones to ask for referrals
    2–5%, 5–10%             值 valuable
    10–15%, 15–20%          粘 sticky
    20–100% (bottom band)   活 active when the last purchase is within ``active_days`` of asof,
                            else 进 enter (joined or known, not buying now: zero-spend members,
                            new members yet to buy, non-members)
    ======================  =====================================================

    A layer mapped to ``"active"`` splits by activity that way. The mapping is the project's
    reading of the method, which names the correspondence but not the cut of each stage.
    ``result.attrs["recommend"]`` says what 荐 means on this basis.

    ``basis="rules"`` (the project's own rule set, independent of the pyramid), the highest rung:

    - ``enter`` 进 — known: in ``customers`` (joined) or bought at least once;
    - ``active`` 活 — last purchase at most ``active_days`` days before asof;
    - ``sticky`` 粘 — active with at least ``sticky_orders`` orders in the table's window;
    - ``valuable`` 值 — sticky and in the top ``valuable_share`` of customers by ``value``;
    - ``recommend`` 荐 — active and named as the referrer of at least one customer in the
      ``referrer`` column of ``customers``; without that column 荐 is not assigned (a
      :class:`DataWarning` says so).
    """
    if basis not in LIFECYCLE_BASES:
        raise DataError("lifecycle_stage", f"basis must be 'pyramid' or 'rules', got {basis!r}")
    require(rfm, ("recency_days", "frequency", value), "lifecycle_stage")
    cust = None
    if customers is not None:
        cust = to_pandas(customers, "lifecycle_stage customers")
        require(cust, ("customer_id",), "lifecycle_stage customers")
    if basis == "pyramid":
        return _stage_by_pyramid(rfm, cust, cuts, stages, active_days, value)
    ids = rfm.index
    referrers = None
    if cust is not None:
        ids = ids.union(pd.Index(cust["customer_id"].astype("str").unique()))
        if referrer in cust.columns:
            referrers = pd.Index(cust[referrer].dropna().astype("str").unique())
    note = None
    if referrers is None:
        note = (
            f"no '{referrer}' column in customers: the recommend stage (荐) is not assigned;"
            " pass a customers table with a referral signal"
        )
        warnings.warn(f"lifecycle_stage: {note}", DataWarning, stacklevel=2)
    active = rfm["recency_days"].to_numpy() <= active_days
    sticky = active & (rfm["frequency"].to_numpy() >= sticky_orders)
    top = tier_of(rfm, value, (valuable_share, 1.0)).cat.codes.to_numpy() == 0
    level = active.astype("int8") + sticky + (sticky & top)
    if referrers is not None:
        level = np.where(active & rfm.index.isin(referrers), 4, level)
    codes = pd.Series(level, index=rfm.index).reindex(ids, fill_value=0).astype("int8")
    out = _stage_series(codes.to_numpy(), ids)
    out.attrs["basis"] = "rules"
    out.attrs["recommend"] = note or "assigned from " + referrer
    return out


def _stage_by_pyramid(rfm, cust, cuts, stages, active_days, value) -> pd.Series:
    cuts = _check_cuts(cuts)
    stages = list(stages)
    names = list(LIFECYCLE_STAGES)
    if len(stages) != len(cuts) or not set(stages) <= set(names):
        raise DataError(
            "lifecycle_stage",
            f"stages needs one of {', '.join(names)} per pyramid layer ({len(cuts)}), got {stages}",
        )
    table = with_members(rfm, cust) if cust is not None else rfm
    layer = tier_of(table, value, cuts).cat.codes.to_numpy()
    level = np.asarray([names.index(x) for x in stages], dtype="int8")[layer]
    recency = table["recency_days"].to_numpy(dtype="float64", na_value=np.nan)
    inactive = (level == names.index("active")) & ~(recency <= active_days)
    level = np.where(inactive, names.index("enter"), level).astype("int8")
    out = _stage_series(level, table.index)
    out.attrs["basis"] = "pyramid"
    out.attrs["recommend"] = (
        "the top layer of the pyramid (" + tier_labels(cuts)[stages.index("recommend")] + ")"
        if "recommend" in stages
        else "no pyramid layer is mapped to recommend"
    )
    return out


def _stage_series(codes: np.ndarray, ids: pd.Index) -> pd.Series:
    out = pd.Series(
        pd.Categorical.from_codes(codes, categories=list(LIFECYCLE_STAGES), ordered=True),
        index=pd.Index(ids, name="customer_id"),
        name="stage",
    )
    return out


# ---------------------------------------------------------------------------------------------
# Churn levels


def churn_severity(
    transactions,
    asof,
    period_days: int = CHURN_PERIOD_DAYS,
    thresholds: Sequence[float] = CHURN_THRESHOLDS,
    fall: float = CHURN_FALL,
    *,
    basis: str = "periods",
    falls: Sequence[float] = CHURN_FALLS,
) -> pd.DataFrame:
    """Churn level (流失程度) of every customer who bought by ``asof``: none, light, medium, heavy.

    The current period is the last ``period_days`` days to asof, the previous one the
    ``period_days`` before it.

    ``basis="periods"`` (default, the method's: "compare RFM between two periods, split the
    lapsing ones into light, medium and heavy churn", method.md §5, §9). For a customer who bought
    in the previous period, the fall from the previous period to the current one in F (orders)
    and in M (spend), each ``1 - now / prev`` floored at 0, and ``fall`` = the larger of the two:

    - **heavy** — ``fall >= falls[2]`` (1.0): bought nothing in the current period (R has passed
      ``period_days``, F and M are zero);
    - **medium** — ``fall >= falls[1]`` (0.5): orders or spend at least halved;
    - **light** — ``fall >= falls[0]`` (0.25): orders or spend down by a quarter or more;
    - **none** — less than that, or no purchase in the previous period (new or returning: no
      fall to measure).

    A customer whose last purchase is before the previous period bought nothing in either: they
    had lapsed a period ago already and stay **heavy** (``fall`` NaN, ``lapsed_before`` True).
    Columns: ``recency_days, orders, orders_prev, orders_now, revenue_prev, revenue_now,
    orders_fall, revenue_fall, fall, lapsed_before, severity``. The fall cuts are the project's
    defaults; the method gives the split, not the numbers.

    ``basis="rhythm"`` (the project's own option), two comparisons per customer:

    1. Own rhythm: ``rhythm = recency_days / gap`` where ``gap`` is the customer's mean days
       between orders, ``(last - first) / (orders - 1)`` over all history (at least 1 day);
       one-time buyers are held to the base's rhythm, the median gap of repeat customers.
       ``rhythm`` above ``thresholds`` (1.5, 2, 3) is light, medium, heavy churn.
    2. Previous period: a customer who bought in the previous period and whose orders or spend
       fell by at least ``fall`` (50%) moves up one level (none → light, ..., capped at heavy).

    Columns: ``recency_days, orders, gap_days, rhythm, orders_prev, orders_now, revenue_prev,
    revenue_now, fell, severity``. The 1.5 / 2 / 3 thresholds are the project's, not the method's.

    ``severity`` is an ordered categorical; ``attrs["basis"]`` names the basis. Prevention over
    cure: act on light.
    """
    if basis not in CHURN_BASES:
        raise DataError("churn_severity", f"basis must be 'periods' or 'rhythm', got {basis!r}")
    day = summaries.day(asof)
    windows = churn_windows(day, period_days)
    if basis == "periods":
        per = _buyers(transactions, day, None, "churn_severity transactions", windows=windows)
        out = churn_from_summary(per, day, falls)
    else:
        thresholds = sorted(float(t) for t in thresholds)
        if len(thresholds) != len(CHURN_LEVELS) - 1:
            raise DataError("churn_severity", f"thresholds needs 3 values, got {thresholds}")
        if not 0 < fall <= 1:
            raise DataError("churn_severity", f"fall must be in (0, 1], got {fall}")
        per = _buyers(transactions, day, None, "churn_severity transactions", windows=windows)
        out = _churn_by_rhythm(per, day, thresholds, fall)
    out.attrs["basis"] = basis
    return out


def churn_windows(asof, period_days: int = CHURN_PERIOD_DAYS) -> dict[str, tuple]:
    """The two periods :func:`churn_severity` compares, as :func:`closedloop.summaries.per_customer`
    windows: ``now``, the last ``period_days`` days to asof, and ``prev``, the ones before."""
    now_start = summaries.period_start(asof, period_days)
    prev_start = now_start - pd.Timedelta(days=period_days)
    return {"now": (now_start, None), "prev": (prev_start, now_start - pd.Timedelta(days=1))}


def churn_from_summary(
    per: pd.DataFrame, asof, falls: Sequence[float] = CHURN_FALLS
) -> pd.DataFrame:
    """:func:`churn_severity` (``basis="periods"``) from a summary already made: ``per`` is
    :func:`closedloop.summaries.per_customer` over all history with :func:`churn_windows`, the
    customers who bought (``orders > 0``); for a caller that aggregates once for several uses."""
    falls = tuple(float(f) for f in falls)
    if len(falls) != 3 or not all(a < b for a, b in pairwise((0, *falls))) or falls[2] > 1:
        raise DataError("churn_severity", f"falls needs 3 increasing values in (0, 1], got {falls}")
    out = _churn_by_periods(per, summaries.day(asof), falls)
    out.attrs["basis"] = "periods"
    return out


def _churn_by_periods(per: pd.DataFrame, day, falls) -> pd.DataFrame:
    recency = (day - per["last_purchase"].dt.normalize()).dt.days.to_numpy()
    prev_n, now_n = per["orders_prev"].to_numpy(), per["orders_now"].to_numpy()
    prev_r, now_r = per["revenue_prev"].to_numpy(), per["revenue_now"].to_numpy()
    was = prev_n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        orders_fall = np.where(was, np.maximum(1 - now_n / prev_n, 0.0), np.nan)
        revenue_fall = np.where(
            was & (prev_r > 0), np.clip(1 - now_r / np.where(prev_r > 0, prev_r, 1), 0, 1), np.nan
        )
    revenue_fall = np.where(was & (prev_r > 0) & (now_n == 0), 1.0, revenue_fall)
    fall = np.fmax(orders_fall, revenue_fall)
    level = np.where(was, np.searchsorted(np.asarray(falls), fall + 1e-12, side="right"), 0)
    level = np.where(np.isnan(fall), 0, level)
    lapsed_before = (~was) & (per["orders_now"].to_numpy() == 0)
    level = np.where(lapsed_before, len(CHURN_LEVELS) - 1, level).astype("int64")
    # the columns as computed (pandas' default would copy them once more into blocks); the
    # summary's own columns are copied once, so the table does not share them
    return pd.DataFrame(
        {
            "recency_days": recency.astype("int64", copy=False),
            "orders": per["orders"].to_numpy().astype("int64"),
            "orders_prev": prev_n.astype("int64"),
            "orders_now": now_n.astype("int64"),
            "revenue_prev": prev_r.copy(),
            "revenue_now": now_r.copy(),
            "orders_fall": orders_fall,
            "revenue_fall": revenue_fall,
            "fall": fall,
            "lapsed_before": lapsed_before,
            "severity": pd.Categorical.from_codes(level, categories=CHURN_LEVELS, ordered=True),
        },
        index=per.index,
        copy=False,
    )


def _churn_by_rhythm(per: pd.DataFrame, day, thresholds, fall) -> pd.DataFrame:
    orders = per["orders"].to_numpy()
    recency = (day - per["last_purchase"].dt.normalize()).dt.days.to_numpy()
    span = (per["last_purchase"] - per["first_purchase"]).dt.total_seconds().to_numpy() / 86400
    with np.errstate(invalid="ignore", divide="ignore"):
        own_gap = np.where(orders > 1, np.maximum(span / (orders - 1), 1.0), np.nan)
    if not np.isfinite(own_gap).any():
        raise DataError(
            "churn_severity transactions",
            "no customer has two orders by asof: there is no purchase rhythm to compare against",
        )
    gap = np.where(np.isnan(own_gap), np.nanmedian(own_gap), own_gap)
    rhythm = recency / gap
    level = np.searchsorted(np.asarray(thresholds), rhythm, side="left")
    prev_n, now_n = per["orders_prev"].to_numpy(), per["orders_now"].to_numpy()
    prev_r, now_r = per["revenue_prev"].to_numpy(), per["revenue_now"].to_numpy()
    fell = (prev_n > 0) & (
        (now_n <= (1 - fall) * prev_n) | ((prev_r > 0) & (now_r <= (1 - fall) * prev_r))
    )
    level = np.minimum(level + fell, len(CHURN_LEVELS) - 1)
    return pd.DataFrame(
        {
            "recency_days": recency.astype("int64"),
            "orders": orders.astype("int64"),
            "gap_days": gap,
            "rhythm": rhythm,
            "orders_prev": prev_n.astype("int64"),
            "orders_now": now_n.astype("int64"),
            "revenue_prev": prev_r,
            "revenue_now": now_r,
            "fell": fell,
            "severity": pd.Categorical.from_codes(level, categories=CHURN_LEVELS, ordered=True),
        },
        index=per.index,
    )


# ---------------------------------------------------------------------------------------------
# Migration


@dataclass(frozen=True)
class Migration:
    """Segment or tier movement between two tables: rows are ``before``, columns ``after``.

    ``counts`` holds customers; ``revenue_before`` / ``revenue_after`` the revenue those customers
    made in each table. Row :data:`ABSENT` are customers only in ``after`` (new), column
    :data:`ABSENT` customers only in ``before`` (gone); each row sums to the before-count.
    """

    counts: pd.DataFrame
    revenue_before: pd.DataFrame
    revenue_after: pd.DataFrame


def migration(
    before: pd.DataFrame, after: pd.DataFrame, by: str = "segment", value: str = "revenue"
) -> Migration:
    """Transition matrices (迁移) of customers and revenue between two tables indexed by customer.

    ``before`` and ``after`` are e.g. two :func:`rfm_table` results at two dates (add a tier with
    ``rfm.assign(tier=member_tiers(rfm))`` and pass ``by="tier"``). Categories keep the order of
    a categorical ``by`` column, else sorted; :data:`ABSENT` comes last.
    """
    for name, table in (("before", before), ("after", after)):
        require(table, (by, value), f"migration {name}")
    categories = _categories(before[by], after[by])
    ids = before.index.union(after.index)
    src = before[by].astype("object").reindex(ids).fillna(ABSENT)
    dst = after[by].astype("object").reindex(ids).fillna(ABSENT)
    pairs = pd.DataFrame(
        {
            "from": pd.Categorical(src, categories=categories),
            "to": pd.Categorical(dst, categories=categories),
            "customers": 1,
            "revenue_before": before[value].reindex(ids, fill_value=0.0).to_numpy(float),
            "revenue_after": after[value].reindex(ids, fill_value=0.0).to_numpy(float),
        }
    )
    sums = pairs.groupby(["from", "to"], observed=False).sum()

    def matrix(column):
        wide = sums[column].unstack("to").reindex(index=categories, columns=categories)
        wide.index.name, wide.columns.name = f"{by} before", f"{by} after"
        return wide.fillna(0)

    return Migration(
        counts=matrix("customers").astype("int64"),
        revenue_before=matrix("revenue_before"),
        revenue_after=matrix("revenue_after"),
    )


# ---------------------------------------------------------------------------------------------
# Helpers: one narwhals pass over the raw rows, then numpy on the summary


def _buyers(transactions, day, period_days, source, windows=None) -> pd.DataFrame:
    """Per customer who bought in the last ``period_days`` days to ``day`` (all history when
    ``None``): :func:`closedloop.summaries.per_customer`, refund-only customers left out."""
    start = summaries.period_start(day, period_days)
    per = summaries.per_customer(transactions, day, start=start, windows=windows, source=source)
    per = per[per["orders"] > 0]
    if per.empty:
        raise DataError(source, f"no purchases on or before asof {day:%Y-%m-%d} in the window")
    return per


def _member_ids(members) -> pd.Index:
    """Customer ids from a customers table (``customer_id``) or a list of ids, as sorted text."""
    if isinstance(members, pd.Index | pd.Series | np.ndarray | list | tuple | set | frozenset):
        ids = pd.Index(list(members))
    else:
        table = to_pandas(members, "members", ("customer_id",))
        ids = pd.Index(table["customer_id"])
    return pd.Index(ids.dropna().astype("str").unique()).sort_values()


def _check_cuts(cuts) -> tuple[float, ...]:
    cuts = tuple(float(c) for c in cuts)
    ok = (
        len(cuts) > 0
        and all(0 < c <= 1 for c in cuts)
        and all(a < b for a, b in pairwise(cuts))
        and cuts[-1] == 1.0
    )
    if not ok:
        raise DataError(
            "cuts", f"cuts must increase within (0, 1] and end at 1.0 (all customers), got {cuts}"
        )
    return cuts


def _ranking(rfm: pd.DataFrame, value: str) -> np.ndarray:
    """Row positions ordered by ``value`` descending, equal values by ``customer_id``."""
    values = rfm[value].to_numpy(float)
    if rfm.index.is_monotonic_increasing:
        return np.argsort(-values, kind="stable")
    by_id = np.argsort(rfm.index.to_numpy(), kind="stable")
    return by_id[np.argsort(-values[by_id], kind="stable")]


def _tier_codes(rfm: pd.DataFrame, value: str, cuts: tuple[float, ...]) -> np.ndarray:
    """Tier k of each row: ranked by ``value`` descending, equal values by ``customer_id``, the
    ranks ``bounds[k-1] < rank <= bounds[k]``.

    Only the values at the tier boundaries are needed, so they are selected (``np.partition``,
    linear time) rather than every row sorted; only a tie group that straddles a boundary is
    put in ``customer_id`` order, to be split there."""
    require(rfm, (value,), "tiers")
    n = len(rfm)
    if n == 0:
        raise DataError("tiers", "no customers to rank")
    if rfm[value].isna().any():
        bad = rfm[rfm[value].isna()]
        raise DataError("tiers", "missing value", column=value, rows=bad, n_bad=len(bad))
    bounds = np.floor(np.asarray(cuts) * n + 1e-9).astype("int64")
    key = -rfm[value].to_numpy(float)
    inner = sorted({int(b) - 1 for b in bounds if 0 < b < n})
    nth = np.partition(key, inner) if inner else key
    codes = np.zeros(n, dtype="int64")
    for b in bounds:
        if b >= n:
            continue
        inside = key < nth[b - 1] if b > 0 else np.zeros(n, dtype=bool)
        if b > 0:
            ties = np.flatnonzero(key == nth[b - 1])
            need = b - np.count_nonzero(inside)
            if need < len(ties):
                ties = ties[rfm.index[ties].argsort(kind="stable")]
            inside[ties[:need]] = True
        codes += ~inside
    return codes


def _segment_lookup(segments: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The 5 x 5 grid of segment codes, checking the map covers every (R, F) cell once."""
    needed = ("segment", "r_low", "r_high", "f_low", "f_high")
    require(segments, needed, "segment map")
    names = list(dict.fromkeys(segments["segment"].astype("str")))
    grid = np.full((SCORE_LEVELS, SCORE_LEVELS), -1, dtype="int64")
    covered = np.zeros((SCORE_LEVELS, SCORE_LEVELS), dtype="int64")
    for row in segments.itertuples(index=False):
        r0, r1, f0, f1 = int(row.r_low), int(row.r_high), int(row.f_low), int(row.f_high)
        if not (1 <= r0 <= r1 <= SCORE_LEVELS and 1 <= f0 <= f1 <= SCORE_LEVELS):
            raise DataError(
                "segment map", f"{row.segment}: score ranges must lie within 1..{SCORE_LEVELS}"
            )
        grid[r0 - 1 : r1, f0 - 1 : f1] = names.index(str(row.segment))
        covered[r0 - 1 : r1, f0 - 1 : f1] += 1
    bad = np.argwhere(covered != 1)
    if len(bad):
        cells = ", ".join(f"R{r + 1}F{f + 1}×{covered[r, f]}" for r, f in bad[:5])
        raise DataError(
            "segment map",
            f"the segments must cover each R x F cell exactly once; {len(bad)} cell(s) do not"
            f" (cell×times covered): {cells}",
        )
    return grid, names


def _categories(*series: pd.Series) -> list:
    cats: list = []
    for s in series:
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats += list(s.cat.categories)
    seen = set().union(*(s.dropna().unique() for s in series))
    cats += sorted(seen - set(cats))
    return [*dict.fromkeys(cats), ABSENT]
