"""Progress (进度): the campaign day by day and week by week, so a reader sees when the effect
appeared and whether it holds — the Check "every week or even every day" of the method.

From the transactions of the period (through :func:`closedloop.summaries.by_period`) and who was
in which arm: per arm and day the cumulative share of assigned customers who have bought
(conversion so far) and their cumulative net revenue, and for each treated arm the cumulative
relative lift in conversion over the holdout with its 95% credible interval, from the Beta
posteriors of the two cumulative rates (Monte Carlo, numpy's seeded ``Generator``); per arm and
week the purchases, the customers who bought for the first time in the period, and revenue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from closedloop import summaries
from closedloop.priors import PRIOR

__all__ = ["DRAWS", "Progress", "progress"]

#: posterior draws per arm and day for the cumulative lift's interval
DRAWS = 4_000


@dataclass(frozen=True)
class Progress:
    """``daily``: ``date, arm, customers, converted, conversion, revenue`` (cumulative to the end
    of that day) and, for treated arms, ``rel_lift, rel_lift_low, rel_lift_high`` (conversion so
    far over the holdout's); ``weekly``: ``week`` (its Monday), ``arm, purchases, new_buyers,
    revenue`` within the week."""

    daily: pd.DataFrame
    weekly: pd.DataFrame


def progress(
    assignments: pd.DataFrame,
    transactions,
    start,
    asof,
    control: str,
    *,
    seed: int = 0,
) -> Progress:
    """The campaign's progress from ``start`` to the end of the ``asof`` day (see the module
    docstring). ``assignments`` has ``customer_id, arm``; ``transactions`` any frame the
    package reads."""
    first, last = summaries.day(start, "start"), summaries.day(asof)
    days = pd.date_range(first, last, freq="D")
    arms = assignments[["customer_id", "arm"]].astype({"customer_id": "str", "arm": "str"})
    sizes = arms["arm"].value_counts()
    per = summaries.by_period(transactions, last, start=first, freq="day", source="transactions")
    per = per.merge(arms, on="customer_id", how="inner")
    bought = per[per["orders"] > 0]
    debut = bought.groupby("customer_id").agg(day=("period", "min"), arm=("arm", "first"))
    new = debut.groupby(["arm", "day"]).size()
    spend = per.groupby(["arm", "period"])["revenue"].sum()
    rows = []
    for arm, n in sizes.items():
        converted = new.get(arm, pd.Series(dtype="int64")).reindex(days, fill_value=0).cumsum()
        revenue = spend.get(arm, pd.Series(dtype="float64")).reindex(days, fill_value=0.0).cumsum()
        rows.append(
            pd.DataFrame(
                {
                    "date": days,
                    "arm": arm,
                    "customers": int(n),
                    "converted": converted.to_numpy(),
                    "conversion": converted.to_numpy() / n,
                    "revenue": revenue.to_numpy(),
                }
            )
        )
    daily = pd.concat(rows, ignore_index=True)
    _cumulative_lift(daily, control, seed)
    per["week"] = per["period"] - pd.to_timedelta(per["period"].dt.day_of_week, unit="D")
    debut["week"] = debut["day"] - pd.to_timedelta(debut["day"].dt.day_of_week, unit="D")
    weekly = (
        per.groupby(["week", "arm"])
        .agg(purchases=("orders", "sum"), revenue=("revenue", "sum"))
        .join(debut.groupby(["week", "arm"]).size().rename("new_buyers"))
        .fillna({"new_buyers": 0})
        .astype({"new_buyers": "int64"})
        .reset_index()[["week", "arm", "purchases", "new_buyers", "revenue"]]
    )
    return Progress(daily, weekly)


def _cumulative_lift(daily: pd.DataFrame, control: str, seed: int) -> None:
    """Add each treated arm's cumulative relative lift in conversion, in place."""
    rng = np.random.default_rng(seed)
    for column in ("rel_lift", "rel_lift_low", "rel_lift_high"):
        daily[column] = np.nan
    base = daily[daily["arm"] == control].set_index("date")
    if base.empty:
        return
    for arm in sorted(set(daily["arm"]) - {control}):
        rows = daily.index[daily["arm"] == arm]
        mine = daily.loc[rows].set_index("date")
        x, n = mine["converted"].to_numpy(), mine["customers"].to_numpy()
        xc, nc = base["converted"].to_numpy(), base["customers"].to_numpy()
        size = (len(x), DRAWS)
        arm_rate = rng.beta(PRIOR.alpha + x[:, None], PRIOR.beta + (n - x)[:, None], size)
        ctl_rate = rng.beta(PRIOR.alpha + xc[:, None], PRIOR.beta + (nc - xc)[:, None], size)
        lift = arm_rate / ctl_rate - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            point = np.where(xc > 0, (x / n) / (xc / nc) - 1, np.nan)
        daily.loc[rows, "rel_lift"] = point
        daily.loc[rows, "rel_lift_low"] = np.quantile(lift, 0.025, axis=1)
        daily.loc[rows, "rel_lift_high"] = np.quantile(lift, 0.975, axis=1)
