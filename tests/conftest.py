"""Shared fixtures: the real data sets live in ../shared/datasets and are never copied here."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from closedloop import clv, funnel, kpi, lift, lift_segments, rfm
from closedloop.datasets import make_demo

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _close_figures():
    """Every figure a test drew is closed after it: pyplot keeps them open otherwise, and the
    suite's figures would add up in one process."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def _shared_file(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(
            f"real data set {name} not found: {SHARED} is absent (../shared beside the project)"
        )
    return path


@pytest.fixture(scope="session")
def hillstrom_path() -> Path:
    return _shared_file("hillstrom.csv")


@pytest.fixture(scope="session")
def groceries_path() -> Path:
    return _shared_file("groceries.csv")


# --- the same aggregations on every kind of frame (test_frames.py, test_spark.py) ---------------

ASOF = "2026-03-31"


@pytest.fixture(scope="session")
def demo_tables() -> dict[str, pd.DataFrame]:
    """A small demo retailer: transactions, customers, funnel events, campaign outcomes."""
    demo = make_demo(seed=0, n_customers=2_000)
    return {
        "transactions": demo.transactions,
        "customers": demo.customers,
        "events": demo.events,
        "outcomes": demo.outcomes,
    }


def _rfm(t):
    table = rfm.rfm_table(t["transactions"], ASOF, period_days=365)
    return {
        "rfm_table": table,
        "pyramid": rfm.pyramid(table),
        "member_tiers": rfm.member_tiers(table).to_frame(),
    }


@cache
def _clv_model() -> clv.ClvModel:
    """BG/NBD fitted on the demo's calibration summary (pandas), for repeat_tracking."""
    transactions = make_demo(seed=0, n_customers=2_000).transactions
    return clv.fit(clv.summary(transactions, ASOF, calibration_end="2026-01-31"), spend=False)


#: every aggregation over raw rows, as a function of the tables (any kind of frame) -> results
AGGREGATIONS = {
    "rfm": _rfm,
    "churn_severity": lambda t: {"churn": rfm.churn_severity(t["transactions"], ASOF)},
    "pyramid_over_time": lambda t: {
        "over_time": rfm.pyramid_over_time(t["transactions"], ASOF, 365)
    },
    "member_kpis": lambda t: {
        "kpis": kpi.member_kpis(t["transactions"], t["customers"], ("2026-03-01", ASOF))
    },
    "clv": lambda t: {
        "summary": clv.summary(t["transactions"], ASOF, calibration_end="2026-01-31"),
        "repeat_tracking": clv.repeat_tracking(t["transactions"], _clv_model(), ASOF),
    },
    "funnel": lambda t: {
        "ordered": funnel.funnel(t["events"], STAGES, by="channel"),
        "window": funnel.funnel(t["events"], STAGES, by="channel", window="3D", ordered=False),
        "overall": funnel.funnel(t["events"], STAGES),
    },
    "lift": lambda t: {
        "lift": lift.bayesian_lift(
            t["outcomes"], metrics=["visited", "converted", "revenue"]
        ).table,
        "by_segment": lift_segments.lift_by_segment(
            t["outcomes"], "segment", metrics="revenue"
        ).table,
        "prob_best": lift.prob_best(t["outcomes"], metrics="converted"),
        "srm": lift.srm_check(t["outcomes"], {"control": 0.1, "sms": 0.45, "wecom": 0.45}).table,
    },
}
STAGES = ["touch", "visit", "register", "purchase"]


@pytest.fixture(scope="session")
def same_results(demo_tables):
    """``same_results(convert)``: every aggregation on the demo tables turned into another kind
    of frame by ``convert`` gives the answer it gives on the pandas tables."""
    expected = {name: run(demo_tables) for name, run in AGGREGATIONS.items()}

    def check(convert) -> None:
        tables = {k: convert(v) for k, v in demo_tables.items()}
        for name, run in AGGREGATIONS.items():
            got = run(tables)
            for part, frame in expected[name].items():
                pd.testing.assert_frame_equal(got[part], frame, obj=f"{name}: {part}")

    return check


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: builds, installs or runs something whole (minutes); -m 'not slow' skips"
    )


def binary_outcomes(groups: dict[str, tuple[int, int]], metric="converted") -> pd.DataFrame:
    """One row per customer of a 0/1 outcome: arm -> (customers, converters)."""
    arms, values = [], []
    for arm, (n, x) in groups.items():
        arms += [arm] * n
        values += [1] * x + [0] * (n - x)
    return pd.DataFrame({"arm": arms, metric: values})


# --- a real PostgreSQL server (test_sources.py) -------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server: its unix socket folder, its loopback port and the password of
    the user ``closedloop`` (needed over TCP only)."""

    folder: Path
    port: int
    password: str

    def socket(self, dbname: str = "postgres") -> str:
        """A libpq connection string over the socket (no password needed)."""
        return f"host={self.folder} port={self.port} user=closedloop dbname={dbname}"


def free_port() -> int:
    """A loopback TCP port nothing listens on (the system picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL 15 server for the whole run, started by ``scripts/postgres.sh`` in a fresh
    folder and stopped (and removed) at the end, whatever happened in between."""
    script = ROOT / "scripts" / "postgres.sh"
    # not under pytest's tmp folder: as root the server runs as the postgres user, who must
    # reach its folder
    folder = Path(tempfile.mkdtemp(prefix="closedloop-pg-"))
    port = free_port()
    try:
        started = subprocess.run(
            ["bash", str(script), "start", str(folder), str(port)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if started.returncode:
            log = folder / "server.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {started.stderr.strip()}\n{detail}")
        yield PostgresServer(folder, port, (folder / "password").read_text().strip())
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], timeout=180, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def interim_demo(tmp_path_factory) -> Path:
    """A 20,000-customer demo (seed 0) for the interim Checks."""
    from closedloop.datasets import write_demo

    return write_demo(tmp_path_factory.mktemp("interim-demo"), seed=0, n_customers=20_000)


@pytest.fixture(scope="session")
def interim_checks(interim_demo) -> dict:
    """The demo's Checks on days 7, 14 and 21 of its period (interim) and 31 (final)."""
    import warnings

    from closedloop import pdca
    from closedloop.io import DataWarning
    from closedloop.plan import Plan

    plan = Plan.from_yaml(interim_demo / "plan.yaml")
    with warnings.catch_warnings():  # the rows after each as-of day are left out, as they should
        warnings.simplefilter("ignore", DataWarning)
        return {
            day: pdca.check(
                plan, pdca.load(plan, asof=f"2026-03-{day:02d}"), asof=f"2026-03-{day:02d}"
            )
            for day in (7, 14, 21, 31)
        }
