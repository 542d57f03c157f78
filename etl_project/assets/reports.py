"""The district sync report: for every district and night, the HTML page a district IT admin reads.

Produced after the LMS load (it reports what was applied), stored in the archive beside the night's snapshot
with the rejected rows as CSV and the district's 30-night history page. Every page says the night's state
from the registry (etl_project/registry/nights.py). A held, blocked, failed or missing night skips this
asset in its run; the jobs' failure hook (etl_project/assets/night_hooks.py) then publishes the report with
:func:`publish_state_report` and records it as a materialization of this asset carrying the state.
"""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    HookContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from etl_project.archive import ArchiveResource
from etl_project.assets.keys import OWNERS, oneroster
from etl_project.assets.lms import lms_key
from etl_project.districts.resource import DistrictsResource
from etl_project.lms.resource import LmsResource
from etl_project.lms.schema import ENTITIES
from etl_project.partitions import DistrictNight, district_nights
from etl_project.registry.nights import NightRecord
from etl_project.reports import REJECTS_NAME, Published, publish_night
from etl_project.run_owner import claim_run
from etl_project.warehouse import WarehouseResource

SYNC_REPORT = AssetKey(["reports", "district_sync_report"])


def publish(
    night: DistrictNight,
    warehouse: WarehouseResource,
    lms: LmsResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
) -> Published:
    """Build and archive the night's report, history page and rejects CSV, with the registry's states."""
    try:
        district = districts.get(night.district)
        name, timezone = district.name, district.timezone
    except Exception:  # a district removed from the registry still has its reports
        name, timezone = night.district, "UTC"
    return publish_night(
        warehouse, lms.backend(), archive.open(), night.district, night.date,
        district_name=name, timezone=timezone, states=_states(districts, night.district),
    )  # fmt: skip


def _states(districts: DistrictsResource, district: str) -> dict[str, NightRecord]:
    try:
        return districts.night_states().by_night(district)
    except Exception:  # the registry unreachable: the report still says what the ledger knows
        return {}


def report_metadata(published: Published) -> dict[str, Any]:
    r = published.report
    night: NightRecord | None = r.night
    metadata: dict[str, Any] = {
        "dagster/uri": published.report_uri,
        "report": MetadataValue.url(published.report_uri),
        "history": MetadataValue.url(published.history_uri),
        "rejected_rows_csv": MetadataValue.url(published.uris[REJECTS_NAME]),
        "night_state": r.lms_state or "not applied",
        "rows_received": r.rows,
        "rows_accepted": r.accepted,
        "rows_rejected": r.rejected,
        "files_rejected": MetadataValue.json({f.file: f.rows for f in r.files_rejected}),
        "rejects_by_code": MetadataValue.json(r.rejected_by_code),
        "lms_state": r.lms_state or "not applied",
        "lms_changes": r.changes,
    }
    if night is not None and night.reason:
        metadata["night_reason"] = night.reason
    if night is not None and night.step:
        metadata["night_step"] = night.step
    return metadata


@asset(
    key=SYNC_REPORT,
    deps=[oneroster("rejects"), *(lms_key(e.name) for e in ENTITIES)],
    partitions_def=district_nights,
    group_name="reports",
    kinds={"html"},
    owners=OWNERS,
    description="The night's sync report for the district's IT staff, in plain words: the night's state "
    "(applied, released, held, blocked, failed, missing) and what to do next, when the drop arrived, "
    "files and rows received, accepted and rejected, the changes per entity, then every rejected row "
    "(file, line, column) with the reason and how to fix it in the SIS. Stored in the archive as "
    "`district={district}/date={night}/report.html`, with rejects.csv and history.html (chart of the "
    "last 30 nights). Served to districts by `etl-project serve-reports`.",
)
def district_sync_report(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    lms: LmsResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
) -> MaterializeResult:
    claim_run(context)
    night = DistrictNight.of(context.partition_key)
    published = publish(night, warehouse, lms, archive, districts)
    r = published.report
    context.log.info(
        f"{night}: report {published.report_uri}: {r.rows} rows, {r.rejected} rejected row(s), "
        f"{len(r.files_rejected)} rejected file(s), night {r.lms_state}"
    )
    return MaterializeResult(metadata=report_metadata(published))


def publish_state_report(context: HookContext, night: DistrictNight, record: NightRecord | None) -> None:
    """From the failure hook: publish the report of a night that did not reach this asset, and record it
    as this asset's materialization (with the state) so the UI shows it. Best effort: never raises."""
    resources = context.resources
    try:
        published = publish(night, resources.warehouse, resources.lms, resources.archive, resources.districts)
    except Exception as exc:
        context.log.warning(f"{night}: the report could not be published ({type(exc).__name__})")
        return
    metadata = report_metadata(published)
    if record is not None:
        metadata["night_state"] = str(record.state)
    context.instance.report_runless_asset_event(
        AssetMaterialization(asset_key=SYNC_REPORT, partition=night.key, metadata=metadata)
    )
    context.log.info(f"{night}: {metadata['night_state']} night; report {published.report_uri}")
