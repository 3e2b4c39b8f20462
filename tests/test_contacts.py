"""This week's contacts on the demo: each rule selects exactly the customers its definition does
(computed here again in plain pandas), the holdout is never contacted, the cap holds, channels
are reachable and strongest first, and every reason states its evidence."""

from __future__ import annotations

import re
import unicodedata
from collections import deque

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from closedloop import audiences, basket, contacts, glossary, kpi
from closedloop.cli import main
from closedloop.datasets import make_demo, write_demo
from closedloop.errors import DataError

ASOF = pd.Timestamp("2026-03-31")
WEEK = [ASOF + pd.Timedelta(days=k) for k in range(7)]


@pytest.fixture(scope="module")
def demo():
    return make_demo(seed=0, n_customers=3_000)


@pytest.fixture(scope="module")
def inputs(demo):
    rules = basket.rules(demo.items[["order_id", "item"]], 0.01, 0.2)
    milk = audiences.bought(
        demo.transactions, ASOF, items=demo.items, brand="Bright", item=None, days=30
    )
    holdout = demo.assignments.loc[demo.assignments["arm"] == "control", "customer_id"]
    return {
        "points_ledger": demo.points,
        "items": demo.items,
        "basket_rules": rules,
        "audience": {"bought Bright in the last 30 days": milk},
        "exclude": holdout,
    }


@pytest.fixture(scope="module")
def week(demo, inputs):
    return contacts.contact_list(demo.transactions, demo.customers, ASOF, **inputs)


def known(demo, inputs) -> set:
    c = demo.customers
    ok = c["join_date"].isna() | (c["join_date"] <= ASOF)
    return set(c.loc[ok, "customer_id"]) - set(inputs["exclude"])


def selected(week, rule) -> set:
    return set(week.candidates.loc[week.candidates["rule"] == rule, "customer_id"])


def test_onboarding_and_greetings(demo, inputs, week):
    c = demo.customers.set_index("customer_id").loc[sorted(known(demo, inputs))]
    age = (ASOF - c["join_date"]).dt.days
    due = pd.Series(False, index=c.index)
    for touch in (0, 3, 7, 15, 30, 60, 90, 150):
        due |= (touch - age >= 0) & (touch - age <= 6)
    assert selected(week, "onboarding") == set(c.index[due & c["is_member"]])
    days = {d.strftime("%m-%d") for d in WEEK}
    born = c["birthday"].dt.strftime("%m-%d").isin(days)
    assert selected(week, "birthday") == set(c.index[born])
    joined = c["join_date"].dt.strftime("%m-%d").isin(days) & (c["join_date"].dt.year < 2026)
    assert selected(week, "anniversary") == set(c.index[joined])


def churn_levels(tx: pd.DataFrame) -> pd.Series:
    """rfm.churn_severity's two-period definition, in plain pandas (the demo has one row per
    order): the fall in orders or spend from the previous 90 days to the last 90 days."""
    tx = tx[tx["order_date"] < ASOF + pd.Timedelta(days=1)]
    last = tx.groupby("customer_id")["order_date"].max()
    now_start, prev_start = ASOF - pd.Timedelta(days=89), ASOF - pd.Timedelta(days=179)
    now = tx[tx["order_date"] >= now_start].groupby("customer_id")["amount"]
    prev = tx[(tx["order_date"] >= prev_start) & (tx["order_date"] < now_start)].groupby(
        "customer_id"
    )["amount"]
    n_now, r_now = (
        now.size().reindex(last.index, fill_value=0),
        now.sum().reindex(last.index, fill_value=0),
    )
    n_prev, r_prev = (
        prev.size().reindex(last.index, fill_value=0),
        prev.sum().reindex(last.index, fill_value=0),
    )
    orders_fall = (1 - n_now / n_prev).clip(lower=0)
    revenue_fall = (1 - r_now / r_prev.where(r_prev > 0)).clip(0, 1)
    fall = np.fmax(orders_fall, revenue_fall).where(n_prev > 0)
    level = pd.Series("none", index=last.index)
    level[fall >= 0.25] = "light"
    level[fall >= 0.5] = "medium"
    level[fall >= 1.0] = "heavy"
    level[(n_prev == 0) & (n_now == 0)] = "heavy"  # lapsed before the previous period
    return level


