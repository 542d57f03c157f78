"""The Celery sweep's rules on a real instance: what the workers answered decides which STARTED runs are
lost (the live cluster test, test_cluster.py, kills a real worker; these cover every branch quickly)."""

from __future__ import annotations

from dagster import DagsterRunStatus
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from etl_project.cluster.config import WORKER_TAG
from etl_project.cluster.lost_runs import sweep_lost_runs
from etl_project_tests.automation import record_run


def _started(instance, task_id: str, worker: str | None) -> str:
    tags = {DAGSTER_CELERY_TASK_ID_TAG: task_id, **({WORKER_TAG: worker} if worker else {})}
    record_run(instance, "nightly_sync", DagsterRunStatus.STARTED, tags)
    return next(r.run_id for r in instance.get_runs() if r.tags.get(DAGSTER_CELERY_TASK_ID_TAG) == task_id)


def test_a_run_its_live_worker_no_longer_executes_is_failed_at_once(instance):
    running = _started(instance, "t-running", "w1@h")
    gone = _started(instance, "t-gone", "w1@h")
    sweep = sweep_lost_runs(instance, lambda: {"w1@h": {"t-running"}, "w2@h": set()}, {})
    assert sweep.lost == [gone] and sweep.suspects == {}
    assert instance.get_run_by_id(gone).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(running).status == DagsterRunStatus.STARTED
    messages = [e.message for e in instance.all_logs(gone) if e.dagster_event and e.dagster_event.is_failure]
    assert any("its worker (w1@h) no longer executes it" in m for m in messages)


def test_a_silent_worker_makes_its_run_a_suspect_first_and_lost_on_the_second_sweep(instance):
    run_id = _started(instance, "t-1", "w2@h")
    first = sweep_lost_runs(instance, lambda: {"w1@h": set()}, {})
    assert first.lost == [] and first.suspects == {run_id: 1}
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    answered = sweep_lost_runs(instance, lambda: {"w1@h": set(), "w2@h": {"t-1"}}, first.suspects)
    assert answered.lost == [] and answered.suspects == {}  # it answered, executing the task: cleared
    again = sweep_lost_runs(instance, lambda: {"w1@h": set()}, {})
    second = sweep_lost_runs(instance, lambda: {}, again.suspects)
    assert second.lost == [run_id]
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE


def _no_answer_expected() -> dict[str, set[str]]:
    raise AssertionError("the workers are asked only when a Celery run is in progress")


def test_runs_not_launched_through_celery_are_left_alone(instance):
    record_run(instance, "nightly_sync", DagsterRunStatus.STARTED, {})
    sweep = sweep_lost_runs(instance, _no_answer_expected, {})
    assert sweep.lost == [] and sweep.suspects == {} and sweep.workers == 0
    assert [r.status for r in instance.get_runs()] == [DagsterRunStatus.STARTED]
