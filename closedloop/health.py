"""Member health (会员健康度): the monthly check of the member-operations KPI tree.

Beside the per-campaign Check, member operations run on the KPI tree (method.md §7, §9): member
share, online rate, purchase frequency, ticket, contribution. ``check(plan, transactions, ...)``
computes, in one pass of arithmetic on :mod:`closedloop.summaries`' group-bys, everything the
member-health report shows (``closedloop health``):

- the KPI tree for the month to ``asof`` against the targets of a small YAML file
  (:class:`HealthPlan`, e.g. ``data/demo/health.yaml``), each with its gap and met / missed;
- trends month by month (buyers, orders per buyer, ticket, member share) over 12 months;
- the pyramid over time (revenue by pyramid tier per month, tiers fixed over the last year);
- the churn screen (定期筛检): customers by churn level now and a quarter ago, and the change;
- why revenue moved (:func:`closedloop.kpi.revenue_change`): this month against the same days a
  year before (else the month before), by tier and by store;
- the store table (``member_kpis(..., by="store")``) ranked by the gap to target.

Data without the ``by`` column (CDNOW has no stores) leave the store parts out (``stores`` is
None) and the report says so. The YAML is read like a plan (:mod:`closedloop.plan`: strict
loader, unknown keys refused, data paths relative to the file and inside its folder or a
``data_root``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from closedloop import io, kpi, rfm, summaries
from closedloop.plan import (
    PlanError,
    _explain,
    _resolve,
    _roots,
    check_data_paths,
    read_yaml,
)

__all__ = [
    "BY",
    "CAMPAIGN",
    "FILENAME",
    "LOWER_IS_BETTER",
    "Health",
    "HealthPlan",
    "check",
    "load",
    "run_health",
    "summary",
    "write",
]

#: the health targets file the demo writes beside its data
FILENAME = "health.yaml"
#: the report folder's (and the ledger's) name for member-health runs, unless the file names one
CAMPAIGN = "member-health"
#: KPIs where less is better: the gap is how far the actual is above the target
LOWER_IS_BETTER = frozenset({"churn_rate"})
#: KPIs a store's gap is summed over (rates and per-order figures: a count is the company's)
STORE_KPIS = (
    "member_share",
    "online_rate",
    "purchase_frequency",
    "avg_ticket",
    "repurchase_rate",
    "items_per_basket",
    "churn_rate",
    "contribution_per_member",
)
#: what the store table can be split by
BY = ("store", "channel", "city", "guide", "tier")
SUMMARY_FILE = "summary.json"
TREND_MONTHS = 12
SCREEN_DAYS = 90  # the churn screen compares today with a quarter ago
PYRAMID_DAYS = 365  # the pyramid over time ranks its tiers over the year to the as-of day


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_RATE = {"ge": 0, "le": 1}


class HealthTargets(_Strict):
    """Targets on the KPI tree (:data:`closedloop.kpi.KPI_TERMS`); each optional, rates 0-1,
    finite numbers (``.inf`` and ``true`` are not a target)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    member_share: float | None = Field(None, **_RATE)
    online_rate: float | None = Field(None, **_RATE)
    repurchase_rate: float | None = Field(None, **_RATE)
    churn_rate: float | None = Field(None, **_RATE)
    purchase_frequency: float | None = Field(None, gt=0)
    avg_ticket: float | None = Field(None, gt=0)
    items_per_basket: float | None = Field(None, gt=0)
    contribution_per_member: float | None = Field(None, gt=0)
    contribution: float | None = Field(None, gt=0)
    members: float | None = Field(None, gt=0)
    active_members: float | None = Field(None, gt=0)

    @field_validator("*", mode="before")
    @classmethod
    def _not_a_flag(cls, value):
        if isinstance(value, bool):
            raise ValueError("a target is a number, not true or false")
        return value


class HealthData(_Strict):
    """The tables: transactions (required), anonymous receipts and customers (optional)."""

    transactions: Path
    receipts: Path | None = None
    customers: Path | None = None


