"""The demo retailer: a deterministic, realistic data set that every notebook and the demo report use.

A grocery-and-household chain with a membership programme. Two years of purchases (April 2024 to
March 2026) come from a BG/NBD-like process — each customer buys at their own Poisson rate,
thinned by a seasonal curve (December high, February low), and may drop out after any purchase —
so there are many one-time buyers, a heavy tail of loyal ones, and real churn. Baskets hold items
from a catalogue in which some pairs have real affinity (pasta → pasta sauce, ...). In March 2026 a
win-back campaign contacts reachable members with two arms (sms, wecom) and a 10% holdout; its
true effect differs by segment and is stored in ``effects``. Leads from the acquisition channels
(store, poster QR, app, WeCom, referral) flow through touch → visit → register → purchase.
Stores have guides (导购): each member who shops in a store is assigned to one (``home_store``,
``guide``); every member has the store where she joined (``join_store``: her home store, else
online or a store); and the stores also take anonymous receipts from shoppers who gave no member
card (``receipts``: no customer id, not members).

Same seed, same frames, same bytes on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HISTORY_START = pd.Timestamp("2024-04-01")
BASELINE = (pd.Timestamp("2026-01-01"), pd.Timestamp("2026-02-28"))
CAMPAIGN = (pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-31"))
EARLIEST_JOIN = pd.Timestamp("2021-01-01")

#: relative purchase intensity by calendar month (Jan..Dec)
SEASON = np.array([0.85, 0.72, 0.95, 0.95, 1.0, 0.95, 0.92, 1.0, 0.95, 1.05, 1.25, 1.45])

SOURCE_CHANNELS = {"store": 0.40, "wecom": 0.20, "poster_qr": 0.15, "app": 0.15, "referral": 0.10}
CITIES = {"Shanghai": 0.30, "Hangzhou": 0.22, "Suzhou": 0.18, "Nanjing": 0.15, "Ningbo": 0.15}
ARMS = {"control": 0.10, "sms": 0.45, "wecom": 0.45}
COST = {"sms": 0.05, "wecom": 0.02}

#: the true effect: extra probability of buying in March, by arm and segment (persuadable share)
TRUE_UPLIFT = {
    ("sms", "new"): 0.010,
    ("sms", "active"): 0.000,
    ("sms", "at_risk"): 0.050,
    ("sms", "lapsed"): 0.040,
    ("wecom", "new"): 0.080,
    ("wecom", "active"): 0.020,
    ("wecom", "at_risk"): 0.100,
    ("wecom", "lapsed"): 0.030,
}

#: acquisition funnel: P(visit | touch), P(register | visit), P(purchase | register) by channel
FUNNEL_STEPS = {
    "store": (0.40, 0.35, 0.60),
    "poster_qr": (0.22, 0.30, 0.45),
    "app": (0.15, 0.40, 0.50),
    "wecom": (0.30, 0.45, 0.55),
    "referral": (0.45, 0.50, 0.65),
}

#: catalogue: item -> (category, price)
CATALOGUE = {
    "whole milk": ("dairy", 2.9),
    "yogurt": ("dairy", 3.5),
    "butter": ("dairy", 4.2),
    "cheese": ("dairy", 6.8),
    "cream cheese": ("dairy", 3.9),
    "eggs": ("dairy", 3.2),
    "bread": ("bakery", 2.5),
    "croissants": ("bakery", 4.5),
    "cake": ("bakery", 12.0),
    "apples": ("fresh", 3.8),
    "bananas": ("fresh", 2.2),
    "tomatoes": ("fresh", 3.0),
    "salad": ("fresh", 2.8),
    "berries": ("fresh", 5.9),
    "chicken": ("fresh", 9.5),
    "beef steak": ("fresh", 18.0),
    "salmon": ("fresh", 16.5),
    "pasta": ("pantry", 1.9),
    "pasta sauce": ("pantry", 3.4),
    "rice": ("pantry", 5.5),
    "olive oil": ("pantry", 9.9),
    "tortillas": ("pantry", 2.9),
    "salsa": ("pantry", 3.6),
    "cereal": ("pantry", 4.8),
    "coffee beans": ("pantry", 11.5),
    "tea": ("pantry", 6.5),
    "soda": ("drinks", 1.8),
    "juice": ("drinks", 3.3),
    "beer": ("drinks", 8.9),
    "wine": ("drinks", 24.0),
    "water": ("drinks", 1.2),
    "chips": ("snacks", 2.6),
    "chocolate": ("snacks", 3.1),
    "cookies": ("snacks", 2.9),
    "nuts": ("snacks", 6.9),
    "diapers": ("baby", 15.9),
    "baby wipes": ("baby", 4.9),
    "baby food": ("baby", 2.4),
    "shampoo": ("household", 7.5),
    "detergent": ("household", 12.9),
    "toilet paper": ("household", 8.5),
    "dish soap": ("household", 3.9),
}
#: item pairs bought together far more often than chance: (antecedent, consequent, P(add))
AFFINITY = [
    ("pasta", "pasta sauce", 0.55),
    ("tortillas", "salsa", 0.60),
    ("chips", "soda", 0.45),
    ("diapers", "baby wipes", 0.50),
    ("coffee beans", "whole milk", 0.40),
    ("bread", "butter", 0.30),
    ("beef steak", "wine", 0.35),
    ("cereal", "whole milk", 0.35),
]
CATEGORIES = sorted({category for category, _ in CATALOGUE.values()})
#: brands by category: each item comes in two of its category's brands (the first more common)
CATEGORY_BRANDS = {
    "dairy": ("Bright", "Mengniu", "Yili"),
    "bakery": ("Ganso", "House"),
    "fresh": ("FarmFresh", "House"),
    "pantry": ("Lee Kum Kee", "Barilla", "House"),
    "drinks": ("Nongfu", "Tsingtao", "House"),
    "snacks": ("Three Squirrels", "Oreo", "House"),
    "baby": ("Pampers", "Feihe"),
    "household": ("Blue Moon", "Vinda", "House"),
}
#: reachability columns of the customers (the contact channels, strongest first)
REACH = ("reach_wecom", "reach_group", "reach_app", "reach_sms")
#: points: 1 point per yuan spent by members; a redemption is at least this many points
REDEEM_MIN = 200
STORES = [f"S{i:02d}" for i in range(1, 13)]
#: guides (导购) per store, and anonymous store receipts per member store order
GUIDES_PER_STORE = 3
ANONYMOUS_SHARE = 0.25


@dataclass(frozen=True)
class Demo:
    """The demo retailer's tables, the campaign's true effects, and its plan."""

    customers: pd.DataFrame
    transactions: pd.DataFrame
    items: pd.DataFrame
    assignments: pd.DataFrame
    outcomes: pd.DataFrame
    events: pd.DataFrame
    effects: pd.DataFrame
    points: pd.DataFrame
    receipts: pd.DataFrame
    plan: dict = field(repr=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The frames by name, in the order they are written."""
        names = [
            "customers",
            "transactions",
            "items",
            "assignments",
            "outcomes",
            "events",
            "effects",
            "points",
            "receipts",
        ]
        return {name: getattr(self, name) for name in names}


