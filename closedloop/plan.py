"""The plan file (计划, the P of PDCA): a campaign's targets, set in advance and in numbers.

Loaded from YAML with a safe loader and validated with pydantic: unknown keys, reversed dates,
allocations that do not sum to 1, a missing control arm, targets on unknown metrics and data
paths that do not exist are refused with one :class:`PlanError` naming the file and the field.
Paths in a plan resolve relative to the plan file and must be regular files inside the data root
(the plan's folder, unless ``data_root`` widens it). A table may also be a glob, a folder of
Parquet files or a database table or query (:class:`Source`); a password written in the plan is
refused (credentials come from the environment, see :mod:`closedloop.sources`). The loader
refuses YAML anchors and aliases (an alias bomb expands a few hundred bytes into gigabytes) and
duplicate keys (the second would silently win), and no error message repeats more than ~80
characters of an input value.
"""

from __future__ import annotations

import codecs
import datetime as dt
import glob
import itertools
import math
import os
import re
import reprlib
import urllib.parse
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

TABLES = ("transactions", "assignments", "events", "customers", "items", "outcomes", "points")


#: a plan is a few kilobytes; anything much larger is not a plan
MAX_PLAN_BYTES = 1_000_000


class PlanError(ValueError):
    """A plan file that cannot be run, with the file and the field at fault."""


class _PlanLoader(yaml.SafeLoader):
    """The safe loader without anchors, aliases and duplicate keys."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases (&name, *name) are not allowed in a plan: write each value"
                " out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: the base class says so
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {_short(key)}: the second value would silently replace the"
                    " first",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = _REPR.maxset = _REPR.maxtuple = 6
_REPR.maxlevel = 3


def _roots(data_root) -> list[Path]:
    """``data_root`` as a list of folders (None: none; one folder; or several)."""
    if data_root is None:
        return []
    if isinstance(data_root, str | Path):
        return [Path(data_root)]
    return [Path(r) for r in data_root]


def _short(value, limit: int = 80) -> str:
    """A bounded repr: never walks nor prints more than a few elements of a large value."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class Audience(_Strict):
    segments: list[str] | None = None


#: plan metric name -> outcome column (one row per assigned customer); the objectives' metrics
#: are defined in :mod:`closedloop.objectives`
METRIC_COLUMNS = {
    "conversion": "converted",
    "revenue": "revenue",
    "visit": "visited",
    "orders": "orders",
    "ticket": "ticket",
    "second_purchase": "second_purchase",
    "recruits": "recruited",
    "first_conversion": "first_conversion",
    "leads": "lead",
}
#: the campaign objectives (活动目标) a plan names
OBJECTIVES = ("recruit", "convert", "second purchase", "ticket", "frequency", "win back")


class RelativeLift(_Strict):
    """A relative-lift target, judged on one treated arm named before the data: ``arm``, or the
    plan's first treated arm (see :mod:`closedloop.scorecard`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    metric: Literal[tuple(METRIC_COLUMNS)] = "conversion"  # type: ignore[valid-type]
    min: float
    arm: str | None = None

    @field_validator("min", mode="before")
    @classmethod
    def _not_a_flag(cls, value):
        return _no_flag(value)


def _no_flag(value):
    """``value``, unless it is true or false: YAML's ``yes`` is no target."""
    if isinstance(value, bool):
        raise ValueError("a target is a number, not true or false")
    return value


_CHANGE = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]+)?)\s*(%?)")


