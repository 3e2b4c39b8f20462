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
of reaching the next tier × contribution; churn: how far orders or spend fell between the two
periods; otherwise none), then by id. Per customer and type only the first is kept
(de-duplication by priority), then at most ``cap`` contacts per customer in the week.
Customers in ``exclude`` (the next cycle's holdout) are left out before anything else.
"""

from __future__ import annotations

import functools
import itertools
import os
import string
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from closedloop import audiences, basket, glossary, kpi, points, rfm, summaries
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
    "spreadsheet_safe",
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
        (rule, kind, priority, days, _ALL, glossary.CONTACT_OFFERS[rule][0])
        for rule, kind, priority, days in [
            ("onboarding", "onboarding", 1, None),
            ("birthday", "greeting", 2, None),
            ("points_expiring", "reminder", 3, 30),
            ("winback_light", "win-back", 4, None),
            ("winback_medium", "win-back", 5, None),
            ("winback_heavy", "win-back", 6, None),
            ("upgrade", "upgrade", 7, 30),
            ("anniversary", "greeting", 8, None),
            ("audience", "opportunity", 9, None),
            ("next_best_offer", "opportunity", 10, 30),
        ]
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
    ``over_cap`` candidates beyond the weekly cap); ``notes``: rules that could not run.

    ``export``: the rows' :data:`EXPORT_COLUMNS` as an Arrow table, what :func:`write_contacts`
    writes (text as Arrow ``string``, due days as ISO text).

    ``rows``, ``candidates`` and ``export`` are each built when first read: a list written to
    files needs only ``export``, not the frame of a million rows."""

    make_rows: Callable[[], pd.DataFrame] = field(repr=False)
    make_candidates: Callable[[], pd.DataFrame] = field(repr=False)
    make_export: Callable[[], pa.Table] = field(repr=False)
    summary: pd.DataFrame
    dropped: pd.Series
    notes: tuple[str, ...] = ()

    @functools.cached_property
    def rows(self) -> pd.DataFrame:
        """One row per customer × contact, by priority."""
        return self.make_rows()

    @functools.cached_property
    def candidates(self) -> pd.DataFrame:
        """Every contact a rule proposed, before de-duplication and the cap."""
        return self.make_candidates()

    @functools.cached_property
    def export(self) -> pa.Table:
        """The rows' export columns, as the files hold them."""
        return self.make_export()


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
    language: str = "en",
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

    ``language``: the reasons, and the default rules' offers, in English (``"en"``) or Chinese
    (``"zh"``), worded in :mod:`closedloop.glossary` (``CONTACT_REASONS``, ``CONTACT_OFFERS``).
    """
    if language not in ("en", "zh"):
        raise DataError("contact_list", f"language must be 'en' or 'zh', not {language!r}")
    if int(cap) != cap or cap < 1:
        raise DataError("contact_list", f"cap must be a whole number >= 1, not {cap}")
    if int(week_days) != week_days or week_days < 1:
        raise DataError("contact_list", f"week_days must be a whole number >= 1, not {week_days}")
    table = _check_rules(rules)
    day = summaries.day(asof)
    cust = _customers(customers, day)
    out = _among(cust.index, exclusion_ids(exclude))
    n_excluded = int(out.sum())
    known = cust.index  # the excluded customers too: their purchases count in the tiers
    cust = cust[~out]
    specs = list(table.itertuples(index=False))
    noted: list[list[str]] = [[] for _ in specs]  # each rule's notes, in the table's order

    def run(k: int, facts: dict | None):
        return _trigger(
            specs[k],
            transactions,
            cust,
            day,
            week_days,
            facts,
            noted[k],
            items,
            basket_rules,
            audience,
            language,
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        # the engine's group-by lets go of Python: the calendar rules, which read only the
        # customers, run meanwhile
        bought = pool.submit(_bought, transactions, day, known)
        founds = {k: run(k, None) for k, spec in enumerate(specs) if spec.rule in _CALENDAR}
        per = bought.result()
    notes: list[str] = []
    per, at = _in_id_order(per, out)
    evidence, facts = _evidence(per, at, cust, day, points_ledger, table, expiry, notes)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        # the rules on the summary alone are numpy and Arrow work that lets go of Python: side
        # by side, while the ones that may query the engine run here, one at a time
        jobs = {
            k: pool.submit(run, k, facts)
            for k, spec in enumerate(specs)
            if k not in founds and spec.rule in _ON_SUMMARY
        }
        founds |= {k: run(k, facts) for k in range(len(specs)) if k not in founds | jobs.keys()}
        founds |= {k: job.result() for k, job in jobs.items()}
    notes += [note for mine in noted for note in mine]

    parts, offers = [], []  # offers: the distinct texts, a candidate's ``offer`` its code
    for k, spec in enumerate(specs):
        found = founds[k]
        if found is None:
            continue
        keep = found["_pos"] >= 0  # known customers, not excluded
        if not keep.all():
            found = {name: _pick(values, keep) for name, values in found.items()}
        if "offer" in found:  # one a candidate (the next best offer): its distinct texts
            coded = found["offer"].dictionary_encode()
            found["offer"] = len(offers) + coded.indices.to_numpy().astype("int64")
            offers += coded.dictionary.to_pylist()
        else:  # the rule's own
            offers.append(glossary.contact_offer(spec.rule, spec.offer, language))
            found["offer"] = np.full(int(keep.sum()), len(offers) - 1)
        parts.append({**found, "_rule": np.full(int(keep.sum()), k)})
    empty = {
        name: np.array([], dtype=d) if d != "text" else _texts("", 0) for name, d in _FOUND.items()
    }
    cand = {name: _joined_parts([p[name] for p in parts] or [empty[name]]) for name in _FOUND}
    rule = cand["_rule"]
    priority = table["priority"].to_numpy("int64")[rule]
    score = cand["score"]
    # by priority, score (highest first, none last), due date and id (positions follow the ids)
    order = _ranked(
        (cand["_pos"], cand["due_date"], np.where(np.isnan(score), np.inf, -score)), priority
    )
    # the numbers in that order; the texts are taken once, for the rows the frame shows
    cand = {name: v if name in _TEXTS else v[order] for name, v in cand.items()}
    cand["_order"] = order
    rule, pos = cand["_rule"], cand["_pos"]
    reach = cust[[f"reach_{c}" for c in CHANNELS]].to_numpy(dtype=bool)
    cand["channel"] = _channel(rule, pos, table["channels"].to_numpy(), reach)
    seen = np.zeros(len(cust), dtype=bool)
    seen[pos] = True
    unreachable = int((seen & ~reach.any(axis=1)).sum())
    usable = np.flatnonzero(cand["channel"] >= 0)
    kind = pd.Categorical(table["type"], categories=list(TYPES)).codes.astype("int64")[rule]
    first = ~pd.Series(pos[usable] * (len(TYPES) + 1) + kind[usable]).duplicated().to_numpy()
    deduped = usable[first]
    capped = deduped[_earlier_alike(pos[deduped]) < cap]
    dropped = pd.Series(
        {
            "excluded": n_excluded,
            "unreachable": unreachable,
            "no_channel": len(pos) - len(usable),
            "duplicate": len(usable) - len(deduped),
            "over_cap": len(deduped) - len(capped),
        },
        name="dropped",
    )
    return ContactList(
        make_rows=functools.partial(_frame, cand, capped, table, cust.index, evidence, offers),
        make_candidates=functools.partial(
            _frame, cand, slice(None), table, cust.index, evidence, offers
        ),
        make_export=functools.partial(_export, cand, capped, table, cust.index, offers),
        summary=_summary(kind[capped], cand["channel"][capped]),
        dropped=dropped,
        notes=tuple(notes),
    )


#: what a trigger finds, per candidate: the customer's position, the due day, the reason, the
#: rule's score and the offer (and, once gathered, the rule's row in the table and the offer's
#: code among the distinct offers); numbers are numpy arrays, reasons Arrow text (built and
#: handed to the frame without Python strings)
_FOUND = {
    "_pos": "int64",
    "due_date": "datetime64[ns]",
    "reason": "text",
    "score": "float64",
    "offer": "int64",
    "_rule": "int64",
}
_TEXTS = [name for name, kind in _FOUND.items() if kind == "text"]
_TEXT = pa.large_string()


def _found(pos, due, reason, score=None, offer=None) -> dict:
    """A trigger's candidates as arrays (a single due day, score, reason or offer is
    repeated)."""
    pos = np.asarray(pos, dtype="int64")
    n = len(pos)
    out = {
        "_pos": pos,
        "due_date": np.broadcast_to(np.asarray(due, dtype="datetime64[ns]"), n).copy(),
        "reason": _texts(reason, n),
        "score": np.full(n, np.nan) if score is None else np.asarray(score, dtype="float64"),
    }
    if offer is not None:
        out["offer"] = _texts(offer, n)
    return out


def _texts(values, n: int) -> pa.Array:
    """Text per candidate as an Arrow array: one text repeated ``n`` times, or ``n`` texts."""
    if isinstance(values, str):
        return pa.repeat(pa.scalar(values, _TEXT), n)
    return _arrow(values)


def _pick(values, which):
    """Rows ``which`` (a boolean mask) of a numpy or an Arrow array."""
    return values[which] if isinstance(values, np.ndarray) else values.filter(pa.array(which))


def _joined_parts(parts: list):
    """The triggers' arrays of one field end to end (numpy's or Arrow's)."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return pa.concat_arrays(parts)


