"""Jobs over the district × night partitions (one partitions definition per job)."""

from dagster import AssetSelection, define_asset_job

from etl_project.assets.keys import DROP, SNAPSHOT

nightly_sync = define_asset_job(
    "nightly_sync",
    selection=AssetSelection.all(),
    description="One district-night end to end: fetch the drop, archive it, validate and normalize it.",
)

replay_from_archive = define_asset_job(
    "replay_from_archive",
    selection=AssetSelection.all() - AssetSelection.assets(DROP, SNAPSHOT),
    description="Rebuild a night from the archived snapshot only (the district's server is not contacted).",
)
