"""Raw district drop -> archived snapshot, in one step.

The drop is downloaded to a scratch folder, verified, and archived before anything parses it. Both assets
materialize in the same step on purpose: nothing is left on a worker's disk between steps, so any worker
can run any district, and the archive is the only thing downstream steps read.
"""

import time

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    Config,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)
from pydantic import Field

from etl_project.archive import ArchiveResource
from etl_project.assets.keys import DROP, OWNERS, SNAPSHOT
from etl_project.districts import DistrictConfigError, MissingSecret
from etl_project.districts.resource import DistrictsResource
from etl_project.drop_settle import remaining_settle_seconds
from etl_project.partitions import DistrictNight, district_nights
from etl_project.progress import log_progress
from etl_project.registry import SecretKeyError
from etl_project.run_owner import claim_run
from etl_project.scratch import scratch_dir
from etl_project.sources import (
    DropIncomplete,
    DropListing,
    DropNotFound,
    DropSource,
    HostKeyMismatch,
    SourceAuthenticationFailed,
    SourceError,
    UnknownHostKey,
    open_source,
)

# Failures that a retry cannot fix: say so and stop.
PERMANENT = (
    HostKeyMismatch,
    UnknownHostKey,
    SourceAuthenticationFailed,
    DistrictConfigError,
    MissingSecret,
    SecretKeyError,
)

_FILES_SCHEMA = TableSchema(
    columns=[
        TableColumn("file", "string"),
        TableColumn("size", "int"),
        TableColumn("sha256", "string"),
        TableColumn("source_path", "string"),
        TableColumn("source_mtime", "string"),
    ]
)
_ARCHIVE_SCHEMA = TableSchema(
    columns=[
        TableColumn("file", "string"),
        TableColumn("size", "int"),
        TableColumn("sha256", "string"),
        TableColumn("uri", "string"),
        TableColumn("version_id", "string"),
    ]
)


#: The night-state metadata key a failure carries (the registry's night_states records it from there).
NIGHT_STATE_KEY = "etl_project/night_state"


def find_complete_drop(
    context: AssetExecutionContext, source: DropSource, night: DistrictNight, settle_seconds: float
) -> DropListing:
    """The night's complete drop; none is a ``Failure`` that is not retried (the drop is missing, the network
    is fine: the sensor starts the night once its drop is complete).

    The settle window counts from when the new-drop sensor saw the same drop (``etl_project.drop_settle``):
    a drop it saw long enough ago is taken after one listing; else the step waits what is left."""
    wait = getattr(source, "wait", None)
    if wait is not None:  # folder sources pause between their two listings: say so, as the step waits

        def announced_wait(seconds: float) -> None:
            log_progress(context.log, f"waiting {seconds:g} s for the drop to settle")
            wait(seconds)

        source.wait = announced_wait
    try:
        first = source.find_drop(night.date, settle_seconds=0)
        remaining = remaining_settle_seconds(context.run.tags, first.fingerprint, settle_seconds, time.time())
        if remaining <= 0:
            return first
        settled = source.find_drop(night.date, settle_seconds=remaining)
        if settled.fingerprint != first.fingerprint:  # changed since our first listing: the whole window
            settled = source.find_drop(night.date, settle_seconds=settle_seconds)
        return settled
    except (DropNotFound, DropIncomplete) as exc:
        raise Failure(
            description=missing_drop_sentence(source, night.date, exc),
            allow_retries=False,
            metadata={NIGHT_STATE_KEY: "missing"},
        ) from None


def missing_drop_sentence(source: DropSource, date: str, exc: SourceError) -> str:
    """``no complete drop for <night> in <where>; [why; ]newest complete drop is <night>``."""
    info = source.info
    where = f"{info.host}:{info.path}" if info.host else info.path
    why = f"{exc}; " if isinstance(exc, DropIncomplete) else ""
    try:
        drops = source.list_drops()
    except SourceError:
        drops = None
    if drops is None:
        newest = "not known (the source could not be listed)"
    elif not drops:
        return f"no complete drop for {date} in {where}; {why}there is no complete drop there at all"
    else:
        dated = [d.night for d in drops if d.dated and d.night]
        newest = max(dated) if dated else f"the undated current drop {drops[-1].location}"
    return f"no complete drop for {date} in {where}; {why}newest complete drop is {newest}"


class FetchConfig(Config):
    settle_seconds: float = Field(
        default=10.0, description="Seconds between the two listings that prove a drop has stopped changing"
    )


def archive_kind(archive_url: str) -> str:
    """The snapshot asset's kind for the archive in use: ``s3`` for ``s3://`` URLs, else ``local``."""
    return "s3" if archive_url.startswith("s3://") else "local"


