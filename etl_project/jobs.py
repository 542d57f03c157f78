"""Jobs over the district × night partitions (one partitions definition per job).

Every job carries the night-state hooks (etl_project/assets/night_hooks.py): whatever launches a run (the
CLI in-process, the daemon, a sensor), the registry records its night as running, then failed or missing
when a step fails (held, blocked, applied and released are recorded by the steps themselves).

Every job runs its steps with Dagster's in-process executor: a run's steps share the run worker's process and
its one code load. A small district-night's steps take about a second each; starting a process and loading the
code per step cost more than that, and isolation between one night's steps buys nothing (they run one after
another on the same district). Materializations, checks and lineage are the same as with separate processes.
"""

from dagster import AssetSelection, define_asset_job, in_process_executor

from etl_project.assets.keys import DROP, SNAPSHOT
from etl_project.assets.night_hooks import NIGHT_HOOKS
from etl_project.automation.source_health import CHECK_KEY as SOURCE_REACHABLE

nightly_sync = define_asset_job(
    "nightly_sync",
    # source_reachable is reported by the new-drop sensor (or run by hand), not once per district-night
    selection=AssetSelection.all() - AssetSelection.checks(SOURCE_REACHABLE),
    description="One district-night end to end: fetch the drop, archive it, validate and normalize it, "
    "then apply it to the LMS behind the safety thresholds.",
    hooks=NIGHT_HOOKS,
    executor_def=in_process_executor,
)

replay_from_archive = define_asset_job(
    "replay_from_archive",
    selection=AssetSelection.all() - AssetSelection.assets(DROP, SNAPSHOT),
    description="Rebuild a night from the archived snapshot only (the district's server is not contacted).",
    hooks=NIGHT_HOOKS,
    executor_def=in_process_executor,
)

load_lms = define_asset_job(
    "load_lms",
    selection=AssetSelection.groups("lms", "reports"),
    description="Apply a night already in the OneRoster tables to the LMS (e.g. to release a held night), "
    "then rewrite its sync report.",
    hooks=NIGHT_HOOKS,
    executor_def=in_process_executor,
)
