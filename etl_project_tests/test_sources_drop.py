"""Drop discovery and completeness rules, exercised through the local folder source (no server needed)."""

from __future__ import annotations

import hashlib
import os

import pytest

from etl_project.districts import District, LocalSource
from etl_project.sources import (
    DropChanged,
    DropIncomplete,
    DropNotFound,
    DropSource,
    LocalDropSource,
    compare_listings,
    open_source,
)
from etl_project.sources.drop import in_progress_target, night_in_name, parse_manifest
from etl_project_tests.drops import drop_files, manifest, write_folder_drop, write_zip_drop

NIGHT = "2026-11-28"


@pytest.fixture
def outbox(tmp_path):
    path = tmp_path / "outbox"
    path.mkdir()
    return path


def src(path) -> LocalDropSource:
    return LocalDropSource(path)


def test_open_source_gives_a_local_drop_source(outbox):
    district = District(id="demo", name="Demo", source=LocalSource(str(outbox)))
    source = open_source(district)
    assert isinstance(source, DropSource)
    assert source.info.kind == "local" and source.info.path == str(outbox) and source.info.host is None


def test_listing_twice_around_an_append_is_refused_as_still_being_written(outbox):
    write_folder_drop(outbox / NIGHT)
    first = src(outbox).find_drop(NIGHT, settle_seconds=0)
    with open(outbox / NIGHT / "users.csv", "a") as f:
        f.write("u9,,,true,org1,student,late,,Late,Row\n")
    second = src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert first.fingerprint != second.fingerprint
    with pytest.raises(DropIncomplete, match=r"users\.csv grew from \d+ to \d+ bytes") as err:
        compare_listings(first, second, settle_seconds=30)
    assert "still being written" in err.value.reason and "30 s" in err.value.reason
    compare_listings(second, src(outbox).find_drop(NIGHT, settle_seconds=0))  # stable now


def test_a_new_file_or_a_new_mtime_between_listings_is_refused(outbox):
    write_folder_drop(outbox / NIGHT)
    first = src(outbox).find_drop(NIGHT, settle_seconds=0)
    (outbox / NIGHT / "courses.csv").write_text("sourcedId\n")
    with pytest.raises(DropIncomplete, match=r"courses\.csv appeared"):
        compare_listings(first, src(outbox).find_drop(NIGHT, settle_seconds=0))
    (outbox / NIGHT / "courses.csv").unlink()
    st = os.stat(outbox / NIGHT / "orgs.csv")
    os.utime(outbox / NIGHT / "orgs.csv", (st.st_atime, st.st_mtime + 5))
    with pytest.raises(DropIncomplete, match=r"orgs\.csv was modified again"):
        compare_listings(first, src(outbox).find_drop(NIGHT, settle_seconds=0))


def test_find_drop_takes_the_second_listing_after_the_settle_wait(outbox):
    write_folder_drop(outbox / NIGHT)
    source = src(outbox)
    waited: list[float] = []

    def still_uploading(seconds: float) -> None:  # what happens on the server during the settle window
        waited.append(seconds)
        with open(outbox / NIGHT / "users.csv", "a") as f:
            f.write("u10,,,true,org1,student,x,,X,Y\n")

    source.wait = still_uploading
    with pytest.raises(DropIncomplete, match=r"users\.csv grew"):
        source.find_drop(NIGHT, settle_seconds=12)
    assert waited == [12]
    source.wait = waited.append
    listing = source.find_drop(NIGHT, settle_seconds=12)
    assert [f.name for f in listing.files] == ["manifest.csv", "orgs.csv", "users.csv"]


def test_dated_folder_wins_over_dated_zip_and_current_drop(outbox):
    write_folder_drop(outbox)  # current drop
    write_zip_drop(outbox / f"oneroster_{NIGHT.replace('-', '')}.zip")
    write_folder_drop(outbox / NIGHT)
    listing = src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert (listing.kind, listing.location, listing.dated, listing.night) == (
        "folder",
        str(outbox / NIGHT),
        True,
        NIGHT,
    )


def test_compact_dated_folder_and_dated_zip(outbox):
    write_folder_drop(outbox / "20261127")
    assert src(outbox).find_drop("2026-11-27", settle_seconds=0).location == str(outbox / "20261127")
    write_folder_drop(outbox)
    zip_path = write_zip_drop(outbox / f"roster-{NIGHT}.zip")
    listing = src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert (listing.kind, listing.location, listing.dated) == ("zip", str(zip_path), True)
    assert [f.name for f in listing.files] == [zip_path.name]
    assert listing.files[0].size == zip_path.stat().st_size


def test_current_folder_drop_and_single_undated_zip(tmp_path):
    folder = write_folder_drop(tmp_path / "current")
    listing = src(folder).find_drop(NIGHT, settle_seconds=0)
    assert (listing.kind, listing.location, listing.dated) == ("folder", str(folder), False)
    assert listing.night == NIGHT
    zipped = tmp_path / "zipped"
    write_zip_drop(zipped / "OneRoster.zip")
    write_zip_drop(zipped / "oneroster_2026-11-01.zip")  # another night's zip is not the current drop
    listing = src(zipped).find_drop(NIGHT, settle_seconds=0)
    assert (listing.kind, listing.dated, listing.files[0].name) == ("zip", False, "OneRoster.zip")


def test_a_zip_inside_the_dated_folder(outbox):
    zip_path = write_zip_drop(outbox / NIGHT / "export.zip")
    listing = src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert (listing.kind, listing.location) == ("zip", str(zip_path))


