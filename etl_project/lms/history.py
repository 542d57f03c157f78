"""Reading the ledger back: one record's history (trace) and one line per night (history), the registry's
night states merged in (:func:`night_history`). Why a record was kept out: etl_project/reports/kept_out.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from etl_project.lms.backend import LmsBackend
from etl_project.lms.schema import entity as entity_def
from etl_project.registry.nights import NightRecord


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def _changes(operation: str, value: Any) -> Any:
    """A created row's changes are its after-values (``{field: value}``), shown as before/after pairs."""
    changes = _json(value)
    if operation != "created" or not isinstance(changes, dict):
        return changes
    return {k: v if isinstance(v, dict) else {"before": None, "after": v} for k, v in changes.items()}


def trace(backend: LmsBackend, district: str, entity: str, sourced_id: str) -> list[dict[str, Any]]:
    """Every ledger row of one record, newest first, with its night, run, release and provenance."""
    entity_def(entity)
    with backend.session(district, write=False) as s:
        rows = s.query(
            f"""SELECT l.id, l.partition_date, l.run_id, l.operation, l.lms_id, l.changes, l.file_uri,
                       l.file_version, l.line, l.file_sha256, l.released_by, l.release_reason, l.recorded_at
                FROM {s.table("change_ledger")} l
                WHERE l.lms_id IN (SELECT id FROM {s.table(entity)} WHERE district = %s AND sourced_id = %s)
                  AND l.district = %s AND l.entity = %s AND l.sourced_id = %s ORDER BY l.id DESC""",
            [district, sourced_id, district, entity, sourced_id],
        )
    keys = (
        "ledger_id", "date", "run_id", "operation", "lms_id", "changes", "file_uri", "file_version", "line",
        "file_sha256", "released_by", "release_reason", "recorded_at",
    )  # fmt: skip
    out = []
    for row in rows:
        item = {k: _text(v) for k, v in zip(keys, row, strict=True)}
        item["changes"] = _changes(item["operation"], item["changes"])
        out.append(item)
    return out


def history(backend: LmsBackend, district: str) -> list[dict[str, Any]]:
    """One entry per night (its latest attempt), oldest first."""
    with backend.session(district, write=False) as s:
        rows = s.query(
            f"""SELECT partition_date, run_id, state, counts, held, released_by, release_reason,
                       ledger_first, ledger_last, id
                FROM {s.table("sync_runs")} WHERE district = %s ORDER BY partition_date, id""",
            [district],
        )
    nights: dict[str, dict[str, Any]] = {}
    for date, run_id, state, counts, held, by, reason, first, last, _ in rows:
        counts = _json(counts) or {}
        nights[_text(date)] = {
            "date": _text(date),
            "run_id": run_id,
            "state": state,
            "counts": {e: {op: n for op, n in ops.items() if op != "unchanged"} for e, ops in counts.items()},
            "held": _json(held),
            "released_by": by,
            "release_reason": reason,
            "ledger_first": first,
            "ledger_last": last,
        }
    return list(nights.values())


_LMS_LOADED = ("applied", "released", "held")


def night_history(ledger: list[dict[str, Any]], records: Mapping[str, NightRecord]) -> list[dict[str, Any]]:
    """Every night the ledger or the registry knows, oldest first. The registry's state wins (a blocked,
    failed or missing night never reached the ledger); a night's counts are its own ledger's, and only for a
    night that reached the LMS load (never another night's)."""
    by_date = {n["date"]: dict(n) for n in ledger}
    out = []
    for date in sorted(set(by_date) | set(records)):
        night = by_date.get(date) or {"date": date, "run_id": None, "state": None, "counts": {}, "held": None,
                                      "released_by": None, "release_reason": None}  # fmt: skip
        record = records.get(date)
        night["reason"], night["step"] = None, None
        if record is not None:
            night.update(state=str(record.state), reason=record.reason, step=record.step)
            night["run_id"] = record.run_id or night["run_id"]
        if night["state"] not in _LMS_LOADED:
            night["counts"] = {}
        out.append(night)
    return out