def test_win_back_by_level(demo, inputs, week):
    levels = churn_levels(demo.transactions)
    mine = known(demo, inputs)
    for level in ("light", "medium", "heavy"):
        expected = set(levels.index[levels == level]) & mine
        assert selected(week, f"winback_{level}") == expected, level


def test_upgrade_candidates(demo, inputs, week):
    tx = demo.transactions
    year = tx[(tx["order_date"] >= ASOF - pd.Timedelta(days=364))]
    value = year.groupby("customer_id")["amount"].sum().round(6)
    ranked = value.reset_index().sort_values(["amount", "customer_id"], ascending=[False, True])
    n = len(ranked)
    rank = np.arange(1, n + 1)
    ranked["tier"] = np.select([rank <= int(0.05 * n), rank <= int(0.20 * n)], [0, 1], 2)
    threshold = ranked.groupby("tier")["amount"].min()
    nxt = ranked[ranked["tier"] > 0]
    need = threshold.reindex(nxt["tier"] - 1).to_numpy()
    close = nxt[need - nxt["amount"].to_numpy() <= 0.2 * need]
    assert selected(week, "upgrade") == set(close["customer_id"]) & known(demo, inputs)
    # ranked by chance x contribution: scores fall down the list
    up = week.candidates[week.candidates["rule"] == "upgrade"]
    assert up["score"].is_monotonic_decreasing


def expiring_by_hand(ledger: pd.DataFrame, days: int = 30) -> dict:
    """FIFO with the rolling rule, event by event: points expiring within ``days`` days."""
    out = {}
    ledger = ledger[ledger["kind"] != "expire"].assign(day=ledger["date"].dt.normalize())
    ledger = ledger[ledger["day"] <= ASOF].sort_values(["customer_id", "day", "kind"])
    for cid, events in ledger.groupby("customer_id"):
        lots = deque()  # [last day, points]
        for day, kind, pts in zip(events["day"], events["kind"], events["points"], strict=True):
            while lots and lots[0][0] < day:
                lots.popleft()
            if kind == "earn":
                lots.append([day + pd.Timedelta(days=364), pts])
            else:
                while pts > 0:
                    use = min(pts, lots[0][1])
                    lots[0][1] -= use
                    pts -= use
                    if lots[0][1] == 0:
                        lots.popleft()
        soon = sum(p for last, p in lots if ASOF <= last < ASOF + pd.Timedelta(days=days))
        if soon > 0:
            out[cid] = soon
    return out


def test_points_reminders(demo, inputs, week):
    expected = expiring_by_hand(demo.points)
    mine = known(demo, inputs)
    assert selected(week, "points_expiring") == set(expected) & mine
    rows = week.candidates[week.candidates["rule"] == "points_expiring"].set_index("customer_id")
    assert (rows["points_expiring"] == pd.Series(expected).reindex(rows.index)).all()


def test_opportunities(demo, inputs, week):
    audience = next(iter(inputs["audience"].values()))
    assert selected(week, "audience") == set(audience) & known(demo, inputs)
    # the next best offer is basket.recommend's first offer for the items bought in 30 days
    held = audiences.purchased(demo.transactions, ASOF, items=demo.items, days=30)
    expected = {}
    for cid, items in held.groupby("customer_id")["item"]:
        best = basket.recommend(inputs["basket_rules"], list(items), k=1)
        if len(best):
            expected[cid] = best["offer"].iloc[0]
    rows = week.candidates[week.candidates["rule"] == "next_best_offer"].set_index("customer_id")
    assert set(rows.index) == set(expected) & known(demo, inputs)
    got = rows["offer"].str.removeprefix("a coupon for ")
    assert got.to_dict() == {k: v for k, v in expected.items() if k in rows.index}


