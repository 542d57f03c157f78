"""``etl-project status``: every district's source health, newest night and next expected night."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from etl_project.cli.errors import CommandError

EPILOG = """\
exit status:
  0  every enabled district's source answered its newest poll and its newest night is not failed,
     blocked or missing (districts never polled yet, and disabled ones, do not count)
  1  at least one enabled district is unreachable or failing (see the ERROR column / "last_error")
  2  the registry cannot be read, or --district names no registered district

Polls are recorded by the new-drop sensor (Dagster daemon); night states by every run (CLI or daemon).
"""

COLUMNS = ("DISTRICT", "ON", "SOURCE", "HEALTH", "LAST OK POLL", "LAST NIGHT", "NEXT NIGHT, DUE", "ERROR")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="per district: source health, last good poll, newest night and its state, next night due",
        description="Per district: enabled, source kind, the newest poll of its source (last successful\n"
        "poll, last error in one sentence), the newest night synced and its state, and the next night\n"
        "expected with its deadline in the district's time zone. Reads the registry\n"
        "(ETL_PROJECT_REGISTRY_URL, else $ETL_PROJECT_HOME/registry.sqlite).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--district", metavar="ID", default=None, help="show this district only (its id, as registered)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list of objects (one per district) for machines"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from etl_project.automation.district_status import district_statuses
    from etl_project.districts import DistrictConfigError
    from etl_project.registry import Registry, RegistryDatabaseError
    from etl_project.registry.nights import NightStates

    try:
        registry = Registry()
        districts = registry.all()
        if args.district is not None:
            districts = {args.district: registry.get(args.district)}
        rows = district_statuses(districts, NightStates(registry.url), dt.datetime.now(dt.UTC))
    except (DistrictConfigError, RegistryDatabaseError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(format_table([row.as_dict() for row in rows]))
    return 1 if any(row.needs_attention for row in rows) else 0


def _when(iso: str | None) -> str:
    """An ISO UTC time as ``YYYY-MM-DD HH:MMZ`` (``never`` when absent)."""
    if not iso:
        return "never"
    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ")


def _cells(row: dict[str, object]) -> tuple[str, ...]:
    night = f"{row['last_night']} {row['last_night_state']}" if row["last_night"] else "none"
    expected = dt.datetime.fromisoformat(str(row["next_night_expected_by"]))
    due = f"{row['next_night']}, {expected:%Y-%m-%d %H:%M} {row['timezone']}"
    if row["next_night_overdue"]:
        due += " (overdue)"
    return (
        str(row["district"]),
        "yes" if row["enabled"] else "no",
        str(row["source_kind"]),
        str(row["health"]).upper() if row["needs_attention"] else str(row["health"]),
        _when(row["last_successful_poll_at"]),  # type: ignore[arg-type]
        night,
        due,
        str(row["last_error"] or ""),
    )


def format_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "No districts registered (etl-project districts add ...)."
    cells = [COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    padded = (" ".join(c.ljust(w + 1) for c, w in zip(line, widths, strict=False)) for line in cells)
    return "\n".join(f"{left} {line[-1]}".rstrip() for left, line in zip(padded, cells, strict=True))