class HealthPlan(_Strict):
    """The member-health targets file: what to check, on which data, split by what."""

    campaign: str = CAMPAIGN
    name: str = ""
    currency: str = Field("CNY", pattern=r"^[A-Za-z]{3}$")
    #: the store table's split (:data:`BY`): a column of the transactions (store, channel), of
    #: the customers (city, guide), or tier
    by: str = "store"
    targets: HealthTargets = HealthTargets()
    data: HealthData

    @field_validator("by")
    @classmethod
    def _split(cls, value):
        if value not in BY:
            raise ValueError(f"must be one of {', '.join(BY)}")
        return value

    @field_validator("campaign")
    @classmethod
    def _campaign_id(cls, value):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}", value):
            raise ValueError("holds only letters, digits, - and _ (it names the report folder)")
        return value

    @property
    def target_values(self) -> dict[str, float]:
        return self.targets.model_dump(exclude_none=True)

    @classmethod
    def from_yaml(cls, path: str | Path, data_root=None) -> HealthPlan:
        """Load and validate a health targets file; its data paths resolve relative to it and
        must be files inside its folder or a ``data_root``."""
        path = Path(path)
        raw = read_yaml(path, "health targets", "a mapping of keys (targets, data, by, ...)")
        if isinstance(raw.get("data"), dict):
            raw["data"] = {k: _resolve(path.parent, v) for k, v in raw["data"].items()}
        try:
            plan = cls.model_validate(raw)
        except ValidationError as exc:
            models = {(): cls, ("targets",): HealthTargets, ("data",): HealthData}
            raise PlanError(_explain(str(path), exc, models, "health targets")) from None
        check_data_paths(plan.data.model_dump(), str(path), [path.parent, *_roots(data_root)])
        return plan


@dataclass(frozen=True)
class Health:
    """Everything the member-health report shows; see the module docstring."""

    plan: HealthPlan
    asof: pd.Timestamp
    period: tuple[pd.Timestamp, pd.Timestamp]
    #: the store table's split, as asked (``stores`` is None when the data lack it)
    by: str
    tree: pd.DataFrame
    scorecard: pd.DataFrame
    trend: pd.DataFrame
    pyramid: pd.DataFrame
    churn: pd.DataFrame
    compared: tuple[pd.Timestamp, pd.Timestamp]
    moves: pd.DataFrame
    stores: pd.DataFrame | None
    store_moves: pd.DataFrame | None
    quality: pd.DataFrame

    @property
    def anonymous_orders(self) -> int:
        return int(self.tree.attrs.get("anonymous_orders", 0))


def load(plan: HealthPlan, asof) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """The transactions (with the anonymous receipts appended), the customers (or None) and a
    data-quality table (rows read and kept per file), through :mod:`closedloop.io`."""
    day = summaries.day(asof)
    tables = {"transactions": io.read_transactions(plan.data.transactions, asof=day)}
    if plan.data.receipts is not None:
        tables["receipts"] = io.read_transactions(plan.data.receipts, asof=day, anonymous=True)
    customers = None
    if plan.data.customers is not None:
        customers = tables["customers"] = io.read_customers(plan.data.customers)
    quality = pd.DataFrame(
        [
            {
                "table": name,
                "source": Path(str(frame.attrs["quality"]["source"])).name,
                "rows_read": frame.attrs["quality"].get("rows_read"),
                "rows_kept": len(frame),
            }
            for name, frame in tables.items()
        ]
    )
    parts = [tables["transactions"], tables.get("receipts")]
    transactions = pd.concat([p for p in parts if p is not None], ignore_index=True)
    return transactions, customers, quality


def check(
    plan: HealthPlan,
    transactions,
    customers=None,
    asof=None,
    *,
    by: str | None = None,
    quality: pd.DataFrame | None = None,
) -> Health:
    """The member-health check for the month to ``asof`` (see the module docstring); ``by``
    overrides the plan's split."""
    end = summaries.day(asof)
    start = end.replace(day=1)
    by = by or plan.by
    if by not in BY:
        raise PlanError(f"by: must be one of {', '.join(BY)} (got {by!r})")
    # one frame, checked once: every group-by below reads it without checking it again
    frame = summaries.checked(transactions, SOURCE)
    compared = _compared(frame, start, end)
    names = frame.collect_schema().names()
    # one summary per customer (and one per store and customer) for the tree, why revenue
    # moved and the churn screen: each of those is a set of named windows on it
    per = summaries.per_customer(
        frame,
        end,
        windows=_windows(start, end, compared),
        source=SOURCE,
        window_last=("screen",),
        window_extras=("now",),
        columns=_SHARED,
    )
    tree = kpi.member_kpis(frame, customers, (start, end), summary=per)
    moved = _view(per, {"before": "before", "after": "now"})
    # the tiers at the end of the compared period, ranked on the shared summary's year to it
    tiers = rfm.member_tiers(_bought(per, "tier_year"))
    moves = kpi.revenue_change(frame, compared, (start, end), by="tier", tiers=tiers, summary=moved)
    stores = store_moves = None
    if by in names or by == "tier" or (customers is not None and by in customers.columns):
        flat = None
        if by in names:
            windows = {"now": (start, end), "before": compared}
            windows[kpi.HOME_WINDOW] = kpi.home_window(end)
            flat = summaries.per_customer(
                frame,
                end,
                windows=windows,
                source=SOURCE,
                by=by,
                columns=_BY_STORE,
            )
        stores = kpi.member_kpis(
            frame, customers, (start, end), by=by, summary=per, by_summary=flat
        )
        stores = rank_by_gap(stores, plan.target_values)
        if flat is not None:
            moved = _view(flat, {"before": "before", "after": "now"}, keep=(by,))
            store_moves = kpi.revenue_change(frame, compared, (start, end), by=by, summary=moved)
    # one monthly summary for the trend and, when its year starts on a month's first day (a
    # month-end as-of day), the pyramid over time
    first = _first_month(end)
    months = summaries.by_period(frame, end, start=first, anonymous=True, source=SOURCE)
    shared = months if summaries.period_start(end, PYRAMID_DAYS) == first else None
    return Health(
        plan=plan,
        asof=end,
        period=(start, end),
        by=by,
        tree=tree,
        scorecard=scorecard(tree["all"], plan.target_values),
        trend=trend(frame, customers, end, summary=months),
        pyramid=rfm.pyramid_over_time(
            frame, end, PYRAMID_DAYS, summary=shared, ranked=_bought(per, "year")
        ),
        churn=churn_screen(frame, end, summary=per),
        compared=compared,
        moves=moves,
        stores=stores,
        store_moves=store_moves,
        quality=quality if quality is not None else pd.DataFrame(),
    )


