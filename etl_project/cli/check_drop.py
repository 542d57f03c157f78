"""``etl-project check-drop PATH [--json]``: validate a OneRoster drop without loading anything."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from etl_project.cli.errors import CommandError

SHOWN_PER_FILE = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-drop",
        help="validate a OneRoster drop (folder or zip) without loading it",
        description=(
            "Validate a OneRoster 1.1/1.2 CSV drop (a folder or a .zip) exactly as the nightly load would, "
            "without writing anything. Exit 0 when clean, 1 when some rows or files would be rejected, "
            "2 when the drop as a whole is refused."
        ),
    )
    parser.add_argument("path", type=Path, help="the drop: a folder of CSV files or a .zip")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import duckdb

    from etl_project.oneroster import check_drop

    path: Path = args.path
    if not path.exists():
        raise CommandError(f"{path} does not exist", exit_code=2)
    try:
        report = check_drop(path)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", exit_code=2) from None
    except (MemoryError, duckdb.OutOfMemoryException):
        raise CommandError(
            f"checking {path} ran out of memory; a file of the drop is far larger or wider than a roster "
            "export (see docs/validation-limits.md): check the files' sizes and headers",
            exit_code=2,
        ) from None
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render(path, report))
    return report.exit_code()


def render(path: Path, report) -> str:
    """The report in plain words for a district IT admin."""
    out = [f"Drop: {path}"]
    if report.refused:
        out.append("Result: REFUSED - nothing in this drop can be loaded.")
        out.extend(f"  - {e}" for e in report.drop_errors)
        if not report.files:
            return "\n".join(out)
        out.append("The other files were checked as well; fix these problems too.")
    else:
        out.append(f"OneRoster version: {report.oneroster_version}")
        out.append(_verdict(report))
    out.append("")
    out.append("Files:")
    for f in report.files.values():
        if f.status == "absent":
            continue
        line = f"  {f.file:<22} {f.mode or '-':<6} {f.status:<9}"
        if f.status in ("loaded",):
            line += f" {f.rows} row(s): {f.accepted} accepted, {f.rejected} rejected"
        out.append(line)
        if f.status == "rejected" and f.error:
            out.append(f"      {f.error}")
            continue
        for e in f.errors[:SHOWN_PER_FILE]:
            where = f"line {e['line']}" + (f", column {e['column']}" if e["column"] else "")
            out.append(f"      {where}: {e['message']}")
        more = len(f.errors) - SHOWN_PER_FILE + f.errors_omitted
        if more > 0:
            out.append(f"      ... and {more} more problem(s) (use --json to see them all)")
    absent = [f.file for f in report.files.values() if f.status == "absent"]
    if absent:
        out.append(f"  Marked absent: {', '.join(absent)}")
    if report.warnings:
        out.append("")
        out.append("Warnings (the drop still loads):")
        out.extend(f"  - {w}" for w in report.warnings)
    return "\n".join(out)


def _verdict(report) -> str:
    problems = [f for f in report.files.values() if f.status == "rejected" or f.rejected]
    if not problems:
        return "Result: OK - every file and row can be loaded."
    rows = sum(f.rejected for f in problems if f.status != "rejected")
    files = sum(1 for f in problems if f.status == "rejected")
    return f"Result: PROBLEMS - {files} file(s) rejected as a whole, {rows} row(s) rejected in other files."
