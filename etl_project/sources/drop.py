"""Drop discovery and completeness: the rules every source (local folder, SFTP) applies the same way.

Conventions in a district's folder, for night ``D`` (``2026-11-28``), tried in this order:

1. a **dated folder** ``<dir>/2026-11-28/`` or ``<dir>/20261128/``: a folder drop (its ``*.csv`` files, with
   ``manifest.csv``), or, when it holds no ``manifest.csv``, the single ``.zip`` inside it;
2. a **dated zip** directly in ``<dir>`` whose name contains ``2026-11-28`` or ``20261128``
   (``oneroster_20261128.zip``); two such zips are refused as ambiguous;
3. the undated **current drop**: ``manifest.csv`` directly in ``<dir>`` (many SIS exports overwrite one folder
   nightly), else the single ``.zip`` whose name carries no date. Its listing has ``dated=False``.

A drop is taken only when it is complete:

* folder drops have ``manifest.csv`` and every file the manifest marks ``bulk`` or ``delta``
  (``file.users,bulk`` -> ``users.csv``); a zip's manifest is checked later, when it is opened from
  the archive;
* no in-progress upload is visible for the drop's files: ``users.csv.filepart``, ``*.part``, ``*.partial``,
  ``*.tmp`` or a dot-file such as rsync's ``.users.csv.Xy12Ab``. Other dot-files (``.DS_Store``) are ignored;
* sizes and mtimes are the same in two listings taken ``settle_seconds`` apart (``compare_listings`` is the
  pure comparison; the source takes the second listing).

A symbolic link or special file (FIFO, device, socket) in the district's folder or in the night's dated folder
refuses the drop as a whole (``DropUnsafe``, naming the entry relative to the district's folder): a link could
expose a file outside the folder or another district's drop, and loading the rest without it would load a
partial night. Dot-files are exempt, as they are never fetched. Links are never followed, not even to look.

``DropSourceBase`` implements ``find_drop`` / ``list_drops`` / ``fetch`` on top of four primitives (list a
directory, stat a file, read a small file, download a file while hashing) that each transport provides.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import posixpath
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from etl_project.nofollow import UnsafeEntry, unsafe_sentence
from etl_project.oneroster.spec import MANIFEST
from etl_project.sources.base import (
    DropChanged,
    DropIncomplete,
    DropListing,
    DropNotFound,
    DropUnsafe,
    FetchedFile,
    RemoteFile,
    SourceInfo,
    drop_fingerprint,
)

IN_PROGRESS_SUFFIXES = (".filepart", ".part", ".partial", ".tmp")
MANIFEST_MAX_BYTES = 1 << 20
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


@dataclass(frozen=True)
class Entry:
    """One directory entry as a transport sees it (never through a link). ``unsafe`` says what a symbolic
    link or special file is ("a symbolic link", "a FIFO (named pipe)"...); None for files and folders."""

    name: str
    path: str
    size: int
    mtime: int
    is_dir: bool
    unsafe: str | None = None

    def as_remote_file(self) -> RemoteFile:
        return RemoteFile(name=self.name, path=self.path, size=self.size, mtime=self.mtime)


# ---------------------------------------------------------------------------------------------- pure rules


def in_progress_target(name: str) -> str | None:
    """The file an in-progress name stands for (``users.csv.filepart`` -> ``users.csv``), else None."""
    lowered = name.lower()
    for suffix in IN_PROGRESS_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)].lstrip(".")
    if name.startswith("."):
        return name.lstrip(".")
    return None


def is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def is_csv(name: str) -> bool:
    return name.lower().endswith(".csv")


def night_in_name(name: str) -> str | None:
    """The ISO night a file or folder name carries (``2026-11-28`` or ``20261128``), if it is a real date."""
    for m in _DATE_IN_NAME.finditer(name):
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            continue
    return None


def night_names(date: str) -> tuple[str, str]:
    return date, date.replace("-", "")


def parse_manifest(data: bytes) -> dict[str, str]:
    """``manifest.csv`` -> {``users.csv``: ``bulk``|``delta``|``absent``}; DropIncomplete if unreadable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DropIncomplete("manifest.csv is not UTF-8 text") from None
    modes: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2:
            continue
        prop, value = row[0].strip(), row[1].strip().lower()
        if prop.lower().startswith("file.") and len(prop) > 5:
            modes[prop[5:] + ".csv"] = value
    return modes


