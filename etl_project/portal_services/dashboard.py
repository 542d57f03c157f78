"""A district's dashboard: the last nights with their one truthful state and LMS counts, and one night's
report (the existing report module's facts and page)."""

from __future__ import annotations

from typing import Any

from etl_project.archive.base import Archive
from etl_project.lms.backend import LmsBackend
from etl_project.lms.history import history, night_history
from etl_project.night_readers import READERS
from etl_project.registry.nights import NightStates
from etl_project.reports.build import NightReport, build_night_report
from etl_project.reports.html import render_night
from etl_project.warehouse import WarehouseResource

DASHBOARD_NIGHTS = 30


def recent_nights(
    states: NightStates, backend: LmsBackend | None, district: str, limit: int = DASHBOARD_NIGHTS
) -> list[dict[str, Any]]:
    """The district's newest ``limit`` nights, newest first: state, reason, step, run and LMS counts."""
    records = {r.night: r for r in states.for_district(district, limit=limit)}
    ledger = _ledger(backend, district)
    newest = sorted(set(records) | {n["date"] for n in ledger}, reverse=True)[:limit]
    keep = set(newest)
    nights = night_history([n for n in ledger if n["date"] in keep], records)
    return sorted((n for n in nights if n["date"] in keep), key=lambda n: n["date"], reverse=True)


def _ledger(backend: LmsBackend | None, district: str) -> list[dict[str, Any]]:
    if backend is None:
        return []
    try:
        return history(backend, district)
    except Exception:  # an LMS never loaded for this district has no ledger tables yet
        return []


def night_report(
    warehouse: WarehouseResource,
    backend: LmsBackend | None,
    archive: Archive | None,
    states: NightStates,
    district: str,
    date: str,
    *,
    district_name: str | None = None,
    timezone: str = "UTC",
) -> NightReport:
    """The facts of one night's report (files, rejected rows with hints, LMS counts, state)."""
    if archive is None:
        raise ValueError("the night's report needs the archive")
    with READERS.read(warehouse, archive, district, [date]) as conn:
        return build_night_report(
            conn, backend, archive, district, date, district_name=district_name, timezone=timezone,
            night_state=states.get(district, date),
        )  # fmt: skip


def night_report_html(report: NightReport) -> str:
    """The night's report page, as the archived report looks."""
    return render_night(report)
