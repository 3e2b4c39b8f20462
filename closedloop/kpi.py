"""The member-operations KPI tree (会员运营指标) and the lifecycle touch schedule (method.md §7).

- :func:`member_kpis` — member share, online rate, active members, purchase frequency, average
  ticket, contribution (= active members x frequency x ticket), repurchase rate, items per basket
  and churn rate, for all members and split into new and existing customers;
- ``member_kpis(..., by="store")`` — the same tree per store, channel, city, tier or guide, with
  recruits, join → first-purchase conversion, active rate and reach per channel (member operations
  by store: headquarters sets the rules, stores and guides are measured);
- :func:`revenue_change` / :func:`why_revenue_moved` — a revenue change between two periods split
  exactly into heads, frequency and ticket effects per tier or store;
- :func:`drivers` / :func:`what_if` — set a driver of the tree (members, online rate, frequency,
  ticket, items per basket) and read the contribution and revenue it implies;
- :func:`touches_due` — who is due for the day 0 / 3 / 7 / 15 / 30 / 60 / 90 / 150 touches after
  joining ("about to lapse" and "activity falling" triggers come from
  :func:`closedloop.rfm.churn_severity`).

The transactions (pandas, polars, a DuckDB relation or a PySpark DataFrame) are reduced to
per-customer orders and revenue for the period and the period before it by
:mod:`closedloop.summaries`, where the data lives; the tree is arithmetic on that pandas summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop._frames import lazy_frame, to_pandas
from closedloop.errors import DataError

__all__ = [
    "BY_TERMS",
    "DECOMPOSITION_METHODS",
    "KPI_TERMS",
    "TOUCH_DAYS",
    "Drivers",
    "RevenueMove",
    "drivers",
    "home_of",
    "home_window",
    "member_kpis",
    "recruits",
    "revenue_change",
    "touches_due",
    "what_if",
    "why_revenue_moved",
]

#: the lifecycle touch schedule: days after joining (day 0, 3, 7, 15, 30, then ~2, 3, 5 months)
TOUCH_DAYS = (0, 3, 7, 15, 30, 60, 90, 150)
#: the KPI tree's rows, with the method's terms
KPI_TERMS = {
    "members": "会员数",
    "member_share": "会员占比",
    "online_rate": "在线率",
    "active_members": "活跃会员数",
    "purchase_frequency": "购买频次",
    "avg_ticket": "客单价",
    "contribution": "会员贡献",
    "contribution_per_member": "人均贡献",
    "repurchase_rate": "复购率",
    "items_per_basket": "连带率",
    "churn_rate": "流失率",
}
#: the extra columns of ``member_kpis(..., by=...)``, with the method's terms
BY_TERMS = {
    "recruits": "招募数",
    "conversion": "首购转化率",
    "active_rate": "活跃率",
    "orders": "总单数",
    "anonymous_orders": "非会员匿名单数",
}
#: how :func:`revenue_change` splits a change: the Shapley split or the log-mean (LMDI) one
DECOMPOSITION_METHODS = ("shapley", "lmdi")
#: the label of customers not tiered at the end of the first period (revenue_change by tier)
NEW_TIER = "new"


def member_kpis(
    transactions,
    customers=None,
    period=None,
    *,
    by: str | None = None,
    summary=None,
    by_summary=None,
) -> pd.DataFrame:
    """The KPI tree over ``period = (start, end)`` (inclusive days), for all / new / existing
    members and those who have not bought yet.

    Who is a member: ``customers.is_member`` when given; else a customer with any order flagged
    ``is_member`` in the transactions; else every buyer (noted in ``attrs["members"]``). New
    members made their first purchase in the period, existing ones before it, and ``not_yet``
    holds the members with no purchase up to the period end: the three columns add up to
    ``all`` in the counts (members, active members), the contribution and the member share; the
    rates are each group's own. Rows (index; ``term`` gives the method's name):

    - ``member_share`` — member orders / all orders in the period (order-level ``is_member`` flags
      when the transactions carry them);
    - ``online_rate`` — members reachable online (``customers.online``) / members;
    - ``active_members`` — members with an order in the period;
    - ``purchase_frequency`` — orders per active member; ``avg_ticket`` — revenue per order;
    - ``contribution`` — members' revenue in the period; it equals active members x purchase
      frequency x average ticket (the method's identity); ``contribution_per_member`` divides it
      by all members (pass a one-year period for the annual figure);
    - ``repurchase_rate`` — active members with two or more orders / active members;
    - ``items_per_basket`` (连带率) — quantity per order (needs ``quantity``);
    - ``churn_rate`` — members active in the previous period of equal length who bought nothing
      in this one / those active before (undefined for new members).

    **Anonymous receipts** (a null ``customer_id``, read with
    ``io.read_transactions(..., anonymous=True)``) are non-member orders: they count in the
    denominator of member share and nowhere else (``attrs["anonymous_orders"]``).

    **By store, channel, city, tier or guide** (``by``): one row per value, the ``all`` figures
    above as columns plus :data:`BY_TERMS` and ``reach_<channel>`` (members reachable on each
    ``reach_*`` column of ``customers``, else ``reach_online`` from ``online``):

    - ``by`` a column of the transactions (``store``, ``channel``): each member counts once,
      in her **home store** (:func:`home_of`: the customers' ``home_store`` where given, else
      the store of most purchases in the year to the period end, ties by the latest purchase,
      else for a member who never bought the customers' ``join_store``; members with none of
      these are under ``(none)``), so the rows' members add up to all members;
      the per-customer KPIs (active members, frequency, ticket, contribution, repurchase,
      items per basket, churn, reach, recruits) are those members' over all their purchases.
      What a store's receipts hold stays where it was spent: member share (members' orders
      there / all its orders, anonymous included), ``orders``, ``anonymous_orders`` and
      ``revenue`` (every receipt of the store in the period);
    - ``by`` a column of the customers (``city``, ``guide``), joined on ``customer_id``, or
      ``"tier"`` (the member tier over the 365 days to the period end, ``(none)`` when not
      tiered): members split by the attribute; member share divides by the orders of that
      attribute's customers (an anonymous receipt has no city or guide);
    - ``recruits`` — members of the value who joined in the period (``customers.join_date``);
      ``conversion`` — recruits with a purchase on or after their join day, up to the period
      end (:func:`closedloop.summaries.since`) / recruits; by a column of the transactions, a
      recruit with no purchase counts in her ``join_<by>`` (or ``home_<by>``) of the customers,
      and without one for every such recruit the rate is not given (NaN; their number in
      ``attrs["unplaced_recruits"]``): placed by purchases alone, every value would show 100%;
      ``active_rate`` — active / members;
      ``orders`` and ``anonymous_orders`` — all receipts of the value in the period.

    ``summary``: the :func:`closedloop.summaries.per_customer` this needs, when a caller that
    aggregates once for several uses already made it (all history to the period end, with at
    least the windows ``now`` and ``prev``: the period and the one before); ``by_summary``,
    with ``by`` a column of the transactions: the same grouped ``by`` it, with the windows
    ``now`` and :data:`HOME_WINDOW` (:func:`home_window`).
    """
    start, end = _period(period, "member_kpis")
    if by is not None:
        return _member_kpis_by(transactions, customers, start, end, by, summary, by_summary)
    per, table, online, source = _member_table(transactions, customers, start, end, per=summary)
    anonymous = int(
        summaries.receipts(transactions, end, start=start, source="member_kpis transactions")[
            "anonymous_orders"
        ].sum()
    )
    bought = table["first_purchase"].notna()
    groups = {
        "all": np.ones(len(table), dtype=bool),
        "new": (bought & (table["first_purchase"] >= start)).to_numpy(),
        "existing": (bought & (table["first_purchase"] < start)).to_numpy(),
        "not_yet": (~bought).to_numpy(),
    }
    all_orders = float(per["orders_now"].sum()) + anonymous
    member_orders = "member_orders_now" if "member_orders" in per.columns else "orders_now"
    out = {
        name: _tree(table[mask], all_orders, member_orders, online is not None)
        for name, mask in groups.items()
    }
    result = pd.DataFrame(out, index=list(KPI_TERMS))
    result.index.name = "kpi"
    result.insert(0, "term", pd.Series(KPI_TERMS))
    result.attrs = {"period": (start, end), "members": source, "anonymous_orders": anonymous}
    return result


def _period(period, name: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    if period is None or isinstance(period, str) or len(period) != 2:
        raise DataError(name, "period must be (start, end), e.g. ('2025-04-01', '2026-03-31')")
    start, end = summaries.day(period[0], "period start"), summaries.day(period[1], "period end")
    if end < start:
        raise DataError(name, f"period ends ({end:%Y-%m-%d}) before it starts")
    return start, end


def _windows(start: pd.Timestamp, end: pd.Timestamp) -> dict:
    """The period and the previous period of equal length."""
    before = start - pd.Timedelta(days=(end - start).days + 1)
    return {"now": (start, end), "prev": (before, start - pd.Timedelta(days=1))}


def _member_table(
    transactions, customers, start, end, *, restrict: bool = False, per=None, cust=None
):
    """Per-customer summary, the members' rows of it (with ``online``), and where membership
    came from; ``restrict`` keeps only members with a receipt in ``transactions`` (or in
    ``per``, that summary when already made; ``cust``: the customers, already indexed)."""
    if per is None:
        per = summaries.per_customer(
            transactions, end, windows=_windows(start, end), source="member_kpis transactions"
        )
    if per.empty and not restrict:
        raise DataError("member_kpis transactions", f"no transactions on or before {end:%Y-%m-%d}")
    members, online, source = _members(per, customers, "member_orders" in per.columns, cust)
    index = members.index.intersection(per.index) if restrict else members.index
    # the tree's columns only: a shared summary holds many more windows
    shown = per[[c for c in TREE_COLUMNS if c in per.columns]]
    counts = shown.select_dtypes("number").columns
    table = summaries.lookup(shown, index).fillna(dict.fromkeys(counts, 0))
    table["online"] = summaries.lookup(online, index) if online is not None else np.nan
    return per, table, online, source


#: the columns of a summary the tree reads (the period ``now`` and the one before)
TREE_COLUMNS = (
    "first_purchase",
    "orders_now",
    "orders_prev",
    "revenue_now",
    "quantity_now",
    "member_orders_now",
)


def _customers_frame(customers) -> pd.DataFrame | None:
    if customers is None:
        return None
    cust = to_pandas(customers, "member_kpis customers")
    if "customer_id" not in cust.columns:
        raise DataError(
            "member_kpis customers",
            f"required column customer_id missing; found: {', '.join(cust.columns)}",
            column="customer_id",
        )
    return cust.assign(customer_id=cust["customer_id"].astype("str")).set_index("customer_id")


#: the window of the (value, customer) summary a member's home value is chosen on
HOME_WINDOW = "home"
HOME_DAYS = 365


def home_window(end: pd.Timestamp) -> tuple:
    """The days a member's home store is chosen on: the :data:`HOME_DAYS` to ``end``."""
    return (summaries.period_start(end, HOME_DAYS), end)


