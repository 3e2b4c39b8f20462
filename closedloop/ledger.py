"""The ledger: every finished run in ``reports/ledger.csv``, and the campaigns' PDCA history.

Runs append under a file lock (parallel runs of ``run-all`` stay apart). The ledger keeps every
run; the history is **of cycles, and inside a cycle of its weeks**: a run made before its period
ended is ``interim``, and belongs to the ``week`` of the cycle its as-of day falls in (days 1-7
are week 1). A later final run of the same (campaign, cycle) replaces the earlier final one, a
later interim run of the same week the earlier interim one; the replaced run stays in the ledger
marked ``superseded``. The history shows each cycle's interim runs week by week (against the
target expected by then), then its final run.
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
            # a final run replaces the cycle's final run, an interim run that of its week
            replaced = same & (ledger["interim"] == str(row["interim"]))
            if row["interim"]:
                replaced &= _weeks(ledger) == row["week"]
            ledger.loc[replaced, "superseded"] = "True"
        ledger = pd.concat([ledger, pd.DataFrame([row]).astype(str)], ignore_index=True)
        tmp = path.with_suffix(".tmp")
        ledger.to_csv(tmp, index=False)
        tmp.replace(path)


def week_of(asof, start) -> int:
    """The week of the cycle an as-of day falls in: days 1-7 of the period are week 1."""
    return (pd.Timestamp(asof) - pd.Timestamp(start)).days // 7 + 1


def _weeks(ledger: pd.DataFrame) -> pd.Series:
    """Each ledger row's week of its cycle (from its as-of day, for ledgers written without it)."""
    return pd.Series(
        [week_of(a, s) for a, s in zip(ledger["asof"], ledger["period_start"], strict=True)],
        index=ledger.index,
    )


def _ledger_row(summary: dict) -> dict:
    start, end = summary["period"]["start"], summary["period"]["end"]
    interim = str(summary["asof"]) < str(end)
    row = {
        "campaign": summary["campaign"],
        "cycle": summary["cycle"],
        "run_id": summary["run_id"],
        "asof": summary["asof"],
        "period_start": start,
        "period_end": end,
        "interim": interim,
        "week": week_of(summary["asof"], start) if interim else "",
        "superseded": False,
    }
    for target in summary["scorecard"]:
        row[f"{target['target']}_actual"] = target["actual"]
        row[f"{target['target']}_target"] = target["target_value"]
        row[f"{target['target']}_status"] = target["status"]
        if interim and target.get("expected_by_now") is not None:
            row[f"{target['target']}_by_now"] = target["expected_by_now"]
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
    """The campaign's PDCA history, long: one row per run shown and target, oldest cycle first
    and this run last. Each cycle shows its interim runs week by week (the latest of each week;
    the actual so far against the target expected by then, the status the pace), then its final
    run; this run stands for its own week or, when final, its cycle's end, after the earlier
    interim runs of its cycle. Columns: ``cycle, week, position, run, run_id, interim, current,
    target, actual, target_value, status``; ``position`` places a run on a cycle axis (the
    cycle's final run at the cycle, an interim run at cycle - 1 + the share of its period gone
    by)."""
    earlier = read_ledger(path, summary["campaign"])
    this = pd.DataFrame([_ledger_row(summary)])
    this_interim = bool(this["interim"].iloc[0])
    if not earlier.empty:
        earlier = earlier.assign(week=_weeks(earlier).where(earlier["interim"], 0))
        own = earlier["cycle"].astype(int) == int(summary["cycle"])
        keep = (earlier["run_id"] != str(summary["run_id"])) & ~earlier["superseded"]
        # in this run's cycle: only the interim runs before it (of other weeks)
        keep &= ~own | (
            earlier["interim"]
            & (earlier["asof"].astype(str) < str(summary["asof"]))
            & (earlier["week"] != (this["week"].iloc[0] if this_interim else -1))
        )
        earlier = earlier[keep]
        # per cycle and week the last run recorded (week 0: the cycle's final run)
        earlier = earlier.assign(_order=range(len(earlier)))
        earlier = earlier.groupby(["cycle", "week"], sort=False).tail(1).drop(columns="_order")
    wide = pd.concat([earlier, this], ignore_index=True)
    wide["cycle"] = wide["cycle"].astype(int)
    wide["interim"] = wide["interim"].astype(str).eq("True")
    wide["week"] = [
        week_of(a, s) if i else 0
        for a, s, i in zip(wide["asof"], wide["period_start"], wide["interim"], strict=True)
    ]
    days = [
        (pd.Timestamp(e) - pd.Timestamp(s)).days + 1
        for s, e in zip(wide["period_start"], wide["period_end"], strict=True)
    ]
    gone = [
        min(1.0, ((pd.Timestamp(a) - pd.Timestamp(s)).days + 1) / n)
        for a, s, n in zip(wide["asof"], wide["period_start"], days, strict=True)
    ]
    wide["position"] = wide["cycle"] - 1 + pd.Series(gone, index=wide.index)
    wide = wide.sort_values(["cycle", "position"], kind="stable").reset_index(drop=True)
    wide["current"] = wide["run_id"].astype(str) == str(summary["run_id"])
    rows = []
    for _, r in wide.iterrows():
        name = f"cycle {r['cycle']}" + (f" · week {r['week']} (interim)" if r["interim"] else "")
        for column in wide.columns:
            if column.endswith("_status") and pd.notna(r[column]):
                target = column.removesuffix("_status")
                by_now = r.get(f"{target}_by_now")
                goal = by_now if r["interim"] and pd.notna(by_now) else r[f"{target}_target"]
                rows.append(
                    {
                        "cycle": int(r["cycle"]),
                        "week": int(r["week"]),
                        "position": float(r["position"]),
                        "run": name,
                        "run_id": str(r["run_id"]),
                        "interim": bool(r["interim"]),
                        "current": bool(r["current"]),
                        "target": target,
                        "actual": float(r[f"{target}_actual"]),
                        "target_value": float(goal),
                        "status": r[column],
                    }
                )
    columns = ["cycle", "week", "position", "run", "run_id", "interim", "current", "target"]
    return pd.DataFrame(rows, columns=[*columns, "actual", "target_value", "status"])
