"""The ledger keeps every run; the history is one entry per cycle, reruns replacing earlier runs."""

from __future__ import annotations

from itertools import pairwise

import matplotlib.text
import pandas as pd
import pytest

from closedloop import ledger, sections
from closedloop.figures import localize
from closedloop.figures import pdca as pdca_fig


def run(cycle, run_id, actual, status="met", asof=None, campaign="c"):
    start = pd.Timestamp("2026-03-01") + pd.DateOffset(months=cycle - 1)
    end = start + pd.DateOffset(months=1) - pd.Timedelta(days=1)
    return {
        "campaign": campaign,
        "cycle": cycle,
        "run_id": run_id,
        "asof": asof or f"{end:%Y-%m-%d}",
        "period": {"start": f"{start:%Y-%m-%d}", "end": f"{end:%Y-%m-%d}"},
        "scorecard": [
            {"target": "conversion_rate", "actual": actual, "target_value": 0.25, "status": status}
        ],
    }


def test_history_is_one_entry_per_cycle_with_the_current_run_last(tmp_path):
    path = tmp_path / "ledger.csv"
    ledger.append_ledger(path, run(1, "r1", 0.30))
    ledger.append_ledger(path, run(1, "r1b", 0.31))  # a rerun of cycle 1 replaces the first
    ledger.append_ledger(path, run(1, "x", 0.9, campaign="other"))
    history = ledger.history(path, run(2, "r2", 0.2, "missed"))
    assert list(history["run"]) == ["cycle 1", "cycle 2"]
    assert list(history["actual"]) == [0.31, 0.2]
    assert list(history["current"]) == [False, True]
    kept = ledger.read_ledger(path, "c")
    assert list(kept["run_id"]) == ["r1", "r1b"] and list(kept["superseded"]) == [True, False]


def test_interim_runs_show_week_by_week_inside_their_cycle_before_its_final_run(tmp_path):
    path = tmp_path / "ledger.csv"
    ledger.append_ledger(path, run(1, "w1", 0.10, "behind", asof="2026-03-07"))
    ledger.append_ledger(path, run(1, "w2a", 0.12, "behind", asof="2026-03-13"))
    ledger.append_ledger(path, run(1, "w2", 0.15, "on track", asof="2026-03-14"))  # same week
    kept = ledger.read_ledger(path, "c")
    assert kept["interim"].tolist() == [True, True, True]
    assert kept["superseded"].tolist() == [False, True, False]  # a rerun of week 2 replaces it
    history = ledger.history(path, run(1, "final", 0.3))
    assert list(history["run"]) == [
        "cycle 1 · week 1 (interim)",
        "cycle 1 · week 2 (interim)",
        "cycle 1",
    ]
    assert list(history["run_id"]) == ["w1", "w2", "final"]
    assert history["position"].tolist() == [7 / 31, 14 / 31, 1.0]
    ledger.append_ledger(path, run(1, "final", 0.3))
    ledger.append_ledger(path, run(2, "c2w1", 0.05, "behind", asof="2026-04-07"))
    history = ledger.history(path, run(3, "r3", 0.2))
    assert list(history["run"]) == [
        "cycle 1 · week 1 (interim)",
        "cycle 1 · week 2 (interim)",
        "cycle 1",
        "cycle 2 · week 1 (interim)",
        "cycle 3",
    ]
    assert history["interim"].tolist() == [True, True, False, True, False]
    # a rerun of the final run replaces it; the interim weeks stay
    history = ledger.history(path, run(1, "final-2", 0.31))
    assert list(history["run_id"]) == ["w1", "w2", "final-2", "c2w1"]