def home_of(by_summary: pd.DataFrame, by: str, cust: pd.DataFrame | None = None) -> pd.Series:
    """Each customer's home store (归属门店; or channel): the customers' ``home_<by>`` where
    given, else the value of ``by`` where they made the most purchases in the
    :data:`HOME_DAYS` days to the period end, ties (and customers without a purchase in them)
    going to the value of their latest purchase, then to the first by name; a member with no
    purchase at all, the customers' ``join_<by>`` (where she joined) when given. ``by_summary``:
    :func:`closedloop.summaries.per_customer` by ``by`` with the :data:`HOME_WINDOW` window.
    A Series of text by ``customer_id``."""
    recent = by_summary[f"orders_{HOME_WINDOW}"].to_numpy()
    when = by_summary["last_purchase"].to_numpy("datetime64[ns]")
    last = np.where(np.isnat(when), np.iinfo("int64").min + 1, when.astype("int64"))
    codes, names = pd.factorize(by_summary[by], sort=True)
    who, ids = pd.factorize(by_summary.index)
    # lexsort's last key sorts first: each customer's rows together, most recent purchases
    # first, then the latest, then the name; her first row is her home
    order = np.lexsort((codes, -last, -recent, who))
    first = np.ones(len(order), dtype=bool)
    first[1:] = who[order][1:] != who[order][:-1]
    chosen = order[first]
    home = pd.Series(names[codes[chosen]], index=ids[who[chosen]], dtype="str")
    given = _given(cust, f"home_{by}")
    if given is not None:
        home = pd.concat([given, home[~summaries.is_in(home.index, given.index)]])
    joined = _given(cust, f"join_{by}")
    if joined is not None:  # members without a purchase: where they joined
        home = pd.concat([home, joined[~summaries.is_in(joined.index, home.index)]])
    home.index.name = "customer_id"
    return home


