"""A run's place in the queue and its progress step by step, read from the instance (run storage and the
run's event log), for a page that polls until the run ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

_STEP_EVENTS = {
    DagsterEventType.STEP_START: "started",
    DagsterEventType.STEP_SUCCESS: "succeeded",
    DagsterEventType.STEP_FAILURE: "failed",
    DagsterEventType.STEP_SKIPPED: "skipped",
}
_ENDED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class Progress:
    run_id: str
    status: str  # QUEUED, STARTING, STARTED, SUCCESS, FAILURE, CANCELED ...
    ahead: int | None  # queued runs ahead of it while it is queued, else None
    steps: dict[str, str] = field(default_factory=dict)  # step key -> started | succeeded | failed | skipped
    ended: bool = False


def queue_position(instance: DagsterInstance, run_id: str) -> int | None:
    """How many queued runs were queued before this one (None once it left the queue)."""
    record = instance.get_run_record_by_id(run_id)
    if record is None or record.dagster_run.status != DagsterRunStatus.QUEUED:
        return None
    earlier = RunsFilter(statuses=[DagsterRunStatus.QUEUED], created_before=record.create_timestamp)
    return len([r for r in instance.get_run_records(earlier) if r.dagster_run.run_id != run_id])


def run_progress(instance: DagsterInstance, run_id: str) -> Progress:
    """The run's status, queue place and each step's latest state, in the order the steps started."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise KeyError(f"no run {run_id}")
    steps: dict[str, str] = {}
    for entry in instance.all_logs(run_id, of_type=set(_STEP_EVENTS)):
        event = entry.dagster_event
        if event is not None and event.step_key:
            steps[event.step_key] = _STEP_EVENTS[event.event_type]
    return Progress(run_id, run.status.value, queue_position(instance, run_id), steps, run.status in _ENDED)
