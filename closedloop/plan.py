"""The plan file (计划, the P of PDCA): a campaign's targets, set in advance and in numbers.

Loaded from YAML with a safe loader and validated with pydantic: unknown keys, reversed dates,
allocations that do not sum to 1, a missing control arm, targets on unknown metrics and data
paths that do not exist are refused with one :class:`PlanError` naming the file and the field.
Paths in a plan resolve relative to the plan file and must be regular files inside the data root
(the plan's folder, unless ``data_root`` widens it). The loader refuses YAML anchors and aliases
(an alias bomb expands a few hundred bytes into gigabytes) and duplicate keys (the second would
silently win), and no error message repeats more than ~80 characters of an input value.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import re
import reprlib
import zoneinfo
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TABLES = ("transactions", "assignments", "events", "customers", "items", "outcomes")


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


class RelativeLift(_Strict):
    metric: Literal["conversion", "revenue", "visit"] = "conversion"
    min: float


class Targets(_Strict):
    """Numeric targets; each is optional, unknown names are refused."""

    conversion_rate: float | None = Field(None, ge=0, le=1)
    visit_rate: float | None = Field(None, ge=0, le=1)
    relative_lift: RelativeLift | None = None
    incremental_revenue: float | None = None
    roi: float | None = None
    funnel: dict[str, float] | None = None

    @field_validator("funnel")
    @classmethod
    def _rates(cls, value):
        for stage, rate in (value or {}).items():
            if not 0 <= rate <= 1:
                raise ValueError(
                    f"funnel target for {_short(stage)} must be a rate in [0, 1], not {rate}"
                )
        return value


class DataPaths(_Strict):
    """The campaign's tables. Outcomes come from their own file, or else from the transactions
    in the campaign period; without transactions the customer-base section is left out."""

    assignments: Path
    transactions: Path | None = None
    outcomes: Path | None = None
    events: Path | None = None
    customers: Path | None = None
    items: Path | None = None

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


class Change(_Strict):
    """One change the Act step made to the plan, with its one-line reason."""

    field: str
    to: str
    reason: str


class Plan(_Strict):
    """A campaign plan. ``arms`` are planned allocations (summing to 1); ``control`` is the holdout."""

    campaign: str
    name: str = ""
    objective: Literal["recruit", "convert", "second purchase", "ticket", "frequency", "win back"]
    cycle: int = Field(1, ge=1)
    #: "redesign": the Act step found no arm worth carrying; the plan must be edited before it runs
    status: Literal["ready", "redesign"] = "ready"
    period: Period
    baseline: Period | None = None
    audience: Audience = Audience()
    arms: dict[str, float]
    control: str = "control"
    cost: dict[str, float] = {}
    margin: float = Field(1.0, gt=0, le=1)
    #: the currency costs and revenue are in (shown with its symbol in the report)
    currency: str = Field("CNY", pattern=r"^[A-Za-z]{3}$")
    targets: Targets
    data: DataPaths
    columns: dict[Literal[TABLES], dict[str, str]] = {}  # type: ignore[valid-type]
    formats: dict[Literal[TABLES], TableFormat] = {}  # type: ignore[valid-type]
    outliers: Outliers = Outliers()
    quality: Quality = Quality()
    report: ReportSettings | None = None
    changes: list[Change] = []

    @field_validator("campaign")
    @classmethod
    def _campaign_id(cls, value):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}", value):
            raise ValueError(
                "a campaign id holds only letters, digits, - and _ (it names the report folder)"
            )
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
        unknown_cost = sorted(set(self.cost) - set(self.arms))
        if unknown_cost:
            raise ValueError(f"cost given for arms that do not exist: {_short(unknown_cost)}")
        if self.baseline and self.baseline.end >= self.period.start:
            raise ValueError(
                f"baseline must end before the period starts ({self.baseline.end} >= {self.period.start})"
            )
        return self

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
        """Every data path exists and is a regular file (no directory, no device) and, when
        ``data_root`` (a folder or a list of folders) is given, lies inside one of them (after
        resolving ``..`` and symbolic links)."""
        check_data_paths(self.data.model_dump(), source, data_root)

    def to_yaml(self, path: str | Path | None = None, relative_to: str | Path | None = None) -> str:
        """The plan as YAML (data paths relative to ``relative_to`` when given); writes if ``path``."""
        raw = self.model_dump(mode="python", exclude_none=True)
        folder = Path(relative_to) if relative_to is not None else None
        raw["data"] = {
            k: str(v) if folder is None else _relative(v, folder)
            for k, v in raw["data"].items()
            if v is not None
        }
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text)
        return text


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
    """Every data path of ``data`` (name -> path or None) exists and is a regular file (no
    directory, no device) and, when ``data_root`` (a folder or a list of folders) is given, lies
    inside one of them (after resolving ``..`` and symbolic links)."""
    roots = [Path(r).resolve() for r in _roots(data_root)] or None
    problems = []
    for name, value in data.items():
        if value is None:
            continue
        where = f"data.{name}: {value}"
        real = Path(value).resolve()
        if roots is not None and not any(real.is_relative_to(r) for r in roots):
            shown = " or ".join(str(r) for r in roots)
            problems.append(
                f"{where} is outside the data root {shown} (pass data_root / --data-root"
                " to read from elsewhere)"
            )
        elif not real.exists():
            problems.append(f"{where} not found")
        elif real.is_dir():
            problems.append(f"{where} is a directory, not a file")
        elif not real.is_file():
            problems.append(f"{where} is not a regular file (a device, pipe or socket)")
    if problems:
        missing = all(p.endswith(" not found") for p in problems)
        what = "data file(s) not found" if missing else "data path(s) refused"
        shown = [p.removesuffix(" not found") if missing else p for p in problems]
        raise PlanError(f"{source}: {what}: " + "; ".join(shown))


def _resolve(folder: Path, value):
    if value is None:
        return None
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
    ("period",): Period,
    ("baseline",): Period,
    ("audience",): Audience,
    ("data",): DataPaths,
    ("outliers",): Outliers,
    ("quality",): Quality,
    ("report",): ReportSettings,
    ("report", "basket"): BasketSettings,
}


def _explain(source: str, exc: ValidationError, models=None, kind: str = "plan") -> str:
    """One line per problem, naming the field; ``models`` maps a field path to the model whose
    keys an unknown key is listed against (default: the plan's)."""
    models = _MODELS if models is None else models
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "plan"
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