def _given(cust: pd.DataFrame | None, column: str) -> pd.Series | None:
    """The customers' non-blank values of ``column`` (text by customer id), None without it."""
    if cust is None or column not in cust.columns:
        return None
    given = cust[column].dropna().astype("str")
    return given[given.str.len() > 0]


def _member_kpis_by(
    transactions, customers, start, end, by: str, summary=None, by_summary=None
) -> pd.DataFrame:
    source = "member_kpis transactions"
    frame = lazy_frame(transactions, source, summaries.TRANSACTION_COLUMNS)
    cust = _customers_frame(customers)
    in_transactions = by in frame.collect_schema().names()
    if not in_transactions and (cust is None or by not in cust.columns) and by != "tier":
        found = ", ".join(frame.collect_schema().names())
        raise DataError(
            "member_kpis",
            f"by={by!r} is neither a column of the transactions ({found}) nor of the customers,"
            " nor 'tier'",
            column=by,
        )
    period = summaries.receipts(frame, end, start=start, by=by if in_transactions else None)
    joined = None
    if cust is not None and "join_date" in cust.columns:
        joined = pd.to_datetime(cust["join_date"])
    if in_transactions:
        origin = "transactions"
        # one group-by on (value, customer): where each member bought, for the home value and
        # for what the value's receipts hold (member share, revenue)
        if by_summary is None:
            windows = {**_windows(start, end), HOME_WINDOW: home_window(end)}
            by_summary = summaries.per_customer(
                frame, end, windows=windows, source=source, by=by, window_last=False
            )
        per, table, online, members_from = _member_table(
            frame, customers, start, end, cust=cust, per=summary
        )
        home = home_of(by_summary, by, cust)
        labels = summaries.lookup(home, table.index).fillna("(none)").to_numpy()
        spent = by_summary[summaries.is_in(by_summary.index, table.index)]
        member_orders = "member_orders_now" if "member_orders_now" in spent else "orders_now"
        at = spent[member_orders].groupby(spent[by].to_numpy()).sum()
        values = (pd.unique(by_summary[by].to_numpy()), period.index, pd.unique(labels))
        groups = pd.Index(sorted(set().union(*values)))
        period = period.reindex(groups, fill_value=0)
        all_orders = period["orders"].astype(float)
        anonymous = period["anonymous_orders"]
        flat = per
    else:
        origin = "customers"
        per, table, online, members_from = _member_table(
            frame, customers, start, end, cust=cust, per=summary
        )
        if by == "tier" and (cust is None or by not in cust.columns):
            from closedloop import rfm

            ranked = rfm.rfm_table(frame, end, period_days=365)
            attribute = rfm.member_tiers(ranked).astype("str")
        else:
            attribute = cust[by].astype("str")
        labels = summaries.lookup(attribute, table.index).fillna("(none)").to_numpy()
        groups = pd.Index(sorted(set(labels)))
        of_buyer = summaries.lookup(attribute, per.index).fillna("(none)")
        all_orders = per["orders_now"].groupby(of_buyer.to_numpy()).sum().astype(float)
        anonymous = pd.Series(0, index=groups)
        flat = per
    converted = _converted(frame, joined, start, end, None)
    out = _by_rows(
        table, labels, groups, all_orders, flat, cust, joined, converted, online, start, end
    )
    unplaced = 0
    if in_transactions and joined is not None:
        # a recruit placed by her purchases alone leaves those who never bought out of every
        # value: each value would show 100%, so the rate is not given unless all are placed
        mine = summaries.lookup(joined, table.index).to_numpy()
        new = (mine >= start) & (mine < end + pd.Timedelta(days=1))
        unplaced = int((new & ~summaries.is_in(table.index, home.index)).sum())
        if unplaced:
            out["conversion"] = np.nan
    out["anonymous_orders"] = anonymous.reindex(groups, fill_value=0).astype("int64").to_numpy()
    if in_transactions:  # what the value's own receipts hold, whoever's home it is
        out["member_share"] = _ratios(at.reindex(groups, fill_value=0), all_orders)
        out["revenue"] = period["revenue"].astype(float)
    out.index.name = by
    out.attrs = {"period": (start, end), "by": by, "from": origin, "members": members_from}
    out.attrs["unplaced_recruits"] = unplaced
    return out