def make_demo(seed: int = 0, n_customers: int = 20_000) -> Demo:
    """Build the demo retailer; deterministic for ``seed``.

    ``n_customers`` counts everyone who joined by the end of March 2026, including the members
    recruited in March through the acquisition funnel.
    """
    return _build(seed, n_customers)[0]


@dataclass(frozen=True)
class _Latent:
    """What the demo knows and does not publish: each customer's latent state at the end of
    February 2026 (``rate``, ``dropout``, ``basket``, ``never_buys``, ``alive`` and ``lives_left``,
    the purchases left before dropping out) and the catalogue's item popularity."""

    latent: pd.DataFrame
    popularity: np.ndarray
    n_old: int


def _build(seed: int, n_customers: int) -> tuple[Demo, _Latent]:
    """The demo and its latent state (:mod:`closedloop.datasets.world` continues it)."""
    if n_customers < 500:
        raise ValueError(f"n_customers must be at least 500 for a usable demo, not {n_customers}")
    rng = np.random.default_rng(seed)
    events_acq, recruits = _acquisition(rng, n_leads=int(n_customers * 0.12))
    n_old = n_customers - len(recruits)
    customers = _customers(rng, n_old, recruits)
    latent = _latent(rng, len(customers))
    history = _history(rng, customers, latent, recruits_from=n_old)
    assignments = _assign(rng, customers, history)
    march, effects = _march(rng, customers, latent, assignments, recruits, n_old)
    orders = pd.concat([history, march], ignore_index=True)
    popularity = _popularity(rng)
    transactions, items = _baskets(rng, customers, latent, orders, popularity)
    outcomes = _outcomes(assignments, transactions, march)
    events = _campaign_events(rng, assignments, outcomes, transactions, events_acq)
    # what the contact lists need, from a generator of its own: the draws above stay the same
    extra = np.random.default_rng(seed + 1000)
    customers = _contact_data(extra, customers)
    items = _brands(extra, items)
    points = _points(extra, customers, transactions)
    # stores' guides and anonymous receipts, from a generator of their own as well
    stores = np.random.default_rng(seed + 2000)
    customers = _guides(stores, customers, transactions)
    receipts = _receipts(stores, transactions)
    customers = _join_stores(np.random.default_rng(seed + 3000), customers)
    demo = Demo(
        customers=customers,
        transactions=transactions,
        items=items,
        assignments=assignments.drop(columns="_row"),
        outcomes=outcomes,
        events=events,
        effects=effects,
        points=points,
        receipts=receipts,
        plan=_plan(),
    )
    return demo, _Latent(latent=latent, popularity=popularity, n_old=n_old)


