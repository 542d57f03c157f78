"""Webhook notifier: HTTP POST of the alert as JSON (chat tools, incident tools, a small relay)."""

from __future__ import annotations

import urllib.error
import urllib.request

from etl_project.alerts.base import Alert, Notifier, NotifyError


class WebhookNotifier(Notifier):
    """The URL often embeds a token (chat webhooks): it is never logged or put in an error."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 15.0):
        if not url.startswith(("https://", "http://")):
            raise ValueError(
                "the alert webhook URL must start with https:// (or http:// on a private network)"
            )
        self._url, self.timeout = url, timeout

    def __repr__(self) -> str:
        return "WebhookNotifier(url=<hidden>)"

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self._url,
            data=alert.to_bytes(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "etl-project-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"the webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotifyError(f"the webhook could not be reached ({type(reason).__name__})") from None