def recruits(transactions, customers, period) -> pd.DataFrame:
    """The recruits of ``period = (start, end)`` (招募): customers whose ``join_date`` falls in
    it, and whether each made a first purchase on or after joining, up to the period end (首购
    转化). Index ``customer_id``; columns ``join_date``, ``converted`` (bool)."""
    start, end = _period(period, "recruits")
    cust = _customers_frame(customers)
    if cust is None or "join_date" not in cust.columns:
        raise DataError("customers", "recruits need the customers' join_date", column="join_date")
    return _recruits(transactions, cust, start, end)


def _recruits(transactions, cust: pd.DataFrame, start, end) -> pd.DataFrame:
    joined = pd.to_datetime(cust["join_date"])
    new = joined[(joined >= start) & (joined < end + pd.Timedelta(days=1))].rename("join_date")
    out = new.to_frame()
    out.index.name = "customer_id"
    out["converted"] = False
    if len(new):
        converted = _converted(transactions, new, start, end, None)
        out["converted"] = summaries.is_in(out.index, converted)
    return out


def _converted(frame, joined, start, end, by):
    """Who joined in the period and bought on or after their join day, up to the period end
    (:func:`closedloop.summaries.since`, one pass): their ids, or with ``by`` the pairs (value,
    id) where they bought. None without join dates."""
    if joined is None:
        return None
    new = joined[(joined >= start) & (joined < end + pd.Timedelta(days=1))]
    starts = pd.DataFrame({"customer_id": new.index.astype("str"), "start": new.to_numpy()})
    bought = summaries.since(frame, starts, end, source="member_kpis transactions", by=by)
    bought = bought[bought["first_purchase"].notna()]
    if by:
        return pd.MultiIndex.from_arrays([bought[by].to_numpy(), bought.index])
    return bought.index


def _by_rows(t, labels, groups, all_orders, per, cust, joined, converted, online, start, end):
    """The tree per group of the members' table ``t`` (group ``labels`` per row), with
    recruits, conversion, active rate, reach and orders: one row per value of ``groups``."""
    member_orders = "member_orders_now" if "member_orders" in per.columns else "orders_now"
    tree = _tree_by(t, labels, groups, all_orders, member_orders, online is not None)
    out = pd.DataFrame({"members": tree.pop("members")})
    out["recruits"] = out["conversion"] = np.nan
    if joined is not None:
        mine = summaries.lookup(joined, t.index).to_numpy()
        new = (mine >= start) & (mine < end + pd.Timedelta(days=1))
        if isinstance(converted, pd.MultiIndex):
            bought = pd.MultiIndex.from_arrays([labels, t.index]).isin(converted)
        else:
            bought = summaries.is_in(t.index, converted)
        counts = pd.DataFrame({"g": labels, "new": new, "bought": new & bought}).groupby("g").sum()
        counts = counts.reindex(groups, fill_value=0)
        out["recruits"] = counts["new"].astype("int64")
        out["conversion"] = _ratios(counts["bought"], counts["new"])
    out["active_members"] = tree.pop("active_members")
    out["active_rate"] = _ratios(out["active_members"], out["members"])
    out = out.join(tree)
    reach = [c for c in (cust.columns if cust is not None else []) if c.startswith("reach_")]
    for column in reach or (["online"] if online is not None else []):
        flags = summaries.lookup(cust[column], t.index).fillna(False).astype(bool).to_numpy()
        name = column if column.startswith("reach_") else "reach_online"
        reached = pd.Series(flags).groupby(labels).sum().reindex(groups, fill_value=0)
        out[name] = _ratios(reached, out["members"])
    out["orders"] = all_orders.reindex(groups, fill_value=0).astype("int64")
    return out


