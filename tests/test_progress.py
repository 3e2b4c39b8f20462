"""closedloop.progress: the campaign day by day and week by week, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closedloop import progress

ASSIGNED = pd.DataFrame(
    {"customer_id": ["a", "b", "c", "d", "e", "f"], "arm": ["control"] * 2 + ["sms"] * 4}
)
TX = pd.DataFrame(
    {
        "customer_id": ["a", "c", "c", "d", "x", "e"],
        "order_date": pd.to_datetime(
            [
                "2026-03-02 10:00",
                "2026-03-01 09:00",
                "2026-03-09 12:00",
                "2026-03-09 13:00",
                "2026-03-03 08:00",
                "2026-02-27 08:00",
            ]
        ),
        "amount": [10.0, 5.0, 7.0, 20.0, 99.0, 50.0],
    }
)


def test_conversion_so_far_and_weeks_by_hand():
    out = progress.progress(ASSIGNED, TX, "2026-03-01", "2026-03-10", "control")
    daily = out.daily.set_index(["arm", "date"])
    sms = daily.loc["sms"]
    assert sms.loc["2026-03-01", "converted"] == 1  # c on day 1
    assert sms.loc["2026-03-09", "converted"] == 2  # d on day 9; c's second order is not new
    assert sms.loc["2026-03-10", "revenue"] == pytest.approx(32.0)  # x is not assigned; e before
    assert daily.loc[("control", pd.Timestamp("2026-03-10")), "conversion"] == 0.5
    assert np.isnan(daily.loc[("control", pd.Timestamp("2026-03-10")), "rel_lift"])
    last = sms.loc["2026-03-10"]
    assert last["rel_lift"] == pytest.approx((2 / 4) / (1 / 2) - 1)
    assert last["rel_lift_low"] < last["rel_lift"] < last["rel_lift_high"]
    weekly = out.weekly.set_index(["week", "arm"])
    assert weekly.loc[(pd.Timestamp("2026-03-09"), "sms"), "purchases"] == 2
    assert weekly.loc[(pd.Timestamp("2026-03-09"), "sms"), "new_buyers"] == 1
    # the week the period starts in is named by its first day, Sunday 1 March (not Monday 23 Feb)
    assert weekly.loc[(pd.Timestamp("2026-03-01"), "sms"), "revenue"] == 5.0
    weeks = pd.to_datetime(["2026-03-01", "2026-03-02", "2026-03-09"])
    assert sorted(set(out.weekly["week"])) == list(weeks)