def write_demo(path: str | Path = "data/demo", seed: int = 0, n_customers: int = 20_000) -> Path:
    """Write the demo to ``path`` as CSV files plus ``plan.yaml``; returns the folder."""
    return _write(make_demo(seed=seed, n_customers=n_customers), path)


def _write(demo: Demo, path: str | Path) -> Path:
    """Write a built demo to ``path`` as :func:`write_demo` does."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in demo.tables().items():
        frame.to_csv(
            folder / f"{name}.csv",
            index=False,
            date_format="%Y-%m-%d %H:%M:%S",
            lineterminator="\n",
        )
    plan = dict(demo.plan)
    tables = ("transactions", "assignments", "outcomes", "events", "customers", "items", "points")
    plan["data"] = {name: f"{name}.csv" for name in tables}
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False, allow_unicode=True))
    (folder / "health.yaml").write_text(yaml.safe_dump(HEALTH, sort_keys=False, allow_unicode=True))
    return folder


def _acquisition(rng, n_leads):
    """March 2026 leads from each acquisition channel and how far each got."""
    channels = np.array(list(SOURCE_CHANNELS))
    weights = np.array([0.30, 0.25, 0.20, 0.15, 0.10])
    channel = rng.choice(channels, size=n_leads, p=weights)
    steps = np.array([FUNNEL_STEPS[c] for c in channel])
    reached = np.cumprod(rng.random((n_leads, 3)) < steps, axis=1).astype(bool)
    start = CAMPAIGN[0].value + rng.integers(0, 30 * 86_400, n_leads) * 10**9
    gaps = rng.exponential([3_600, 86_400, 2 * 86_400], size=(n_leads, 3)).cumsum(axis=1)
    times = start[:, None] + (gaps * 10**9).astype(np.int64)
    times = np.minimum(times, (CAMPAIGN[1] + pd.Timedelta("23h59min")).value)
    lead_id = np.array([f"L{i:06d}" for i in range(1, n_leads + 1)])
    rows = [
        pd.DataFrame(
            {"entity_id": lead_id, "stage": "touch", "timestamp": start, "channel": channel}
        )
    ]
    for k, stage in enumerate(["visit", "register", "purchase"]):
        hit = reached[:, k]
        rows.append(
            pd.DataFrame(
                {
                    "entity_id": lead_id[hit],
                    "stage": stage,
                    "timestamp": times[hit, k],
                    "channel": channel[hit],
                }
            )
        )
    events = pd.concat(rows, ignore_index=True)
    events["timestamp"] = pd.to_datetime(events["timestamp"])
    registered = reached[:, 1]
    recruits = pd.DataFrame(
        {
            "lead_id": lead_id[registered],
            "channel": channel[registered],
            "join_time": pd.to_datetime(times[registered, 1]),
            "buy_time": pd.to_datetime(times[registered, 2]),
            "buys": reached[registered, 2],
        }
    )
    return events, recruits


def _customers(rng, n_old, recruits):
    """Customer master: join dates grow over time; recruits join in March 2026."""
    u = rng.random(n_old)
    span = (CAMPAIGN[0] - pd.Timedelta("1D") - EARLIEST_JOIN).days
    # density rising linearly over time: inverse CDF of a triangular-ish ramp
    days = np.clip(
        ((np.sqrt(0.15**2 + (1 - 0.15**2) * u) - 0.15) / (1 - 0.15)) * span, 0, span
    ).astype(int)
    join = np.sort(EARLIEST_JOIN.value + days.astype(np.int64) * 86_400 * 10**9)
    join_date = pd.to_datetime(
        np.concatenate([join, recruits["join_time"].dt.normalize().to_numpy().astype(np.int64)])
    )
    n = n_old + len(recruits)
    source = np.concatenate(
        [
            rng.choice(list(SOURCE_CHANNELS), size=n_old, p=list(SOURCE_CHANNELS.values())),
            recruits["channel"],
        ]
    )
    ids = np.array([f"C{i:06d}" for i in range(1, n + 1)])
    referrer = np.full(n, None, dtype=object)
    is_ref = np.flatnonzero(source == "referral")
    is_ref = is_ref[is_ref > 0]
    referrer[is_ref] = ids[(rng.random(len(is_ref)) * is_ref).astype(int)]
    is_member = np.concatenate([rng.random(n_old) < 0.80, np.ones(len(recruits), bool)])
    online_p = np.where(np.isin(source, ["wecom", "app", "poster_qr", "referral"]), 0.92, 0.65)
    online = (rng.random(n) < online_p) & is_member
    return pd.DataFrame(
        {
            "customer_id": ids,
            "join_date": join_date,
            "is_member": is_member,
            "online": online,
            "source_channel": source,
            "referrer_id": pd.array(referrer, dtype="str"),
            "city": rng.choice(list(CITIES), size=n, p=list(CITIES.values())),
            "favourite_category": rng.choice(CATEGORIES, size=n),
        }
    )


def _latent(rng, n):
    """Each customer's purchase rate (per year), dropout probability, ticket scale, basket size."""
    return pd.DataFrame(
        {
            "rate": rng.gamma(0.9, 6.0, n) + 0.3,
            "dropout": rng.beta(1.3, 7.0, n),
            "basket": rng.gamma(2.0, 0.9, n),
            "never_buys": rng.random(n) < 0.12,
        }
    )


