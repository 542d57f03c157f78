"""Retries over the real SFTP server: a changed host key fails once, a server that is down is retried."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import asyncssh
from dagster import Backoff, DagsterEventType, Jitter, RetryPolicy

from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project_tests.automation import (
    local_district,
    make_defs,
    night,
    write_districts,
    write_oneroster_drop,
)
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD, SftpTestServer

PW_ENV = "RETRY_TEST_SFTP_PASSWORD"
RUN_CONFIG = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}


def run_fetch(tmp_path, instance, district):
    write_districts(tmp_path, [district])
    instance.add_dynamic_partitions("districts", [district.id])
    return (
        make_defs(tmp_path)
        .resolve_job_def("nightly_sync")
        .execute_in_process(
            partition_key=f"{night(1)}|{district.id}",
            run_config=RUN_CONFIG,
            instance=instance,
            raise_on_error=False,
        )
    )


def step_events(result, event_type: DagsterEventType):
    return [
        e for e in result.all_events if e.event_type == event_type and e.step_key == "fetch_and_archive_drop"
    ]


def with_password_env(district):
    return dataclasses.replace(district, source=dataclasses.replace(district.source, password_env=PW_ENV))


def test_the_network_step_retries_with_exponential_backoff_and_jitter():
    policy = fetch_and_archive_drop.op.retry_policy
    assert policy is not None and policy.max_retries >= 2
    assert policy.backoff == Backoff.EXPONENTIAL and policy.jitter is not None and policy.delay >= 10


def test_a_changed_host_key_fails_once_without_retries(tmp_path, instance, sftp_server, monkeypatch):
    monkeypatch.setenv(PW_ENV, SFTP_PASSWORD)
    write_oneroster_drop(Path(sftp_server.root) / "outbox" / night(1))
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    district = with_password_env(sftp_server.district(host_key=other_key))

    result = run_fetch(tmp_path, instance, district)
    assert not result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    (failure,) = step_events(result, DagsterEventType.STEP_FAILURE)
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(f"HOST KEY CHANGED for 127.0.0.1:{sftp_server.port}")
    assert (
        "no credentials were sent" in description
        and "(not retried: fix the district's configuration)" in description
    )


def test_a_server_that_is_down_is_retried(tmp_path, instance, monkeypatch):
    monkeypatch.setenv(PW_ENV, SFTP_PASSWORD)
    root = tmp_path / "sftp-root"
    write_oneroster_drop(root / "outbox" / night(1))
    with SftpTestServer(root, {"alice": SFTP_PASSWORD}) as server:
        district = with_password_env(server.district())
    # The server is stopped now: the same step fails with a connection error, which is worth retrying. The
    # policy keeps its shape; only the delay is shortened so the test does not wait 30 s per attempt.
    fast = RetryPolicy(max_retries=2, delay=0.05, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
    monkeypatch.setattr(fetch_and_archive_drop.op, "_retry_policy", fast)

    result = run_fetch(tmp_path, instance, district)
    assert not result.success
    retries = step_events(result, DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == 2
    assert len(step_events(result, DagsterEventType.STEP_RESTARTED)) == 2
    (failure,) = step_events(result, DagsterEventType.STEP_FAILURE)
    assert f"cannot open an SSH session to 127.0.0.1:{server.port}" in str(failure.step_failure_data.error)


def test_a_missing_drop_fails_on_the_first_attempt_and_names_the_newest_one(tmp_path, instance, monkeypatch):
    dropbox = tmp_path / "dropbox"
    write_oneroster_drop(dropbox / night(3))
    (dropbox / night(1)).mkdir()  # tonight's folder exists but holds no manifest.csv: not a complete drop
    # Were it retried, this shortened policy would show the retries in the run's events.
    fast = RetryPolicy(max_retries=2, delay=0.05, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
    monkeypatch.setattr(fetch_and_archive_drop.op, "_retry_policy", fast)

    result = run_fetch(tmp_path, instance, local_district("lincoln", dropbox))
    assert not result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert step_events(result, DagsterEventType.STEP_RESTARTED) == []
    (failure,) = step_events(result, DagsterEventType.STEP_FAILURE)
    data = failure.step_failure_data.user_failure_data
    assert data.description.startswith(f"no complete drop for {night(1)} in {dropbox}; ")
    assert "has no manifest.csv" in data.description
    assert data.description.endswith(f"newest complete drop is {night(3)}")
    assert data.metadata["etl_project/night_state"].value == "missing"


def test_with_no_drop_at_all_the_sentence_says_so(tmp_path, instance):
    dropbox = tmp_path / "dropbox"
    result = run_fetch(tmp_path, instance, local_district("lincoln", dropbox))
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    (failure,) = step_events(result, DagsterEventType.STEP_FAILURE)
    assert failure.step_failure_data.user_failure_data.description == (
        f"no complete drop for {night(1)} in {dropbox}; there is no complete drop there at all"
    )
