"""Data-quality checks: rules as SQL (rules.py, lms_rules.py) and as Dagster asset checks (definitions.py)."""
