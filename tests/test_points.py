"""The points programme: balances under both expiry rules, the A/B/C/D groups, the cost formula.

Every figure below is worked by hand from the ledger in the test."""

from __future__ import annotations

import pandas as pd
import pytest

from closedloop import points
from closedloop.errors import DataError
from closedloop.io import read_points

T = pd.Timestamp


def ledger(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "date", "points", "kind"]).assign(
        date=lambda f: pd.to_datetime(f["date"], format="ISO8601")
    )


# a: two lots (1000 on 10 Jan 2025, 500 on 1 Jun 2025); 300 redeemed in March, 800 in December.
#    FIFO: March takes 300 of the first lot; December the other 700 of it and 100 of the second.
# b: 200 on 20 Dec 2024 and 300 on 5 Jan 2025, never redeemed.
LEDGER = ledger(
    ("a", "2025-01-10 09:30", 1000, "earn"),
    ("a", "2025-03-01 12:00", 300, "redeem"),
    ("a", "2025-06-01 18:00", 500, "earn"),
    ("a", "2025-12-01 10:00", 800, "redeem"),
    ("b", "2024-12-20 11:00", 200, "earn"),
    ("b", "2025-01-05 11:00", 300, "earn"),
)


def test_last_day_by_rule():
    days = pd.Series(
        pd.to_datetime(["2025-01-10", "2024-01-01", "2025-12-31 23:59"], format="ISO8601")
    )
    rolling = points.last_day(days, "rolling")
    assert list(rolling) == [T("2026-01-09"), T("2024-12-30"), T("2026-12-30")]
    calendar = points.last_day(days, "calendar")
    assert list(calendar) == [T("2025-12-31"), T("2024-12-31"), T("2025-12-31")]


def test_rolling_balances_by_hand():
    b = points.balances(LEDGER, "2026-01-31", "rolling")
    # a: the first lot (last day 9 Jan 2026) was used up by redemptions, nothing expired;
    #    400 of the second lot (last day 31 May 2026) remain
    assert b.loc["a", ["earned", "redeemed", "expired", "balance"]].tolist() == [
        1500,
        1100,
        0,
        400,
    ]
    assert b.loc["a", "expiring"] == 0 and pd.isna(b.loc["a", "expiring_by"])
    # b: 200 (last day 19 Dec 2025) expired; 300 (last day 4 Jan 2026) expired too
    assert b.loc["b", ["expired", "balance"]].tolist() == [500, 0]
    assert b.loc["a", "last_redeemed"] == T("2025-12-01")
    assert pd.isna(b.loc["b", "last_redeemed"])
    # the last day still counts: on 31 May 2026 the 400 are usable and expire tonight
    may = points.balances(LEDGER, "2026-05-31", "rolling", expiring_days=30)
    assert may.loc["a", ["balance", "expiring"]].tolist() == [400, 400]
    assert may.loc["a", "expiring_by"] == T("2026-05-31")
    june = points.balances(LEDGER, "2026-06-01", "rolling")
    assert june.loc["a", ["expired", "balance", "expiring"]].tolist() == [400, 0, 0]
    # within 30 days of 1 May: 1 May to 30 May, the last day 31 May is outside; 31 days: inside
    assert points.balances(LEDGER, "2026-05-01", "rolling").loc["a", "expiring"] == 0
    assert points.balances(LEDGER, "2026-05-01", expiring_days=31).loc["a", "expiring"] == 400
    early = points.balances(LEDGER, "2025-02-01", "rolling")
    assert early.loc["b", ["balance", "expired"]].tolist() == [500, 0]


def test_calendar_balances_by_hand():
    # a: both lots end on 31 Dec 2025; 1100 were redeemed by then, so 400 expire that night
    dec = points.balances(LEDGER, "2025-12-15", "calendar")
    assert dec.loc["a", ["balance", "expiring"]].tolist() == [400, 400]
    assert dec.loc["a", "expiring_by"] == T("2025-12-31")
    jan = points.balances(LEDGER, "2026-01-31", "calendar")
    assert jan.loc["a", ["earned", "redeemed", "expired", "balance"]].tolist() == [
        1500,
        1100,
        400,
        0,
    ]
    # b: the 200 of December 2024 expired on 31 Dec 2024; the 300 of 2025 on 31 Dec 2025
    feb = points.balances(LEDGER, "2025-02-01", "calendar")
    assert feb.loc["b", ["expired", "balance"]].tolist() == [200, 300]
    assert jan.loc["b", ["expired", "balance"]].tolist() == [500, 0]
    # the same ledger, the other rule: b keeps all 500 in February 2025
    assert points.balances(LEDGER, "2025-02-01", "rolling").loc["b", "balance"] == 500


def test_fifo_redemption_after_partial_expiry():
    # 100 on 1 Mar 2024 (last day 28 Feb 2025), 100 on 1 Jun 2024 (last day 31 May 2025);
    # 50 redeemed on 1 Apr 2025 come from the second lot: the first expired whole
    frame = ledger(
        ("c", "2024-03-01", 100, "earn"),
        ("c", "2024-06-01", 100, "earn"),
        ("c", "2025-04-01", 50, "redeem"),
    )
    b = points.balances(frame, "2025-05-02", "rolling")  # 30 days: 2 to 31 May
    assert b.loc["c", ["expired", "redeemed", "balance", "expiring"]].tolist() == [100, 50, 50, 50]
    assert b.loc["c", "expiring_by"] == T("2025-05-31")


