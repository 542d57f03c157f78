"""Entry point of ``etl-project``. Each command lives in its own module exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from etl_project.files import private_umask

# One module per command (or group of commands); each adds its sub-parser and sets ``func``.
COMMAND_MODULES = [
    "etl_project.cli.check_drop",
    "etl_project.cli.sync",
    "etl_project.cli.demo",
    "etl_project.cli.offboard",
    "etl_project.cli.bench",
    "etl_project.cli.generate",
    "etl_project.cli.lms",
    "etl_project.cli.districts",
    "etl_project.cli.report",
    "etl_project.cli.status",
]


class CommandError(Exception):
    """An expected failure: printed as one clear line, never as a traceback."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etl-project",
        description="Nightly OneRoster roster sync for K-12 districts (Dagster).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    private_umask()  # archive, warehouse, LMS file, logs: student data, never readable by others
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"etl-project {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run through the package module so CommandError is the same class the commands raise.
    from etl_project.cli.main import main as _main

    sys.exit(_main())