def _frame(cand: dict, which, table: pd.DataFrame, ids: pd.Index, evidence, offers: list):
    """Rows ``which`` of the candidates as a frame of :data:`COLUMNS`: ids and evidence from
    the customers' positions, rule, type, channel and offer (among the distinct ``offers``)
    by name, the reason taken by Arrow in the candidates' order (``_order``)."""
    pos, rule = cand["_pos"][which], cand["_rule"][which]
    columns = {
        "customer_id": pd.Series(ids.take(pos).array),
        "type": _picked(table["type"], rule),
        "rule": _picked(table["rule"], rule),
        "reason": _text(cand["reason"].take(cand["_order"][which])),
        "priority": table["priority"].to_numpy("int64")[rule],
        "channel": _picked(CHANNELS, cand["channel"][which]),
        "due_date": cand["due_date"][which],
        "offer": _picked(offers, cand["offer"][which]),
        "score": cand["score"][which],
        **{name: pd.Series(evidence[name].array.take(pos)) for name in evidence.columns},
    }
    # each column as taken: pandas' default would copy the numbers once more into blocks
    return pd.DataFrame({name: columns[name] for name in COLUMNS}, copy=False)


def _export(cand: dict, which, table: pd.DataFrame, ids: pd.Index, offers: list) -> pa.Table:
    """Rows ``which`` of the candidates as :data:`EXPORT_COLUMNS` in an Arrow table, taken as
    :func:`_frame` takes them (the same values), without the evidence or a pandas frame."""
    pos, rule = cand["_pos"][which], cand["_rule"][which]
    due = pa.array(cand["due_date"][which]).cast(pa.date32()).cast(pa.string())
    return pa.table(
        {
            "customer_id": _arrow(ids.take(pos)).cast(pa.string()),
            "type": _taken(table["type"], rule, pa.string()),
            "reason": cand["reason"].take(cand["_order"][which]).cast(pa.string()),
            "priority": pa.array(table["priority"].to_numpy("int64")[rule]),
            "channel": _taken(CHANNELS, cand["channel"][which], pa.string()),
            "due_date": due,
            "offer": _taken(offers, cand["offer"][which], pa.string()),
        }
    )


