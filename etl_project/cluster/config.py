"""What a running cluster is: its folder, ports and connection URLs (``cluster.json``), and the Dagster
instance settings every process of it shares (``dagster.yaml``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from etl_project.files import PRIVATE_FILE_MODE

CLUSTER_FILE = "cluster.json"
ARCHIVE_BUCKET = "archive"
WORKER_TAG = "etl_project/worker"
# Each worker consumes the shared queue and one of its own (to pin a run to a worker: the run tag
# ``dagster-celery/queue``).
SHARED_QUEUE = "dagster"
# Two runs at once per worker, each in a process of its own (Celery's prefork pool): a run waits on
# PostgreSQL and S3 part of the time, so two per two cores keep them busy.
RUNS_PER_WORKER = 2
MAX_RUNTIME_SECONDS = 3600


@dataclass
class ClusterInfo:
    """The running cluster as clients need it. ``env`` holds connection settings (URLs, the registry's key,
    the S3 endpoint's test credentials): cluster.json is 0600 and never printed."""

    dir: str
    workers: list[str]
    webserver_url: str
    code_server_port: int
    env: dict[str, str] = field(default_factory=dict)

    def write(self) -> Path:
        path = Path(self.dir) / CLUSTER_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self), out, indent=2)
        os.chmod(path, PRIVATE_FILE_MODE)
        return path

    @classmethod
    def read(cls, directory: str | Path) -> ClusterInfo:
        return cls(**json.loads((Path(directory) / CLUSTER_FILE).read_text()))


def worker_queue(name: str) -> str:
    return f"worker-{name}"


def dagster_yaml(max_concurrent_runs: int) -> str:
    """The deployment's instance settings. Connection strings stay environment-variable references."""
    return f"""# written by `etl-project cluster up`; each process of the cluster reads it (DAGSTER_HOME)
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: {max_concurrent_runs}
    tag_concurrency_limits:
      # runs of one district never overlap; different districts run in parallel
      - key: dagster/partition/district
        value:
          applyLimitPerUniqueValue: true
        limit: 1
run_launcher:
  module: dagster_celery.launcher
  class: CeleryRunLauncher
  config:
    broker:
      env: ETL_PROJECT_CELERY_BROKER
    backend:
      env: ETL_PROJECT_CELERY_BACKEND
    default_queue: {SHARED_QUEUE}
    config_source:
      worker_prefetch_multiplier: 1
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_runtime_seconds: {MAX_RUNTIME_SECONDS}
  # a Celery task cannot be resumed on another worker; a lost run is failed (and retried below)
  max_resume_run_attempts: 0
  poll_interval_seconds: 10
  free_slots_after_run_end_seconds: 300
# A tick that requests many runs (hundreds of districts' drops at once) creates them in parallel: each
# creation asks the code server for the run's plan and writes its planned events (~0.6 s each).
sensors:
  use_threads: true
  num_workers: 4
  num_submit_workers: 4
schedules:
  use_threads: true
  num_workers: 4
  num_submit_workers: 4
run_retries:
  enabled: true
  max_retries: 1
  # a night that failed on its data (held, blocked) is not re-run; a lost worker's run is
  retry_on_asset_or_op_failure: false
telemetry:
  enabled: false
"""
