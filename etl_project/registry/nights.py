"""One truth per night, and the health of each district's source, in the registry database.

Every surface (``history``, ``report``, ``status``, the Dagster UI metadata, alerts, a web portal) reads a
night's state from here, and whatever runs the night (the CLI, the daemon, any worker) writes it here: the
registry is the one database they all reach.

States of a night:

- ``running``: a run is working on it.
- ``applied``: the LMS holds this night's roster. ``released``: a held night applied once by a person.
- ``held``: the safety thresholds held the LMS writes; the LMS is unchanged.
- ``blocked``: a blocking check failed (which check, which file, why); the LMS is unchanged.
- ``failed``: a step failed (which step, the error in one sentence); the LMS is unchanged.
- ``missing``: no complete drop for the night by its expected hour (or when asked for).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select

from etl_project.registry.db import Database, upsert
from etl_project.registry.store import registry_url
from etl_project.registry.tables import night_states, source_polls


class NightState(StrEnum):
    RUNNING = "running"
    APPLIED = "applied"
    RELEASED = "released"
    HELD = "held"
    BLOCKED = "blocked"
    FAILED = "failed"
    MISSING = "missing"

    @property
    def lms_changed(self) -> bool:
        """Whether a night in this state changed the LMS."""
        return self in (NightState.APPLIED, NightState.RELEASED)


@dataclass(frozen=True)
class NightRecord:
    district: str
    night: str  # YYYY-MM-DD
    state: NightState
    reason: str | None = None  # one sentence: why blocked / failed / held / missing
    step: str | None = None  # the step that failed or blocked, e.g. "oneroster_tables"
    run_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"check": ..., "file": ...}
    updated_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "district": self.district,
            "night": self.night,
            "state": str(self.state),
            "reason": self.reason,
            "step": self.step,
            "run_id": self.run_id,
            "detail": dict(self.detail),
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class SourcePoll:
    district: str
    last_poll_at: str
    last_success_at: str | None = None
    newest_drop: str | None = None
    last_error: str | None = None  # one sentence, never a secret
    last_error_at: str | None = None

    @property
    def reachable(self) -> bool:
        """True when the newest poll succeeded."""
        return self.last_error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "district": self.district,
            "last_poll_at": self.last_poll_at,
            "last_success_at": self.last_success_at,
            "newest_drop": self.newest_drop,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "reachable": self.reachable,
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


_NIGHT_COLUMNS = tuple(
    night_states.c[name]
    for name in ("district", "night", "state", "reason", "step", "run_id", "detail", "updated_at")
)


def _night(row: tuple) -> NightRecord:
    district, night, state, reason, step, run_id, detail, updated_at = row
    return NightRecord(
        district=district,
        night=night,
        state=NightState(state),
        reason=reason,
        step=step,
        run_id=run_id,
        detail=json.loads(detail or "{}"),
        updated_at=updated_at,
    )


class NightStates:
    """Reads and writes night states and source polls; one instance per process is enough."""

    def __init__(self, url: str | None = None):
        self._db = Database(url or registry_url())

    # --- nights ---------------------------------------------------------------------------------------

    def record(
        self,
        district: str,
        night: str,
        state: NightState | str,
        *,
        reason: str | None = None,
        step: str | None = None,
        run_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> NightRecord:
        """Set the night's current state (replacing the previous one) and return it."""
        record = NightRecord(
            district=district,
            night=night,
            state=NightState(state),
            reason=reason,
            step=step,
            run_id=run_id,
            detail=dict(detail or {}),
            updated_at=_now(),
        )
        values = record.as_dict()
        values["detail"] = json.dumps(values["detail"], sort_keys=True, default=str)
        with self._db.transaction() as conn:
            insert = upsert(conn, night_states).values(values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[night_states.c.district, night_states.c.night],
                    set_={c: insert.excluded[c] for c in values if c not in ("district", "night")},
                )
            )
        return record

    def get(self, district: str, night: str) -> NightRecord | None:
        where = (night_states.c.district == district) & (night_states.c.night == night)
        with self._db.transaction() as conn:
            row = conn.execute(select(*_NIGHT_COLUMNS).where(where)).first()
        return _night(row) if row else None

    def for_district(self, district: str, limit: int | None = None) -> list[NightRecord]:
        """The district's nights, newest first."""
        query = (
            select(*_NIGHT_COLUMNS)
            .where(night_states.c.district == district)
            .order_by(night_states.c.night.desc())
            .limit(limit)
        )
        with self._db.transaction() as conn:
            return [_night(r) for r in conn.execute(query)]

    def by_night(self, district: str) -> dict[str, NightRecord]:
        """The district's nights keyed by night (YYYY-MM-DD)."""
        return {n.night: n for n in self.for_district(district)}

    def latest(self, district: str) -> NightRecord | None:
        nights = self.for_district(district, limit=1)
        return nights[0] if nights else None

    def latest_by_district(self) -> dict[str, NightRecord]:
        """The newest night of every district that has one."""
        newest = (
            select(night_states.c.district, func.max(night_states.c.night).label("night"))
            .group_by(night_states.c.district)
            .subquery()
        )
        query = select(*_NIGHT_COLUMNS).join(
            newest, (newest.c.district == night_states.c.district) & (newest.c.night == night_states.c.night)
        )
        with self._db.transaction() as conn:
            rows = conn.execute(query).all()
        return {r[0]: _night(r) for r in rows}

    def forget_district(self, district: str) -> None:
        """Remove every record of a district (when it is removed from the registry)."""
        with self._db.transaction() as conn:
            conn.execute(night_states.delete().where(night_states.c.district == district))
            conn.execute(source_polls.delete().where(source_polls.c.district == district))

    # --- source polls ---------------------------------------------------------------------------------

    def record_poll(
        self, district: str, *, error: str | None = None, newest_drop: str | None = None
    ) -> SourcePoll:
        """Record one poll of the district's source: a success (``error`` None) or its one-sentence error."""
        now = _now()
        if error is None:
            values = {"last_success_at": now, "newest_drop": newest_drop, "last_error": None}
        else:
            values = {"last_error": error}
        values |= {"district": district, "last_poll_at": now, "last_error_at": None if error is None else now}
        with self._db.transaction() as conn:
            insert = upsert(conn, source_polls).values(values)
            new = insert.excluded
            changed = {c: new[c] for c in values if c != "district"}
            if error is None:  # a poll that saw no drop keeps the newest one seen before
                changed["newest_drop"] = func.coalesce(new.newest_drop, source_polls.c.newest_drop)
            conn.execute(insert.on_conflict_do_update(index_elements=[source_polls.c.district], set_=changed))
            row = conn.execute(select(source_polls).where(source_polls.c.district == district)).one()
        return SourcePoll(*row)

    def poll(self, district: str) -> SourcePoll | None:
        with self._db.transaction() as conn:
            row = conn.execute(select(source_polls).where(source_polls.c.district == district)).first()
        return SourcePoll(*row) if row else None

    def polls(self) -> dict[str, SourcePoll]:
        with self._db.transaction() as conn:
            rows = conn.execute(select(source_polls)).all()
        return {r[0]: SourcePoll(*r) for r in rows}