def compare_listings(before: DropListing, after: DropListing, settle_seconds: float = 0) -> None:
    """Raise DropIncomplete unless two listings of a drop show the same files, sizes and mtimes."""
    window = f"during the {settle_seconds:g} s settle window" if settle_seconds else "between two listings"
    if (before.location, before.kind) != (after.location, after.kind):
        raise DropIncomplete(f"the drop moved from {before.location} to {after.location} {window}")
    old = {f.name: f for f in before.files}
    new = {f.name: f for f in after.files}
    problems: list[str] = []
    for name in sorted(new.keys() - old.keys()):
        problems.append(f"{name} appeared")
    for name in sorted(old.keys() - new.keys()):
        problems.append(f"{name} disappeared")
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        if a.size != b.size:
            problems.append(f"{name} grew from {a.size} to {b.size} bytes")
        elif a.mtime != b.mtime:
            problems.append(f"{name} was modified again")
    if problems:
        raise DropIncomplete(
            f"the drop in {after.location} is still being written ({'; '.join(problems)} {window}); "
            "it will be taken once it stops changing"
        )


def _blocking_uploads(entries: Iterable[Entry], wanted: Iterable[str]) -> list[str]:
    wanted_lower = {w.lower() for w in wanted}
    hits = []
    for e in entries:
        target = in_progress_target(e.name)
        if target is None:
            continue
        t = target.lower()
        if any(t == w or t.startswith(w + ".") for w in wanted_lower) or is_csv(t) or is_zip(t):
            hits.append(e.name)
    return sorted(hits)


def _visible_files(entries: Iterable[Entry]) -> list[Entry]:
    return [e for e in entries if not e.is_dir and e.unsafe is None and in_progress_target(e.name) is None]


def listing_for_zip(night: str | None, zip_entry: Entry, siblings: list[Entry], dated: bool) -> DropListing:
    uploads = _blocking_uploads(siblings, [zip_entry.name])
    if uploads:
        raise DropIncomplete(f"{zip_entry.path} is still being uploaded ({', '.join(uploads)} present)")
    files = (zip_entry.as_remote_file(),)
    return DropListing(night, zip_entry.path, "zip", files, drop_fingerprint(files), dated)


def listing_for_folder(
    night: str | None,
    location: str,
    entries: list[Entry],
    manifest_bytes: Callable[[Entry], bytes],
    dated: bool,
) -> DropListing:
    """A folder drop: its CSV files, once manifest.csv and the files it lists are there, none uploading."""
    files = sorted((e for e in _visible_files(entries) if is_csv(e.name)), key=lambda e: e.name)
    by_name = {e.name: e for e in files}
    by_lower = {e.name.lower(): e for e in files}
    manifest = by_name.get(MANIFEST) or by_lower.get(MANIFEST)
    uploads = _blocking_uploads(entries, [MANIFEST, *by_name])
    if manifest is None:
        if uploads:
            raise DropIncomplete(f"{location} has no manifest.csv yet ({', '.join(uploads)} still uploading)")
        raise DropIncomplete(f"{location} has no manifest.csv: the export is unfinished or not OneRoster")
    if manifest.size > MANIFEST_MAX_BYTES:
        raise DropIncomplete(f"{manifest.path} is {manifest.size} bytes, too large for a OneRoster manifest")
    listed = parse_manifest(manifest_bytes(manifest))
    missing = sorted(
        f"{name} ({mode})"
        for name, mode in listed.items()
        if mode in ("bulk", "delta") and name not in by_name and name.lower() not in by_lower
    )
    if missing:
        raise DropIncomplete(f"manifest.csv in {location} lists {', '.join(missing)}, not there yet")
    if uploads:
        raise DropIncomplete(f"{location} is still being uploaded ({', '.join(uploads)} present)")
    remote = tuple(e.as_remote_file() for e in files)
    return DropListing(night, location, "folder", remote, drop_fingerprint(remote), dated)


# ---------------------------------------------------------------------------------------------- transports


