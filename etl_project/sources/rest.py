"""A district's OneRoster REST API (1.1 or 1.2) as a drop source: the pull is written as a CSV drop.

HTTP (auth, retries, paging) is ``sources.rest_client``'s; this module maps the OneRoster JSON to CSV.

* **Output** (``fetch``): one CSV per collection with the version's exact OneRoster CSV header (from
  ``oneroster.spec``), ``manifest.csv`` (every pulled file ``bulk``), every raw JSON page as
  ``raw__<collection>__<NNNN>.json`` (flat names, because archive keys are flat; passwords removed) and
  ``raw__conversion.json`` (what the conversion left out or could not convert). 1.2 users' ``roles[]`` and
  ``userProfiles[]`` become ``roles.csv`` and ``userProfiles.csv``. ``load_drop`` ignores the ``raw__`` files.
* **Conversion** (``sources.rest_json``): the rows a conformant CSV bulk export writes (no per-row status,
  tobedeleted records left out, dates as dates, booleans as true/false).

Per-row Python is used to map JSON to CSV rows; the pull is bound by HTTP round trips, not by this mapping.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from etl_project.oneroster.spec import BY_FILE, IGNORED, MANIFEST, SPECS, TableSpec
from etl_project.sources.base import DropListing, FetchedFile, SourceConfigError, SourceInfo
from etl_project.sources.rest_client import RestClient, RestHttpError, with_query
from etl_project.sources.rest_json import ConversionNotes, RowWriter, cell, profile_rows, role_rows

log = logging.getLogger(__name__)

RAW_PREFIX = "raw__"
CONVERSION_REPORT = f"{RAW_PREFIX}conversion.json"  # raw__ names are archived but not loaded as OneRoster
# (collection endpoint, CSV file) in load order; roles.csv (1.2) is derived from users.
COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("orgs", "orgs.csv"),
    ("academicSessions", "academicSessions.csv"),
    ("courses", "courses.csv"),
    ("classes", "classes.csv"),
    ("users", "users.csv"),
    ("enrollments", "enrollments.csv"),
    ("demographics", "demographics.csv"),
)
OPTIONAL_COLLECTIONS = ("demographics",)  # often outside the granted scope: 403/404 -> file absent


# ------------------------------------------------------------------------------------------ JSON -> CSV rows


def csv_columns(spec: TableSpec, version: str) -> list[str]:
    """The version's CSV header for a file, in the spec's order (columns removed in 1.2.1 left out)."""
    return [c.name for c in spec.columns if version in c.versions and c.kind != IGNORED]


def _metadata_cells(obj: dict[str, Any], keys: list[str]) -> list[str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    cells = []
    for key in keys:
        value = meta.get(key)
        cells.append(json.dumps(value) if isinstance(value, dict | list) else cell(value))
    return cells


class _HashingFile:
    """A binary file being written, with its sha256 and size kept on the way."""

    def __init__(self, path: Path):
        self.path = path
        self._out: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sha, self.size = hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self._out.write(data)

    def close(self) -> tuple[int, str]:
        self._out.close()
        return self.size, self.sha.hexdigest()


class _CsvOut:
    def __init__(self, path: Path, columns: list[str]):
        self.file = _HashingFile(path)
        self.columns = columns
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\r\n")

    def write(self, rows: list[list[str]]) -> None:
        self._writer.writerows(rows)
        self.file.write(self._buf.getvalue().encode("utf-8"))
        self._buf.seek(0)
        self._buf.truncate()


class _Output:
    """One CSV being written from a collection's records, or from objects ``derive`` makes of each."""

    def __init__(
        self,
        spec: TableSpec,
        version: str,
        dest: Path,
        notes: ConversionNotes,
        metadata_keys: Sequence[str] = (),
        derive: Callable[[dict[str, Any]], Iterable[dict[str, Any]]] | None = None,
    ):
        columns = csv_columns(spec, version)
        self.file, self.keys, self.derive, self.rows = spec.file, list(metadata_keys), derive, 0
        self.writer = RowWriter(spec, columns, notes)
        self.out = _CsvOut(dest / spec.file, columns + [f"metadata.{k}" for k in self.keys])
        self.out.write([self.out.columns])

    def write(self, records: list[dict[str, Any]]) -> None:
        objs = records if self.derive is None else [d for r in records for d in self.derive(r)]
        self.out.write([self.writer.row(o) + _metadata_cells(o, self.keys) for o in objs])
        self.rows += len(objs)


