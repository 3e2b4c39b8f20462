"""The member-operations KPI tree (会员运营指标) and the lifecycle touch schedule (method.md §7).

- :func:`member_kpis` — member share, online rate, active members, purchase frequency, average
  ticket, contribution (= active members x frequency x ticket), repurchase rate, items per basket
  and churn rate, for all members and split into new and existing customers;
- :func:`touches_due` — who is due for the day 0 / 3 / 7 / 15 / 30 / 60 / 90 / 150 touches after
  joining ("about to lapse" and "activity falling" triggers come from
  :func:`closedloop.rfm.churn_severity`).

The transactions (pandas, polars, a DuckDB relation or a PySpark DataFrame) are reduced to
per-customer orders and revenue for the period and the period before it by
:mod:`closedloop.summaries`, where the data lives; the tree is arithmetic on that pandas summary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop._frames import to_pandas
from closedloop.errors import DataError

__all__ = ["KPI_TERMS", "TOUCH_DAYS", "member_kpis", "touches_due"]

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


def member_kpis(transactions, customers=None, period=None) -> pd.DataFrame:
    """The KPI tree over ``period = (start, end)`` (inclusive days), for all / new / existing members.

    Who is a member: ``customers.is_member`` when given; else a customer with any order flagged
    ``is_member`` in the transactions; else every buyer (noted in ``attrs["members"]``). New
    members made their first purchase in the period, existing ones before it; members who never
    bought count under ``all`` only. Rows (index; ``term`` gives the method's name):

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
    """
    if period is None or len(period) != 2:
        raise DataError(
            "member_kpis", "period must be (start, end), e.g. ('2025-04-01', '2026-03-31')"
        )
    start, end = summaries.day(period[0], "period start"), summaries.day(period[1], "period end")
    if end < start:
        raise DataError("member_kpis", f"period ends ({end:%Y-%m-%d}) before it starts")
    before = start - pd.Timedelta(days=(end - start).days + 1)
    windows = {"now": (start, end), "prev": (before, start - pd.Timedelta(days=1))}
    per = summaries.per_customer(
        transactions, end, windows=windows, source="member_kpis transactions"
    )
    if per.empty:
        raise DataError("member_kpis transactions", f"no transactions on or before {end:%Y-%m-%d}")
    flags = "member_orders" in per.columns
    members, online, source = _members(per, customers, flags)
    counts = per.select_dtypes("number").columns
    table = per.reindex(members.index).fillna(dict.fromkeys(counts, 0))
    table["online"] = online.reindex(members.index) if online is not None else np.nan
    bought = table["first_purchase"].notna()
    groups = {
        "all": np.ones(len(table), dtype=bool),
        "new": (bought & (table["first_purchase"] >= start)).to_numpy(),
        "existing": (bought & (table["first_purchase"] < start)).to_numpy(),
    }
    all_orders = float(per["orders_now"].sum())
    member_orders = "member_orders_now" if flags else "orders_now"
    out = {
        name: _tree(table[mask], all_orders, member_orders, online is not None)
        for name, mask in groups.items()
    }
    result = pd.DataFrame(out, index=list(KPI_TERMS))
    result.index.name = "kpi"
    result.insert(0, "term", pd.Series(KPI_TERMS))
    result.attrs = {"period": (start, end), "members": source}
    return result


def _tree(t: pd.DataFrame, all_orders: float, member_orders: str, has_online: bool) -> dict:
    members = len(t)
    orders = float(t["orders_now"].sum())
    revenue = float(t["revenue_now"].sum())
    active = int((t["orders_now"] > 0).sum())
    active_before = t["orders_prev"] > 0
    lost = int((active_before & (t["orders_now"] == 0)).sum())
    quantity = float(t["quantity_now"].sum()) if "quantity_now" in t.columns else np.nan
    return {
        "members": members,
        "member_share": _ratio(float(t[member_orders].sum()), all_orders),
        "online_rate": _ratio(float(t["online"].sum()), members) if has_online else np.nan,
        "active_members": active,
        "purchase_frequency": _ratio(orders, active),
        "avg_ticket": _ratio(revenue, orders),
        "contribution": revenue,
        "contribution_per_member": _ratio(revenue, members),
        "repurchase_rate": _ratio(int((t["orders_now"] >= 2).sum()), active),
        "items_per_basket": _ratio(quantity, orders),
        "churn_rate": _ratio(lost, int(active_before.sum())),
    }


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else np.nan


def _members(per: pd.DataFrame, customers, flags: bool):
    """Member ids (with online flags when known) and where membership came from."""
    if customers is not None:
        cust = to_pandas(customers, "member_kpis customers")
        if "customer_id" not in cust.columns:
            raise DataError(
                "member_kpis customers",
                f"required column customer_id missing; found: {', '.join(cust.columns)}",
                column="customer_id",
            )
        cust = cust.assign(customer_id=cust["customer_id"].astype("str")).set_index("customer_id")
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
    age = (day - joined).dt.days.to_numpy()
    rows = []
    for touch in sorted(set(int(d) for d in schedule)):
        due = (age <= touch) & (touch < age + horizon_days)
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": cust["customer_id"].astype("str").to_numpy()[due],
                    "join_date": joined.to_numpy()[due],
                    "touch_day": touch,
                    "due_date": joined.to_numpy()[due] + pd.Timedelta(days=touch),
                }
            )
        )
    out = pd.concat(rows, ignore_index=True)
    out["join_date"] = out["join_date"].astype("datetime64[ns]")
    out["due_date"] = out["due_date"].astype("datetime64[ns]")
    return out.sort_values(["due_date", "touch_day", "customer_id"], ignore_index=True)
