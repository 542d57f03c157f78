"""PgBouncer in front of the cluster's PostgreSQL, for Dagster's instance storage.

dagster-postgres opens a new database connection for almost every query it runs (SQLAlchemy's ``NullPool``,
so an idle process holds none): a small district-night writes about 300 events and opens about 1,000
connections. A PostgreSQL connection starts a server process, about 2 ms of the database's CPU each, which
was half of a small night's wall time on this machine. PgBouncer keeps server connections open and hands
them to each new client connection; in **session** mode a client has its server connection to itself until
it disconnects, so everything Dagster does (LISTEN/NOTIFY, advisory locks, ``SET`` statements) behaves as
on a direct connection.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from etl_project.cluster.processes import ClusterStartError, port_open, start, wait_until
from etl_project.devservers import free_port

PGBOUNCER = os.environ.get("PGBOUNCER_BIN", "/usr/sbin/pgbouncer")
# Server connections per database: more than the clients that are ever connected at once (workers' runs,
# the daemon's threads, the webserver's pool), fewer than PostgreSQL's max_connections.
POOL_SIZE = 60
MAX_CLIENTS = 1000


def pgbouncer_ini(listen_port: int, pg_port: int, folder: Path) -> str:
    return "\n".join(
        [
            "[databases]",
            f"* = host=127.0.0.1 port={pg_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {listen_port}",
            "unix_socket_dir =",
            # the PostgreSQL behind it trusts connections from this machine; so does this
            "auth_type = trust",
            f"auth_file = {folder / 'users.txt'}",
            "pool_mode = session",
            f"default_pool_size = {POOL_SIZE}",
            f"max_client_conn = {MAX_CLIENTS}",
            "ignore_startup_parameters = extra_float_digits",
            # connections and disconnections are the normal case here, not news
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ]
    )


def start_pgbouncer(root: Path, folder: Path, pg_port: int, user: str, env: dict[str, str]) -> int:
    """Start PgBouncer (as the ``postgres`` OS user when we are root: it refuses to run as root) in front
    of PostgreSQL on ``pg_port``, its files in ``folder``; returns the port it listens on."""
    if not os.path.exists(PGBOUNCER):
        raise ClusterStartError(f"{PGBOUNCER} not found: install pgbouncer (scripts/install-system-deps)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(pgbouncer_ini(port, pg_port, folder))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        for name in ("users.txt", "pgbouncer.ini"):
            shutil.chown(folder / name, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    proc = start("pgbouncer", [*as_user, PGBOUNCER, str(folder / "pgbouncer.ini")], env, root)
    wait_until("pgbouncer", port_open(port), proc, root)
    return port
