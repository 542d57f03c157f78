"""Safety thresholds: hold a night whose change set would deactivate or update too much of an entity.

Compared with the LMS's current size per entity (its active rows). Defaults: hold when more than 10% of an
entity would be deactivated or more than 75% updated. A district's ``[districts.<id>.thresholds]`` table
(see etl_project/districts/toml_format.py) overrides them, for every entity or per entity, as a percentage
(``"10%"``) or a count (``500``)::

    [districts.lincoln.thresholds]
    hold = "deactivations"       # "all" (default): a held night applies nothing;
                                 # "deactivations": apply creates/updates, hold only deactivations
    deactivate = "5%"            # every entity
    update = "75%"
    [districts.lincoln.thresholds.enrollments]
    deactivate = 2000            # this entity: a count
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from etl_project.lms.changeset import ChangeSet
from etl_project.lms.schema import BY_NAME

DEFAULTS = {"deactivate": "10%", "update": "75%"}
HOLD_MODES = ("all", "deactivations")
_KIND_OPS = {"deactivate": ("deactivated",), "update": ("updated",)}


class ThresholdConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Limit:
    value: float
    percent: bool

    def allows(self, count: int, size: int) -> bool:
        if self.percent:
            return count <= size * self.value / 100 if size else True
        return count <= self.value

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{int(self.value)}"


def parse_limit(where: str, raw: Any) -> Limit:
    if isinstance(raw, bool):
        raise ThresholdConfigError(f'{where}: expected a percentage like "10%" or a count, got {raw!r}')
    if isinstance(raw, int | float) and raw >= 0:
        return Limit(float(raw), False)
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            value = float(raw.strip()[:-1])
        except ValueError:
            value = -1
        if 0 <= value <= 100:
            return Limit(value, True)
    raise ThresholdConfigError(f'{where}: expected a percentage like "10%" or a count, got {raw!r}')


@dataclass(frozen=True)
class Thresholds:
    hold: str = "all"
    limits: dict[str, dict[str, Limit]] = field(default_factory=dict)  # entity -> kind -> limit

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None, where: str = "thresholds") -> Thresholds:
        raw = dict(raw or {})
        hold = raw.pop("hold", "all")
        if hold not in HOLD_MODES:
            raise ThresholdConfigError(f'{where}.hold: expected "all" or "deactivations", got {hold!r}')
        base = {k: parse_limit(f"{where}.{k}", raw.pop(k, v)) for k, v in DEFAULTS.items()}
        limits = {name: dict(base) for name in BY_NAME}
        for key, value in raw.items():
            if key not in BY_NAME or not isinstance(value, Mapping):
                raise ThresholdConfigError(
                    f"{where}: unknown setting {key!r} (expected hold, deactivate, update or an entity "
                    f"table: {', '.join(BY_NAME)})"
                )
            for kind, limit in value.items():
                if kind not in DEFAULTS:
                    raise ThresholdConfigError(
                        f"{where}.{key}: unknown setting {kind!r} (deactivate or update)"
                    )
                limits[key][kind] = parse_limit(f"{where}.{key}.{kind}", limit)
        return cls(hold=hold, limits=limits)

    def evaluate(self, changes: ChangeSet) -> Verdict:
        breaches = []
        for name, e in changes.entities.items():
            for kind, limit in self.limits.get(name, {}).items():
                count = sum(e.counts.get(op, 0) for op in _KIND_OPS[kind])
                if not limit.allows(count, e.size):
                    breaches.append(Breach(name, kind, count, e.size, str(limit)))
        return Verdict(breaches=breaches, hold=self.hold)


@dataclass(frozen=True)
class Breach:
    entity: str
    kind: str  # deactivate | update
    count: int
    size: int
    limit: str

    def describe(self) -> str:
        pct = f" ({100 * self.count / self.size:.1f}%)" if self.size else ""
        verb = "deactivate" if self.kind == "deactivate" else "update"
        return f"{self.entity}: would {verb} {self.count} of {self.size}{pct}, limit {self.limit}"

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "kind": self.kind,
            "count": self.count,
            "size": self.size,
            "limit": self.limit,
        }


@dataclass(frozen=True)
class Verdict:
    breaches: list[Breach]
    hold: str = "all"

    @property
    def holds(self) -> bool:
        return bool(self.breaches)

    def held_operations(self) -> set[str]:
        """Operations a held night does not apply under the district's hold mode."""
        if not self.holds:
            return set()
        if self.hold == "deactivations":
            return {"deactivated"}
        return {"created", "updated", "deactivated", "reactivated"}

    def describe(self) -> str:
        if not self.holds:
            return "within the safety thresholds"
        return "over the safety thresholds: " + "; ".join(b.describe() for b in self.breaches)
