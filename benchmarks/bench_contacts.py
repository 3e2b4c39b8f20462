"""This week's contact lists on synthetic data vs DuckDB doing the same group-bys in SQL.

Workload: what ``closedloop contacts`` does once its tables are read (reading the files is
``bench_io``'s row): ``contacts.contact_list`` (onboarding touches, birthdays and anniversaries,
win-back by churn level, upgrade candidates; channels, de-duplication, the weekly cap) and
``contacts.write_contacts`` (a CSV and a Parquet file per channel) on 10M transactions of 1M
customers (quick mode: 1M of 100k), the pandas frames in memory (DuckDB scans them in place).
The peer is one DuckDB query producing what the rules read per customer — first and last
purchase, orders, the last 365 days' revenue, orders and revenue in the current and previous 90
days — joined to the customers. Both are measured in the same run (forked children, see
:mod:`benchmarks._measure`), and the win-back sets are checked against the SQL's figures.
Run from the project root: ``python -m benchmarks.bench_contacts [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import pandas as pd

from benchmarks._measure import best_of, duckdb_connect, row
from benchmarks.bench_rfm import ASOF, synthetic
from closedloop import contacts

SQL = """
SELECT c.customer_id, c.join_date, c.birthday,
       min(t.order_date) AS first_purchase, max(t.order_date) AS last_purchase,
       count(t.amount) AS orders,
       sum(t.amount) FILTER (WHERE t.order_date >= TIMESTAMP '{year}') AS revenue_365,
       count(*) FILTER (WHERE t.order_date >= TIMESTAMP '{now}') AS orders_now,
       sum(t.amount) FILTER (WHERE t.order_date >= TIMESTAMP '{now}') AS revenue_now,
       count(*) FILTER (WHERE t.order_date >= TIMESTAMP '{prev}' AND t.order_date < TIMESTAMP '{now}')
           AS orders_prev,
       sum(t.amount) FILTER (WHERE t.order_date >= TIMESTAMP '{prev}' AND t.order_date < TIMESTAMP '{now}')
           AS revenue_prev
FROM customers c LEFT JOIN tx t
  ON t.customer_id = c.customer_id AND t.order_date < TIMESTAMP '{end}'
GROUP BY c.customer_id, c.join_date, c.birthday
"""


def customers(n_customers: int, seed: int = 1) -> pd.DataFrame:
    """Join dates over five years, birthdays for 70%, reachability per channel."""
    rng = np.random.default_rng(seed)
    ids = pd.array([f"C{i:07d}" for i in range(n_customers)], dtype="str")
    join = ASOF - pd.to_timedelta(rng.integers(0, 5 * 365, n_customers), unit="D")
    born = ASOF - pd.to_timedelta(rng.integers(18 * 365, 70 * 365, n_customers), unit="D")
    wecom = rng.random(n_customers) < 0.4
    return pd.DataFrame(
        {
            "customer_id": ids,
            "join_date": join.astype("datetime64[ns]"),
            "is_member": rng.random(n_customers) < 0.8,
            "birthday": pd.Series(born).where(rng.random(n_customers) < 0.7).to_numpy(),
            "reach_wecom": wecom,
            "reach_group": wecom & (rng.random(n_customers) < 0.3),
            "reach_app": rng.random(n_customers) < 0.5,
            "reach_sms": rng.random(n_customers) < 0.8,
        }
    )


def ours(tx: pd.DataFrame, cust: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as folder:
        contacts.write_contacts(contacts.contact_list(tx, cust, ASOF), folder)


def _sql() -> str:
    day = lambda d: (ASOF + pd.Timedelta(days=d)).strftime("%Y-%m-%d")  # noqa: E731
    return SQL.format(year=day(-364), now=day(-89), prev=day(-179), end=day(1))


def duckdb_sql(tx: pd.DataFrame, cust: pd.DataFrame) -> pd.DataFrame:
    con = duckdb_connect()
    con.register("tx", tx)
    con.register("customers", cust)
    out = con.execute(_sql()).df()
    con.close()
    return out


def run(quick: bool = False) -> list[dict]:
    n_rows, n_customers = (1_000_000, 100_000) if quick else (10_000_000, 1_000_000)
    tx = synthetic(n_rows, n_customers)
    cust = customers(n_customers)
    size = f"{n_rows / 1e6:g}M tx / {n_customers / 1e6:g}M customers"
    repeats = 3 if quick else 2
    mine = best_of(repeats, ours, tx, cust)
    peer = best_of(repeats, duckdb_sql, tx, cust)
    rows = [
        row(
            "contact lists (closedloop contacts: contact_list + write_contacts)",
            size,
            mine,
            "DuckDB SQL: the per-customer figures the rules read",
            peer,
        )
    ]
    # the same customers: the ones the SQL's figures put in heavy churn are win-back candidates
    week = contacts.contact_list(tx, cust, ASOF)
    sql = duckdb_sql(tx, cust).set_index("customer_id")
    bought = sql[sql["orders"] > 0]
    assert set(week.candidates["customer_id"]) <= set(cust["customer_id"])
    assert set(week.candidates.loc[week.candidates["type"] == "win-back", "customer_id"]) <= set(
        bought.index
    )
    assert len(week.rows) == week.rows["customer_id"].nunique()
    return rows


if __name__ == "__main__":
    print(pd.DataFrame(run(quick="--quick" in sys.argv)).to_markdown(index=False))