class DropSourceBase(ABC):
    """find_drop / list_drops / fetch for any transport that can list, stat, read and download files."""

    info: SourceInfo
    root: str
    #: how the source waits between the two listings; a hook so tests can change a file instead of sleeping.
    wait: Callable[[float], None] = staticmethod(time.sleep)

    # -- primitives -------------------------------------------------------------------------------------
    @abstractmethod
    def _list_dir(self, path: str) -> list[Entry]:
        """The folder's entries as lstat sees them; UnsafeEntry if ``path`` is reached through a link."""

    @abstractmethod
    def _stat(self, path: str) -> Entry | None:
        """lstat of ``path`` (None when absent)."""

    @abstractmethod
    def _read_small(self, path: str) -> bytes:
        """The start of a small regular file; UnsafeEntry rather than reading through a link."""

    @abstractmethod
    def _download(self, remote: RemoteFile, dest: Path) -> tuple[int, str]:
        """Copy ``remote`` to ``dest`` while hashing; return (bytes written, sha256 hex).

        Raises UnsafeEntry rather than reading through a link or from a special file."""

    @abstractmethod
    def _join(self, directory: str, name: str) -> str: ...

    def close(self) -> None:  # noqa: B027 - optional for transports without a connection
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- safety -----------------------------------------------------------------------------------------
    def _relative(self, path: str) -> str:
        return posixpath.relpath(path, self.root)

    def _unsafe(self, problems: Iterable[str]) -> DropUnsafe:
        where = f"{self.info.host}:{self.info.path}" if self.info.host else self.info.path
        return DropUnsafe(unsafe_sentence(f"in {where}", problems))

    def _listed(self, path: str) -> list[Entry]:
        """The folder's entries, refusing the drop if any (but dot-files) is a link or a special file."""
        try:
            entries = self._list_dir(path)
        except UnsafeEntry as exc:
            raise self._unsafe([str(exc)]) from None
        bad = sorted((e for e in entries if e.unsafe and not e.name.startswith(".")), key=lambda e: e.name)
        if bad:
            raise self._unsafe(f"{self._relative(e.path)} is {e.unsafe}" for e in bad)
        return entries

    # -- discovery --------------------------------------------------------------------------------------
    def _manifest_reader(self, entry: Entry) -> bytes:
        try:
            return self._read_small(entry.path)
        except UnsafeEntry as exc:
            raise self._unsafe([str(exc)]) from None

    def _folder_drop(self, night: str | None, path: str, dated: bool) -> DropListing:
        entries = self._listed(path)
        has_manifest = any(e.name.lower() == MANIFEST and not e.is_dir for e in entries)
        zips = [e for e in _visible_files(entries) if is_zip(e.name)]
        if not has_manifest and len(zips) == 1:
            return listing_for_zip(night, zips[0], entries, dated)
        if not has_manifest and len(zips) > 1:
            names = ", ".join(z.name for z in zips)
            raise DropIncomplete(f"{path} holds several zips ({names}) and no manifest.csv")
        return listing_for_folder(night, path, entries, self._manifest_reader, dated)

    def _locate(self, date: str) -> DropListing:
        root_entries = self._listed(self.root)
        names = night_names(date)
        dated_dirs = {e.name: e for e in root_entries if e.is_dir and e.name in names}
        for name in names:  # 2026-11-28/ before 20261128/
            if name in dated_dirs:
                return self._folder_drop(date, dated_dirs[name].path, dated=True)
        files = _visible_files(root_entries)
        dated_zips = [e for e in files if is_zip(e.name) and night_in_name(e.name) == date]
        if len(dated_zips) > 1:
            raise DropIncomplete(
                f"several zips in {self.root} are named for {date} "
                f"({', '.join(sorted(z.name for z in dated_zips))}); remove all but one"
            )
        if dated_zips:
            return listing_for_zip(date, dated_zips[0], root_entries, dated=True)
        uploading = sorted(
            e.name
            for e in root_entries
            if in_progress_target(e.name) is not None and night_in_name(e.name) == date and not e.is_dir
        )
        if uploading:
            raise DropIncomplete(f"the drop for {date} is still uploading ({', '.join(uploading)} present)")
        if any(e.name.lower() == MANIFEST for e in files):
            return listing_for_folder(date, self.root, root_entries, self._manifest_reader, dated=False)
        undated_zips = [e for e in files if is_zip(e.name) and night_in_name(e.name) is None]
        if len(undated_zips) == 1:
            return listing_for_zip(date, undated_zips[0], root_entries, dated=False)
        if len(undated_zips) > 1:
            raise DropIncomplete(
                f"{self.root} holds several undated zips "
                f"({', '.join(sorted(z.name for z in undated_zips))}); "
                "cannot tell which one is the current drop"
            )
        raise DropNotFound(
            f"no drop for {date} in {self.info.path}: looked for a folder {names[0]}/ or {names[1]}/, "
            f"a zip named with {names[0]} or {names[1]}, and a current manifest.csv or undated zip"
        )

    def find_drop(self, date: str, settle_seconds: float = 30.0) -> DropListing:
        """The night's complete drop, listed twice ``settle_seconds`` apart (DropNotFound/DropIncomplete)."""
        dt.date.fromisoformat(date)
        first = self._locate(date)
        if settle_seconds <= 0:
            return first
        self.wait(settle_seconds)
        second = self._locate(date)
        compare_listings(first, second, settle_seconds)
        return second

    def list_drops(self) -> list[DropListing]:
        """Every complete-looking drop present (dated ones first, by night; the current drop last)."""
        root_entries = self._listed(self.root)
        found: list[DropListing] = []
        for e in sorted(root_entries, key=lambda e: e.name):
            night = night_in_name(e.name)
            if night is None:
                continue
            dated_folder = e.is_dir and e.name in night_names(night)
            dated_zip = not e.is_dir and is_zip(e.name) and in_progress_target(e.name) is None
            if not (dated_folder or dated_zip):
                continue
            try:
                if e.is_dir:
                    found.append(self._folder_drop(night, e.path, dated=True))
                else:
                    found.append(listing_for_zip(night, e, root_entries, dated=True))
            except DropIncomplete:
                continue
        found.sort(key=lambda d: (d.night or "", d.location))
        try:
            files = _visible_files(root_entries)
            if any(e.name.lower() == MANIFEST for e in files):
                read = self._manifest_reader
                current = listing_for_folder(None, self.root, root_entries, read, dated=False)
                found.append(current)
            else:
                undated = [e for e in files if is_zip(e.name) and night_in_name(e.name) is None]
                if len(undated) == 1:
                    found.append(listing_for_zip(None, undated[0], root_entries, dated=False))
        except DropIncomplete:
            pass
        return found

    # -- fetch ------------------------------------------------------------------------------------------
    def fetch(self, listing: DropListing, dest_dir: str) -> list[FetchedFile]:
        """Download every file of the drop into ``dest_dir``, hashing; verify size and stability."""
        dest_root = Path(dest_dir)
        dest_root.mkdir(parents=True, exist_ok=True)
        fetched: list[FetchedFile] = []
        for remote in listing.files:
            if os.sep in remote.name or remote.name in ("", ".", ".."):
                raise DropChanged(f"refusing file name {remote.name!r} from {listing.location}")
            dest = dest_root / remote.name
            try:
                size, sha = self._download(remote, dest)
                if size != remote.size:
                    raise DropChanged(
                        f"{remote.path}: received {size} bytes but the listing said {remote.size}; "
                        "the file changed during the download"
                    )
                after = self._stat(remote.path)
                if after is None:
                    raise DropChanged(f"{remote.path} disappeared during the download")
                if after.unsafe or after.is_dir:
                    raise UnsafeEntry(self._relative(remote.path), after.unsafe or "a folder")
                if (after.size, after.mtime) != (remote.size, remote.mtime):
                    raise DropChanged(f"{remote.path} was modified during the download; fetch it again")
            except UnsafeEntry as exc:
                dest.unlink(missing_ok=True)
                raise self._unsafe([str(exc)]) from None
            except BaseException:
                dest.unlink(missing_ok=True)
                raise
            fetched.append(FetchedFile(remote.name, str(dest), size, sha, remote.path, remote.mtime))
        return fetched
