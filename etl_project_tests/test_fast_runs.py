"""Small district-nights cost their data work: a launched run's steps share the run worker's process, and a
run the new-drop sensor requested waits no second settle window."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from dagster import DagsterEventType, execute_job, reconstructable

from etl_project.drop_settle import (
    FINGERPRINT_TAG,
    STABLE_SINCE_TAG,
    remaining_settle_seconds,
    stable_since_tags,
)
from etl_project.generate import generate_drop
from etl_project.partitions import DistrictNight
from etl_project.portal_services.sync_now import partition_tags
from etl_project.sources.local import LocalDropSource
from etl_project_tests.automation import local_district, make_defs, night, registry_home, write_districts

__all__ = ["registry_home"]  # pytest fixture, used by name

FETCH = "fetch_and_archive_drop"
WAITING = re.compile(r"waiting ([0-9.]+) s for the drop to settle")


def _nightly_sync():
    return make_defs(Path(os.environ["ETL_PROJECT_HOME"])).resolve_job_def("nightly_sync")


def _district(home: Path, tmp_path: Path) -> tuple[DistrictNight, str]:
    """A small generated district with a local drop folder; returns its night and its drop's fingerprint."""
    folder = tmp_path / "dropbox"
    generate_drop(folder / night(1), 40, seed=3, district_id="small")
    write_districts(home, [local_district("small", folder)])
    fingerprint = LocalDropSource(folder).find_drop(night(1), settle_seconds=0).fingerprint
    return DistrictNight(night(1), "small"), fingerprint


def _launch(instance, dn: DistrictNight, tags: dict[str, str]):
    """The run as the daemon's run worker executes it: with the job's own executor. Dagster caches the
    reconstructed job per process, so one test of this module launches (the others execute in process)."""
    instance.add_dynamic_partitions("districts", [dn.district])
    return execute_job(reconstructable(_nightly_sync), instance=instance, tags={**partition_tags(dn), **tags})


def _messages(instance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id)]


def test_a_launched_run_keeps_its_steps_in_one_process_with_every_materialization_and_check(
    registry_home, tmp_path, instance
):
    dn, fingerprint = _district(registry_home, tmp_path)
    job = _nightly_sync()
    # the sensor saw this drop an hour ago: the default 10 s settle window is long proven
    with _launch(instance, dn, stable_since_tags(fingerprint, time.time() - 3600)) as result:
        assert result.success
        steps = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_START]
        materialized = {e.asset_key for e in result.all_events if e.is_step_materialization}
        checked = [
            e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        run_id = result.run_id

    assert len(steps) >= 5 and {e.pid for e in steps} == {os.getpid()}, "every step in the run's process"
    # what the UI shows is unchanged: every asset of the job materialized, every check evaluated, once
    assert materialized == set(job.asset_layer.executable_asset_keys)
    expected_checks = set(job.asset_layer.asset_graph.asset_check_keys)
    assert sorted(c.asset_check_key for c in checked) == sorted(expected_checks)
    assert not any(WAITING.search(m) for m in _messages(instance, run_id)), "no second settle wait"


def test_a_first_sync_run_waits_only_what_is_left_of_the_settle_window(registry_home, tmp_path, instance):
    dn, fingerprint = _district(registry_home, tmp_path)
    settle = 600.0
    config = {"ops": {FETCH: {"config": {"settle_seconds": settle}}}}
    seen = stable_since_tags(fingerprint, time.time() - (settle - 10))  # the sensor saw it 590 s ago
    instance.add_dynamic_partitions("districts", [dn.district])
    result = _nightly_sync().execute_in_process(
        partition_key=dn.key, run_config=config, tags=seen, instance=instance
    )
    assert result.success
    waits = [float(m[1]) for m in map(WAITING.search, _messages(instance, result.run_id)) if m]
    # at most the 10 s left (none if the step started later than that on a busy machine), never the window
    assert waits == [] or (len(waits) == 1 and 0 < waits[0] <= 10), waits


def test_the_window_counts_from_the_sensor_only_for_the_same_drop():
    fp = "a" * 64
    hour_ago = stable_since_tags(fp, 1_000.0)
    assert remaining_settle_seconds(hour_ago, fp, 10, now=4_600.0) == 0
    assert remaining_settle_seconds(hour_ago, fp, 10, now=1_004.0) == 6
    # another drop than the sensor saw, no sensor tags (a manual sync), a clock set back: the whole window
    assert remaining_settle_seconds(hour_ago, "b" * 64, 10, now=4_600.0) == 10
    assert remaining_settle_seconds({}, fp, 10, now=4_600.0) == 10
    assert remaining_settle_seconds({FINGERPRINT_TAG: fp[:24]}, fp, 10, now=4_600.0) == 10
    assert remaining_settle_seconds({**hour_ago, STABLE_SINCE_TAG: "x"}, fp, 10, now=4_600.0) == 10
    assert remaining_settle_seconds(hour_ago, fp, 10, now=900.0) == 10
