"""A district admin's whole path, as one story: add (encrypted credentials) -> test (pin the host key) ->
the new-drop sensor registers the district and requests its first sync -> that run lands in the LMS.

Real SFTP server (asyncssh), the real registry, a real Dagster instance; the sensor is evaluated without a
daemon and its requests are applied the way the daemon applies them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dagster import build_sensor_context

from etl_project.automation.sensors import build_new_drop_sensor
from etl_project.generate import generate_drop
from etl_project.partitions import DISTRICTS_PARTITION
from etl_project.resources import build_resources
from etl_project.settings import Settings
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD
from etl_project_tests.test_cli_districts import add_sftp, fingerprint, home, run

__all__ = ["home"]  # the fixture: a fresh ETL_PROJECT_HOME with a secret key

NIGHT = "2026-11-28"


def test_register_test_pin_then_the_sensor_starts_the_first_sync(
    home, capsys, monkeypatch, sftp_server, instance, caplog
):
    generate_drop(Path(sftp_server.root) / "outbox" / NIGHT, 120, seed=11)

    code, out = add_sftp(capsys, monkeypatch, sftp_server)
    assert code == 0, out
    code, out = run(
        capsys, monkeypatch, "districts", "test", "lincoln", "--trust-host-key", fingerprint(sftp_server)
    )
    assert code == 0, out
    assert "Host key: pinned" in out and "Setup OK" in out

    from etl_project.definitions import defs

    resources = build_resources(Settings.from_env())
    sensor = build_new_drop_sensor()
    ctx = build_sensor_context(instance=instance, resources={"districts": resources["districts"]})
    result = sensor(ctx)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does with them
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert instance.has_dynamic_partition(DISTRICTS_PARTITION, "lincoln")
    (request,) = result.run_requests
    assert request.partition_key == f"{NIGHT}|lincoln"

    job = defs.resolve_job_def("nightly_sync")
    run_result = job.execute_in_process(
        partition_key=request.partition_key,
        run_config={"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}},
        tags=request.tags,
        instance=instance,
        resources=resources,
    )
    assert run_result.success

    lms = Settings.from_env().lms_default_url.removeprefix("sqlite:///")
    with sqlite3.connect(lms) as conn:
        users = conn.execute("select count(*) from users where district = 'lincoln' and active").fetchone()[0]
    assert users > 120

    logs = "\n".join(repr(e) for e in instance.all_logs(run_result.run_id))
    assert SFTP_PASSWORD not in logs and SFTP_PASSWORD not in caplog.text and SFTP_PASSWORD not in out
