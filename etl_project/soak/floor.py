"""The floor: the soak's district-nights executed one after another in one process, on a home of its own.

Run as ``python -m etl_project.soak.floor PLAN.json OUT.json`` with an environment naming that home (the
project reads its settings from the environment once, so the floor gets its own process). The home uses
the same kinds of storage as the runs it is compared with (:func:`floor_env`), so the comparison measures
the orchestration, not SQLite against PostgreSQL. Night 1 of every
district, then night 2, each through ``sync_night`` (Dagster's in-process execution of ``nightly_sync``,
no settle wait). It writes the wall time of those runs, each night's state and every district's LMS
fingerprint, which the soak compares with its own LMS district by district. The plan may hold a sample of
the soak's districts (``fleet.floor_sample``); each night's wall time is kept so the soak can scale it up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from etl_project.soak.fleet import SoakDistrict
from etl_project.soak.stack import Stack, local_env

FLOOR_DATABASES = ("registry", "lms", "dagster")
INSTANCE_YAML = """# the soak's floor: Dagster's instance in the cluster's PostgreSQL, runs in-process
storage:
  postgres:
    postgres_url:
      env: DAGSTER_PG_URL
telemetry:
  enabled: false
"""


def floor_env(stack: Stack, work: Path, secret_key: str) -> dict[str, str]:
    """The floor's settings: the embedded default under ``work`` for a local soak; on a cluster, databases
    ``floor_*`` of its PostgreSQL (Dagster's through the same PgBouncer), and its S3 endpoint under
    another prefix, as the workers use them."""
    env = local_env(work, secret_key)
    if "LMS_URL" not in stack.env:  # the runs used the embedded default
        return env
    import psycopg

    cluster = stack.env
    server = cluster["LMS_URL"].rsplit("/", 1)[0]  # the registry and the LMS connect directly
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        for name in FLOOR_DATABASES:
            conn.execute(f'DROP DATABASE IF EXISTS "floor_{name}"')
            conn.execute(f'CREATE DATABASE "floor_{name}"')
    dagster_home = Path(env["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    archive_bucket = cluster["ETL_PROJECT_ARCHIVE"].removeprefix("s3://").split("/", 1)[0]
    return {
        **{k: v for k, v in cluster.items() if k.startswith(("AWS_", "ETL_PROJECT_S3_"))},
        **env,
        "ETL_PROJECT_REGISTRY_URL": f"{server}/floor_registry",
        "LMS_URL": f"{server}/floor_lms",
        "DAGSTER_PG_URL": cluster["DAGSTER_PG_URL"].rsplit("/", 1)[0] + "/floor_dagster",
        "ETL_PROJECT_ARCHIVE": f"s3://{archive_bucket}/floor",
    }


def plan_json(root: Path, dates: dict[int, str], fleet: list[SoakDistrict]) -> dict[str, object]:
    return {
        "root": str(root),
        "dates": {str(k): v for k, v in dates.items()},
        "districts": [{"id": d.id, "students": d.students, "kind": d.kind} for d in fleet],
    }


def run_floor(plan: dict[str, object], work: Path, env: dict[str, str]) -> dict[str, object]:
    """The floor in a child process with ``env`` (its own home); returns what it wrote."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "plan.json").write_text(json.dumps(plan))
    out = work / "floor.json"
    with open(work / "floor.log", "w") as log:
        subprocess.run([sys.executable, "-m", "etl_project.soak.floor", str(work / "plan.json"), str(out)],
                       env=env, stdout=log, stderr=subprocess.STDOUT, check=True)  # fmt: skip
    return json.loads(out.read_text())


def _execute(plan: dict[str, object]) -> dict[str, object]:
    from dagster import DagsterInstance

    from etl_project.instance import ensure_dagster_home
    from etl_project.lms.connect import open_backend
    from etl_project.partitions import DistrictNight
    from etl_project.registry import Registry
    from etl_project.registry.nights import NightStates
    from etl_project.settings import Settings
    from etl_project.soak.lms_rows import fingerprint
    from etl_project.soak.sources import soak_district
    from etl_project.sync import sync_night

    root = Path(str(plan["root"]))
    fleet = [SoakDistrict(**d) for d in plan["districts"]]  # type: ignore[union-attr]
    running = [d for d in fleet if d.runs]
    registry = Registry()
    for district in running:
        registry.add(soak_district(root, district), None, replace=True)
    settings = Settings.from_env()
    ensure_dagster_home(settings)
    walls: dict[str, list[float]] = {d.id: [] for d in running}
    started = time.perf_counter()
    with DagsterInstance.get() as instance:
        for night in ("1", "2"):
            for district in running:
                date = plan["dates"][night]  # type: ignore[index]
                begun = time.perf_counter()
                sync_night(DistrictNight(date, district.id), instance=instance, settle_seconds=0)
                walls[district.id].append(round(time.perf_counter() - begun, 3))
    wall = time.perf_counter() - started
    states = NightStates()
    backend = open_backend(settings.lms_url())
    return {
        "wall_s": round(wall, 3),
        "runs": 2 * len(running),
        "night_wall_s": walls,
        "states": {d.id: {n: _state(states, d.id, plan["dates"][n]) for n in ("1", "2")} for d in running},
        "lms": {d.id: fingerprint(backend, d.id) for d in running},
    }


def _state(states, district: str, date: str) -> str | None:
    record = states.get(district, date)
    return str(record.state) if record else None


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(_execute(plan)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
