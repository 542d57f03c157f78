"""District sync reports: what came in, what was rejected and why (with fix hints), what changed."""

from etl_project.reports.build import History, NightPoint, NightReport, build_history, build_night_report
from etl_project.reports.hints import CODES, Hint, hint_for
from etl_project.reports.html import HISTORY_NAME, REJECTS_NAME, REPORT_NAME, render_history, render_night
from etl_project.reports.publish import Published, publish_night, render_pages

__all__ = [
    "CODES",
    "HISTORY_NAME",
    "REJECTS_NAME",
    "REPORT_NAME",
    "Hint",
    "History",
    "NightPoint",
    "NightReport",
    "Published",
    "build_history",
    "build_night_report",
    "hint_for",
    "publish_night",
    "render_history",
    "render_night",
    "render_pages",
]
