"""The history the UI measurement needs: ``nights`` past nights of every soak district, seeded as
materialization events (``DagsterInstance.report_runless_asset_event`` with an ``AssetMaterialization`` per
partition), not run, for ``lms/users``: the asset whose pages the soak times. Each event says it was seeded
(metadata ``soak``). One event costs about 50 ms on the embedded SQLite instance (a few rows and a commit),
so 1,000 districts x 90 nights take over an hour: ``--history-nights`` trades that against depth."""

from __future__ import annotations

import datetime as dt
import time

from dagster import AssetKey, AssetMaterialization, DagsterInstance, MultiPartitionKey

from etl_project.partitions import DISTRICTS_PARTITION, PARTITIONS_START

HISTORY_ASSETS = (AssetKey(["lms", "users"]),)


def history_dates(before: str, nights: int) -> list[str]:
    """Up to ``nights`` nights before ``before``, never before the partitions' first night."""
    first = dt.date.fromisoformat(before)
    dates = [(first - dt.timedelta(days=i)).isoformat() for i in range(1, nights + 1)]
    return [d for d in dates if d >= PARTITIONS_START]


def seed_history(instance: DagsterInstance, districts: list[str], dates: list[str]) -> dict[str, object]:
    """One materialization per (asset, night, district); returns how many and how long it took."""
    missing = [d for d in districts if not instance.has_dynamic_partition(DISTRICTS_PARTITION, d)]
    if missing:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, missing)
    started = time.perf_counter()
    events = 0
    for date in dates:
        for district in districts:
            key = MultiPartitionKey({"date": date, "district": district})
            for asset in HISTORY_ASSETS:
                instance.report_runless_asset_event(
                    AssetMaterialization(asset_key=asset, partition=key, metadata={"soak": "seeded history"})
                )
                events += 1
    return {
        "history_events": events,
        "history_nights": len(dates),
        "history_seed_s": round(time.perf_counter() - started, 3),
    }
