"""The ledger: every finished run in ``reports/ledger.csv``, and the campaigns' PDCA history.

Runs append under a file lock (parallel runs of ``run-all`` stay apart). The ledger keeps every
run; the history is **of cycles, not of runs**: a later run of the same (campaign, cycle)
replaces the earlier one, which stays in the ledger marked ``superseded``. A run made before its
period ended is ``interim``; a cycle's final run replaces its interim ones in the history.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pandas as pd

#: the ledger's file name in a reports folder
FILENAME = "ledger.csv"


def append_ledger(path: Path, summary: dict) -> None:
    """Add one run to the ledger and mark the runs of the same cycle it replaces ``superseded``
    (a lock keeps parallel runs apart)."""
    row = _ledger_row(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ledger = pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame()
        if len(ledger):
            if "superseded" not in ledger.columns:
                ledger["superseded"] = "False"
            if "interim" not in ledger.columns:
                ledger["interim"] = "False"
            same = (ledger["campaign"] == str(row["campaign"])) & (
                ledger["cycle"] == str(row["cycle"])
            )
            # a final run replaces every earlier run of its cycle; an interim run only interims
            replaced = same if not row["interim"] else same & (ledger["interim"] == "True")
            ledger.loc[replaced, "superseded"] = "True"
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
        "interim": str(summary["asof"]) < str(summary["period"]["end"]),
        "superseded": False,
    }
    for target in summary["scorecard"]:
        row[f"{target['target']}_actual"] = target["actual"]
        row[f"{target['target']}_target"] = target["target_value"]
        row[f"{target['target']}_status"] = target["status"]
    return row


def read_ledger(path: str | Path, campaign: str) -> pd.DataFrame:
    """Every recorded run of one campaign, in the order they were recorded (empty when there are
    none), with ``interim`` and ``superseded`` as booleans."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame()
    ledger = pd.read_csv(path, dtype={"run_id": str, "campaign": str})
    ledger = ledger[ledger["campaign"] == campaign].reset_index(drop=True)
    for flag in ("interim", "superseded"):
        values = ledger[flag] if flag in ledger.columns else pd.Series(False, index=ledger.index)
        ledger[flag] = values.astype(str).eq("True")
    return ledger


def history(path: str | Path, summary: dict) -> pd.DataFrame:
    """The campaign's PDCA history, long: one row per cycle and target, oldest cycle first and
    this run's cycle last. Each earlier cycle shows its latest final run (or its latest interim
    run, marked, when it has no final one); this run stands for its own cycle. Columns:
    ``cycle, run, run_id, interim, current, target, actual, target_value, status``."""
    earlier = read_ledger(path, summary["campaign"])
    this = pd.DataFrame([_ledger_row(summary)])
    if not earlier.empty:
        earlier = earlier[
            (earlier["run_id"] != str(summary["run_id"]))
            & (earlier["cycle"].astype(int) != int(summary["cycle"]))
            & ~earlier["superseded"]
        ]
        # per cycle the last run recorded: a final one if the cycle has it
        earlier = earlier.assign(_order=range(len(earlier))).sort_values(
            ["cycle", "interim", "_order"], ascending=[True, False, True]
        )
        earlier = earlier.groupby("cycle", sort=True).tail(1).drop(columns="_order")
    wide = pd.concat([earlier, this], ignore_index=True)
    wide["cycle"] = wide["cycle"].astype(int)
    wide = wide.sort_values("cycle", kind="stable").reset_index(drop=True)
    wide["current"] = wide["run_id"].astype(str) == str(summary["run_id"])
    wide["interim"] = wide["interim"].astype(str).eq("True")
    rows = []
    for _, r in wide.iterrows():
        name = f"cycle {r['cycle']}" + (f" · interim {r['asof']}" if r["interim"] else "")
        for column in wide.columns:
            if column.endswith("_status") and pd.notna(r[column]):
                target = column.removesuffix("_status")
                rows.append(
                    {
                        "cycle": int(r["cycle"]),
                        "run": name,
                        "run_id": str(r["run_id"]),
                        "interim": bool(r["interim"]),
                        "current": bool(r["current"]),
                        "target": target,
                        "actual": float(r[f"{target}_actual"]),
                        "target_value": float(r[f"{target}_target"]),
                        "status": r[column],
                    }
                )
    columns = ["cycle", "run", "run_id", "interim", "current", "target", "actual"]
    return pd.DataFrame(rows, columns=[*columns, "target_value", "status"])
