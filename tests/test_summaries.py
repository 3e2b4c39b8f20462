"""closedloop.summaries: the one door from transactions to per-customer summaries, and the one
meaning of asof (the end of that day) that every analysis shares."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from closedloop import DataError, clv, kpi, pdca, rfm, summaries
from closedloop.datasets import make_demo
from closedloop.plan import Plan

START, END = "2026-03-01", "2026-03-31"

ROWS = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "b", "b", "c", "d"],
        "order_id": ["1", "1", None, "2", "3", "4", "5"],
        "order_date": pd.to_datetime(
            [
                "2026-03-01 10:00",  # two lines of one order
                "2026-03-01 10:00",
                "2026-03-05 00:00",  # no order id: an order of its own, zero amount
                "2026-03-02 00:00",
                "2026-03-31 23:59",  # a refund at the last minute of the asof day
                "2026-04-01 00:00",  # the first instant after the asof day
                "2026-02-28 12:00",
            ]
        ),
        "amount": [10.0, 5.0, 0.0, 20.0, -20.0, 7.0, 3.0],
        "quantity": [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    }
)


def test_asof_is_the_end_of_its_day():
    assert summaries.end_of_day("2026-03-31") == pd.Timestamp("2026-04-01")
    assert summaries.day("2026-03-31 17:45") == pd.Timestamp("2026-03-31")
    per = summaries.per_customer(ROWS, "2026-03-31")
    assert "c" not in per.index  # bought at 00:00 the day after
    assert per.loc["b", "revenue"] == 0.0  # the refund at 23:59 counts
    assert "c" in summaries.per_customer(ROWS, "2026-04-01").index
    with pytest.raises(DataError, match="not a date: 'soon'"):
        summaries.day("soon")


def test_receipts_count_anonymous_orders_by_store():
    rows = ROWS.assign(store=["S1", "S1", "S2", "S1", "S1", "S2", "S2"])
    anonymous = pd.DataFrame(
        {
            "customer_id": [None, None, None],
            "order_id": ["9", "9", None],  # two lines of one anonymous order, and one more
            "order_date": pd.to_datetime(["2026-03-03", "2026-03-03", "2026-03-20"]),
            "amount": [4.0, 1.0, 6.0],
            "quantity": 1.0,
            "store": ["S1", "S1", "S2"],
        }
    )
    both = pd.concat([rows, anonymous], ignore_index=True)
    out = summaries.receipts(both, END, start=START, by="store")
    assert out.index.tolist() == ["S1", "S2"]
    # S1: orders 1 (a) and 2 (b); the refund 3 is not an order; anonymous order 9
    assert out.loc["S1"].tolist() == [3, 1, 15.0 + 20.0 - 20.0 + 5.0, 5.0]
    # S2: a's order without id, the anonymous receipt; c is after asof, d before the start
    assert out.loc["S2"].tolist() == [2, 1, 6.0, 6.0]
    total = summaries.receipts(pl.from_pandas(both), END, start=START)
    assert total.loc["all"].tolist() == [5, 2, 26.0, 11.0]
    # per customer, the anonymous receipts are left out
    assert summaries.per_customer(both, END).equals(summaries.per_customer(rows, END))


def test_orders_lines_refunds_and_windows_by_hand():
    per = summaries.per_customer(ROWS, END, start=START, windows={"late": ("2026-03-02", None)})
    assert list(per.index) == ["a", "b"]  # d bought before the start
    a, b = per.loc["a"], per.loc["b"]
    assert (a["orders"], a["revenue"], a["quantity"]) == (2, 15.0, 4.0)  # lines summed
    assert a["first_purchase"] == pd.Timestamp("2026-03-01 10:00")
    assert (a["orders_late"], a["revenue_late"]) == (1, 0.0)  # the zero-amount order
    assert (b["orders"], b["revenue"]) == (1, 0.0)  # a refund is not an order, it nets
    assert b["last_purchase"] == pd.Timestamp("2026-03-02")  # nor a last purchase
    first = summaries.per_customer(ROWS, END, first_revenue=True)
    assert first.loc["a", "first_revenue"] == 15.0 and first.loc["d", "first_revenue"] == 3.0
    assert per.loc["a", "last_purchase_late"] == pd.Timestamp("2026-03-05")
    # without the windows' last purchases: the same figures, one column fewer per window
    lean = summaries.per_customer(
        ROWS, END, start=START, windows={"late": ("2026-03-02", None)}, window_last=False
    )
    assert "last_purchase_late" not in lean.columns and "last_purchase" in lean.columns
    assert lean.equals(per.drop(columns="last_purchase_late"))
    # columns skipped and the engine's order: the same figures once sorted by id
    bare = summaries.per_customer(
        ROWS, END, start=START, skip=("first_purchase", "revenue"), sort=False
    )
    assert "first_purchase" not in bare.columns and "revenue" not in bare.columns
    full = summaries.per_customer(ROWS, END, start=START)
    assert bare.sort_index().equals(full.drop(columns=["first_purchase", "revenue"]))


@pytest.mark.parametrize("by", [None, "store"])
def test_named_columns_and_windows_on_the_same_days_give_the_same_figures(by):
    rows = ROWS.assign(store=["s1", "s1", "s2", "s1", "s2", "s1", None])
    windows = {"march": (START, END), "again": (START, END), "late": ("2026-03-02", None)}

    def summary(**options):  # (store, customer) rows come in the engine's order: sorted here
        per = summaries.per_customer(rows, END, by=by, **options)
        return per.set_index(by, append=True).sort_index() if by else per

    full = summary(windows=windows)
    alone = summary(windows={"again": (START, END)})
    # a window on the days of another one: its copy equals the window computed alone
    for column in ("orders", "revenue", "last_purchase", "quantity"):
        pd.testing.assert_series_equal(full[f"{column}_again"], alone[f"{column}_again"])
    chosen = ["orders_again", "revenue_late", "last_purchase"]
    few = summary(windows=windows, columns=chosen)
    assert list(few.columns) == ["last_purchase", "orders_again", "revenue_late"]
    pd.testing.assert_frame_equal(few, full[few.columns])


def test_by_period_and_since():
    weeks = summaries.by_period(ROWS, END, freq="week")
    assert weeks.loc[weeks["customer_id"] == "a", "period"].tolist() == [
        pd.Timestamp("2026-02-23"),  # weeks start on Monday
        pd.Timestamp("2026-03-02"),
    ]
    starts = pd.DataFrame({"customer_id": ["a", "b"], "start": pd.to_datetime([START] * 2)})
    after = summaries.since(ROWS, starts.assign(start=pd.Timestamp("2026-03-02")), END)
    assert after.loc["a", "first_purchase"] == pd.Timestamp("2026-03-05")
    within = summaries.since(ROWS, starts, END, days=1)
    assert within.loc["a", "orders"] == 1 and "b" not in within.index


@pytest.fixture(scope="module")
def demo():
    return make_demo(seed=4, n_customers=2_000)


#: a March campaign, for the outcomes over its period
PLAN = Plan.parse(
    {
        "campaign": "c",
        "objective": "win back",
        "period": {"start": START, "end": END},
        "arms": {"control": 0.5, "sms": 0.5},
        "targets": {},
        "data": {"assignments": "a.csv", "outcomes": "o.csv"},
    }
)

FRAMES = {
    "pandas": lambda frame: frame,
    "polars": pl.from_pandas,
    "duckdb": duckdb.from_df,
}


def agree(transactions, native_of) -> None:
    """rfm, the KPI tree, CLV and the campaign outcomes count the same orders and revenue per
    customer over the campaign period, from the same rows on the same engine."""
    tx = native_of(transactions)
    table = rfm.rfm_table(tx, END, period_days=31)
    plan = PLAN
    outcomes = pdca._outcomes_from_transactions(tx, plan).set_index("customer_id")
    in_period = transactions[transactions["order_date"] >= START]
    calendar = clv.summary(native_of(in_period), END, time_unit="D")
    # without a membership flag every buyer counts in the KPI tree
    tree = kpi.member_kpis(native_of(transactions.drop(columns="is_member")), None, (START, END))
    tree = tree["all"]

    buyers = outcomes[outcomes["orders"] > 0]
    assert set(table.index) == set(buyers.index) == set(calendar.index)
    pd.testing.assert_series_equal(
        table["frequency"], buyers["orders"].loc[table.index], check_names=False
    )
    np.testing.assert_allclose(table["revenue"], buyers["revenue"].loc[table.index])
    # one order a day in these rows, so purchase days are orders
    np.testing.assert_array_equal(
        calendar["repeat_purchases"].loc[table.index] + 1, table["frequency"]
    )
    assert tree["active_members"] == len(table)
    assert tree["contribution"] == pytest.approx(table["revenue"].sum())
    assert tree["purchase_frequency"] * tree["active_members"] == pytest.approx(
        table["frequency"].sum()
    )
    assert outcomes["converted"].sum() == (buyers["revenue"] > 0).sum()


def one_order_a_day(demo) -> pd.DataFrame:
    tx = demo.transactions
    return tx[~tx.assign(day=tx["order_date"].dt.normalize()).duplicated(["customer_id", "day"])]


@pytest.mark.parametrize("kind", list(FRAMES))
def test_every_module_counts_the_same_orders_and_revenue(demo, kind):
    agree(one_order_a_day(demo), FRAMES[kind])


def test_a_refund_never_makes_a_conversion():
    plan = PLAN
    out = pdca._outcomes_from_transactions(ROWS, plan).set_index("customer_id")
    assert out.loc["a", "converted"] == 1
    assert out.loc["b", "converted"] == 0  # bought 20, refunded 20: no net spend


@pytest.mark.parametrize("kind", list(FRAMES))
def test_frames_that_skipped_the_readers_get_the_same_rules(kind):
    """A missing date or amount is an error naming the column and rows, not a row quietly left
    out or an amount summed as 0."""
    nat = ROWS.assign(order_date=ROWS["order_date"].where(ROWS.index != 2))
    with pytest.raises(DataError, match="column 'order_date': missing date"):
        rfm.rfm_table(FRAMES[kind](nat), END)
    nan = ROWS.assign(amount=ROWS["amount"].where(ROWS.index != 3))
    with pytest.raises(DataError, match=r"column 'amount': missing or non-numeric amount\n1 "):
        summaries.per_customer(FRAMES[kind](nan), END)


@pytest.mark.parametrize("kind", [*FRAMES, "numbers"])
def test_positions_are_each_rows_place_among_the_ids_given(kind):
    """``positions`` adds each row's place among the ids (-1: not there), the engine's join
    giving what a look-up of the summary's text ids gives; ids that are not text on the engine
    are found as pandas' text."""
    rows = ROWS.assign(customer_id=[1, 1, 1, 2, 2, 3, 4]) if kind == "numbers" else ROWS
    native = FRAMES["pandas" if kind == "numbers" else kind](rows)
    ids = pd.Index(["b", "x", "a"] if kind != "numbers" else ["2", "x", "1"], dtype="str")
    per = summaries.per_customer(native, END, positions=ids)
    plain = summaries.per_customer(native, END)
    pd.testing.assert_frame_equal(per.drop(columns="_position"), plain)
    assert per["_position"].dtype == "int64"
    assert per["_position"].tolist() == [ids.get_indexer([i])[0] for i in per.index]
    assert per["_position"].tolist().count(-1) == 1 and len(per) == 3  # d is not among them