def _history(rng, customers, latent, recruits_from):
    """Purchases from joining to the end of February 2026, kept from April 2024 on."""
    old = np.arange(recruits_from)
    join = customers["join_date"].to_numpy()[old]
    end = BASELINE[1] + pd.Timedelta("1D")
    years = (end - pd.to_datetime(join)).days.to_numpy() / 365.25
    rate = latent["rate"].to_numpy()[old]
    n_cand = rng.poisson(rate * years * SEASON.max() / SEASON.mean())
    owner = np.repeat(old, n_cand)
    offset = rng.random(len(owner)) * np.repeat(years, n_cand) * 365.25
    when = np.repeat(join, n_cand) + (offset * 86_400e9).astype("timedelta64[ns]")
    month = pd.DatetimeIndex(when).month.to_numpy() - 1
    keep = rng.random(len(owner)) < SEASON[month] / SEASON.max()
    cand = pd.DataFrame({"row": owner[keep], "when": when[keep]})
    # the joining purchase: most buyers buy on the day they join
    buyers = old[~latent["never_buys"].to_numpy()[old]]
    first = pd.DataFrame(
        {"row": buyers, "when": customers["join_date"].to_numpy()[buyers] + np.timedelta64(10, "h")}
    )
    cand = pd.concat([first, cand[np.isin(cand["row"], buyers)]]).sort_values(
        ["row", "when"], kind="stable"
    )
    # BG/NBD dropout: after each purchase the customer leaves with their own probability
    lives = rng.geometric(latent["dropout"].to_numpy())
    nth = cand.groupby("row").cumcount().to_numpy()
    cand = cand[nth < lives[cand["row"].to_numpy()]]
    counts = cand.groupby("row").size().reindex(range(len(customers)), fill_value=0).to_numpy()
    latent["alive"] = (lives > counts) & ~latent["never_buys"].to_numpy()
    latent["lives_left"] = lives - counts
    cand = cand[cand["when"] >= HISTORY_START]
    return cand.assign(when=cand["when"].dt.floor("min"))


def _assign(rng, customers, history):
    """Campaign audience: reachable members who have bought and joined before February 2026."""
    last = history.groupby("row")["when"].max()
    eligible = customers["online"] & (customers["join_date"] < pd.Timestamp("2026-02-01"))
    rows = np.flatnonzero(eligible.to_numpy() & np.isin(np.arange(len(customers)), last.index))
    join = customers["join_date"].to_numpy()[rows]
    since = (CAMPAIGN[0] - pd.to_datetime(last.reindex(rows).to_numpy())).days.to_numpy()
    new = (CAMPAIGN[0] - pd.to_datetime(join)).days.to_numpy() <= 60
    segment = np.select([new, since <= 90, since <= 240], ["new", "active", "at_risk"], "lapsed")
    arm = rng.choice(list(ARMS), size=len(rows), p=list(ARMS.values()))
    sent = CAMPAIGN[0] + pd.to_timedelta(np.where(arm == "sms", 10, 11), unit="h")
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy()[rows],
            "arm": arm,
            "segment": segment,
            "sent_at": pd.DatetimeIndex(sent).where(arm != "control"),
            "touch_channel": np.where(arm == "control", None, arm),
            "cost": np.array([COST.get(a, 0.0) for a in arm]),
            "_row": rows,
        }
    ).astype({"touch_channel": "str"})


