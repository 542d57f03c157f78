"""Real servers as fixtures: each lives in its own module under ``fixtures/``."""

pytest_plugins = [
    "etl_project_tests.fixtures.sftp",
    "etl_project_tests.fixtures.s3",
    "etl_project_tests.fixtures.oneroster_rest",
    "etl_project_tests.fixtures.oneroster_rest_examples",
    "etl_project_tests.fixtures.postgres",
    "etl_project_tests.fixtures.dagster_instance",
]
