"""The data contract: each rule has its own bad input and an assertion on the message."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from closedloop import DataError, kpi
from closedloop.io import (
    DataWarning,
    read_assignments,
    read_customers,
    read_events,
    read_outcomes,
    read_transactions,
)


def tx(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "customer_id": [1, 2, 2, 3],
            "order_date": ["2026-01-05", "2026-01-06", "2026-02-01", "2026-02-03"],
            "amount": [10.0, 20.5, 7.25, 99.0],
        }
    )
    return frame.assign(**overrides)


def test_reads_csv_parquet_and_frame_alike(tmp_path):
    frame = tx()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for source in (frame, tmp_path / "t.csv", tmp_path / "t.parquet"):
        out = read_transactions(source)
        assert out["customer_id"].tolist() == ["1", "2", "2", "3"]
        assert pd.api.types.is_datetime64_any_dtype(out["order_date"])
        assert out["amount"].sum() == pytest.approx(136.75)
        assert out.attrs["quality"]["rows_read"] == 4


def test_column_mapping_renames_to_the_contract(tmp_path):
    theirs = tx().rename(columns={"customer_id": "cust_no", "order_date": "day", "amount": "paid"})
    theirs.to_csv(tmp_path / "theirs.csv", index=False)
    columns = {"cust_no": "customer_id", "day": "order_date", "paid": "amount"}
    out = read_transactions(tmp_path / "theirs.csv", columns=columns)
    assert {"customer_id", "order_date", "amount"} <= set(out.columns)
    # ids keep their leading zeros when read from CSV
    pd.DataFrame({"cust_no": ["007"], "day": ["2026-01-01"], "paid": [1]}).to_csv(
        tmp_path / "zeros.csv", index=False
    )
    assert read_transactions(tmp_path / "zeros.csv", columns=columns)["customer_id"][0] == "007"


def test_missing_required_column_lists_what_was_found():
    with pytest.raises(DataError, match=r"required column\(s\) amount missing; found: order_id, "):
        read_transactions(tx().drop(columns="amount"))


def test_mapping_an_absent_column_is_named():
    with pytest.raises(DataError, match="'cust_no', not in the data"):
        read_transactions(tx(), columns={"cust_no": "customer_id"})


def test_unparseable_date_shows_the_rows():
    with pytest.raises(DataError) as err:
        read_transactions(tx(order_date=["2026-01-05", "not a date", "2026-02-01", "31/31/2026"]))
    message = str(err.value)
    assert "column 'order_date': unparseable date" in message
    assert "2 offending row(s)" in message and "not a date" in message and "31/31/2026" in message


def test_non_numeric_amount():
    with pytest.raises(
        DataError, match=r"column 'amount': missing or non-numeric value\n1 offending"
    ):
        read_transactions(tx(amount=["10", "12,5 EUR", "7", "1"]))


def test_missing_amount():
    with pytest.raises(DataError, match="column 'amount': missing or non-numeric value"):
        read_transactions(tx(amount=[10.0, None, 7.0, 1.0]))


def test_missing_customer_id():
    with pytest.raises(DataError, match=r"column 'customer_id': missing id\n2 offending"):
        read_transactions(tx(customer_id=["1", None, " ", "3"]))


def test_ids_a_spreadsheet_rounded_are_refused():
    # two customers 1234567890123 and 1234571234567 both read as 1.23457E+12 after Excel:
    # taken as text they would be one customer
    ids = ["C1", "1.23457E+12", "1.23457E+12", "4,5e11"]
    with pytest.raises(
        DataError, match=r"column 'customer_id': ids in scientific notation .*\n3 offending"
    ):
        read_transactions(tx(customer_id=ids))
    # full-width digits are no spreadsheet's rounding: text, on the pandas and the Arrow route
    assert (
        read_transactions(tx(customer_id=["１.２３E+１２", "2", "2", "3"]))["customer_id"].iloc[0]
        == "１.２３E+１２"
    )
    assert read_transactions(tx(customer_id=["E12", "1E", "12E3X", "007"]))[
        "customer_id"
    ].tolist() == [
        "E12",
        "1E",
        "12E3X",
        "007",
    ]


def test_a_mixed_id_column_keeps_101_and_101_0_one_customer():
    """A spreadsheet's cells read as objects (an int, a text, a float): the whole float is the
    integer's text, a fractional one keeps its digits."""
    ids = pd.Series([101, "102", 101.0, np.float32(7.0)], dtype=object)
    frame = read_transactions(tx(customer_id=ids))
    assert frame["customer_id"].tolist() == ["101", "102", "101", "7"]
    fraction = read_transactions(tx(customer_id=pd.Series([1, 2, 2, 7.5], dtype=object)))
    assert fraction["customer_id"].tolist() == ["1", "2", "2", "7.5"]
    # past 2^53 a float has lost the id's last digits: refused, as scientific notation is
    for big in ([1.0, 2.0, 2.0, 1e20], pd.Series([1, 2, 2, 1e20], dtype=object)):
        with pytest.raises(DataError, match=r"too large for their digits.*\n1 offending"):
            read_transactions(tx(customer_id=big))


