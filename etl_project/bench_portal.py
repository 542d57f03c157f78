"""``etl-project bench --portal``: how fast the district portal's pages answer for a district of N students.

A synthetic district is generated and synced through the normal path (``etl-project generate`` and
``etl-project sync`` for two nights (``--nights``), in child processes, into the embedded registry,
warehouse, archive and LMS of a bench home), or reused when the bench home already holds that district at
that size. Then the real portal (``etl-project portal``) is started on it, a district admin signs in over
HTTP, and each page is requested many times over HTTP, one request at a time: the dashboard, a night's
report, trace by sourcedId, trace by name and a record's history. Only the portal's public pages are used,
so the figures stay valid whatever the portal reads underneath. Prints p50 and p95 per page, and the portal
process's CPU time per request (on a shared machine the wall time includes waiting for a core); asserts
nothing.
"""

from __future__ import annotations

import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from etl_project.bench import cpu_count, generate_in_child
from etl_project.generate import night_date

DISTRICT = "benchportal"
ADMIN = "admin@benchportal.example.org"
PASSWORD = "bench portal password 1"  # a throwaway account of a throwaway bench home
NIGHTS = 2  # day 1, then day 2 with the generator's churn (changes to trace)
READY = "portal-bench-ready.json"
TARGET_P95_MS = 200.0


@dataclass
class PortalBench:
    students: int
    requests: int
    nights: list[str]
    prepare_s: float  # generating and syncing the district (when it was made, if reused)
    reused: bool
    pages: dict[str, dict[str, float]] = field(default_factory=dict)
    cpus: int = field(default_factory=cpu_count)

    def to_json(self) -> dict[str, object]:
        return {
            "portal": True,
            "students": self.students,
            "requests": self.requests,
            "nights": self.nights,
            "prepare_s": self.prepare_s,
            "reused": self.reused,
            "target_p95_ms": TARGET_P95_MS,
            "pages": self.pages,
            "cpus": self.cpus,
        }


def bench_env(home: Path) -> dict[str, str]:
    """The environment of every child: the bench home alone, its own key, Sync now off."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    key_file = home / "secret.key"
    if not key_file.exists():
        from etl_project.registry import new_key

        home.mkdir(parents=True, exist_ok=True)
        key_file.write_text(new_key())
        key_file.chmod(0o600)
    return {
        **base,
        "ETL_PROJECT_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "ETL_PROJECT_REGISTRY_URL": f"sqlite:///{home / 'registry.sqlite'}",
        "ETL_PROJECT_SECRET_KEY": key_file.read_text().strip(),
        "ETL_PROJECT_DAGSTER_URL": "off",
    }


def _cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "etl_project.cli.main", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def prepare(
    home: Path, students: int, nights: int, seed: int, progress: Callable[[str], None]
) -> tuple[float, bool]:
    """The synced district of ``students`` students in ``home``: seconds it took, and whether it was reused
    (already there from an earlier run). An interrupted preparation resumes: a night whose drop is complete
    (its manifest written) is not generated again, a night already synced (applied, held or blocked) is not
    synced again."""
    ready = home / READY
    made = json.loads(ready.read_text()) if ready.exists() else {}
    if made.get("students") == students and made.get("nights", NIGHTS) == nights:
        progress(f"reusing the synced {students}-student district in {home}")
        return made["prepare_s"], True
    from etl_project.districts import District, LocalSource
    from etl_project.registry import Registry
    from etl_project.registry.nights import NightState, NightStates

    started = time.perf_counter()
    env = bench_env(home)
    drops = home / "drops"
    for day in range(1, nights + 1):
        if not (drops / night_date(day).isoformat() / "manifest.csv").exists():
            progress(f"generating night {day} ({students} students)")
            generate_in_child(drops / night_date(day).isoformat(), students, day, seed)
    source = LocalSource(path=str(drops))
    district = District(DISTRICT, "Portal Bench Unified", source, timezone="America/Chicago")
    Registry(env["ETL_PROJECT_REGISTRY_URL"], env).add(district, replace=True)
    states = NightStates(env["ETL_PROJECT_REGISTRY_URL"])
    for day in range(1, nights + 1):
        night = night_date(day).isoformat()
        record = states.get(DISTRICT, night)
        if record is None or record.state in (NightState.RUNNING, NightState.FAILED, NightState.MISSING):
            progress(f"syncing {night} through etl-project sync")
            _cli(env, "sync", "--district", DISTRICT, "--date", night, "--settle-seconds", "0")
    spent = round(time.perf_counter() - started, 1)
    ready.write_text(json.dumps({"students": students, "nights": nights, "prepare_s": spent}))
    return spent, False


def _admin(env: dict[str, str]) -> None:
    """The district's admin, with the bench password (set again on every run)."""
    from etl_project.portal.accounts import AccountExists, Accounts, Role
    from etl_project.registry.crypto import SecretBox
    from etl_project.registry.db import Database

    accounts = Accounts(Database(env["ETL_PROJECT_REGISTRY_URL"]), SecretBox.from_env(env))
    try:
        account = accounts.create(ADMIN, Role.DISTRICT_ADMIN, DISTRICT)
    except AccountExists:
        account = accounts.by_email(ADMIN)
    assert account is not None
    accounts.set_password(account.id, PASSWORD)


