"""One line of truth per district: its source's newest poll, its newest night and when the next one is due.

Read by ``etl-project status`` (and anything else that wants the same facts, e.g. a portal): the registry
holds the districts, their night states and their source polls, so no Dagster instance is needed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from etl_project.automation.nights import due_at, due_night
from etl_project.districts import District, connected
from etl_project.partitions import PARTITIONS_START
from etl_project.registry.nights import NightRecord, NightState, NightStates, SourcePoll

#: a district whose newest night is in one of these states needs someone's attention
FAILING_STATES = (NightState.FAILED, NightState.BLOCKED, NightState.MISSING)


@dataclass(frozen=True)
class DistrictStatus:
    district: District
    poll: SourcePoll | None
    night: NightRecord | None  # the newest night with a state
    next_night: str
    next_expected_by: dt.datetime  # local time of the district
    now: dt.datetime

    @property
    def health(self) -> str:
        """``ok``, ``unreachable``, ``failing`` (newest night failed/blocked/missing), ``never polled``, or
        ``not connected`` (no source set yet: nothing is polled or expected)."""
        if not connected(self.district):
            return "not connected"
        if self.poll is not None and not self.poll.reachable:
            return "unreachable"
        if self.night is not None and self.night.state in FAILING_STATES:
            return "failing"
        return "ok" if self.poll is not None else "never polled"

    @property
    def needs_attention(self) -> bool:
        """Enabled and unreachable or failing: what makes ``etl-project status`` exit 1."""
        return self.district.enabled and self.health in ("unreachable", "failing")

    @property
    def overdue(self) -> bool:
        return connected(self.district) and self.now >= self.next_expected_by

    @property
    def last_error(self) -> str | None:
        """The one sentence to read first: the source's error, else the newest night's reason when failing."""
        if self.poll is not None and self.poll.last_error:
            return self.poll.last_error
        if self.night is not None and self.night.state in FAILING_STATES:
            return self.night.reason
        return None

    def as_dict(self) -> dict[str, Any]:
        d = self.district
        return {
            "district": d.id,
            "name": d.name,
            "enabled": d.enabled,
            "source_kind": getattr(d.source, "kind", type(d.source).__name__),
            "timezone": d.timezone,
            "health": self.health,
            "needs_attention": self.needs_attention,
            "last_poll_at": self.poll.last_poll_at if self.poll else None,
            "last_successful_poll_at": self.poll.last_success_at if self.poll else None,
            "newest_drop": self.poll.newest_drop if self.poll else None,
            "last_night": self.night.night if self.night else None,
            "last_night_state": str(self.night.state) if self.night else None,
            "next_night": self.next_night,
            "next_night_expected_by": self.next_expected_by.isoformat(),
            "next_night_overdue": self.overdue,
            "last_error": self.last_error,
        }


def next_night(
    district: District, newest: NightRecord | None, now: dt.datetime, newest_drop: str | None = None
) -> tuple[str, dt.datetime]:
    """The night whose drop the district owes next and when it is due: the latest due night while its drop
    has not come (no night state but ``missing``, and no complete drop seen at the source), else the next."""
    due = due_night(district, now)
    if due is None:
        return PARTITIONS_START, due_at(district, PARTITIONS_START)
    synced = newest is not None and newest.night >= due and newest.state is not NightState.MISSING
    if not synced and not (newest_drop and newest_drop >= due):
        return due, due_at(district, due)
    following = (dt.date.fromisoformat(due) + dt.timedelta(days=1)).isoformat()
    return following, due_at(district, following)


def district_statuses(
    districts: Mapping[str, District], states: NightStates, now: dt.datetime
) -> list[DistrictStatus]:
    """Every district's status, by id (three registry queries, whatever the number of districts)."""
    polls = states.polls()
    nights = states.latest_by_district()
    rows = []
    for did in sorted(districts):
        district = districts[did]
        newest, poll = nights.get(did), polls.get(did)
        night, expected = next_night(district, newest, now, poll.newest_drop if poll else None)
        rows.append(DistrictStatus(district, poll, newest, night, expected, now))
    return rows