def _march(rng, customers, latent, assignments, recruits, n_old):
    """March 2026 orders: the natural rhythm, the campaign's persuaded buyers, and recruits."""
    n = len(customers)
    alive = latent["alive"].to_numpy()
    base = np.where(alive, 1 - np.exp(-latent["rate"].to_numpy() / 12 * SEASON[2]), 0.015)
    base[n_old:] = 0.0
    prob = base.copy()
    rows = assignments["_row"].to_numpy()
    uplift = np.array(
        [
            TRUE_UPLIFT.get((a, s), 0.0)
            for a, s in zip(assignments["arm"], assignments["segment"], strict=True)
        ]
    )
    prob[rows] = base[rows] + (1 - base[rows]) * uplift
    mean = -np.log1p(-np.minimum(prob, 0.999))
    k = np.where(rng.random(n) < prob, 1 + rng.poisson(np.maximum(mean - prob, 0) * 0.5), 0)
    owner = np.repeat(np.arange(n), k)
    offset = rng.random(len(owner)) * (31 * 86_400 - 12 * 3_600) + 12 * 3_600
    when = CAMPAIGN[0].value + (offset * 1e9).astype(np.int64)
    bought = recruits["buys"].to_numpy()
    recruit_rows = n_old + np.flatnonzero(bought)
    orders = pd.DataFrame(
        {
            "row": np.concatenate([owner, recruit_rows]),
            "when": pd.to_datetime(
                np.concatenate([when, recruits["buy_time"].to_numpy()[bought].astype(np.int64)])
            ),
        }
    )
    effects = _effects(assignments, base[rows], uplift)
    return orders.assign(when=orders["when"].dt.floor("min")), effects


def _effects(assignments, base, uplift):
    """True March conversion by arm and segment, as expected probabilities over the customers."""
    frame = assignments[["arm", "segment"]].assign(
        control_rate=base, rate=base + (1 - base) * uplift
    )
    effects = frame.groupby(["arm", "segment"], sort=True).agg(
        n=("rate", "size"), control_rate=("control_rate", "mean"), treated_rate=("rate", "mean")
    )
    effects["abs_lift"] = effects["treated_rate"] - effects["control_rate"]
    effects["rel_lift"] = effects["abs_lift"] / effects["control_rate"]
    return effects.reset_index().round(6)


def _popularity(rng):
    """Each catalogue item's popularity: a Zipf-like curve in a random order."""
    popularity = 1.0 / np.arange(1, len(CATALOGUE) + 1) ** 0.6
    return popularity[rng.permutation(len(CATALOGUE))]


def _baskets(rng, customers, latent, orders, popularity, first_order=1):
    """Items for every order (favourite category favoured, affinity pairs added) and order totals;
    order ids are numbered in time order from ``first_order``."""
    orders = orders.sort_values(["when", "row"], kind="stable").reset_index(drop=True)
    n_orders = len(orders)
    names = np.array(list(CATALOGUE))
    category = np.array([CATALOGUE[i][0] for i in names])
    price = np.array([CATALOGUE[i][1] for i in names])
    fav = customers["favourite_category"].to_numpy()[orders["row"].to_numpy()]
    n_lines = 1 + rng.poisson(latent["basket"].to_numpy()[orders["row"].to_numpy()])
    line_order = np.repeat(np.arange(n_orders), n_lines)
    line_fav = np.repeat(fav, n_lines)
    item = np.empty(len(line_order), dtype=np.int64)
    for cat in CATEGORIES:
        weights = popularity * np.where(category == cat, 4.0, 1.0)
        cdf = np.cumsum(weights / weights.sum())
        here = line_fav == cat
        item[here] = np.minimum(np.searchsorted(cdf, rng.random(here.sum())), len(names) - 1)
    extra_order, extra_item = [], []
    index = {name: i for i, name in enumerate(names)}
    for antecedent, consequent, p_add in AFFINITY:
        hit = (item == index[antecedent]) & (rng.random(len(item)) < p_add)
        extra_order.append(line_order[hit])
        extra_item.append(np.full(hit.sum(), index[consequent]))
    lines = pd.DataFrame(
        {
            "order": np.concatenate([line_order, *extra_order]),
            "item": np.concatenate([item, *extra_item]),
        }
    )
    lines = lines.drop_duplicates(["order", "item"]).sort_values(["order", "item"], kind="stable")
    lines["quantity"] = 1 + rng.poisson(0.35, len(lines))
    lines["value"] = lines["quantity"] * price[lines["item"].to_numpy()]
    order_ids = np.array([f"O{i:07d}" for i in range(first_order, first_order + n_orders)])
    totals = lines.groupby("order").agg(amount=("value", "sum"), quantity=("quantity", "sum"))
    rows = orders["row"].to_numpy()
    online = customers["online"].to_numpy()[rows] & (rng.random(n_orders) < 0.35)
    transactions = pd.DataFrame(
        {
            "order_id": order_ids,
            "customer_id": customers["customer_id"].to_numpy()[rows],
            "order_date": orders["when"].to_numpy(),
            "amount": totals["amount"].round(2).to_numpy(),
            "quantity": totals["quantity"].astype(float).to_numpy(),
            "channel": np.where(online, "online", "store"),
            "store": np.where(online, "online", rng.choice(STORES, size=n_orders)),
            "is_member": customers["is_member"].to_numpy()[rows],
        }
    )
    items = pd.DataFrame(
        {
            "order_id": order_ids[lines["order"].to_numpy()],
            "item": names[lines["item"].to_numpy()],
            "category": category[lines["item"].to_numpy()],
            "quantity": lines["quantity"].to_numpy(),
            "price": price[lines["item"].to_numpy()],
        }
    )
    return transactions, items


