"""The demo retailer as a world that responds to plans: the loop over several cycles.

:func:`~closedloop.datasets.demo.make_demo` writes one cycle, the March 2026 win-back campaign.
:class:`DemoWorld` keeps what the demo knows and does not publish — each customer's purchase
rate, dropout probability, purchases left before dropping out, basket size, join date and
reachability — and lives on month after month: :meth:`DemoWorld.simulate` draws a month's
purchases under an assignment list, by the demo's own process (each customer buys with
probability ``1 - exp(-rate / 12 x season)`` while alive, 1.5% a month once gone, and drops out
after purchases, so customers age from month to month), plus the campaign's true effect
(:data:`TRUE_UPLIFT` by arm and current segment) for the treated; the holdout gets none, and an
arm not in the list does not exist. :func:`next_cycle` turns a cycle's folder and the plan the
Act step wrote into the next cycle's folder, ready for ``closedloop run``.

The truths a test or a trainer checks the loop against are here too: :data:`TRUE_UPLIFT`,
:meth:`DemoWorld.true_effects` and :meth:`DemoWorld.true_margin` (the true incremental margin per
contacted customer of an assignment list).

Cycle 1 is the demo's own March; cycle 2 is April, and so on. Everyone in the world joined by the
end of March 2026: no one joins later, so the ``new`` segment empties from June on.
"""

from __future__ import annotations

import calendar
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from closedloop import assign
from closedloop.datasets.demo import (
    CAMPAIGN,
    COST,
    SEASON,
    TRUE_UPLIFT,
    Demo,
    _baskets,
    _brands,
    _build,
    _write,
)
from closedloop.plan import Change, Plan

__all__ = ["SEGMENTS", "TRUE_UPLIFT", "DemoWorld", "Month", "next_cycle", "true_uplift"]

#: the demo's segments, by recency at a date (:data:`~closedloop.datasets.demo.SEGMENT_RULES`)
SEGMENTS = ("new", "active", "at_risk", "lapsed")
#: a month's chance of a purchase by a customer who has dropped out (as in the demo's March)
GONE_RATE = 0.015
_CSV = {"index": False, "date_format": "%Y-%m-%d %H:%M:%S", "lineterminator": "\n"}


def true_uplift() -> pd.DataFrame:
    """The true effect of each arm by segment: ``arm, segment, uplift``, the extra probability of
    buying in a month for a customer who would not have bought otherwise (persuadable share)."""
    rows = [(arm, segment, u) for (arm, segment), u in TRUE_UPLIFT.items()]
    return pd.DataFrame(rows, columns=["arm", "segment", "uplift"])


@dataclass(frozen=True)
class Month:
    """A simulated period: its new orders and their item lines, numbered after the world's."""

    start: pd.Timestamp
    end: pd.Timestamp
    transactions: pd.DataFrame
    items: pd.DataFrame


@lru_cache(maxsize=2)
def _demo(seed: int, n_customers: int):
    return _build(seed, n_customers)