class VsBaseline(_Strict):
    """A target set against the same metric over the plan's ``baseline`` period:
    ``{vs_baseline: +10%}`` (10% above it), ``-5%``, or an absolute change such as ``+0.02``."""

    vs_baseline: str | float

    @field_validator("vs_baseline", mode="before")
    @classmethod
    def _a_change(cls, value):
        # plain digits only: nan, inf, 1e309, 1_000 and True are not a change anyone writes
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return value
            found = None
        else:
            found = _CHANGE.fullmatch(value.strip()) if isinstance(value, str) else None
        if found is None or not math.isfinite(float(found.group(2))):
            raise ValueError(
                f"vs_baseline is a change such as +10%, -5% or +0.02, not {_short(value)}"
            )
        if found.group(1) == "-" and found.group(3) and float(found.group(2)) > 100:
            raise ValueError(
                f"vs_baseline {_short(value)} falls more than 100% below the baseline: a target"
                " cannot be negative"
            )
        return value

    @property
    def relative(self) -> bool:
        """True for a percentage change, False for an absolute one."""
        return isinstance(self.vs_baseline, str) and self.vs_baseline.strip().endswith("%")

    @property
    def change(self) -> float:
        """The change as a number: +10% -> 0.10, +0.02 -> 0.02."""
        found = _CHANGE.fullmatch(str(self.vs_baseline).strip())
        if found:
            sign, number, percent = found.groups()
            return (-1 if sign == "-" else 1) * float(number) / (100 if percent else 1)
        return float(self.vs_baseline)

    def implied(self, baseline: float) -> float:
        """The target this change implies on a baseline value."""
        return baseline * (1 + self.change) if self.relative else baseline + self.change

    def __str__(self) -> str:
        text = str(self.vs_baseline).strip()
        return text if text.startswith(("+", "-")) else f"+{text}"


#: targets on lifts, which have no baseline value (no campaign ran in the baseline)
LIFT_TARGETS = ("relative_lift", "incremental_revenue", "roi")
#: targets that are shares of customers
RATE_TARGETS = ("conversion_rate", "visit_rate", "second_purchase_rate", "first_conversion_rate")


