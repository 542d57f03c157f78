"""The services behind the district portal's pages, as plain Python (no web code): onboarding steps
(``onboarding``), the tenant host guard (``ssrf``), Sync now and Release (``sync_now``), run progress
(``run_progress``), and dashboard facts (``dashboard``, ``trace_search``, ``rejects_export``).

The CLI calls the same functions where it does the same thing; see docs/portal-services.md."""
