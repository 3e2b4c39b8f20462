"""closedloop.kpi.what_if: the contribution identity on the method's 2.5 → 2.7 → 3.2 example."""

from __future__ import annotations

import pytest
from test_kpi import CUSTOMERS, PERIOD, TX

from closedloop import DataError, kpi

#: 2,000 members, 60% active, 2.5 store visits a week, a 40-yuan ticket, over a year of weeks
BASE = kpi.Drivers(
    members=2_000,
    active_rate=0.6,
    frequency=2.5,
    ticket=40.0,
    periods=52,
    items_per_basket=4.0,
    online_rate=0.5,
    active_rate_online=0.8,
    active_rate_offline=0.4,
    other_orders=10_000,
    other_revenue=300_000.0,
)


def test_weekly_visits_from_2_5_to_2_7_and_3_2():
    out = kpi.what_if(BASE, {"target": {"frequency": 2.7}, "model": {"frequency": 3.2}})
    active = 2_000 * 0.6
    for column, visits in (("baseline", 2.5), ("target", 2.7), ("model", 3.2)):
        col = out[column]
        # annual contribution = active members x frequency x average ticket
        assert col["active_members"] == pytest.approx(active)
        assert col["contribution"] == pytest.approx(active * visits * 52 * 40.0)
        assert col["revenue"] == pytest.approx(col["contribution"] + 300_000.0)
        orders = active * visits * 52
        assert col["member_share"] == pytest.approx(orders / (orders + 10_000))
    assert out.loc["contribution", "change_target"] == pytest.approx(active * 0.2 * 52 * 40)
    assert out.loc["contribution", "change_model"] == pytest.approx(active * 0.7 * 52 * 40)
    assert out.loc["contribution", "model"] / out.loc["contribution", "baseline"] == (
        pytest.approx(3.2 / 2.5)
    )


def test_online_rate_and_basket_move_their_branches():
    online = kpi.what_if(BASE, online_rate=0.95)["scenario"]
    assert online["active_rate"] == pytest.approx(0.95 * 0.8 + 0.05 * 0.4)
    basket = kpi.what_if(BASE, items_per_basket=5.0)["scenario"]
    assert basket["ticket"] == pytest.approx(50.0)  # 10 yuan an item
    both = kpi.what_if(BASE, members=2_500, ticket=44.0)["scenario"]
    assert both["contribution"] == pytest.approx(2_500 * 0.6 * 2.5 * 52 * 44.0)
    with pytest.raises(DataError, match="cannot set"):
        kpi.what_if(BASE, price=3)
    with pytest.raises(DataError, match="between 0 and 1"):
        kpi.what_if(BASE, online_rate=95)


def test_the_baseline_from_data_is_the_kpi_tree():
    base = kpi.drivers(TX, CUSTOMERS, PERIOD)
    tree = kpi.member_kpis(TX, CUSTOMERS, PERIOD)["all"]
    out = kpi.what_if(base, frequency=base.frequency)
    assert out.loc["contribution", "baseline"] == pytest.approx(tree["contribution"])
    assert out.loc["member_share", "baseline"] == pytest.approx(tree["member_share"])
    assert out.loc["active_members", "baseline"] == tree["active_members"]
    assert out.loc["revenue", "baseline"] == pytest.approx(200.0)  # 100 members + n1's 100
    assert (out["change_scenario"].abs() < 1e-9).all()
    # m1 and m3 are online (m1 active, m3 not), m2 offline and active, m4 online and inactive
    assert (base.active_rate_online, base.active_rate_offline) == (1 / 3, 1.0)
