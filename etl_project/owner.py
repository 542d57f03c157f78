"""Which process owns something (a scratch folder, a Dagster run), and whether that process is gone.

An owner is a host name, a pid and the process's start time (from /proc, where there is one): the start time
tells a pid that was reused by a newer process from the original owner. Only owners on *this* host can be
judged; an owner on another host is never called dead.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path


def this_host() -> str:
    return socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc cannot tell)."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else ""


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: str = ""  # process_start(pid) when the owner was recorded; '' if unknown

    @classmethod
    def of(cls, pid: int | None = None) -> Owner:
        pid = os.getpid() if pid is None else pid
        return cls(host=this_host(), pid=pid, started=process_start(pid))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Owner:
        data = json.loads(text)
        return cls(host=str(data["host"]), pid=int(data["pid"]), started=str(data.get("started", "")))

    def is_here(self) -> bool:
        return self.host == this_host()

    def is_dead(self) -> bool:
        """True only when this owner is on this host and its process no longer runs (or is a zombie, or
        its pid now belongs to a newer process)."""
        if not self.is_here() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, another user's
        fields = _stat_fields(self.pid)
        if not fields:
            return False
        if fields[0] in ("Z", "X"):
            return True
        return bool(self.started) and len(fields) > 19 and fields[19] != self.started
