"""``etl-project report`` (write a district's sync report) and ``etl-project serve-reports`` (serve them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from etl_project.cli.district_arg import add_district_option, known_district
from etl_project.cli.main import CommandError
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
    parser.add_argument("--date", help="YYYY-MM-DD (default: the latest night in the warehouse)")
    parser.set_defaults(func=run_report)

    serve = subparsers.add_parser(
        "serve-reports",
        help="serve the archived reports read-only on 127.0.0.1, one capability URL per district",
        description="Each district's pages are under /d/<token>/, the token being an HMAC of the district id "
        "with the server's secret (ETL_PROJECT_REPORTS_SECRET, or $ETL_PROJECT_HOME/reports.secret). "
        "Give each district its own URL; it opens nothing else.",
    )
    serve.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
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


def latest_night(warehouse, district: str) -> str | None:
    if district not in warehouse.districts():
        return None
    from etl_project.reports.build import has_tables

    with warehouse.connect(district) as conn:
        if not has_tables(conn):
            return None
        night = conn.execute("SELECT max(_date) FROM oneroster.files").fetchone()[0]
    return night.isoformat() if night else None


def run_report(args: argparse.Namespace) -> int:
    from etl_project.lms import open_backend
    from etl_project.reports import publish_night

    try:
        district = validate_district_id(args.district)
        date = validate_night(args.date) if args.date else None
    except (InvalidDistrictId, ValueError) as exc:
        raise CommandError(str(exc)) from None
    settings = Settings.from_env()
    resources = _resources(settings)
    warehouse = resources["warehouse"]
    known_district(district, has_data=district in warehouse.districts())
    date = date or latest_night(warehouse, district)
    if date is None or district not in warehouse.districts():
        raise CommandError(f"district {district!r} has no synced night yet (run etl-project sync first)")
    name, timezone = _district_info(resources, district)
    published = publish_night(
        warehouse,
        open_backend(settings.lms_url()),
        resources["archive"].open(),
        district,
        date,
        district_name=name,
        timezone=timezone,
    )
    out = Path(settings.home) / "reports" / district / f"date={date}"
    out.mkdir(parents=True, exist_ok=True)
    for page, data in published.pages.items():
        (out / page).write_bytes(data)
    r = published.report
    state = r.lms_state or "not applied"
    print(f"{district} {date}: {r.rows:,} rows, {r.rejected:,} rejected, LMS {state}", flush=True)
    print(f"archived as {published.report_uri}")
    print(out / "report.html")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from etl_project.reports.serve import TokenMap, district_path, make_server, report_secret

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

    secret = report_secret(settings.home)
    try:
        server = make_server(resources["archive"].open(), TokenMap(secret, known), args.port)
    except OSError as exc:
        raise CommandError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    host, port = server.server_address[:2]
    print(f"Serving sync reports read-only on http://{host}:{port}/ (loopback only). One URL per district:")
    for district in known():
        print(f"  {district}: http://{host}:{port}{district_path(secret, district)}")
    print("Ctrl-C to stop.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