def _picked(words, codes: np.ndarray) -> pd.Series:
    """Text column of ``words[code]`` per row (missing for -1), taken by Arrow from the few
    words (:func:`_taken`): Arrow text from the start."""
    return pd.Series(_taken(words, codes), dtype="str")


def _taken(words, codes: np.ndarray, kind: pa.DataType = _TEXT) -> pa.Array:
    """``words[code]`` per row (missing for -1) as Arrow text of ``kind``, taken from the few
    words."""
    names = pa.array([str(w) for w in words], kind)
    codes = np.asarray(codes, dtype="int64")
    return pc.take(names, pa.array(codes, mask=codes < 0))


def _text(values: pa.Array) -> pd.Series:
    """Arrow text as a pandas text column (no copy)."""
    return pd.Series(values, dtype="str")


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
    :data:`EXPORT_COLUMNS` in that order, dates as ISO days, text in double quotes; plus
    ``contacts_summary.csv``. A channel with no contact still gets its (empty) file, so an
    import job finds it. Written by Arrow's CSV and Parquet writers (pyarrow), side by side in
    threads (the writers release the GIL).

    The CSV files are opened in spreadsheets: a text cell that would start a formula there
    (``=``, ``+``, ``-``, ``@``, a tab or a carriage return first) is written with a single quote
    before it, OWASP's rule against CSV injection (:func:`spreadsheet_safe`); a cell that is a
    plain number ("-12", "+3.5") is left as it is. The Parquet files keep the values as they
    are."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    table = contacts.export  # the rows' export columns, without the rows' frame
    header = ",".join(EXPORT_COLUMNS) + "\n"
    options = pacsv.WriteOptions(include_header=False)

    def write_csv(part: pa.Table, path: Path) -> None:
        for k, name in enumerate(EXPORT_COLUMNS):
            if pa.types.is_string(part[name].type):
                part = part.set_column(k, name, spreadsheet_safe(part[name]))
        with path.open("wb") as handle:
            handle.write(header.encode())
            pacsv.write_csv(part, handle, options)

    def write_channel(channel: str, path: Path) -> list:
        """The channel's rows, filtered once for both of its files, each file in a thread."""
        part = table.filter(pc.equal(table["channel"], channel))
        files = [pool.submit(write_csv, part, path)]
        if parquet:
            files.append(pool.submit(pq.write_table, part, path.with_suffix(".parquet")))
        return files

    # Arrow's filters, checks and writers let go of Python: each file is made in its own thread
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        channels = []
        for channel in CHANNELS:
            path = folder / f"contacts_{channel}.csv"  # as file_names() lists them
            channels.append(pool.submit(write_channel, channel, path))
            written += [path, path.with_suffix(".parquet")] if parquet else [path]
        for files in channels:
            for job in files.result():
                job.result()
    summary = folder / "contacts_summary.csv"
    contacts.summary.to_csv(summary, lineterminator="\n")
    written.append(summary)
    return written


