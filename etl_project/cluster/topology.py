"""``cluster up`` / ``cluster down``: the whole deployment on this machine, started in dependency order and
stopped from its pid files (so ``down`` also cleans up after an ``up`` that crashed half-way)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import boto3

from etl_project.cluster.config import ARCHIVE_BUCKET, RUNS_PER_WORKER, ClusterInfo, dagster_yaml
from etl_project.cluster.pgbouncer import start_pgbouncer
from etl_project.cluster.processes import (
    ClusterStartError,
    port_open,
    running,
    start,
    stop_all,
    wait_until,
)
from etl_project.cluster.workers import worker_command, worker_env, worker_names
from etl_project.devservers import free_port
from etl_project.devservers.postgres import PG_BIN, start_postgres
from etl_project.files import private_dir
from etl_project.registry import new_key

BIN = Path(sys.executable).parent
LOCATION = "etl_project"
PG_PATH_FILE = "pg.path"
# The broker, the S3 endpoint and the database's pooler go down last, after everything that talks to them.
STOP_LAST = ("redis", "s3", "pgbouncer")
# Settings of the caller that must not leak into the cluster's processes (a developer's own homes and URLs).
_OWN_PREFIXES = ("ETL_PROJECT_", "DAGSTER_", "LMS_", "AWS_")


def up(directory: str | Path, workers: int = 2, sweep_seconds: int = 30) -> ClusterInfo:
    """Start PostgreSQL, Redis, the S3 endpoint, the code server, the webserver, the daemon and ``workers``
    Celery workers under ``directory``; write cluster.json. On a failure everything started is stopped.
    ``sweep_seconds``: how often the daemon looks for runs lost with their worker."""
    root = private_dir(Path(directory).resolve())
    if (root / "cluster.json").exists() or running(root):
        raise ClusterStartError(f"a cluster is already up in {root} (etl-project cluster down --dir {root})")
    try:
        return _up(root, workers, sweep_seconds)
    except BaseException:
        down(root)
        raise


def _up(root: Path, workers: int, sweep_seconds: int) -> ClusterInfo:
    env = {**_shared_env(root), "ETL_PROJECT_CELERY_SWEEP_SECONDS": str(sweep_seconds)}
    names = worker_names(workers)
    yaml_text = dagster_yaml(max_concurrent_runs=workers * RUNS_PER_WORKER)
    control = _control_env(root, env, yaml_text)
    _prepare_storage(control)
    code_port, web_port = free_port(), free_port()
    code_cmd = [str(BIN / "dagster"), "code-server", "start", "-m", "etl_project.definitions",
                "-h", "127.0.0.1", "-p", str(code_port), "--location-name", LOCATION]  # fmt: skip
    code = start("code-server", code_cmd, control, root, cwd=root)
    workspace = root / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {code_port}\n"
        f"      location_name: {LOCATION}\n"
    )
    wait_until("code-server", port_open(code_port), code, root)
    web = start("webserver", [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1",
                              "-p", str(web_port)], control, root, cwd=root)  # fmt: skip
    start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], control, root, cwd=root)
    procs = {
        n: start(n, worker_command(n), worker_env(env, root, n, yaml_text), root, cwd=root) for n in names
    }
    url = f"http://127.0.0.1:{web_port}"
    wait_until("webserver", _http_ok(url + "/server_info"), web, root)
    for name, proc in procs.items():
        wait_until(name, _log_says(root, name, " ready."), proc, root)
    # clients (tests, benchmarks, the CLI) use the control processes' DAGSTER_HOME
    client_env = {**env, "DAGSTER_HOME": control["DAGSTER_HOME"]}
    info = ClusterInfo(
        dir=str(root), workers=names, webserver_url=url, code_server_port=code_port, env=client_env
    )
    info.write()
    return info


def _shared_env(root: Path) -> dict[str, str]:
    """Start PostgreSQL, Redis and the S3 endpoint; the connection settings every process shares."""
    # PostgreSQL runs as the postgres user when we are root: its folder must be reachable by it, which a
    # private parent (a 0700 home or test folder) is not. Its path is kept in pg.path for `down`.
    pg_dir = tempfile.mkdtemp(prefix="etl-cluster-pg-", dir="/tmp")
    (root / PG_PATH_FILE).write_text(pg_dir)
    pg = start_postgres(pg_dir)
    for db in ("dagster", "registry", "lms"):
        pg.create_database(db)
    bouncer_port = start_pgbouncer(root, Path(pg_dir) / "pgbouncer", pg.port, pg.user, _base_env())
    redis_port, s3_port = free_port(), free_port()
    base = _base_env()
    redis = start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--daemonize", "no"], base, root)  # fmt: skip
    s3 = start("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], base, root)
    wait_until("redis", port_open(redis_port), redis, root)
    wait_until("s3", port_open(s3_port), s3, root)
    env = {
        **base,
        # Dagster's storage through PgBouncer (etl_project/cluster/pgbouncer.py). dagster-postgres binds
        # NOTIFY's payload as a parameter, which only psycopg2 accepts (SQLAlchemy 2.1 picks psycopg 3 for a
        # bare postgresql:// URL).
        "DAGSTER_PG_URL": f"postgresql+psycopg2://{pg.user}@127.0.0.1:{bouncer_port}/dagster",
        "ETL_PROJECT_REGISTRY_URL": pg.url("registry"),
        "LMS_URL": pg.url("lms"),
        "ETL_PROJECT_ARCHIVE": f"s3://{ARCHIVE_BUCKET}/nights",
        "ETL_PROJECT_S3_ENDPOINT": f"http://127.0.0.1:{s3_port}",
        "AWS_ACCESS_KEY_ID": "testing",  # moto accepts any credentials
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ETL_PROJECT_SECRET_KEY": new_key(),
        "ETL_PROJECT_CELERY_BROKER": f"redis://127.0.0.1:{redis_port}/0",
        "ETL_PROJECT_CELERY_BACKEND": f"redis://127.0.0.1:{redis_port}/1",
    }
    s3_client = boto3.client("s3", endpoint_url=env["ETL_PROJECT_S3_ENDPOINT"], region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3_client.create_bucket(Bucket=ARCHIVE_BUCKET)
    s3_client.put_bucket_versioning(Bucket=ARCHIVE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return env


def _base_env() -> dict[str, str]:
    """This process's environment without the caller's own homes and URLs, with our bin folder on PATH."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    return base