# ----------------------------------------------------------------------------------------------- the source


class RestDropSource:
    """``DropSource`` over a OneRoster REST API. Every ``fetch`` is a full (bulk) pull of "now"."""

    def __init__(self, client: RestClient):
        source = client.source
        if source.version not in ("1.1", "1.2"):
            raise SourceConfigError(f"OneRoster REST version must be 1.1 or 1.2, not {source.version!r}")
        self.source, self.client = source, client
        parts = urlsplit(source.base_url)
        self.info = SourceInfo(kind="rest", host=parts.netloc, path=parts.path or "/")
        self.base_url = source.base_url.rstrip("/")
        self.notes = ConversionNotes()  # the last fetch's

    def __enter__(self) -> RestDropSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def collection_url(self, collection: str) -> str:
        return f"{self.base_url}/{collection}"

    # -- listing ---------------------------------------------------------------------------------------------
    def find_drop(self, date: str, settle_seconds: float = 30.0) -> DropListing:
        """The API's current data as the drop for ``date``; one ``limit=1`` call per collection.

        The fingerprint covers the night, the version, the base URL and each collection's ``X-Total-Count``:
        a new night is a new drop, and a change in counts during the night is one too. ``settle_seconds``
        does not apply (an API has no half-uploaded files).
        """
        counts: list[str] = []
        for collection, _ in COLLECTIONS:
            try:
                resp = self.client.get(with_query(self.collection_url(collection), limit=1, offset=0))
            except RestHttpError as exc:
                if collection in OPTIONAL_COLLECTIONS and exc.status in (403, 404):
                    counts.append(f"{collection}=absent")
                    continue
                raise
            counts.append(f"{collection}={resp.headers.get('x-total-count', '?')}")
        h = hashlib.sha256("\n".join([date, self.source.version, self.base_url, *counts]).encode())
        return DropListing(
            night=date, location=self.base_url, kind="rest", files=(), fingerprint=h.hexdigest(), dated=False
        )

    def list_drops(self) -> list[DropListing]:
        listing = self.find_drop(dt.date.today().isoformat())
        return [DropListing(None, listing.location, "rest", (), listing.fingerprint, dated=False)]

    def pages(self, collection: str) -> Iterator[tuple[str, httpx.Response, list[Any]]]:
        """Every page of a collection as (request URL, response, records), in order."""
        return self.client.pages(self.collection_url(collection), collection, self.source.page_size)

    # -- fetch -----------------------------------------------------------------------------------------------
    def fetch(self, listing: DropListing, dest_dir: str | Path) -> list[FetchedFile]:
        """Pull every collection: raw pages first (to disk), then each collection's CSV from its pages."""
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        self.notes = ConversionNotes()
        fetched: list[FetchedFile] = []
        modes: dict[str, str] = {}
        for collection, file in COLLECTIONS:
            try:
                pages, metadata_keys = self._pull_pages(collection, BY_FILE[file].table, dest)
            except RestHttpError as exc:
                if collection in OPTIONAL_COLLECTIONS and exc.status in (403, 404):
                    log.warning(
                        "%s: not available (HTTP %d); %s is marked absent", collection, exc.status, file
                    )
                    modes[file] = "absent"
                    continue
                raise
            fetched += pages
            written = self._write_csvs(collection, file, pages, metadata_keys, dest)
            fetched += written
            modes.update((f.name, "bulk") for f in written)
        fetched.append(self._write_manifest(dest, modes))
        fetched.append(self._write_conversion_report(dest))
        return fetched

    def _pull_pages(self, collection: str, table: str, dest: Path) -> tuple[list[FetchedFile], list[str]]:
        pages: list[FetchedFile] = []
        metadata_keys: set[str] = set()
        records = 0
        for number, (url, resp, objs) in enumerate(self.pages(collection), start=1):
            pages.append(self._write_raw(dest, collection, number, url, resp.content))
            records += len(objs)
            for obj in (o for o in objs if isinstance(o, dict)):
                self.notes.see(table, obj)
                if isinstance(obj.get("metadata"), dict):
                    metadata_keys.update(obj["metadata"])
        log.info("%s: %d records in %d pages", collection, records, len(pages))
        return pages, sorted(metadata_keys)

    def _write_csvs(
        self, collection: str, file: str, pages: list[FetchedFile], metadata_keys: list[str], dest: Path
    ) -> list[FetchedFile]:
        """The collection's CSV (``metadata`` object -> ``metadata.<key>`` columns) and, for 1.2 users,
        roles.csv and userProfiles.csv; one raw page in memory at a time."""
        version, notes = self.source.version, self.notes
        outputs = [_Output(BY_FILE[file], version, dest, notes, metadata_keys)]
        if collection == "users" and version == "1.2":
            outputs.append(_Output(BY_FILE["roles.csv"], version, dest, notes, derive=role_rows))
            profiles = BY_FILE["userProfiles.csv"]
            outputs.append(_Output(profiles, version, dest, notes, derive=lambda u: profile_rows(u, notes)))
        try:
            for page in pages:
                objs = [
                    o
                    for o in json.loads(Path(page.local_path).read_bytes())[collection]
                    if isinstance(o, dict)
                ]
                notes.records[file] = notes.records.get(file, 0) + len(objs)
                kept = [o for o in objs if outputs[0].writer.keep(o)]
                for output in outputs:
                    output.write(kept)
        finally:
            closed = [(output, output.out.file.close()) for output in outputs]
        for output, _ in closed:
            notes.written[output.file] = output.rows
        return [
            FetchedFile(output.file, str(output.out.file.path), size, sha, self.collection_url(collection), 0)
            for output, (size, sha) in closed
        ]

    def _write_raw(self, dest: Path, collection: str, number: int, url: str, body: bytes) -> FetchedFile:
        name = f"{RAW_PREFIX}{collection}__{number:04d}.json"
        path = dest / name
        body = without_passwords(body)
        path.write_bytes(body)
        return FetchedFile(name, str(path), len(body), hashlib.sha256(body).hexdigest(), url, 0)

    def _write_manifest(self, dest: Path, modes: dict[str, str]) -> FetchedFile:
        version = self.source.version
        files = [s.file for s in SPECS if version == "1.2" or s.file not in ("roles.csv", "userProfiles.csv")]
        lines = ["propertyName,value", "manifest.version,1.0", f"oneroster.version,{version}"]
        lines += [f"file.{f.removesuffix('.csv')},{modes.get(f, 'absent')}" for f in files]
        lines += [f"source.systemName,OneRoster REST {self.info.host}", "source.systemCode,etl-project-rest"]
        return self._write_file(dest, MANIFEST, ("\r\n".join(lines) + "\r\n").encode())

    def _write_conversion_report(self, dest: Path) -> FetchedFile:
        """``raw__conversion.json``: records left out as tobedeleted and every warning, archived with the
        drop; each warning is logged too."""
        notes = self.notes
        for file, ids in notes.omitted.items():
            log.info("%s: %d tobedeleted record(s) left out of the bulk file", file, len(ids))
        for warning in notes.warnings():
            log.warning("%s", warning)
        doc = notes.to_json(self.source.version)
        return self._write_file(dest, CONVERSION_REPORT, (json.dumps(doc, indent=1) + "\n").encode())

    def _write_file(self, dest: Path, name: str, data: bytes) -> FetchedFile:
        (dest / name).write_bytes(data)
        return FetchedFile(
            name, str(dest / name), len(data), hashlib.sha256(data).hexdigest(), self.base_url, 0
        )


def without_passwords(body: bytes) -> bytes:
    """A raw page as received, less every ``password`` value (a 1.1 user's, a 1.2 profile credential's):
    the archive keeps the roster as the district sent it, never anyone's password."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    return json.dumps(doc, ensure_ascii=False).encode() if _drop_passwords(doc) else body


def _drop_passwords(node: Any) -> bool:
    """Remove ``password`` keys anywhere in ``node``; whether any was there."""
    found = False
    if isinstance(node, dict):
        for key in [k for k in node if isinstance(k, str) and k.lower() == "password"]:
            del node[key]
            found = True
        children = node.values()
    else:
        children = node if isinstance(node, list) else []
    for child in children:
        found = _drop_passwords(child) or found
    return found
