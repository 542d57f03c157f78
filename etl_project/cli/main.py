"""Entry point of ``etl-project``. Each command lives in its own module exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import sys

from etl_project.cli import (
    bench,
    check_drop,
    cluster,
    demo,
    districts,
    generate,
    lms,
    offboard,
    portal,
    report,
    status,
    sync,
)
from etl_project.cli.errors import CommandError
from etl_project.files import private_umask

# One module per command (or group of commands); each adds its sub-parser and sets ``func``.
COMMAND_MODULES = [check_drop, sync, demo, offboard, bench, generate, lms, districts, report, status, portal]
COMMAND_MODULES += [cluster]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etl-project",
        description="Nightly OneRoster roster sync for K-12 districts (Dagster).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"etl-project {importlib.metadata.version('etl_project')}",
        help="print the version and exit",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    private_umask()  # archive, warehouse, LMS file, logs: student data, never readable by others
    # paramiko logs expected connection failures (a server that is not SSH) with a traceback through the
    # "paramiko" logger; with no handler, Python would print them on stderr. The command's own one-sentence
    # error says what happened.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    parser = build_parser()
    args = parser.parse_args(argv)
    merge_district_alias(parser, args)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except CommandError as exc:
        print(f"etl-project {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (`etl-project history | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130


def merge_district_alias(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``districts <action> ID`` (the older spelling) means ``--district ID``; one of them is needed."""
    if not hasattr(args, "district_id"):
        return
    if args.district_id and args.district and args.district_id != args.district:
        parser.error(f"'{args.district_id}' and --district {args.district} names two districts; give one")
    args.district = args.district or args.district_id
    if not args.district:
        parser.error(f"{args.command} {args.districts_command}: --district ID is required")


if __name__ == "__main__":
    sys.exit(main())