def test_an_interim_run_is_scored_against_the_target_expected_by_then(tmp_path):
    path = tmp_path / "ledger.csv"
    week = run(1, "w1", 0.06, "ahead", asof="2026-03-07")
    week["scorecard"][0]["expected_by_now"] = 0.25 * 7 / 31
    ledger.append_ledger(path, week)
    history = ledger.history(path, run(1, "final", 0.3))
    assert history["target_value"].tolist() == [pytest.approx(0.25 * 7 / 31), 0.25]
    assert history["status"].tolist() == ["ahead", "met"]
    zh = sections.history_table(history, "zh")
    assert list(zh.columns) == ["target", "周期 1 · 第 1 周（期中）", "周期 1"]


def test_the_figure_draws_a_first_cycle_target_and_stays_legible_with_12_cycles(tmp_path):
    path = tmp_path / "ledger.csv"
    first = ledger.history(path, run(1, "r1", 0.3))
    fig = pdca_fig.history(first)
    ax = next(a for a in fig.axes if a.get_visible())
    assert ax.collections  # the target bar and the point are drawn for a lone first cycle
    for k in range(1, 12):
        ledger.append_ledger(path, run(k, f"r{k}", 0.2 + k / 100, "met" if k % 2 else "missed"))
    twelve = ledger.history(path, run(12, "r12", 0.33))
    assert sorted(set(twelve["cycle"])) == list(range(1, 13))
    fig = pdca_fig.history(twelve)
    fig.canvas.draw()
    ax = next(a for a in fig.axes if a.get_visible())
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    assert len(boxes) == 12
    assert all(a.x1 <= b.x0 for a, b in pairwise(boxes))  # no overlap
    zh = localize(pdca_fig.history(twelve), "zh")
    words = [t.get_text() for t in zh.findobj(matplotlib.text.Text) if t.get_text()]
    assert "周期" in words and "cycle" not in words


def test_reading_a_missing_ledger_gives_no_runs(tmp_path):
    assert ledger.read_ledger(tmp_path / "ledger.csv", "c").empty


def test_the_figure_places_interim_runs_inside_their_cycle_with_their_pace(tmp_path):
    path = tmp_path / "ledger.csv"
    ledger.append_ledger(path, run(1, "w1", 0.05, "behind", asof="2026-03-07"))
    ledger.append_ledger(path, run(1, "w2", 0.12, "on track", asof="2026-03-14"))
    fig = pdca_fig.history(ledger.history(path, run(1, "final", 0.3)))
    ax = next(a for a in fig.axes if a.get_visible())
    hollow = [c for c in ax.collections if len(c.get_offsets()) == 2]
    assert hollow and list(hollow[0].get_offsets()[:, 0]) == [7 / 31, 14 / 31]
    assert ax.get_xlim()[0] < 7 / 31  # the first week is on the axis
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "interim: behind" in labels and "interim: on track" in labels
    assert "interim: ahead" not in labels


def test_the_figures_percent_ticks_keep_the_decimals_they_need(tmp_path):
    """A rate axis with ticks at 2.5% steps labels them 7.5%, 10.0%, 12.5%: never a "12%" that
    reads as 12 beside "10%" and "8%" (0.075 rounded)."""
    path = tmp_path / "ledger.csv"
    ledger.append_ledger(path, run(1, "r1", 0.08))
    fig = pdca_fig.history(ledger.history(path, run(2, "r2", 0.17)))
    ax = next(a for a in fig.axes if a.get_visible())
    ax.set_ylim(0.07, 0.26)
    ax.yaxis.set_major_locator(matplotlib.ticker.MultipleLocator(0.025))
    fig.canvas.draw()
    ticks, labels = ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]
    assert "7.5%" in labels and "12.5%" in labels and len(set(labels)) == len(labels)
    shown = [float(t.replace("%", "")) / 100 for t in labels]
    assert shown == pytest.approx(list(ticks))  # each label is its tick's value
    ax.yaxis.set_major_locator(matplotlib.ticker.MultipleLocator(0.05))
    fig.canvas.draw()
    assert {"10%", "15%", "20%"} <= {t.get_text() for t in ax.get_yticklabels()}
