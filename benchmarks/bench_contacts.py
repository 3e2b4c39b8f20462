"""This week's contact lists on synthetic data vs DuckDB doing the same group-bys in SQL.

Workload: what ``closedloop contacts`` does once its tables are read (reading the files is
``bench_io``'s row): ``contacts.contact_list`` (onboarding touches, birthdays and anniversaries,
win-back by churn level, upgrade candidates; channels, de-duplication, the weekly cap) and
``contacts.write_contacts`` (a CSV and a Parquet file per channel) on 10M transactions of 1M
customers (quick mode: 1M of 100k), the pandas frames in memory (DuckDB scans them in place).
The peer is one DuckDB query producing what the rules read per customer — first and last
purchase, orders, the last 365 days' revenue, orders and revenue in the current and previous 90
days — joined to the customers. The win-back sets are checked against the SQL's figures.

**On a shared machine.** Both sides are measured in forked children, interleaved (closedloop,
DuckDB, closedloop, DuckDB, ...: :func:`benchmarks._measure.interleaved`), several rounds, the
best of each side compared; every round's own ratio is reported too. DuckDB runs on all cores by
default (closedloop's aggregation runs in DuckDB as well; the rest of it is one thread), and its
threads lose more to a busy machine than one thread does, so the rounds are also run with
DuckDB pinned to one thread on both sides (``SET threads = 1``): the same cores for both.
Run from the project root: ``python -m benchmarks.bench_contacts [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import pandas as pd

from benchmarks._measure import duckdb_connect, fastest, interleaved, row
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


def ours(tx: pd.DataFrame, cust: pd.DataFrame, threads: int | None = None) -> None:
    if threads:  # in the measured child: the package's DuckDB connection, pinned
        import duckdb

        duckdb.default_connection().execute(f"SET threads = {threads}")
    with tempfile.TemporaryDirectory() as folder:
        contacts.write_contacts(contacts.contact_list(tx, cust, ASOF), folder)


def _sql() -> str:
    day = lambda d: (ASOF + pd.Timedelta(days=d)).strftime("%Y-%m-%d")  # noqa: E731
    return SQL.format(year=day(-364), now=day(-89), prev=day(-179), end=day(1))


def duckdb_sql(tx: pd.DataFrame, cust: pd.DataFrame, threads: int | None = None) -> pd.DataFrame:
    con = duckdb_connect()
    if threads:
        con.execute(f"SET threads = {threads}")
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
    rounds = 5 if quick else 3
    runs = interleaved(
        rounds,
        {
            "ours": (ours, tx, cust),
            "peer": (duckdb_sql, tx, cust),
            "ours_1": (ours, tx, cust, 1),
            "peer_1": (duckdb_sql, tx, cust, 1),
        },
    )
    rows = []
    for suffix, workload, peer_name in [
        (
            "",
            "contact lists (closedloop contacts: contact_list + write_contacts)",
            "DuckDB SQL: the per-customer figures the rules read",
        ),
        (
            "_1",
            "the same, DuckDB pinned to 1 thread on both sides",
            "DuckDB SQL, 1 thread",
        ),
    ]:
        mine, peer = runs["ours" + suffix], runs["peer" + suffix]
        each = [m["seconds"] / p["seconds"] for m, p in zip(mine, peer, strict=True)]
        found = row(workload, size, fastest(mine), peer_name, fastest(peer))
        found["note"] = f"best of {rounds} interleaved; each round: " + ", ".join(
            f"{r:.2f}" for r in each
        )
        rows.append(found)
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
