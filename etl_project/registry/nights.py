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

from etl_project.registry.db import Database
from etl_project.registry.store import registry_url


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


_NIGHT_COLUMNS = "district, night, state, reason, step, run_id, detail, updated_at"
_POLL_COLUMNS = "district, last_poll_at, last_success_at, newest_drop, last_error, last_error_at"


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
        with self._db.transaction() as tx:
            tx.execute(
                f"INSERT INTO night_states ({_NIGHT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (district, night) DO UPDATE SET state = excluded.state, "
                "reason = excluded.reason, step = excluded.step, run_id = excluded.run_id, "
                "detail = excluded.detail, updated_at = excluded.updated_at",
                [values[c.strip()] for c in _NIGHT_COLUMNS.split(",")],
            )
        return record

    def get(self, district: str, night: str) -> NightRecord | None:
        with self._db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_NIGHT_COLUMNS} FROM night_states WHERE district = ? AND night = ?",
                [district, night],
            )
        return _night(rows[0]) if rows else None

    def for_district(self, district: str, limit: int | None = None) -> list[NightRecord]:
        """The district's nights, newest first."""
        sql = f"SELECT {_NIGHT_COLUMNS} FROM night_states WHERE district = ? ORDER BY night DESC"
        params: list[Any] = [district]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._db.transaction() as tx:
            return [_night(r) for r in tx.execute(sql, params)]

    def by_night(self, district: str) -> dict[str, NightRecord]:
        """The district's nights keyed by night (YYYY-MM-DD)."""
        return {n.night: n for n in self.for_district(district)}

    def latest(self, district: str) -> NightRecord | None:
        nights = self.for_district(district, limit=1)
        return nights[0] if nights else None

    def latest_by_district(self) -> dict[str, NightRecord]:
        """The newest night of every district that has one."""
        with self._db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {', '.join('n.' + c.strip() for c in _NIGHT_COLUMNS.split(','))} "
                "FROM night_states n JOIN (SELECT district, max(night) AS night FROM night_states "
                "GROUP BY district) m ON m.district = n.district AND m.night = n.night"
            )
        return {r[0]: _night(r) for r in rows}

    def forget_district(self, district: str) -> None:
        """Remove every record of a district (when it is removed from the registry)."""
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM night_states WHERE district = ?", [district])
            tx.execute("DELETE FROM source_polls WHERE district = ?", [district])

    # --- source polls ---------------------------------------------------------------------------------

    def record_poll(
        self, district: str, *, error: str | None = None, newest_drop: str | None = None
    ) -> SourcePoll:
        """Record one poll of the district's source: a success (``error`` None) or its one-sentence error."""
        now = _now()
        with self._db.transaction() as tx:
            if error is None:
                tx.execute(
                    f"INSERT INTO source_polls ({_POLL_COLUMNS}) VALUES (?, ?, ?, ?, NULL, NULL) "
                    "ON CONFLICT (district) DO UPDATE SET last_poll_at = excluded.last_poll_at, "
                    "last_success_at = excluded.last_success_at, "
                    "newest_drop = COALESCE(excluded.newest_drop, source_polls.newest_drop), "
                    "last_error = NULL, last_error_at = NULL",
                    [district, now, now, newest_drop],
                )
            else:
                tx.execute(
                    f"INSERT INTO source_polls ({_POLL_COLUMNS}) VALUES (?, ?, NULL, NULL, ?, ?) "
                    "ON CONFLICT (district) DO UPDATE SET last_poll_at = excluded.last_poll_at, "
                    "last_error = excluded.last_error, last_error_at = excluded.last_error_at",
                    [district, now, error, now],
                )
            rows = tx.execute(f"SELECT {_POLL_COLUMNS} FROM source_polls WHERE district = ?", [district])
        return SourcePoll(*rows[0])

    def poll(self, district: str) -> SourcePoll | None:
        with self._db.transaction() as tx:
            rows = tx.execute(f"SELECT {_POLL_COLUMNS} FROM source_polls WHERE district = ?", [district])
        return SourcePoll(*rows[0]) if rows else None

    def polls(self) -> dict[str, SourcePoll]:
        with self._db.transaction() as tx:
            rows = tx.execute(f"SELECT {_POLL_COLUMNS} FROM source_polls")
        return {r[0]: SourcePoll(*r) for r in rows}
