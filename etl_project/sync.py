"""Run one district-night through Dagster against the persistent instance (used by the CLI and the demo)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dagster import DagsterInstance, ExecuteInProcessResult

from etl_project.instance import register_district
from etl_project.partitions import DistrictNight
from etl_project.progress import STEP_LINES_LOGGER, failure_cause
from etl_project.registry.nights import NightRecord, NightStates
from etl_project.run_owner import owner_tags, sweep_stale_runs
from etl_project.scratch import sweep_scratch

FETCH_STEP = "fetch_and_archive_drop"


@dataclass
class SyncOutcome:
    night: DistrictNight
    run_id: str
    success: bool
    materialized: dict[str, Mapping[str, object]] = field(default_factory=dict)
    failure: str | None = None
    state: NightRecord | None = None  # the night's one truth after the run, as every other surface reads it


def sync_night(
    night: DistrictNight,
    *,
    instance: DagsterInstance,
    replay: bool = False,
    settle_seconds: float | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, object] | None = None,
    log_level: str = "INFO",
    step_lines: bool = False,
) -> SyncOutcome:
    """Materialize the night's whole graph (or, with ``replay``, everything downstream of the archive).

    First, what killed runs on this host left behind is cleaned up (their runs marked failed, their scratch
    removed); the run then executes in this process, which its tags name as its owner.

    ``step_lines`` prints one line per step on stdout instead of Dagster's console log (etl_project.progress);
    the run's full log, tracebacks included, is in its event log either way."""
    from etl_project.definitions import defs  # reads the environment: import only when running

    sweep_stale_runs(instance)
    sweep_scratch()
    register_district(instance, night.district)
    job = defs.resolve_job_def("replay_from_archive" if replay else "nightly_sync")
    loggers = {STEP_LINES_LOGGER: {}} if step_lines else {"console": {"config": {"log_level": log_level}}}
    config: dict[str, object] = {"loggers": loggers}
    ops: dict[str, object] = dict((run_config or {}).get("ops", {}))
    if settle_seconds is not None and not replay:
        ops[FETCH_STEP] = {"config": {"settle_seconds": settle_seconds}}
    if ops:
        config["ops"] = ops
    result: ExecuteInProcessResult = job.execute_in_process(
        partition_key=night.key,
        instance=instance,
        run_config=config,
        tags={**(tags or {}), **owner_tags()},
        raise_on_error=False,
    )
    outcome = SyncOutcome(night=night, run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        outcome.materialized[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    if not result.success:
        failures = [failure_cause(e) for e in result.all_events if e.is_step_failure]
        outcome.failure = "; ".join(failures) or "run failed"
    outcome.state = _recorded_state(night, result.run_id)
    return outcome


def _recorded_state(night: DistrictNight, run_id: str) -> NightRecord | None:
    """The state this run recorded for its night (None if the registry cannot be read)."""
    try:
        record = NightStates().get(night.district, night.date)
    except Exception:  # the run's own log says why; the outcome still stands without it
        return None
    return record if record is not None and record.run_id == run_id else None