def test_holdout_cap_and_channels(demo, inputs, week):
    holdout = set(inputs["exclude"])
    assert not holdout & set(week.candidates["customer_id"])
    assert week.dropped["excluded"] == len(holdout & set(demo.customers["customer_id"]))
    rows = week.rows
    assert rows.groupby("customer_id").size().max() == 1
    reach = demo.customers.set_index("customer_id")[[f"reach_{c}" for c in contacts.CHANNELS]]
    flags = reach.loc[rows["customer_id"]].to_numpy()
    strongest = np.array(contacts.CHANNELS)[flags.argmax(axis=1)]
    assert flags.any(axis=1).all()
    assert (rows["channel"].to_numpy() == strongest).all()
    # the cap: two a week lets a second type through, never two of one type
    two = contacts.contact_list(demo.transactions, demo.customers, ASOF, cap=2, **inputs)
    assert two.rows.groupby("customer_id").size().max() == 2
    assert not two.rows.duplicated(["customer_id", "type"]).any()
    assert len(two.rows) > len(rows)
    # the first row per customer is the highest priority one
    first = two.rows.sort_values("priority").drop_duplicates("customer_id")
    assert (
        first.set_index("customer_id")["rule"]
        .sort_index()
        .equals(rows.set_index("customer_id")["rule"].sort_index())
    )
    nowhere = set(reach.index[~reach.any(axis=1)])
    assert not nowhere & set(two.rows["customer_id"])
    assert week.dropped["unreachable"] == len(nowhere & set(week.candidates["customer_id"]))
    assert week.summary.loc["total", "total"] == len(rows)


def test_reasons_match_evidence(week):
    rows = week.candidates
    for row in rows.itertuples(index=False):
        if row.rule.startswith("winback_"):
            assert row.reason.startswith(f"{row.churn_level} churn: ")
            assert row.rule == f"winback_{row.churn_level}"
        elif row.rule == "points_expiring":
            assert row.reason.startswith(f"{row.points_expiring:,.0f} points expire by ")
            assert f"(balance {row.points_balance:,.0f})" in row.reason
        elif row.rule == "upgrade":
            assert row.reason.startswith(f"{row.member_tier} member ")
        elif row.rule == "onboarding":
            joined = ASOF - pd.Timedelta(days=int(row.days_since_join))
            touch = (row.due_date - joined).days
            assert f"day {touch} after joining on {joined:%Y-%m-%d}" in row.reason
        elif row.rule == "birthday":
            assert row.reason == f"birthday on {row.due_date:%Y-%m-%d}"
        elif row.rule == "anniversary":
            assert row.reason.startswith(f"member anniversary on {row.due_date:%Y-%m-%d}")
            years = (row.days_since_join + (row.due_date - ASOF).days) // 365
            assert f"{years} year" in row.reason
        assert WEEK[0] <= row.due_date <= WEEK[-1]


def test_rule_table_is_replaceable(demo, inputs):
    only = contacts.RULES[contacts.RULES["rule"].isin(["winback_heavy", "birthday"])].copy()
    only["channels"] = "sms"
    week = contacts.contact_list(demo.transactions, demo.customers, ASOF, rules=only, **inputs)
    assert set(week.rows["rule"]) <= {"winback_heavy", "birthday"}
    assert set(week.rows["channel"]) == {"sms"}
    bad = contacts.RULES.assign(rule="lottery")
    with pytest.raises(DataError, match="unknown rule"):
        contacts.contact_list(demo.transactions, demo.customers, ASOF, rules=bad)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"), seed=1, n_customers=1_000)


