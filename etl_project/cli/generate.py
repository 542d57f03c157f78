"""``etl-project generate``: write a synthetic OneRoster 1.1 bulk drop (demo, tests, benchmark)."""

from __future__ import annotations

import argparse
from pathlib import Path

from etl_project.cli.errors import CommandError

EPILOG = """\
examples:
  etl-project generate drops/night1 --students 5000
  etl-project generate drops/night2 --students 5000 --day 2      # same district, next night, with churn
  etl-project generate drops/bad.zip --students 300 --zip --with-errors 6

Day 2 (and later) applies per night: ~0.5% withdrawals, ~0.5% new students, ~1% schedule changes,
~0.2% renamed users, 2 retitled classes, 3 replaced teachers. --with-errors N appends N bad rows, cycling
through: D/M/Y beginDate, role "Student Teacher", empty username, duplicate enrollment sourcedId,
enrollment to an unknown class, an unquoted 09,10 grades list. Same arguments give identical bytes."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write a realistic synthetic OneRoster 1.1 drop of any size",
        description="Write a complete OneRoster 1.1 bulk drop (manifest + orgs, academicSessions, courses, "
        "classes, users, enrollments, demographics) for a synthetic district.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "out", metavar="OUT", type=Path, help="folder to write the CSVs into (with --zip: the zip file)"
    )
    p.add_argument("--students", type=int, required=True, metavar="N", help="number of students on day 1")
    p.add_argument("--day", type=int, default=1, metavar="D", help="night number; 2+ adds churn (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--zip", action="store_true", help="write one zip file with the CSVs at its root")
    p.add_argument("--with-errors", type=int, default=0, metavar="N", help="append N realistic bad rows")
    p.add_argument("--district", default="demo", metavar="ID", help="district id used in names/emails")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from etl_project.generate import generate_drop
    from etl_project.partitions import validate_district_id

    if args.students < 1:
        raise CommandError("--students must be at least 1")
    if args.day < 1:
        raise CommandError("--day must be at least 1")
    if args.with_errors < 0:
        raise CommandError("--with-errors must not be negative")
    try:
        validate_district_id(args.district)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    out: Path = args.out
    if args.zip:
        if out.is_dir():
            raise CommandError(f"{out} is a folder; with --zip, OUT is the zip file to write")
        if out.exists() and not args.force:
            raise CommandError(f"{out} already exists; use --force to overwrite it")
    elif out.exists():
        if not out.is_dir():
            raise CommandError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not args.force:
                raise CommandError(f"{out} is not empty; use --force to overwrite its files")
            stale = [p for p in out.iterdir() if p.is_file() and p.suffix == ".csv"]
            for path in stale:
                path.unlink()
    try:
        drop = generate_drop(
            out,
            args.students,
            day=args.day,
            seed=args.seed,
            as_zip=args.zip,
            with_errors=args.with_errors,
            district_id=args.district,
        )
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc}") from None
    print(
        f"OneRoster 1.1 bulk drop, day {drop.day}, {drop.students:,} students, "
        f"seed {drop.seed} -> {drop.path}"
    )
    width = max(len(name) for name in drop.files)
    for name, stats in drop.files.items():
        print(f"  {name:<{width}}  {stats.rows:>12,} rows  {stats.bytes:>15,} bytes")
    print(f"  {'total':<{width}}  {drop.rows:>12,} rows  {drop.bytes:>15,} bytes")
    if drop.churn:
        print(
            "churn since day "
            + str(drop.day - 1)
            + ": "
            + ", ".join(f"{k} {v}" for k, v in drop.churn.items())
        )
    for err in drop.errors:
        print(f"injected error: {err.file} line {err.line}: {err.kind} ({err.description})")
    print(f"done in {drop.seconds:.1f} s")
    return 0
