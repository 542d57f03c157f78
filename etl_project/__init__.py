"""etl_project: nightly OneRoster roster sync for K-12 districts, built on Dagster."""
