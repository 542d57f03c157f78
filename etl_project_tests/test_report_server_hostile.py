"""`serve-reports` against hostile input: links planted in the archive, and thousands of half-sent requests.

The server runs as a real subprocess (uvicorn) over a real synced archive; nothing is patched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from etl_project_tests.hostile_clients import survive_idle_connections, wait_for
from etl_project_tests.report_server import ReportServer, http_get, serve_reports
from etl_project_tests.reports_helpers import NIGHT1, NIGHT2, sync_north_and_south

CANARY = "CANARY-91c2-root:x:0:0:root:/root:/bin/bash"


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """Synced for this module alone: its tests plant links in the archive."""
    return sync_north_and_south(tmp_path_factory.mktemp("hostile"))


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


def test_thousands_of_half_sent_requests_neither_block_nor_grow_threads(synced):
    with serve_reports(synced.env(), "--header-timeout", "10") as server:

        def answered(rest: str) -> bool:
            status, _, body = http_get(server.url("south", rest))
            return status == 200 and b"South County Schools" in body

        survive_idle_connections(
            server.process.pid, address(server), "/d/x/", lambda: answered(f"date={NIGHT2}/report.html")
        )
        assert answered(f"date={NIGHT1}/history.html")