def _tree(t: pd.DataFrame, all_orders: float, member_orders: str, has_online: bool) -> dict:
    """The tree of one group of members (see :func:`_tree_by`)."""
    one = pd.Index(["all"])
    rows = _tree_by(
        t,
        np.full(len(t), "all"),
        one,
        pd.Series([all_orders], index=one),
        member_orders,
        has_online,
    )
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in rows.iloc[0].items()} | {
        "members": int(rows["members"].iloc[0]),
        "active_members": int(rows["active_members"].iloc[0]),
    }


def _tree_by(t, labels, groups, all_orders, member_orders: str, has_online: bool) -> pd.DataFrame:
    """The KPI tree per group: members ``t`` (one row per member, ``orders_now``, ``orders_prev``,
    ``revenue_now``, ...), ``labels`` their group, ``all_orders`` every order of each group
    (member share's denominator); one row per value of ``groups``, in that order."""
    now, prev = t["orders_now"].to_numpy(), t["orders_prev"].to_numpy()
    quantity = t["quantity_now"].to_numpy(float) if "quantity_now" in t.columns else np.nan
    parts = pd.DataFrame(
        {
            "members": 1,
            "orders": now.astype(float),
            "revenue": t["revenue_now"].to_numpy(float),
            "active": now > 0,
            "active_before": prev > 0,
            "lost": (prev > 0) & (now == 0),
            "repeat": now >= 2,
            "quantity": quantity,
            "member_orders": t[member_orders].to_numpy(float),
            "online": t["online"].to_numpy(float),
        },
        index=pd.RangeIndex(len(t)),
    )
    s = parts.groupby(np.asarray(labels)).sum().reindex(groups, fill_value=0)
    if "quantity_now" not in t.columns:
        s["quantity"] = np.nan
    return pd.DataFrame(
        {
            "members": s["members"].astype("int64"),
            "member_share": _ratios(s["member_orders"], all_orders.reindex(groups)),
            "online_rate": _ratios(s["online"], s["members"]) if has_online else np.nan,
            "active_members": s["active"].astype("int64"),
            "purchase_frequency": _ratios(s["orders"], s["active"]),
            "avg_ticket": _ratios(s["revenue"], s["orders"]),
            "contribution": s["revenue"].astype(float),
            "contribution_per_member": _ratios(s["revenue"], s["members"]),
            "repurchase_rate": _ratios(s["repeat"], s["active"]),
            "items_per_basket": _ratios(s["quantity"], s["orders"]),
            "churn_rate": _ratios(s["lost"], s["active_before"]),
        },
        index=groups,
    )


def _ratios(num, den) -> pd.Series:
    """``num / den`` element-wise, NaN where the denominator is 0."""
    num, den = pd.Series(num, dtype=float), pd.Series(den, dtype=float)
    return num / den.where(den != 0)


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else np.nan


def _members(per: pd.DataFrame, customers, flags: bool, cust=None):
    """Member ids (with online flags when known) and where membership came from."""
    if customers is not None:
        cust = _customers_frame(customers) if cust is None else cust
        online = cust["online"].astype(bool) if "online" in cust.columns else None
        if "is_member" in cust.columns:
            members = cust[cust["is_member"].astype(bool)]
            return members, online, "customers.is_member"
    else:
        online = None
    if flags:
        return per[per["member_orders"] > 0], online, "transactions.is_member (any flagged order)"
    return per, online, "every buyer (no membership flag in the data)"


