"""The alert message and the notifier interface.

An alert names the district, the night, what happened and a link to the report, with counts only: it never
carries a student's name or id, a credential, a connection URL or a raw exception text (exceptions from
other libraries can quote data; only our own ``Failure`` descriptions, written to be safe, are passed on).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

KINDS = {
    "failed": "failed: nothing applied to the LMS",
    "blocked": "blocked: nothing applied to the LMS",
    "held": "held: nothing applied to the LMS",
    "deactivations_held": "deactivations held",
    "missing_drop": "drop missing",
}


class NotifyError(Exception):
    """A notifier could not deliver (message is secret-free: no URL, no password)."""


@dataclass(frozen=True)
class Alert:
    kind: str  # one of KINDS
    district: str
    night: str
    what: str  # one or two plain sentences
    district_name: str = ""
    details: dict[str, int | str] = field(default_factory=dict)  # counts and short labels only
    report_url: str | None = None
    dedupe_key: str = ""

    @property
    def subject(self) -> str:
        who = f"{self.district_name} ({self.district})" if self.district_name else self.district
        return f"[roster sync] {who}, night {self.night}: {KINDS.get(self.kind, self.kind)}"

    @property
    def text(self) -> str:
        who = f"{self.district_name} ({self.district})" if self.district_name else self.district
        lines = [
            f"District: {who}",
            f"Night: {self.night}",
            f"What happened: {self.what}",
        ]
        if self.details:
            lines.append("Details:")
            lines += [f"  {k}: {v}" for k, v in self.details.items()]
        lines.append(f"Report: {self.report_url}" if self.report_url else "Report: not available")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, object]:
        return {
            "event": self.kind,
            "district": self.district,
            "district_name": self.district_name,
            "night": self.night,
            "summary": self.subject,
            "what": self.what,
            "details": self.details,
            "report_url": self.report_url,
            "text": self.subject + "\n" + self.text,  # for chat webhooks that show a "text" field
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()


class Notifier(ABC):
    name: str = "notifier"

    @abstractmethod
    def send(self, alert: Alert) -> None:
        """Deliver the alert or raise NotifyError."""


def send_all(alert: Alert, notifiers: list[Notifier]) -> list[str]:
    """Send through every notifier; one failing does not stop the others. Returns the failures."""
    failures = []
    for n in notifiers:
        try:
            n.send(alert)
        except NotifyError as exc:
            failures.append(f"{n.name}: {exc}")
    return failures