class DemoWorld:
    """The demo retailer from ``make_demo(seed, n_customers)``, able to live on after March 2026.

    ``transactions`` and ``items`` hold everything so far (the demo's, then each month added by
    :meth:`advance`); ``now`` is the first day not yet simulated. The world's state at a date —
    who is still alive, each customer's last purchase — follows from the transactions before it:
    a customer alive at the end of February 2026 drops out after ``lives_left`` more purchases.
    """

    def __init__(self, seed: int = 0, n_customers: int = 20_000):
        demo, hidden = _demo(seed, n_customers)
        self.seed = seed
        #: the demo the world started from (shared between worlds of the same seed and size:
        #: read it, do not change it)
        self.demo: Demo = demo
        self.customers = demo.customers.copy()
        #: per customer (in ``customers`` order): rate, dropout, basket, never_buys, alive and
        #: lives_left at the end of February 2026
        self.latent = hidden.latent.copy()
        self._popularity = hidden.popularity
        self._index = pd.Index(self.customers["customer_id"])
        #: the world's mean order value (the demo's orders), for :meth:`true_margin`
        self.order_value = float(demo.transactions["amount"].mean())
        self.transactions = demo.transactions.copy()
        self.items = demo.items.copy()
        self.now = CAMPAIGN[1] + pd.Timedelta("1D")

    @classmethod
    def from_folder(cls, folder: str | Path, seed: int = 0) -> DemoWorld:
        """The world as a cycle's folder left it: the demo (``seed``, as many customers as the
        folder's ``customers.csv``) with the folder's transactions and items, up to the end of
        its plan's period. Refuses a folder the demo with this seed did not start."""
        folder = Path(folder)
        plan = Plan.from_yaml(folder / "plan.yaml")
        paths = plan.data
        customers = pd.read_csv(paths.customers or folder / "customers.csv", usecols=[0])
        world = cls(seed=seed, n_customers=len(customers))
        tx = pd.read_csv(
            paths.transactions or folder / "transactions.csv",
            dtype={"order_id": str, "customer_id": str},
            parse_dates=["order_date"],
        )
        own = world.transactions
        same = (
            len(tx) >= len(own)
            and (tx["order_id"].iloc[: len(own)].to_numpy() == own["order_id"].to_numpy()).all()
        )
        same = same and np.allclose(tx["amount"].iloc[: len(own)], own["amount"])
        same = same and (tx["customer_id"].iloc[: len(own)].to_numpy() == own["customer_id"]).all()
        if not same:
            raise ValueError(
                f"{folder}: these transactions do not start with the demo's for seed {seed} and"
                f" {len(customers):,} customers; pass the seed the demo was written with"
            )
        later = tx.iloc[len(own) :].astype(own.dtypes.to_dict())
        items = pd.read_csv(paths.items or folder / "items.csv", dtype={"order_id": str})
        world.transactions = pd.concat([own, later], ignore_index=True)
        world.items = pd.concat(
            [world.items, items.iloc[len(world.items) :].astype(world.items.dtypes.to_dict())],
            ignore_index=True,
        )
        world.now = pd.Timestamp(plan.period.end) + pd.Timedelta("1D")
        return world

    def write_demo(self, path: str | Path) -> Path:
        """The demo's own folder (cycle 1, March 2026), byte for byte as
        :func:`~closedloop.datasets.demo.write_demo` writes it for this seed and size."""
        return _write(self.demo, path)

    # --- the state at a date ------------------------------------------------------------------

    @property
    def transactions(self) -> pd.DataFrame:
        """Every order so far: the demo's, then each month :meth:`advance` added."""
        return self._transactions

    @transactions.setter
    def transactions(self, frame: pd.DataFrame) -> None:
        self._transactions = frame
        self._tx_row = self._index.get_indexer(frame["customer_id"])
        self._tx_when = frame["order_date"].to_numpy().astype("datetime64[ns]").astype(np.int64)

    def _last_purchase(self, asof: pd.Timestamp) -> np.ndarray:
        """Each customer's last purchase before ``asof`` (ns since the epoch; -1: none)."""
        before = self._tx_when < asof.value
        last = np.full(len(self._index), -1, dtype=np.int64)
        np.maximum.at(last, self._tx_row[before], self._tx_when[before])
        return last

    def alive(self, asof) -> np.ndarray:
        """Who has not dropped out by ``asof`` (one flag per customer, in ``customers`` order)."""
        asof = pd.Timestamp(asof)
        since = (self._tx_when >= CAMPAIGN[0].value) & (self._tx_when < asof.value)
        bought = np.bincount(self._tx_row[since], minlength=len(self._index))
        return self.latent["alive"].to_numpy() & (bought < self.latent["lives_left"].to_numpy())

    def _segment_of(self, asof) -> np.ndarray:
        """Each customer's segment as of ``asof``, "" for those a campaign cannot reach."""
        asof = pd.Timestamp(asof)
        last = self._last_purchase(asof)
        customers = self.customers
        join = customers["join_date"].to_numpy().astype("datetime64[ns]")
        eligible = (
            customers["online"].to_numpy()
            & (join < (asof - pd.DateOffset(months=1)).to_datetime64())
            & (last >= 0)
        )
        since = (asof - pd.DatetimeIndex(last.astype("datetime64[ns]"))).days.to_numpy()
        new = (asof - pd.DatetimeIndex(join)).days.to_numpy() <= 60
        segment = np.select(
            [new, since <= 90, since <= 240], ["new", "active", "at_risk"], "lapsed"
        )
        return np.where(eligible, segment, "")

    def segments(self, asof) -> pd.DataFrame:
        """``customer_id, segment`` as of ``asof`` for the customers a campaign can reach (online
        members who have bought and joined a month or more before ``asof``), by the demo's rule:
        new (joined within 60 days), active (last purchase within 90 days), at_risk (91-240),
        lapsed (> 240). As of 2026-03-01 these are the demo's March segments."""
        segment = self._segment_of(asof)
        eligible = segment != ""
        ids = self.customers["customer_id"].to_numpy()[eligible]
        return pd.DataFrame({"customer_id": ids, "segment": segment[eligible].astype(object)})

    def base_probability(self, start, end) -> np.ndarray:
        """Each customer's true chance of buying at least once in ``start..end`` (whole days)
        without a campaign: ``1 - exp(-rate x season-weighted months)`` while alive at ``start``,
        1.5% a month once gone, none before joining."""
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        days = pd.date_range(start, end, freq="D")
        in_month = np.array([calendar.monthrange(d.year, d.month)[1] for d in days])
        months = float(np.sum(1 / in_month))
        seasonal = float(np.sum(SEASON[days.month.to_numpy() - 1] / in_month))
        rate = self.latent["rate"].to_numpy()
        base = np.where(
            self.alive(start), 1 - np.exp(-rate / 12 * seasonal), min(GONE_RATE * months, 1.0)
        )
        base[(self.customers["join_date"] > end).to_numpy()] = 0.0
        return base

    # --- a month under an assignment list -----------------------------------------------------

    def _rows(self, assignments: pd.DataFrame) -> np.ndarray:
        rows = self._index.get_indexer(assignments["customer_id"].astype(str))
        if (rows < 0).any():
            raise ValueError("assignments list customers who are not in the world")
        return rows

    def _uplift(self, assignments, start, control) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each assigned customer's row, segment at ``start`` (the assignment's own segment for
        anyone the world would not have segmented) and true uplift (by arm and that segment)."""
        rows = self._rows(assignments)
        segment = self._segment_of(start)[rows].astype(object)
        if "segment" in assignments.columns:
            given = assignments["segment"].astype(str).to_numpy()
            segment = np.where(segment == "", given, segment)
        uplift = np.array(
            [
                0.0 if arm == control else TRUE_UPLIFT.get((arm, seg), 0.0)
                for arm, seg in zip(assignments["arm"], segment, strict=True)
            ]
        )
        return rows, segment, uplift

    def _probabilities(self, start, end, assignments, control):
        base = self.base_probability(start, end)
        prob = base.copy()
        if assignments is not None and len(assignments):
            rows, _, uplift = self._uplift(assignments, start, control)
            prob[rows] = base[rows] + (1 - base[rows]) * uplift
        return base, prob

    def simulate(
        self,
        period_start,
        period_end,
        assignments: pd.DataFrame | None = None,
        *,
        control="control",
    ) -> Month:
        """The orders of ``period_start..period_end`` (whole days, on or after :attr:`now`)
        under ``assignments`` (``customer_id, arm`` and optionally ``segment``; ``None``: no
        campaign): everyone's natural purchases plus, for the treated, the true uplift of their
        arm in their current segment. The holdout (``control``) gets no effect; an arm without a
        true effect in :data:`TRUE_UPLIFT` has none. Deterministic for the world's seed and the
        period. Does not change the world (:meth:`advance` does)."""
        start, end = pd.Timestamp(period_start), pd.Timestamp(period_end)
        if start < self.now:
            raise ValueError(f"the world has already lived up to {self.now.date()}; start there")
        if end < start:
            raise ValueError(f"period end {end.date()} is before its start {start.date()}")
        _, prob = self._probabilities(start, end, assignments, control)
        rng = np.random.default_rng([self.seed, start.toordinal(), end.toordinal()])
        n = len(prob)
        mean = -np.log1p(-np.minimum(prob, 0.999))
        k = np.where(rng.random(n) < prob, 1 + rng.poisson(np.maximum(mean - prob, 0) * 0.5), 0)
        owner = np.repeat(np.arange(n), k)
        seconds = ((end - start).days + 1) * 86_400
        offset = rng.random(len(owner)) * (seconds - 12 * 3_600) + 12 * 3_600
        when = pd.to_datetime(start.value + (offset * 1e9).astype(np.int64))
        orders = pd.DataFrame({"row": owner, "when": when.floor("min")})
        first = int(self.transactions["order_id"].str[1:].astype("int64").max()) + 1
        transactions, items = _baskets(
            rng, self.customers, self.latent, orders, self._popularity, first_order=first
        )
        return Month(start, end, transactions, _brands(rng, items))

    def advance(self, period_start, period_end, assignments=None, *, control="control") -> Month:
        """:meth:`simulate` the period and add its orders to the world; returns the month."""
        month = self.simulate(period_start, period_end, assignments, control=control)
        self.transactions = pd.concat([self.transactions, month.transactions], ignore_index=True)
        self.items = pd.concat([self.items, month.items], ignore_index=True)
        self.now = month.end + pd.Timedelta("1D")
        return month

    # --- the truths to check the loop against -------------------------------------------------

    def true_effects(
        self, assignments: pd.DataFrame, period_start, period_end, *, control="control"
    ) -> pd.DataFrame:
        """The true effect of an assignment list over a period, by arm and segment (as the demo's
        ``effects``): ``arm, segment, n, control_rate, treated_rate, abs_lift`` (expected chance
        of buying without and with the arm) and ``extra_orders`` (expected extra orders per
        customer). Segments are the world's at the period's start."""
        start, end = pd.Timestamp(period_start), pd.Timestamp(period_end)
        base = self.base_probability(start, end)
        rows, segment, uplift = self._uplift(assignments, start, control)
        treated = base[rows] + (1 - base[rows]) * uplift
        frame = pd.DataFrame(
            {
                "arm": assignments["arm"].to_numpy(),
                "segment": segment,
                "control_rate": base[rows],
                "treated_rate": treated,
                "extra_orders": _expected_orders(treated) - _expected_orders(base[rows]),
            }
        )
        effects = frame.groupby(["arm", "segment"], sort=True).agg(
            n=("treated_rate", "size"),
            control_rate=("control_rate", "mean"),
            treated_rate=("treated_rate", "mean"),
            extra_orders=("extra_orders", "mean"),
        )
        effects.insert(3, "abs_lift", effects["treated_rate"] - effects["control_rate"])
        return effects.reset_index()

    def true_margin(
        self,
        assignments: pd.DataFrame,
        period_start,
        period_end,
        *,
        margin: float = 1.0,
        cost: Mapping[str, float] | None = None,
        control: str = "control",
    ) -> float:
        """The true incremental margin per contacted customer of an assignment list: over the
        treated (everyone not in ``control``), the mean of expected extra orders x the world's
        mean order value x ``margin`` - the arm's cost per contact (``cost``, default the demo's
        :data:`~closedloop.datasets.demo.COST`)."""
        cost = COST if cost is None else cost
        effects = self.true_effects(assignments, period_start, period_end, control=control)
        treated = effects[effects["arm"] != control]
        if treated.empty:
            raise ValueError("no treated customers in the assignment list")
        per = treated["extra_orders"] * self.order_value * margin - treated["arm"].map(
            lambda arm: cost.get(arm, 0.0)
        )
        return float(np.average(per, weights=treated["n"]))


def _expected_orders(prob: np.ndarray) -> np.ndarray:
    """Expected orders in the period of a customer who buys with probability ``prob`` (at least
    one order, and more at the demo's rate for a frequent buyer)."""
    mean = -np.log1p(-np.minimum(prob, 0.999))
    return prob * (1 + np.maximum(mean - prob, 0) * 0.5)


def next_cycle(
    folder: str | Path, next_plan: Plan | str | Path, out_folder: str | Path, seed: int = 0
) -> Path:
    """Write the next cycle's campaign folder; returns ``out_folder``.

    ``folder`` is a cycle's folder (the demo's from ``write_demo(folder, seed=seed, ...)``, or
    one this function wrote) and ``next_plan`` the plan the Act step wrote for the next cycle (a
    :class:`~closedloop.plan.Plan` or its YAML file), with ``status: ready``. ``out_folder`` gets:

    - ``assignments.csv``: the customers eligible at the next period's start whose segment is in
      ``next_plan.audience.segments`` (everyone eligible when it names none), split into
      ``next_plan.arms`` by :func:`closedloop.assign.randomise` within segments, seeded with
      ``seed * 1000 + cycle`` (so each cycle is its own draw);
    - ``transactions.csv``, ``items.csv``: the folder's, then the period's simulated orders;
    - ``customers.csv``: the folder's;
    - ``plan.yaml``: ``next_plan`` with its data paths on these files (no outcomes: the Check
      derives them from the transactions over the period). A segment of the audience with nobody
      in it at the period's start is left out, with the change recorded.

    ``seed`` is the demo's seed (the world is rebuilt from it); the same seed and cycle give the
    same folder, byte for byte.
    """
    folder, out = Path(folder), Path(out_folder)
    if not isinstance(next_plan, Plan):
        next_plan = Plan.from_yaml(next_plan, check_paths=False)
    if next_plan.status != "ready":
        raise ValueError(
            f"the next plan (cycle {next_plan.cycle}) has status {next_plan.status!r}: edit it"
            " and set status: ready before running it"
        )
    world = DemoWorld.from_folder(folder, seed=seed)
    start, end = pd.Timestamp(next_plan.period.start), pd.Timestamp(next_plan.period.end)
    if start != world.now:
        raise ValueError(
            f"the next plan starts {start.date()}, but {folder}'s data run to"
            f" {(world.now - pd.Timedelta('1D')).date()}"
        )
    eligible = world.segments(start)
    wanted = next_plan.audience.segments
    audience = eligible[eligible["segment"].isin(wanted)] if wanted else eligible
    raw = next_plan.model_dump(mode="python", exclude_none=True)
    if wanted:
        present = [s for s in wanted if s in set(audience["segment"])]
        if not present:
            raise ValueError(f"nobody is in the audience segments {wanted} on {start.date()}")
        if present != list(wanted):
            empty = ", ".join(s for s in wanted if s not in present)
            raw["audience"] = {"segments": present}
            change = Change(
                field="audience.segments",
                to=", ".join(present),
                reason=f"nobody eligible is in {empty} on {start.date()}",
            )
            raw["changes"] = [*raw.get("changes", []), change.model_dump()]
    assignments = assign.randomise(audience, next_plan.arms, seed=seed * 1000 + next_plan.cycle)
    month = world.advance(start, end, assignments, control=next_plan.control)

    out.mkdir(parents=True, exist_ok=True)
    source = Plan.from_yaml(folder / "plan.yaml").data
    _extend(
        source.transactions or folder / "transactions.csv",
        month.transactions,
        out / "transactions.csv",
    )
    _extend(source.items or folder / "items.csv", month.items, out / "items.csv")
    customers = Path(source.customers or folder / "customers.csv")
    if customers.resolve() != (out / "customers.csv").resolve():
        shutil.copyfile(customers, out / "customers.csv")
    assign.write(assignments, out / "assignments.csv")
    names = ("transactions", "assignments", "customers", "items")
    raw["data"] = {name: (out / f"{name}.csv").resolve() for name in names}
    Plan.parse(raw, source=f"cycle {next_plan.cycle} plan").to_yaml(
        out / "plan.yaml", relative_to=out
    )
    return out


def _extend(source: str | Path, rows: pd.DataFrame, target: Path) -> None:
    """``target``: the bytes of ``source`` followed by ``rows`` in the demo's CSV format."""
    source = Path(source)
    text = source.read_bytes()
    if text and not text.endswith(b"\n"):
        text += b"\n"
    with source.open() as file:
        header = file.readline().rstrip("\n").split(",")
    new = rows[header].to_csv(header=False, **_CSV).encode()
    target.write_bytes(text + new)