def test_cli_writes_one_file_per_channel(demo_folder, tmp_path, capsys):
    data = demo_folder
    out = tmp_path / "contacts"
    assert main(["contacts", "--data", str(data), "--asof", "2026-03-31", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "win-back" in printed and "total" in printed
    for channel in contacts.CHANNELS:
        frame = pd.read_csv(out / f"contacts_{channel}.csv")
        assert list(frame.columns) == contacts.EXPORT_COLUMNS
        assert (frame["channel"] == channel).all()
        parquet = pd.read_parquet(out / f"contacts_{channel}.parquet")
        assert list(parquet.columns) == contacts.EXPORT_COLUMNS and len(parquet) == len(frame)


def test_every_rule_selects_someone_on_the_demo(week):
    counts = week.candidates["rule"].value_counts()
    assert set(counts.index) == set(contacts.TRIGGERS), counts
    assert set(week.rows["type"]) == set(contacts.TYPES)


def test_the_files_written_are_the_ones_named_and_read_back_as_written(week, tmp_path):
    written = contacts.write_contacts(week, tmp_path)
    assert [p.name for p in written] == contacts.file_names()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(contacts.file_names())
    frames = [pd.read_csv(tmp_path / f"contacts_{c}.csv", dtype=str) for c in contacts.CHANNELS]
    back = pd.concat(frames, ignore_index=True)
    assert len(back) == len(week.rows)
    # reasons hold commas ("bought cheese, tortillas ..."): quoted, they come back whole
    assert back["reason"].str.contains(",").any()
    mine = week.rows.assign(due_date=week.rows["due_date"].dt.strftime("%Y-%m-%d"))
    key = ["customer_id", "type"]
    got = back.sort_values(key).reset_index(drop=True)
    want = mine[contacts.EXPORT_COLUMNS].astype(str).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_reasons_match_per_row_formatting():
    """The reasons built once per distinct value are the ones a format per row gives."""
    rng = np.random.default_rng(7)
    n = 3000
    touch = pd.Series(rng.choice(kpi.TOUCH_DAYS, n))
    join = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"))
    steps = {d: k + 1 for k, d in enumerate(sorted(kpi.TOUCH_DAYS))}
    expected = [
        f"onboarding touch {steps[t]} of {len(kpi.TOUCH_DAYS)}: day {t} after joining on"
        f" {j:%Y-%m-%d}"
        for t, j in zip(touch, join, strict=True)
    ]
    assert contacts._onboarding_reasons(touch, join).to_pylist() == expected

    when = pd.DatetimeIndex(
        pd.Timestamp("2026-03-01") + pd.to_timedelta(rng.integers(0, 7, n), "D")
    )
    joined = pd.DatetimeIndex(join)
    expected = [
        f"member anniversary on {d:%Y-%m-%d}: {d.year - j.year} year"
        f"{'s' if d.year - j.year > 1 else ''} since joining on {j:%Y-%m-%d}"
        for d, j in zip(when, joined, strict=True)
    ]
    assert contacts._anniversary_reasons(when, joined).to_pylist() == expected

    up = pd.DataFrame(
        {
            "member_tier": pd.Categorical(rng.choice(["silver", "gold"], n)),
            "next_tier": rng.choice(["gold", "platinum"], n),
            "gap": np.where(
                rng.random(n) < 0.5, np.round(rng.exponential(300, n)), rng.exponential(300, n)
            ),
            "gap_share": rng.random(n),
            "threshold": rng.choice([1500.0, 4999.995, 12000.5], n),
        }
    )
    chance = np.where(rng.random(n) < 0.2, 1.0, rng.random(n))
    expected = [
        f"{t} member {gap:,.2f} short of {nx} ({share:.0%} of the {th:,.2f} threshold);"
        f" {c:.0%} chance in 30 days at their pace"
        for t, nx, gap, share, th, c in zip(
            up["member_tier"],
            up["next_tier"],
            up["gap"],
            up["gap_share"],
            up["threshold"],
            chance,
            strict=True,
        )
    ]
    assert contacts._upgrade_reasons(up, chance, 30).to_pylist() == expected

    prev, now = rng.integers(0, 9, n), rng.integers(0, 9, n)
    spend_prev, spend_now = rng.exponential(500, n) + 0.5, rng.exponential(200, n)
    days = rng.integers(0, 400, n)
    expected = [
        f"heavy churn: orders {a} → {b} and spend {round(x):,.0f} → {round(y):,.0f} against the"
        f" previous period; {d} days since the last purchase"
        for a, b, x, y, d in zip(
            prev, now, np.rint(spend_prev), np.rint(spend_now), days, strict=True
        )
    ]
    joined_text = contacts._joined(
        "heavy churn: orders ",
        contacts._shown(prev, "d"),
        " → ",
        contacts._shown(now, "d"),
        " and spend ",
        contacts._shown(spend_prev, ",.0f"),
        " → ",
        contacts._shown(spend_now, ",.0f"),
        " against the previous period; ",
        contacts._shown(days, "d"),
        " days since the last purchase",
    )
    assert joined_text.to_pylist() == expected


#: what may not start a CSV cell a spreadsheet opens (OWASP): the test's own statement of the rule
FORMULA_FIRST = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _as_spreadsheet_safe(value: str) -> str:
    risky = value.startswith(("\t", "\r", "\n")) or value.lstrip(" \t\u00a0\u3000").startswith(
        FORMULA_FIRST
    )
    if risky and not re.fullmatch(r" *[+-]?\d+(\.\d+)?", value):
        return "'" + value
    return value


def test_formulas_behind_blanks_and_in_full_width_are_neutralised():
    """A formula behind leading spaces or tabs, in full-width characters (which a CJK-locale
    spreadsheet reads as ``=``) or after a line feed is quoted as well; numbers, ids with leading
    zeros, markup and text with ``=`` inside are left as they are."""
    values = [
        "\uff1dHYPERLINK(1)",
        " =1+1",
        "  @SUM(A1)",
        "\u3000=1",
        "\u00a0+1+1",
        " \t=1",
        "\n=1",
        "\uff0bcmd",
        "\uff0d1",
        "\uff20SUM(A1)",
        "-1e5",
        "-",
        "-42",
        " -12",
        "+3.5",
        "0012",
        "<script>alert(1)</script>",
        "a=b",
        "1 =1",
        None,
    ]
    got = contacts.spreadsheet_safe(pa.array(values)).to_pylist()
    assert got == [None if v is None else _as_spreadsheet_safe(v) for v in values]
    assert got[:12] == ["'" + v for v in values[:12]]
    assert got[12:] == values[12:]
    # each alone too: the first-byte screen lets every formula through to the regular expression
    assert [contacts.spreadsheet_safe(pa.array([v])).to_pylist()[0] for v in values] == got
    # text held as large_string (as pandas keeps it) is quoted alike
    assert contacts.spreadsheet_safe(pa.array(values, pa.large_string())).to_pylist() == got


def test_formula_cells_are_neutralised_in_the_csv_files_only(tmp_path):
    """Hostile ids, audience names (the reason) and offers are written to the CSV files with a
    quote first; plain negative numbers and the priority column are left alone; the Parquet
    files keep the raw values."""
    hostile = [
        "=1+2",
        "+86 21 5555",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=cmd",
        "\r=cmd",
        "=cmd|' /C calc'!A0",
    ]
    harmless = ["-42", "+7", "C001", "a=b", "12-3"]
    ids = hostile + harmless
    customers = pd.DataFrame(
        {"customer_id": ids, "join_date": pd.Timestamp("2020-01-05"), "reach_sms": True}
    )
    tx = pd.DataFrame(
        {"customer_id": ids, "order_date": ASOF - pd.Timedelta(days=3), "amount": 10.0}
    )
    name = '=HYPERLINK("http://example.com/x","click")'
    rules = contacts.RULES[contacts.RULES["rule"] == "audience"].assign(offer="-5 yuan off")
    week = contacts.contact_list(tx, customers, ASOF, rules=rules, audience={name: ids})
    assert sorted(week.rows["customer_id"]) == sorted(ids)
    contacts.write_contacts(week, tmp_path)

    back = pd.read_csv(
        tmp_path / "contacts_sms.csv", dtype={"customer_id": str}, keep_default_na=False
    )
    raw = week.rows.set_index("customer_id")
    back = back.set_index("customer_id")
    assert sorted(back.index) == sorted(_as_spreadsheet_safe(i) for i in ids)
    for i in ids:
        row = back.loc[_as_spreadsheet_safe(i)]
        assert row["reason"] == "'" + name and row["offer"] == "'-5 yuan off"
        assert row["priority"] == raw.loc[i, "priority"]
    assert {i for i in harmless} <= set(back.index)  # plain numbers and text left as they are
    assert not set(hostile) & set(back.index)
    assert back["priority"].dtype == "int64" and back["due_date"].str.match(r"\d{4}-").all()

    parquet = pd.read_parquet(tmp_path / "contacts_sms.parquet")
    assert sorted(parquet["customer_id"]) == sorted(ids)  # Parquet: the raw values
    assert set(parquet["reason"]) == {name} and set(parquet["offer"]) == {"-5 yuan off"}


def test_reasons_and_offers_in_chinese(demo, inputs, week):
    """In Chinese the same contacts, every reason worded in Chinese: nothing English is left but
    the names the data gives (item names, the audience's name)."""
    zh = contacts.contact_list(demo.transactions, demo.customers, ASOF, language="zh", **inputs)
    same = [c for c in contacts.COLUMNS if c not in ("reason", "offer")]
    pd.testing.assert_frame_equal(zh.rows[same], week.rows[same])
    names = sorted(set(demo.items["item"]), key=len, reverse=True)
    audience = set(inputs["audience"])
    for row in zh.rows.itertuples():
        if row.rule == "audience":
            assert row.reason in audience
            continue
        text, offer = row.reason, row.offer.replace("App", "")
        if row.rule == "next_best_offer":
            for item in names:
                text, offer = text.replace(item, ""), offer.replace(item, "")
        assert not re.search(r"[A-Za-z]", text), row.reason
        assert not re.search(r"[A-Za-z]", offer), row.offer
    by_rule = zh.rows.drop_duplicates("rule").set_index("rule")["reason"]
    assert by_rule["winback_heavy"].startswith("重度流失：")
    assert by_rule["birthday"].endswith(" 生日")
    for row in zh.rows[zh.rows["rule"] == "points_expiring"].itertuples():
        assert row.reason.startswith(f"{row.points_expiring:,.0f} 积分将于 ")
        assert f"（余额 {row.points_balance:,.0f}）" in row.reason
    with pytest.raises(DataError, match="language"):
        contacts.contact_list(demo.transactions, demo.customers, ASOF, language="fr")


def _display_width(text: str) -> int:
    """Columns a terminal gives ``text``: two for each wide (CJK) character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_cli_prints_what_was_left_out_in_words(demo_folder, tmp_path, capsys, language):
    out = tmp_path / "contacts"
    args = ["contacts", "--data", str(demo_folder), "--asof", "2026-03-31", "--out", str(out)]
    assert main([*args, "--language", language]) == 0
    printed = capsys.readouterr().out
    for code in ("excluded", "unreachable", "no_channel", "duplicate", "over_cap"):
        assert code not in printed
        assert glossary.contact_word(code, language) in printed
    frame = pd.read_csv(out / "contacts_sms.csv")
    winback = frame.loc[frame["type"] == "win-back", "reason"]
    assert len(winback) > 0
    if language == "zh":
        assert "未列入：" in printed and "挽回" in printed and "短信" in printed
        table = printed.splitlines()[1 : 2 + len(contacts.TYPES) + 1]  # header, types, total
        assert table[-1].startswith("合计")
        assert len({_display_width(line) for line in table}) == 1  # columns line up in a terminal
        assert winback.str.contains("流失：").all() and not winback.str.contains("churn").any()
    else:
        assert "left out: " in printed and "win-back" in printed
        assert winback.str.contains(" churn: ").all()


def test_the_summary_is_put_in_id_order_with_the_customers_positions():
    """The engine's buyers sorted by id, each with its customer's position once the left-out
    are gone: by integers when every buyer is a known customer, by the ids otherwise."""
    per = pd.DataFrame(
        {"orders": [1, 2, 0, 3, 4], "_position": [3, 0, 4, 2, 1]},
        index=pd.Index(["d", "a", "e", "c", "b"], dtype="str"),
    )  # e has refunds only: no buyer
    out = np.array([False, True, False, False, False])  # b is in the holdout
    rows, at = contacts._in_id_order(per, out)
    assert rows.columns.tolist() == ["orders"] and rows["orders"].tolist() == [2, 4, 3, 1]
    assert at.tolist() == [0, -1, 1, 2]
    stranger = pd.DataFrame({"orders": [5], "_position": [-1]}, index=pd.Index(["bb"], dtype="str"))
    rows, at = contacts._in_id_order(pd.concat([per, stranger]), out)
    assert rows["orders"].tolist() == [2, 4, 5, 3, 1] and at.tolist() == [0, -1, -1, 1, 2]


def test_the_summary_is_the_crosstab_of_the_rows(week):
    """The summary counted from integer codes is pandas' cross-tabulation of the rows."""
    expected = pd.crosstab(
        pd.Categorical(week.rows["type"], categories=list(contacts.TYPES)),
        pd.Categorical(week.rows["channel"], categories=list(contacts.CHANNELS)),
        margins=True,
        margins_name="total",
        dropna=False,
    ).astype("int64")
    expected.index.name, expected.columns.name = "type", "channel"
    pd.testing.assert_frame_equal(week.summary, expected, check_index_type=False)
    assert week.summary.loc["total", "total"] == len(week.rows)


def test_cli_plan_lists_leave_out_both_holdouts(demo_folder, tmp_path, capsys):
    """``--plan``: the next cycle's lists from the plan's data, as the report gives them; nobody
    in this cycle's holdout, the next one's (the Act step's assignment list) or ``--exclude``."""
    from closedloop import pdca

    plan, out = demo_folder / "plan.yaml", tmp_path / "plan-contacts"
    assigned = pd.read_csv(demo_folder / "assignments.csv", dtype=str)
    extra = assigned.loc[assigned["arm"] != "control", ["customer_id"]].head(50)
    extra.to_csv(tmp_path / "extra.csv", index=False)
    args = ["contacts", "--plan", str(plan), "--asof", "2026-03-31", "--out", str(out)]
    assert main([*args, "--exclude", str(tmp_path / "extra.csv")]) == 0
    listed = pd.concat(
        pd.read_csv(out / f"contacts_{c}.csv", dtype=str) for c in contacts.CHANNELS
    )["customer_id"]
    check, next_plan = pdca.run_check(plan, "2026-03-31")
    holdouts = set(assigned.loc[assigned["arm"] == "control", "customer_id"])
    if next_plan.status == "ready":  # a next cycle to run: its holdout is drawn already
        upcoming = pdca.next_assignments(check.assignments, next_plan)
        holdouts |= set(upcoming.loc[upcoming["arm"] == next_plan.control, "customer_id"])
    assert len(listed) and not (set(listed) & (holdouts | set(extra["customer_id"])))
    reported = set(check.contacts.week.rows["customer_id"].astype(str))
    assert set(listed) == reported - set(extra["customer_id"])
    capsys.readouterr()
    assert main(["contacts", "--plan", str(tmp_path / "nope.yaml"), "--asof", "2026-03-31"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("closedloop contacts:") and "nope.yaml" in error


def test_earlier_alike_counts_as_pandas_cumcount():
    """The weekly cap's count of a customer's earlier contacts is pandas' cumcount."""
    keys = np.random.default_rng(3).integers(0, 50, 2_000)
    expected = pd.Series(keys).groupby(keys).cumcount().to_numpy()
    assert (contacts._earlier_alike(keys) == expected).all()
    assert contacts._earlier_alike(np.array([], dtype="int64")).tolist() == []
    wide = np.array([2**62, 5, 2**62, 5, -3])  # too wide a range for one integer key
    assert contacts._earlier_alike(wide).tolist() == [0, 0, 1, 1, 0]


def test_ranked_orders_as_one_lexsort():
    """Sorting the candidates a priority at a time gives numpy's lexsort over all of them, with
    runs whose keys are constant or already in order, ties, and priorities out of order."""
    rng = np.random.default_rng(5)
    day = np.datetime64("2026-03-31", "ns")
    for trial in range(400):
        n = int(rng.integers(0, 60))
        priority = rng.integers(1, 5, n)
        priority = np.sort(priority) if trial % 4 else priority
        pos = rng.integers(0, 8, n)
        pos = np.sort(pos) if trial % 3 == 0 else pos
        due = day + rng.integers(0, 1 + trial % 3, n).astype("timedelta64[D]")
        score = -rng.integers(0, 3, n).astype(float)
        score = np.where(rng.random(n) < 0.5, np.inf, score) if trial % 2 else np.full(n, np.inf)
        expected = np.lexsort((pos, due, score, priority))
        assert contacts._ranked((pos, due, score), priority).tolist() == expected.tolist()
