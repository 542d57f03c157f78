"""The portal's Test connection: the same steps as `etl-project districts test`, one result per step, against
the real asyncssh SFTP server and the real registry. The tenant's host is checked before anything connects;
the key is pinned only once a matching fingerprint is confirmed; no step carries a secret."""

from __future__ import annotations

import json
from pathlib import Path

from etl_project.generate import generate_drop
from etl_project.portal_services.onboarding import confirmed_fingerprint, connection_steps
from etl_project.portal_services.ssrf import ALLOW_ENV
from etl_project.registry import Registry
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD
from etl_project_tests.test_cli_districts import add_sftp, fingerprint, home

__all__ = ["home"]


def steps(registry: Registry, given: str | None, guard: bool = True) -> list:
    entry = registry.entry("lincoln")
    return list(
        connection_steps(
            entry.district,
            registry.credentials("lincoln"),
            confirm=confirmed_fingerprint(given),
            pin=lambda line: registry.pin_host_key("lincoln", line),
            pinned_at=entry.host_key_pinned_at,
            guard_hosts=guard,
        )
    )


def test_steps_refuse_loopback_then_show_the_key_then_pin_only_when_confirmed(
    home, capsys, monkeypatch, sftp_server
):
    generate_drop(Path(sftp_server.root) / "outbox" / "2026-11-28", 20, seed=3, with_errors=2)
    assert add_sftp(capsys, monkeypatch, sftp_server)[0] == 0
    registry = Registry()
    monkeypatch.delenv(ALLOW_ENV, raising=False)

    (refused,) = steps(registry, None)
    assert (refused.name, refused.ok) == ("connect", False) and "loopback" in refused.message
    assert not sftp_server._conns  # nothing connected to the refused host

    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1/32")
    fp = fingerprint(sftp_server)
    *_, unconfirmed = steps(registry, "SHA256:not-the-key")
    assert (unconfirmed.name, unconfirmed.ok) == ("host_key", False)
    assert unconfirmed.data["fingerprint"] == fp and "ssh-keygen -lf" in unconfirmed.data["server_command"]
    assert registry.get("lincoln").source.host_key == ""

    done = steps(registry, fp)
    assert [s.name for s in done] == [
        "connect",
        "connect",
        "host_key",
        "login",
        "list_drops",
        "download",
        "validate",
    ]
    assert all(s.ok for s in done[:-1]) and done[2].data["pinned"]
    assert registry.get("lincoln").source.host_key == sftp_server.host_key_openssh
    assert done[4].data["drops"][0]["location"] == "/outbox/2026-11-28"
    validate = done[-1]
    assert not validate.ok and validate.data["exit_code"] == 1  # two bad rows
    files = validate.to_json()["report"]["files"]
    assert sum(f["rejected"] for f in files.values()) == 2
    text = json.dumps([s.to_json() for s in done])
    assert SFTP_PASSWORD not in text

    again = steps(registry, None)  # pinned: no confirmation needed, the pin is used
    assert again[1].name == "host_key" and again[1].ok and fp in again[1].message
