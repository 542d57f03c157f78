"""The district portal: a server-rendered web application over the registry (see docs/portal.md).

Accounts, sessions, one-time links, sign-in throttling and the audit log live in the registry database
(migration 0002); each concern has its own module. ``app.create_app`` wires them into a Starlette app that
``etl-project portal`` serves under uvicorn with the report server's limits.
"""