def test_anonymous_receipts_are_accepted_when_asked():
    frame = read_transactions(tx(customer_id=["1", None, " ", "3"]), anonymous=True)
    assert frame["customer_id"].isna().tolist() == [False, True, True, False]
    assert frame["customer_id"].iloc[0] == "1"


def test_same_order_id_with_conflicting_rows():
    with pytest.raises(DataError) as err:
        read_transactions(tx(order_id=["o1", "o1", "o3", "o4"]))
    assert "the same order_id appears in 1 group(s) of rows that disagree" in str(err.value)
    assert err.value.n_bad == 2


def test_exact_duplicates_are_removed_and_reported():
    frame = pd.concat([tx(), tx().iloc[[0]]], ignore_index=True)
    with pytest.warns(DataWarning, match="1 exact duplicate row"):
        out = read_transactions(frame)
    assert len(out) == 4
    assert out.attrs["quality"]["dropped"] == {"exact duplicate rows": 1}


def test_order_lines_may_share_an_order_id_but_not_its_customer():
    lines = pd.DataFrame(
        {
            "order_id": ["o1", "o1"],
            "customer_id": ["1", "1"],
            "order_date": ["2026-01-05", "2026-01-05"],
            "amount": [3.0, 4.0],
            "item": ["milk", "bread"],
        }
    )
    assert len(read_transactions(lines)) == 2
    with pytest.raises(DataError, match="disagree on customer_id, order_date"):
        read_transactions(lines.assign(customer_id=["1", "2"]))


def test_rows_after_the_asof_day_are_left_out_and_counted():
    with pytest.warns(DataWarning, match=r"2 row\(s\) dated after asof 2026-01-31 left out"):
        frame = read_transactions(tx(), asof="2026-01-31")
    assert list(frame["order_id"]) == ["o1", "o2"]
    assert frame.attrs["quality"]["dropped"] == {"dated after asof": 2}
    # asof is the end of its day: an order at 23:59 on the asof day is kept
    late = tx(order_date=["2026-01-05", "2026-01-06", "2026-02-01", "2026-02-03 23:59"])
    assert len(read_transactions(late, asof="2026-02-03")) == 4


def test_empty_table(tmp_path):
    with pytest.raises(DataError, match="the transactions table is empty"):
        read_transactions(tx().iloc[:0])
    (tmp_path / "empty.csv").write_text("customer_id,order_date,amount\n")
    with pytest.raises(DataError, match=r"empty.csv: the transactions table is empty"):
        read_transactions(tmp_path / "empty.csv")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.csv: the transactions file does not exist"):
        read_transactions(tmp_path / "nowhere.csv")


