"""A night's rejected rows with their fix hints as a CSV download. DuckDB writes the whole file (no per-row
Python); cells a spreadsheet would run as formulas are neutralized with a leading ' (reports.build)."""

from __future__ import annotations

from etl_project.archive.base import Archive
from etl_project.night_readers import READERS
from etl_project.partitions import validate_partition_night
from etl_project.reports.build import rejects_csv
from etl_project.warehouse import WarehouseResource


def rejects_download(
    warehouse: WarehouseResource, archive: Archive, district: str, date: str
) -> tuple[str, bytes]:
    """(file name, CSV bytes) of the night's rejected rows, read from the archived night."""
    night = validate_partition_night(date)
    with READERS.read(warehouse, archive, district, [night]) as conn:
        return f"{district}-{night}-rejected-rows.csv", rejects_csv(conn, night)