@pytest.mark.parametrize("kind", list(FRAMES))
@pytest.mark.parametrize("unit", ["order", "day"])
def test_the_summary_counts_blanks_in_its_own_pass_wherever_they_are(kind, unit):
    """per_customer refuses blanks from its own group-by (no second scan): a blank on a receipt
    without a customer, after the as-of day, before ``start`` or inside an order is refused as
    the separate check refuses it, naming the column and the row; without blanks the summary is
    the one the separate check passes."""
    asof, start = "2026-03-31", "2026-03-02"
    clean = summaries.per_customer(FRAMES[kind](ROWS), asof, start=start, unit=unit)
    assert not [c for c in clean.columns if c.startswith("_blank")]
    assert set(clean.index) == {"a", "b"}
    where = {
        "anonymous": {"customer_id": None, "order_id": "9", "order_date": pd.Timestamp(asof)},
        "after asof": {"customer_id": "e", "order_id": "9", "order_date": "2026-04-05"},
        "before start": {"customer_id": "e", "order_id": "9", "order_date": "2026-01-01"},
        "inside an order": {"customer_id": "a", "order_id": "1", "order_date": "2026-03-01 10:00"},
    }
    for cells in where.values():
        bad = pd.concat([ROWS, pd.DataFrame([{**cells, "amount": np.nan, "quantity": 1.0}])])
        bad = bad.astype({"order_date": "datetime64[ns]"}).reset_index(drop=True)
        amount = r"column 'amount': missing or non-numeric amount\n1 "
        with pytest.raises(DataError, match=amount):
            summaries.per_customer(FRAMES[kind](bad), asof, start=start, unit=unit)
        nat = bad.assign(amount=bad["amount"].fillna(1.0))
        nat.loc[len(nat) - 1, "order_date"] = pd.NaT
        with pytest.raises(DataError, match=r"column 'order_date': missing date\n1 "):
            summaries.per_customer(FRAMES[kind](nat), asof, start=start, unit=unit)


