"""The soak's districts: a realistic size mix and the few that fail, each in one way a night can fail.

Sizes (before ``scale``): most districts 300-2,000 students, about 8% 10,000-50,000, and one 200,000 when
there are at least 20 districts. Failures (``rate`` of the districts each, at least one each):

- ``unreachable``: an SFTP server nobody listens on; the sensor's poll fails, no run, both nights
- ``refused_login``: a real sshd that refuses our key; the sensor's poll fails, no run, both nights
- ``broken_drop``: night 2's drop has a users.csv that cannot be read; night 1 applies, night 2 is blocked
- ``thresholds_hold``: thresholds that allow no deactivation; night 1 applies, night 2 (with churn) is held
"""

from __future__ import annotations

import random
from dataclasses import dataclass

HEALTHY = "healthy"
UNREACHABLE = "unreachable"
REFUSED_LOGIN = "refused_login"
BROKEN_DROP = "broken_drop"
THRESHOLDS_HOLD = "thresholds_hold"
FAILURES = (UNREACHABLE, REFUSED_LOGIN, BROKEN_DROP, THRESHOLDS_HOLD)
NIGHTS = (1, 2)

# The night state each kind's nights should end in (None: no run at all, the poll fails).
EXPECTED: dict[str, dict[int, str | None]] = {
    HEALTHY: {1: "applied", 2: "applied"},
    UNREACHABLE: {1: None, 2: None},
    REFUSED_LOGIN: {1: None, 2: None},
    BROKEN_DROP: {1: "applied", 2: "blocked"},
    THRESHOLDS_HOLD: {1: "applied", 2: "held"},
}


@dataclass(frozen=True)
class SoakDistrict:
    id: str
    students: int
    kind: str = HEALTHY

    def expected(self, night: int) -> str | None:
        return EXPECTED[self.kind][night]

    @property
    def runs(self) -> bool:
        """Whether the sensor should start runs for it (its source answers)."""
        return self.expected(1) is not None


def sizes(n: int, rng: random.Random, scale: float = 1.0, students: int | None = None) -> list[int]:
    """Students per district: ``students`` for all (tests), else the mix above times ``scale``."""
    if students is not None:
        return [students] * n
    raw = [rng.randint(300, 2_000) for _ in range(n)]
    for i in rng.sample(range(n), k=round(n * 0.08)):
        raw[i] = rng.randint(10_000, 50_000)
    if n >= 20:
        raw[rng.randrange(n)] = 200_000
    return [max(20, round(s * scale)) for s in raw]


def plan_fleet(
    n: int, *, rate: float = 0.03, scale: float = 1.0, students: int | None = None, seed: int = 1
) -> list[SoakDistrict]:
    """``n`` districts ``d0000``...; ``rate`` of them (at least one) fail in each way, chosen among the
    small ones so the large districts' figures are healthy nights'."""
    if n < len(FAILURES) + 1:
        raise ValueError(
            f"the soak needs at least {len(FAILURES) + 1} districts (one per failure, one healthy)"
        )
    rng = random.Random(seed)
    counts = sizes(n, rng, scale, students)
    per_kind = max(1, round(n * rate))
    small = [i for i in range(n) if counts[i] <= max(2_000 * scale, students or 0)]
    failing = rng.sample(small, k=min(len(small) - 1, per_kind * len(FAILURES)))
    kinds = {i: FAILURES[j % len(FAILURES)] for j, i in enumerate(failing)}
    return [SoakDistrict(f"d{i:04d}", counts[i], kinds.get(i, HEALTHY)) for i in range(n)]


def failures_by_kind(fleet: list[SoakDistrict]) -> dict[str, int]:
    return {kind: sum(d.kind == kind for d in fleet) for kind in FAILURES}


def stratum(district: SoakDistrict) -> str:
    """The floor sample's strata: a night costs about the same within one (its kind, its size class)."""
    size = "small" if district.students <= 2_000 else "large" if district.students <= 50_000 else "largest"
    return f"{district.kind}/{size}"


def floor_sample(
    fleet: list[SoakDistrict], fraction: float, always: set[str] = frozenset(), seed: int = 1
) -> list[SoakDistrict]:
    """The districts the floor runs when it runs a ``fraction`` of them: that share of each stratum (at
    least one), drawn with ``seed``, plus ``always`` (the killed run's districts, whose LMS is compared).
    Only districts with runs; all of them when ``fraction`` is 1. In the fleet's order."""
    running = [d for d in fleet if d.runs]
    if fraction >= 1:
        return running
    by_stratum: dict[str, list[SoakDistrict]] = {}
    for district in running:
        by_stratum.setdefault(stratum(district), []).append(district)
    rng = random.Random(seed)
    chosen = set(always)
    for members in by_stratum.values():
        chosen.update(d.id for d in rng.sample(members, k=max(1, round(len(members) * fraction))))
    return [d for d in running if d.id in chosen]


def scale_floor(fleet: list[SoakDistrict], night_walls: dict[str, list[float]]) -> float:
    """The floor's wall time for every running district of ``fleet``, from the per-night walls of the
    sampled ones: each stratum's mean night times that stratum's district-nights. Exact when all ran."""
    running = [d for d in fleet if d.runs]
    nights: dict[str, int] = {}
    sampled: dict[str, list[float]] = {}
    for district in running:
        key = stratum(district)
        nights[key] = nights.get(key, 0) + len(NIGHTS)
        sampled.setdefault(key, []).extend(night_walls.get(district.id, []))
    missing = sorted(key for key, walls in sampled.items() if not walls)
    if missing:
        raise ValueError(f"the floor ran no district of the strata {missing}")
    return sum(sum(walls) / len(walls) * nights[key] for key, walls in sampled.items())
