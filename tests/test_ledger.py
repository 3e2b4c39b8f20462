"""The ledger: one row per run, read back as the campaign's long PDCA history."""

from __future__ import annotations

from closedloop import ledger
from closedloop.figures import pdca as pdca_fig


def test_history_is_long_with_the_current_run_last(tmp_path):
    summary = {
        "campaign": "c",
        "cycle": 2,
        "run_id": "r2",
        "asof": "2026-05-01",
        "period": {"start": "2026-04-01", "end": "2026-04-30"},
        "scorecard": [
            {"target": "conversion_rate", "actual": 0.2, "target_value": 0.25, "status": "missed"}
        ],
    }
    first = {**summary, "cycle": 1, "run_id": "r1", "asof": "2026-04-01"}
    first["scorecard"] = [{**summary["scorecard"][0], "actual": 0.3, "status": "met"}]
    ledger.append_ledger(tmp_path / "ledger.csv", first)
    ledger.append_ledger(tmp_path / "ledger.csv", {**first, "campaign": "other"})
    history = ledger.history(tmp_path / "ledger.csv", summary)
    assert list(history["run"]) == ["cycle 1 · 2026-04-01", "cycle 2 · 2026-05-01"]
    assert list(history["status"]) == ["met", "missed"]
    assert list(history["current"]) == [False, True]
    fig = pdca_fig.history(history)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["conversion rate"]


def test_reading_a_missing_ledger_gives_no_runs(tmp_path):
    assert ledger.read_ledger(tmp_path / "ledger.csv", "c").empty