def with_archive_kind(assets_def: AssetsDefinition, archive_url: str) -> AssetsDefinition:
    """``fetch_and_archive_drop`` with the snapshot's kind set from the archive the settings choose."""
    kinds = {archive_kind(archive_url)}
    return assets_def.map_asset_specs(
        lambda spec: spec.replace_attributes(kinds=kinds) if spec.key == SNAPSHOT else spec
    )


@multi_asset(
    specs=[
        AssetSpec(
            DROP,
            group_name="ingest",
            kinds={"sftp", "rest", "csv"},
            owners=OWNERS,
            description="The district's nightly OneRoster drop (folder of CSVs or a zip) as found on its "
            "SFTP server, OneRoster REST API or local drop folder: only complete drops are taken, every "
            "file is size- and SHA-256-verified.",
        ),
        AssetSpec(
            SNAPSHOT,
            deps=[DROP],
            group_name="archive",
            kinds={"s3"},
            owners=OWNERS,
            description="Every raw file of the night, stored before anything parses it under "
            "`district={district}/date={night}/` (S3 versioned bucket with server-side encryption, or the "
            "local archive folder), plus a snapshot manifest. The system of record: any night can be "
            "replayed.",
        ),
    ],
    partitions_def=district_nights,
    can_subset=False,
    retry_policy=RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS),
)
def fetch_and_archive_drop(
    context: AssetExecutionContext,
    config: FetchConfig,
    districts: DistrictsResource,
    archive: ArchiveResource,
):
    claim_run(context)
    night = DistrictNight.of(context.partition_key)
    try:
        district = districts.get(night.district)
        credentials = districts.credentials(night.district)
        with scratch_dir(f"drop-{night.district}") as scratch:
            started = time.monotonic()
            with open_source(district, credentials) as source:
                listing = find_complete_drop(context, source, night, config.settle_seconds)
                fetched = source.fetch(listing, scratch)
                info = source.info
            fetch_s = time.monotonic() - started
            context.log.info(f"Fetched {len(fetched)} files from {info.kind} {info.host or ''}{info.path}")
            started = time.monotonic()
            snapshot = archive.open().put_snapshot(night.district, night.date, fetched, info)
            archive_s = time.monotonic() - started
    except PERMANENT as exc:
        raise Failure(
            description=f"{exc} (not retried: fix the district's configuration)", allow_retries=False
        ) from None
    except SourceError as exc:
        if exc.permanent:  # e.g. a REST API's 4xx, a source config error
            raise Failure(description=f"{exc} (not retried: permanent)", allow_retries=False) from None
        raise

    yield MaterializeResult(asset_key=DROP, metadata=_drop_metadata(info, listing, fetched, fetch_s))
    yield MaterializeResult(asset_key=SNAPSHOT, metadata=_snapshot_metadata(snapshot, archive_s))


def _drop_metadata(info, listing, fetched: list, fetch_s: float) -> dict[str, object]:
    """The fetched drop: where it came from, its files with their sizes, hashes and source times."""
    return {
        "source_kind": info.kind,
        "source_host": info.host or "",
        "source_path": listing.location,
        "drop_kind": listing.kind,
        "fingerprint": listing.fingerprint,
        "file_count": len(fetched),
        "bytes": sum(f.size for f in fetched),
        "files": MetadataValue.table(
            [
                TableRecord(
                    {
                        "file": f.name,
                        "size": f.size,
                        "sha256": f.sha256,
                        "source_path": f.source_path,
                        "source_mtime": str(f.source_mtime),
                    }
                )
                for f in fetched
            ],
            schema=_FILES_SCHEMA,
        ),
        "fetch_seconds": round(fetch_s, 3),
    }


def _snapshot_metadata(snapshot, archive_s: float) -> dict[str, object]:
    """The archived snapshot: its manifest's URI and version, its files with their URIs and versions."""
    return {
        "dagster/uri": snapshot.manifest_uri,
        "manifest_version_id": snapshot.manifest_version_id or "",
        "file_count": len(snapshot.files),
        "bytes": sum(f.size for f in snapshot.files),
        "files": MetadataValue.table(
            [
                TableRecord(
                    {
                        "file": f.name,
                        "size": f.size,
                        "sha256": f.sha256,
                        "uri": f.uri,
                        "version_id": f.version_id or "",
                    }
                )
                for f in snapshot.files
            ],
            schema=_ARCHIVE_SCHEMA,
        ),
        "archive_seconds": round(archive_s, 3),
    }
