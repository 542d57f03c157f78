"""Each night's one truth, written where it happens (etl_project/registry/nights.py stores it).

- ``running``: :data:`night_running`, a success hook: the first step of a run to finish marks its night.
- ``applied`` / ``released`` / ``held``: the LMS assets (etl_project/assets/lms.py), from the load's result.
- ``blocked``: the OneRoster quality checks (etl_project/checks/definitions.py), naming check, file and why.
- ``failed`` / ``missing``: :data:`night_failed`, a failure hook: the step and its error in one sentence;
  ``missing`` when the step raised ``Failure(metadata={"etl_project/night_state": "missing"})``. A state
  already recorded by this run (held, blocked, missing) is kept: the failure is its consequence.

The hooks are attached to every job (etl_project/jobs.py), so in-process CLI runs and daemon-launched runs
record the same way. A night that ends badly also gets its report published by the failure hook (the report
asset is downstream of the LMS and does not run), with the state in the report asset's metadata.
"""

from __future__ import annotations

import re
from typing import Any

from dagster import DagsterInstance, Failure, HookContext, failure_hook, success_hook

from etl_project.districts import DistrictsResource
from etl_project.partitions import DistrictNight
from etl_project.registry.nights import NightRecord, NightState

STATE_METADATA_KEY = "etl_project/night_state"
MAX_REASON = 300
_KEPT_ON_FAILURE = (NightState.HELD, NightState.BLOCKED, NightState.MISSING, NightState.FAILED)
_CREDENTIALS = re.compile(r"(://[^/\s:@]*:)[^@\s]*@")


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


def one_sentence(text: str) -> str:
    """The first line of ``text``, credentials in URLs masked, at most MAX_REASON characters."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    line = _CREDENTIALS.sub(r"\1***@", line)
    return line[:MAX_REASON] + "…" if len(line) > MAX_REASON else line


def record_night(
    districts: DistrictsResource,
    night: DistrictNight,
    state: NightState,
    run_id: str,
    log=None,
    **kwargs: Any,
) -> NightRecord | None:
    """Record the night's state; a registry that cannot be reached is logged, never fails the run."""
    try:
        return districts.night_states().record(night.district, night.date, state, run_id=run_id, **kwargs)
    except Exception as exc:
        if log is not None:
            log.error(f"{night}: night state {state} not recorded: {one_sentence(str(exc))}")
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
    from etl_project.assets.reports import publish_state_report

    publish_state_report(context, night, current)


NIGHT_HOOKS = {night_running, night_failed}