def test_recorded_expiry_is_not_subtracted_twice():
    frame = pd.concat([LEDGER, ledger(("b", "2026-01-05", 300, "expire"))], ignore_index=True)
    b = points.balances(frame, "2026-01-31", "rolling")
    assert b.loc["b", ["expired", "expired_recorded", "balance"]].tolist() == [500, 300, 0]


def test_asof_is_the_end_of_its_day():
    frame = ledger(("d", "2026-03-31 23:59", 80, "earn"), ("d", "2026-04-01 00:00", 20, "earn"))
    assert points.balances(frame, "2026-03-31").loc["d", "balance"] == 80


def test_redeeming_more_than_usable_is_an_error():
    # 100 earned on 1 Jan 2024 last until 30 Dec 2024 (rolling) or 31 Dec 2024 (calendar)
    frame = ledger(("e", "2024-01-01", 100, "earn"), ("e", "2025-01-01", 100, "redeem"))
    for rule in ("rolling", "calendar"):
        with pytest.raises(DataError, match="more points than were usable"):
            points.balances(frame, "2025-02-01", rule)
    ok = ledger(("e", "2024-01-01", 100, "earn"), ("e", "2024-12-30", 100, "redeem"))
    assert points.balances(ok, "2025-02-01", "rolling").loc["e", "balance"] == 0
    with pytest.raises(DataError, match="rolling"):
        points.balances(LEDGER, "2025-02-01", "yearly")


def test_threshold_groups_around_1500():
    balance = pd.Series(
        {"p": 1200.0, "q": 2000.0, "r": 1199.0, "s": 1500.0, "t": 1499.5, "u": 2000.0, "v": 0.0}
    )
    g = points.threshold_groups(balance, threshold=1500, close_below=300, active=["u"])
    assert g["group"].astype(str).to_dict() == {
        "t": "A",  # 0.5 short: closest
        "p": "A",  # 1200: close but not there
        "q": "B",  # 2000: above
        "s": "B",  # exactly at the threshold
        "u": "C",  # already active
        "r": "D",  # 1199: below the close band
        "v": "D",
    }
    assert list(g.index) == ["t", "p", "q", "s", "u", "r", "v"]  # closest first
    assert g.loc["p", "gap"] == 300 and g.loc["q", "gap"] == 0
    # from balances(): the frame's balance column; active as a boolean Series
    b = points.balances(LEDGER, "2025-12-15", "calendar")
    groups = points.threshold_groups(b, active=b["last_redeemed"].notna())
    assert groups["group"].astype(str).to_dict() == {"a": "C", "b": "D"}


def test_programme_cost_formula():
    # 1,000,000 points issued (1 yuan = 1 point: 1,000,000 yuan of sales), 400,000 redeemed;
    # redemption value 1,000,000 / 100 = 10,000 yuan; cost rate 60%; rate 40%: 2,400 yuan
    cost = points.programme_cost(1_000_000, 400_000, cost_rate=0.6)
    assert cost["redemption_value"] == 10_000
    assert cost["redemption_rate"] == pytest.approx(0.4)
    assert cost["cost"] == pytest.approx(2_400)
    assert cost["sales"] == 1_000_000
    assert cost["cost_share_of_sales"] == pytest.approx(0.0024)
    given = points.programme_cost(1_000_000, cost_rate=0.6, redemption_rate=0.4)
    assert given["cost"] == pytest.approx(2_400)
    from_ledger = points.programme_cost(points=LEDGER, cost_rate=0.5)
    # 2000 issued, 1100 redeemed: value 20 yuan x 0.5 x 0.55 = 5.5 yuan
    assert from_ledger["cost"] == pytest.approx(5.5)
    with pytest.raises(DataError):
        points.programme_cost(100, cost_rate=0.5)


def test_read_points(tmp_path):
    path = tmp_path / "points.csv"
    LEDGER.to_csv(path, index=False)
    frame = read_points(path)
    assert frame["kind"].tolist() == LEDGER["kind"].tolist()
    assert frame["date"].dtype == "datetime64[ns]"
    pd.testing.assert_frame_equal(
        points.balances(frame, "2026-01-31"), points.balances(LEDGER, "2026-01-31")
    )
    with pytest.raises(DataError, match="kind must be one of"):
        read_points(LEDGER.assign(kind="gift"))
    with pytest.raises(DataError, match="points must be >= 0"):
        read_points(LEDGER.assign(points=-LEDGER["points"]))
    with pytest.raises(DataError, match="missing"):
        read_points(LEDGER.drop(columns="kind"))


def test_expiries_are_ledger_rows_summing_to_expired():
    rows = points.expiries(LEDGER, "2026-06-30", "rolling")
    assert rows.values.tolist() == [
        ["b", T("2025-12-20"), 200.0, "expire"],  # last day 19 Dec 2025
        ["b", T("2026-01-05"), 300.0, "expire"],
        ["a", T("2026-06-01"), 400.0, "expire"],  # last day 31 May 2026
    ]
    calendar = points.expiries(LEDGER, "2026-06-30", "calendar")
    assert calendar.groupby("customer_id")["points"].sum().to_dict() == {"a": 400, "b": 500}
    b = points.balances(LEDGER, "2026-06-30", "calendar")
    assert b["expired"].to_dict() == {"a": 400, "b": 500}
