"""A district's OneRoster REST API (1.1 or 1.2) as a drop source: the pull is written as a CSV drop.

HTTP (auth, retries, paging) is ``sources.rest_client``'s; this module maps the OneRoster JSON to CSV.

* **Output** (``fetch``): one CSV per collection with the version's exact OneRoster CSV header (from
  ``oneroster.spec``), ``manifest.csv`` (every pulled file ``bulk``), and every raw JSON page as
  ``raw__<collection>__<NNNN>.json`` (flat names, because archive keys are flat). 1.2 users' ``roles[]``
  become ``roles.csv``. ``load_drop`` ignores the raw pages.

Per-row Python is used to map JSON to CSV rows; the pull is bound by HTTP round trips, not by this mapping.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from etl_project.oneroster.spec import BY_FILE, IGNORED, MANIFEST, SPECS, TableSpec
from etl_project.sources.base import DropListing, FetchedFile, SourceConfigError, SourceInfo
from etl_project.sources.rest_client import RestClient, RestHttpError, with_query

log = logging.getLogger(__name__)

RAW_PREFIX = "raw__"
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


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("sourcedId")
    return value


def _refs(value: Any) -> list[str | None]:
    if value is None:
        return []
    return [_ref(v) for v in (value if isinstance(value, list) else [value])]


def _user_id(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + f"{value.get('type', '')}:{value.get('identifier', '')}" + "}"
    return str(value)


# CSV column -> how to read it from the JSON object: a JSON field name, or (field, converter).
_REF_FIELDS = {
    "parentSourcedId": "parent",
    "schoolYearSourcedId": "schoolYear",
    "orgSourcedId": "org",
    "courseSourcedId": "course",
    "schoolSourcedId": "school",
    "classSourcedId": "class",
    "userSourcedId": "user",
    "primaryOrgSourcedId": "primaryOrg",
    "userProfileSourcedId": "userProfile",
}
_REFLIST_FIELDS = {"termSourcedIds": "terms", "orgSourcedIds": "orgs", "agentSourcedIds": "agents"}
_RENAMED = {  # 1.2 JSON names that differ from the CSV names
    "preferredGivenName": ("preferredGivenName", "preferredFirstName"),
    "preferredFamilyName": ("preferredFamilyName", "preferredLastName"),
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value if v is not None)
    if isinstance(value, dict):
        return str(value.get("sourcedId", ""))
    return str(value)


def json_to_row(obj: dict[str, Any], columns: list[str], table: str) -> list[str]:
    """One OneRoster JSON object as the CSV row for ``columns`` (GUIDRefs -> sourcedIds, lists joined)."""
    row: list[str] = []
    for col in columns:
        if col == "password":
            value: Any = None  # never written, even if an API sends it
        elif col in _REFLIST_FIELDS and (_REFLIST_FIELDS[col] in obj or col not in obj):
            value = _refs(obj.get(_REFLIST_FIELDS[col]))
        elif col in _REF_FIELDS and _REF_FIELDS[col] in obj:
            value = _ref(obj.get(_REF_FIELDS[col]))
        elif col == "userIds":
            value = [_user_id(v) for v in obj.get("userIds") or []]
        elif col in _RENAMED:
            value = next((obj[k] for k in _RENAMED[col] if obj.get(k) is not None), None)
        elif col == "sourcedId" and table == "demographics" and "sourcedId" not in obj:
            value = _ref(obj.get("user"))
        else:
            value = obj.get(col)
        row.append(_cell(value))
    return row


def _metadata_cells(obj: dict[str, Any], keys: list[str]) -> list[str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    cells = []
    for key in keys:
        value = meta.get(key)
        cells.append(json.dumps(value) if isinstance(value, dict | list) else _cell(value))
    return cells


def role_rows(user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A 1.2 user's ``roles[]`` as roles.csv objects; the role's sourcedId is derived from its parts."""
    uid = user.get("sourcedId")
    for role in user.get("roles") or []:
        org = _ref(role.get("org"))
        parts = (uid, role.get("roleType"), role.get("role"), org)
        yield {
            "sourcedId": "-".join(str(p) for p in parts),
            "status": user.get("status"),
            "dateLastModified": user.get("dateLastModified"),
            "userSourcedId": uid,
            "roleType": role.get("roleType"),
            "role": role.get("role"),
            "beginDate": role.get("beginDate"),
            "endDate": role.get("endDate"),
            "orgSourcedId": org,
            "userProfileSourcedId": _ref(role.get("userProfile")),
        }


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
        fetched: list[FetchedFile] = []
        modes: dict[str, str] = {}
        for collection, file in COLLECTIONS:
            try:
                pages, metadata_keys = self._pull_pages(collection, dest)
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
        return fetched

    def _pull_pages(self, collection: str, dest: Path) -> tuple[list[FetchedFile], list[str]]:
        pages: list[FetchedFile] = []
        metadata_keys: set[str] = set()
        records = 0
        for number, (url, resp, objs) in enumerate(self.pages(collection), start=1):
            pages.append(self._write_raw(dest, collection, number, url, resp.content))
            records += len(objs)
            for obj in objs:
                if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
                    metadata_keys.update(obj["metadata"])
        log.info("%s: %d records in %d pages", collection, records, len(pages))
        return pages, sorted(metadata_keys)

    def _write_csvs(
        self, collection: str, file: str, pages: list[FetchedFile], metadata_keys: list[str], dest: Path
    ) -> list[FetchedFile]:
        """The collection's CSV (``metadata`` object -> ``metadata.<key>`` columns) and, for 1.2 users,
        roles.csv; one raw page in memory at a time."""
        version = self.source.version
        spec = BY_FILE[file]
        outputs = [(file, spec, _CsvOut(dest / file, csv_columns(spec, version)), metadata_keys)]
        if collection == "users" and version == "1.2":
            roles = BY_FILE["roles.csv"]
            outputs.append(("roles.csv", roles, _CsvOut(dest / "roles.csv", csv_columns(roles, version)), []))
        for _, _, out, keys in outputs:
            out.columns = out.columns + [f"metadata.{k}" for k in keys]
            out.write([out.columns])
        try:
            for page in pages:
                objs = [
                    o
                    for o in json.loads(Path(page.local_path).read_bytes())[collection]
                    if isinstance(o, dict)
                ]
                for name, out_spec, out, keys in outputs:
                    rows_of = objs if name == file else [r for u in objs for r in role_rows(u)]
                    out.write([json_to_row(o, out.columns[: len(out.columns) - len(keys)], out_spec.table)
                               + _metadata_cells(o, keys) for o in rows_of])  # fmt: skip
        finally:
            closed = [(name, out, out.file.close()) for name, _, out, _ in outputs]
        return [
            FetchedFile(name, str(out.file.path), size, sha, self.collection_url(collection), 0)
            for name, out, (size, sha) in closed
        ]

    def _write_raw(self, dest: Path, collection: str, number: int, url: str, body: bytes) -> FetchedFile:
        name = f"{RAW_PREFIX}{collection}__{number:04d}.json"
        path = dest / name
        path.write_bytes(body)
        return FetchedFile(name, str(path), len(body), hashlib.sha256(body).hexdigest(), url, 0)

    def _write_manifest(self, dest: Path, modes: dict[str, str]) -> FetchedFile:
        version = self.source.version
        files = [s.file for s in SPECS if version == "1.2" or s.file not in ("roles.csv", "userProfiles.csv")]
        lines = ["propertyName,value", "manifest.version,1.0", f"oneroster.version,{version}"]
        lines += [f"file.{f.removesuffix('.csv')},{modes.get(f, 'absent')}" for f in files]
        lines += [f"source.systemName,OneRoster REST {self.info.host}", "source.systemCode,etl-project-rest"]
        data = ("\r\n".join(lines) + "\r\n").encode()
        path = dest / MANIFEST
        path.write_bytes(data)
        return FetchedFile(MANIFEST, str(path), len(data), hashlib.sha256(data).hexdigest(), self.base_url, 0)