#: what a spreadsheet reads as the start of a formula (OWASP, CSV injection): a control
#: character first, or ``= + - @`` (also their full-width forms, which a CJK-locale Excel
#: reads as the ASCII ones) after any leading blanks (spaces, no-break and ideographic spaces)
_FORMULA_START = r"^([\t\r\n]|[ \t\x{a0}\x{3000}]*[=+\-@\x{ff1d}\x{ff0b}\x{ff0d}\x{ff20}])"
_PLAIN_NUMBER = r"^ *[+-]?[0-9]+(\.[0-9]+)?$"
#: the first bytes (UTF-8) of a value that may start a formula: a control or blank character,
#: ``= + - @``, or the lead byte of a no-break, ideographic or full-width one
_FORMULA_BYTES = [b"\t", b"\r", b"\n", b" ", b"=", b"+", b"-", b"@", b"\xc2", b"\xe3", b"\xef"]


def spreadsheet_safe(values):
    """Text values (an Arrow array) as a CSV cell may hold them for a spreadsheet: a value that
    starts with ``=``, ``+``, ``-``, ``@`` (or their full-width forms ``＝＋－＠``, also after
    leading spaces), a tab, a carriage return or a line feed gets a single quote before it, so
    Excel or an SCRM import shows it as text instead of running it as a formula (OWASP's rule);
    a plain number such as ``-12`` or ``+3.5`` stays as it is. Missing values stay missing."""
    if not _may_start_a_formula(values):
        return values
    risky = pc.match_substring_regex(values, _FORMULA_START)
    if not pc.any(risky).as_py():
        return values
    risky = pc.and_(risky, pc.invert(pc.match_substring_regex(values, _PLAIN_NUMBER)))
    quoted = pc.binary_join_element_wise(
        pa.scalar("'", values.type), values, pa.scalar("", values.type)
    )
    return pc.if_else(risky, quoted, values)


def _may_start_a_formula(values) -> bool:
    """Whether any value's first byte is among :data:`_FORMULA_BYTES`: only such a value can
    match :data:`_FORMULA_START`, and a slice and a hash look-up cost a third of the regular
    expression on every value."""
    kind = pa.large_binary() if pa.types.is_large_string(values.type) else pa.binary()
    first = pc.binary_slice(values.cast(kind), 0, 1)
    return bool(pc.any(pc.is_in(first, value_set=pa.array(_FORMULA_BYTES, kind))).as_py())


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
    """The customers known by ``day``, one row per id (the first), sorted by id."""
    frame = to_pandas(customers, "contact_list customers", ("customer_id",))
    ids = frame["customer_id"].astype("str")
    text = _arrow(ids)
    order = np.arange(len(frame))
    # in order already? Arrow compares neighbours (a missing id: not in order); pandas' check
    # on Arrow text compared Python strings
    if not pc.all(pc.less_equal(text[:-1], text[1:]), skip_nulls=False).as_py():
        order = ids.argsort(kind="stable").to_numpy()
        text = text.take(order)
    keep = np.ones(len(text), dtype=bool)
    keep[1:] = pc.not_equal(text[1:], text[:-1]).to_numpy(zero_copy_only=False)
    if "join_date" in frame:  # known by asof
        joined = pd.to_datetime(frame["join_date"]).dt.normalize().to_numpy()[order]
        keep &= np.isnat(joined) | (joined <= day.to_datetime64())
    # one row per id, sorted (found by position later, no hashing), in one take
    index = pd.Index(pd.array(text.filter(keep), dtype="str"), name="customer_id")
    cust = frame.take(order[keep]).set_axis(index)
    cust = cust.drop(columns="customer_id")
    for column in ("join_date", "birthday"):
        if column in cust:
            cust[column] = pd.to_datetime(cust[column]).dt.normalize().astype("datetime64[ns]")
    for channel in CHANNELS:
        column = f"reach_{channel}"
        cust[column] = cust[column].fillna(False).astype(bool) if column in cust else False
    return cust


#: the rules that read only the customers (no purchase summary)
_CALENDAR = ("onboarding", "birthday", "anniversary")
#: the rules that read only the customers and the purchase summary (no engine query)
_ON_SUMMARY = ("winback_light", "winback_medium", "winback_heavy", "upgrade")


def _bought(transactions, day, known: pd.Index) -> pd.DataFrame:
    """The one pass over the transactions the rules read: per customer, the orders and last
    purchase, the year's orders and spend (tiers, upgrade) and the two churn periods'
    (:func:`closedloop.summaries.per_customer`), with each customer's position among the
    ``known`` ids (sorted), found by the engine's join."""
    windows = {"year": (summaries.period_start(day, 365), None), **rfm.churn_windows(day)}
    return summaries.per_customer(
        transactions,
        day,
        windows=windows,
        source="transactions",
        window_last=False,
        skip=("first_purchase", "revenue"),  # no rule reads them
        sort=False,  # put in id order by :func:`_in_id_order`
        positions=known,
    )