def test_refunds_are_kept_and_counted():
    with pytest.warns(DataWarning, match="2 refund row"):
        out = read_transactions(tx(amount=[10.0, -20.5, 7.25, -1.0]))
    assert len(out) == 4
    assert out.attrs["quality"]["refunds"] == 2


def test_assignments_with_a_single_arm():
    frame = pd.DataFrame({"customer_id": ["1", "2"], "arm": ["sms", "sms"]})
    with pytest.raises(DataError, match="the arm column has a single value \\('sms'\\)"):
        read_assignments(frame)


def test_assignments_customer_in_two_arms():
    frame = pd.DataFrame({"customer_id": ["1", "1", "2"], "arm": ["sms", "control", "sms"]})
    with pytest.raises(DataError, match=r"the same customer_id .* disagree on arm"):
        read_assignments(frame)


def test_customers_flags_and_dates():
    frame = pd.DataFrame(
        {
            "customer_id": ["1", "2", "3"],
            "join_date": ["2025-01-01", "2025-02-01", None],
            "is_member": ["yes", "no", "1"],
            "online": [1, 0, 1],
        }
    )
    out = read_customers(frame)
    assert out["is_member"].tolist() == [True, False, True]
    assert out["join_date"].isna().sum() == 1  # optional dates may be missing
    with pytest.raises(DataError, match="column 'online': not a yes/no flag"):
        read_customers(frame.assign(online=["1", "maybe", "0"]))


def test_events_contract():
    frame = pd.DataFrame(
        {
            "entity_id": [1, 2],
            "stage": ["touch", "visit"],
            "timestamp": ["2026-03-01 10:00", "2026-03-02"],
        }
    )
    out = read_events(frame)
    assert out["entity_id"].tolist() == ["1", "2"]
    with pytest.raises(DataError, match="required column\\(s\\) stage missing"):
        read_events(frame.drop(columns="stage"))


def test_a_clean_table_raises_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_transactions(tx())


def test_outcomes_contract():
    frame = pd.DataFrame({"cust": ["1", "2", "3"], "converted": [1, 0, 1], "revenue": [9.5, 0, 3]})
    out = read_outcomes(frame, columns={"cust": "customer_id"})
    assert list(out.columns) == ["customer_id", "converted", "revenue"]
    assert out.attrs["quality"]["rows_kept"] == 3


def test_outcomes_flag_with_other_values_is_refused():
    frame = pd.DataFrame({"customer_id": ["1", "2", "3"], "converted": [1, 2, 0]})
    with pytest.raises(DataError, match="column 'converted': a 0/1 outcome holds other values"):
        read_outcomes(frame)


def test_outcomes_without_a_metric_column():
    frame = pd.DataFrame({"customer_id": ["1", "2"], "clicks": [1, 2]})
    with pytest.raises(DataError, match="no metric column: give at least one of visited"):
        read_outcomes(frame)


def test_outcomes_with_two_values_for_one_customer():
    frame = pd.DataFrame({"customer_id": ["1", "1", "2"], "revenue": [1.0, 2.0, 0.0]})
    with pytest.raises(DataError, match="the same customer_id appears in 1 group"):
        read_outcomes(frame)


# --- the checks run in the engine (Parquet, DuckDB) give the pandas checks' answers -------------


def _messy(**overrides) -> pd.DataFrame:
    """Typed transactions as a warehouse holds them: ids text, times timestamps."""
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(8)],
            "customer_id": ["C1", "C2", "C2", "C3", "C4", "C5", "C1", "C6"],
            "order_date": pd.to_datetime(
                [
                    *("2026-01-05 10:00", "2026-01-06", "2026-02-01", "2026-02-03 23:59"),
                    *("2026-03-31 23:59:59", "2026-04-01", "2026-04-02", "2026-03-10"),
                ],
                format="ISO8601",
            ),
            "amount": [10.0, -20.5, 7.25, 99.0, 1.0, 3.0, 4.0, 5.5],
            "channel": ["store", "app", None, "store", "app", "app", "store", "store"],
        }
    )
    return frame.assign(**overrides)


