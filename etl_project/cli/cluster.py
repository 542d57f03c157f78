"""``etl-project cluster up|down``: the multi-worker deployment on this machine (see docs/deploy.md)."""

from __future__ import annotations

import argparse
import os

from etl_project.cli.errors import CommandError

DEFAULT_DIR = ".etl_project/cluster"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cluster",
        help="start or stop the multi-worker deployment on this machine (PostgreSQL, Redis, S3, Celery)",
        description="up: PostgreSQL (Dagster's instance, the registry, the LMS), redis-server (the Celery\n"
        "broker), moto's S3 server (the archive), the code location as a gRPC server, dagster-webserver,\n"
        "dagster-daemon and N Celery workers that each run whole Dagster runs. Connection settings go to\n"
        "DIR/cluster.json (mode 0600). down: stops everything up started in DIR, also after a crash.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["up", "down"], help="up: start the deployment; down: stop it")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers to start (default 2)")
    parser.add_argument(
        "--dir", default=os.environ.get("ETL_PROJECT_CLUSTER_DIR", DEFAULT_DIR),
        help=f"the cluster's folder (default $ETL_PROJECT_CLUSTER_DIR or {DEFAULT_DIR})",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from etl_project.cluster.processes import ClusterStartError
    from etl_project.cluster.topology import down, up

    if args.action == "down":
        stopped = down(args.dir)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if args.workers < 1:
        raise CommandError("--workers must be at least 1")
    try:
        info = up(args.dir, args.workers)
    except ClusterStartError as exc:
        raise CommandError(str(exc), exit_code=1) from exc
    print(f"cluster up: {len(info.workers)} worker(s) ({', '.join(info.workers)})")
    print(f"Dagster UI: {info.webserver_url}")
    print(f"connection settings: {info.dir}/cluster.json (mode 0600; holds the registry key)")
    return 0