def _outcomes(assignments, transactions, march):
    """Per assigned customer over the campaign period: visited, converted, orders, revenue."""
    in_period = transactions[transactions["order_date"] >= CAMPAIGN[0]]
    per = in_period.groupby("customer_id").agg(orders=("amount", "size"), revenue=("amount", "sum"))
    out = assignments[["customer_id", "arm", "segment"]].merge(per, on="customer_id", how="left")
    out["orders"] = out["orders"].fillna(0).astype(int)
    out["revenue"] = out["revenue"].fillna(0.0).round(2)
    out["converted"] = (out["orders"] > 0).astype(int)
    return out[["customer_id", "arm", "segment", "converted", "orders", "revenue"]]


def _campaign_events(rng, assignments, outcomes, transactions, events_acq):
    """Campaign funnel for contacted members: touch → visit → register (claims the coupon) → purchase.

    Holdout members are not contacted, so they have no events; every assigned customer's visit
    (store or app, touched or not) is in ``outcomes.visited``.
    """
    treated = assignments["arm"].to_numpy() != "control"
    converted = outcomes["converted"].to_numpy().astype(bool)
    visit_p = np.select(
        [assignments["arm"] == "wecom", assignments["arm"] == "sms"], [0.20, 0.12], 0.08
    )
    visited = converted | (rng.random(len(assignments)) < visit_p)
    outcomes["visited"] = visited.astype(int)
    outcomes.insert(3, "visited", outcomes.pop("visited"))
    claimed = visited & treated & (rng.random(len(assignments)) < np.where(converted, 0.7, 0.3))
    first_buy = (
        transactions[transactions["order_date"] >= CAMPAIGN[0]]
        .groupby("customer_id")["order_date"]
        .min()
    )
    buy_time = first_buy.reindex(assignments["customer_id"]).to_numpy()
    sent = assignments["sent_at"].to_numpy()
    visit_time = np.where(
        converted,
        buy_time - np.timedelta64(2, "h"),
        sent + (rng.exponential(2 * 86_400, len(sent)) * 1e9).astype("timedelta64[ns]"),
    )
    visit_time = np.maximum(visit_time, sent + np.timedelta64(5, "m"))
    claim_time = visit_time + np.timedelta64(10, "m")
    ids, channel = assignments["customer_id"].to_numpy(), assignments["touch_channel"].to_numpy()
    parts = []
    for stage, mask, when in [
        ("touch", treated, sent),
        ("visit", treated & visited, visit_time),
        ("register", claimed, claim_time),
        ("purchase", treated & converted, buy_time),
    ]:
        parts.append(
            pd.DataFrame(
                {
                    "entity_id": ids[mask],
                    "stage": stage,
                    "timestamp": when[mask],
                    "channel": channel[mask],
                }
            )
        )
    campaign = pd.concat(parts, ignore_index=True).assign(journey="campaign")
    campaign["customer_id"] = campaign["entity_id"]
    acquisition = events_acq.assign(journey="acquisition", customer_id=pd.NA)
    events = pd.concat([campaign, acquisition], ignore_index=True)
    events["timestamp"] = pd.to_datetime(events["timestamp"]).dt.floor("min")
    events = events.sort_values(["timestamp", "entity_id", "stage"], kind="stable").reset_index(
        drop=True
    )
    return events.astype({"customer_id": "str"})


def _contact_data(rng, customers):
    """Birthdays and reachability per channel, consistent with ``online`` and ``source_channel``.

    Online customers (members reachable online) are reachable on WeCom one-to-one (all who came
    through WeCom, 45% of the others), in a WeCom group (35% of those on WeCom) and in the app /
    official account (all who came through the app or a poster QR, half of the others; anyone
    online and on neither is on the app): ``online`` is exactly "reachable on WeCom, a group or
    the app". 85% of members left a phone number for SMS; non-members are reachable nowhere.
    70% of members gave a birthday (aged 18 to 70 in March 2026).
    """
    n = len(customers)
    online = customers["online"].to_numpy()
    member = customers["is_member"].to_numpy()
    source = customers["source_channel"].to_numpy()
    wecom = online & ((source == "wecom") | (rng.random(n) < 0.45))
    group = wecom & (rng.random(n) < 0.35)
    app = online & (np.isin(source, ["app", "poster_qr"]) | (rng.random(n) < 0.5))
    app |= online & ~wecom
    sms = member & (rng.random(n) < 0.85)
    age_days = rng.integers(18 * 365, 70 * 365, n)
    born = (CAMPAIGN[1] - pd.to_timedelta(age_days, unit="D")).to_numpy()
    birthday = pd.Series(born).where(member & (rng.random(n) < 0.70))
    return customers.assign(
        birthday=birthday.astype("datetime64[ns]").to_numpy(),
        reach_wecom=wecom,
        reach_group=group,
        reach_app=app,
        reach_sms=sms,
    )


