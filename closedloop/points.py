"""The points programme (积分): balances, expiry, activation groups and the programme's cost.

The method (method.md §5, §9): points are issued at about 1 yuan = 1 point and redeemed at about
100 points = 1 yuan; they expire either by the **rolling** rule (一年制: each point lives 365 days)
or by the **calendar** rule (历年制: every point earned in a year expires on 31 December). Members
near a points threshold are the activation targets (三段式激活: 侦测 detect the threshold that moves
behaviour → 重点突破 break through, closest first → 扩大战果 extend the win).

**The ledger** (``points`` table, read by :func:`closedloop.io.read_points`): one row per event,
``customer_id, date, points, kind`` with ``kind`` one of ``earn``, ``redeem``, ``expire`` and
``points`` a positive number of points (the kind gives the direction). A ledger's own ``expire``
rows are the source system's record; the rule recomputes expiry from the earns and redemptions,
so they are never subtracted twice (:func:`balances` reports them beside the computed figure).

**Time.** Dates count whole days, as everywhere in the package (``asof`` is the end of its day).
A point earned on day ``d`` is usable through its **last day**: ``d + 364`` under the rolling rule
(365 days in all), 31 December of ``d``'s year under the calendar rule; it is gone the day after.
On one day, earns come first, then redemptions; expiry happens at the end of the last day.
Redemptions consume the **oldest** live points first (FIFO), and since the last day grows with the
earning day under both rules, expiry also takes the oldest points first.

Functions:

- :func:`last_day` — the last usable day of points earned on given days, by rule;
- :func:`expiries` — the expiry events a rule makes, as ledger rows;
- :func:`balances` — per customer as of a day: earned, redeemed, expired, balance, the points
  expiring within N days and their first last-day;
- :func:`threshold_groups` — A/B/C/D activation groups around a threshold (1500 in the method);
- :func:`programme_cost` — actual cost = redemption value × average cost rate × redemption rate.

The ledger is small next to the transactions (one row per order at most); it is worked in pandas:
cumulative sums, one ``merge_asof`` and a cumulative maximum per customer (no loop over events).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop._frames import require, to_pandas
from closedloop.errors import DataError

__all__ = [
    "ACTIVE_DAYS",
    "CLOSE_BELOW",
    "EXPIRING_DAYS",
    "EXPIRY_RULES",
    "GROUPS",
    "ISSUE_POINTS_PER_YUAN",
    "KINDS",
    "LEDGER_COLUMNS",
    "REDEEM_POINTS_PER_YUAN",
    "ROLLING_DAYS",
    "THRESHOLD",
    "balances",
    "expiries",
    "last_day",
    "programme_cost",
    "threshold_groups",
]

Rule = Literal["rolling", "calendar"]
#: the ledger's columns
LEDGER_COLUMNS = ("customer_id", "date", "points", "kind")
#: the event kinds of the ledger
KINDS = ("earn", "redeem", "expire")
#: the expiry rules: 一年制 (each point lives 365 days) and 历年制 (all expire on 31 December)
EXPIRY_RULES = {"rolling": "一年制", "calendar": "历年制"}
#: a point lives this many days under the rolling rule (its earning day is the first)
ROLLING_DAYS = 365
#: the issue ratio: points per yuan spent (1 yuan = 1 point)
ISSUE_POINTS_PER_YUAN = 1.0
#: the redemption ratio: points per yuan of redemption value (100 points = 1 yuan)
REDEEM_POINTS_PER_YUAN = 100.0
#: "points about to expire": within this many days of asof
EXPIRING_DAYS = 30
#: the method's example threshold, and the band below it that is "close but not there"
THRESHOLD = 1500.0
CLOSE_BELOW = 300.0
#: a member who redeemed within this many days of asof is already active in the programme
ACTIVE_DAYS = 90
#: the activation groups, closest first
GROUPS = {
    "A": "close: below the threshold by at most close_below",
    "B": "above: at or over the threshold, not yet active",
    "C": "active: redeemed within active_days",
    "D": "far: further below the threshold",
}


def last_day(dates, rule: Rule = "rolling") -> pd.Series:
    """The last day on which points earned on ``dates`` can be used (midnight timestamps).

    ``rolling``: the earning day + 364 days (a point lives 365 days, its earning day the first);
    ``calendar``: 31 December of the earning year. The points are gone the day after.
    """
    _check_rule(rule)
    days = pd.Series(pd.to_datetime(dates)).dt.normalize().astype("datetime64[ns]")
    if rule == "rolling":
        return days + pd.Timedelta(days=ROLLING_DAYS - 1)
    ends = pd.to_datetime(days.dt.year.astype("Int64").astype("str") + "-12-31", errors="coerce")
    return ends.astype("datetime64[ns]")


def balances(
    points,
    asof,
    rule: Rule = "rolling",
    *,
    expiring_days: int = EXPIRING_DAYS,
) -> pd.DataFrame:
    """Each customer's points as of the end of the ``asof`` day, expiry by ``rule``.

    ``points``: the ledger (``customer_id, date, points, kind``; see the module docstring), any
    frame :func:`closedloop._frames.to_pandas` takes; events after the ``asof`` day are ignored.
    One row per customer with an event by then, indexed by ``customer_id`` (text, sorted):

    - ``earned``, ``redeemed`` — points earned and redeemed by asof;
    - ``expired`` — points whose last day is before asof and that no redemption used (FIFO);
    - ``balance`` — usable on the asof day: ``earned - redeemed - expired``;
    - ``expiring`` — the points of the balance whose last day falls within ``expiring_days`` days
      from asof (``asof <= last day < asof + expiring_days``) if nothing more is redeemed;
      ``expiring_by`` — the last of those last days (NaT when none expire);
    - ``expired_recorded`` — the ledger's own ``expire`` rows by asof, to compare;
    - ``last_redeemed`` — the day of the latest redemption (NaT: never redeemed).

    A redemption larger than the points usable on its day is a :class:`DataError`.
    """
    _check_rule(rule)
    if int(expiring_days) != expiring_days or expiring_days < 1:
        raise DataError("points", f"expiring_days must be a whole number >= 1, not {expiring_days}")
    day = summaries.day(asof)
    ledger = _ledger(points)
    ledger = ledger[ledger["day"] <= day]
    earn = ledger[ledger["kind"] == "earn"]
    redeem = ledger[ledger["kind"] == "redeem"]
    ids = pd.Index(sorted(ledger["customer_id"].unique()), name="customer_id")

    lots, red = _lots(earn, redeem, rule)
    past = lots[lots["last"] < day]
    expired = past.groupby("customer_id")["cum_expired"].last()
    earned = earn.groupby("customer_id")["points"].sum()
    redeemed = red.groupby("customer_id")["points"].sum()
    out = pd.DataFrame(index=ids)
    out["earned"] = earned.reindex(ids, fill_value=0.0)
    out["redeemed"] = redeemed.reindex(ids, fill_value=0.0)
    out["expired"] = expired.reindex(ids, fill_value=0.0)
    out["balance"] = out["earned"] - out["redeemed"] - out["expired"]
    # what expires within the window if nothing more is redeemed: earned with a last day in it
    # or before, less all redeemed and already expired
    window_end = day + pd.Timedelta(days=int(expiring_days) - 1)
    upto = lots[lots["last"] <= window_end].groupby("customer_id")["cum_earned"].last()
    upto = upto.reindex(ids, fill_value=0.0)
    out["expiring"] = (upto - out["redeemed"] - out["expired"]).clip(lower=0.0)
    out["expiring"] = np.minimum(out["expiring"], out["balance"])
    live = lots[(lots["last"] >= day) & (lots["last"] <= window_end)]
    used = (out["redeemed"] + out["expired"]).reindex(live["customer_id"]).to_numpy()
    live = live[live["cum_earned"].to_numpy() > used]
    out["expiring_by"] = live.groupby("customer_id")["last"].max().reindex(ids)
    out.loc[out["expiring"] <= 0, "expiring_by"] = pd.NaT
    recorded = ledger[ledger["kind"] == "expire"].groupby("customer_id")["points"].sum()
    out["expired_recorded"] = recorded.reindex(ids, fill_value=0.0)
    out["last_redeemed"] = redeem.groupby("customer_id")["day"].max().reindex(ids)
    for column in ("expiring_by", "last_redeemed"):
        out[column] = out[column].astype("datetime64[ns]")
    numbers = ["earned", "redeemed", "expired", "balance", "expiring", "expired_recorded"]
    out[numbers] = out[numbers].astype("float64").round(6)
    return out


def threshold_groups(
    balance,
    threshold: float = THRESHOLD,
    close_below: float = CLOSE_BELOW,
    active=None,
) -> pd.DataFrame:
    """Activation groups A/B/C/D around a points ``threshold`` (侦测 → 重点突破), closest first.

    ``balance``: a Series of points balances by customer, or the frame of :func:`balances`.
    ``active``: which members are already active in the programme — a boolean Series by
    customer, or their ids (e.g. redeemed within :data:`ACTIVE_DAYS` days:
    ``b.index[b["last_redeemed"] > asof - 90 days]``); ``None``: nobody. With the method's
    threshold 1500 and ``close_below`` 300:

    - **A** close — ``threshold - close_below <= balance < threshold`` (1200 to 1499.99): close
      but not there, one purchase away; activate first;
    - **B** above — ``balance >= threshold`` (1500, 2000, ...) and not active: they already hold
      enough; a reminder turns the points into a visit;
    - **C** active — already active (any balance): keep them going;
    - **D** far — ``balance < threshold - close_below`` and not active (1199 and below).

    Returns ``balance, group, gap`` (points short of the threshold, 0 at or above), indexed by
    customer, sorted by group then gap (closest first).
    """
    if close_below < 0:
        raise DataError("threshold_groups", f"close_below must be >= 0, got {close_below}")
    if isinstance(balance, pd.DataFrame):
        require(balance, ("balance",), "threshold_groups")
        balance = balance["balance"]
    values = pd.Series(balance, dtype="float64")
    if isinstance(active, pd.Series) and active.dtype == bool:
        is_active = active.reindex(values.index, fill_value=False).to_numpy()
    elif active is None:
        is_active = np.zeros(len(values), dtype=bool)
    else:
        is_active = values.index.isin(pd.Index(active).astype("str"))
    v = values.to_numpy()
    group = np.select(
        [is_active, v >= threshold, v >= threshold - close_below], ["C", "B", "A"], "D"
    )
    out = pd.DataFrame(
        {
            "balance": v,
            "group": pd.Categorical(group, categories=list(GROUPS), ordered=True),
            "gap": np.maximum(threshold - v, 0.0),
        },
        index=values.index,
    )
    return out.sort_values(["group", "gap"], kind="stable")


def programme_cost(
    issued: float | None = None,
    redeemed: float | None = None,
    *,
    points=None,
    cost_rate: float,
    redemption_rate: float | None = None,
    redeem_points_per_yuan: float = REDEEM_POINTS_PER_YUAN,
    issue_points_per_yuan: float = ISSUE_POINTS_PER_YUAN,
) -> pd.Series:
    """The points programme's actual cost (积分成本), by the method's formula:

    ``cost = redemption value × average cost rate × redemption rate``, where the redemption value
    is the face value of the points issued (``issued / redeem_points_per_yuan`` yuan: 100 points =
    1 yuan), the average cost rate is what one yuan of redeemed value costs the brand (the cost of
    the goods or coupons redeemed, ``cost_rate``) and the redemption rate is the share of issued
    points actually used (``redeemed / issued`` unless given).

    Give ``issued`` and ``redeemed`` (or ``redemption_rate``), or a ``points`` ledger whose earn
    and redeem rows are summed. Returns ``issued, redeemed, redemption_value, cost_rate,
    redemption_rate, cost``, and ``sales`` (what earned the points, ``issued /
    issue_points_per_yuan`` yuan) with ``cost_share_of_sales``.
    """
    if points is not None:
        ledger = _ledger(points)
        issued = float(ledger.loc[ledger["kind"] == "earn", "points"].sum())
        redeemed = float(ledger.loc[ledger["kind"] == "redeem", "points"].sum())
    if issued is None or issued < 0:
        raise DataError("programme_cost", f"issued points must be given and >= 0, got {issued}")
    if not cost_rate >= 0:
        raise DataError("programme_cost", f"cost_rate must be >= 0, got {cost_rate}")
    if redemption_rate is None:
        if redeemed is None:
            raise DataError("programme_cost", "give redeemed points or a redemption_rate")
        redemption_rate = redeemed / issued if issued else 0.0
    if not 0 <= redemption_rate <= 1:
        raise DataError(
            "programme_cost", f"redemption_rate must be in [0, 1], got {redemption_rate}"
        )
    value = issued / redeem_points_per_yuan
    cost = value * cost_rate * redemption_rate
    sales = issued / issue_points_per_yuan
    return pd.Series(
        {
            "issued": float(issued),
            "redeemed": float(issued * redemption_rate if redeemed is None else redeemed),
            "redemption_value": value,
            "cost_rate": float(cost_rate),
            "redemption_rate": float(redemption_rate),
            "cost": cost,
            "sales": sales,
            "cost_share_of_sales": cost / sales if sales else np.nan,
        },
        name="points_programme",
    )


def expiries(points, asof, rule: Rule = "rolling") -> pd.DataFrame:
    """The expiry events the ``rule`` makes by the end of the ``asof`` day, as ledger rows:
    ``customer_id, date`` (the first day without the points: the day after their last day),
    ``points, kind`` (``"expire"``), sorted by date and customer. Their sum per customer is the
    ``expired`` column of :func:`balances`."""
    _check_rule(rule)
    day = summaries.day(asof)
    ledger = _ledger(points)
    ledger = ledger[ledger["day"] <= day]
    lots, _ = _lots(ledger[ledger["kind"] == "earn"], ledger[ledger["kind"] == "redeem"], rule)
    lots = lots[lots["last"] < day]
    step = lots["cum_expired"] - lots.groupby("customer_id")["cum_expired"].shift(fill_value=0.0)
    out = pd.DataFrame(
        {
            "customer_id": lots["customer_id"].to_numpy(),
            "date": (lots["last"] + pd.Timedelta(days=1)).to_numpy(),
            "points": step.round(6).to_numpy(),
            "kind": "expire",
        }
    )
    out = out[out["points"] > 0]
    return out.sort_values(["date", "customer_id"], kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------------


def _lots(earn: pd.DataFrame, redeem: pd.DataFrame, rule) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The lots (points earned per customer and last day, oldest first) with ``cum_earned``,
    ``cum_redeemed`` (through the last day) and ``cum_expired`` (after it); and the redemptions
    per customer and day with ``cum_redeemed``. Checks that no redemption overdraws."""
    # lots: the points earned per customer and last day, oldest first, with cumulative sums
    earn = earn.assign(last=last_day(earn["day"], rule).to_numpy())
    lots = earn.groupby(["customer_id", "last"], sort=True)["points"].sum().reset_index()
    lots["cum_earned"] = lots.groupby("customer_id")["points"].cumsum()
    red = redeem.groupby(["customer_id", "day"], sort=True)["points"].sum().reset_index()
    red["cum_redeemed"] = red.groupby("customer_id")["points"].cumsum()
    # expiry at the end of each last day X: Exp(X) = max(Exp before, earned with last day <= X
    # - redeemed through X) — a cumulative maximum, since both take the oldest points first
    lots = _redeemed_through(lots, "last", red)
    gone = (lots["cum_earned"] - lots["cum_redeemed"]).clip(lower=0)
    lots["cum_expired"] = gone.groupby(lots["customer_id"]).cummax()
    _check_redemptions(red, earn, lots, rule)

    return lots, red


