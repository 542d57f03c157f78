"""``etl-project plan | trace | history``: the LMS load, dry-run and read back from the change ledger."""

from __future__ import annotations

import argparse
import json
from typing import Any

from etl_project.cli.district_arg import add_district_option, known_district
from etl_project.cli.errors import CommandError

OPS = ("created", "updated", "deactivated", "reactivated", "unchanged", "held")


def register(subparsers: argparse._SubParsersAction) -> None:
    plan = subparsers.add_parser(
        "plan",
        help="dry run: what a night would change in the LMS now, and whether the thresholds would hold it",
        description="Computes the night's change set against the LMS as it is now (the night must already be "
        "in the warehouse: etl-project sync) and prints counts per entity and operation, sample rows and the "
        "safety-threshold verdict. Writes nothing.",
    )
    add_district_option(plan)
    plan.add_argument("--date", required=True, help="the night, YYYY-MM-DD")
    plan.add_argument("--sample", type=int, default=3, help="sample rows per entity and operation")
    plan.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    plan.set_defaults(func=run_plan)

    trace = subparsers.add_parser(
        "trace",
        help="full history of one LMS record, newest first, with the file and line each change came from",
        description="Reads the LMS change ledger: every change the sync made to one record (created, "
        "updated with before -> after per field, deactivated, reactivated), newest first, each with the "
        "night, the run id and the archived file, version, line and SHA-256 it came from.",
    )
    add_district_option(trace)
    trace.add_argument(
        "--entity", required=True, help="schools, terms, courses, sections, users, enrollments"
    )
    trace.add_argument("--id", required=True, help="the record's OneRoster sourcedId")
    trace.add_argument("--json", action="store_true", help="print the changes as a JSON list")
    trace.set_defaults(func=run_trace)

    history = subparsers.add_parser(
        "history",
        help="one line per night: run, state and counts",
        description="Reads the LMS change ledger: one line per synced night of the district with its run "
        "id, its state (applied, held, released, failed) and the counts per entity and operation.",
    )
    add_district_option(history)
    history.add_argument("--json", action="store_true", help="print the nights as a JSON list")
    history.set_defaults(func=run_history)


def _context(district: str):
    from etl_project.districts import DistrictConfigError
    from etl_project.lms import LmsConfigError, open_backend
    from etl_project.lms.thresholds import ThresholdConfigError, Thresholds
    from etl_project.night_tables import read_index
    from etl_project.settings import Settings

    settings = Settings.from_env()
    configured = known_district(district, has_data=bool(read_index(_archive(settings), district)))
    try:
        backend = open_backend(settings.lms_url())
        thresholds = Thresholds.from_config(configured.thresholds if configured else {})
    except (ValueError, LmsConfigError, DistrictConfigError, ThresholdConfigError) as exc:
        raise CommandError(str(exc)) from None
    return settings, backend, thresholds


def _archive(settings):
    from etl_project.resources import open_settings_archive

    return open_settings_archive(settings)


def _db_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    import psycopg

    return (psycopg.Error, sqlite3.Error)


def run_plan(args: argparse.Namespace) -> int:
    from etl_project.lms import plan_night
    from etl_project.night_tables import read_nights
    from etl_project.partitions import validate_night
    from etl_project.warehouse import WarehouseResource

    try:
        validate_night(args.date)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings, backend, thresholds = _context(args.district)
    warehouse = WarehouseResource(root=settings.warehouse_dir)
    try:
        with read_nights(warehouse, _archive(settings), args.district, [args.date]) as duck:
            loaded = duck.execute(
                "SELECT count(*) FROM oneroster.files WHERE _date = CAST(? AS DATE)", [args.date]
            ).fetchone()[0]
            if not loaded:
                raise CommandError(
                    f"night {args.date} of {args.district} is not in the archive: sync it first"
                )
            plan = plan_night(duck, backend, args.district, args.date, thresholds, sample_size=args.sample)
    except _db_errors() as exc:
        raise CommandError(f"LMS {backend.masked_url}: {str(exc).strip()}") from None
    data = {
        "district": args.district,
        "date": args.date,
        "lms": backend.masked_url,
        "counts": plan.changes.counts(),
        "modes": {k: v.mode for k, v in plan.changes.entities.items()},
        "writes": plan.changes.writes,
        "would_hold": plan.verdict.holds,
        "verdict": plan.verdict.describe(),
        "breaches": [b.to_json() for b in plan.verdict.breaches],
        "samples": plan.samples,
    }
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"Plan for {args.district} {args.date} against {backend.masked_url} (dry run, nothing written)")
    print(_counts_table(data["counts"], data["modes"]))
    print(f"\n{'WOULD HOLD' if plan.verdict.holds else 'Would apply'}: {plan.verdict.describe()}")
    for entity, rows in plan.samples.items():
        for row in rows:
            detail = row.get("reason") or row.get("changes") or ""
            print(f"  {entity:<11} {row['op']:<11} {row['sourced_id']:<24} line {row.get('line')}  {detail}")
    return 0


def _counts_table(counts: dict[str, dict[str, int]], modes: dict[str, str] | None = None) -> str:
    lines = [f"  {'entity':<12}{'mode':<10}" + "".join(f"{op:>12}" for op in OPS)]
    for entity, ops in counts.items():
        mode = (modes or {}).get(entity, "")
        lines.append(f"  {entity:<12}{mode:<10}" + "".join(f"{ops.get(op, 0):>12}" for op in OPS))
    return "\n".join(lines)


