"""``etl-project offboard``: remove a district's data from the warehouse (and optionally the archive)."""

from __future__ import annotations

import argparse
import sys

from dagster import DagsterInstance

from etl_project.cli.district_arg import add_district_option
from etl_project.cli.errors import CommandError
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
    add_district_option(parser, help="the district whose data is removed (registered or not)")
    parser.add_argument(
        "--archive", action="store_true", help="also delete every archived file of the district"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    for line in offboard_district(Settings.from_env(), district, archive=args.archive):
        print(line)
    from etl_project.districts import DistrictConfigError
    from etl_project.registry import Registry, RegistryDatabaseError

    try:
        entry = Registry().entry(district)
    except (DistrictConfigError, RegistryDatabaseError):  # not registered: nothing more to say
        return 0
    if entry.district.enabled:
        print(
            f"note: {district!r} is still registered and enabled, so its next sync brings data back; "
            f"`etl-project districts disable {district}` or `districts remove {district}` stops that"
        )
    return 0


def offboard_district(settings: Settings, district: str, *, archive: bool) -> list[str]:
    """Delete the district's warehouse file and Dagster partition (with ``archive``: its archived files)."""
    from etl_project.night_tables import offboard_cache
    from etl_project.resources import build_resources, open_settings_archive

    resources = build_resources(settings)
    removed = resources["warehouse"].offboard(district)
    done = [f"warehouse: removed {len(removed)} file(s) for {district}"]
    if offboard_cache(resources["warehouse"], district):
        done.append(f"warehouse: removed the cached nights of {district} (the archived tables stay)")
    if archive:
        count = open_settings_archive(settings).purge_district(district)
        done.append(f"archive: removed {count} object version(s) for {district}")
    ensure_dagster_home(settings)
    with DagsterInstance.get() as instance:
        if instance.has_dynamic_partition(DISTRICTS_PARTITION, district):
            instance.delete_dynamic_partition(DISTRICTS_PARTITION, district)
            done.append(f"dagster: removed the {district!r} partition")
    return done


def remove_district(registry, settings: Settings, district: str, *, archive: bool = False) -> list[str]:
    """What `etl-project districts remove` does: disable the district (no new runs start while its data
    goes), delete its warehouse data and Dagster partition (with ``archive``: its archived files), then its
    registry entry and credentials. Returns one line per thing done."""
    registry.set_enabled(district, False)
    done = offboard_district(settings, district, archive=archive)
    registry.remove(district)
    done.append(f"registry: removed {district} and its credentials")
    if not archive:
        done.append(
            "archive: kept (the system of record); `etl-project offboard --district ID --archive` deletes it"
        )
    return done