def _check_rule(rule: str) -> None:
    if rule not in EXPIRY_RULES:
        raise DataError("points", f"rule must be 'rolling' or 'calendar', not {rule!r}")


def _ledger(points) -> pd.DataFrame:
    """The ledger as pandas with text ids, a ``day`` column and checked kinds and points."""
    frame = to_pandas(points, "points", LEDGER_COLUMNS)
    kind = frame["kind"].astype("str").str.strip().str.lower()
    bad = ~kind.isin(KINDS)
    if bad.any():
        raise DataError(
            "points",
            f"kind must be one of {', '.join(KINDS)}",
            column="kind",
            rows=frame[bad.to_numpy()],
            n_bad=int(bad.sum()),
        )
    value = pd.to_numeric(frame["points"], errors="coerce").astype("float64")
    negative = value.isna() | (value < 0)
    if negative.any():
        raise DataError(
            "points",
            "points must be a number >= 0 (the kind gives the direction)",
            column="points",
            rows=frame[negative.to_numpy()],
            n_bad=int(negative.sum()),
        )
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("str").to_numpy(),
            "day": pd.to_datetime(frame["date"]).dt.normalize().astype("datetime64[ns]").to_numpy(),
            "points": value.to_numpy(),
            "kind": kind.to_numpy(),
        }
    )


