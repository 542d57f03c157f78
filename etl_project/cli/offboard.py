"""``etl-project offboard``: remove a district's data from the warehouse (and optionally the archive)."""

from __future__ import annotations

import argparse
import sys

from dagster import DagsterInstance

from etl_project.cli.main import CommandError
from etl_project.instance import ensure_dagster_home
from etl_project.partitions import DISTRICTS_PARTITION, validate_district_id
from etl_project.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offboard",
        help="remove a district's data from the warehouse (and, with --archive, from the archive)",
        description="Deletes the district's DuckDB warehouse file and its Dagster partition. The archive is "
        "the system of record and is kept unless --archive is given (all object versions are then deleted).",
    )
    parser.add_argument("--district", required=True)
    parser.add_argument(
        "--archive", action="store_true", help="also delete every archived file of the district"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from etl_project.resources import build_resources

    try:
        district = validate_district_id(args.district)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    what = "warehouse data" + (" and ALL archived files" if args.archive else "")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("refusing to offboard without --yes when not interactive")
        answer = input(f"Remove {what} of district {district!r}? Type the district id to confirm: ")
        if answer.strip() != district:
            raise CommandError("not confirmed; nothing removed", exit_code=1)
    settings = Settings.from_env()
    resources = build_resources(settings)
    removed = resources["warehouse"].offboard(district)
    print(f"warehouse: removed {len(removed)} file(s) for {district}")
    if args.archive:
        count = resources["archive"].open().purge_district(district)
        print(f"archive: removed {count} object version(s) for {district}")
    ensure_dagster_home(settings)
    with DagsterInstance.get() as instance:
        if instance.has_dynamic_partition(DISTRICTS_PARTITION, district):
            instance.delete_dynamic_partition(DISTRICTS_PARTITION, district)
            print(f"dagster: removed the {district!r} partition")
    return 0
