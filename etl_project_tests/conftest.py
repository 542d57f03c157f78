"""Real servers as fixtures: each lives in its own module under ``fixtures/``."""

pytest_plugins = []