def touches_due(
    customers, asof, schedule: Sequence[int] = TOUCH_DAYS, horizon_days: int = 1
) -> pd.DataFrame:
    """Who is due for a lifecycle touch: ``join_date + day`` within ``horizon_days`` from ``asof``.

    For each day in ``schedule`` (default day 0, 3, 7, 15, 30, 60, 90, 150 after joining) a member
    is due when ``asof <= join_date + day < asof + horizon_days`` (1: today's list; 7: the week's).
    Only members when ``is_member`` is present; customers without a join date are skipped.
    Columns: ``customer_id, join_date, touch_day, due_date``, sorted by due date, day and id.
    """
    if horizon_days < 1:
        raise DataError("touches_due", f"horizon_days must be >= 1, got {horizon_days}")
    day = summaries.day(asof)
    cust = to_pandas(customers, "touches_due customers")
    for col in ("customer_id", "join_date"):
        if col not in cust.columns:
            raise DataError(
                "touches_due customers",
                f"required column {col} missing; found: {', '.join(cust.columns)}",
                column=col,
            )
    if "is_member" in cust.columns:
        cust = cust[cust["is_member"].astype(bool)]
    joined = pd.to_datetime(cust["join_date"]).dt.normalize()
    age = (day - joined).dt.days.to_numpy()  # NaN without a join date: never due
    joined = joined.to_numpy()
    touches = sorted(set(int(d) for d in schedule))
    # the due customers of every touch day first, their ids as text once
    dues = [(age <= t) & (t < age + horizon_days) for t in touches]
    anyone = np.logical_or.reduce(dues) if dues else np.zeros(len(cust), dtype=bool)
    ids = cust["customer_id"].iloc[np.flatnonzero(anyone)].astype("str").to_numpy()
    rows = []
    for touch, due in zip(touches, dues, strict=True):
        mine = due[anyone]
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": ids[mine],
                    "join_date": joined[due],
                    "touch_day": touch,
                    "due_date": joined[due] + np.timedelta64(touch, "D"),
                }
            )
        )
    out = pd.concat(rows, ignore_index=True)
    out["join_date"] = out["join_date"].astype("datetime64[ns]")
    out["due_date"] = out["due_date"].astype("datetime64[ns]")
    return out.sort_values(["due_date", "touch_day", "customer_id"], ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Why revenue moved: heads x frequency x ticket


@dataclass(frozen=True)
class RevenueMove:
    """:func:`why_revenue_moved`'s answer: the :func:`revenue_change` table and its figure."""

    table: pd.DataFrame
    figure: object


def revenue_change(
    transactions,
    before,
    after,
    *,
    by: str = "tier",
    customers=None,
    tiers: pd.Series | None = None,
    method: str = "shapley",
    summary=None,
) -> pd.DataFrame:
    """Each group's revenue change from period ``before`` to period ``after`` (``(start, end)``,
    inclusive days), split into heads, frequency and ticket effects that add up to it exactly.

    Revenue = customers (buyers in the period) x frequency (orders per buyer) x ticket (revenue
    per order). The split is the Shapley one (``method="shapley"``, the average of the three
    factors' marginal effects over every order of change; exact, zeros allowed) or the
    log-mean Divisia one (``"lmdi"``, ``L(R1, R0) x ln(X1 / X0)``; exact, rows with a
    non-positive value fall back to Shapley, listed in ``attrs["fallback"]``). A group with no
    buyers in one period takes the other period's frequency and ticket: its change is all heads.
    Refunds in a period without purchases (revenue without an order) go to the ticket effect.

    ``by``: ``"tier"`` — each customer's member tier over the 365 days to the end of
    ``before`` (platinum / gold / regular, ``new`` for customers not tiered then), or your own
    ``tiers`` (a Series by customer_id); a column of the transactions (``store``: a customer
    buying in two stores counts in both); or a column of ``customers``.

    Columns: ``customers_before, customers_after, frequency_before, frequency_after,
    ticket_before, ticket_after, revenue_before, revenue_after, change, heads, frequency,
    ticket``; ``attrs["total"]`` holds the column sums of the revenue, change and effects.
    Anonymous receipts are not customers' revenue and are left out.

    ``summary``: the :func:`closedloop.summaries.per_customer` this needs, when already made (to
    the later period's end, with the windows ``before`` and ``after``; grouped by ``by`` when it
    is a column of the transactions).
    """
    if method not in DECOMPOSITION_METHODS:
        raise DataError(
            "revenue_change", f"method must be one of {', '.join(DECOMPOSITION_METHODS)}"
        )
    b0, b1 = _period(before, "revenue_change before")
    a0, a1 = _period(after, "revenue_change after")
    windows = {"before": (b0, b1), "after": (a0, a1)}
    end = max(b1, a1)
    source = "revenue_change transactions"
    frame = lazy_frame(transactions, source, summaries.TRANSACTION_COLUMNS)
    parts: dict[str, pd.DataFrame] = {}
    if by in frame.collect_schema().names():
        flat = summary
        if flat is None:
            flat = summaries.per_customer(frame, end, windows=windows, source=source, by=by)
        split = dict(tuple(flat.drop(columns=by).groupby(flat[by].to_numpy(), sort=False)))
        for group in summaries.receipts(frame, end, by=by).index:
            parts[group] = split.get(group, flat.iloc[:0])
    else:
        per = summary
        if per is None:
            per = summaries.per_customer(frame, end, windows=windows, source=source)
        if by == "tier" and tiers is None:
            from closedloop import rfm

            ranked = rfm.rfm_table(frame, b1, period_days=365)
            tiers = rfm.member_tiers(ranked)
        if by == "tier":
            labels = pd.Series(tiers).astype("str")
            label = summaries.lookup(labels, per.index).fillna(NEW_TIER)
            order = [*pd.unique(pd.Series(tiers).sort_values()), NEW_TIER]
            if isinstance(getattr(tiers, "dtype", None), pd.CategoricalDtype):
                order = [*tiers.cat.categories.astype("str"), NEW_TIER]
        else:
            cust = _customers_frame(customers)
            if cust is None or by not in cust.columns:
                raise DataError(
                    "revenue_change",
                    f"by={by!r} is neither a column of the transactions nor of the customers",
                    column=by,
                )
            label = summaries.lookup(cust[by].astype("str"), per.index).fillna("(none)")
            order = sorted(set(label))
        for group in order:
            chosen = per[(label == group).to_numpy()]
            if len(chosen) or group != NEW_TIER:
                parts[str(group)] = chosen
    rows = {group: _factors(per) for group, per in parts.items()}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by
    split, fallback = _split(out, method)
    out = out.join(split)
    total = out[["revenue_before", "revenue_after", "change", "heads", "frequency", "ticket"]]
    out.attrs = {
        "before": (b0, b1),
        "after": (a0, a1),
        "by": by,
        "method": method,
        "fallback": fallback,
        "total": total.sum().to_dict(),
    }
    return out


def _factors(per: pd.DataFrame) -> dict:
    row = {}
    for name in ("before", "after"):
        orders = per[f"orders_{name}"]
        row[f"customers_{name}"] = int((orders > 0).sum())
        row[f"orders_{name}"] = int(orders.sum())
        row[f"revenue_{name}"] = float(per[f"revenue_{name}"].sum())
    for name, other in (("before", "after"), ("after", "before")):
        source = name if row[f"customers_{name}"] else other
        heads, orders = row[f"customers_{source}"], row[f"orders_{source}"]
        row[f"frequency_{name}"] = orders / heads if heads else 0.0
        row[f"ticket_{name}"] = row[f"revenue_{source}"] / orders if orders else 0.0
    row["change"] = row["revenue_after"] - row["revenue_before"]
    return row


def _split(table: pd.DataFrame, method: str) -> tuple[pd.DataFrame, list]:
    c0, c1 = table["customers_before"].to_numpy(float), table["customers_after"].to_numpy(float)
    f0, f1 = table["frequency_before"].to_numpy(float), table["frequency_after"].to_numpy(float)
    t0, t1 = table["ticket_before"].to_numpy(float), table["ticket_after"].to_numpy(float)

    def shapley(x0, x1, y0, y1, z0, z1):
        return (x1 - x0) * ((y0 * z0 + y1 * z1) / 3 + (y0 * z1 + y1 * z0) / 6)

    heads = shapley(c0, c1, f0, f1, t0, t1)
    frequency = shapley(f0, f1, c0, c1, t0, t1)
    ticket = shapley(t0, t1, c0, c1, f0, f1)
    fallback: list = []
    if method == "lmdi":
        r0, r1 = c0 * f0 * t0, c1 * f1 * t1
        positive = (np.minimum.reduce([c0, c1, f0, f1, t0, t1]) > 0) & (r0 > 0) & (r1 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(np.isclose(r0, r1), r0, (r1 - r0) / (np.log(r1) - np.log(r0)))
            heads = np.where(positive, weight * np.log(c1 / c0), heads)
            frequency = np.where(positive, weight * np.log(f1 / f0), frequency)
            ticket = np.where(positive, weight * np.log(t1 / t0), ticket)
        fallback = table.index[~positive].tolist()
    # what the product does not hold (refunds without an order) is a ticket effect
    residual = table["change"].to_numpy(float) - (c1 * f1 * t1 - c0 * f0 * t0)
    split = pd.DataFrame(
        {"heads": heads, "frequency": frequency, "ticket": ticket + residual}, index=table.index
    )
    return split, fallback


def why_revenue_moved(
    transactions, before, after, *, by: str = "tier", language: str = "en", **options
) -> RevenueMove:
    """:func:`revenue_change` and its figure (:func:`closedloop.figures.kpi.revenue_change`) in
    one call; ``options`` go to :func:`revenue_change`."""
    from closedloop.figures import kpi as figures

    table = revenue_change(transactions, before, after, by=by, **options)
    return RevenueMove(table=table, figure=figures.revenue_change(table, language=language))


# ---------------------------------------------------------------------------------------------
# What-if on the KPI tree


@dataclass(frozen=True)
class Drivers:
    """The drivers of the KPI tree, for :func:`what_if` (build by hand or with :func:`drivers`).

    ``members`` x ``active_rate`` = active members; x ``frequency`` (orders per active member
    per frequency period: a week for "2.5 visits a week") x ``periods`` (frequency periods in
    the horizon: 52 for a year of weeks) = member orders; x ``ticket`` = contribution (会员贡献).
    ``ticket`` = ``items_per_basket`` (连带率) x ``item_price`` when those are given. With the
    active rates of online and offline members, ``active_rate`` follows the ``online_rate`` mix.
    ``other_orders`` and ``other_revenue`` (non-members, anonymous receipts included) are held
    fixed: revenue = contribution + other revenue; member share = member orders / all orders.
    """

    members: float
    active_rate: float
    frequency: float
    ticket: float
    periods: float = 1.0
    items_per_basket: float = np.nan
    online_rate: float = np.nan
    active_rate_online: float = np.nan
    active_rate_offline: float = np.nan
    other_orders: float = 0.0
    other_revenue: float = 0.0

    @property
    def item_price(self) -> float:
        return self.ticket / self.items_per_basket if self.items_per_basket else np.nan

    def outcome(self) -> dict:
        """The tree's outputs: active members, member orders, contribution, revenue, shares."""
        active = self.members * self.active_rate
        orders = active * self.frequency * self.periods
        contribution = orders * self.ticket
        revenue = contribution + self.other_revenue
        return {
            "active_members": active,
            "member_orders": orders,
            "contribution": contribution,
            "contribution_per_member": _ratio(contribution, self.members),
            "revenue": revenue,
            "member_share": _ratio(orders, orders + self.other_orders),
        }


#: what :func:`what_if` can set
WHAT_IF = ("members", "online_rate", "active_rate", "frequency", "ticket", "items_per_basket")


def drivers(transactions, customers=None, period=None, *, periods: float = 1.0) -> Drivers:
    """The current state of the tree over ``period``, as :class:`Drivers` (the baseline of
    :func:`what_if`): :func:`member_kpis`' ``all`` figures, the active rates of online and offline
    members when ``online`` is known, and the non-members' orders and revenue of the period
    (anonymous receipts included). ``frequency`` is per period: pass ``periods`` > 1 to scale,
    e.g. a week's data with ``periods=52`` for a year."""
    start, end = _period(period, "drivers")
    _, table, online, _ = _member_table(transactions, customers, start, end)
    tree = _tree(table, 1.0, "orders_now", online is not None)
    everything = summaries.receipts(transactions, end, start=start, source="drivers transactions")
    active = table["orders_now"] > 0
    rates = {}
    if online is not None:
        flags = table["online"].fillna(False).astype(bool)
        rates = {
            "online_rate": tree["online_rate"],
            "active_rate_online": _ratio(int((active & flags).sum()), int(flags.sum())),
            "active_rate_offline": _ratio(int((active & ~flags).sum()), int((~flags).sum())),
        }
    orders = float(table["orders_now"].sum())
    return Drivers(
        members=float(tree["members"]),
        active_rate=_ratio(tree["active_members"], tree["members"]),
        frequency=tree["purchase_frequency"],
        ticket=tree["avg_ticket"],
        periods=periods,
        items_per_basket=tree["items_per_basket"],
        other_orders=(float(everything["orders"].sum()) - orders) * periods,
        other_revenue=(float(everything["revenue"].sum()) - tree["contribution"]) * periods,
        **rates,
    )


def what_if(
    baseline: Drivers, scenarios: Mapping[str, Mapping[str, float]] | None = None, **values
) -> pd.DataFrame:
    """Set drivers of the tree and read what they imply, against ``baseline`` (the current state).

    ``what_if(base, frequency=2.7)`` — one scenario (column ``scenario``); or
    ``what_if(base, {"target": {"frequency": 2.7}, "model": {"frequency": 3.2}})`` — one column
    each. Settable: :data:`WHAT_IF`. Setting ``online_rate`` moves ``active_rate`` to
    ``online_rate x active_rate_online + (1 - online_rate) x active_rate_offline`` (the baseline's
    rates), unless ``active_rate`` is set too; setting ``items_per_basket`` moves ``ticket`` at the
    baseline's item price, unless ``ticket`` is set too.

    Rows: the drivers, then ``active_members, member_orders, contribution (= active members x
    frequency x periods x ticket), contribution_per_member, revenue, member_share``; columns
    ``baseline``, each scenario, and ``change_<scenario>`` (scenario - baseline) for each.
    """
    if scenarios is None:
        scenarios = {"scenario": values}
    elif values:
        raise DataError("what_if", "give scenarios or driver values, not both")
    columns = {"baseline": _state(baseline)}
    for name, setting in scenarios.items():
        columns[str(name)] = _state(_apply(baseline, dict(setting)))
    out = pd.DataFrame(columns)
    for name in list(columns)[1:]:
        out[f"change_{name}"] = out[name] - out["baseline"]
    out.index.name = "kpi"
    return out


def _apply(base: Drivers, setting: dict) -> Drivers:
    unknown = sorted(set(setting) - set(WHAT_IF))
    if unknown:
        raise DataError("what_if", f"cannot set {unknown}; settable: {', '.join(WHAT_IF)}")
    for name, value in setting.items():
        if not np.isfinite(float(value)) or float(value) < 0:
            raise DataError("what_if", f"{name} must be a number >= 0, not {value!r}")
        if name in ("online_rate", "active_rate") and float(value) > 1:
            raise DataError("what_if", f"{name} is a share between 0 and 1, not {value!r}")
    new = dict(setting)
    if "online_rate" in new and "active_rate" not in new:
        on, off = base.active_rate_online, base.active_rate_offline
        if np.isnan(on) or np.isnan(off):
            raise DataError(
                "what_if",
                "setting online_rate needs the active rates of online and offline members"
                " (drivers() computes them when customers have an online column)",
            )
        new["active_rate"] = new["online_rate"] * on + (1 - new["online_rate"]) * off
    if "items_per_basket" in new and "ticket" not in new:
        if np.isnan(base.item_price):
            raise DataError("what_if", "setting items_per_basket needs the baseline's basket")
        new["ticket"] = new["items_per_basket"] * base.item_price
    return replace(base, **{k: float(v) for k, v in new.items()})


def _state(d: Drivers) -> pd.Series:
    shown = [f.name for f in fields(d) if f.name not in ("other_orders", "other_revenue")]
    state = {name: asdict(d)[name] for name in shown}
    return pd.Series({**state, "item_price": d.item_price, **d.outcome()}, dtype="float64")