def _start_portal(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl_project.cli.main", "portal", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    found = re.search(r"District portal on (http://\S+?)/? ", "".join(lines))
    if found is None:
        proc.kill()
        raise RuntimeError("the portal did not start: " + "".join(lines)[-2000:])
    # Nothing reads its output from here on: send it nowhere so a full pipe can never block it.
    subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
    return proc, found.group(1)


def _sign_in(client: httpx.Client) -> None:
    form = client.get("/sign-in").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    done = client.post("/sign-in", data={"csrf": csrf, "email": ADMIN, "password": PASSWORD})
    if done.status_code != 303 or done.headers.get("location") != "/district":
        raise RuntimeError(f"signing in as the bench admin failed: HTTP {done.status_code}")


def traced_student(home: Path, students: int, night: str) -> tuple[str, str]:
    """A student of the newest night (sourcedId, family name), read from its drop as a person would: not
    among the first rows, somewhere in the middle of a small district."""
    users = home / "drops" / night / "users.csv"
    with open(users, newline="") as f:
        rows = (r for r in csv.DictReader(f) if r.get("role") == "student")
        for _ in range(min(997, max(1, students // 2))):
            row = next(rows)
    return row["sourcedId"], row["familyName"]


def pages(home: Path, students: int, newest: str) -> dict[str, str]:
    sourced_id, family = traced_student(home, students, newest)
    return {
        "dashboard": "/district",
        "night report": f"/reports/{DISTRICT}/date={newest}/report.html",
        "trace by sourcedId": f"/trace?q={sourced_id}",
        "trace by name": f"/trace?q={family}",
        "record history": f"/trace/record?entity=users&id={sourced_id}",
    }


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "p50_ms": round(statistics.median(samples_ms), 1),
        "p95_ms": round(cuts[94], 1),
        "max_ms": round(max(samples_ms), 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, every thread (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(client: httpx.Client, path: str, requests: int, pid: int, warmup: int = 3) -> dict[str, float]:
    """``requests`` GETs of ``path`` one after another (after ``warmup`` unmeasured ones), in ms, and the
    portal process's CPU per request (what the page costs, apart from waiting for a shared machine)."""
    samples = []
    for i in range(warmup + requests):
        if i == warmup:
            cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        response = client.get(path)
        spent = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
        if i >= warmup:
            samples.append(spent)
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / requests
    return {**percentiles(samples), "cpu_ms": round(cpu_ms, 1)}


def run_portal_bench(
    students: int,
    *,
    workdir: Path | None,
    seed: int,
    requests: int,
    progress: Callable[[str], None],
    nights: int = NIGHTS,
) -> PortalBench:
    home = (workdir or Path(os.environ.get("TMPDIR", "/tmp")) / f"etl-bench-portal-{students}").resolve()
    spent, reused = prepare(home, students, nights, seed, progress)
    env = bench_env(home)
    _admin(env)
    dates = [night_date(d).isoformat() for d in range(1, nights + 1)]
    result = PortalBench(students, requests, dates, spent, reused)
    proc, base = _start_portal(env)
    try:
        with httpx.Client(base_url=base, headers={"Origin": base}, timeout=120) as client:
            _sign_in(client)
            for name, path in pages(home, students, dates[-1]).items():
                progress(f"{name}: {requests} requests of {path}")
                result.pages[name] = measure(client, path, requests, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result