class Targets(_Strict):
    """Numeric targets; each is optional, unknown names are refused. A level target (not a lift)
    may be written against the baseline (:class:`VsBaseline`). Numbers are finite and not
    ``true``/``false`` (YAML reads ``.inf`` and ``yes`` as numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    conversion_rate: float | VsBaseline | None = None
    visit_rate: float | VsBaseline | None = None
    relative_lift: RelativeLift | None = None
    incremental_revenue: float | None = None
    roi: float | None = None
    funnel: dict[str, float | VsBaseline] | None = None
    #: orders per contacted customer (frequency, 购买频次)
    orders_per_customer: float | VsBaseline | None = None
    #: revenue per order of the contacted customers (客单价)
    avg_ticket: float | VsBaseline | None = None
    #: contacted customers who bought twice, the second within ``metrics.second_purchase_days``
    second_purchase_rate: float | VsBaseline | None = None
    #: contacted customers who joined in the period (招募数)
    recruits: float | VsBaseline | None = None
    #: of those recruits, the share who bought on or after joining (首购转化率)
    first_conversion_rate: float | VsBaseline | None = None
    #: contacted customers who reached the funnel stage ``metrics.lead_stage`` (线索)
    leads: float | VsBaseline | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_a_flag(cls, value):
        if isinstance(value, dict) and "vs_baseline" not in value and "min" not in value:
            return {k: _no_flag(v) for k, v in value.items()}  # the funnel's stages
        return _no_flag(value)

    @field_validator("funnel")
    @classmethod
    def _rates(cls, value):
        for stage, rate in (value or {}).items():
            if isinstance(rate, float | int) and not 0 <= rate <= 1:
                raise ValueError(
                    f"funnel target for {_short(stage)} must be a rate in [0, 1], not {rate}"
                )
        return value

    @model_validator(mode="after")
    def _in_range(self):
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not isinstance(value, float | int) or name in LIFT_TARGETS:
                continue
            if name in RATE_TARGETS and not 0 <= value <= 1:
                raise ValueError(
                    f"{name} is a rate in [0, 1] (or {{vs_baseline: +10%}}), not {value:g}"
                )
            if value < 0:
                raise ValueError(f"{name} cannot be negative, not {value:g}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _no_baseline_for_lifts(cls, raw):
        for name in LIFT_TARGETS:
            value = raw.get(name) if isinstance(raw, dict) else None
            inner = (
                value.get("min") if name == "relative_lift" and isinstance(value, dict) else value
            )
            if isinstance(inner, dict) and "vs_baseline" in inner:
                raise ValueError(
                    f"{name} is a lift over the holdout: it has no baseline value (no campaign ran"
                    " in the baseline), give a number"
                )
        return raw

    def levels(self) -> dict:
        """Every target but the lifts, by its scorecard name (funnel stages as ``funnel_<stage>``)."""
        found = {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name not in (*LIFT_TARGETS, "funnel") and getattr(self, name) is not None
        }
        found.update({f"funnel_{s}": v for s, v in (self.funnel or {}).items()})
        return found


class MetricSettings(_Strict):
    """How the objectives' metrics are counted: a second purchase within
    ``second_purchase_days`` of the first purchase in the period; a lead is a contacted customer
    who reached the funnel stage ``lead_stage`` (线索)."""

    second_purchase_days: int = Field(30, ge=1, le=3660)
    lead_stage: str = "visit"


#: the engines a table can be read from, besides files
ENGINES = ("duckdb", "postgres", "spark")
#: a table name: up to three dot-separated identifiers (catalog.schema.table)
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}")
#: a password written into a connection string: in a URL's user part, as a keyword or a
#: URL parameter (``${VAR}``, a name read from the environment when connecting, is allowed)
_PASSWORD = (
    re.compile(r"^[a-z]+://[^/@?#]*:(?P<value>[^/@?#]*)@", re.I),
    re.compile(r"(?:^|\s)password\s*=\s*(?P<value>'[^']*'|\S*)", re.I),
    re.compile(r"[?&]password=(?P<value>[^&#]*)", re.I),
)
#: ``${NAME}`` in a connection string: the environment variable's value, read when connecting
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")


#: the environment variable naming the Spark session of a plan with ``engine: spark``
SPARK_VARIABLE = "CLOSEDLOOP_SPARK"
#: the session of ``engine: spark`` when neither the plan nor :data:`SPARK_VARIABLE` names one
SPARK_DEFAULT = "local[2]"
#: where a Spark session is: a Spark Connect URL or a master (local, local[N], local[N,M],
#: local[*], yarn, spark://, k8s://, mesos://), or "" for the session running in the process
_SPARK_AT = re.compile(
    r"|sc://[^\s/;?]+/?(;[^\s]*)?|local(\[(\*|\d+)(,\s*\d+)?\])?|yarn"
    r"|(spark|mesos)://[^\s/]+(,[^\s/]+)*|k8s://\S+"
)


def spark_problem(where: str) -> str | None:
    """What is wrong with a Spark session's place (None: nothing): not a master nor an
    ``sc://host:port/;key=value`` URL, or a secret written into the plan (a token or password
    parameter, a ``user:password@`` in the URL) rather than as ``${VARIABLE}``; the message
    never repeats the secret."""
    found = re.search(r"[;?&]\s*(token|password)\s*=\s*(?P<value>[^;&]*)", where, re.I)
    if found and not VARIABLE.fullmatch(found["value"].strip()):
        return "a token in the plan is refused: write ;token=${VARIABLE} and set that variable"
    found = re.search(r"://[^\s/@:]*:(?P<value>[^\s/@]*)@", where)
    if found and not VARIABLE.fullmatch(found["value"]):
        return "a password in the plan is refused: keep it out of the URL (a token as ;token=${VARIABLE})"
    if not _SPARK_AT.fullmatch(VARIABLE.sub("x", where.strip())):
        return (
            f"{_short(where)} is not a Spark session: give sc://host:15002 (Spark Connect), a"
            ' master (local[2], yarn, spark://host:7077, k8s://...) or "" for the running one'
        )
    return None


class Source(_Strict):
    """A table read from a database: exactly one engine, ``duckdb`` (a database file, relative
    to the plan), ``postgres`` (a libpq connection string: ``postgresql://host:5432/db``,
    ``service=crm`` or ``""`` for the ``PG*`` environment variables) or ``spark`` (a master such
    as ``local[2]``, a Spark Connect ``sc://host:15002``, or ``""`` for the running session),
    and exactly one of ``table`` (``schema.table``) or ``query`` (a SELECT).

    Credentials never go in a plan: a password in the connection string is refused; give it in
    the environment (``PGPASSWORD``, ``~/.pgpass``, a service file) or as ``${VARIABLE}``, which
    is read from the environment when connecting and never written anywhere."""

    duckdb: Path | None = None
    postgres: str | None = None
    spark: str | None = None
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_engine_one_table(self):
        engines = [e for e in ENGINES if getattr(self, e) is not None]
        if len(engines) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(ENGINES)} (got {', '.join(engines) or 'none'})"
            )
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table (a name) or query (a SELECT)")
        if self.table is not None and not _TABLE_NAME.fullmatch(self.table):
            raise ValueError(
                f"table {_short(self.table)} is not a table name (letters, digits and _,"
                " schema.table; use query for anything else)"
            )
        if self.query is not None and not self.query.strip():
            raise ValueError("query is empty")
        if self.spark is not None:
            problem = spark_problem(self.spark)
            if problem:
                raise ValueError(problem)
        if self.postgres is not None:
            # libpq decodes %xx in a URL's keys and values: ?pass%77ord=... is a password too
            spellings = (self.postgres, urllib.parse.unquote(self.postgres))
            for pattern, text in itertools.product(_PASSWORD, spellings):
                found = pattern.search(text)
                if found and not VARIABLE.fullmatch(found["value"].strip("'")):
                    raise ValueError(
                        "a password in the plan is refused: set PGPASSWORD, a ~/.pgpass or"
                        " service file, or write ${VARIABLE} and set that variable"
                    )
        return self

    @property
    def engine(self) -> str:
        return next(e for e in ENGINES if getattr(self, e) is not None)


#: a table's location: a file, glob or folder of Parquet files, or a database :class:`Source`
Location = Annotated[
    Annotated[Path, Tag("file")] | Annotated[Source, Tag("database")],
    Discriminator(lambda v: "database" if isinstance(v, dict | Source) else "file"),
]
#: the union's tags, left out of the field names an error shows
_TAGS = ("file", "database")


class DataPaths(_Strict):
    """The campaign's tables. Outcomes come from their own file, or else from the transactions
    in the campaign period; without transactions the customer-base section is left out."""

    assignments: Location
    transactions: Location | None = None
    outcomes: Location | None = None
    events: Location | None = None
    customers: Location | None = None
    items: Location | None = None
    points: Location | None = None  # the points ledger: reminders of expiring points

    @model_validator(mode="after")
    def _outcomes_source(self):
        if self.transactions is None and self.outcomes is None:
            raise ValueError(
                "give outcomes or transactions (outcomes are derived from the transactions"
                " in the campaign period)"
            )
        return self


class TableFormat(_Strict):
    """How one table's file is written (all optional; see :mod:`closedloop.io`)."""

    encoding: str | None = None  # e.g. gb18030, cp1252; default: UTF-8, UTF-16 BOM or GB18030
    date_format: str | None = None  # e.g. "%d/%m/%Y"; default: ISO, YYYYMMDD or one clear order
    timezone: str | None = None  # wall clock for dates with an offset; default: as written

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value):
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown encoding {_short(value)}") from None
        return value

    @field_validator("date_format")
    @classmethod
    def _a_format(cls, value):
        if value is not None and "%" not in value:
            raise ValueError('a date_format uses % codes, e.g. "%d/%m/%Y"')
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value):
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown timezone {_short(value)} (use a name such as Asia/Shanghai)"
                ) from None
        return value


