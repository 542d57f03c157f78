"""Test a district's connection step by step: connect, host key, login, list drops, download the newest
drop, validate it. ``etl-project districts test`` prints these steps; the portal shows them one by one.

Secrets never appear in a step: messages come from the sources' own secret-free exceptions, and data holds
only fingerprints, paths, sizes and the drop's report. A host key is pinned only when ``confirm`` accepts
the key the server presents (an admin compared the fingerprint)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl_project.districts import District
from etl_project.registry.hostkey import ServerKey, normalize_fingerprint
from etl_project.registry.nights import NightStates
from etl_project.scratch import scratch_dir

NO_DROP = (
    "No complete drop yet: a drop needs manifest.csv and every file it lists, in a dated folder "
    "(2026-11-28/), a dated zip, or the folder itself. Nothing to check."
)

Confirm = Callable[[ServerKey], bool]


@dataclass(frozen=True)
class Step:
    """One step's result: ``name`` is connect | host_key | login | list_drops | download | validate."""

    name: str
    ok: bool
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    report: Any = None  # the newest drop's check-drop report (validate step)

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "ok": self.ok, "message": self.message, "data": self.data}
        if self.report is not None:
            out["report"] = self.report.to_json()
        return out


def server_command(key: ServerKey) -> str:
    """The one-line command that prints the same fingerprint on the district's server."""
    return f"ssh-keygen -lf /etc/ssh/ssh_host_{key.key_type.removeprefix('ssh-').split('-')[0]}_key.pub"


def confirmed_fingerprint(given: str | None) -> Confirm:
    """A ``confirm`` for a fingerprint the admin typed or clicked: the key is accepted only if it matches."""
    return lambda key: bool(given) and normalize_fingerprint(given) == normalize_fingerprint(key.fingerprint)


def newest_drop(drops):
    """The newest complete drop: the latest dated one, or the undated folder if its files are newer."""
    dated = [d for d in drops if d.dated]
    current = [d for d in drops if not d.dated]
    newest = max(dated, key=lambda d: (d.night or "", d.location)) if dated else None
    if current:
        cur = current[-1]
        if newest is None or max(f.mtime for f in cur.files) > max(f.mtime for f in newest.files):
            newest = cur
    return newest


def connection_steps(
    district: District,
    credentials,
    *,
    confirm: Confirm,
    pin: Callable[[str], None],
    pinned_at: str | None = None,
    guard_hosts: bool = False,
) -> Iterator[Step]:
    """The steps in order; the iteration stops after the first failing step. ``pin(key_line)`` stores a
    confirmed key; ``guard_hosts`` checks a tenant's host before anything connects (``ssrf``)."""
    from etl_project.registry import with_pinned_key

    src = district.source
    kind = getattr(src, "kind", "")
    address = None
    if guard_hosts and kind in ("sftp", "rest"):
        step, address = _guard_step(src)
        yield step
        if not step.ok:
            return
    if kind == "sftp":
        steps = list(_host_key_steps(src, confirm, pin, pinned_at, address))
        yield from steps
        if not steps[-1].ok:
            return
        if "key_line" in steps[-1].data:
            district = with_pinned_key(district, steps[-1].data.pop("key_line"))
    yield from _source_steps(district, credentials)


def _guard_step(src) -> tuple[Step, str | None]:
    from etl_project.portal_services.ssrf import UnsafeHost, check_host, check_url

    try:
        if src.kind == "sftp":
            addresses = check_host(src.host, src.port)
        else:
            addresses = [a for url in (src.base_url, src.token_url) if url for a in check_url(url)]
    except UnsafeHost as exc:
        return Step("connect", False, str(exc)), None
    where = src.host if src.kind == "sftp" else src.base_url
    return Step(
        "connect", True, f"{where} resolves to a public address", {"addresses": addresses}
    ), addresses[0]


