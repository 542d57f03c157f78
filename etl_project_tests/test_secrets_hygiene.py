"""No secret in any log line, event, metadata or exception of a full run over the real SFTP server."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from dagster import build_sensor_context
from dagster_shared.serdes import serialize_value

from etl_project.automation.sensors import build_new_drop_sensor
from etl_project_tests.automation import (
    make_defs,
    night,
    registry_home,
    write_districts,
    write_oneroster_drop,
)
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD

__all__ = ["registry_home"]  # the fixture

PW_ENV = "HYGIENE_TEST_SFTP_PASSWORD"
WRONG_PASSWORD = "Wr0ng-but-still-secret-4471"


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def everything_recorded(instance, run_id: str) -> str:
    """Every event of the run (messages, metadata, error infos with stack text) plus every file the instance
    wrote (event log databases, captured compute logs)."""
    parts = [serialize_value(record) for record in instance.all_logs(run_id)]
    for folder, _, files in os.walk(instance.root_directory):
        for name in files:
            parts.append(Path(folder, name).read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def test_no_secret_leaks_from_a_full_sensor_and_run_cycle(
    tmp_path, instance, sftp_server, monkeypatch, capfd, registry_home
):
    monkeypatch.setenv(PW_ENV, SFTP_PASSWORD)
    write_oneroster_drop(Path(sftp_server.root) / "outbox" / night(1))
    base = sftp_server.district()
    district = dataclasses.replace(base, source=dataclasses.replace(base.source, password_env=PW_ENV))
    districts = write_districts(tmp_path, [district])
    defs = make_defs(tmp_path)

    # The sensor logs in with the password to list the drops.
    ctx = build_sensor_context(instance=instance, resources={"districts": districts})
    tick_log = Collect()
    ctx.log.addHandler(tick_log)
    tick = build_new_drop_sensor()(ctx)
    (request,) = tick.run_requests
    for add in tick.dynamic_partitions_requests:
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))

    # A full run that logs in with the password, archives and loads the drop (no 10 s settle wait in tests).
    assert request.tags["etl_project/trigger"] == "first_sync" and request.run_config == {}
    no_settle = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}
    ok = defs.resolve_job_def("nightly_sync").execute_in_process(
        partition_key=request.partition_key,
        run_config=no_settle,
        tags=request.tags,
        instance=instance,
        raise_on_error=False,
    )
    assert ok.success, "the password really was used: the run logged in and archived the drop"

    # A run whose password is refused: the error names the user and host, never the password tried.
    monkeypatch.setenv(PW_ENV, WRONG_PASSWORD)
    refused = defs.resolve_job_def("nightly_sync").execute_in_process(
        partition_key=request.partition_key,
        run_config=request.run_config,
        instance=instance,
        raise_on_error=False,
    )
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    assert (
        "refused the password for alice@127.0.0.1" in failure.step_failure_data.user_failure_data.description
    )

    captured = capfd.readouterr()
    haystack = "\n".join(
        [
            everything_recorded(instance, ok.run_id),
            everything_recorded(instance, refused.run_id),
            *tick_log.lines,
            serialize_value(tick.run_requests),
            tick.cursor or "",
            captured.out,
            captured.err,
        ]
    )
    assert "refused the password" in haystack and "Fetched" in haystack  # the scan sees logs and errors
    assert SFTP_PASSWORD not in haystack
    assert WRONG_PASSWORD not in haystack
