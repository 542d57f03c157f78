"""A Celery worker of the cluster: its command line and its own homes (scratch, warehouse, DAGSTER_HOME).

A worker shares nothing with the others but PostgreSQL, the S3 endpoint and the broker; its folder is
scratch. It consumes the shared queue and its own (``worker-<name>``), runs up to ``RUNS_PER_WORKER``
runs at once, each in a child process of Celery's prefork pool (a run's steps stay in that process: the
code's executor decides), and takes one task at a time from the broker (prefetch 1) so a busy worker
leaves queued runs to the others.

Not the threads pool: Dagster reconfigures Python's logging (``logging.config.dictConfig``) when each run
starts, which takes the logging module's lock and then each handler's lock, while a run already executing
in another thread takes them in the other order, so two runs in one process can deadlock.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from etl_project.cluster.config import RUNS_PER_WORKER, SHARED_QUEUE, worker_queue
from etl_project.files import private_dir


def worker_names(count: int) -> list[str]:
    return [f"w{i}" for i in range(1, count + 1)]


def worker_env(base: Mapping[str, str], directory: Path, name: str, dagster_yaml: str) -> dict[str, str]:
    """The worker's environment: the shared connection settings, and homes of its own."""
    home = private_dir(directory / "workers" / name)
    dagster_home = private_dir(home / "dagster")
    (dagster_home / "dagster.yaml").write_text(dagster_yaml)
    (dagster_home / ".etl_project_initialized").touch()  # the instance is PostgreSQL: nothing to seed
    return {**base, "ETL_PROJECT_HOME": str(home / "home"), "DAGSTER_HOME": str(dagster_home)}


def worker_command(name: str) -> list[str]:
    bin_dir = Path(sys.executable).parent
    return [
        str(bin_dir / "celery"),
        "-A",
        "etl_project.cluster.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(RUNS_PER_WORKER),
        "--hostname",
        f"{name}@%h",
        "--queues",
        f"{SHARED_QUEUE},{worker_queue(name)}",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
