"""Each night's one truth, written where it happens (etl_project/registry/nights.py stores it).

- ``running``: ``night_running`` (night_hooks.py), a success hook: the first step of a run to finish marks
  its night.
- ``applied`` / ``released`` / ``held``: the LMS assets (etl_project/assets/lms.py), from the load's result.
- ``blocked``: the OneRoster quality checks (etl_project/checks/definitions.py), naming check, file and why.
- ``failed`` / ``missing``: ``night_failed`` (night_hooks.py), a failure hook: the step and its error in
  one sentence; ``missing`` when the step raised
  ``Failure(metadata={"etl_project/night_state": "missing"})``. A state already recorded by this run (held,
  blocked, missing) is kept: the failure is its consequence.

The hooks are attached to every job (etl_project/jobs.py), so in-process CLI runs and daemon-launched runs
record the same way. A night that ends badly also gets its report published by the failure hook (the report
asset is downstream of the LMS and does not run), with the state in the report asset's metadata.
"""

from __future__ import annotations

import re
from typing import Any

from etl_project.districts.resource import DistrictsResource
from etl_project.partitions import DistrictNight
from etl_project.registry.nights import NightRecord, NightState

MAX_REASON = 300
_CREDENTIALS = re.compile(r"(://[^/\s:@]*:)[^@\s]*@")


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
