"""The multi-worker deployment on one machine (``etl-project cluster up|down``): PostgreSQL, Redis, an S3
endpoint, the code location as a gRPC server, the webserver and the daemon, and N Celery workers that each
run whole Dagster runs (``dagster_celery.CeleryRunLauncher``). See docs/deploy.md."""