MESSY = {
    "clean, refunds and rows after asof": _messy(),
    "ids around whitespace": _messy(customer_id=[" C1", "C2 ", "C2", "C3", "C4", "C5", "C1", "C6"]),
    "integer ids": _messy(customer_id=[1, 2, 2, 3, 4, 5, 1, 6]),
    "ids a spreadsheet rounded": _messy(customer_id=["1.23457E+12"] * 3 + ["C3"] * 5),
    "ids read as numbers": _messy(customer_id=[1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 1.0, 6.0]),
    "a blank id": _messy(customer_id=["C1", "", "C2", "C3", "C4", "C5", "C1", "C6"]),
    "a missing id": _messy(customer_id=["C1", None, "C2", "C3", "C4", "C5", "C1", "C6"]),
    "a blank date": _messy(order_date=pd.to_datetime(["2026-01-05", None] + ["2026-02-01"] * 6)),
    "local date formats": _messy(
        order_date=[
            *("13/01/2026", "14/01/2026", "01/02/2026", "03/02/2026"),
            *("31/03/2026", "01/04/2026", "02/04/2026", "10/03/2026"),
        ]
    ),
    "ambiguous local dates": _messy(order_date=["01/02/2026", "02/03/2026"] * 4),
    "text amounts": _messy(amount=["10", "20,5", "7.25", "99", "1", "3", "4", "5.5"]),
    "an infinite amount": _messy(amount=[1.0, float("inf"), 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
    "exact duplicates": _messy(order_id=["o0", "o0", "o2", "o3", "o4", "o5", "o6", "o7"]).pipe(
        lambda f: f.assign(
            customer_id=f["customer_id"].where(f.index != 1, "C1"),
            order_date=f["order_date"].where(f.index != 1, f["order_date"][0]),
            amount=f["amount"].where(f.index != 1, 10.0),
            channel=f["channel"].where(f.index != 1, "store"),
        )
    ),
    "an order id on two customers": _messy(order_id=["o0", "o0"] + [f"o{i}" for i in range(2, 8)]),
    "blank order ids": _messy(order_id=["", "", None, "o3", "o4", "o5", "o6", "o7"]),
    "a NaN amount": _messy(amount=[1.0, float("nan"), 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
    "a NaN quantity (optional)": _messy(quantity=[1.0, float("nan"), 3, 4, 5, 6, 7, 8]),
    "ids with leading zeros": _messy(customer_id=["007", "07", "7", "C3", "C4", "C5", "007", "C6"]),
    "timezone-aware times": _messy(
        order_date=_messy()["order_date"].dt.tz_localize("Asia/Shanghai")
    ),
    "rows after asof only": _messy(order_date=pd.Timestamp("2026-05-01")),
}


def _both_routes(monkeypatch, read):
    """What ``read()`` gives (the frame, or the DataError's text, and the warnings) through the
    engine, then with the engine route switched off (the pandas checks alone)."""
    import closedloop.io as contract

    def outcome():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                got = read()
            except DataError as exc:
                got = str(exc)
        return got, [str(w.message) for w in caught]

    engine = outcome()
    with monkeypatch.context() as patched:
        patched.setattr(contract, "_in_engine", lambda *args, **kwargs: None)
        pandas_only = outcome()
    return engine, pandas_only


def _count_loads(monkeypatch) -> list:
    """A list that gets one item per read of a table by the pandas route (``io._load``)."""
    import closedloop.io as contract

    loads = []
    load = contract._load
    monkeypatch.setattr(contract, "_load", lambda *a, **k: loads.append(1) or load(*a, **k))
    return loads


def _assert_same(engine, pandas_only):
    (got, warned), (expected, expected_warned) = engine, pandas_only
    assert warned == expected_warned
    if isinstance(expected, str):
        assert got == expected
        return
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs


@pytest.mark.parametrize("case", list(MESSY))
def test_parquet_checks_in_the_engine_match_the_pandas_checks(tmp_path, monkeypatch, case):
    path = tmp_path / "tx.parquet"
    MESSY[case].to_parquet(path, index=False)
    engine, pandas_only = _both_routes(
        monkeypatch, lambda: read_transactions(path, asof="2026-03-31")
    )
    _assert_same(engine, pandas_only)


@pytest.mark.parametrize("case", ["clean, refunds and rows after asof", "a blank id"])
def test_duckdb_checks_in_the_engine_match_the_pandas_checks(tmp_path, monkeypatch, case):
    import duckdb

    from closedloop.plan import Source

    frame = MESSY[case].rename(columns={"customer_id": "member_no"})  # noqa: F841
    with duckdb.connect(str(tmp_path / "shop.duckdb")) as con:
        con.execute("CREATE TABLE orders AS SELECT * FROM frame")
    source = Source(duckdb=str(tmp_path / "shop.duckdb"), table="orders")
    engine, pandas_only = _both_routes(
        monkeypatch,
        lambda: read_transactions(source, {"member_no": "customer_id"}, asof="2026-03-31"),
    )
    _assert_same(engine, pandas_only)


def test_duckdb_typed_columns_in_the_engine_match_the_pandas_checks(tmp_path, monkeypatch):
    """Integer ids, DATE days, DECIMAL amounts and yes/no flags from a DuckDB table: the rows
    read into Arrow and converted there give the pandas checks' frame, without the pandas route."""
    import duckdb

    from closedloop.plan import Source

    with duckdb.connect(str(tmp_path / "shop.duckdb")) as con:
        con.execute(
            "CREATE TABLE orders AS SELECT i AS order_id, i % 7 AS customer_id,"
            " DATE '2026-01-01' + (i % 120)::INT AS order_date,"
            " (i * 1.37 - 40)::DECIMAL(12, 2) AS amount, i % 3 = 0 AS is_member"
            " FROM range(1, 400) r(i)"
        )
    source = Source(duckdb=str(tmp_path / "shop.duckdb"), table="orders")
    loads = _count_loads(monkeypatch)
    engine, pandas_only = _both_routes(
        monkeypatch, lambda: read_transactions(source, asof="2026-03-31")
    )
    _assert_same(engine, pandas_only)
    assert len(loads) == 1  # the pandas route's own read only
    frame = engine[0]
    assert frame.attrs["quality"]["after_asof"] > 0 and frame.attrs["quality"]["refunds"] > 0
    assert frame["amount"].dtype == "float64" and frame["order_id"].iloc[0] == "1"


def test_a_nan_amount_in_parquet_is_refused_as_missing(tmp_path):
    """A Parquet double holds NaN apart from NULL; a NaN amount is a missing amount all the same,
    refused with the row (the engine's count would otherwise let it through)."""
    path = tmp_path / "tx.parquet"
    _messy(amount=[1.0, float("nan"), 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).to_parquet(path, index=False)
    with pytest.raises(DataError, match="column 'amount': missing or non-numeric") as caught:
        read_transactions(path, asof="2026-03-31")
    assert "o1" in str(caught.value) and "1 offending row" in str(caught.value)


def _orders(style: str, n: int = 30_000, seed: int = 1) -> pd.DataFrame:
    """Typed orders over several Parquet row groups: refunds, rows after asof, blank and missing
    order ids, customer ids holding an ``e`` and non-ASCII letters, order ids of ``style``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    numbers = {
        "numbers in order": np.arange(n) + 1000,
        "numbers shuffled": rng.permutation(n),
        "numbers far apart": rng.choice(10**12, n, replace=False),
    }
    if style.startswith("text"):
        order = range(n) if style == "text in order" else rng.permutation(n)
        order_id = [f"ord-{i:06d}" for i in order]
    else:
        order_id = numbers[style].astype(str).tolist()
    for i in range(0, n, 997):
        order_id[i] = "" if i % 2 else None
    customers = ["member-7", "Zoë", "客户2", "C10", "e", "7"]
    frame = pd.DataFrame(
        {
            "order_id": pd.array(order_id, dtype="str"),
            "customer_id": pd.array(rng.choice(customers, n), dtype="str"),
            "order_date": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 120, n), "D"),
            "amount": np.round(rng.lognormal(3.0, 0.8, n) * rng.choice([1, 1, 1, -1], n), 2),
        }
    )
    return frame


ORDER_STYLES = [
    "numbers in order",
    "numbers shuffled",
    "numbers far apart",
    "text",
    "text in order",
]
ORDER_FLAWS = {
    "clean": lambda f: f,
    "an exact duplicate": lambda f: pd.concat([f, f.iloc[[5]]], ignore_index=True),
    "an order id on two customers": lambda f: pd.concat(
        [f, f.iloc[[5]].assign(customer_id="C99")], ignore_index=True
    ),
    "an id with an ideographic space": lambda f: f.assign(
        customer_id=f["customer_id"].where(f.index != 20_000, "C10\u3000")
    ),
}


@pytest.mark.parametrize("flaw", list(ORDER_FLAWS))
@pytest.mark.parametrize("style", ORDER_STYLES)
def test_parquet_route_gives_the_pandas_route_frame_on_many_rows(
    tmp_path, monkeypatch, style, flaw
):
    """On row groups of orders with refunds, rows after asof, blank order ids and ids of every
    kind, the frame read from Parquet (dtypes, values, quality counts, warnings) or the error is
    the pandas route's; clean rows never reach the pandas route, flawed ones always do."""

    path = tmp_path / "tx.parquet"
    ORDER_FLAWS[flaw](_orders(style)).to_parquet(path, index=False, row_group_size=4_000)
    loads = _count_loads(monkeypatch)
    engine, pandas_only = _both_routes(
        monkeypatch, lambda: read_transactions(path, asof="2026-03-31")
    )
    _assert_same(engine, pandas_only)
    assert len(loads) == (1 if flaw == "clean" else 2)
    if flaw == "clean":
        quality = engine[0].attrs["quality"]
        assert quality["after_asof"] > 0 and quality["refunds"] > 0
        orders = _orders(style)
        kept = orders.loc[orders["order_date"] < pd.Timestamp("2026-04-01"), "order_id"]
        blank = kept.isna() | (kept == "")
        assert blank.any() and engine[0]["order_id"].isna().sum() == blank.sum()


def test_the_outlier_shortcut_never_hides_an_outlier():
    """Where the one-count shortcut says no amount can be an outlier, the threshold agrees; it
    does say so on ordinary amounts, and never with an outlier among them."""
    import numpy as np

    from closedloop.io import _none_beyond, outlier_threshold

    rng = np.random.default_rng(3)
    taken = 0
    for trial in range(400):
        n = int(rng.choice([5, 19, 20, 21, 40, 201, 2000]))
        amounts = rng.lognormal(rng.uniform(-2, 6), rng.uniform(0.01, 2.5), n)
        amounts[rng.random(n) < rng.uniform(0, 0.6)] *= -1
        amounts[rng.random(n) < rng.uniform(0, 0.6)] = 0.0
        if trial % 3 == 0:
            amounts[rng.integers(n)] *= rng.choice([30.0, 99.0, 101.0, 150.0, 1e4, 1e9])
        if trial % 17 == 0:
            amounts[rng.integers(n)] = np.nan
        limit = outlier_threshold(amounts)
        beyond = limit is not None and bool((np.abs(amounts) > limit).any())
        if _none_beyond(amounts):
            taken += 1
            assert not beyond, (trial, limit)
    assert taken > 100
    ordinary = rng.lognormal(3.0, 0.8, 5_000)
    assert _none_beyond(ordinary)
    assert not _none_beyond(np.append(ordinary, 1e9))


def test_clean_typed_parquet_is_checked_in_the_engine_without_pandas(tmp_path, monkeypatch):
    """Clean typed data never reaches the pandas route; what it finds is counted all the same."""
    import closedloop.io as contract

    path = tmp_path / "tx.parquet"
    _messy().to_parquet(path, index=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the pandas route read the file")

    monkeypatch.setattr(contract, "_load", refuse)
    with pytest.warns(DataWarning):
        frame = read_transactions(path, asof="2026-03-31")
    quality = frame.attrs["quality"]
    expected = _messy()
    late = expected["order_date"] >= pd.Timestamp("2026-04-01")
    assert quality["rows_read"] == len(expected)
    assert quality["after_asof"] == int(late.sum()) == 2
    assert quality["refunds"] == int((expected.loc[~late, "amount"] < 0).sum()) == 1
    assert frame["order_id"].tolist() == expected.loc[~late, "order_id"].tolist()
    assert str(frame["order_date"].dtype) == "datetime64[ns]"


def test_home_store_codes_are_read_as_the_receipts_store_codes(tmp_path):
    """A home_store column of numeric store codes with blanks (read by pandas as 101.0 and NaN)
    names the same stores as the receipts' store column: 101, not 101.0, leading zeros kept,
    blank and whitespace-only cells no home store; so the member counts by home store are those
    of a hand count."""
    (tmp_path / "customers.csv").write_text(
        "customer_id,home_store,is_member,join_date\n"
        "C1,101,1,2025-01-01\nC2,,1,2025-01-01\nC3,007,1,2025-01-01\nC4,  ,1,2025-01-01\n"
    )
    (tmp_path / "tx.csv").write_text(
        "customer_id,order_date,amount,store\n"
        "C1,2026-03-02,10,007\nC1,2026-03-03,10,007\nC2,2026-03-04,5,101\n"
        "C3,2026-03-05,8,101\nC4,2026-03-06,9,007\n"
    )
    customers = read_customers(tmp_path / "customers.csv")
    home = customers["home_store"]
    assert home[[0, 2]].tolist() == ["101", "007"] and home[[1, 3]].isna().all()
    tx = read_transactions(tmp_path / "tx.csv")
    out = kpi.member_kpis(tx, customers, ("2026-03-01", "2026-03-31"), by="store")
    # by hand: C1 and C3 as given; C2 and C4 where they bought (101 and 007)
    assert sorted(out.index) == ["007", "101"]
    assert out.loc["101", "members"] == 2 and out.loc["007", "members"] == 2


def test_join_store_codes_are_read_as_store_codes_too(tmp_path):
    """join_store (where a member who never bought joined) is text as the receipts' store is:
    a recruit of the month who never bought counts in store 101, not in a store "101.0"."""
    (tmp_path / "customers.csv").write_text(
        "customer_id,join_store,is_member,join_date\n"
        "C1,101,1,2026-03-01\nC2,,1,2026-03-02\nC3,007,1,2026-03-03\n"
    )
    (tmp_path / "tx.csv").write_text(
        "customer_id,order_date,amount,store\nC2,2026-03-04,5,101\nC3,2026-03-05,8,007\n"
    )
    customers = read_customers(tmp_path / "customers.csv")
    assert customers["join_store"][[0, 2]].tolist() == ["101", "007"]
    assert customers["join_store"][[1]].isna().all()
    tx = read_transactions(tmp_path / "tx.csv")
    out = kpi.member_kpis(tx, customers, ("2026-03-01", "2026-03-31"), by="store")
    # by hand: C1 never bought and joined in 101; C2 bought in 101, C3 in 007
    assert sorted(out.index) == ["007", "101"] and out.attrs["unplaced_recruits"] == 0
    assert out.loc["101", ["members", "recruits"]].tolist() == [2, 2]
    assert out.loc["101", "conversion"] == 0.5 and out.loc["007", "conversion"] == 1.0