class Outliers(_Strict):
    """What to do with amounts beyond :func:`closedloop.io.outlier_threshold`: ``flag`` (count
    and warn, the default), ``cap`` them at the threshold or ``exclude`` them."""

    rule: Literal["flag", "cap", "exclude"] = "flag"


class Quality(_Strict):
    """Data checks of the campaign as a whole. ``min_coverage``: the least share of assigned
    customers that must appear in the transactions, the outcomes and (of the contacted arms) the
    events; below it the join key is taken to be wrong. Half by default: a real campaign's
    customers are in its sales history. Lower it for a campaign to prospects."""

    min_coverage: float = Field(0.5, ge=0, le=1)


class BasketSettings(_Strict):
    """The cross-sell section's association rules: a rule is kept when its itemset is in at least
    ``min_support`` of the baskets and B follows A in at least ``min_confidence`` of A's."""

    min_support: float = Field(0.005, gt=0, le=1)
    min_confidence: float = Field(0.3, ge=0, le=1)


class ReportSettings(_Strict):
    """How the report measures what the plan does not fix: the customer base's window
    (``period_days`` of purchases before each of its two days) and the basket rules' thresholds.
    The section is optional; these are the defaults."""

    period_days: int = Field(365, ge=1, le=3660)
    basket: BasketSettings = BasketSettings()


