"""The one door to narwhals: every aggregation gives the pandas answer on polars, DuckDB
relations (in memory and over Parquet) and with every engine that can aggregate pandas."""

from __future__ import annotations

import datetime as dt

import duckdb
import narwhals as nw
import pandas as pd
import polars as pl
import pytest

from closedloop import DataError, _frames, rfm


@pytest.mark.parametrize(
    "convert",
    [pl.from_pandas, lambda df: pl.from_pandas(df).lazy(), duckdb.from_df],
    ids=["polars", "polars lazy", "duckdb relation"],
)
def test_every_aggregation_same_on_every_kind_of_frame(convert, same_results):
    same_results(convert)


def test_every_aggregation_same_from_parquet_through_duckdb(same_results, tmp_path):
    def parquet(frame: pd.DataFrame):
        path = tmp_path / f"{id(frame)}.parquet"
        frame.to_parquet(path, index=False)
        return duckdb.read_parquet(str(path))

    same_results(parquet)


@pytest.mark.parametrize("engine", [e for e in _frames.PANDAS_ENGINES if e != "duckdb"])
def test_every_pandas_engine_gives_the_same_answer(engine, same_results, monkeypatch):
    monkeypatch.setattr(_frames, "PANDAS_ENGINE", engine)
    same_results(lambda frame: frame)


def test_lazy_frame_names_the_problem():
    with pytest.raises(DataError, match="sales: expected a pandas / polars DataFrame, a DuckDB"):
        _frames.lazy_frame([1, 2], "sales")
    with pytest.raises(DataError, match=r"required column\(s\) amount missing; found: a") as err:
        _frames.lazy_frame(duckdb.sql("SELECT 1 AS a"), "sales", ["amount"])
    assert err.value.column == "amount"


def test_collect_gives_numpy_types_and_wall_clock_times():
    relation = duckdb.sql(
        "SELECT 2::HUGEINT AS n, 1.25::DECIMAL(10, 2) AS x,"
        " TIMESTAMPTZ '2026-03-31 23:30:00+00' AS t"
    )
    out = _frames.collect(nw.from_native(relation))
    assert out["n"].dtype == "int64" and out["x"].dtype == "float64"
    assert out["t"].dt.tz is None
    summed = _frames.collect(nw.from_native(duckdb.sql("SELECT sum(range) AS s FROM range(4)")))
    assert summed["s"].tolist() == [6]


def test_collect_keeps_the_wall_clock_time_of_a_zoned_timestamp():
    zoned = pl.DataFrame({"t": [dt.datetime(2026, 3, 31, 23, 30)]}).with_columns(
        pl.col("t").dt.replace_time_zone("Asia/Shanghai")
    )
    out = _frames.collect(nw.from_native(zoned))
    assert out["t"].iat[0] == pd.Timestamp("2026-03-31 23:30")


def test_duckdb_relation_over_parquet_gives_the_customer_table(tmp_path):
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "order_date": pd.to_datetime(
                ["2026-01-05 09:00", "2026-03-30 18:00", "2026-02-01 12:00"]
            ),
            "amount": [10.0, 5.0, 7.5],
        }
    )
    tx.to_parquet(tmp_path / "tx.parquet", index=False)
    table = rfm.rfm_table(duckdb.read_parquet(str(tmp_path / "tx.parquet")), "2026-03-31")
    assert table["frequency"].to_dict() == {"a": 2, "b": 1}
    assert table["recency_days"].to_dict() == {"a": 1, "b": 58}
    assert table["revenue"].to_dict() == {"a": 15.0, "b": 7.5}