def _brands(rng, items):
    """A ``brand`` on every order line: each item comes in two of its category's brands."""
    names = list(CATALOGUE)
    choices = {}
    for category, brands in CATEGORY_BRANDS.items():
        mine = [i for i in names if CATALOGUE[i][0] == category]
        for k, name in enumerate(mine):
            choices[name] = (brands[k % len(brands)], brands[(k + 1) % len(brands)])
    first = np.array([choices[i][0] for i in items["item"]], dtype=object)
    second = np.array([choices[i][1] for i in items["item"]], dtype=object)
    brand = np.where(rng.random(len(items)) < 0.65, first, second)
    return items.assign(brand=brand.astype("str"))


def _points(rng, customers, transactions):
    """The points ledger: members earn 1 point per yuan (whole points) on every purchase; about
    half of the members who ever hold :data:`REDEEM_MIN` usable points redeem once, some hundreds;
    the points no redemption used expire by the rolling rule (each lives 365 days).

    A redemption never takes more than the points usable that day under either rule: earned in
    the last 365 days and in the same calendar year (the ledger is valid for both rules)."""
    from closedloop import points as programme

    member = transactions["is_member"].to_numpy() & (transactions["amount"].to_numpy() > 0)
    earn = transactions.loc[member, ["customer_id", "order_date", "amount", "order_id"]]
    earn = earn.assign(points=np.floor(earn["amount"]).astype("int64"))
    earn = earn[earn["points"] > 0].sort_values(["customer_id", "order_date"], kind="stable")
    code = pd.factorize(earn["customer_id"])[0].astype("int64")
    day = earn["order_date"].dt.normalize()
    day_no = ((day - HISTORY_START).dt.days).to_numpy().astype("int64")
    year_start = pd.to_datetime(day.dt.year.astype("str") + "-01-01")
    year_no = ((year_start - HISTORY_START).dt.days).to_numpy().astype("int64")
    key = code * 100_000 + day_no
    cum = np.concatenate([[0], np.cumsum(earn["points"].to_numpy())])
    through = np.searchsorted(key, code * 100_000 + day_no, side="right")  # all of that day
    rolling = cum[through] - cum[np.searchsorted(key, key - (programme.ROLLING_DAYS - 1))]
    this_year = cum[through] - cum[np.searchsorted(key, code * 100_000 + year_no)]
    usable = np.minimum(rolling, this_year)
    # one redemption for half the customers who ever reach REDEEM_MIN, at a random such order
    eligible = usable >= REDEEM_MIN
    draw = np.where(eligible, rng.random(len(earn)), np.inf)
    pick = pd.Series(draw).groupby(code).idxmin().to_numpy()
    pick = pick[np.isfinite(draw[pick])]
    pick = pick[rng.random(len(pick)) < 0.5]
    amount = np.floor(usable[pick] * rng.uniform(0.3, 1.0, len(pick)) / 100) * 100
    redeem = pd.DataFrame(
        {
            "customer_id": earn["customer_id"].to_numpy()[pick],
            "date": earn["order_date"].to_numpy()[pick],
            "points": amount.astype("int64"),
            "kind": "redeem",
            "order_id": earn["order_id"].to_numpy()[pick],
        }
    )
    ledger = pd.concat(
        [
            pd.DataFrame(
                {
                    "customer_id": earn["customer_id"].to_numpy(),
                    "date": earn["order_date"].to_numpy(),
                    "points": earn["points"].to_numpy(),
                    "kind": "earn",
                    "order_id": earn["order_id"].to_numpy(),
                }
            ),
            redeem[redeem["points"] >= 100],
        ],
        ignore_index=True,
    )
    expire = programme.expiries(ledger, CAMPAIGN[1], "rolling")
    expire = expire.assign(points=expire["points"].round().astype("int64"), order_id=None)
    ledger = pd.concat([ledger, expire[expire["date"] <= CAMPAIGN[1]]], ignore_index=True)
    order = ledger["kind"].map({"earn": 0, "redeem": 1, "expire": 2})
    ledger = ledger.assign(_k=order).sort_values(["date", "customer_id", "_k"], kind="stable")
    ledger = ledger.drop(columns="_k").reset_index(drop=True)
    ledger["date"] = ledger["date"].astype("datetime64[ns]")
    return ledger.astype({"order_id": "str"})


