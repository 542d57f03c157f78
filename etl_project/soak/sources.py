"""The soak's districts in the registry: a local folder each, except the two kinds whose server fails.

``unreachable`` districts point at an SFTP port nobody listens on (connection refused at once);
``refused_login`` districts at a real OpenSSH sshd (``etl_project.devservers.sshd``) with a key it does not
authorize. Both fail in the sensor's poll exactly as a district's server would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from etl_project.devservers import free_port
from etl_project.devservers.sshd import SshdServer
from etl_project.districts import District, LocalSource, SftpSource
from etl_project.registry import Registry
from etl_project.soak.drops import district_folder
from etl_project.soak.fleet import REFUSED_LOGIN, THRESHOLDS_HOLD, UNREACHABLE, SoakDistrict

NO_DEACTIVATION = {"deactivate": 0}  # any deactivation holds the night


def unauthorized_key(work: Path) -> Path:
    """An ed25519 key sshd has never seen: logging in with it is refused."""
    key = work / "unauthorized_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def soak_district(root: Path, district: SoakDistrict, sshd: SshdServer | None = None) -> District:
    """The registry entry of a soak district (``sshd``: the server both failing SFTP kinds pin)."""
    if district.kind in (UNREACHABLE, REFUSED_LOGIN):
        assert sshd is not None, "the failing SFTP kinds need the sshd"
    if district.kind == UNREACHABLE:
        source = SftpSource(host="127.0.0.1", port=free_port(), username="soak", remote_dir="/outbox",
                            host_key=sshd.host_key_line)  # fmt: skip
    elif district.kind == REFUSED_LOGIN:
        source = SftpSource(host=sshd.host, port=sshd.port, username=sshd.username, remote_dir="/outbox",
                            host_key=sshd.host_key_line)  # fmt: skip
    else:
        folder = district_folder(root, district.id)
        folder.mkdir(parents=True, exist_ok=True)
        source = LocalSource(path=str(folder))
    thresholds = NO_DEACTIVATION if district.kind == THRESHOLDS_HOLD else {}
    return District(district.id, district.id.title(), source, thresholds=thresholds)


def register(
    root: Path, fleet: list[SoakDistrict], sshd: SshdServer, registry: Registry | None = None
) -> None:
    """Every soak district in the registry (replacing a previous soak's entry of the same id)."""
    registry = registry or Registry()
    bad_key = unauthorized_key(root)
    for district in fleet:
        # The failing SFTP kinds hold a real (unauthorized) key, stored encrypted like any district's, so the
        # poll fails on the connection or the login, not on a missing credential.
        secrets = (
            {"private_key": bad_key.read_text()} if district.kind in (UNREACHABLE, REFUSED_LOGIN) else None
        )
        registry.add(soak_district(root, district, sshd), secrets, replace=True)