SOURCE = "health transactions"
#: a summary's columns: whole history, and with ``_<window>`` for each named window
_PLAIN = ("orders", "revenue", "first_purchase", "last_purchase", "quantity", "member_orders")
_WINDOWED = ("orders", "revenue", "last_purchase", "quantity", "member_orders")


#: the shared summary's columns the check reads (whole-history member orders: membership can
#: come from the transactions' flags); the rest are not computed
_SHARED = (
    "first_purchase",
    "last_purchase",
    "orders",
    "member_orders",
    *(f"{c}_now" for c in ("orders", "revenue", "quantity", "member_orders")),
    *(f"{c}_{w}" for w in ("prev", "before", "year", "tier_year") for c in ("orders", "revenue")),
    *(
        f"{c}_{k}_{w}"
        for k in ("churn", "screen")
        for w in ("now", "prev")
        for c in ("orders", "revenue")
    ),
    "orders_screen",
    "last_purchase_screen",
)
#: the (store, customer) summary's columns the check reads: the home store's (the latest
#: purchase, the year's orders), the month's member share, why revenue moved by store
_BY_STORE = (
    "last_purchase",
    f"orders_{kpi.HOME_WINDOW}",
    *(f"{c}_{w}" for w in ("now", "before") for c in ("orders", "revenue")),
    "member_orders_now",
)


def _windows(start, end, compared) -> dict[str, tuple]:
    """The named windows of the check's shared summary: the month and the one before (the
    tree), the compared period (why revenue moved), the churn screen's periods now and
    :data:`SCREEN_DAYS` before, with everything to the earlier screen day, and the years the
    tiers are ranked on."""
    screen = end - pd.Timedelta(days=SCREEN_DAYS)
    windows = {**kpi._windows(start, end), "before": compared}
    windows |= {f"churn_{k}": v for k, v in rfm.churn_windows(end).items()}
    windows |= {  # as of the screen day: open ends close there
        f"screen_{k}": (w0, w1 or screen) for k, (w0, w1) in rfm.churn_windows(screen).items()
    }
    windows["screen"] = (None, screen)
    # the years the pyramid (to the as-of day) and the tiers of why revenue moved rank on
    windows["year"] = (summaries.period_start(end, PYRAMID_DAYS), end)
    windows["tier_year"] = (summaries.period_start(compared[1], 365), compared[1])
    return windows


def _bought(per: pd.DataFrame, window: str) -> pd.DataFrame:
    """The customers who bought in ``window`` of the shared summary, with their ``revenue`` and
    ``frequency`` (orders) there: what :func:`closedloop.rfm.rfm_table` over it ranks tiers on."""
    bought = per[per[f"orders_{window}"] > 0]
    return pd.DataFrame(
        {"revenue": bought[f"revenue_{window}"], "frequency": bought[f"orders_{window}"]}
    )


