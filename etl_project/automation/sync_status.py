"""What the Dagster instance and the registry know about one district-night: archived? run requested? drop
seen? already synced?

Shared by the nightly schedule (skip what is already handled), the freshness check (did the drop arrive?) and
the new-drop sensor (never sync again a night another path already synced).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dagster import AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter

from etl_project.assets.keys import DROP, SNAPSHOT
from etl_project.districts.resource import DistrictsResource
from etl_project.partitions import DistrictNight
from etl_project.registry.nights import NightState, NightStates

JOB = "nightly_sync"
TRIGGER_TAG = "etl_project/trigger"
RUN_KEY_TAG = "dagster/run_key"
FAILED = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED, DagsterRunStatus.CANCELING)
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
#: triggers that prove a complete drop was seen at the source (the sensor only requests complete drops)
DROP_SEEN_TRIGGERS = ("new_drop", "first_sync")
#: night states that leave a night to be synced (again) when its drop is there
NOT_DONE = (NightState.FAILED, NightState.MISSING)


@dataclass(frozen=True)
class NightStatus:
    archived_at: dt.datetime | None  # when archive/oneroster_snapshot was materialized for the partition
    drop_seen_at: dt.datetime | None  # when the new-drop sensor requested a run for a complete drop
    run_requested: bool  # any nightly_sync run exists for the partition (whatever its status)

    @property
    def arrived_at(self) -> dt.datetime | None:
        times = [t for t in (self.archived_at, self.drop_seen_at) if t is not None]
        return min(times) if times else None


def _ts(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)  # run storage keeps naive UTC


def night_status(instance: DagsterInstance, night: DistrictNight) -> NightStatus:
    key = str(night)
    mats = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=SNAPSHOT, asset_partitions=[key]), limit=1, ascending=True
    ).records
    archived_at = _ts(mats[0].timestamp) if mats else None
    runs = instance.get_run_records(
        RunsFilter(job_name=JOB, tags={"dagster/partition": key}), order_by="create_timestamp", ascending=True
    )
    seen = [
        _aware(r.create_timestamp) for r in runs if r.dagster_run.tags.get(TRIGGER_TAG) in DROP_SEEN_TRIGGERS
    ]
    return NightStatus(
        archived_at=archived_at,
        drop_seen_at=min(seen) if seen else None,
        run_requested=bool(runs),
    )


def night_states_for(districts: DistrictsResource) -> NightStates:
    """The night states beside the districts' registry (``ETL_PROJECT_REGISTRY_URL`` / the home's default when
    the districts come from a TOML file)."""
    return NightStates(districts.url or None)


def drop_run_key(district: str, fingerprint: str) -> str:
    """One run per drop: the run key of the sensor's requests and of Sync now's runs."""
    return f"{district}:{fingerprint}"


def run_in_flight(instance: DagsterInstance, night: DistrictNight) -> str | None:
    """A ``nightly_sync`` run of the night (any trigger) that is queued or running."""
    records = instance.get_run_records(
        RunsFilter(job_name=JOB, tags={"dagster/partition": str(night)}, statuses=IN_FLIGHT), limit=1
    )
    return records[0].dagster_run.run_id if records else None


def run_of_drop(instance: DagsterInstance, run_key: str) -> str | None:
    """A run (any trigger: the sensor's, Sync now's) started for the drop of ``run_key`` that did not fail."""
    for rec in instance.get_run_records(RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=5):
        if rec.dagster_run.status not in FAILED:
            return rec.dagster_run.run_id
    return None


def already_synced(
    instance: DagsterInstance, states: NightStates, night: DistrictNight, fingerprint: str
) -> str | None:
    """Why the drop with ``fingerprint`` needs no run for ``night`` (None: it does).

    Synced means: a run of this same drop exists and did not fail (e.g. Sync now started it: the daemon's
    own run-key check only sees the sensor's runs), the drop asset is materialized for the partition from
    this same drop (a re-uploaded, changed drop is synced again), or, with no materialization to compare,
    the night has a state other than failed or missing (e.g. ``etl-project sync`` on a worker whose
    instance this is not).
    """
    started = run_of_drop(instance, drop_run_key(night.district, fingerprint))
    if started is not None:
        trigger = instance.get_run_by_id(started).tags.get(TRIGGER_TAG, "another trigger")
        return f"already started by run {started} ({trigger}, the same drop)"
    mats = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=DROP, asset_partitions=[str(night)]), limit=1
    ).records
    if mats:
        mat = mats[0].asset_materialization
        entry = mat.metadata.get("fingerprint") if mat else None
        if entry is not None and entry.value == fingerprint:
            return f"already synced by run {mats[0].run_id} (the same drop)"
        return None
    record = states.get(night.district, night.date)
    if record is not None and record.state not in NOT_DONE:
        return f"already {record.state} (night state recorded {record.updated_at})"
    return None
