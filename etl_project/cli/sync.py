"""``etl-project sync``: materialize one district-night through Dagster; the run then shows in the UI."""

from __future__ import annotations

import argparse

from dagster import DagsterInstance

from etl_project.cli.district_arg import add_district_option, known_district
from etl_project.cli.errors import CommandError
from etl_project.instance import ensure_dagster_home
from etl_project.partitions import DistrictNight, validate_partition_night
from etl_project.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="sync one district for one night (fetch, archive, validate, normalize)",
        description="Materialize one district-night's whole graph through Dagster against the instance in "
        "DAGSTER_HOME (default .etl_project/dagster), registering the district's partition if needed.",
    )
    add_district_option(parser)
    parser.add_argument("--date", required=True, help="the night, YYYY-MM-DD (at the latest today, UTC)")
    parser.add_argument(
        "--replay",
        action="store_true",
        help="rebuild from the archived snapshot only; the source is not contacted",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=None,
        help="seconds between the two listings of the drop (default 10)",
    )
    parser.add_argument("--release-by", default=None, help="release a held night once: who releases it")
    parser.add_argument("--release-reason", default=None, help="release a held night once: why")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from etl_project.sync import sync_night

    district = known_district(args.district)
    try:
        night = DistrictNight(date=validate_partition_night(args.date), district=district.id)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings = Settings.from_env()
    if not district.enabled:
        print(f"note: {night.district!r} is disabled: nightly runs skip it; this explicit sync runs anyway")
    tags = {}
    if args.release_by or args.release_reason:
        if not (args.release_by and args.release_reason):
            raise CommandError("a release needs both --release-by and --release-reason")
        from etl_project.assets.lms import RELEASE_BY_TAG, RELEASE_REASON_TAG

        tags = {RELEASE_BY_TAG: args.release_by, RELEASE_REASON_TAG: args.release_reason}
    ensure_dagster_home(settings)
    with DagsterInstance.get() as instance:
        print(f"Syncing {night} ...", flush=True)
        outcome = sync_night(
            night,
            instance=instance,
            replay=args.replay,
            settle_seconds=args.settle_seconds,
            tags=tags,
            step_lines=True,
        )
    print(format_outcome(outcome))
    return 0 if outcome.success else 1


def format_outcome(outcome) -> str:
    lines = [f"\nRun {outcome.run_id}: {'succeeded' if outcome.success else 'FAILED'} for {outcome.night}"]
    for key, meta in outcome.materialized.items():
        parts = []
        if "dagster/row_count" in meta:
            parts.append(f"{meta['dagster/row_count']} rows")
        if meta.get("rejected"):
            parts.append(f"{meta['rejected']} rejected")
        if "file_count" in meta:
            parts.append(f"{meta['file_count']} files")
        if "state" in meta and "created" in meta:  # an LMS entity
            ops = ("created", "updated", "deactivated", "reactivated")
            parts.append(", ".join(f"{op} {meta[op]}" for op in ops if meta.get(op)) or "no changes")
            if meta.get("held_rows"):
                parts.append(f"{meta['held_rows']} held")
            parts.append(str(meta["state"]))
        if "verdict" in meta:
            parts.append(f"{meta.get('writes', 0)} rows to write; {meta['verdict']}")
        lines.append(f"  {key:<32} {', '.join(parts)}")
    if outcome.state is not None:
        state = outcome.state
        unchanged = "" if state.state.lms_changed else "; the LMS is unchanged"
        reason = f": {state.reason}" if state.reason else ""
        lines.append(f"  night: {str(state.state).upper()}{reason}{unchanged}")
    if outcome.failure and (outcome.state is None or not outcome.state.reason):
        lines.append(f"  cause: {outcome.failure}")
    if outcome.failure:
        lines.append(f"  full log (with any traceback): the Dagster UI (make ui), Runs, run {outcome.run_id}")
    return "\n".join(lines)
