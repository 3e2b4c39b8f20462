"""Inputs that must not give a wrong number: each gets a right result, a counted warning, or one
clear error naming the file, the column, the rule and the rows. All files are built here."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from closedloop import DataError
from closedloop.io import (
    DataWarning,
    id_format_hint,
    outlier_threshold,
    read_assignments,
    read_outcomes,
    read_transactions,
)

CHINESE = "customer_id,order_date,amount,store\n1,2026-03-01,10,北京店\n2,2026-03-02,5,上海店\n"


def orders(dates, **columns) -> pd.DataFrame:
    n = len(dates)
    return pd.DataFrame(
        {"customer_id": [str(i) for i in range(n)], "order_date": dates, "amount": 1.0, **columns}
    )


def days(frame) -> list[str]:
    return frame["order_date"].dt.strftime("%Y-%m-%d %H:%M").tolist()


# --- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-16", "utf-16-le", "utf-8-sig"])
def test_chinese_and_utf16_files_are_decoded(tmp_path, encoding):
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(CHINESE.encode(encoding))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_transactions(path)
    assert out["store"].tolist() == ["北京店", "上海店"]


def test_an_undecodable_file_asks_for_its_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(
        "customer_id,order_date,amount,store\n1,2026-03-01,1,Café Zürich\n".encode("cp1252")
    )
    with pytest.raises(
        DataError, match=r"latin.csv: the transactions file cannot be decoded"
    ) as err:
        read_transactions(path)
    assert "encoding" in str(err.value)
    assert read_transactions(path, encoding="cp1252")["store"][0] == "Café Zürich"
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_transactions(path, encoding="klingon")


def test_empty_files_directories_and_devices_are_named(tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"zero.csv: the transactions file is empty \(0 bytes\)"):
        read_transactions(tmp_path / "zero.csv")
    (tmp_path / "header.csv").write_text("customer_id,order_date,amount\n")
    with pytest.raises(DataError, match=r"header.csv: the transactions table is empty \(no rows\)"):
        read_transactions(tmp_path / "header.csv")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(
        DataError, match=r"folder.csv: a directory without transactions Parquet files"
    ):
        read_transactions(tmp_path / "folder.csv")
    with pytest.raises(DataError, match=r"/dev/zero: not a regular file"):
        read_transactions("/dev/zero")


def test_a_ragged_row_is_counted_and_shown(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(
        "customer_id,order_date,amount\n1,2026-03-01,10\n2,2026-03-02,1,5\n3,2026-03-03,2\n"
    )
    with pytest.raises(DataError) as err:
        read_transactions(path)
    message = str(err.value)
    assert "ragged.csv: 1 row(s) with a different number of fields than the header's 3" in message
    assert "2,2026-03-02,1,5" in message and err.value.n_bad == 1


def test_an_unreadable_parquet_file(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"broken.parquet: not a readable Parquet file"):
        read_transactions(tmp_path / "broken.parquet")


def test_mapping_onto_an_existing_column_is_refused():
    frame = pd.DataFrame({"Member": ["1", "2"], "customer_id": ["3", "4"], "arm": ["a", "b"]})
    with pytest.raises(
        DataError, match=r"renames 'Member' to 'customer_id', but the data already has a column"
    ):
        read_assignments(frame, columns={"Member": "customer_id"})
    with pytest.raises(DataError, match=r"'customer_id' appear more than once"):
        read_assignments(frame, columns={"Member": "customer_id", "customer_id": "customer_id"})


# --- dates -------------------------------------------------------------------------------------


def test_ambiguous_day_month_dates_are_refused():
    with pytest.raises(DataError) as err:
        read_transactions(orders(["01/03/2026", "02/03/2026", "12/12/2026"]))
    message = str(err.value)
    assert "column 'order_date': ambiguous dates" in message
    assert '"%d/%m/%Y"' in message and '"%m/%d/%Y"' in message and "01/03/2026" in message
    assert err.value.n_bad == 2  # 12/12 reads the same either way
    out = read_transactions(orders(["01/03/2026", "02/03/2026"]), date_format="%d/%m/%Y")
    assert days(out) == ["2026-03-01 00:00", "2026-03-02 00:00"]


def test_the_one_order_that_fits_every_date_is_used():
    assert days(read_transactions(orders(["01/03/2026", "13/03/2026 18:30"]))) == [
        "2026-03-01 00:00",
        "2026-03-13 18:30",
    ]
    assert days(read_transactions(orders(["05.03.2026", "03.25.2026"]))) == [
        "2026-05-03 00:00",
        "2026-03-25 00:00",
    ]
    with pytest.raises(DataError, match="mix day-first and month-first"):
        read_transactions(orders(["13/03/2026", "03/13/2026"]))


def test_integer_dates_yyyymmdd_are_read_and_epoch_seconds_refused(tmp_path):
    orders([20260301, 20260331]).to_csv(tmp_path / "ymd.csv", index=False)
    assert days(read_transactions(tmp_path / "ymd.csv")) == ["2026-03-01 00:00", "2026-03-31 00:00"]
    with pytest.raises(DataError, match=r"integer dates other than YYYYMMDD .* are refused"):
        read_transactions(orders([1772323200, 1772409600]))
    with pytest.raises(DataError, match="not a valid YYYYMMDD date"):
        read_transactions(orders([20260301, 20261345]))


def test_iso_dates_with_and_without_time_and_the_iso_error():
    out = read_transactions(orders(["2026-03-01", "2026-03-02 10:15", "2026-03-03T08:00:00"]))
    assert days(out) == ["2026-03-01 00:00", "2026-03-02 10:15", "2026-03-03 08:00"]
    with pytest.raises(DataError, match="unparseable date") as err:
        read_transactions(orders(["2026-03-01", "2026-03"]))
    assert err.value.n_bad == 1


def test_timezone_aware_strings_keep_their_wall_clock():
    # a late-evening order in Shanghai stays on its day; mixed offsets no longer raise
    dates = ["2026-03-31 23:30:00+08:00", "2026-03-01 10:00:00+00:00"]
    out = read_transactions(orders(dates), asof="2026-03-31")
    assert days(out) == ["2026-03-31 23:30", "2026-03-01 10:00"]
    moved = read_transactions(orders(dates), timezone="Asia/Shanghai")
    assert days(moved) == ["2026-03-31 23:30", "2026-03-01 18:00"]
    with pytest.raises(DataError, match="unknown timezone 'Mars/Olympus'"):
        read_transactions(orders(dates), timezone="Mars/Olympus")


def test_timezone_aware_parquet_is_not_shifted_to_utc(tmp_path):
    frame = orders(
        pd.to_datetime(["2026-03-31 23:30", "2026-03-01 09:00"]).tz_localize("Asia/Shanghai")
    )
    frame.to_parquet(tmp_path / "tz.parquet")
    out = read_transactions(tmp_path / "tz.parquet", asof="2026-03-31")
    assert days(out) == ["2026-03-31 23:30", "2026-03-01 09:00"]
    assert out.attrs["quality"]["date_max"] == "2026-03-31"
    utc = read_transactions(tmp_path / "tz.parquet", timezone="UTC")
    assert days(utc) == ["2026-03-31 15:30", "2026-03-01 01:00"]


# --- values ------------------------------------------------------------------------------------


def test_a_blank_outcome_cell_is_an_error(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text("customer_id,converted,revenue\n1,1,9.5\n2,,0\n3,0,\n")
    with pytest.raises(DataError) as err:
        read_outcomes(path)
    message = str(err.value)
    assert "outcomes.csv, column 'converted': blank outcome" in message
    assert "write 0 for no outcome" in message and err.value.n_bad == 1


def test_id_normalisation_strips_dot_zero_only_for_a_whole_number_column():
    frame = pd.DataFrame({"customer_id": [12346.0, 7.0, None], "arm": ["a", "b", "a"]})
    assert read_assignments(frame.dropna())["customer_id"].tolist() == ["12346", "7"]
    mixed = pd.DataFrame({"customer_id": [12346.0, 7.5], "arm": ["a", "b"]})
    assert read_assignments(mixed)["customer_id"].tolist() == ["12346.0", "7.5"]


def test_id_format_hint_names_the_difference():
    assert "trailing '.0'" in id_format_hint(["12346", "12347"], ["12346.0", "12347.0"])
    assert "'12346' and '12346.0'" in id_format_hint(["12346", "12347"], ["12346.0", "12347.0"])
    assert "leading zeros" in id_format_hint(["00123", "00124"], ["123", "124"])
    assert "case" in id_format_hint(["c001"], ["C001"])
    assert "format" in id_format_hint(["00123.0", "00124.0"], ["123", "124"])
    assert id_format_hint(["1", "2"], ["3", "4"]) is None
    assert id_format_hint(["1"], ["1", "2"]) is None


# --- outliers ----------------------------------------------------------------------------------


def amounts(n=200, seed=0):
    return list(np.round(np.random.default_rng(seed).lognormal(3, 1, n), 2))


def test_an_absurd_amount_is_flagged_and_can_be_capped_or_excluded():
    values = [*amounts(), 1e15]
    frame = orders(["2026-03-01"] * len(values)).assign(amount=values)
    with pytest.warns(
        DataWarning, match=r"1 amount value\(s\) beyond .* \(outliers, the largest 1e\+15\)"
    ):
        flagged = read_transactions(frame)
    assert flagged.attrs["quality"]["outliers"] == 1 and flagged["amount"].max() == 1e15
    limit = outlier_threshold(values)
    with pytest.warns(DataWarning, match="capped"):
        capped = read_transactions(frame, outliers="cap")
    assert capped["amount"].max() == pytest.approx(limit)
    with pytest.warns(DataWarning, match="left out"):
        kept = read_transactions(frame, outliers="exclude")
    assert len(kept) == len(values) - 1
    assert kept.attrs["quality"]["dropped"] == {"outliers excluded": 1}


def test_heavy_tailed_real_amounts_are_not_outliers():
    values = amounts(n=5_000)  # log-normal, sigma 1: the largest is some 4 SDs out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_transactions(orders(["2026-03-01"] * len(values)).assign(amount=values))
    assert out.attrs["quality"]["outliers"] == 0
    assert outlier_threshold([5.0] * 30) == pytest.approx(500)  # no spread: 100 x the median
    assert outlier_threshold([5.0] * 3) is None  # too few to tell


def test_outcome_revenue_outliers_and_excluded_customers():
    revenue = [0.0] * 50 + amounts(n=50) + [1e15]
    frame = pd.DataFrame({"customer_id": [str(i) for i in range(101)], "revenue": revenue})
    with pytest.warns(DataWarning, match="revenue value"):
        out = read_outcomes(frame, outliers="exclude")
    assert out.attrs["quality"]["excluded_ids"] == ["100"]


# --- the campaign as a whole: pdca.load ----------------------------------------------------------


def campaign(tmp_path, assignments, outcomes=None, transactions=None, **plan):
    from closedloop.plan import Plan

    data = {"assignments": "assignments.csv"}
    assignments.to_csv(tmp_path / "assignments.csv", index=False)
    for name, table in (("outcomes", outcomes), ("transactions", transactions)):
        if table is not None:
            if isinstance(table, bytes):
                (tmp_path / f"{name}.csv").write_bytes(table)
            elif isinstance(table, str):
                (tmp_path / f"{name}.csv").write_text(table)
            else:
                table.to_csv(tmp_path / f"{name}.csv", index=False)
            data[name] = f"{name}.csv"
    raw = {
        "campaign": "trust",
        "objective": "win back",
        "period": {"start": "2026-03-01", "end": "2026-03-31"},
        "arms": {"control": 0.5, "sms": 0.5},
        "targets": {"conversion_rate": 0.1},
        "data": data,
        **plan,
    }
    path = tmp_path / "plan.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return Plan.from_yaml(path)


def arms(ids) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "arm": ["control", "sms"] * (len(ids) // 2)})


def test_absent_customers_have_no_outcome_but_a_blank_cell_is_an_error(tmp_path):
    from closedloop import pdca

    plan = campaign(
        tmp_path, arms(["1", "2", "3", "4"]), outcomes="customer_id,converted\n1,1\n2,0\n3,1\n"
    )
    data = pdca.load(plan)
    assert data.outcomes.set_index("customer_id")["converted"].to_dict() == {
        "1": 1,
        "2": 0,
        "3": 1,
        "4": 0,
    }
    quality = data.quality.set_index("table")
    assert quality.loc["outcomes", "assigned_covered"] == 3
    assert quality.loc["outcomes", "coverage"] == pytest.approx(0.75)
    plan = campaign(
        tmp_path, arms(["1", "2", "3", "4"]), outcomes="customer_id,converted\n1,1\n2,\n3,1\n"
    )
    with pytest.raises(DataError, match=r"outcomes.csv, column 'converted': blank outcome"):
        pdca.load(plan)


def test_excel_mangled_ids_fail_the_coverage_check_with_a_hint(tmp_path):
    from closedloop import pdca

    ids = [str(12346 + i) for i in range(10)]
    outcomes = "customer_id,converted\n" + "".join(f"{i}.0,1\n" for i in ids[:8]) + "A1,0\n"
    plan = campaign(tmp_path, arms(ids), outcomes=outcomes)
    with pytest.raises(DataError) as err:
        pdca.load(plan)
    message = str(err.value)
    assert message.startswith(
        "assignments.csv and outcomes.csv, column 'customer_id': only 0 of 10"
    )
    assert "trailing '.0'" in message and "'12346' and '12346.0'" in message
    assert "12346.0" in message and "12347" in message  # both sides shown
    assert err.value.n_bad == 10
    # asked for explicitly, a low coverage passes (and is recorded)
    plan = campaign(tmp_path, arms(ids), outcomes=outcomes, quality={"min_coverage": 0})
    with (
        pytest.warns(DataWarning, match="trailing '.0'"),  # and the ids' format is still named
        pytest.warns(DataWarning, match="without an assignment"),
    ):
        quality = pdca.load(plan).quality.set_index("table")
    assert quality.loc["outcomes", "coverage"] == 0


def test_zero_padded_ids_fail_the_coverage_check_with_a_hint(tmp_path):
    from closedloop import pdca

    tx = pd.DataFrame(
        {
            "customer_id": [f"{i:06d}" for i in range(1, 5)],
            "order_date": "2026-03-02",
            "amount": 5.0,
        }
    )
    plan = campaign(tmp_path, arms(["1", "2", "3", "4"]), transactions=tx)
    with pytest.raises(DataError, match=r"assignments.csv and transactions.csv.*leading zeros"):
        pdca.load(plan)


def test_the_plan_passes_formats_and_the_outlier_rule_to_the_readers(tmp_path):
    from closedloop import pdca

    ids = [str(i) for i in range(40)]
    text = "customer_id,order_date,amount,store\n" + "".join(
        f"{i},0{1 + int(i) % 9}/03/2026,{10 + int(i)},店\n" for i in ids
    )
    plan = campaign(
        tmp_path,
        arms(ids),
        transactions=(text + "0,01/03/2026,1e15,店\n").encode("gb18030"),
        formats={"transactions": {"date_format": "%d/%m/%Y", "encoding": "gb18030"}},
        outliers={"rule": "exclude"},
    )
    with pytest.warns(DataWarning, match="left out"):
        data = pdca.load(plan)
    assert sorted(data.transactions["order_date"].dt.day.unique()) == list(range(1, 10))
    quality = data.quality.set_index("table")
    assert quality.loc["transactions", "outliers"] == 1
    assert quality.loc["transactions", "rows_dropped"] == 1
    assert quality.loc["transactions", "coverage"] == 1
