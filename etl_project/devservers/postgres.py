"""A throwaway PostgreSQL 15 server on 127.0.0.1 (tests and the bench).

PostgreSQL's binaries refuse to run as root, so when we are root the cluster is created and started as the
``postgres`` OS user through ``runuser`` (its data folder is chowned to it); the server then accepts
password-less (trust) connections from this machine only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from etl_project.devservers import ServerUnavailable, free_port

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    workdir: str
    as_user: tuple[str, ...] = ()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create a fresh database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server has used since it started: the postmaster, the processes it
        runs now (backends, parallel workers, WAL writer, checkpointer, autovacuum) and those that have ended
        (the postmaster reaps them all, adding theirs to its own children's time). Linux (/proc) only, else
        None. A child reaped while its siblings are being read would be counted twice, so the reading is
        taken again until the postmaster's reaped time is the same before and after it."""
        try:
            pid = int(Path(self.workdir, "data", "postmaster.pid").read_text().split()[0])
            reaped = _ticks(_proc_stat(pid), children=True)
            while True:
                live = sum(_ticks(stat) for stat in _proc_stats() if int(stat[1]) == pid)
                reaped, before = _ticks(_proc_stat(pid), children=True), reaped
                if reaped == before:
                    break
        except (OSError, ValueError, IndexError):
            return None
        return (live + reaped) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        data = os.path.join(self.workdir, "data")
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(
                [*self.as_user, f"{PG_BIN}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from the state on (the fields after the command name, which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _proc_stats() -> list[list[str]]:
    """Every process's /proc stat fields (see _proc_stat); one that ends while being read is left out."""
    stats = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stats.append(_proc_stat(int(entry.name)))
    return stats


def _ticks(stat: list[str], *, children: bool = False) -> int:
    """utime + stime (+ cutime + cstime: its ended, reaped children) in clock ticks (proc(5) fields 14-17)."""
    return sum(int(n) for n in stat[11 : 15 if children else 13])


def start_postgres(workdir: str | None = None, *, settings: dict[str, str] | None = None) -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port, tuned for throwaway use (fsync off)."""
    if not os.path.exists(f"{PG_BIN}/initdb"):
        raise ServerUnavailable(
            f"{PG_BIN}/initdb not found: install postgresql (scripts/install-system-deps)"
        )
    base = Path(workdir or tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    as_user: tuple[str, ...] = ()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        os.chmod(base, 0o755)
        as_user = ("runuser", "-u", "postgres", "--")
    data, port = base / "data", free_port()
    run = [*as_user, f"{PG_BIN}/initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]
    proc = subprocess.run([*run, "-E", "UTF8", "--locale=C.UTF-8"], capture_output=True, text=True)
    if proc.returncode:
        raise ServerUnavailable(f"initdb failed: {proc.stderr.strip()[-500:]}")
    options = {
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        # A backend notices a vanished client even while it waits on a lock.
        "client_connection_check_interval": "200ms",
        "max_wal_size": "4GB",
        **(settings or {}),
    }
    opts = f"-k {base} -p {port} " + " ".join(f"-c {k}={v}" for k, v in options.items())
    log = base / "server.log"
    proc = subprocess.run(
        [*as_user, f"{PG_BIN}/pg_ctl", "-D", str(data), "-l", str(log), "-w", "-o", opts, "start"],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        tail = log.read_text()[-500:] if log.exists() else proc.stderr
        raise ServerUnavailable(f"PostgreSQL did not start: {tail.strip()}")
    return PostgresServer(host="127.0.0.1", port=port, user="postgres", workdir=str(base), as_user=as_user)