def _control_env(root: Path, env: dict[str, str], yaml_text: str) -> dict[str, str]:
    """The code server's, webserver's and daemon's environment (one DAGSTER_HOME, one home)."""
    dagster_home = private_dir(root / "dagster")
    (dagster_home / "dagster.yaml").write_text(yaml_text)
    (dagster_home / ".etl_project_initialized").touch()
    return {**env, "DAGSTER_HOME": str(dagster_home), "ETL_PROJECT_HOME": str(root / "control")}


def _prepare_storage(env: dict[str, str]) -> None:
    """Create the Dagster tables once, before several processes would race to create them."""
    code = "from dagster import DagsterInstance; DagsterInstance.get().dispose()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise ClusterStartError(f"Dagster's PostgreSQL storage: {proc.stderr[-2000:]}")


def _http_ok(url: str):
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    return check


def _log_says(root: Path, name: str, text: str):
    log = root / "logs" / f"{name}.log"
    return lambda: log.exists() and text in log.read_text(errors="replace")


def down(directory: str | Path) -> list[str]:
    """Stop everything ``up`` started in ``directory`` (processes by pid file, PostgreSQL by pg_ctl)."""
    root = Path(directory).resolve()
    stopped = stop_all(root, last=STOP_LAST)
    pg_path = root / PG_PATH_FILE
    pg_dir = Path(pg_path.read_text().strip()) if pg_path.exists() else None
    data = pg_dir / "data" if pg_dir else root / "missing"
    if (data / "postmaster.pid").exists():
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_user, f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, check=False)  # fmt: skip
        stopped.append("postgres")
    (root / "cluster.json").unlink(missing_ok=True)
    if pg_dir is not None:
        shutil.rmtree(pg_dir, ignore_errors=True)
        pg_path.unlink(missing_ok=True)
    return stopped