def _redeemed_through(frame: pd.DataFrame, on: str, red: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``cum_redeemed``: each customer's points redeemed on days up to ``on``."""
    frame = frame.sort_values(on, kind="stable").reset_index(drop=True)
    right = red[["customer_id", "day", "cum_redeemed"]].sort_values("day", kind="stable")
    out = pd.merge_asof(
        frame, right, left_on=on, right_on="day", by="customer_id", direction="backward"
    )
    out["cum_redeemed"] = out["cum_redeemed"].fillna(0.0)
    out = out.drop(columns="day") if on != "day" else out
    return out.sort_values(["customer_id", on], kind="stable").reset_index(drop=True)


def _check_redemptions(red: pd.DataFrame, earn: pd.DataFrame, lots: pd.DataFrame, rule) -> None:
    """No redemption may use more than was usable on its day: earned through it, less earlier
    redemptions and points whose last day is before it."""
    if red.empty:
        return
    earned = earn.groupby(["customer_id", "day"])["points"].sum().reset_index()
    earned["cum_earned"] = earned.groupby("customer_id")["points"].cumsum()
    probe = red[["customer_id", "day", "points", "cum_redeemed"]].sort_values("day")
    probe = pd.merge_asof(
        probe,
        earned[["customer_id", "day", "cum_earned"]].sort_values("day"),
        on="day",
        by="customer_id",
        direction="backward",
    )
    ended = lots[["customer_id", "last", "cum_expired"]].sort_values("last")
    ended = ended.assign(probe=ended["last"] + pd.Timedelta(days=1))
    probe = pd.merge_asof(
        probe,
        ended[["customer_id", "probe", "cum_expired"]],
        left_on="day",
        right_on="probe",
        by="customer_id",
        direction="backward",
    )
    usable = probe["cum_earned"].fillna(0) - (probe["cum_redeemed"] - probe["points"])
    usable -= probe["cum_expired"].fillna(0)
    over = probe["points"] > usable + 1e-9
    if over.any():
        rows = probe.loc[over, ["customer_id", "day", "points"]].assign(usable=usable[over])
        raise DataError(
            "points",
            f"a redemption uses more points than were usable that day ({rule} expiry)",
            column="points",
            rows=rows,
            n_bad=int(over.sum()),
        )