def _night_records(district: str) -> dict[str, Any]:
    """The registry's night states of the district (empty, with a warning, when it cannot be read)."""
    from etl_project.registry.nights import NightStates

    try:
        return NightStates().by_night(district)
    except Exception as exc:
        print(f"warning: night states unavailable ({type(exc).__name__}); showing the LMS ledger only")
        return {}


def _kept_out(settings, district: str, entity: str, sourced_id: str) -> list[dict[str, Any]]:
    from etl_project.night_tables import read_nights
    from etl_project.reports.kept_out import kept_out
    from etl_project.warehouse import WarehouseResource

    warehouse = WarehouseResource(root=settings.warehouse_dir)
    with read_nights(warehouse, _archive(settings), district) as duck:
        return kept_out(duck, entity, sourced_id)


def run_trace(args: argparse.Namespace) -> int:
    from etl_project.lms.history import trace

    settings, backend, _ = _context(args.district)
    try:
        rows = trace(backend, args.district, args.entity, args.id)
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    except _db_errors() as exc:
        raise CommandError(f"LMS {backend.masked_url}: {str(exc).strip()}") from None
    records = _night_records(args.district)
    newest = records[max(records)] if records else None
    kept: list[dict[str, Any]] = []
    if not rows or (newest is not None and not newest.state.lms_changed):
        kept = _kept_out(settings, args.district, args.entity, args.id)
    still = bool(kept) and (newest is None or kept[0]["date"] == newest.night or not newest.state.lms_changed)
    if args.json:
        data = {"changes": rows, "kept_out": kept, "still_kept_out": still,
                "district_night": newest.as_dict() if newest else None}  # fmt: skip
        print(json.dumps(data, indent=2, default=str))
        return 0 if rows or kept else 1
    if rows:
        _print_changes(args, rows)
    else:
        print(f"No changes recorded for {args.entity} {args.id} in district {args.district}.")
    _print_kept_out(args, kept, still, newest)
    return 0 if rows else 1


def _print_changes(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(f"{args.entity} {args.id} (LMS id {rows[0]['lms_id']}), district {args.district}, newest first:")
    for r in rows:
        print(f"  {r['date']}  {r['operation']:<11} run {r['run_id']}  ledger #{r['ledger_id']}")
        for name, change in (r["changes"] or {}).items():
            print(f"      {name}: {_show(change.get('before'))} -> {_show(change.get('after'))}")
        where = f"line {r['line']}" if r["line"] else "(not in the bulk file)"
        print(f"      from {r['file_uri'] or '?'} {where}, version {r['file_version'] or '-'}, "
              f"sha256 {(r['file_sha256'] or '-')[:16]}")  # fmt: skip
        if r["released_by"]:
            print(f"      released by {r['released_by']}: {r['release_reason']}")


def _print_kept_out(args: argparse.Namespace, kept: list[dict[str, Any]], still: bool, newest) -> None:
    if kept:
        print(f"Kept out of the LMS on {kept[0]['date']}:")
        for k in kept:
            where = f"{k['file']} line {k['line']}" if k["line"] else f"{k['file']} (the whole file)"
            column = f", column {k['column']}" if k["column"] else ""
            print(f"  {where}{column}: {k['reason']} ({k['message']}) Fix: {k['fix']}")
    if newest is not None:
        why = f": {newest.reason}" if newest.reason and not newest.state.lms_changed else ""
        print(f"The district's newest night, {newest.night}, is {newest.state}{why}.")
        if kept:
            print("The record is still kept out." if still else "A newer night no longer rejects it.")
            if still:
                print(f"It is still kept out as of {newest.night}.")


def _show(value: Any) -> str:
    return "null" if value is None else json.dumps(value)


def run_history(args: argparse.Namespace) -> int:
    from etl_project.lms.history import history, night_history

    _, backend, _ = _context(args.district)
    records = _night_records(args.district)
    try:
        ledger = history(backend, args.district)
    except _db_errors() as exc:
        if not records:
            raise CommandError(f"LMS {backend.masked_url}: {str(exc).strip()}") from None
        ledger = []  # an LMS never loaded for this district: the registry's nights alone
    nights = night_history(ledger, records)
    if args.json:
        keys = ("date", "run_id", "state", "counts", "reason", "step")
        print(json.dumps([{k: n[k] for k in keys} for n in nights], indent=2))
        return 0
    if not nights:
        print(f"No nights recorded for district {args.district}.")
        return 0
    for n in nights:
        parts = []
        for entity, ops in n["counts"].items():
            shown = ", ".join(f"{op} {c}" for op, c in ops.items() if c)
            if shown:
                parts.append(f"{entity}: {shown}")
        extra = f" (released by {n['released_by']}: {n['release_reason']})" if n["released_by"] else ""
        if n["state"] in ("applied", "released", "held"):
            what = "; ".join(parts) or "no changes"
        else:
            what = "LMS unchanged"
        if n["reason"]:
            what += f" - {n['reason']}" + (
                f" (step {n['step']})" if n["step"] and n["state"] == "failed" else ""
            )
        print(f"{n['date']}  {n['state'] or '?':<8}  run {n['run_id'] or '-'}  {what}{extra}")
    return 0
