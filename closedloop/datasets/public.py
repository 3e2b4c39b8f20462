"""The real public data sets, as contract-conforming tidy frames.

- CDNOW (Fader, Hardie & Lee 2005): the purchase log shipped inside the ``lifetimes`` package,
  read through ``importlib.resources`` (``lifetimes.datasets`` imports ``pkg_resources``, which
  setuptools >= 81 no longer ships).
- Hillstrom's MineThatData e-mail challenge (2008): 64,000 customers in three arms.
- Groceries (arules): 9,835 point-of-sale baskets over 169 item categories.

Hillstrom and Groceries take a path; with none they are downloaded once into a local cache
(``$CLOSEDLOOP_CACHE`` or ``~/.cache/closedloop``).
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import os
import urllib.request
import warnings
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml

from closedloop.io import read_transactions

HILLSTROM_URL = (
    "http://www.minethatdata.com/"
    "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv"
)
GROCERIES_URL = (
    "https://raw.githubusercontent.com/stedy/Machine-Learning-with-R-datasets/master/groceries.csv"
)


def _lifetimes_file(name: str) -> str:
    with warnings.catch_warnings():  # importing lifetimes 0.11 sets an option pandas 3 deprecates
        warnings.filterwarnings("ignore", "The 'mode.chained_assignment' option is deprecated")
        folder = importlib.resources.files("lifetimes")
    return (folder / "datasets" / name).read_text()


def cdnow(sample: bool = False) -> pd.DataFrame:
    """CDNOW purchases: ``customer_id, order_date, amount, quantity`` (one row per purchase record).

    ``sample=True`` gives the 1/10 sample of the BG/NBD paper (2,357 customers, 6,919 rows) with
    the sample's own customer numbers 1..2357, as in lifetimes' ``cdnow_customers_summary.csv``.
    """
    if sample:
        names = ["original_id", "customer_id", "date", "quantity", "amount"]
        text, header = _lifetimes_file("CDNOW_sample.txt"), None
    else:
        names = ["customer_id", "date", "quantity", "amount"]
        text, header = _lifetimes_file("CDNOW_master.txt"), 0
    raw = pd.read_csv(io.StringIO(text), sep=r"\s+", header=header, names=names, dtype=str)
    frame = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].str.lstrip("0"),
            "order_date": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["amount"],
            "quantity": raw["quantity"],
        }
    )
    return read_transactions(frame, source="CDNOW_sample.txt" if sample else "CDNOW_master.txt")


def cdnow_summary() -> pd.DataFrame:
    """lifetimes' published calibration summary of the CDNOW sample (weeks; calibration to 1997-09-30)."""
    frame = pd.read_csv(io.StringIO(_lifetimes_file("cdnow_customers_summary.csv")))
    frame["ID"] = frame["ID"].astype(str)
    return frame.rename(columns={"ID": "customer_id"}).set_index("customer_id")


class DownloadFailed(OSError):
    """A public data set could not be downloaded: pass its path, or put the file in the cache."""

    def __init__(self, name: str, url: str, target: Path, reason: object):
        self.name, self.url, self.target, self.reason = name, url, target, reason
        super().__init__(
            f"could not download {name} from {url} ({reason}): pass the file's path,"
            f" or put the file at {target}"
        )


def _cached(url: str, name: str) -> Path:
    cache = Path(os.environ.get("CLOSEDLOOP_CACHE", Path.home() / ".cache" / "closedloop"))
    target = cache / name
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                partial.write_bytes(response.read())
        except OSError as exc:  # URLError, HTTPError, timeouts, resets: no file, one message
            partial.unlink(missing_ok=True)
            raise DownloadFailed(name, url, target, getattr(exc, "reason", exc)) from None
        partial.replace(target)
    return target


def hillstrom(path: str | Path | None = None) -> pd.DataFrame:
    """Hillstrom's e-mail campaign: one row per customer, ``customer_id`` and an ``arm`` column.

    Arms are the original ``segment`` values: "Mens E-Mail", "Womens E-Mail" and the holdout
    "No E-Mail". Outcomes ``visit``, ``conversion`` (0/1) and ``spend`` cover the two weeks after
    the e-mail.
    """
    path = Path(path) if path is not None else _cached(HILLSTROM_URL, "hillstrom.csv")
    frame = pd.read_csv(path)
    frame = frame.rename(columns={"segment": "arm"})
    frame.insert(0, "customer_id", (frame.index + 1).astype(str))
    return frame


#: Hillstrom as a campaign: the holdout is "No E-Mail"; targets sit below the published rates
HILLSTROM_PLAN = {
    "campaign": "hillstrom-2008",
    "name": "MineThatData e-mail test (Hillstrom, March 2008)",
    "objective": "convert",
    "currency": "USD",
    "period": {"start": "2008-03-01", "end": "2008-03-14"},
    "audience": {"segments": ["mens buyer", "womens buyer", "both"]},
    "arms": {"No E-Mail": 0.333334, "Mens E-Mail": 0.333333, "Womens E-Mail": 0.333333},
    "control": "No E-Mail",
    "targets": {
        "visit_rate": 0.15,
        "conversion_rate": 0.01,
        "relative_lift": {"metric": "conversion", "min": 0.5},
        "incremental_revenue": 20000,
    },
    "data": {"assignments": "assignments.csv", "outcomes": "outcomes.csv"},
}


def write_hillstrom(out: str | Path = "data/hillstrom", path: str | Path | None = None) -> Path:
    """Hillstrom's test as a campaign folder: ``assignments.csv``, ``outcomes.csv``, ``plan.yaml``.

    Assignments carry the arm and a ``segment`` from the purchase history (mens buyer, womens
    buyer, both); outcomes are ``visited, converted, revenue`` over the two weeks after the e-mail.
    The plan compares Mens and Womens e-mail against the "No E-Mail" holdout.
    """
    frame = hillstrom(path)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    bought = frame["mens"].astype(bool).astype(int) + 2 * frame["womens"].astype(bool).astype(int)
    segment = bought.map({1: "mens buyer", 2: "womens buyer", 3: "both"})
    assignments = frame[["customer_id", "arm", "channel"]].assign(segment=segment)
    outcomes = frame[["customer_id", "visit", "conversion", "spend"]].rename(
        columns={"visit": "visited", "conversion": "converted", "spend": "revenue"}
    )
    assignments.to_csv(folder / "assignments.csv", index=False, lineterminator="\n")
    outcomes.to_csv(folder / "outcomes.csv", index=False, lineterminator="\n")
    text = yaml.safe_dump(HILLSTROM_PLAN, sort_keys=False, allow_unicode=True)
    (folder / "plan.yaml").write_text(text)
    return folder


def groceries(
    path: str | Path | None = None, form: Literal["baskets", "long"] = "baskets"
) -> list[list[str]] | pd.DataFrame:
    """The Groceries baskets: a list of item lists, or (``form="long"``) a frame ``order_id, item``.

    Item names are stripped (the file has ``"cream cheese "``); the empty header line is skipped.
    """
    path = Path(path) if path is not None else _cached(GROCERIES_URL, "groceries.csv")
    with open(path, newline="") as handle:
        rows = [[item.strip() for item in row if item.strip()] for row in csv.reader(handle)]
    baskets = [row for row in rows if row]
    if form == "baskets":
        return baskets
    if form != "long":
        raise ValueError(f"form must be 'baskets' or 'long', not {form!r}")
    return pd.DataFrame(
        [(str(i + 1), item) for i, basket in enumerate(baskets) for item in basket],
        columns=["order_id", "item"],
    )
