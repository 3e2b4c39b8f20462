"""The ledger: one row per finished run in ``reports/ledger.csv``, the campaigns' PDCA history.

Runs append under a file lock (parallel runs of ``run-all`` stay apart); the report reads the
earlier runs of its campaign back as a long table, one row per run and target.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pandas as pd

#: the ledger's file name in a reports folder
FILENAME = "ledger.csv"


def append_ledger(path: Path, summary: dict) -> None:
    """Add one run to the ledger (one row per run; a lock keeps parallel runs apart)."""
    row = _ledger_row(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ledger = pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame()
        ledger = pd.concat([ledger, pd.DataFrame([row]).astype(str)], ignore_index=True)
        tmp = path.with_suffix(".tmp")
        ledger.to_csv(tmp, index=False)
        tmp.replace(path)


def _ledger_row(summary: dict) -> dict:
    row = {
        "campaign": summary["campaign"],
        "cycle": summary["cycle"],
        "run_id": summary["run_id"],
        "asof": summary["asof"],
        "period_start": summary["period"]["start"],
        "period_end": summary["period"]["end"],
    }
    for target in summary["scorecard"]:
        row[f"{target['target']}_actual"] = target["actual"]
        row[f"{target['target']}_target"] = target["target_value"]
        row[f"{target['target']}_status"] = target["status"]
    return row


def read_ledger(path: str | Path, campaign: str) -> pd.DataFrame:
    """The earlier runs of one campaign, oldest first (empty when there are none)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame()
    ledger = pd.read_csv(path)
    return (
        ledger[ledger["campaign"] == campaign]
        .sort_values(["cycle", "run_id"])
        .reset_index(drop=True)
    )


def history(path: str | Path, summary: dict) -> pd.DataFrame:
    """The campaign's PDCA history, long: one row per run and target, earlier runs from the
    ledger and this run last (``run``: "cycle N · asof"; ``current`` marks this run)."""
    earlier = read_ledger(path, summary["campaign"])
    if not earlier.empty:
        earlier = earlier[earlier["run_id"].astype(str) != str(summary["run_id"])]
    wide = pd.concat([earlier, pd.DataFrame([_ledger_row(summary)])], ignore_index=True)
    wide["current"] = [False] * (len(wide) - 1) + [True]
    names = [f"cycle {c} · {a}" for c, a in zip(wide["cycle"], wide["asof"], strict=True)]
    wide["run"] = [
        f"{n} ({r})" if names.count(n) > 1 else n
        for n, r in zip(names, wide["run_id"], strict=True)
    ]
    rows = []
    for _, r in wide.iterrows():
        for column in wide.columns:
            if column.endswith("_status") and pd.notna(r[column]):
                target = column.removesuffix("_status")
                rows.append(
                    {
                        "run": r["run"],
                        "run_id": str(r["run_id"]),
                        "current": r["current"],
                        "target": target,
                        "actual": float(r[f"{target}_actual"]),
                        "target_value": float(r[f"{target}_target"]),
                        "status": r[column],
                    }
                )
    return pd.DataFrame(
        rows, columns=["run", "run_id", "current", "target", "actual", "target_value", "status"]
    )