def _guides(rng, customers, transactions):
    """Each member who bought in a physical store is assigned to the store where they bought most
    often (ties: the first store) and to one of its :data:`GUIDES_PER_STORE` guides ("S01-G2");
    other customers have neither."""
    physical = transactions[transactions["store"].isin(STORES)]
    physical = physical[physical["is_member"].to_numpy()]
    counts = physical.groupby(["customer_id", "store"]).size().rename("n").reset_index()
    counts = counts.sort_values(["customer_id", "n", "store"], ascending=[True, False, True])
    home = counts.drop_duplicates("customer_id").set_index("customer_id")["store"]
    home = home.reindex(customers["customer_id"])
    assigned = home.notna().to_numpy()
    guide = rng.integers(1, GUIDES_PER_STORE + 1, len(customers))
    labels = np.where(assigned, home.fillna("").to_numpy() + "-G" + guide.astype("str"), None)
    return customers.assign(
        home_store=pd.array(home.to_numpy(), dtype="str"),
        guide=pd.array(labels, dtype="str"),
    )


def _join_stores(rng, customers):
    """Where each member joined (``join_store``): her home store when she has one, else online
    for a member reachable online, else one of the :data:`STORES` at random; non-members none.
    It places the members who never bought, so conversion by store can be counted."""
    member = customers["is_member"].to_numpy()
    home = customers["home_store"].to_numpy(dtype=object, na_value=None)
    drawn = np.where(customers["online"].to_numpy(), "online", rng.choice(STORES, len(customers)))
    joined = np.where(pd.isna(home), drawn, home)
    return customers.assign(join_store=pd.array(np.where(member, joined, None), dtype="str"))


def _receipts(rng, transactions):
    """Anonymous store receipts: no customer id, not members; about :data:`ANONYMOUS_SHARE` per
    customers' store order, at the same stores and times of day, with smaller baskets."""
    store = transactions[transactions["store"].isin(STORES)]
    n = round(len(store) * ANONYMOUS_SHARE)
    base = store.iloc[np.sort(rng.choice(len(store), size=n, replace=False))]
    shift = rng.integers(-3 * 86_400, 3 * 86_400, n) * 10**9
    when = base["order_date"].to_numpy().astype("int64") + shift
    when = np.clip(when, HISTORY_START.value, (CAMPAIGN[1] + pd.Timedelta("23h59min")).value)
    quantity = 1 + rng.poisson(1.5, n)
    receipts = pd.DataFrame(
        {
            "order_id": [f"R{i:07d}" for i in range(1, n + 1)],
            "customer_id": pd.array([None] * n, dtype="str"),
            "order_date": pd.to_datetime(when).floor("min"),
            "amount": np.round(quantity * rng.gamma(3.0, 1.8, n), 2),
            "quantity": quantity.astype(float),
            "channel": "store",
            "store": rng.choice(STORES, size=n),
            "is_member": False,
        }
    )
    receipts = receipts.sort_values(["order_date", "order_id"], kind="stable")
    receipts["order_id"] = [f"R{i:07d}" for i in range(1, n + 1)]
    receipts["order_date"] = receipts["order_date"].astype("datetime64[ns]")
    return receipts.reset_index(drop=True)


#: the demo's member-health targets file (``closedloop health``): headquarters' monthly targets
#: on the KPI tree, the data beside it
HEALTH = {
    "campaign": "member-health",
    "name": "Demo retailer",
    "currency": "CNY",
    "by": "store",
    "targets": {
        "member_share": 0.75,
        "online_rate": 0.85,
        "purchase_frequency": 1.2,
        "avg_ticket": 25.0,
        "repurchase_rate": 0.1,
        "items_per_basket": 4.0,
        "churn_rate": 0.6,
    },
    "data": {
        "transactions": "transactions.csv",
        "receipts": "receipts.csv",
        "customers": "customers.csv",
    },
}


def _plan() -> dict:
    """The campaign's plan, in the shape of the design's plan file."""
    return {
        "campaign": "spring-winback-2026",
        "name": "Spring win-back push",
        "objective": "win back",
        "period": {"start": CAMPAIGN[0].date(), "end": CAMPAIGN[1].date()},
        "baseline": {"start": BASELINE[0].date(), "end": BASELINE[1].date()},
        "audience": {"segments": ["new", "active", "at_risk", "lapsed"]},
        "arms": dict(ARMS),
        "cost": dict(COST),
        "targets": {
            "conversion_rate": 0.25,
            "relative_lift": {"metric": "conversion", "min": 0.10},
            "incremental_revenue": 5000,
            "roi": 1.5,
            "funnel": {"visit": 0.30, "register": 0.16, "purchase": 0.10},
        },
    }
