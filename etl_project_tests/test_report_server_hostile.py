"""`serve-reports` against hostile input: links planted in the archive, and thousands of half-sent requests.

The server runs as a real subprocess (uvicorn) over a real synced archive; nothing is patched.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from etl_project_tests.report_server import ReportServer, http_get, serve_reports
from etl_project_tests.reports_helpers import NIGHT1, NIGHT2, sync_north_and_south

CANARY = "CANARY-91c2-root:x:0:0:root:/root:/bin/bash"
IDLE_CONNECTIONS = 2000


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """Synced for this module alone: its tests plant links in the archive."""
    return sync_north_and_south(tmp_path_factory.mktemp("hostile"))


def wait_for(condition, what: str, limit: float = 60.0):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def open_sockets(pid: int) -> int:
    return sum(1 for fd in os.scandir(f"/proc/{pid}/fd") if os.readlink(fd.path).startswith("socket:"))


def replace_with_link(path: Path, target: Path) -> None:
    path.unlink() if path.is_file() and not path.is_symlink() else shutil.rmtree(path)
    path.symlink_to(target, target_is_directory=target.is_dir())


def test_links_and_foreign_files_planted_in_the_archive_are_never_served(synced, tmp_path):
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text(CANARY + "\n")
    archive = synced.root / "archive"
    north, south = archive / "district=north", archive / "district=south"
    night2 = north / f"date={NIGHT2}"
    replace_with_link(night2 / "report.html", secret)
    replace_with_link(night2 / "rejects.csv", Path(f"../../district=south/date={NIGHT2}/rejects.csv"))
    shutil.copyfile(south / f"date={NIGHT2}" / "history.html", night2 / "history.tmp")
    os.replace(night2 / "history.tmp", night2 / "history.html")  # a regular file etl-project did not write
    replace_with_link(north / f"date={NIGHT1}", south / f"date={NIGHT1}")
    os.unlink(south / f"date={NIGHT2}" / "history.html")
    os.mkfifo(south / f"date={NIGHT2}" / "history.html")  # opening it to read would block

    with serve_reports(synced.env()) as server:
        for url in (
            server.url("north", f"date={NIGHT2}/report.html"),
            server.url("north", f"date={NIGHT2}/rejects.csv"),
            server.url("north", f"date={NIGHT2}/history.html"),
            server.url("north", f"date={NIGHT1}/report.html"),
            server.url("north", f"date={NIGHT1}/history.html"),
            server.url("north"),
            server.url("south", f"date={NIGHT2}/history.html"),
        ):
            status, _, body = http_get(url)
            assert status == 404, url
            assert CANARY.encode() not in body and b"South County" not in body
        status, _, body = http_get(server.url("south", f"date={NIGHT2}/report.html"))
        assert status == 200 and b"South County Schools" in body  # untouched pages are still served
        refused = 7  # each 404 above, the landing page included, meets a planted entry
        wait_for(lambda: sum("SECURITY" in line for line in server.log) >= refused, "the security warnings")
    text = "\n".join(server.log)
    assert f"district=north/date={NIGHT2}/report.html is a symbolic link" in text
    assert f"district=north/date={NIGHT1} is a symbolic link" in text
    assert f"district=north/date={NIGHT2}/history.html in the archive" in text and "not a file" in text
    assert f"district=south/date={NIGHT2}/history.html is a FIFO" in text
    assert CANARY not in text and str(secret) not in text
    assert "/d/<token>/" in text and server.url("north").split("/d/")[1] not in text


def address(server: ReportServer) -> tuple[str, int]:
    return "127.0.0.1", int(server.base.rsplit(":", 1)[1])


def _hold_half_sent(server: ReportServer, count: int) -> list[socket.socket]:
    """``count`` connections that start a request and never finish it (half a request line, or headers)."""
    held = []
    for i in range(count):
        s = socket.create_connection(address(server), timeout=30)
        s.sendall(b"GET /d/" if i % 2 else b"GET /d/x/ HTTP/1.1\r\nHost: reports\r\n")
        held.append(s)
    return held


def _closed_by_server(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_thousands_of_half_sent_requests_neither_block_nor_grow_threads(synced):
    with serve_reports(synced.env(), "--header-timeout", "10") as server:
        pid = server.process.pid
        held = _hold_half_sent(server, IDLE_CONNECTIONS)
        try:
            wait_for(lambda: open_sockets(pid) > IDLE_CONNECTIONS, "the server to accept every connection")
            status, _, body = http_get(server.url("south", f"date={NIGHT2}/report.html"))
            assert status == 200 and b"South County Schools" in body
            assert threads_of(pid) <= 16, threads_of(pid)  # one event loop plus a bounded pool, not one each

            with socket.create_connection(address(server), timeout=30) as oversized:
                oversized.sendall(b"GET / HTTP/1.1\r\nX-Padding: " + b"a" * 64 * 1024)
                assert oversized.recv(64).startswith(b"HTTP/1.1 4")  # the header limit ends it at once

            wait_for(lambda: all(_closed_by_server(s) for s in held), "the header timeout to close them all")
            assert http_get(server.url("south", f"date={NIGHT1}/history.html"))[0] == 200
            assert threads_of(pid) <= 16
        finally:
            for s in held:
                s.close()
