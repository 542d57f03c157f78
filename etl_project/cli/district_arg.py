"""One way to name a district on the command line (``--district ID``), and one answer when it is unknown."""

from __future__ import annotations

import argparse

from etl_project.cli.errors import CommandError

DISTRICT_HELP = "the district's id, as registered (etl-project districts list)"


def add_district_option(parser: argparse.ArgumentParser, help: str = DISTRICT_HELP) -> None:
    parser.add_argument("--district", required=True, metavar="ID", help=help)


def unknown_district(district_id: str) -> CommandError:
    return CommandError(
        f"unknown district {district_id!r}: etl-project districts list shows the registered ones"
    )


def registered_districts():
    """Every configured district: the read-only districts file when ETL_PROJECT_DISTRICTS is set, else the
    registry (the same choice the code location makes)."""
    from etl_project.districts import DistrictConfigError, load_districts
    from etl_project.registry import Registry, RegistryDatabaseError
    from etl_project.settings import Settings

    settings = Settings.from_env()
    try:
        if settings.districts_file_is_set:
            return load_districts(settings.districts_file)
        return Registry().all()
    except (DistrictConfigError, RegistryDatabaseError) as exc:
        raise CommandError(str(exc)) from None


def known_district(district_id: str, has_data: bool = False):
    """The configured ``District`` (None for an unregistered one that ``has_data``, e.g. a warehouse left
    after ``districts remove``); any other id is one sentence naming it as unknown."""
    from etl_project.partitions import InvalidDistrictId, validate_district_id

    try:
        validate_district_id(district_id)
    except InvalidDistrictId as exc:
        raise CommandError(str(exc)) from None
    district = registered_districts().get(district_id)
    if district is None and not has_data:
        raise unknown_district(district_id)
    return district