def _in_id_order(per: pd.DataFrame, out: np.ndarray):
    """The buyers of the summary ``per`` (in the engine's order; ``_position`` among all the
    known customers, sorted, the excluded too) sorted by id, as plain columns on a range
    index, and each row's position among the customers not left ``out`` (-1: not there). The
    positions put the rows in id order by integers; only a buyer who is not a known customer
    sends the ids to a text sort. The columns are taken by numpy, the text ids not at all."""
    rows = np.flatnonzero(per["orders"].to_numpy() > 0)  # a refund alone is no purchase
    at = per["_position"].to_numpy()[rows]
    if (at >= 0).all():
        slot = np.full(len(out), -1, dtype="int64")
        slot[at] = np.arange(len(at))
        order = slot[slot >= 0]
    else:
        order = pc.sort_indices(_arrow(per.index[rows])).to_numpy()
    taken = rows[order]
    at = at[order]
    per = pd.DataFrame(
        {c: per[c].to_numpy()[taken] for c in per.columns if c != "_position"}, copy=False
    )
    # a known customer's position once the left-out are gone (the last slot: not known)
    kept, gone = np.append(np.cumsum(~out) - 1, -1), np.append(out, True)
    return per, np.where(gone[at], -1, kept[at])


def _evidence(per, at, cust, day, ledger, table, expiry, notes):
    """The evidence per known customer (in ``cust`` order), and what the triggers read, from
    :func:`_bought`'s summary ``per`` (sorted by id; ``at``: each row's position in ``cust``,
    -1 for none): membership tiers and churn levels."""
    if per.empty:
        raise DataError("transactions", f"no purchases on or before asof {day:%Y-%m-%d}")
    in_year = per["orders_year"].to_numpy() > 0
    # the year's orders and spend: what membership tiers and the upgrade rule read, indexed by
    # the row in ``per`` (sorted by id, so ties rank as by id) to find customers without hashing
    year = pd.DataFrame(
        {
            "frequency": per["orders_year"].to_numpy()[in_year],
            "revenue": per["revenue_year"].to_numpy()[in_year],
        },
        index=pd.Index(np.flatnonzero(in_year), name="customer_id"),
    )
    year.attrs = {"asof": day, "period_days": 365}
    tiers = rfm.member_tiers(year)
    churn = rfm.churn_from_summary(per, day)
    n = len(cust)
    evidence = pd.DataFrame(index=pd.RangeIndex(n))
    evidence["member_tier"] = _words_at(n, at[in_year], tiers)
    evidence["churn_level"] = _words_at(n, at, churn["severity"])
    facts = {"year": year, "churn": churn, "churn_at": at}
    if ledger is not None:
        days = table.loc[table["rule"] == "points_expiring", "days"]
        window = int(days.iloc[0]) if len(days) and pd.notna(days.iloc[0]) else 30
        held = points.balances(ledger, day, expiry, expiring_days=window)
        held_at = _positions(cust.index, held.index)
        facts["points"], facts["points_at"] = held, held_at
        evidence["points_balance"] = _placed(n, held_at, held["balance"].to_numpy(float))
        evidence["points_expiring"] = _placed(n, held_at, held["expiring"].to_numpy(float))
    else:
        evidence["points_balance"] = np.nan
        evidence["points_expiring"] = np.nan
        if "points_expiring" in set(table["rule"]):
            notes.append("points_expiring: no points ledger given")
    if "join_date" in cust:
        evidence["days_since_join"] = (day - cust["join_date"]).dt.days.astype("Int64").to_numpy()
    else:
        evidence["days_since_join"] = pd.array([pd.NA] * n, dtype="Int64")
    return evidence, facts


