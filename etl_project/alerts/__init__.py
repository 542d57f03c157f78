"""Alerts: one clear message per run failure, held night or missing drop, through pluggable notifiers."""

from etl_project.alerts.base import Alert, Notifier, NotifyError, send_all
from etl_project.alerts.resource import AlertsResource, build_alerts_resource
from etl_project.alerts.smtp import SmtpNotifier
from etl_project.alerts.webhook import WebhookNotifier

__all__ = [
    "Alert",
    "AlertsResource",
    "Notifier",
    "NotifyError",
    "SmtpNotifier",
    "WebhookNotifier",
    "build_alerts_resource",
    "send_all",
]
