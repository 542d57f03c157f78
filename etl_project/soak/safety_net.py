"""The nightly schedule (the safety net behind the sensor) is stopped while the soak runs, restarted after.

The schedule requests, every 30 minutes, any district's due night that nothing has requested yet
(etl_project/automation/schedules.py): during a soak it would request night 2 before the soak publishes it
(a run that fails on a missing drop) or race the sensor for night 1. The soak measures the sensor path
(sensor -> queue -> runs), so the schedule is paused through the webserver's GraphQL, as in the UI."""

from __future__ import annotations

from etl_project.soak.ui import graphql, query_text, repository_selector

SCHEDULE = "nightly_sync_schedule"


def _selector(url: str) -> dict[str, str]:
    repo = repository_selector(url)
    return {**repo, "scheduleName": SCHEDULE}


def stop_schedule(url: str) -> str:
    """Stop the schedule; returns its status before (``RUNNING`` or ``STOPPED``)."""
    schedule = graphql(url, query_text("schedule"), {"selector": _selector(url)})["scheduleOrError"]
    before = schedule["scheduleState"]["status"]
    if before == "RUNNING":
        graphql(url, query_text("stop_schedule"), {"id": schedule["id"]})
    return before


def restart_schedule(url: str, before: str) -> None:
    if before == "RUNNING":
        graphql(url, query_text("start_schedule"), {"selector": _selector(url)})
