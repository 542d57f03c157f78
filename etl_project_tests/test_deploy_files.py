"""deploy/: the Helm values and the ConfigMap parse, and say what the local cluster's dagster.yaml says (the
same per-district run limit, run retries and run monitoring), so the two deployments do not drift apart."""

from __future__ import annotations

from pathlib import Path

import yaml

from etl_project.cluster.config import MAX_RUNTIME_SECONDS, dagster_yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_helm_values_match_the_local_cluster_instance():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    local = yaml.safe_load(dagster_yaml(max_concurrent_runs=4))

    queue = values["dagsterDaemon"]["runCoordinator"]
    assert queue["type"] == "QueuedRunCoordinator" and queue["enabled"]
    limits = queue["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert limits == local["concurrency"]["runs"]["tag_concurrency_limits"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runMonitoring"]["maxRuntimeSeconds"] == MAX_RUNTIME_SECONDS
    retries = values["dagsterDaemon"]["runRetries"]
    assert retries["maxRetries"] == local["run_retries"]["max_retries"]
    assert retries["retryOnAssetOrOpFailure"] is local["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlPassword"] == ""
    for daemon in ("sensors", "schedules"):  # run creation in parallel, in both deployments
        helm, ours = values["dagsterDaemon"][daemon], local[daemon]
        assert (helm["useThreads"], helm["numSubmitWorkers"]) == (
            ours["use_threads"],
            ours["num_submit_workers"],
        )
    code = values["dagster-user-deployments"]["deployments"][0]
    assert code["codeServerArgs"][:2] == ["-m", "etl_project.definitions"]


def test_the_local_instance_uses_postgres_celery_and_the_queue():
    local = yaml.safe_load(dagster_yaml(max_concurrent_runs=4))
    assert local["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert local["run_launcher"]["class"] == "CeleryRunLauncher"
    assert local["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert local["concurrency"]["runs"]["max_concurrent_runs"] == 4


def test_config_map_holds_no_secret():
    config = yaml.safe_load((DEPLOY / "helm" / "etl-project-config.yaml").read_text())
    assert config["kind"] == "ConfigMap"
    assert not {
        "LMS_URL",
        "ETL_PROJECT_REGISTRY_URL",
        "ETL_PROJECT_SECRET_KEY",
        "AWS_SECRET_ACCESS_KEY",
    } & set(config["data"])


def test_dockerfile_serves_the_code_location_as_the_cluster_does():
    text = (DEPLOY / "Dockerfile").read_text()
    assert '"code-server", "start"' in text and '"etl_project.definitions"' in text
    assert "USER etl" in text and "pip install ." in text
