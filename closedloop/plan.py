"""The plan file (计划, the P of PDCA): a campaign's targets, set in advance and in numbers.

Loaded from YAML with a safe loader and validated with pydantic: unknown keys, reversed dates,
allocations that do not sum to 1, a missing control arm, targets on unknown metrics and data
paths that do not exist are refused with one :class:`PlanError` naming the file and the field.
Paths in a plan resolve relative to the plan file.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TABLES = ("transactions", "assignments", "events", "customers", "items", "outcomes")


class PlanError(ValueError):
    """A plan file that cannot be run, with the file and the field at fault."""


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
                    f"funnel target for {stage!r} must be a rate in [0, 1], not {rate}"
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
    period: Period
    baseline: Period | None = None
    audience: Audience = Audience()
    arms: dict[str, float]
    control: str = "control"
    cost: dict[str, float] = {}
    margin: float = Field(1.0, gt=0, le=1)
    targets: Targets
    data: DataPaths
    columns: dict[Literal[TABLES], dict[str, str]] = {}  # type: ignore[valid-type]
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
                f"no control arm: arms are {sorted(self.arms)}, control is {self.control!r}"
                " (the holdout must be one of the arms)"
            )
        if len(self.arms) < 2:
            raise ValueError("a campaign needs the control arm and at least one treated arm")
        if any(share <= 0 for share in self.arms.values()):
            raise ValueError(f"every arm needs a positive allocation: {self.arms}")
        total = sum(self.arms.values())
        if abs(total - 1) > 1e-6:
            raise ValueError(f"arm allocations sum to {total:g}, not 1: {self.arms}")
        if self.targets.roi is not None and not self.cost:
            raise ValueError(
                "an roi target needs the cost per contacted customer (cost: {arm: ...})"
            )
        unknown_cost = sorted(set(self.cost) - set(self.arms))
        if unknown_cost:
            raise ValueError(f"cost given for arms that do not exist: {unknown_cost}")
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
    def from_yaml(cls, path: str | Path, check_paths: bool = True) -> Plan:
        """Load and validate a plan file; data paths resolve relative to the file."""
        path = Path(path)
        if not path.exists():
            raise PlanError(f"{path}: plan file not found")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise PlanError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise PlanError(f"{path}: a plan is a mapping of keys (campaign, period, arms, ...)")
        data = raw.get("data")
        if isinstance(data, dict):
            raw["data"] = {k: _resolve(path.parent, v) for k, v in data.items()}
        plan = cls.parse(raw, source=str(path))
        if check_paths:
            plan.check_paths(source=str(path))
        return plan

    @classmethod
    def parse(cls, raw: dict, source: str = "plan") -> Plan:
        """Validate a plan given as a dict; errors name the source and the field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise PlanError(_explain(source, exc)) from None

    def check_paths(self, source: str = "plan") -> None:
        missing = [
            f"data.{name}: {path}"
            for name, path in self.data.model_dump().items()
            if path is not None and not Path(path).exists()
        ]
        if missing:
            raise PlanError(f"{source}: data file(s) not found: " + "; ".join(missing))

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


def _resolve(folder: Path, value):
    if value is None:
        return None
    value = Path(str(value))
    return value if value.is_absolute() else (folder / value).resolve()


def _relative(value: str, folder: Path) -> str:
    try:
        return str(Path(value).resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(value)


_MODELS = {
    (): Plan,
    ("targets",): Targets,
    ("targets", "relative_lift"): RelativeLift,
    ("period",): Period,
    ("baseline",): Period,
    ("audience",): Audience,
    ("data",): DataPaths,
    ("report",): ReportSettings,
    ("report", "basket"): BasketSettings,
}


def _explain(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "plan"
        if error["type"] == "extra_forbidden":
            model = _MODELS.get(tuple(str(p) for p in error["loc"][:-1]))
            known = f" (known: {', '.join(model.model_fields)})" if model else ""
            lines.append(f"{where}: unknown key{known}")
        elif error["type"] == "missing":
            lines.append(f"{where}: required")
        else:
            message = error["msg"].removeprefix("Value error, ")
            given = error.get("input")
            got = "" if isinstance(given, dict) else f" (got {given!r})"
            lines.append(f"{where}: {message}{got}"[:300])
    return f"{source}: invalid plan\n  " + "\n  ".join(lines)
