"""``AlertsResource``: where alerts go, read from the environment (secrets handed to Dagster as ``EnvVar``).

| variable | meaning |
|---|---|
| ``ETL_PROJECT_ALERT_WEBHOOK_URL`` | POST each alert as JSON here (secret: chat webhook URLs embed a token) |
| ``ETL_PROJECT_ALERT_SMTP_HOST`` / ``_PORT`` (587) | email alerts through this SMTP server |
| ``ETL_PROJECT_ALERT_SMTP_FROM`` / ``_TO`` | sender, and comma-separated recipients |
| ``ETL_PROJECT_ALERT_SMTP_USER`` / ``_PASSWORD`` | SMTP login (the password is secret) |
| ``ETL_PROJECT_ALERT_SMTP_STARTTLS`` (true) / ``_CA_FILE`` | STARTTLS, and a CA bundle for a private relay |
| ``ETL_PROJECT_REPORTS_URL`` | public base URL of ``serve-reports`` (behind a proxy), for report links |
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from etl_project.alerts.base import Notifier
from etl_project.alerts.smtp import SmtpNotifier
from etl_project.alerts.webhook import WebhookNotifier

PREFIX = "ETL_PROJECT_ALERT_"


class AlertsResource(ConfigurableResource):
    webhook_url: str | None = Field(default=None, description="alert webhook (secret; use EnvVar)")
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str = "etl-project@localhost"
    smtp_to: str = Field(default="", description="comma-separated recipients")
    smtp_user: str | None = None
    smtp_password: str | None = Field(default=None, description="SMTP password (secret; use EnvVar)")
    smtp_starttls: bool = True
    smtp_ca_file: str | None = None
    reports_url: str | None = Field(default=None, description="public base URL of serve-reports")
    home: str = Field(default=".etl_project", description="ETL_PROJECT_HOME (holds the reports secret)")

    def notifiers(self) -> list[Notifier]:
        out: list[Notifier] = []
        if self.webhook_url:
            out.append(WebhookNotifier(self.webhook_url))
        if self.smtp_host:
            out.append(
                SmtpNotifier(
                    self.smtp_host,
                    self.smtp_port,
                    self.smtp_from,
                    [a.strip() for a in self.smtp_to.split(",") if a.strip()],
                    username=self.smtp_user,
                    password=self.smtp_password,
                    starttls=self.smtp_starttls,
                    ca_file=self.smtp_ca_file,
                )
            )
        return out


def _true(value: str | None, default: bool) -> bool:
    return default if value in (None, "") else value.strip().lower() in ("1", "true", "yes", "on")


def build_alerts_resource(env: Mapping[str, str] | None = None, home: str | None = None) -> AlertsResource:
    env = dict(os.environ if env is None else env)

    def secret(name: str):
        return EnvVar(PREFIX + name) if env.get(PREFIX + name) else None

    return AlertsResource(
        webhook_url=secret("WEBHOOK_URL"),
        smtp_host=env.get(PREFIX + "SMTP_HOST") or None,
        smtp_port=int(env.get(PREFIX + "SMTP_PORT") or 587),
        smtp_from=env.get(PREFIX + "SMTP_FROM") or "etl-project@localhost",
        smtp_to=env.get(PREFIX + "SMTP_TO", ""),
        smtp_user=env.get(PREFIX + "SMTP_USER") or None,
        smtp_password=secret("SMTP_PASSWORD"),
        smtp_starttls=_true(env.get(PREFIX + "SMTP_STARTTLS"), True),
        smtp_ca_file=env.get(PREFIX + "SMTP_CA_FILE") or None,
        reports_url=env.get("ETL_PROJECT_REPORTS_URL") or None,
        home=home or env.get("ETL_PROJECT_HOME", ".etl_project"),
    )
