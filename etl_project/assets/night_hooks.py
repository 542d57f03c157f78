"""The night-state hooks attached to every job (etl_project/jobs.py): a success hook marks the night
``running``, a failure hook records ``failed`` or ``missing`` and publishes the night's report (states:
etl_project/assets/night_state.py)."""

from __future__ import annotations

from dagster import DagsterInstance, Failure, HookContext, failure_hook, success_hook

from etl_project.assets.night_state import one_sentence, record_night
from etl_project.assets.reports import publish_state_report
from etl_project.districts.resource import DistrictsResource
from etl_project.partitions import DistrictNight
from etl_project.registry.nights import NightRecord, NightState

STATE_METADATA_KEY = "etl_project/night_state"
_KEPT_ON_FAILURE = (NightState.HELD, NightState.BLOCKED, NightState.MISSING, NightState.FAILED)


def night_of_run(instance: DagsterInstance, run_id: str) -> DistrictNight | None:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    tags = run.tags
    date, district = tags.get("dagster/partition/date"), tags.get("dagster/partition/district")
    if date and district:
        return DistrictNight(date, district)
    try:
        return DistrictNight.of(tags["dagster/partition"]) if tags.get("dagster/partition") else None
    except ValueError:
        return None


def _failure_of(exc: BaseException | None) -> tuple[NightState, str]:
    """(failed or missing, one sentence) for the exception a step raised."""
    seen = exc
    while seen is not None and not isinstance(seen, Failure):
        seen = getattr(seen, "user_exception", None) or seen.__cause__
    if isinstance(seen, Failure):
        value = seen.metadata.get(STATE_METADATA_KEY)
        state = NightState.MISSING if getattr(value, "value", value) == "missing" else NightState.FAILED
        return state, one_sentence(seen.description or "the step failed")
    cause = exc
    while cause is not None and (getattr(cause, "user_exception", None) or cause.__cause__) is not None:
        cause = getattr(cause, "user_exception", None) or cause.__cause__
    if cause is None:
        return NightState.FAILED, "the step failed"
    return NightState.FAILED, one_sentence(f"{type(cause).__name__}: {cause}")


def _current(context: HookContext) -> tuple[DistrictNight | None, NightRecord | None]:
    """The hook's night and its recorded state (None when the run has no partition or the registry fails)."""
    night = night_of_run(context.instance, context.run_id)
    if night is None:
        return None, None
    try:
        return night, context.resources.districts.night_states().get(night.district, night.date)
    except Exception as exc:
        context.log.error(f"{night}: night state not read: {one_sentence(str(exc))}")
        return night, None


@success_hook(required_resource_keys={"districts"})
def night_running(context: HookContext) -> None:
    night, current = _current(context)
    districts: DistrictsResource = context.resources.districts
    if night is None:
        return
    if current is None or current.run_id != context.run_id:
        record_night(districts, night, NightState.RUNNING, context.run_id, context.log, step=context.step_key)


@failure_hook(required_resource_keys={"districts", "warehouse", "lms", "archive"})
def night_failed(context: HookContext) -> None:
    night, current = _current(context)
    districts: DistrictsResource = context.resources.districts
    if night is None:
        return
    if current is None or current.run_id != context.run_id or current.state not in _KEPT_ON_FAILURE:
        state, reason = _failure_of(context.op_exception)
        current = record_night(
            districts, night, state, context.run_id, context.log, reason=reason, step=context.step_key
        )
    publish_state_report(context, night, current)


NIGHT_HOOKS = {night_running, night_failed}
