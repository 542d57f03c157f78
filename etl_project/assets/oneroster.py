"""Normalized OneRoster tables in DuckDB, built only from the archived snapshot.

One asset per OneRoster table, all produced by one step: validation crosses tables (enrollments need their
classes and users), so the night is staged and checked together, then each table gets its own
materialization with its own lineage metadata.
"""

import time
from pathlib import Path

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    multi_asset,
)

from etl_project.archive import ArchiveResource, Snapshot
from etl_project.assets.keys import OWNERS, SNAPSHOT, oneroster
from etl_project.night_tables import forget_archived_nights, publish_night, publish_unarchived
from etl_project.oneroster.load import TABLES, DropReport, FileProvenance, load_drop
from etl_project.oneroster.rejected import describe_rejected, rejected_files, rejected_rows
from etl_project.partitions import DistrictNight, district_nights
from etl_project.run_owner import claim_run
from etl_project.scratch import scratch_dir
from etl_project.warehouse import WarehouseResource

REJECTS = "rejects"
SAMPLE_REJECTS = 5

_DESCRIPTIONS = {
    "orgs": "Districts, schools and departments (orgs.csv).",
    "academic_sessions": "School years, terms, semesters and grading periods (academicSessions.csv).",
    "courses": "Courses offered, with grades and subject codes (courses.csv).",
    "classes": "Class sections: course, school, terms and periods (classes.csv).",
    "users": "Students, teachers, staff and guardians (users.csv, OneRoster 1.1 and 1.2 columns).",
    "demographics": "Demographic data per user (demographics.csv).",
    "enrollments": "Who is in which class, in which role (enrollments.csv).",
    "roles": "OneRoster 1.2 roles: each user's role per org (roles.csv).",
    "user_profiles": "OneRoster 1.2 user profiles: logins per application (userProfiles.csv).",
}


def _spec(table: str, description: str) -> AssetSpec:
    return AssetSpec(
        oneroster(table),
        deps=[SNAPSHOT],
        group_name="oneroster",
        kinds={"duckdb"},
        owners=OWNERS,
        description=description,
        metadata={"dagster/table_name": f"oneroster.{table}"},
    )


@multi_asset(
    specs=[_spec(t, _DESCRIPTIONS.get(t, f"OneRoster {t}")) for t in TABLES]
    + [
        _spec(
            REJECTS,
            "Every row (and file) of the night that could not be accepted: file, line, column, code and a "
            "plain-language reason. Rejected rows never reach the LMS.",
        )
    ],
    partitions_def=district_nights,
    can_subset=False,
)
def oneroster_tables(context: AssetExecutionContext, archive: ArchiveResource, warehouse: WarehouseResource):
    claim_run(context)
    night = DistrictNight.of(context.partition_key)
    with scratch_dir(f"snapshot-{night.district}") as scratch:
        started = time.monotonic()
        snapshot = archive.open().download_snapshot(night.district, night.date, scratch)
        download_s = time.monotonic() - started
        drop, provenance = _drop_path(snapshot, scratch)
        started = time.monotonic()
        with warehouse.connect(night.district) as conn:
            report = load_drop(conn, drop, district=night.district, date=night.date, provenance=provenance)
            normalize_s = time.monotonic() - started
            # The tables go to the archive (even a refused night's files and rejects, for its report):
            # whichever worker runs the next step or night reads them from there, not from this disk.
            store = archive.open()
            tables = publish_night(conn, store, warehouse, night.district, night.date)
            if backfilled := publish_unarchived(conn, store, warehouse, night.district):
                context.log.info(f"{night}: archived earlier nights' tables too: {', '.join(backfilled)}")
            forget_archived_nights(conn, store, night.district, keep=night.date)  # a worker's disk is scratch
            if report.refused:
                raise Failure(
                    description=f"{night}: drop refused: " + "; ".join(report.drop_errors),
                    metadata={"drop_errors": MetadataValue.json(report.drop_errors)},
                )
            results = [
                _table_result(conn, night, t, report, snapshot, download_s, normalize_s) for t in TABLES
            ]
            results.append(_rejects_result(conn, night, report, tables.manifest_sha256))
    context.log.info(_summary(night, report))
    yield from results


