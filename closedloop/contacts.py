"""React (CIDR): who to contact this week, why, and through which channel (联络管理).

The method's lifecycle model is Contact → Identify → Data → **React** (method.md §4, §7, §9):
contacts driven by CRM data, each of a type — **onboarding** (the day 0 / 3 / 7 / 15 / 30 / 60 /
90 / 150 touches after joining), **greeting** (birthday, join anniversary), **win-back** (light,
medium and heavy churn, each its own offer), **reminder** (points about to expire), **upgrade**
(close to the next tier) and **opportunity** (bought X before; the next best offer of the
basket rules). :func:`contact_list` turns transactions, customers and an optional points ledger
into one row per customer × contact with the reason in words, a priority, the suggested channel
and the evidence; :func:`write_contacts` writes one file per channel for the SCRM to import.

**The rules** are a table, :data:`RULES` (like :data:`closedloop.rfm.SEGMENTS`): one row per
trigger with its ``type``, ``priority`` (1 first), ``days`` (the trigger's window, where it has
one), ``channels`` (the channels it may use, strongest first) and ``offer`` text. Pass a copy
with other priorities, offers or channels, or without a row to switch that trigger off; the
``rule`` names must be among :data:`TRIGGERS`.

**The week.** The list is drawn at the end of the ``asof`` day (the data is complete to then)
for the week of ``week_days`` days starting that day, as :func:`closedloop.kpi.touches_due`
counts: a touch, a birthday or an anniversary falling on any of those days is due on it; the
other contacts are due on the first day.

**Channels.** The method ranks dialogue channels by conversion strength: one-to-one (WeCom) >
group > official account / app > SMS (:data:`CHANNELS`). A customer is reachable on a channel
when the customers table says so (``reach_wecom, reach_group, reach_app, reach_sms``, booleans;
a missing column: nobody there). The suggested channel is the strongest reachable one among the
rule's channels; a customer reachable on none of them gets no row (counted in ``dropped``).

**Order.** Candidates are ranked by priority, then by the rule's score (the upgrade rule: chance
of reaching the next tier × contribution; churn: how far orders or spend fell between the two periods; otherwise none), then by id.
Per customer and type only the first is kept (de-duplication by priority), then at most ``cap``
contacts per customer in the week. Customers in ``exclude`` (the next cycle's holdout) are left
out before anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop import audiences, basket, kpi, points, rfm, summaries
from closedloop._frames import require, to_pandas
from closedloop.errors import DataError

__all__ = [
    "CHANNELS",
    "COLUMNS",
    "EVIDENCE",
    "EXPORT_COLUMNS",
    "NO_TIER",
    "RULES",
    "TRIGGERS",
    "TYPES",
    "WEEK_DAYS",
    "ContactList",
    "contact_list",
    "counts",
    "exclusion_ids",
    "file_names",
    "top_reasons",
    "write_contacts",
]

#: contact channels by conversion strength (method.md §2): one-to-one > group > app > SMS
CHANNELS = ("wecom", "group", "app", "sms")
#: the contact types (CIDR React) with the method's terms
TYPES = {
    "onboarding": "新客跟进",
    "greeting": "问候",
    "reminder": "提醒",
    "win-back": "挽回",
    "upgrade": "升级",
    "opportunity": "商机",
}
#: the length of the week a list covers
WEEK_DAYS = 7
_ALL = " ".join(CHANNELS)

#: The rule table: one row per trigger, replaceable (see the module docstring).
RULES = pd.DataFrame(
    [
        ("onboarding", "onboarding", 1, None, _ALL, "welcome series: this step's message"),
        ("birthday", "greeting", 2, None, _ALL, "birthday gift: double points all week"),
        (
            "points_expiring",
            "reminder",
            3,
            30,
            _ALL,
            "use your points before they expire: redeem in store or in the app",
        ),
        ("winback_light", "win-back", 4, None, _ALL, "we miss you: 5 yuan off the next order"),
        ("winback_medium", "win-back", 5, None, _ALL, "10 yuan off an order over 50, 14 days"),
        (
            "winback_heavy",
            "win-back",
            6,
            None,
            _ALL,
            "personal call: 20 yuan off and free delivery; ask what went wrong",
        ),
        ("upgrade", "upgrade", 7, 30, _ALL, "bonus points on the next two orders"),
        ("anniversary", "greeting", 8, None, _ALL, "member anniversary thank-you coupon"),
        ("audience", "opportunity", 9, None, _ALL, "news and an offer on what they bought"),
        ("next_best_offer", "opportunity", 10, 30, _ALL, "a coupon for"),
    ],
    columns=["rule", "type", "priority", "days", "channels", "offer"],
).astype({"days": "Int64"})
#: the triggers a rule table may name
TRIGGERS = tuple(RULES["rule"])
#: the evidence columns every row carries
EVIDENCE = ["member_tier", "churn_level", "points_balance", "points_expiring", "days_since_join"]
#: the columns of :attr:`ContactList.rows`
COLUMNS = [
    "customer_id",
    "type",
    "rule",
    "reason",
    "priority",
    "channel",
    "due_date",
    "offer",
    "score",
    *EVIDENCE,
]
#: the columns of the exported files, in order (stable: an SCRM import maps them once)
EXPORT_COLUMNS = ["customer_id", "type", "reason", "priority", "channel", "due_date", "offer"]


@dataclass(frozen=True)
class ContactList:
    """This week's contacts.

    ``rows``: one row per customer × contact (:data:`COLUMNS`), by priority; ``candidates``: every
    contact a rule proposed before de-duplication and the cap, with ``channel`` (None when the
    customer is reachable on none of the rule's channels); ``summary``: rows by type × channel
    (with totals); ``dropped``: how many were left out and why (``excluded`` customers,
    ``unreachable`` customers, ``no_channel`` candidates, ``duplicate`` same-type candidates,
    ``over_cap`` candidates beyond the weekly cap); ``notes``: rules that could not run."""

    rows: pd.DataFrame
    candidates: pd.DataFrame
    summary: pd.DataFrame
    dropped: pd.Series
    notes: tuple[str, ...] = ()


def contact_list(
    transactions,
    customers,
    asof,
    *,
    points_ledger=None,
    items=None,
    basket_rules: pd.DataFrame | None = None,
    audience: Mapping[str, Iterable] | None = None,
    exclude=None,
    cap: int = 1,
    rules: pd.DataFrame = RULES,
    expiry: str = "rolling",
    week_days: int = WEEK_DAYS,
) -> ContactList:
    """Who to contact in the week from ``asof``, why, and through which channel.

    ``transactions``: any frame :mod:`closedloop.summaries` takes. ``customers``: ``customer_id``,
    ``join_date`` (onboarding, anniversary, days since join), optional ``birthday``,
    ``is_member`` and the reachability flags ``reach_<channel>``. ``points_ledger``: the points
    ledger (:mod:`closedloop.points`, ``expiry`` its rule). ``items`` and ``basket_rules``
    (:func:`closedloop.basket.rules`): order lines and the rules for the next best offer.
    ``audience``: named audiences, ``{"bought Bright milk in the last 30 days": ids}`` (e.g. from
    :func:`closedloop.audiences.bought`); the name is the reason. ``exclude``: customer ids (a
    Series, a frame with ``customer_id``, a list) never contacted: the next cycle's holdout.

    The triggers (:data:`RULES`): ``onboarding`` — :func:`closedloop.kpi.touches_due` in the
    week; ``birthday`` / ``anniversary`` — the day falls in the week (a 29 February on 28
    February in other years; anniversaries from the first); ``winback_<level>`` —
    :func:`closedloop.rfm.churn_severity` at that level; ``upgrade`` —
    :func:`closedloop.rfm.upgrade_candidates` on the last 365 days' spend, scored by chance ×
    contribution where chance = min(1, spend at their own pace over ``days`` days / gap) and
    contribution = that spend; ``points_expiring`` — points expiring within ``days`` days
    (:func:`closedloop.points.balances`); ``audience`` — in a named audience;
    ``next_best_offer`` — bought within ``days`` days the antecedents of a basket rule with
    lift > 1, offered its consequent, rules ranked by confidence (as
    :func:`closedloop.basket.recommend`).
    """
    if int(cap) != cap or cap < 1:
        raise DataError("contact_list", f"cap must be a whole number >= 1, not {cap}")
    if int(week_days) != week_days or week_days < 1:
        raise DataError("contact_list", f"week_days must be a whole number >= 1, not {week_days}")
    table = _check_rules(rules)
    day = summaries.day(asof)
    cust = _customers(customers, day)
    excluded = exclusion_ids(exclude)
    out = _among(cust.index, excluded)
    n_excluded = int(out.sum())
    cust = cust[~out]
    notes: list[str] = []
    evidence, facts = _evidence(transactions, cust, day, points_ledger, table, expiry, notes)

    parts = []
    for spec in table.itertuples(index=False):
        found = _trigger(
            spec,
            transactions,
            cust,
            day,
            week_days,
            facts,
            evidence,
            notes,
            items,
            basket_rules,
            audience,
        )
        if found is None or found.empty:
            continue
        found = found[_among(found["customer_id"], cust.index)]
        parts.append(
            found.assign(
                rule=spec.rule,
                type=spec.type,
                priority=int(spec.priority),
                offer=found.get("offer", spec.offer),
                _channels=spec.channels,
            )
        )
    columns = ["customer_id", "type", "rule", "reason", "priority", "due_date", "offer", "score"]
    if parts:
        cand = pd.concat(parts, ignore_index=True)
    else:
        cand = pd.DataFrame({c: pd.Series(dtype="object") for c in [*columns, "_channels"]})
    if "score" not in cand:
        cand["score"] = np.nan
    cand["score"] = cand["score"].astype("float64")
    cand["due_date"] = pd.to_datetime(cand["due_date"]).astype("datetime64[ns]")
    cand["priority"] = cand["priority"].astype("int64")
    cand["channel"] = _channel(cand, cust)
    cand = cand.drop(columns="_channels")
    cand = cand.join(evidence, on="customer_id")
    cand = cand.sort_values(
        ["priority", "score", "due_date", "customer_id"],
        ascending=[True, False, True, True],
        na_position="last",
        kind="stable",
        ignore_index=True,
    )
    reach = cust[[f"reach_{c}" for c in CHANNELS]].any(axis=1)
    unreachable = int((~reach.reindex(cand["customer_id"].unique()).fillna(False)).sum())
    usable = cand[cand["channel"].notna()]
    deduped = usable.drop_duplicates(["customer_id", "type"], keep="first")
    capped = deduped[deduped.groupby("customer_id").cumcount() < cap]
    rows = capped[COLUMNS].reset_index(drop=True)
    dropped = pd.Series(
        {
            "excluded": n_excluded,
            "unreachable": unreachable,
            "no_channel": len(cand) - len(usable),
            "duplicate": len(usable) - len(deduped),
            "over_cap": len(deduped) - len(capped),
        },
        name="dropped",
    )
    return ContactList(
        rows=rows,
        candidates=cand[[*COLUMNS]].reset_index(drop=True),
        summary=_summary(rows),
        dropped=dropped,
        notes=tuple(notes),
    )


#: the tier of a customer with no purchase in the last 365 days (no tier to rank by)
NO_TIER = "no purchase in 12 months"


def counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Contacts by type × member tier (rows: types in :data:`TYPES` order, tiers in
    :data:`closedloop.rfm.MEMBER_TIERS` order, only the pairs that occur) × channel (columns,
    :data:`CHANNELS` and ``total``), with a ``total`` row: what the week asks of each channel."""
    tier = rows["member_tier"].astype("object")
    tier = tier.where(tier.notna() & (tier != "nan"), NO_TIER)
    frame = pd.DataFrame(
        {
            "type": pd.Categorical(rows["type"], categories=list(TYPES)),
            "tier": pd.Categorical(tier, categories=[*rfm.MEMBER_TIERS, NO_TIER]),
            "channel": pd.Categorical(rows["channel"], categories=list(CHANNELS)),
        }
    )
    table = frame.groupby(["type", "tier", "channel"], observed=True).size()
    table = table.unstack("channel", fill_value=0).reindex(columns=list(CHANNELS), fill_value=0)
    table["total"] = table.sum(axis=1)
    table = table.reset_index().astype({"type": "object", "tier": "object"})
    total = pd.DataFrame([{"type": "total", "tier": "", **table[[*CHANNELS, "total"]].sum()}])
    out = pd.concat([table, total], ignore_index=True)
    out.columns.name = None
    return out.astype({c: "int64" for c in [*CHANNELS, "total"]})


def top_reasons(rows: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` rules behind most contacts: ``rule, type, contacts, share`` and ``example``,
    the reason of the rule's first contact in the list's order (its strongest case)."""
    if rows.empty:
        return pd.DataFrame(columns=["rule", "type", "contacts", "share", "example"])
    grouped = rows.groupby("rule", sort=False)
    table = grouped.agg(
        type=("type", "first"),
        contacts=("customer_id", "size"),
        priority=("priority", "first"),
        example=("reason", "first"),
    ).reset_index()
    table["share"] = table["contacts"] / len(rows)
    table = table.sort_values(["contacts", "priority"], ascending=[False, True], kind="stable")
    return table[["rule", "type", "contacts", "share", "example"]].head(n).reset_index(drop=True)


def exclusion_ids(exclude) -> pd.Index:
    """The ids of ``exclude`` (None, a Series, an Index, a list or a frame with ``customer_id``)
    as text."""
    if exclude is None:
        return pd.Index([], dtype="str")
    if not isinstance(exclude, pd.Series | pd.Index | list | tuple | set | np.ndarray):
        frame = to_pandas(exclude, "exclude", ("customer_id",))
        exclude = frame["customer_id"]
    return pd.Index(pd.Series(list(exclude), dtype="object").dropna().astype("str").unique())


def file_names(parquet: bool = True) -> list[str]:
    """The files :func:`write_contacts` writes, in order."""
    names = []
    for channel in CHANNELS:
        names += [f"contacts_{channel}.csv"] + ([f"contacts_{channel}.parquet"] if parquet else [])
    return [*names, "contacts_summary.csv"]


def write_contacts(contacts: ContactList, out, *, parquet: bool = True) -> list[Path]:
    """One file per channel, ``contacts_<channel>.csv`` (and ``.parquet``), with
    :data:`EXPORT_COLUMNS` in that order, dates as ISO days; plus ``contacts_summary.csv``.
    A channel with no contact still gets its (empty) file, so an import job finds it."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    rows = contacts.rows[EXPORT_COLUMNS].copy()
    rows["due_date"] = rows["due_date"].dt.strftime("%Y-%m-%d")
    for channel in CHANNELS:
        part = rows[rows["channel"] == channel].reset_index(drop=True)
        path = folder / f"contacts_{channel}.csv"  # as file_names() lists them
        part.to_csv(path, index=False, lineterminator="\n")
        written.append(path)
        if parquet:
            part.astype({"priority": "int64"}).to_parquet(path.with_suffix(".parquet"), index=False)
            written.append(path.with_suffix(".parquet"))
    summary = folder / "contacts_summary.csv"
    contacts.summary.to_csv(summary, lineterminator="\n")
    written.append(summary)
    return written


# ---------------------------------------------------------------------------------------------
# The pieces


def _check_rules(rules: pd.DataFrame) -> pd.DataFrame:
    require(rules, ("rule", "type", "priority", "channels", "offer"), "contact rules")
    unknown = sorted(set(rules["rule"]) - set(TRIGGERS))
    if unknown:
        raise DataError(
            "contact rules",
            f"unknown rule(s) {', '.join(unknown)}; known: {', '.join(TRIGGERS)}",
            column="rule",
        )
    bad = [c for cs in rules["channels"] for c in str(cs).split() if c not in CHANNELS]
    if bad:
        raise DataError(
            "contact rules",
            f"unknown channel(s) {', '.join(sorted(set(bad)))}; known: {', '.join(CHANNELS)}",
            column="channels",
        )
    table = rules.copy()
    if "days" not in table:
        table["days"] = pd.NA
    return table.sort_values("priority", kind="stable")


def _customers(customers, day) -> pd.DataFrame:
    cust = to_pandas(customers, "contact_list customers", ("customer_id",)).copy()
    cust["customer_id"] = cust["customer_id"].astype("str")
    cust = cust.drop_duplicates("customer_id").set_index("customer_id")
    for column in ("join_date", "birthday"):
        if column in cust:
            cust[column] = pd.to_datetime(cust[column]).dt.normalize().astype("datetime64[ns]")
    if "join_date" in cust:
        cust = cust[cust["join_date"].isna() | (cust["join_date"] <= day)]  # known by asof
    for channel in CHANNELS:
        column = f"reach_{channel}"
        cust[column] = cust[column].fillna(False).astype(bool) if column in cust else False
    return cust


def _evidence(transactions, cust, day, ledger, table, expiry, notes):
    """The evidence per known customer, and the tables the triggers read."""
    year = rfm.rfm_table(transactions, day, period_days=365)
    tiers = rfm.member_tiers(year)
    churn = rfm.churn_severity(transactions, day)
    evidence = pd.DataFrame(index=cust.index)
    evidence["member_tier"] = tiers.astype("str").reindex(cust.index)
    evidence["churn_level"] = churn["severity"].astype("str").reindex(cust.index)
    facts = {"rfm": year, "churn": churn}
    if ledger is not None:
        days = table.loc[table["rule"] == "points_expiring", "days"]
        window = int(days.iloc[0]) if len(days) and pd.notna(days.iloc[0]) else 30
        held = points.balances(ledger, day, expiry, expiring_days=window)
        facts["points"] = held
        evidence["points_balance"] = held["balance"].reindex(cust.index)
        evidence["points_expiring"] = held["expiring"].reindex(cust.index)
    else:
        evidence["points_balance"] = np.nan
        evidence["points_expiring"] = np.nan
        if "points_expiring" in set(table["rule"]):
            notes.append("points_expiring: no points ledger given")
    if "join_date" in cust:
        evidence["days_since_join"] = (day - cust["join_date"]).dt.days.astype("Int64")
    else:
        evidence["days_since_join"] = pd.array([pd.NA] * len(cust), dtype="Int64")
    evidence.index.name = "customer_id"
    return evidence, facts


def _trigger(
    spec, transactions, cust, day, week_days, facts, evidence, notes, items, basket_rules, audience
):
    rule = spec.rule
    days = None if pd.isna(spec.days) else int(spec.days)
    if rule == "onboarding":
        if "join_date" not in cust:
            notes.append("onboarding: customers have no join_date")
            return None
        due = kpi.touches_due(cust.reset_index(), day, horizon_days=week_days)
        n = len(kpi.TOUCH_DAYS)
        step = {d: k + 1 for k, d in enumerate(sorted(kpi.TOUCH_DAYS))}
        reason = [
            f"onboarding touch {step.get(t, '?')} of {n}: day {t} after joining on {j:%Y-%m-%d}"
            for t, j in zip(due["touch_day"], due["join_date"], strict=True)
        ]
        return due.assign(reason=reason)[["customer_id", "due_date", "reason"]]
    if rule in ("birthday", "anniversary"):
        column = "birthday" if rule == "birthday" else "join_date"
        if column not in cust:
            notes.append(f"{rule}: customers have no {column}")
            return None
        return _dates_in_week(cust[column], day, week_days, rule)
    if rule.startswith("winback_"):
        level = rule.removeprefix("winback_")
        churn = facts["churn"]
        hit = churn[churn["severity"].astype("str") == level]
        reason = [
            f"{level} churn: no purchase in the last two periods, {r} days since the last one"
            if gone
            else f"{level} churn: orders {p} → {q} and spend {a:,.0f} → {b:,.0f} against the"
            f" previous period; {r} days since the last purchase"
            for r, gone, p, q, a, b in zip(
                hit["recency_days"],
                hit["lapsed_before"],
                hit["orders_prev"],
                hit["orders_now"],
                hit["revenue_prev"],
                hit["revenue_now"],
                strict=True,
            )
        ]
        return pd.DataFrame(
            {
                "customer_id": hit.index,
                "due_date": day,
                "reason": reason,
                "score": hit["fall"].fillna(1.0).to_numpy(),
            }
        )
    if rule == "upgrade":
        year = facts["rfm"]
        up = rfm.upgrade_candidates(year)
        horizon = days or 30
        pace = up["value"] / 365 * horizon
        chance = np.minimum(1.0, pace / up["gap"].where(up["gap"] > 0, np.nan)).fillna(1.0)
        reason = [
            f"{t} member {gap:,.2f} short of {n} ({share:.0%} of the {th:,.2f} threshold);"
            f" {c:.0%} chance in {horizon} days at their pace"
            for t, n, gap, share, th, c in zip(
                up["member_tier"],
                up["next_tier"],
                up["gap"],
                up["gap_share"],
                up["threshold"],
                chance,
                strict=True,
            )
        ]
        return pd.DataFrame(
            {
                "customer_id": up.index,
                "due_date": day,
                "reason": reason,
                "score": (chance * up["value"]).to_numpy(),
            }
        )
    if rule == "points_expiring":
        if "points" not in facts:
            return None
        held = facts["points"]
        hit = held[held["expiring"] > 0]
        reason = [
            f"{e:,.0f} points expire by {by:%Y-%m-%d} (balance {b:,.0f})"
            for e, by, b in zip(hit["expiring"], hit["expiring_by"], hit["balance"], strict=True)
        ]
        return pd.DataFrame(
            {
                "customer_id": hit.index,
                "due_date": day,
                "reason": reason,
                "score": hit["expiring"].to_numpy(),
            }
        )
    if rule == "audience":
        if not audience:
            return None
        parts = [
            pd.DataFrame({"customer_id": exclusion_ids(list(ids)), "reason": str(name)})
            for name, ids in audience.items()
        ]
        return pd.concat(parts, ignore_index=True).assign(due_date=day)
    if rule == "next_best_offer":
        if items is None or basket_rules is None:
            notes.append("next_best_offer: needs items and basket_rules")
            return None
        return _next_best_offer(transactions, items, basket_rules, day, days or 30, spec.offer)
    return None  # pragma: no cover - _check_rules admits only the triggers above


def _dates_in_week(dates: pd.Series, day, week_days: int, rule: str) -> pd.DataFrame:
    """Customers whose birthday / join anniversary falls in the week: the day it falls on."""
    month = dates.dt.month.to_numpy()
    mday = dates.dt.day.to_numpy()
    due = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[ns]")
    for k in range(week_days):
        date = day + pd.Timedelta(days=k)
        leap = date.is_leap_year
        on = (month == date.month) & (mday == date.day)
        if date.month == 2 and date.day == 28 and not leap:
            on |= (month == 2) & (mday == 29)
        if rule == "anniversary":
            on &= dates.dt.year.to_numpy() < date.year
        on &= np.isnat(due)
        due[on] = np.datetime64(date.to_datetime64())
    hit = ~np.isnat(due)
    origin = dates.to_numpy()[hit]
    when = pd.DatetimeIndex(due[hit])
    if rule == "birthday":
        reason = [f"birthday on {d:%Y-%m-%d}" for d in when]
    else:
        years = when.year - pd.DatetimeIndex(origin).year
        reason = [
            f"member anniversary on {d:%Y-%m-%d}: {y} year{'s' if y > 1 else ''} since joining"
            f" on {j:%Y-%m-%d}"
            for d, y, j in zip(when, years, pd.DatetimeIndex(origin), strict=True)
        ]
    return pd.DataFrame({"customer_id": dates.index[hit], "due_date": when, "reason": reason})


def _next_best_offer(transactions, items, rules_frame, day, days, offer) -> pd.DataFrame:
    """The best basket rule for what each customer bought within ``days`` days: antecedents
    held, consequents not, lift above :data:`closedloop.basket.MIN_LIFT`, ranked by confidence,
    lift, support and the rules' own order (as :func:`closedloop.basket.recommend`)."""
    require(rules_frame, ("antecedents", "consequents", "confidence", "lift", "support"), "rules")
    usable = rules_frame[rules_frame["lift"] > basket.MIN_LIFT].reset_index(drop=True)
    held = audiences.purchased(transactions, day, items=items, by="item", days=days)
    if usable.empty or held.empty:
        return None
    usable = usable.assign(_rule=np.arange(len(usable)))
    ante = usable[["_rule", "antecedents"]].assign(
        n=usable["antecedents"].map(len), item=usable["antecedents"].map(sorted)
    )
    ante = ante.explode("item")
    match = held[["customer_id", "item"]].merge(ante[["_rule", "item", "n"]], on="item")
    count = match.groupby(["customer_id", "_rule"]).agg(k=("item", "size"), n=("n", "first"))
    pairs = count[count["k"] == count["n"]].reset_index()[["customer_id", "_rule"]]
    cons = usable[["_rule", "consequents"]].assign(item=usable["consequents"].map(sorted))
    cons = cons.explode("item")
    owned = pairs.merge(cons[["_rule", "item"]], on="_rule").merge(
        held[["customer_id", "item"]], on=["customer_id", "item"]
    )
    bad = pd.MultiIndex.from_frame(owned[["customer_id", "_rule"]].drop_duplicates())
    pairs = pairs[~pd.MultiIndex.from_frame(pairs).isin(bad)]
    pairs = pairs.merge(usable, on="_rule")
    pairs = pairs.sort_values(
        ["customer_id", "confidence", "lift", "support", "_rule"],
        ascending=[True, False, False, False, True],
        kind="stable",
    ).drop_duplicates("customer_id")
    what = pairs["consequents"].map(lambda s: ", ".join(sorted(s)))
    since = day - pd.Timedelta(days=days - 1)
    reason = [
        f"bought {', '.join(sorted(a))} since {since:%Y-%m-%d}; {c:.0%} of baskets with it also"
        f" hold {w} (lift {lift:.1f})"
        for a, c, w, lift in zip(
            pairs["antecedents"], pairs["confidence"], what, pairs["lift"], strict=True
        )
    ]
    return pd.DataFrame(
        {
            "customer_id": pairs["customer_id"].to_numpy(),
            "due_date": day,
            "reason": reason,
            "offer": (offer + " " + what).to_numpy(),
            "score": pairs["confidence"].to_numpy(),
        }
    )


def _among(values, ids: pd.Index) -> np.ndarray:
    """Which ``values`` are in the unique ``ids`` (a hash lookup; ``isin`` on Arrow strings
    compares in Python)."""
    return pd.Index(ids.astype("object")).get_indexer(pd.Index(values).astype("object")) >= 0


def _channel(cand: pd.DataFrame, cust: pd.DataFrame) -> pd.Series:
    """The strongest channel of each candidate's rule on which the customer is reachable."""
    out = pd.Series(None, index=cand.index, dtype="object")
    reach = cust[[f"reach_{c}" for c in CHANNELS]]
    flags = reach.reindex(cand["customer_id"]).fillna(False).to_numpy(dtype=bool)
    for allowed in cand["_channels"].unique():
        mine = (cand["_channels"] == allowed).to_numpy()
        for channel in reversed([c for c in str(allowed).split() if c in CHANNELS]):
            on = mine & flags[:, CHANNELS.index(channel)]
            out[on] = channel
    return out


def _summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Contacts by type (rows, in :data:`TYPES` order) × channel (columns), with totals."""
    table = pd.crosstab(
        pd.Categorical(rows["type"], categories=list(TYPES)),
        pd.Categorical(rows["channel"], categories=list(CHANNELS)),
        margins=True,
        margins_name="total",
        dropna=False,
    )
    table.index.name, table.columns.name = "type", "channel"
    return table.astype("int64")