def _view(per: pd.DataFrame, windows: dict[str, str], whole: str | None = None, keep=()):
    """The summary ``per`` as one made with ``windows`` (new name: the window of ``per`` it
    is) and, with ``whole``, as one made to the end of that window (its columns as the plain
    ones); ``keep`` names other columns kept (a store)."""
    out = {c: per[c] for c in keep}
    for column in _PLAIN:
        shared = column if whole is None or column == "first_purchase" else f"{column}_{whole}"
        if shared in per.columns:
            out[column] = per[shared]
    for name, shared in windows.items():
        for column in _WINDOWED:
            if f"{column}_{shared}" in per.columns:
                out[f"{column}_{name}"] = per[f"{column}_{shared}"]
    return pd.DataFrame(out, index=per.index)


def run_health(path: str | Path, asof, by: str | None = None, data_root=None) -> Health:
    """Load a health targets file and its data and check them (what ``closedloop health``
    computes before the report's kernel starts)."""
    plan = HealthPlan.from_yaml(path, data_root=data_root)
    transactions, customers, quality = load(plan, asof)
    return check(plan, transactions, customers, asof, by=by, quality=quality)


def gap(kpi_name: str, actual, target: float) -> float:
    """How far ``actual`` falls short of ``target``, as a share of the target (negative: ahead);
    for :data:`LOWER_IS_BETTER`, how far it is above it."""
    short = (actual - target) if kpi_name in LOWER_IS_BETTER else (target - actual)
    return short / target if target else np.nan


def scorecard(actual: pd.Series, targets: dict[str, float]) -> pd.DataFrame:
    """One row per target: ``kpi, actual, target_value, gap, status`` (met / missed; "no data"
    where the actual is undefined, e.g. an online rate without an ``online`` column)."""
    rows = []
    for name, target in targets.items():
        value = float(actual.get(name, np.nan))
        shortfall = gap(name, value, target)
        status = "no data" if np.isnan(value) else ("met" if shortfall <= 0 else "missed")
        rows.append(
            {
                "kpi": name,
                "actual": value,
                "target_value": target,
                "gap": shortfall,
                "status": status,
            }
        )
    return pd.DataFrame(rows, columns=["kpi", "actual", "target_value", "gap", "status"])


def rank_by_gap(table: pd.DataFrame, targets: dict[str, float]) -> pd.DataFrame:
    """``table`` (``member_kpis(..., by=...)``) with ``gap``: the sum over the targets of
    :data:`STORE_KPIS` of each shortfall as a share of its target (ahead counts 0), furthest
    behind first (ties by name)."""
    shortfalls = pd.DataFrame(
        {
            name: gap(name, table[name], target).clip(lower=0)
            for name, target in targets.items()
            if name in STORE_KPIS and name in table.columns
        },
        index=table.index,
    )
    out = table.copy()
    out.insert(0, "gap", shortfalls.sum(axis=1, min_count=1) if len(shortfalls.columns) else np.nan)
    name = out.index.name
    out = out.rename_axis("_by").reset_index()
    out = out.sort_values(["gap", "_by"], ascending=[False, True], na_position="last")
    return out.set_index("_by").rename_axis(name)


def _first_month(end: pd.Timestamp) -> pd.Timestamp:
    """The first day of the trend's first month: :data:`TREND_MONTHS` months to ``end``."""
    return end.replace(day=1) - pd.DateOffset(months=TREND_MONTHS - 1)