def _trigger(
    spec, transactions, cust, day, week_days, facts, notes, items, basket_rules, audience, language
):
    """One rule's candidates: ``_pos`` (the customer's position in ``cust``, -1 for a customer
    not there), ``due_date``, ``reason`` (in ``language``) and, where the rule ranks,
    ``score``."""
    rule = spec.rule
    days = None if pd.isna(spec.days) else int(spec.days)
    if rule == "onboarding":
        if "join_date" not in cust:
            notes.append("onboarding: customers have no join_date")
            return None
        # only those who joined recently enough for a touch in the week (the same rows, fewer
        # ids for touches_due to carry)
        age = (day - cust["join_date"]).dt.days.to_numpy()
        near = (age > min(kpi.TOUCH_DAYS) - week_days) & (age <= max(kpi.TOUCH_DAYS))
        by_position = {
            "customer_id": np.flatnonzero(near),
            "join_date": cust["join_date"].to_numpy()[near],
        }
        if "is_member" in cust:
            by_position["is_member"] = cust["is_member"].to_numpy()[near]
        due = kpi.touches_due(pd.DataFrame(by_position), day, horizon_days=week_days)
        reason = _onboarding_reasons(due["touch_day"], due["join_date"], language)
        return _found(due["customer_id"].to_numpy(), due["due_date"], reason)
    if rule in ("birthday", "anniversary"):
        column = "birthday" if rule == "birthday" else "join_date"
        if column not in cust:
            notes.append(f"{rule}: customers have no {column}")
            return None
        return _dates_in_week(cust[column], day, week_days, rule, language)
    if rule.startswith("winback_"):
        level = rule.removeprefix("winback_")
        churn = facts["churn"]
        # the level's rows, the fallen then the lapsed: the order of a rule's candidates does not
        # matter, they are sorted (by priority, score, due day and customer) with the others;
        # only the columns the reasons read are taken, each once, by numpy
        rows = np.flatnonzero((churn["severity"] == level).to_numpy())
        gone = churn["lapsed_before"].to_numpy()[rows]
        fell, lapsed = rows[~gone], rows[gone]

        def column(name, at):
            return churn[name].to_numpy()[at]

        word = glossary.contact_word(rule, language)
        fallen = _fill(
            glossary.contact_reason("winback", language),
            level=word,
            orders_prev=_shown(column("orders_prev", fell), "d"),
            orders_now=_shown(column("orders_now", fell), "d"),
            revenue_prev=_shown(column("revenue_prev", fell), ",.0f"),
            revenue_now=_shown(column("revenue_now", fell), ",.0f"),
            recency=_shown(column("recency_days", fell), "d"),
        )
        lapsed_reason = _fill(
            glossary.contact_reason("winback_lapsed", language),
            level=word,
            recency=_shown(column("recency_days", lapsed), "d"),
        )
        both = np.concatenate([fell, lapsed])
        fall = column("fall", both)
        return _found(
            facts["churn_at"][both],
            day,
            pa.concat_arrays([fallen, lapsed_reason]),
            np.where(np.isnan(fall), 1.0, fall),
        )
    if rule == "upgrade":
        # the rule scores by its own chance: the tier gaps alone, not the Poisson ranking (nor
        # scipy.stats, whose first import costs more than the rule); the order is the list's
        up = rfm.upgrade_candidates(facts["year"], rank="value")
        horizon = days or 30
        pace = up["value"] / 365 * horizon
        chance = np.minimum(1.0, pace / up["gap"].where(up["gap"] > 0, np.nan)).fillna(1.0)
        reason = _upgrade_reasons(up, chance.to_numpy(), horizon, language)
        score = (chance * up["value"]).to_numpy()
        at = facts["churn_at"][up.index.to_numpy()]  # ``year`` is indexed by the row in ``per``
        return _found(at, day, reason, score)
    if rule == "points_expiring":
        if "points" not in facts:
            return None
        held = facts["points"]
        mask = (held["expiring"] > 0).to_numpy()
        hit = held[mask]
        reason = _fill(
            glossary.contact_reason("points_expiring", language),
            points=_shown(hit["expiring"].to_numpy(float), ",.0f"),
            date=_distinct_text(_iso, pd.DatetimeIndex(hit["expiring_by"])),
            balance=_shown(hit["balance"].to_numpy(float), ",.0f"),
        )
        return _found(facts["points_at"][mask], day, reason, hit["expiring"].to_numpy())
    if rule == "audience":
        if not audience:
            return None
        parts = [
            _found(_positions(cust.index, exclusion_ids(list(ids))), day, str(name))
            for name, ids in audience.items()
        ]
        return {name: _joined_parts([p[name] for p in parts]) for name in parts[0]}
    if rule == "next_best_offer":
        if items is None or basket_rules is None:
            notes.append("next_best_offer: needs items and basket_rules")
            return None
        offer = glossary.contact_offer(rule, spec.offer, language)
        found = _next_best_offer(
            transactions, items, basket_rules, day, days or 30, offer, language
        )
        if found is None:
            return None
        return _found(
            _positions(cust.index, found["customer_id"]),
            day,
            found["reason"].to_numpy(object),
            found["score"].to_numpy(),
            found["offer"].to_numpy(object),
        )
    return None  # pragma: no cover - _check_rules admits only the triggers above


def _shown(values: np.ndarray, spec: str) -> pa.Array:
    """``values`` as Arrow text by the format ``spec``, each distinct value formatted once and
    taken by Arrow (a ``.0f`` spec rounds as :func:`numpy.rint` does, so the rounded values
    stand for the originals)."""
    if spec.endswith(".0f"):
        values = np.rint(values)
    distinct, where = np.unique(values, return_inverse=True)
    return pa.array([format(v, spec) for v in distinct.tolist()], _TEXT).take(where.ravel())


def _distinct_text(make, *columns) -> pa.Array:
    """``make(*values)`` for each row of ``columns`` (equal-length indexables: arrays, Series,
    DatetimeIndex), each distinct combination formatted once: contacts share few join dates,
    touch days and due days, so a week's reasons take a few thousand formats, not one a row.
    The texts come back as an Arrow array."""
    n = len(columns[0])
    key = np.zeros(n, dtype="int64")
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        key = key * max(len(uniques), 1) + codes
    if n == 0:
        return pa.array([], _TEXT)
    _, first, where = np.unique(key, return_index=True, return_inverse=True)
    values = [pd.Series(column).iloc[first].tolist() for column in columns]
    texts = pa.array([make(*row) for row in zip(*values, strict=True)], _TEXT)
    return texts.take(where.ravel())


def _iso(date) -> str:
    """A day as ISO text, YYYY-MM-DD."""
    return f"{date:%Y-%m-%d}"


