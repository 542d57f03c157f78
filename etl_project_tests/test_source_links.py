"""Symbolic links and special files in a district's drop are refused, and nothing behind them is ever read.

Each test plants a secret file outside the district's folder holding ``CANARY`` and links the drop to it; the
canary must appear nowhere: not in errors, fetched files or check-drop's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl_project.oneroster import check_drop
from etl_project.sources import DropUnsafe, LocalDropSource, SftpCredentials, open_source
from etl_project_tests.drops import write_folder_drop, write_zip_drop
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD

NIGHT = "2026-11-28"
CANARY = "CANARY-7f3e9b-shadow-line"


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside every district folder, the kind a link would expose (like /etc/shadow)."""
    path = tmp_path / "elsewhere" / "shadow"
    path.parent.mkdir()
    path.write_text(f"{CANARY}:$6$salt$hash:19000:0:99999:7:::\n")
    return path


@pytest.fixture
def outbox(tmp_path) -> Path:
    path = tmp_path / "outbox"
    path.mkdir()
    return path


def files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def assert_unsafe(err: pytest.ExceptionInfo, entry: str, secret: Path) -> None:
    message = str(err.value)
    assert f"{entry} is a" in message and "SECURITY" in message, message
    assert CANARY not in message and str(secret) not in message and "elsewhere" not in message


# ------------------------------------------------------------------------------------------ local folder


def test_a_linked_csv_refuses_the_whole_drop(outbox, secret, tmp_path):
    folder = write_folder_drop(outbox / NIGHT)
    (folder / "orgs.csv").unlink()
    (folder / "orgs.csv").symlink_to(secret)
    source = LocalDropSource(outbox)
    with pytest.raises(DropUnsafe) as err:
        source.find_drop(NIGHT, settle_seconds=0)
    assert_unsafe(err, f"{NIGHT}/orgs.csv", secret)
    assert "symbolic link" in str(err.value)
    with pytest.raises(DropUnsafe):
        source.list_drops()


def test_a_linked_dated_folder_is_refused_not_loaded_as_this_district(outbox, secret, tmp_path):
    other = write_folder_drop(tmp_path / "other-district" / NIGHT)
    (other / "users.csv").write_text((other / "users.csv").read_text() + f"u9,,,true,org1,student,{CANARY}\n")
    (outbox / NIGHT).symlink_to(other, target_is_directory=True)
    with pytest.raises(DropUnsafe) as err:
        LocalDropSource(outbox).find_drop(NIGHT, settle_seconds=0)
    assert_unsafe(err, NIGHT, secret)
    assert "other-district" not in str(err.value)


def test_a_fifo_is_refused_without_opening_it(outbox, secret):
    folder = write_folder_drop(outbox / NIGHT)
    (folder / "users.csv").unlink()
    os.mkfifo(folder / "users.csv")  # opening it for reading would block forever
    with pytest.raises(DropUnsafe) as err:
        LocalDropSource(outbox).find_drop(NIGHT, settle_seconds=0)
    assert_unsafe(err, f"{NIGHT}/users.csv", secret)
    assert "FIFO" in str(err.value)


def test_a_link_in_the_current_drop_folder_refuses_it(outbox, secret):
    write_folder_drop(outbox)
    (outbox / "users.csv").unlink()
    (outbox / "users.csv").symlink_to(secret)
    with pytest.raises(DropUnsafe) as err:
        LocalDropSource(outbox).find_drop(NIGHT, settle_seconds=0)
    assert_unsafe(err, "users.csv", secret)


def test_a_linked_zip_is_refused(outbox, secret, tmp_path):
    real = write_zip_drop(tmp_path / "elsewhere" / f"roster_{NIGHT}.zip")
    (outbox / real.name).symlink_to(real)
    with pytest.raises(DropUnsafe) as err:
        LocalDropSource(outbox).find_drop(NIGHT, settle_seconds=0)
    assert_unsafe(err, real.name, secret)


def assert_a_late_swap_is_never_fetched(source, folder: Path, name: str, secret: Path, staging: Path) -> None:
    """List the drop, then replace ``name`` by a link to the secret: fetching must refuse it unread."""
    listing = source.find_drop(NIGHT, settle_seconds=0)
    (folder / name).unlink()
    (folder / name).symlink_to(secret)
    with pytest.raises(DropUnsafe) as err:
        source.fetch(listing, str(staging))
    assert_unsafe(err, f"{NIGHT}/{name}", secret)
    assert CANARY not in files_text(staging)


