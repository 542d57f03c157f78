"""``etl-project bench``: stage timings against the bare-DuckDB floor; prints figures, asserts nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from etl_project.cli import bench_soak


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark fetch, archive and normalize against a bare DuckDB load",
        description="Generates a drop of N students, then in one process measures the floor (a bare DuckDB "
        "read_csv(all_varchar=true) of the same CSVs into tables) and each stage: fetch over SFTP on "
        "loopback (OpenSSH sshd), archive, normalize + validate. Ratios are against the floor.",
    )
    parser.add_argument(
        "--students", type=int, default=100_000, help="students in the generated drop (default 100000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated drop (default 1)")
    parser.add_argument(
        "--memory-limit", default="1GB", help="DuckDB memory_limit for the floor and our stages"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the work files here (default: temp)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the floor and normalize (--lms: the floor, first load and day 2, each attempt on a fresh "
        "database) N times and keep the best of each (noisy machines)",
    )
    parser.add_argument(
        "--lms",
        choices=["postgres"],
        default=None,
        help="benchmark the LMS load instead: first load + day 2 into a throwaway PostgreSQL, against a bare "
        "COPY of the same rows into unindexed tables",
    )
    parser.add_argument(
        "--portal",
        action="store_true",
        help="benchmark the district portal's pages instead: p50/p95 over HTTP for a synced district of N "
        "students (etl_project/bench_portal.py; --workdir keeps and reuses the synced district)",
    )
    parser.add_argument("--requests", type=int, default=50, help="--portal: requests per page (default 50)")
    bench_soak.add_arguments(parser)
    parser.add_argument("--nights", type=int, default=2, help="--portal: nights synced (default 2)")
    parser.add_argument(
        "--small",
        action="store_true",
        help="benchmark small district-nights through a real dagster-daemon instead, beside the same nights "
        "run one after another in one process (etl_project/bench_daemon.py); see --districts, --students",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from etl_project.bench import run_bench, run_lms_bench

    if args.soak:
        return bench_soak.run(args)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    common = {
        "workdir": args.workdir,
        "seed": args.seed,
        "memory_limit": args.memory_limit,
        "progress": progress,
    }
    if args.portal:
        from etl_project.bench_portal import run_portal_bench

        result = run_portal_bench(
            args.students, workdir=args.workdir, seed=args.seed, requests=args.requests, progress=progress,
            nights=max(1, args.nights),
        )  # fmt: skip
    elif args.small:
        from etl_project.bench_daemon import run_small_bench

        result = run_small_bench(
            args.districts, args.students, workdir=args.workdir, seed=args.seed, progress=progress
        )
    elif args.lms == "postgres":
        result = run_lms_bench(args.students, repeat=max(1, args.repeat), **common)
    else:
        result = run_bench(args.students, repeat=max(1, args.repeat), **common)
    data = result.to_json()
    if args.json:
        print(json.dumps(data))
    else:
        width = max(len(k) for k in data)
        for key, value in data.items():
            print(f"{key:<{width}}  {value}")
    return 0