def _fill(template: str, **values) -> pa.Array:
    """``template`` (a :data:`closedloop.glossary.CONTACT_REASONS` text) with each ``{name}``
    filled row by row from ``values`` (arrays of text of one length, or one text), by
    :func:`_joined`."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts += [literal] if literal else []
        parts += [values[name]] if name is not None else []
    return _joined(*parts)


def _joined(*parts) -> pa.Array:
    """Text pieces (fixed strings, or Arrow or object arrays of one length) joined row by row
    into an Arrow array, by Arrow's element-wise join (pyarrow) rather than one Python
    concatenation a row."""
    n = max((len(p) for p in parts if not isinstance(p, str)), default=0)
    if n == 0:
        return pa.array([], _TEXT)
    pieces = [pa.scalar(p, _TEXT) if isinstance(p, str) else _arrow(p) for p in parts]
    return pc.binary_join_element_wise(*pieces, pa.scalar("", _TEXT))


def _onboarding_reasons(touch: pd.Series, join: pd.Series, language: str = "en") -> pa.Array:
    """ "onboarding touch k of n: day t after joining on YYYY-MM-DD", per touch due."""
    n = len(kpi.TOUCH_DAYS)
    step = {d: k + 1 for k, d in enumerate(sorted(kpi.TOUCH_DAYS))}
    template = glossary.contact_reason("onboarding", language)
    return _distinct_text(
        lambda t, j: template.format(step=step.get(t, "?"), n=n, day=t, joined=_iso(j)),
        touch,
        pd.DatetimeIndex(join),
    )


def _anniversary_reasons(
    when: pd.DatetimeIndex, joined: pd.DatetimeIndex, language: str = "en"
) -> pa.Array:
    """ "member anniversary on D: y year(s) since joining on J", per anniversary due."""

    def make(d, j):
        y = d.year - j.year
        template = glossary.contact_reason("anniversaries" if y > 1 else "anniversary", language)
        return template.format(date=_iso(d), years=y, joined=_iso(j))

    return _distinct_text(make, when, joined)


def _upgrade_reasons(
    up: pd.DataFrame, chance: np.ndarray, horizon: int, language: str = "en"
) -> pa.Array:
    """ "<tier> member <gap> short of <next> (<share> of the <threshold> threshold); <chance>
    chance in <horizon> days at their pace", each number formatted once per distinct value."""
    word = lambda v: glossary.contact_word(str(v), language)  # noqa: E731
    tier = lambda column: _distinct_text(word, up[column].astype("object").to_numpy(object))  # noqa: E731
    return _fill(
        glossary.contact_reason("upgrade", language),
        tier=tier("member_tier"),
        gap=_shown(up["gap"].to_numpy(float), ",.2f"),
        next=tier("next_tier"),
        share=_shown(up["gap_share"].to_numpy(float), ".0%"),
        threshold=_shown(up["threshold"].to_numpy(float), ",.2f"),
        chance=_shown(np.asarray(chance, dtype=float), ".0%"),
        days=str(horizon),
    )


def _positions(ids: pd.Index, values) -> np.ndarray:
    """Where each of ``values`` is in the unique ``ids`` (-1: not there), by Arrow's hash
    lookup (pandas' on Arrow strings compares in Python)."""
    return (
        pc.index_in(_arrow(values), value_set=_arrow(ids))
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype("int64")
    )


def _words_at(n: int, at: np.ndarray, values: pd.Series) -> pd.Series:
    """A categorical's values put at positions ``at`` of a text column of ``n`` (missing
    elsewhere; -1 left out), taken by Arrow from the categories' codes."""
    codes = np.full(n, -1, dtype="int64")
    known = at >= 0
    codes[at[known]] = values.cat.codes.to_numpy()[known]
    names = pa.array(values.cat.categories.astype("str").to_numpy(object), pa.large_string())
    return pd.Series(pc.take(names, pa.array(codes, mask=codes < 0)), dtype="str")


