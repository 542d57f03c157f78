"""The district sync report: for every district and night, the HTML page a district IT admin reads.

Produced after the LMS load (it reports what was applied), stored in the archive beside the night's snapshot
with the rejected rows as CSV and the district's 30-night history page. A held or failed night skips this
asset in its run; the alert sensor publishes the report for those nights (etl_project/alerts/sensors.py).
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from etl_project.archive import ArchiveResource
from etl_project.assets.keys import OWNERS, oneroster
from etl_project.assets.lms import lms_key
from etl_project.districts import DistrictsResource
from etl_project.lms.resource import LmsResource
from etl_project.lms.schema import ENTITIES
from etl_project.partitions import DistrictNight, district_nights
from etl_project.reports import REJECTS_NAME, publish_night
from etl_project.warehouse import WarehouseResource

SYNC_REPORT = AssetKey(["reports", "district_sync_report"])


@asset(
    key=SYNC_REPORT,
    deps=[oneroster("rejects"), *(lms_key(e.name) for e in ENTITIES)],
    partitions_def=district_nights,
    group_name="reports",
    kinds={"html"},
    owners=OWNERS,
    description="The night's sync report for the district's IT staff, in plain words: when the drop arrived, "
    "files and rows received, accepted and rejected, whether the LMS applied or held it and the changes "
    "per entity, then every rejected row (file, line, column) with the reason and how to fix it in the "
    "SIS. Stored in the archive as `district={district}/date={night}/report.html`, with rejects.csv and "
    "history.html (chart of the last 30 nights). Served to districts by `etl-project serve-reports`.",
)
def district_sync_report(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    lms: LmsResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
) -> MaterializeResult:
    night = DistrictNight.of(context.partition_key)
    district = districts.get(night.district)
    published = publish_night(
        warehouse,
        lms.backend(),
        archive.open(),
        night.district,
        night.date,
        district_name=district.name,
        timezone=district.timezone,
    )
    r = published.report
    context.log.info(
        f"{night}: report {published.report_uri}: {r.rows} rows, {r.rejected} rejected, LMS {r.lms_state}"
    )
    return MaterializeResult(
        metadata={
            "dagster/uri": published.report_uri,
            "report": MetadataValue.url(published.report_uri),
            "history": MetadataValue.url(published.history_uri),
            "rejected_rows_csv": MetadataValue.url(published.uris[REJECTS_NAME]),
            "rows_received": r.rows,
            "rows_accepted": r.accepted,
            "rows_rejected": r.rejected,
            "rejects_by_code": MetadataValue.json(r.rejected_by_code),
            "lms_state": r.lms_state or "not applied",
            "lms_changes": r.changes,
        }
    )
