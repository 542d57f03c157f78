"""Build a night's report, its rejected-rows CSV and the district's history page, and store all three in
the archive beside the night's snapshot:
``district=<id>/date=<night>/{report.html, rejects.csv, history.html}``."""

from __future__ import annotations

from dataclasses import dataclass

from etl_project.archive.base import Archive
from etl_project.lms.backend import LmsBackend
from etl_project.night_tables import read_nights
from etl_project.registry.nights import NightRecord
from etl_project.reports.build import NightReport, build_history, build_night_report, rejects_csv
from etl_project.reports.html import HISTORY_NAME, REJECTS_NAME, REPORT_NAME, render_history, render_night
from etl_project.warehouse import WarehouseResource


@dataclass(frozen=True)
class Published:
    report: NightReport
    pages: dict[str, bytes]  # name -> bytes
    uris: dict[str, str]  # name -> archive URI

    @property
    def report_uri(self) -> str:
        return self.uris[REPORT_NAME]

    @property
    def history_uri(self) -> str:
        return self.uris[HISTORY_NAME]


def render_pages(
    warehouse: WarehouseResource,
    backend: LmsBackend | None,
    archive: Archive,
    district: str,
    date: str,
    *,
    district_name: str | None = None,
    timezone: str = "UTC",
    states: dict[str, NightRecord] | None = None,
) -> tuple[NightReport, dict[str, bytes]]:
    """``states``: the registry's night records of the district by night (their state wins). The tables
    are read from the archive (etl_project/night_tables.py), so any worker can render any night."""
    states = states or {}
    with read_nights(warehouse, archive, district, [date]) as conn:
        report = build_night_report(
            conn, backend, archive, district, date, district_name=district_name, timezone=timezone,
            night_state=states.get(date),
        )  # fmt: skip
        history = build_history(conn, backend, district, date, district_name=district_name, states=states)
        csv = rejects_csv(conn, date)
    pages = {
        REPORT_NAME: render_night(report).encode(),
        HISTORY_NAME: render_history(history).encode(),
        REJECTS_NAME: csv,
    }
    return report, pages


_TYPES = {REPORT_NAME: "text/html; charset=utf-8", HISTORY_NAME: "text/html; charset=utf-8",
          REJECTS_NAME: "text/csv; charset=utf-8"}  # fmt: skip


def publish_night(
    warehouse: WarehouseResource,
    backend: LmsBackend | None,
    archive: Archive,
    district: str,
    date: str,
    *,
    district_name: str | None = None,
    timezone: str = "UTC",
    states: dict[str, NightRecord] | None = None,
) -> Published:
    report, pages = render_pages(
        warehouse, backend, archive, district, date, district_name=district_name, timezone=timezone,
        states=states,
    )  # fmt: skip
    uris = {
        name: archive.put_bytes(district, date, name, data, _TYPES[name]).uri for name, data in pages.items()
    }
    return Published(report, pages, uris)
