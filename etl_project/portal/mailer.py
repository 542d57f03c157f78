"""Sending a one-time link: by e-mail through the project's SMTP settings (the alerts' variables,
``ETL_PROJECT_ALERT_SMTP_HOST`` and friends: see etl_project/alerts/resource.py), or, when no SMTP server is
configured (the embedded default), printed on the portal's standard output for the operator to pass on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from etl_project.alerts.base import NotifyError
from etl_project.alerts.smtp import SmtpNotifier

PREFIX = "ETL_PROJECT_ALERT_"


@dataclass(frozen=True)
class Mail:
    """What SmtpNotifier.message reads: a subject and a text."""

    subject: str
    text: str


def _true(value: str | None) -> bool:
    return value in (None, "") or value.strip().lower() in ("1", "true", "yes", "on")


class LinkMailer:
    def __init__(self, env: Mapping[str, str] | None = None, out: Callable[[str], None] | None = None):
        self._env = dict(os.environ if env is None else env)
        self._out = out or (lambda line: print(line, flush=True))

    @property
    def smtp_configured(self) -> bool:
        return bool(self._env.get(PREFIX + "SMTP_HOST"))

    def _notifier(self, to: str) -> SmtpNotifier:
        env = self._env
        return SmtpNotifier(
            env[PREFIX + "SMTP_HOST"],
            int(env.get(PREFIX + "SMTP_PORT") or 587),
            env.get(PREFIX + "SMTP_FROM") or "etl-project@localhost",
            [to],
            username=env.get(PREFIX + "SMTP_USER") or None,
            password=env.get(PREFIX + "SMTP_PASSWORD") or None,
            starttls=_true(env.get(PREFIX + "SMTP_STARTTLS")),
            ca_file=env.get(PREFIX + "SMTP_CA_FILE") or None,
        )

    def send(self, to: str, subject: str, text: str, url: str) -> str:
        """Deliver ``url`` to ``to``: ``"sent"`` by e-mail, or ``"printed"`` on standard output.
        Raises NotifyError (one sentence, no secret) when the SMTP server refuses."""
        if not self.smtp_configured:
            self._out(f"portal: {subject} for {to} (no SMTP server configured, pass it on): {url}")
            return "printed"
        self._notifier(to).send(Mail(subject, f"{text}\n\n{url}\n"))  # type: ignore[arg-type]
        return "sent"


__all__ = ["LinkMailer", "NotifyError"]