class Stopping(_Strict):
    """The early-stopping rule an interim Check applies (提前停止, :mod:`closedloop.early_stop`):
    no decision before ``min_days`` of the period and ``min_customers`` in every arm (the holdout
    included); then the leading arm ships when its expected loss on revenue per customer (in the
    plan's currency) is below ``loss_threshold`` and it beats the holdout with probability at
    least ``certainty``; an arm that beats the holdout with probability at most 1 - ``certainty``
    is stopped. A field left out takes the default measured in ``benchmarks/bench_peeking.py``
    (see :data:`closedloop.early_stop.DEFAULTS`); ``loss_threshold`` left out is a share of the
    holdout's revenue per customer so far."""

    min_days: int | None = Field(None, ge=1, le=3660)
    min_customers: int | None = Field(None, ge=1)
    loss_threshold: float | None = Field(None, gt=0, allow_inf_nan=False)
    certainty: float | None = Field(None, gt=0.5, lt=1)

    @field_validator("*", mode="before")
    @classmethod
    def _not_a_flag(cls, value):
        if isinstance(value, bool):  # YAML's yes: a day count or threshold of 1 no one wrote
            raise ValueError("a number, not true or false")
        return value


class Change(_Strict):
    """One change the Act step made to the plan, with its one-line reason."""

    field: str
    to: str
    reason: str


