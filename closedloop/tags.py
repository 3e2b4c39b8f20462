"""The customer tag table (客户标签): one row per customer, every tag a plan can select on.

Grading (分级, by value: RFM scores, member tier, lifecycle, CLV) decides benefits; grouping (分群,
by attributes: category preference, channel preference, source channel, reachability) decides the
offer (method.md §3, §5). :func:`tags` puts both side by side; any column is usable as a plan's
audience (``tags[tags["churn"] == "light"]``) or as a "who responded" breakdown
(``outcomes.join(tags["category_preference"])``). Everything per customer comes from
:mod:`closedloop.summaries` through :mod:`closedloop.rfm`, and what was bought from
:mod:`closedloop.audiences`.

Optional clustering (``clusters=k``) groups customers by their scaled R, F, M with k-means; it
needs scikit-learn (``pip install closedloop[cluster]``), which is not a dependency.
"""

from __future__ import annotations

import warnings
from importlib.util import find_spec

import numpy as np
import pandas as pd

from closedloop import audiences, rfm, summaries
from closedloop._frames import collect, to_pandas
from closedloop.errors import DataError
from closedloop.io import DataWarning

__all__ = ["PASSED", "TAGS", "tags"]

#: the tag columns, with the method's terms
TAGS = {
    "R": "最近购买得分",
    "F": "购买频次得分",
    "M": "消费金额得分",
    "rfm_code": "RFM 代码",
    "segment": "RFM 分群",
    "member_tier": "会员等级",
    "lifecycle": "生命周期",
    "churn": "流失程度",
    "category_preference": "品类偏好",
    "channel_preference": "渠道偏好",
    "source_channel": "来源渠道",
    "reachable": "可触达渠道",
    "tenure_days": "入会天数",
    "clv": "客户终身价值",
    "cluster": "聚类",
}


#: attribute columns of the customers carried into the table when present
PASSED = ("city", "home_store", "guide")


def tags(
    transactions,
    customers=None,
    asof=None,
    *,
    items=None,
    period_days: int | None = 365,
    model=None,
    clusters: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per customer (everyone in ``customers``, and every buyer), indexed by
    ``customer_id``, with the tags of :data:`TAGS`:

    - ``R, F, M, rfm_code, segment`` — :func:`closedloop.rfm.rfm_table` over the last
      ``period_days`` days to ``asof``; ``member_tier`` — platinum / gold / regular on that
      spend (:func:`closedloop.rfm.member_tiers`); missing for customers who did not buy then;
    - ``lifecycle`` — 进活粘值荐 (:func:`closedloop.rfm.lifecycle_stage`); ``churn`` — none /
      light / medium / heavy (:func:`closedloop.rfm.churn_severity`, all history);
    - ``category_preference`` — the category on most of the customer's order lines in the
      window (an ``items`` table with ``order_id, category``, or a ``category`` column of the
      transactions; ties: alphabetical), ``channel_preference`` — the same for ``channel``;
    - ``is_member``, ``source_channel`` and, when present, :data:`PASSED` (from customers), ``reachable`` — the ``reach_*`` channels on which the
      customer can be contacted, strongest first, joined by ``+`` ("wecom+sms"; ``online`` when
      only that flag is known; empty: none), ``tenure_days`` — days from ``join_date`` to asof;
    - ``clv`` — with a fitted ``model`` (:class:`closedloop.clv.ClvModel`), its ``clv()``;
    - ``cluster`` — with ``clusters=k``, k-means on the scaled R, F, M scores (scikit-learn).

    Missing inputs leave their tags out (recorded in ``attrs["left_out"]``).
    """
    day = summaries.day(asof)
    left_out: dict[str, str] = {}
    table = rfm.rfm_table(transactions, day, period_days)
    out = table[["R", "F", "M", "rfm_code", "segment"]].astype({s: "Int64" for s in "RFM"})
    out["member_tier"] = rfm.member_tiers(table)
    cust = None
    if customers is not None:
        cust = to_pandas(customers, "tags customers")
        if "customer_id" not in cust.columns:
            raise DataError("tags customers", "required column customer_id missing")
        cust = cust.assign(customer_id=cust["customer_id"].astype("str")).set_index("customer_id")
        out = out.reindex(out.index.union(cust.index))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        stages = rfm.lifecycle_stage(table, None if cust is None else cust.reset_index())
    out["lifecycle"] = stages.reindex(out.index)
    churn = rfm.churn_severity(transactions, day)["severity"]
    out = out.reindex(out.index.union(churn.index))
    out["churn"] = churn.reindex(out.index)
    out.index.name = "customer_id"
    start = summaries.period_start(day, period_days)
    for what, column in (("category", "category_preference"), ("channel", "channel_preference")):
        try:
            out[column] = _preference(transactions, items, what, day, start).reindex(out.index)
        except DataError as exc:
            left_out[column] = str(exc)
    if cust is not None:
        for column in ("is_member", "source_channel", *PASSED):
            if column in cust.columns:
                out[column] = cust[column].reindex(out.index)
        out["reachable"] = _reachable(cust).reindex(out.index)
        if "join_date" in cust.columns:
            joined = pd.to_datetime(cust["join_date"]).dt.normalize().reindex(out.index)
            out["tenure_days"] = (day - joined).dt.days.astype("Int64")
    else:
        left_out["source_channel"] = left_out["reachable"] = "no customers table"
    if model is not None:
        out["clv"] = model.clv().reindex(out.index)
    if clusters is not None:
        out["cluster"] = _clusters(out, clusters, seed)
    out.attrs = {"asof": day, "period_days": period_days, "left_out": left_out}
    return out


def _preference(transactions, items, what: str, day, start) -> pd.Series:
    """The most frequent ``what`` on each customer's order lines, via audiences' lines."""
    lines = audiences._lines(transactions, items, what, day, f"tags {what}")
    if start is not None:
        import narwhals as nw

        lines = lines.filter(nw.col("order_date") >= start)
    import narwhals as nw

    counts = collect(
        lines.filter(~nw.col(what).is_null())
        .group_by("customer_id", what)
        .agg(nw.len().alias("lines"))
    )
    counts["customer_id"] = counts["customer_id"].astype("str")
    counts = counts.sort_values(["customer_id", "lines", what], ascending=[True, False, True])
    return counts.drop_duplicates("customer_id").set_index("customer_id")[what].astype("str")


def _reachable(cust: pd.DataFrame) -> pd.Series:
    reach = [c for c in cust.columns if c.startswith("reach_")]
    if not reach:
        reach = ["online"] if "online" in cust.columns else []
    if not reach:
        return pd.Series("", index=cust.index, dtype="str")
    flags = cust[reach].fillna(False).astype(bool).to_numpy()
    names = np.array([c.removeprefix("reach_") for c in reach], dtype=object)
    joined = ["+".join(names[row]) for row in flags]
    return pd.Series(joined, index=cust.index, dtype="str")


def _clusters(out: pd.DataFrame, k: int, seed: int) -> pd.Series:
    if find_spec("sklearn") is None:
        raise DataError(
            "tags",
            "clusters= needs scikit-learn, which is not a dependency: pip install"
            " 'closedloop[cluster]' (or scikit-learn)",
        )
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    scored = out[["R", "F", "M"]].dropna()
    if len(scored) < k:
        raise DataError("tags", f"{len(scored)} scored customers cannot make {k} clusters")
    x = StandardScaler().fit_transform(scored.to_numpy(float))
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return pd.Series(labels, index=scored.index).reindex(out.index).astype("Int64")