@pytest.mark.parametrize("dtype", ["float64", "Float64", "float64[pyarrow]"])
def test_a_pandas_frame_is_checked_in_place_with_the_same_rules(dtype):
    """A pandas frame is looked over by numpy before the group-by: whole, its summary is the one
    plain pandas computes; with a blank amount of any float type, or a blank date, it is refused
    as before, naming the column and the row."""
    rows = ROWS.astype({"amount": dtype})
    per = summaries.per_customer(rows, END)
    kept = ROWS[ROWS["order_date"] < pd.Timestamp("2026-04-01")]
    orders = kept.assign(
        key=kept["order_id"].fillna(pd.Series(kept.index, index=kept.index).astype(str) + "x")
    )
    orders = orders.groupby(["customer_id", "key"]).agg(
        amount=("amount", "sum"), date=("order_date", "min")
    )
    want = orders.groupby("customer_id").agg(
        orders=("amount", lambda a: int((a >= 0).sum())), revenue=("amount", "sum")
    )
    assert per[["orders", "revenue"]].to_dict() == want.to_dict()
    assert per.loc["a", "first_purchase"] == pd.Timestamp("2026-03-01 10:00")
    assert not [c for c in per.columns if c.startswith("_blank")]
    blank = rows.copy()
    blank.loc[3, "amount"] = None
    with pytest.raises(DataError, match=r"column 'amount': missing or non-numeric amount\n1 "):
        summaries.per_customer(blank, END)
    undated = rows.copy()
    undated.loc[6, "order_date"] = pd.NaT  # a row of d, who has no other
    with pytest.raises(DataError, match=r"column 'order_date': missing date\n1 "):
        summaries.per_customer(undated, END, start=START)


@pytest.mark.parametrize("text", ["03/04/2026", "31/03/2026", "2026-3-5", "20260315", "March 4"])
def test_a_day_given_as_text_is_iso_or_refused(text):
    """pandas reads "03/04/2026" as 4 March without a word, where half the world means 3 April:
    an as-of day as text is YYYY-MM-DD or one clear error."""
    with pytest.raises(DataError, match=r"not a date: .* \(write the day as YYYY-MM-DD"):
        summaries.day(text)
    assert (
        summaries.day("2026-03-04")
        == summaries.day("2026-03-04T18:30")
        == pd.Timestamp("2026-03-04")
    )
