"""Email notifier over SMTP (smtplib), with optional STARTTLS and login."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from etl_project.alerts.base import Alert, Notifier, NotifyError


class SmtpNotifier(Notifier):
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ):
        if not recipients:
            raise ValueError("email alerts need at least one recipient (ETL_PROJECT_ALERT_SMTP_TO)")
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.username, self._password = username, password
        self.starttls, self.ca_file, self.timeout = starttls, ca_file, timeout

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.host}:{self.port}, to={len(self.recipients)} recipient(s))"

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(alert.text)
        return msg

    def send(self, alert: Alert) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(self.message(alert))
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(f"the SMTP server refused the login ({exc.smtp_code})") from None
        except smtplib.SMTPException as exc:
            raise NotifyError(f"SMTP error at {self.host}:{self.port} ({type(exc).__name__})") from None
        except (OSError, ssl.SSLError) as exc:
            raise NotifyError(
                f"cannot reach SMTP server {self.host}:{self.port} ({type(exc).__name__})"
            ) from None