class Plan(_Strict):
    """A campaign plan. ``arms`` are planned allocations (summing to 1); ``control`` is the holdout."""

    campaign: str
    name: str = ""
    objective: Literal[OBJECTIVES]  # type: ignore[valid-type]
    cycle: int = Field(1, ge=1)
    #: "redesign": the Act step found no arm worth carrying; the plan must be edited before it runs.
    #: "provisional": written by an interim Check (what the Act step would decide if the period
    #: ended on its as-of day); the Check on the period's last day writes the plan to run
    status: Literal["ready", "redesign", "provisional"] = "ready"
    period: Period
    baseline: Period | None = None
    audience: Audience = Audience()
    arms: dict[str, float]
    control: str = "control"
    cost: dict[str, float] = {}
    margin: float = Field(1.0, gt=0, le=1)
    #: the currency costs and revenue are in (shown with its symbol in the report)
    currency: str = Field("CNY", pattern=r"^[A-Za-z]{3}$")
    #: default: the objective's metric beats the holdout (:func:`closedloop.objectives.default_targets`)
    targets: Targets
    metrics: MetricSettings = MetricSettings()
    #: days after the period's end at which the effect is measured again (扩大战果)
    follow_up_days: list[Annotated[int, Field(ge=1, le=3660)]] = []
    data: DataPaths
    #: where the report's aggregations run: ``local`` (DuckDB over the validated tables, the
    #: default) or ``spark`` (the session of ``spark``, see :attr:`spark_master`)
    engine: Literal["local", "spark"] | None = None
    #: the Spark session of ``engine: spark``: ``sc://host:15002``, ``local[2]``, ``yarn``,
    #: ``spark://host:7077``, ``k8s://...`` or ``""`` (the session running in the process)
    spark: str | None = None
    columns: dict[Literal[TABLES], dict[str, str]] = {}  # type: ignore[valid-type]
    formats: dict[Literal[TABLES], TableFormat] = {}  # type: ignore[valid-type]
    outliers: Outliers = Outliers()
    quality: Quality = Quality()
    report: ReportSettings | None = None
    #: the early-stopping rule of interim Checks (none: interim Checks never stop the campaign)
    stopping: Stopping | None = None
    changes: list[Change] = []

    @field_validator("campaign")
    @classmethod
    def _campaign_id(cls, value):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}", value):
            raise ValueError(
                "a campaign id holds only letters, digits, - and _ (it names the report folder)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_targets(cls, raw):
        if (
            isinstance(raw, dict)
            and raw.get("targets") is None
            and raw.get("objective") in OBJECTIVES
        ):
            from closedloop.objectives import default_targets

            raw = {**raw, "targets": default_targets(raw["objective"])}
        return raw

    @field_validator("follow_up_days")
    @classmethod
    def _increasing(cls, value):
        if list(value) != sorted(set(value)):
            raise ValueError(f"follow_up_days must increase without repeats: {_short(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.control not in self.arms:
            raise ValueError(
                f"no control arm: arms are {_short(sorted(self.arms))}, control is {_short(self.control)}"
                " (the holdout must be one of the arms)"
            )
        if len(self.arms) < 2:
            raise ValueError("a campaign needs the control arm and at least one treated arm")
        if any(share <= 0 for share in self.arms.values()):
            raise ValueError(f"every arm needs a positive allocation: {_short(self.arms)}")
        total = sum(self.arms.values())
        if abs(total - 1) > 1e-6:
            raise ValueError(f"arm allocations sum to {total:g}, not 1: {_short(self.arms)}")
        if self.targets.roi is not None and not self.cost:
            raise ValueError(
                "an roi target needs the cost per contacted customer (cost: {arm: ...})"
            )
        primary = self.targets.relative_lift.arm if self.targets.relative_lift else None
        if primary is not None and primary not in self.treated_arms:
            raise ValueError(
                f"targets.relative_lift.arm {_short(primary)} is not a treated arm:"
                f" {_short(self.treated_arms)}"
            )
        unknown_cost = sorted(set(self.cost) - set(self.arms))
        if unknown_cost:
            raise ValueError(f"cost given for arms that do not exist: {_short(unknown_cost)}")
        if self.stopping and (self.stopping.min_days or 0) > self.period.days:
            raise ValueError(
                f"stopping.min_days {self.stopping.min_days} is longer than the period"
                f" ({self.period.days} days): the rule could never apply"
            )
        if self.baseline and self.baseline.end >= self.period.start:
            raise ValueError(
                f"baseline must end before the period starts ({self.baseline.end} >= {self.period.start})"
            )
        if self.spark is not None and self.engine != "spark":
            raise ValueError(
                f"spark: {_short(self.spark)} names the session of engine: spark; add engine:"
                " spark (or leave spark out)"
            )
        if self.on_spark:
            problem = spark_problem(self.spark_master)
            if problem:
                where = "spark" if self.spark is not None else f"${{{SPARK_VARIABLE}}}"
                raise ValueError(f"{where}: {problem}")
        return self

    @property
    def on_spark(self) -> bool:
        """Whether the report's aggregations run on Spark: ``engine: spark``, or a table read
        from Spark (its session) unless the plan says ``engine: local``."""
        if self.engine is not None:
            return self.engine == "spark"
        return self._spark_source() is not None

    @property
    def spark_master(self) -> str:
        """The session a Spark plan runs on: the plan's ``spark``, else the first Spark
        source's, else the :data:`SPARK_VARIABLE` environment variable, else ``local[2]``."""
        if self.spark is not None:
            return self.spark
        source = self._spark_source()
        if source is not None:
            return source.spark
        return os.environ.get(SPARK_VARIABLE, SPARK_DEFAULT)

    def _spark_source(self) -> Source | None:
        found = [getattr(self.data, n) for n in DataPaths.model_fields]
        return next((s for s in found if isinstance(s, Source) and s.engine == "spark"), None)

    @property
    def report_settings(self) -> ReportSettings:
        """The report's settings: the plan's ``report`` section, else the defaults."""
        return self.report or ReportSettings()

    @property
    def treated_arms(self) -> list[str]:
        return [arm for arm in self.arms if arm != self.control]

    @classmethod
    def from_yaml(cls, path: str | Path, check_paths: bool = True, data_root=None) -> Plan:
        """Load and validate a plan file; data paths resolve relative to the file and, when
        ``check_paths``, must be regular files inside the plan's folder or a ``data_root`` (a
        folder or a list of folders)."""
        path = Path(path)
        raw = read_yaml(path, "plan", "a plan is a mapping of keys (campaign, period, arms, ...)")
        if is_health_targets(raw):
            raise PlanError(
                f"{path}: a member-health targets file, not a campaign plan (no period or arms):"
                f" run it with `closedloop health --targets {path}`"
            )
        data = raw.get("data")
        if isinstance(data, dict):
            raw["data"] = {k: _resolve(path.parent, v) for k, v in data.items()}
        plan = cls.parse(raw, source=str(path))
        if check_paths:
            plan.check_paths(source=str(path), data_root=[path.parent, *_roots(data_root)])
        return plan

    @classmethod
    def parse(cls, raw: dict, source: str = "plan") -> Plan:
        """Validate a plan given as a dict; errors name the source and the field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise PlanError(_explain(source, exc)) from None

    def check_paths(self, source: str = "plan", data_root=None) -> None:
        """Every data path exists and is a regular file (no device), a glob matching such files or
        a folder of Parquet files, and, when ``data_root`` (a folder or a list of folders) is
        given, lies inside one of them (after resolving ``..`` and symbolic links); so does a
        DuckDB database file. PostgreSQL and Spark tables are checked when they are read."""
        data = {name: getattr(self.data, name) for name in DataPaths.model_fields}
        check_data_paths(data, source, data_root)

    def to_yaml(self, path: str | Path | None = None, relative_to: str | Path | None = None) -> str:
        """The plan as YAML (data paths relative to ``relative_to`` when given); writes if ``path``."""
        raw = self.model_dump(mode="python", exclude_none=True)
        folder = Path(relative_to) if relative_to is not None else None

        def shown(value):
            return str(value) if folder is None else _relative(value, folder)

        raw["data"] = {
            k: ({**v, "duckdb": shown(v["duckdb"])} if "duckdb" in v else v)
            if isinstance(v, dict)
            else shown(v)
            for k, v in raw["data"].items()
            if v is not None
        }
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text)
        return text


def is_health_targets(raw: dict) -> bool:
    """Whether a YAML mapping is a member-health targets file (:class:`closedloop.health.HealthPlan`)
    rather than a campaign plan: no period and no arms, and only health targets if any."""
    from closedloop.health import HealthTargets

    if "period" in raw or "arms" in raw:
        return False
    targets = raw.get("targets")
    named = set(targets) if isinstance(targets, dict) else set()
    return bool(named) and named <= set(HealthTargets.model_fields)


def read_yaml(path: Path, kind: str, shape: str) -> dict:
    """A small YAML file (a plan, health targets) read with the strict loader: one
    :class:`PlanError` naming the file when it is missing, too large, not UTF-8, not YAML, or
    not a mapping (``shape`` says what it should hold)."""
    if not path.exists():
        raise PlanError(f"{path}: {kind} file not found")
    if not path.is_file():
        raise PlanError(f"{path}: not a regular file (a {kind} is a YAML file)")
    if path.stat().st_size > MAX_PLAN_BYTES:
        raise PlanError(f"{path}: {path.stat().st_size:,} bytes is too large for a {kind} file")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_PlanLoader)
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not UTF-8 text (save the {kind} as UTF-8)") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {str(exc)[:400]}") from None
    except RecursionError:
        raise PlanError(f"{path}: not valid YAML: nested too deeply") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{path}: {shape}")
    return raw


def check_data_paths(data: dict, source: str, data_root=None) -> None:
    """Every data location of ``data`` (name -> path, glob, folder, :class:`Source` or None)
    passes :func:`_path_problems` (a DuckDB source's database file too); one
    :class:`PlanError` naming ``source`` and every refused path otherwise."""
    roots = [Path(r).resolve() for r in _roots(data_root)] or None
    problems = []
    for name, value in data.items():
        if isinstance(value, Source):
            if value.duckdb is None:
                continue
            value, name = value.duckdb, f"{name}.duckdb"
        if value is None:
            continue
        where = f"data.{name}: {value}"
        if is_glob(value):
            matches = [Path(m) for m in sorted(glob.glob(str(value), recursive=True))]
            if not matches:
                problems.append(f"{where} not found (no file matches the pattern)")
            for match in matches[:1000]:
                problems += _path_problems(f"data.{name}: {match}", match, roots)
            continue
        problems += _path_problems(where, Path(value), roots)
    if problems:
        missing = all(p.endswith(" not found") for p in problems)
        outside = [
            re.fullmatch(r"(data\.[\w.]+): (.*) is outside (the data root .*)", p) for p in problems
        ]
        if len(outside) > 1 and all(outside) and len({m.group(3) for m in outside}) == 1:
            paths: dict[str, list[str]] = {}  # a glob's files under its key, the first named
            for m in outside:
                paths.setdefault(m.group(1), []).append(m.group(2))
            named = "; ".join(
                f"{key} ({found[0]}" + (f" and {len(found) - 1:,} more)" if found[1:] else ")")
                for key, found in paths.items()
            )
            raise PlanError(f"{source}: data path(s) outside {outside[0].group(3)}: {named}")
        what = "data file(s) not found" if missing else "data path(s) refused"
        shown = [p.removesuffix(" not found") if missing else p for p in problems]
        raise PlanError(f"{source}: {what}: " + "; ".join(shown))


#: the file names read as Parquet (case aside)
PARQUET_SUFFIXES = (".parquet", ".pq")


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files under a folder, sorted: the files a folder source reads, and so the
    files whose place the data-root check judges."""
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in PARQUET_SUFFIXES)


def is_glob(value) -> bool:
    """A path with a wildcard (``*``, ``?``, ``[``): every file it matches is one table."""
    return isinstance(value, str | Path) and any(c in str(value) for c in "*?[")


def _path_problems(where: str, value: Path, roots) -> list[str]:
    """What is wrong with one data path: outside the roots, absent, not a regular file, or a
    folder without Parquet files (a folder is read as one partitioned Parquet data set)."""
    real = value.resolve()
    if roots is not None and not any(real.is_relative_to(r) for r in roots):
        shown = " or ".join(str(r) for r in roots)
        return [
            f"{where} is outside the data root {shown} (pass data_root / --data-root"
            " to read from elsewhere)"
        ]
    if not real.exists():
        return [f"{where} not found"]
    if real.is_dir():
        files = parquet_files(real)
        if not files:
            return [
                f"{where} is a directory without Parquet files (a folder is read as a"
                " partitioned Parquet data set; name a file otherwise)"
            ]
        # a file linked from inside the folder to outside the data root is outside it
        return [p for f in files for p in _path_problems(f"{where}: {f.name}", f, roots)][:5]
    if not real.is_file():
        return [f"{where} is not a regular file (a device, pipe or socket)"]
    return []


def _resolve(folder: Path, value):
    if value is None:
        return None
    if isinstance(value, dict):  # a database source: only a DuckDB file is a path
        if isinstance(value.get("duckdb"), str | Path):
            return {**value, "duckdb": _resolve(folder, value["duckdb"])}
        return value
    value = Path(str(value))
    return value if value.is_absolute() else (folder / value).resolve()


def _relative(value: str, folder: Path) -> str:
    """``value`` as a path relative to ``folder`` (with ``..`` where it lies outside), so a plan
    file stays valid wherever its folder and the data move together."""
    try:
        return os.path.relpath(Path(value).resolve(), folder.resolve())
    except ValueError:  # another drive (Windows)
        return str(Path(value).resolve())


_MODELS = {
    (): Plan,
    ("targets",): Targets,
    ("targets", "relative_lift"): RelativeLift,
    ("metrics",): MetricSettings,
    ("period",): Period,
    ("baseline",): Period,
    ("audience",): Audience,
    ("data",): DataPaths,
    **{("data", name): Source for name in TABLES},
    ("outliers",): Outliers,
    ("quality",): Quality,
    ("report",): ReportSettings,
    ("report", "basket"): BasketSettings,
    ("stopping",): Stopping,
}


def _explain(source: str, exc: ValidationError, models=None, kind: str = "plan") -> str:
    """One line per problem, naming the field; ``models`` maps a field path to the model whose
    keys an unknown key is listed against (default: the plan's)."""
    models = _MODELS if models is None else models
    lines = []
    for error in exc.errors():
        loc = [p for i, p in enumerate(error["loc"]) if not (i == 2 and p in _TAGS)]
        error["loc"] = tuple(loc)
        where = ".".join(str(p) for p in loc) or "plan"
        where = where if len(where) <= 120 else where[:117] + "..."
        if error["type"] == "extra_forbidden":
            parent = tuple(str(p) for p in error["loc"][:-1])
            model = TableFormat if parent[:1] == ("formats",) and len(parent) == 2 else None
            model = model or models.get(parent)
            known = f" (known: {', '.join(model.model_fields)})" if model else ""
            lines.append(f"{where}: unknown key{known}")
        elif error["type"] == "missing":
            lines.append(f"{where}: required")
        else:
            message = error["msg"].removeprefix("Value error, ")
            given = error.get("input")
            got = "" if isinstance(given, dict) else f" (got {_short(given)})"
            lines.append(f"{where}: {message}{got}"[:300])
    return f"{source}: invalid {kind}\n  " + "\n  ".join(lines)