def test_no_drop_at_all_names_what_was_looked_for(outbox):
    write_folder_drop(outbox / "2026-11-27")
    with pytest.raises(DropNotFound) as err:
        src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert f"{NIGHT}/" in str(err.value) and "20261128" in str(err.value) and str(outbox) in str(err.value)
    with pytest.raises(DropNotFound, match="does not exist"):
        src(outbox / "missing").find_drop(NIGHT, settle_seconds=0)


def test_folder_without_manifest_is_incomplete(outbox):
    files = drop_files()
    del files["manifest.csv"]
    write_folder_drop(outbox / NIGHT, files)
    with pytest.raises(DropIncomplete, match=r"has no manifest\.csv"):
        src(outbox).find_drop(NIGHT, settle_seconds=0)


def test_manifest_listing_a_missing_file_is_incomplete(outbox):
    files = drop_files()
    modes = {"orgs": "bulk", "users": "bulk", "classes": "delta", "courses": "absent"}
    files["manifest.csv"] = manifest(modes)
    write_folder_drop(outbox / NIGHT, files)
    with pytest.raises(DropIncomplete) as err:
        src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert "classes.csv (delta)" in err.value.reason and "courses" not in err.value.reason


PARTIALS = ["users.csv.filepart", "classes.csv.part", ".users.csv.Xy12Ab", "orgs.csv.tmp"]


@pytest.mark.parametrize("partial", PARTIALS)
def test_in_progress_names_block_the_drop(outbox, partial):
    write_folder_drop(outbox / NIGHT)
    (outbox / NIGHT / partial).write_text("half")
    with pytest.raises(DropIncomplete, match="still being uploaded") as err:
        src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert partial in err.value.reason


def test_unrelated_dot_files_do_not_block(outbox):
    write_folder_drop(outbox / NIGHT)
    (outbox / NIGHT / ".DS_Store").write_bytes(b"\0\0")
    (outbox / NIGHT / "README.txt").write_text("hello")
    listing = src(outbox).find_drop(NIGHT, settle_seconds=0)
    assert [f.name for f in listing.files] == ["manifest.csv", "orgs.csv", "users.csv"]


def test_zip_still_uploading_is_incomplete_not_missing(outbox):
    (outbox / f"oneroster_{NIGHT}.zip.filepart").write_bytes(b"PK\x03\x04")
    with pytest.raises(DropIncomplete, match="still uploading"):
        src(outbox).find_drop(NIGHT, settle_seconds=0)


def test_two_zips_for_one_night_are_refused_as_ambiguous(outbox):
    write_zip_drop(outbox / f"a_{NIGHT}.zip")
    write_zip_drop(outbox / f"b_{NIGHT}.zip")
    with pytest.raises(DropIncomplete, match="remove all but one"):
        src(outbox).find_drop(NIGHT, settle_seconds=0)


def test_list_drops_shows_dated_drops_in_night_order_then_the_current_one(outbox):
    write_folder_drop(outbox)
    write_folder_drop(outbox / "2026-11-27")
    write_zip_drop(outbox / "export_20261126.zip")
    write_folder_drop(outbox / "2026-11-29", {"orgs.csv": "x"})  # no manifest: not listed
    drops = src(outbox).list_drops()
    assert [(d.night, d.kind, d.dated) for d in drops] == [
        ("2026-11-26", "zip", True),
        ("2026-11-27", "folder", True),
        (None, "folder", False),
    ]


def test_fetch_copies_and_hashes_every_file(outbox, tmp_path):
    write_folder_drop(outbox / NIGHT)
    source = src(outbox)
    listing = source.find_drop(NIGHT, settle_seconds=0)
    fetched = source.fetch(listing, str(tmp_path / "staging"))
    assert [f.name for f in fetched] == ["manifest.csv", "orgs.csv", "users.csv"]
    for f in fetched:
        original = (outbox / NIGHT / f.name).read_bytes()
        assert f.sha256 == hashlib.sha256(original).hexdigest()
        assert f.size == len(original)
        assert open(f.local_path, "rb").read() == original  # noqa: SIM115
        assert f.source_path == str(outbox / NIGHT / f.name)
        assert f.source_mtime == int(os.stat(outbox / NIGHT / f.name).st_mtime)


def test_fetch_refuses_a_file_that_changed_after_listing(outbox, tmp_path):
    write_folder_drop(outbox / NIGHT)
    source = src(outbox)
    listing = source.find_drop(NIGHT, settle_seconds=0)
    with open(outbox / NIGHT / "users.csv", "a") as f:
        f.write("u11,,,true,org1,student,z,,Z,Z\n")
    with pytest.raises(DropChanged, match=r"users\.csv: received"):
        source.fetch(listing, str(tmp_path / "staging"))
    assert not (tmp_path / "staging" / "users.csv").exists()


def test_pure_helpers():
    assert in_progress_target("users.csv.filepart") == "users.csv"
    assert in_progress_target(".users.csv.a1B2c3") == "users.csv.a1B2c3"
    assert in_progress_target("users.csv") is None
    assert night_in_name("oneroster_20261128.zip") == "2026-11-28"
    assert night_in_name("export-2026-13-45.zip") is None
    assert parse_manifest(b"\xef\xbb\xbfpropertyName,value\nfile.users,Bulk\nfile.orgs, absent \n") == {
        "users.csv": "bulk",
        "orgs.csv": "absent",
    }
    with pytest.raises(DropIncomplete, match="not UTF-8"):
        parse_manifest(b"\xff\xfe\x00")
