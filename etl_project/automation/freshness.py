"""Missing-drop alert: did each district's drop arrive by its expected hour (local time)?

The check ``drop_arrived_on_time`` is an asset check on ``archive/oneroster_snapshot``, per partition
(night × district), so it shows on the asset's Checks tab and per partition in the UI. A drop has *arrived*
for a night when its snapshot is archived, or when the new-drop sensor has seen it complete and requested
its run (a slow or failed run is a different problem, with its own alerts).

Who evaluates it:

* ``missing_drop_sensor`` (every 5 minutes, ``default_status=RUNNING``: an alert nobody switched on is no
  alert) looks at every enabled district's latest due night. When the drop is missing past its hour and the
  night has no state yet, it records the night's state ``missing`` in the registry ("no complete drop for
  <night> by <due> <tz>", read by ``etl-project status`` and every report) and a failed evaluation (ERROR)
  naming the district, the night and how late it is; it logs the current lateness on every tick while the
  drop stays missing. A night that already has a state (a run working on it, failed, ...) tells its own
  story. Why a sensor rather than a job on a schedule: 200 districts are a few queries per tick, not 200 runs.
* The check also runs inside every ``nightly_sync`` run, right after the snapshot: that evaluation passes
  and says whether the drop came on time or how late; it supersedes the failure in the UI.
* It can be executed by hand for one partition from the UI.

Dagster 1.13 stores run-less check evaluations under a unique (check, run_id='', partition) row, so a
second sensor evaluation of the same partition would fail the tick: the sensor reports a late partition only
together with its ``missing`` state, recorded first (a night with a state is never reported again), and
leaves the passing verdict to the run.
"""

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    DefaultSensorStatus,
    PreviewWarning,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    asset_check,
    sensor,
)

from etl_project.assets.keys import SNAPSHOT
from etl_project.automation.nights import due_at, due_night, format_lateness
from etl_project.automation.sync_status import night_states_for, night_status
from etl_project.districts import District
from etl_project.districts.resource import DistrictsResource
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight, district_nights
from etl_project.registry.nights import NightState, NightStates

CHECK_NAME = "drop_arrived_on_time"
MINIMUM_INTERVAL_SECONDS = 300


@dataclass(frozen=True)
class Freshness:
    district: District
    night: str
    due: dt.datetime
    arrived_at: dt.datetime | None
    now: dt.datetime

    @property
    def is_due(self) -> bool:
        return self.now >= self.due

    @property
    def passed(self) -> bool:
        return self.arrived_at is not None or not self.is_due

    @property
    def late_by(self) -> dt.timedelta:
        """How late the drop is (missing) or was (arrived after its due time); zero when on time."""
        end = self.arrived_at or self.now
        return max(dt.timedelta(0), end - self.due)

    @property
    def description(self) -> str:
        d = self.district
        due = f"{self.due:%Y-%m-%d %H:%M} {d.timezone}"
        if self.arrived_at is None and self.is_due:
            return (
                f"District {d.id} ({d.name}): no drop for night {self.night}, expected by {due}; "
                f"{format_lateness(self.late_by)} late"
            )
        if self.arrived_at is None:
            return f"District {d.id}: the drop for night {self.night} is not due until {due}"
        late = self.late_by
        when = f"{format_lateness(late)} late" if late else "on time"
        return f"District {d.id}: the drop for night {self.night} arrived {when} (expected by {due})"

    @property
    def missing_reason(self) -> str:
        """The ``missing`` night state's one sentence."""
        return f"no complete drop for {self.night} by {self.due:%Y-%m-%d %H:%M} {self.district.timezone}"

    @property
    def metadata(self) -> dict[str, object]:
        return {
            "district": self.district.id,
            "night": self.night,
            "timezone": self.district.timezone,
            "expected_by": self.due.isoformat(),
            "arrived_at": self.arrived_at.isoformat() if self.arrived_at else "",
            "late_minutes": int(self.late_by.total_seconds() // 60),
        }

    @property
    def severity(self) -> AssetCheckSeverity:
        return AssetCheckSeverity.ERROR if not self.passed else AssetCheckSeverity.WARN


def evaluate_freshness(
    instance: DagsterInstance, district: District, night: str, now: dt.datetime
) -> Freshness:
    status = night_status(instance, DistrictNight(night, district.id))
    return Freshness(district, night, due_at(district, night), status.arrived_at, now)


def to_evaluation(f: Freshness) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=SNAPSHOT,
        check_name=CHECK_NAME,
        passed=f.passed,
        severity=f.severity,
        description=f.description,
        metadata=f.metadata,
        partition=str(DistrictNight(f.night, f.district.id)),
    )


def _drop_arrived_on_time(
    context: AssetCheckExecutionContext, districts: DistrictsResource
) -> AssetCheckResult:
    night = DistrictNight.of(context.partition_key)
    f = evaluate_freshness(
        context.instance, districts.get(night.district), night.date, dt.datetime.now(dt.UTC)
    )
    return AssetCheckResult(
        passed=f.passed, severity=f.severity, description=f.description, metadata=f.metadata
    )


# Partitioned asset checks are a "preview" feature in Dagster 1.13 (it warns on every import); they are what
# gives one verdict per district-night in the UI, so we use them and keep the warning out of CLI output.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PreviewWarning)
    drop_arrived_on_time = asset_check(
        asset=SNAPSHOT,
        name=CHECK_NAME,
        partitions_def=district_nights,
        description="The district's drop for the night arrived by its expected hour "
        "(District.expected_by_hour, local time). Evaluated every 5 minutes by missing_drop_sensor and in "
        "every nightly_sync run; see etl_project/automation/freshness.py.",
    )(_drop_arrived_on_time)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


CHECK_KEY = AssetCheckKey(SNAPSHOT, CHECK_NAME)


def record_missing(states: NightStates, f: Freshness) -> bool:
    """Record the late night as ``missing`` unless it already has a state; True when this call recorded it
    (then, and only then, the sensor reports its failed evaluation)."""
    if states.get(f.district.id, f.night) is not None:
        return False
    states.record(
        f.district.id,
        f.night,
        NightState.MISSING,
        reason=f.missing_reason,
        detail={"expected_by": f.due.isoformat(), "timezone": f.district.timezone},
    )
    return True


def build_missing_drop_sensor(
    *, name: str = "missing_drop_sensor", clock: Callable[[], dt.datetime] = _utcnow
) -> SensorDefinition:
    """``clock`` is the sensor's notion of now (tests pass a fixed time instead of waiting for one)."""

    @sensor(
        name=name,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Records a failed {CHECK_NAME} check for every enabled district whose latest due drop "
        "is missing; see etl_project/automation/freshness.py.",
    )
    def _missing_drop_sensor(context: SensorEvaluationContext, districts: DistrictsResource) -> SensorResult:
        now = clock()
        states = night_states_for(districts)
        registered = set(context.instance.get_dynamic_partitions(DISTRICTS_PARTITION))
        evaluations: list[AssetCheckEvaluation] = []
        late = 0
        for district in sorted(districts.active().values(), key=lambda d: d.id):
            if district.id not in registered:
                continue
            night = due_night(district, now)
            if night is None:
                continue
            f = evaluate_freshness(context.instance, district, night, now)
            if f.passed:
                continue
            late += 1
            context.log.error(f.description)
            if record_missing(states, f):
                evaluations.append(to_evaluation(f))
        return SensorResult(
            asset_events=evaluations,
            skip_reason=None if evaluations else f"no new missing drop ({late} district(s) still late)",
        )

    return _missing_drop_sensor


missing_drop_sensor = build_missing_drop_sensor()