def trend(transactions, customers, asof, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Month by month over the :data:`TREND_MONTHS` months to ``asof`` (the last one to
    ``asof``): ``buyers`` (customers with an order), ``orders``, ``revenue``, ``frequency``
    (orders per buyer), ``ticket`` (revenue per order), ``anonymous_orders`` and
    ``member_share`` (members' orders / all orders, anonymous receipts included; members from
    ``customers.is_member``, else every identified buyer), indexed by the month's first day.
    ``summary``: the monthly :func:`closedloop.summaries.by_period` this needs (anonymous
    receipts included), when the check already made it."""
    end = summaries.day(asof)
    first = _first_month(end)
    per = summary
    if per is None:
        per = summaries.by_period(transactions, end, start=first, anonymous=True, source=SOURCE)
    anonymous = per["customer_id"].isna().to_numpy()
    known = per[~anonymous]
    if customers is not None and "is_member" in customers.columns:
        members = customers.loc[customers["is_member"].astype(bool), "customer_id"].astype("str")
        member = summaries.is_in(known["customer_id"], members)
    else:
        member = pd.Series(True, index=known.index)
    grouped = known.assign(
        buyers=known["orders"] > 0, member_orders=known["orders"].where(member, 0)
    ).groupby("period")
    out = grouped.agg(
        buyers=("buyers", "sum"),
        orders=("orders", "sum"),
        revenue=("revenue", "sum"),
        member_orders=("member_orders", "sum"),
    )
    months = pd.date_range(first, end, freq="MS")
    out = out.reindex(months, fill_value=0)
    out["anonymous_orders"] = (
        per[anonymous].groupby("period")["orders"].sum().reindex(months, fill_value=0)
    )
    out["frequency"] = out["orders"] / out["buyers"].where(out["buyers"] > 0)
    out["ticket"] = out["revenue"] / out["orders"].where(out["orders"] > 0)
    every = out["orders"] + out["anonymous_orders"]
    out["member_share"] = out["member_orders"] / every.where(every > 0)
    out.index.name = "month"
    return out.drop(columns="member_orders")


def churn_screen(transactions, asof, *, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """The churn screen (定期筛检): customers per churn level (:func:`rfm.churn_severity`) now
    and :data:`SCREEN_DAYS` days before, the change, and this quarter's revenue per level.
    Columns ``before, now, change, revenue_now``, indexed by level (none, light, medium, heavy).
    ``summary``: the check's shared summary (:func:`_windows`), else two are made."""
    end = summaries.day(asof)
    screen = end - pd.Timedelta(days=SCREEN_DAYS)
    if summary is None:
        now = rfm.churn_severity(transactions, end)
        before = rfm.churn_severity(transactions, screen)
    else:
        both = {"now": "now", "prev": "prev"}
        now = _view(summary, {k: f"churn_{v}" for k, v in both.items()})
        before = _view(summary, {k: f"screen_{v}" for k, v in both.items()}, whole="screen")
        now = rfm.churn_from_summary(now[now["orders"] > 0], end)
        before = rfm.churn_from_summary(before[before["orders"] > 0], screen)
    levels = list(rfm.CHURN_LEVELS)
    out = pd.DataFrame(
        {
            "before": before["severity"].value_counts().reindex(levels, fill_value=0),
            "now": now["severity"].value_counts().reindex(levels, fill_value=0),
        }
    )
    out["change"] = out["now"] - out["before"]
    revenue = now.groupby("severity", observed=False)["revenue_now"].sum()
    out["revenue_now"] = revenue.reindex(levels, fill_value=0.0).astype(float)
    out.index.name = "level"
    out.attrs = {"before": end - pd.Timedelta(days=SCREEN_DAYS), "now": end}
    return out


def _compared(transactions, start: pd.Timestamp, end: pd.Timestamp):
    """The period this month is compared with: the same days a year before when the data reach
    back that far, else the month before."""
    year = (start - pd.DateOffset(years=1), end - pd.DateOffset(years=1))
    first = summaries.receipts(transactions, year[0] - pd.Timedelta(days=1))["orders"].sum()
    if first > 0:
        return year
    before_end = start - pd.Timedelta(days=1)
    return (before_end.replace(day=1), before_end)


def summary(health: Health, run_id: str) -> dict:
    """What a run records (``summary.json``) and the ledger keeps: the scorecard in the ledger's
    shape (``target, actual, target_value, status``), the KPI tree, the stores ranked by gap,
    the churn screen and why revenue moved; the cycle is the month (``YYYYMM``)."""
    start, end = health.period

    def records(frame: pd.DataFrame | None, index: str) -> list | None:
        if frame is None:
            return None
        shown = frame.rename_axis(index).reset_index()
        return json.loads(shown.to_json(orient="records", date_format="iso"))

    card = health.scorecard.rename(columns={"kpi": "target"})
    return {
        "campaign": health.plan.campaign,
        "report": "member health",
        "cycle": int(f"{end:%Y%m}"),
        "run_id": run_id,
        "asof": str(end.date()),
        "period": {"start": str(start.date()), "end": str(end.date())},
        "by": health.by,
        "stores_shown": health.stores is not None,
        "scorecard": json.loads(card.to_json(orient="records")),
        "tree": json.loads(health.tree.drop(columns="term").to_json(orient="columns")),
        "anonymous_orders": health.anonymous_orders,
        "stores": records(health.stores, health.by),
        "churn": records(health.churn, "level"),
        "revenue_change": {
            "before": [str(d.date()) for d in health.compared],
            "after": [str(start.date()), str(end.date())],
            "total": health.moves.attrs["total"],
            "by_tier": records(health.moves, "tier"),
        },
    }


def write(health: Health, folder: str | Path, run_id: str, *, plan_path=None) -> Path:
    """Record a run in ``folder``: ``summary.json`` (:func:`summary`); returns its path."""
    record = summary(health, run_id)
    if plan_path is not None:
        record["plan_path"] = str(Path(plan_path).resolve())
    path = Path(folder) / SUMMARY_FILE
    path.write_text(json.dumps(record, indent=2, default=str, allow_nan=False))
    return path