def _placed(n: int, at: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Numbers put at positions ``at`` of an array of ``n`` (NaN elsewhere; -1 left out)."""
    out = np.full(n, np.nan)
    known = at >= 0
    out[at[known]] = values[known]
    return out


def _arrow(values) -> pa.Array:
    """Text ids or words as an Arrow array (no copy when they are Arrow already; numpy's
    object arrays converted by Arrow in one pass, NaN as missing, not through pandas)."""
    if isinstance(values, pa.Array):
        return values if values.type == _TEXT else values.cast(_TEXT)
    if isinstance(values, pd.Series | pd.Index):
        values = values.array
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        values = values.to_numpy()
    if isinstance(values, np.ndarray) and values.dtype == object:
        return pa.array(values, pa.large_string(), from_pandas=True)
    found = pa.array(values)
    if isinstance(found, pa.ChunkedArray):
        found = found.combine_chunks()
    return found if found.type == pa.large_string() else found.cast(pa.large_string())


def _dates_in_week(dates: pd.Series, day, week_days: int, rule: str, language: str):
    """Customers whose birthday / join anniversary falls in the week (their positions in
    ``dates``): the day it falls on."""
    month = dates.dt.month.to_numpy()
    mday = dates.dt.day.to_numpy()
    year = dates.dt.year.to_numpy() if rule == "anniversary" else None
    due = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[ns]")
    for k in range(week_days):
        date = day + pd.Timedelta(days=k)
        leap = date.is_leap_year
        on = (month == date.month) & (mday == date.day)
        if date.month == 2 and date.day == 28 and not leap:
            on |= (month == 2) & (mday == 29)
        if rule == "anniversary":
            on &= year < date.year
        on &= np.isnat(due)
        due[on] = np.datetime64(date.to_datetime64())
    hit = ~np.isnat(due)
    origin = dates.to_numpy()[hit]
    when = pd.DatetimeIndex(due[hit])
    if rule == "birthday":
        template = glossary.contact_reason("birthday", language)
        reason = _distinct_text(lambda d: template.format(date=_iso(d)), when)
    else:
        reason = _anniversary_reasons(when, pd.DatetimeIndex(origin), language)
    return _found(np.flatnonzero(hit), when, reason)


def _next_best_offer(transactions, items, rules_frame, day, days, offer, language):
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
    template = glossary.contact_reason("next_best_offer", language)
    reason = [
        template.format(
            items=", ".join(sorted(a)),
            since=_iso(since),
            confidence=f"{c:.0%}",
            offer=w,
            lift=f"{lift:.1f}",
        )
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
    """Which ``values`` are in the unique ``ids``."""
    return pc.is_in(_arrow(values), value_set=_arrow(ids)).to_numpy(zero_copy_only=False)


def _ranked(keys: tuple, priority: np.ndarray) -> np.ndarray:
    """The order of :func:`numpy.lexsort` ``(*keys, priority)``, found a priority at a time: the
    rules' candidates come in the table's order of priority, so each priority's run is sorted
    alone, on the keys that vary in it (a birthday's all have the same score, a win-back
    level's the same due day; none when the positions come in order), instead of every key
    over all candidates."""
    if len(priority) == 0 or (np.diff(priority) < 0).any():  # sorted as a whole
        return np.lexsort((*keys, priority))
    cuts = [0, *(np.flatnonzero(np.diff(priority)) + 1).tolist(), len(priority)]
    runs = []
    for start, end in itertools.pairwise(cuts):
        varying = [k[start:end] for k in keys if (k[start:end] != k[start]).any()]
        if not varying or (len(varying) == 1 and _rising(varying[0])):
            runs.append(np.arange(start, end))
        else:
            runs.append(start + np.lexsort(varying))
    return np.concatenate(runs)


def _rising(values: np.ndarray) -> bool:
    """Whether ``values`` never decrease (a stable sort would leave them as they are)."""
    return bool((values[1:] >= values[:-1]).all())


def _earlier_alike(keys: np.ndarray) -> np.ndarray:
    """How many earlier elements have each one's key (pandas' ``groupby(keys).cumcount()``), by a
    stable sort of the integer keys instead of a hashed group-by."""
    at = np.arange(len(keys))
    low, span = (int(keys.min()), int(keys.max()) - int(keys.min()) + 1) if len(keys) else (0, 1)
    if span * max(len(keys), 1) < 2**62:  # each key and its place in one unique integer: numpy's
        order = np.argsort((keys - low) * len(keys) + at)  # quick sort orders as a stable one
    else:
        order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = ranked[1:] != ranked[:-1]
    out = np.empty(len(keys), dtype="int64")
    out[order] = at - np.maximum.accumulate(np.where(starts, at, 0))
    return out


def _channel(rule, pos, allowed: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """The strongest channel (its index in :data:`CHANNELS`, -1 for none) among each
    candidate's rule's ``allowed`` channels on which the customer is reachable (``reach``:
    customers × :data:`CHANNELS`)."""
    out = np.full(len(pos), -1, dtype="int64")
    flags = reach[pos]
    for k, names in enumerate(allowed):
        mine = rule == k
        for channel in reversed([c for c in str(names).split() if c in CHANNELS]):
            j = CHANNELS.index(channel)
            out[mine & flags[:, j]] = j
    return out


def _summary(kind: np.ndarray, channel: np.ndarray) -> pd.DataFrame:
    """Contacts by type (rows, in :data:`TYPES` order) × channel (columns), with totals, from
    the rows' codes in :data:`TYPES` and :data:`CHANNELS`: a count of integer codes (numpy),
    not a cross-tabulation of the text."""
    known = (kind >= 0) & (channel >= 0)
    cells = np.bincount(
        kind[known] * len(CHANNELS) + channel[known], minlength=len(TYPES) * len(CHANNELS)
    ).reshape(len(TYPES), len(CHANNELS))
    cells = np.vstack([cells, cells.sum(axis=0)])
    cells = np.hstack([cells, cells.sum(axis=1, keepdims=True)])
    return pd.DataFrame(
        cells.astype("int64"),
        index=pd.Index([*TYPES, "total"], name="type"),
        columns=pd.Index([*CHANNELS, "total"], name="channel"),
    )