def _drop_path(snapshot: Snapshot, scratch: Path) -> tuple[Path, dict[str, FileProvenance]]:
    """A snapshot is either the drop's CSVs or a single zip; provenance is keyed by archived file name."""
    provenance = {
        f.name: FileProvenance(size=f.size, sha256=f.sha256, uri=f.uri, version_id=f.version_id)
        for f in snapshot.files
    }
    zips = [f for f in snapshot.files if f.name.lower().endswith(".zip")]
    if len(zips) == 1 and len(snapshot.files) == 1:
        return Path(zips[0].local_path), provenance
    return scratch, provenance


def _table_result(
    conn: duckdb.DuckDBPyConnection,
    night: DistrictNight,
    table: str,
    report: DropReport,
    snapshot: Snapshot,
    download_s: float,
    normalize_s: float,
) -> MaterializeResult:
    file_report = next((f for f in report.files.values() if f.table == table), None)
    rows = conn.execute(f"select count(*) from oneroster.{table} where _date = ?", [night.date]).fetchone()[0]
    metadata: dict[str, object] = {
        "dagster/row_count": rows,
        "dagster/partition_row_count": rows,
        "dagster/column_schema": _column_schema(conn, table),
        "oneroster_version": report.oneroster_version or "",
        "accepted": rows,
        # rejected rows of an accepted file; a file refused whole is file_status "rejected" with its rows
        "rejected": rejected_rows([file_report]) if file_report else 0,
        "file_status": file_report.status if file_report else "absent",
        "mode": file_report.mode if file_report else "absent",
        "download_seconds": round(download_s, 3),
        "normalize_seconds": round(normalize_s, 3),
    }
    if file_report:
        archived = next((f for f in snapshot.files if f.name.lower() == file_report.file.lower()), None)
        archived = archived or (snapshot.files[0] if len(snapshot.files) == 1 else None)
        metadata["source_file"] = file_report.file
        if archived:
            metadata.update(
                {
                    "source_sha256": archived.sha256,
                    "archive_uri": archived.uri,
                    "archive_version_id": archived.version_id or "",
                    "source_host": archived.source_host or "",
                    "source_path": archived.source_path or "",
                    "source_mtime": str(archived.source_mtime or ""),
                }
            )
        if rejected_files([file_report]):
            metadata["file_rejected_rows"] = file_report.rows
        if file_report.rejected:
            metadata["rejected_sample"] = MetadataValue.md(_sample_md(conn, night, file_report.file))
    return MaterializeResult(asset_key=oneroster(table), metadata=metadata)


def _rejects_result(
    conn: duckdb.DuckDBPyConnection, night: DistrictNight, report: DropReport, tables_sha256: str
) -> MaterializeResult:
    by_code = conn.execute(
        "select code, count(*) from oneroster.rejects where _date = ? group by code order by 2 desc",
        [night.date],
    ).fetchall()
    total = sum(n for _, n in by_code)
    metadata: dict[str, object] = {
        "dagster/row_count": total,
        "dagster/partition_row_count": total,
        "dagster/column_schema": _column_schema(conn, REJECTS),
        "by_code": MetadataValue.json(dict(by_code)),
        "files_rejected": sorted(f.file for f in rejected_files(report.files.values())),
        "rows_rejected": rejected_rows(report.files.values()),
        "warnings": MetadataValue.json(report.warnings[:50]),
        # the night's tables as archived Parquet (etl_project/night_tables.py): what every later step reads
        "tables_manifest_sha256": tables_sha256,
    }
    if total:
        metadata["rejected_sample"] = MetadataValue.md(_sample_md(conn, night, None))
    return MaterializeResult(asset_key=oneroster(REJECTS), metadata=metadata)


def _column_schema(conn: duckdb.DuckDBPyConnection, table: str) -> TableSchema:
    rows = conn.execute(f"describe oneroster.{table}").fetchall()
    return TableSchema(columns=[TableColumn(name=r[0], type=str(r[1])) for r in rows])


def _sample_md(conn: duckdb.DuckDBPyConnection, night: DistrictNight, file: str | None) -> str:
    where, params = "_date = ?", [night.date]
    if file is not None:
        where, params = where + " and file = ?", [*params, file]
    rows = conn.execute(
        f'select file, line, "column", code, message from oneroster.rejects where {where} '
        f"order by file, line nulls first limit {SAMPLE_REJECTS}",
        params,
    ).fetchall()
    lines = ["| file | line | column | code | reason |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _md_cell(value: object) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _summary(night: DistrictNight, report: DropReport) -> str:
    accepted = sum(f.accepted for f in report.files.values())
    rejected = describe_rejected(report.files.values())
    return f"{night}: OneRoster {report.oneroster_version}: {accepted} rows accepted, {rejected}"