def test_a_file_swapped_for_a_link_after_listing_is_never_read(outbox, secret, tmp_path):
    folder = write_folder_drop(outbox / NIGHT)
    assert_a_late_swap_is_never_fetched(LocalDropSource(outbox), folder, "orgs.csv", secret, tmp_path / "s")


def test_a_dated_folder_swapped_for_a_link_after_listing_is_never_read(outbox, secret, tmp_path):
    folder = write_folder_drop(outbox / NIGHT)
    source = LocalDropSource(outbox)
    listing = source.find_drop(NIGHT, settle_seconds=0)
    other = write_folder_drop(tmp_path / "other" / NIGHT)
    (other / "orgs.csv").write_text(secret.read_text())
    folder.rename(tmp_path / "moved-away")
    (outbox / NIGHT).symlink_to(other, target_is_directory=True)
    staging = tmp_path / "staging"
    with pytest.raises(DropUnsafe) as err:
        source.fetch(listing, str(staging))
    assert_unsafe(err, NIGHT, secret)
    assert CANARY not in files_text(staging)


# ------------------------------------------------------------------------------------------ check-drop


def test_check_drop_refuses_a_linked_file_without_reading_it(outbox, secret):
    folder = write_folder_drop(outbox / "d")
    (folder / "orgs.csv").unlink()
    (folder / "orgs.csv").symlink_to(secret)
    os.mkfifo(folder / "enrollments.csv")
    report = check_drop(folder)
    assert report.refused
    text = " ".join(report.drop_errors)
    assert "SECURITY" in text and "orgs.csv is a symbolic link" in text
    assert "enrollments.csv is a FIFO" in text
    assert CANARY not in text and str(secret) not in text
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "etl-project"), "check-drop", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 2 and "orgs.csv is a symbolic link" in cli.stdout
    assert CANARY not in cli.stdout + cli.stderr


def test_check_drop_refuses_a_link_in_a_subfolder(outbox, secret):
    folder = write_folder_drop(outbox / "d" / "export")
    (folder / "users.csv").unlink()
    (folder / "users.csv").symlink_to(secret)
    report = check_drop(outbox / "d")
    assert report.refused and "export/users.csv is a symbolic link" in " ".join(report.drop_errors)


# ------------------------------------------------------------------------------------------ SFTP


def test_sftp_linked_csv_and_linked_dated_folder_are_refused(sftp_server, secret, tmp_path):
    root = Path(sftp_server.root) / "outbox"
    folder = write_folder_drop(root / NIGHT)
    (folder / "orgs.csv").unlink()
    (folder / "orgs.csv").symlink_to(secret)
    credentials = SftpCredentials(password=SFTP_PASSWORD)
    with open_source(sftp_server.district(), credentials) as source:
        with pytest.raises(DropUnsafe) as err:
            source.find_drop(NIGHT, settle_seconds=0)
        assert_unsafe(err, f"{NIGHT}/orgs.csv", secret)
        other = write_folder_drop(Path(sftp_server.root) / "other-district" / "2026-11-29")
        (root / "2026-11-29").symlink_to(other, target_is_directory=True)
        (folder / "orgs.csv").unlink()
        with pytest.raises(DropUnsafe) as err:
            source.find_drop("2026-11-29", settle_seconds=0)
        assert_unsafe(err, "2026-11-29", secret)


def test_openssh_linked_csv_is_refused_and_a_late_swap_is_never_fetched(openssh_sftp, secret, tmp_path):
    base = openssh_sftp.files / "links"
    folder = write_folder_drop(base / NIGHT)
    district = openssh_sftp.district(remote_dir=str(base))
    with open_source(district, openssh_sftp.client_key.credentials()) as source:
        assert_a_late_swap_is_never_fetched(source, folder, "users.csv", secret, tmp_path / "staging")
        with pytest.raises(DropUnsafe) as err:
            source.find_drop(NIGHT, settle_seconds=0)
        assert_unsafe(err, f"{NIGHT}/users.csv", secret)
