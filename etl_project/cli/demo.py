"""``etl-project demo``: the whole product on one machine with no servers at all."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path

from dagster import DagsterInstance

from etl_project.cli.errors import CommandError
from etl_project.cli.sync import format_outcome
from etl_project.districts import District, DistrictConfigError, LocalSource
from etl_project.instance import ensure_dagster_home
from etl_project.partitions import DistrictNight
from etl_project.registry import Registry, RegistryDatabaseError
from etl_project.settings import Settings

DEMO_DISTRICT = "demo"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate a demo district and sync day 1 then day 2 into the embedded LMS (no servers needed)",
        description="Creates the 'demo' district with a local drop folder of generated OneRoster data, syncs "
        "its nights through Dagster into the local archive and DuckDB warehouse, and says where "
        "everything is and how to open the UI.",
    )
    parser.add_argument(
        "--students", type=int, default=2000, help="students in the demo district (default 2000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated data (default 7)")
    parser.set_defaults(func=run)


def demo_nights(today: dt.date | None = None) -> list[str]:
    """The two most recent complete nights: the partitions that exist today."""
    today = today or dt.date.today()
    return [(today - dt.timedelta(days=n)).isoformat() for n in (2, 1)]


def run(args: argparse.Namespace) -> int:
    from etl_project.generate import generate_drop
    from etl_project.sync import sync_night

    settings = Settings.from_env()
    dropbox = Path(settings.home) / "demo-dropbox"
    nights = demo_nights()
    print(f"Generating the demo district ({args.students} students) in {dropbox} ...", flush=True)
    if dropbox.exists():
        shutil.rmtree(dropbox)
    for day, night in enumerate(nights, start=1):
        generate_drop(
            dropbox / night, args.students, day=day, seed=args.seed, with_errors=3 if day == 2 else 0
        )

    # a local-folder district has no credentials, so this needs no ETL_PROJECT_SECRET_KEY
    registry = Registry()
    demo = District(
        id=DEMO_DISTRICT, name="Demo Unified School District", source=LocalSource(path=str(dropbox))
    )
    try:
        registry.add(demo, replace=True)
    except (DistrictConfigError, RegistryDatabaseError) as exc:
        raise CommandError(str(exc)) from None

    home = ensure_dagster_home(settings)
    ok = True
    with DagsterInstance.get() as instance:
        for night in nights:
            print(f"\nSyncing {night}|{DEMO_DISTRICT} ...", flush=True)
            outcome = sync_night(
                DistrictNight(night, DEMO_DISTRICT), instance=instance, settle_seconds=0, step_lines=True
            )
            print(format_outcome(outcome), flush=True)
            ok = ok and outcome.success
    if not ok:
        raise CommandError("the demo sync failed; see the messages above", exit_code=1)
    print(
        "\nDone. Day 2 in the LMS ("
        + settings_lms(settings)
        + "):\n"
        + lms_summary(settings)
        + "\n\nWhere things are:\n"
        f"  registry         {registry.location}  (etl-project districts list)\n"
        f"  drop folder      {dropbox}\n"
        f"  archive          {settings.archive_url}\n"
        f"  warehouse        {Path(settings.warehouse_dir) / (DEMO_DISTRICT + '.duckdb')}\n"
        f"  LMS              {settings_lms(settings)}\n"
        f"  Dagster instance {home}\n"
        "Open the district portal in your browser (sign in as the printed operator, add a district,\n"
        "invite its admin, who connects their SFTP server and syncs; nothing else to start):\n"
        "  .venv/bin/etl-project portal --port 8000\n"
        "Open the Dagster UI (lineage, runs, metadata):\n"
        f"  make ui    (= DAGSTER_HOME={home} ETL_PROJECT_HOME={settings.home} .venv/bin/dg dev)\n"
        "Check a drop without loading it:\n"
        f"  .venv/bin/etl-project check-drop {dropbox / nights[-1]}\n"
        "What the LMS load did, night by night, and the history of one record:\n"
        f"  .venv/bin/etl-project history --district {DEMO_DISTRICT}\n"
        f"  .venv/bin/etl-project trace --district {DEMO_DISTRICT} --entity users --id {_traced(settings)}\n"
        f"  .venv/bin/etl-project plan --district {DEMO_DISTRICT} --date {nights[-1]}\n"
        "The district's sync report (rejected rows with how to fix them, and the last 30 nights):\n"
        f"  .venv/bin/etl-project report --district {DEMO_DISTRICT}\n"
        "  .venv/bin/etl-project serve-reports --port 8765"
    )
    return 0


def settings_lms(settings: Settings) -> str:
    from etl_project.lms import mask_url

    return mask_url(settings.lms_url())


def lms_summary(settings: Settings) -> str:
    """What the last night changed in the LMS, per entity and operation, from the ledger's sync_runs."""
    from etl_project.lms import open_backend
    from etl_project.lms.history import history

    nights = history(open_backend(settings.lms_url()), DEMO_DISTRICT)
    if not nights:
        return "  nothing recorded"
    last = nights[-1]
    lines = [f"  {last['date']}: {last['state']} (run {last['run_id']})"]
    for entity, ops in last["counts"].items():
        shown = ", ".join(f"{op} {n}" for op, n in ops.items() if n)
        lines.append(f"    {entity:<12} {shown or 'no changes'}")
    return "\n".join(lines)


def _traced(settings: Settings) -> str:
    """A student whose record changed on day 2 (so trace has a story to tell)."""
    from etl_project.lms import open_backend

    backend = open_backend(settings.lms_url())
    with backend.session(DEMO_DISTRICT, write=False) as s:
        row = s.query(
            f"SELECT sourced_id FROM {s.table('change_ledger')} WHERE district = %s AND entity = 'users' "
            "AND operation <> 'created' ORDER BY id LIMIT 1",
            [DEMO_DISTRICT],
        )
    return row[0][0] if row else "stu-0000001"
