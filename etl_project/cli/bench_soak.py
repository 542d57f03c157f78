"""``etl-project bench --soak``: the soak benchmark's options and output (etl_project/soak does the work)."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etl_project.soak.run import SoakOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    soak = parser.add_argument_group(
        "soak (--soak): N districts, two nights each, through the Dagster daemon"
    )
    soak.add_argument("--soak", action="store_true", help="run the soak benchmark (docs/scale.md)")
    soak.add_argument(
        "--districts",
        type=int,
        default=20,
        help="synthetic districts (default 20; --small too: one night each)",
    )
    soak.add_argument(
        "--cluster",
        type=Path,
        default=None,
        help="cluster.json of a running cluster (etl-project cluster up); default: start a local "
        "dagster-webserver and dagster-daemon on a temp DAGSTER_HOME",
    )
    soak.add_argument(
        "--history-nights",
        type=int,
        default=90,
        help="past nights per district seeded as materialization events for the UI measurement",
    )
    soak.add_argument(
        "--history-districts",
        type=int,
        default=0,
        help="seed the history for this many districts (the soak's plus partitions-only padding "
        "districts), to measure the UI at e.g. 1,000 districts x 90 nights without running them",
    )
    soak.add_argument(
        "--kill-worker",
        action="store_true",
        help="SIGKILL the process of one run in the middle of it and report what became of it",
    )
    soak.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every district's size (the mix: most 300-2,000 students, some 10k-50k, one 200k)",
    )
    soak.add_argument(
        "--district-students",
        type=int,
        default=None,
        help="give every district this many students instead of the mix (tests)",
    )
    soak.add_argument(
        "--failure-rate",
        type=float,
        default=0.03,
        help="share of districts failing in each way (at least one each; default 0.03)",
    )
    soak.add_argument(
        "--timeout", type=float, default=6 * 3600, help="give up waiting for runs after S seconds"
    )
    soak.add_argument(
        "--floor-sample",
        type=float,
        default=1.0,
        help="run the floor on this share of the districts (each size class and kind, at least one of "
        "each, and the killed run's) and scale its time up; LMS rows are compared for those (default 1)",
    )
    soak.add_argument(
        "--floor-of",
        type=Path,
        default=None,
        metavar="SOAK_JSON",
        help="run the floor and the comparison again for the cluster soak that wrote SOAK_JSON (its --out; "
        "say, one stopped during its floor), on the same cluster; updates that file",
    )
    soak.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the JSON here, rewritten after every phase (progress of a long run)",
    )


def run(args: argparse.Namespace) -> int:
    from etl_project.soak.run import floor_again, run_soak

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # SIGTERM (a background run being stopped) unwinds like Ctrl-C: the services it started are stopped and
    # the paused nightly schedule restarted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.floor_of is not None:
        earlier = json.loads(args.floor_of.read_text())
        soak = _earlier_args(str(earlier.get("command") or ""))
        soak.out, soak.floor_sample = args.floor_of, args.floor_sample
        data = floor_again(_options(soak, progress), earlier)
    else:
        data = run_soak(_options(args, progress))
    if args.json:
        print(json.dumps(data, default=str))
    else:
        for key, value in data.items():
            print(f"{key:<34}  {value}")
    return 0


def _earlier_args(command: str) -> argparse.Namespace:
    """The options of the soak whose JSON holds ``command`` (its command line)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    args, _ = parser.parse_known_args(shlex.split(command)[2:])  # after "etl-project bench"
    return args


def _options(args: argparse.Namespace, progress: Callable[[str], None]) -> SoakOptions:
    from etl_project.soak.run import SoakOptions

    return SoakOptions(
        districts=args.districts,
        cluster=args.cluster,
        history_nights=args.history_nights,
        history_districts=args.history_districts,
        kill_worker=args.kill_worker,
        out=args.out,
        workdir=args.workdir,
        scale=args.scale,
        students=args.district_students,
        failure_rate=args.failure_rate,
        seed=args.seed,
        timeout_s=args.timeout,
        progress=progress,
        floor_sample=args.floor_sample,
        command=" ".join(["etl-project", *sys.argv[1:]]),
    )
