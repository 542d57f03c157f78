"""What the Dagster instance knows about one district-night: archived? run requested? drop seen?

Shared by the nightly schedule (skip what is already handled) and the freshness check (did the drop arrive?).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dagster import AssetRecordsFilter, DagsterInstance, RunsFilter

from etl_project.assets.keys import SNAPSHOT
from etl_project.partitions import DistrictNight

JOB = "nightly_sync"
TRIGGER_TAG = "etl_project/trigger"
FINGERPRINT_TAG = "etl_project/drop_fingerprint"
#: triggers that prove a complete drop was seen at the source (the sensor only requests complete drops)
DROP_SEEN_TRIGGERS = ("new_drop", "first_sync")


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
