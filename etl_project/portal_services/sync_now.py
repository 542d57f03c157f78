"""Sync now and Release: real runs on the instance the daemon serves, launched through the Dagster
webserver's GraphQL API (``dagster_graphql.DagsterGraphQLClient``, public), queued by the
QueuedRunCoordinator and started by the daemon.

Sync now requests what the new-drop sensor would for the district's newest complete drop: job
``nightly_sync``, the night's partition with its dimension tags, run key ``<district>:<drop fingerprint>``
and the sensor's trigger and fingerprint tags (trigger ``sync_now``). It is idempotent: when a run with
that run key exists (and did not fail), or a run of that partition is queued or in progress, that run is
returned and nothing new starts. Release starts ``load_lms`` for a held night with the audited release tags
(who and why), once."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from etl_project.assets.lms import RELEASE_BY_TAG, RELEASE_REASON_TAG
from etl_project.automation.nights import night_of_listing
from etl_project.automation.sensors import FETCH_STEP
from etl_project.automation.sync_status import TRIGGER_TAG
from etl_project.districts import District
from etl_project.drop_settle import FINGERPRINT_TAG, short
from etl_project.instance import register_district
from etl_project.lms.load import Release
from etl_project.partitions import DistrictNight
from etl_project.portal_services.onboarding import newest_drop
from etl_project.registry.nights import NightState, NightStates
from etl_project.sources import open_source

LOCATION, REPOSITORY = "etl_project", "__repository__"
RUN_KEY_TAG, PARTITION_TAG = "dagster/run_key", "dagster/partition"
ACTIVE = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
_FAILED = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED, DagsterRunStatus.CANCELING)
_LOCK = threading.Lock()  # one launch decision at a time in this process (two presses, one run)


class NothingToSync(Exception):
    """The district has no complete drop, or the night is not held (one sentence)."""


@dataclass(frozen=True)
class Started:
    run_id: str
    night: DistrictNight
    created: bool  # False: an existing run of the same drop or night was returned


def partition_tags(night: DistrictNight) -> dict[str, str]:
    """The partition's tags as the daemon sets them for a sensor's RunRequest (dimension tags included)."""
    return {
        PARTITION_TAG: str(night),
        "dagster/partition/date": night.date,
        "dagster/partition/district": night.district,
    }


def newest_night(district: District, credentials) -> tuple[DistrictNight, str]:
    """The newest complete drop's night and fingerprint, listed from the source as the sensor lists it."""
    with open_source(district, credentials) as source:
        listing = newest_drop(source.list_drops())
    if listing is None:
        raise NothingToSync(f"district {district.id} has no complete drop in its folder yet: nothing to sync")
    return DistrictNight(night_of_listing(district, listing), district.id), listing.fingerprint


def existing_run(
    instance: DagsterInstance, night: DistrictNight, run_key: str | None, job: str
) -> str | None:
    """A run that makes a new one pointless: same run key (not failed), or the night's run in progress."""
    if run_key:
        for rec in instance.get_run_records(RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=5):
            if rec.dagster_run.status not in _FAILED:
                return rec.dagster_run.run_id
    active = RunsFilter(job_name=job, tags={PARTITION_TAG: str(night)}, statuses=ACTIVE)
    records = instance.get_run_records(active, limit=1)
    return records[0].dagster_run.run_id if records else None


def _launch(
    instance, client, night: DistrictNight, job: str, tags: dict[str, str], run_config=None
) -> Started:
    with _LOCK:
        found = existing_run(instance, night, tags.get(RUN_KEY_TAG), job)
        if found:
            return Started(found, night, created=False)
        register_district(instance, night.district)
        run_id = client.submit_job_execution(
            job, repository_location_name=LOCATION, repository_name=REPOSITORY,
            run_config=run_config or {}, tags=tags,
        )  # fmt: skip
        return Started(run_id, night, created=True)


def sync_now(
    instance: DagsterInstance, client, district: District, credentials, settle_seconds: float | None = None
) -> Started:
    """Start (or find) the run of the district's newest night, as the new-drop sensor would request it."""
    night, fingerprint = newest_night(district, credentials)
    tags = {
        **partition_tags(night),
        RUN_KEY_TAG: f"{district.id}:{fingerprint}",
        TRIGGER_TAG: "sync_now",
        FINGERPRINT_TAG: short(fingerprint),
    }
    config = None
    if settle_seconds is not None:
        config = {"ops": {FETCH_STEP: {"config": {"settle_seconds": settle_seconds}}}}
    return _launch(instance, client, night, "nightly_sync", tags, config)


def release_night(
    instance: DagsterInstance, client, states: NightStates, night: DistrictNight, by: str, reason: str
) -> Started:
    """Apply a held night once: ``load_lms`` with the audited release tags (who released it and why)."""
    Release(by=by, reason=reason)  # both required: ValueError in one sentence otherwise
    record = states.get(night.district, night.date)
    if record is None or record.state != NightState.HELD:
        state = record.state if record else "not synced"
        raise NothingToSync(
            f"night {night.date} of {night.district} is {state}, not held: nothing to release"
        )
    tags = {**partition_tags(night), TRIGGER_TAG: "release", RELEASE_BY_TAG: by, RELEASE_REASON_TAG: reason}
    return _launch(instance, client, night, "load_lms", tags)
