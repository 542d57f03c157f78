"""``etl-project report`` (write a district's sync report) and ``etl-project serve-reports`` (serve them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from etl_project.cli.district_arg import add_district_option, known_district
from etl_project.cli.errors import CommandError
from etl_project.files import private_dir
from etl_project.partitions import InvalidDistrictId, validate_district_id, validate_night
from etl_project.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a district's sync report for a night (default: the latest synced night); prints its path",
        description="Builds the night's report (summary, every rejected row with the reason and a fix hint, "
        "what changed in the LMS), the rejected rows as CSV and the 30-night history page; writes them "
        "under $ETL_PROJECT_HOME/reports/<district>/date=<night>/ and stores them in the archive.",
    )
    add_district_option(parser)
    parser.add_argument("--date", help="YYYY-MM-DD (default: the newest night whose tables are archived)")
    parser.set_defaults(func=run_report)

    serve = subparsers.add_parser(
        "serve-reports",
        help="serve the archived reports read-only on 127.0.0.1, one capability URL per district",
        description="Each district's pages are under /d/<token>/, the token being an HMAC of the district id "
        "with the server's secret (ETL_PROJECT_REPORTS_SECRET, or $ETL_PROJECT_HOME/reports.secret). "
        "Give each district its own URL; it opens nothing else.",
    )
    serve.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    serve.add_argument(
        "--max-connections", type=int, default=4096, help="open connections served at once (more get 503)"
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send its request line and headers (default 10)",
    )
    serve.set_defaults(func=run_serve)


def _resources(settings: Settings):
    from etl_project.resources import build_resources

    return build_resources(settings)


def _district_info(resources, district: str) -> tuple[str, str]:
    try:
        d = resources["districts"].get(district)
        return d.name, d.timezone
    except Exception:  # a district offboarded from the registry still has its reports
        return district, "UTC"


def latest_night(archive, district: str) -> str | None:
    """The newest night whose tables are archived (any worker sees the same; etl_project/night_tables.py)."""
    from etl_project.night_tables import read_index

    nights = read_index(archive, district)
    return max(nights) if nights else None


def _night_states(district: str) -> dict:
    """The registry's night states (their state wins over the LMS ledger's); empty when unreachable."""
    from etl_project.registry.nights import NightStates

    try:
        return NightStates().by_night(district)
    except Exception as exc:
        print(
            f"warning: night states unavailable ({type(exc).__name__}); the report shows the LMS ledger only"
        )
        return {}


def run_report(args: argparse.Namespace) -> int:
    from etl_project.lms import open_backend
    from etl_project.oneroster.rejected import describe_rejected
    from etl_project.reports import publish_night

    try:
        district = validate_district_id(args.district)
        date = validate_night(args.date) if args.date else None
    except (InvalidDistrictId, ValueError) as exc:
        raise CommandError(str(exc)) from None
    settings = Settings.from_env()
    resources = _resources(settings)
    from etl_project.resources import open_settings_archive

    warehouse, archive = resources["warehouse"], open_settings_archive(settings)
    newest = latest_night(archive, district)
    known_district(district, has_data=newest is not None)
    date = date or newest
    if date is None:
        raise CommandError(f"district {district!r} has no synced night yet (run etl-project sync first)")
    name, timezone = _district_info(resources, district)
    published = publish_night(
        warehouse,
        open_backend(settings.lms_url()),
        archive,
        district,
        date,
        district_name=name,
        timezone=timezone,
        states=_night_states(district),
    )
    out = Path(settings.home) / "reports" / district / f"date={date}"
    private_dir(out)
    for page, data in published.pages.items():
        (out / page).write_bytes(data)
    r = published.report
    state = r.lms_state or "not applied"
    why = f" ({r.night.reason})" if r.night and r.night.reason and not r.night.state.lms_changed else ""
    print(f"{district} {date}: {r.rows:,} rows, {describe_rejected(r.files)}, LMS {state}{why}", flush=True)
    print(f"archived as {published.report_uri}")
    print(out / "report.html")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from etl_project.reports.app import create_app
    from etl_project.reports.serve import TokenMap, district_path, report_secret
    from etl_project.reports.server import ServerLimits, fit_open_files, listen, serve

    settings = Settings.from_env()
    resources = _resources(settings)
    warehouse, districts = resources["warehouse"], resources["districts"]

    def known() -> list[str]:
        ids = set(warehouse.districts())
        try:
            ids |= set(districts.all())
        except Exception as exc:  # the registry being down must not stop the reports already archived
            print(
                f"warning: district registry unavailable ({type(exc).__name__}); serving archived districts"
            )
        return sorted(ids)

    limits = ServerLimits(max_connections=args.max_connections, header_timeout=args.header_timeout)
    limits = fit_open_files(limits)
    secret = report_secret(settings.home)
    app = create_app(resources["archive"].open(), TokenMap(secret, known))
    try:
        sock = listen(args.port, limits.backlog)
    except OSError as exc:
        raise CommandError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    host, port = sock.getsockname()[:2]
    print(f"Serving sync reports read-only on http://{host}:{port}/ (loopback only). One URL per district:")
    for district in known():
        print(f"  {district}: http://{host}:{port}{district_path(secret, district)}")
    print("Ctrl-C to stop.", flush=True)
    try:
        serve(app, sock, limits)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