def _host_key_steps(src, confirm: Confirm, pin, pinned_at: str | None, address: str | None) -> Iterator[Step]:
    from etl_project.registry.hostkey import pinned_fingerprints, scan_host_key
    from etl_project.sources import SourceError

    if src.host_key:
        fps = pinned_fingerprints(src.host_key)
        yield Step("host_key", True, f"pinned {', '.join(fps)} on {pinned_at}", {"fingerprints": fps})
        return
    try:
        key = scan_host_key(src.host, src.port, address=address)
    except SourceError as exc:
        yield Step("connect", False, str(exc))
        return
    yield Step("connect", True, f"{src.host}:{src.port} answered with an SSH host key")
    data = {"key_type": key.key_type, "fingerprint": key.fingerprint, "server_command": server_command(key)}
    if not confirm(key):
        yield Step("host_key", False, f"host key {key.fingerprint} not confirmed; nothing was pinned", data)
        return
    pin(key.openssh)
    yield Step(
        "host_key", True, f"pinned {key.fingerprint}", {**data, "pinned": True, "key_line": key.openssh}
    )


def _source_steps(district: District, credentials) -> Iterator[Step]:
    from etl_project.sources import SourceConfigError, SourceError, open_source

    try:
        source = open_source(district, credentials)
    except SourceConfigError as exc:
        yield Step("settings", False, str(exc))
        return
    with source:
        steps, drops = _list(district, source)
        yield from steps
        if not steps[-1].ok:
            return
        newest = newest_drop(drops)
        with scratch_dir(f"districts-test-{district.id}") as scratch:
            try:
                fetched = source.fetch(newest, scratch)
            except SourceError as exc:
                yield Step("download", False, f"Download of {newest.location} FAILED: {exc}")
                return
            files = {"location": newest.location, "files": len(fetched)}
            yield Step("download", True, f"downloaded {len(fetched)} file(s) of {newest.location}", files)
            target = Path(fetched[0].local_path) if newest.kind == "zip" else Path(scratch)
            yield _validate(target, newest.location)


def _list(district: District, source) -> tuple[list[Step], list]:
    """Log in and list the drops: the login step (remote sources) and the list step, or the failing one."""
    from etl_project import sources as s

    remote = getattr(district.source, "kind", "") != "local"
    try:
        drops = source.list_drops()
    except s.HostKeyMismatch as exc:
        return [Step("host_key", False, str(exc), {"changed": True, "offered": exc.offered})], []
    except s.HostKeyRefused as exc:
        return [Step("host_key", False, str(exc))], []
    except s.SourceAuthenticationFailed as exc:
        return [Step("login", False, str(exc))], []
    except s.SourceConfigError as exc:
        return [Step("settings", False, str(exc))], []
    except s.DropNotFound as exc:
        return [Step("login", True, "logged in"), Step("list_drops", False, f"NOT FOUND: {exc}")], []
    except s.SourceError as exc:
        return [Step("connect", False, str(exc))], []
    from etl_project.automation.nights import night_of_listing

    listed = [_drop_json(d) for d in drops]
    data = {"path": source.info.path, "drops": listed}
    if drops:
        data["newest_night"] = max(night_of_listing(district, d) for d in drops)
    found = Step("list_drops", bool(drops), f"{len(drops)} complete drop(s)" if drops else NO_DROP, data)
    return ([Step("login", True, "logged in")] if remote else []) + [found], drops


def record_listing(states: NightStates, district_id: str, step: Step) -> None:
    """A test that listed the drops (even none) reached the source: recorded as a successful poll, as the
    sensor records one, so the district shows reachable and its newest drop right after onboarding."""
    if step.name == "list_drops" and "drops" in step.data:
        states.record_poll(district_id, newest_drop=step.data.get("newest_night"))


def _drop_json(d) -> dict[str, Any]:
    return {
        "night": d.night if d.dated else "current",
        "kind": d.kind,
        "location": d.location,
        "files": len(d.files),
        "bytes": d.total_bytes,
    }


VERDICTS = {
    0: "Setup OK: we can log in, and the newest drop loads cleanly.",
    1: "Setup works, but the newest drop has rejected rows or files (listed above).",
    2: "Setup works, but the newest drop cannot be loaded at all (see above).",
}


def _validate(target: Path, location: str) -> Step:
    from etl_project.oneroster import check_drop

    report = check_drop(target)
    code = report.exit_code()
    return Step(
        "validate", code == 0, VERDICTS[code], {"exit_code": code, "location": location}, report=report
    )
