"""OneRoster REST JSON records as the rows a conformant OneRoster CSV *bulk* export writes.

* ``status`` and ``dateLastModified`` stay empty (the CSV binding forbids them in bulk files). A record the
  API marks ``tobedeleted`` (or the deprecated ``inactive``) is left out of its file: in a bulk set a
  missing record is how a deletion is said, while a row would read as active. Its raw page keeps it and
  the conversion report lists its sourcedId. An unknown status is kept as active, with a warning.
* Booleans become ``true``/``false`` from JSON true/false, "true"/"false" (any case), 1/0 and "1"/"0".
* Date fields become ``YYYY-MM-DD``: a date-time at midnight as written (``2025-08-11T00:00:00.000Z``)
  silently; another time of day keeps its date as written, with a warning (the API's time zone may shift
  the day).
* A value it cannot convert is written as received, so the validator rejects the row with its reason.
* Every warning names the file, field, record (sourcedId) and the JSON type, never the value (it may be
  personal data, e.g. a birth date).
* 1.2 users' ``roles[]`` and ``userProfiles[]`` become roles.csv and userProfiles.csv rows; their
  sourcedIds are derived from the user's (a profileId is unique only within its user).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from etl_project.oneroster.spec import BOOL, DATE, OPTIONAL_REFS, REQUIRED_REFS, TableSpec

EXAMPLES = 5  # sourcedIds named in a warning sentence
LISTED = 1000  # sourcedIds kept per problem (and per omitted file) in the conversion report
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE, _FALSE = ("true", "1"), ("false", "0")
_GONE = ("tobedeleted", "inactive")

# CSV column -> JSON field holding its GUIDRef(s)
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
_WHAT = {
    "not_midnight": "is a date-time with a time of day other than midnight; its date as written was kept "
    "(check the API's time zone: the day may be off by one)",
    "bad_date": "is not a date; it was written as received and the validator rejects the row",
    "bad_boolean": 'is not true/false, 1/0 or "true"/"false"; it was written as received and the '
    "validator rejects the row",
    "unknown_status": "is neither active nor tobedeleted; the record was kept as active",
    "extra_credentials": "holds more than one credential; userProfiles.csv has room for one, the first "
    "was kept",
    "gone_reference": "refers to a record the API marks tobedeleted (left out of the drop); the validator "
    "rejects the row or warns",
}

_ABOUT_RECORDS = ("extra_credentials", "gone_reference")  # not about a value's type


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(value), "null")


@dataclass
class Problem:
    file: str
    field: str
    problem: str
    json_type: str
    count: int = 0
    sourced_ids: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        shown = ", ".join(self.sourced_ids[:EXAMPLES]) + (" and others" if self.count > EXAMPLES else "")
        sent = "" if self.problem in _ABOUT_RECORDS else f"; the API sent a JSON {self.json_type}"
        return f"{self.file}: {self.field} of {self.count} record(s) ({shown}) {_WHAT[self.problem]}{sent}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "field": self.field,
            "problem": self.problem,
            "json_type": self.json_type,
            "count": self.count,
            "sourcedIds": self.sourced_ids,
        }


@dataclass
class ConversionNotes:
    """What the conversion left out or could not convert, by file, field and record."""

    records: dict[str, int] = field(default_factory=dict)  # file -> records received
    written: dict[str, int] = field(default_factory=dict)  # file -> rows written
    omitted: dict[str, list[str]] = field(default_factory=dict)  # file -> tobedeleted sourcedIds
    gone: dict[str, set[str]] = field(default_factory=dict)  # table -> tobedeleted sourcedIds
    problems: dict[tuple[str, str, str, str], Problem] = field(default_factory=dict)

    def note(self, file: str, sourced_id: Any, column: str, problem: str, value: Any) -> None:
        kind = json_type(value)
        entry = self.problems.setdefault((file, column, problem, kind), Problem(file, column, problem, kind))
        entry.count += 1
        if len(entry.sourced_ids) < LISTED:
            entry.sourced_ids.append(str(sourced_id))

    def see(self, table: str, obj: dict[str, Any]) -> None:
        """Called for every record before any row is written: a tobedeleted record is remembered, so a
        reference to it is noted wherever it comes from (even earlier in its own collection)."""
        if record_status(obj.get("status")) == "tobedeleted":
            self.gone.setdefault(table, set()).add(str(raw_value(obj, "sourcedId", table)))

    def warnings(self) -> list[str]:
        return [p.sentence() for p in self.problems.values()]

    def to_json(self, version: str) -> dict[str, Any]:
        files = {
            f: {"records": self.records.get(f, 0), "rows": n, "omitted_tobedeleted": self.omitted.get(f, [])}
            for f, n in self.written.items()
        }
        return {
            "oneroster_version": version,
            "mode": "bulk",
            "files": files,
            "warnings": self.warnings(),
            "problems": [p.to_json() for p in self.problems.values()],
        }


# ----------------------------------------------------------------------------------------- single values


def _ref(value: Any) -> Any:
    return value.get("sourcedId") if isinstance(value, dict) else value


def _refs(value: Any) -> list[Any]:
    if value is None:
        return []
    return [_ref(v) for v in (value if isinstance(value, list) else [value])]


def _user_id(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + f"{value.get('type', '')}:{value.get('identifier', '')}" + "}"
    return str(value)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value if v is not None)
    if isinstance(value, dict):
        return str(value.get("sourcedId", ""))
    return str(value)


def _as_received(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else cell(value)


def to_boolean(value: Any) -> tuple[str, str | None]:
    """(CSV cell, problem): ``true``/``false`` or the value as received."""
    if isinstance(value, bool):
        return cell(value), None
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in _TRUE:
        return "true", None
    if text in _FALSE:
        return "false", None
    return _as_received(value), "bad_boolean"


def to_date(value: Any) -> tuple[str, str | None]:
    """(CSV cell, problem): ``YYYY-MM-DD`` from a date or a date-time, or the value as received."""
    if not isinstance(value, str):
        return _as_received(value), "bad_date"
    text = value.strip()
    if _DATE.fullmatch(text):
        return text, None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return value, "bad_date"
    if len(text) < 11 or not _DATE.fullmatch(text[:10]) or text[10] not in "Tt ":
        return value, "bad_date"  # fromisoformat also reads week dates and compact forms
    return parsed.date().isoformat(), None if parsed.time() == dt.time() else "not_midnight"


def record_status(value: Any) -> str:
    """``active``, ``tobedeleted`` or ``unknown`` (a missing status is a Record[-], i.e. present)."""
    if value is None or value == "":
        return "active"
    text = str(value).strip().lower()
    if text in _GONE:
        return "tobedeleted"
    return "active" if text == "active" else "unknown"


# ------------------------------------------------------------------------------------------ whole records


def raw_value(obj: dict[str, Any], col: str, table: str) -> Any:
    """The JSON value behind a CSV column (GUIDRefs -> sourcedIds)."""
    if col == "password":
        return None  # never written, even if an API sends it
    if col in _REFLIST_FIELDS and (_REFLIST_FIELDS[col] in obj or col not in obj):
        return _refs(obj.get(_REFLIST_FIELDS[col]))
    if col in _REF_FIELDS and _REF_FIELDS[col] in obj:
        return _ref(obj.get(_REF_FIELDS[col]))
    if col == "userIds":
        return [_user_id(v) for v in obj.get("userIds") or []]
    if col in _RENAMED:
        return next((obj[k] for k in _RENAMED[col] if obj.get(k) is not None), None)
    if col == "sourcedId" and table == "demographics" and "sourcedId" not in obj:
        return _ref(obj.get("user"))
    return obj.get(col)


class RowWriter:
    """One CSV file's rows from JSON records, converted as a bulk export writes them."""

    def __init__(self, spec: TableSpec, columns: list[str], notes: ConversionNotes):
        self.spec, self.columns, self.notes = spec, columns, notes
        self.kinds = {c.name: c.kind for c in spec.columns}
        self.refs = dict((*REQUIRED_REFS.get(spec.table, ()), *OPTIONAL_REFS.get(spec.table, ())))

    def row(self, obj: dict[str, Any]) -> list[str]:
        sid = raw_value(obj, "sourcedId", self.spec.table)
        out: list[str] = []
        for name in self.columns:
            kind = self.kinds.get(name)
            value = raw_value(obj, name, self.spec.table)
            if name in ("status", "dateLastModified") or value is None:
                out.append("")  # bulk rows leave both empty
                continue
            problem = None
            if kind == BOOL:
                text, problem = to_boolean(value)
            elif kind == DATE:
                text, problem = to_date(value)
            else:
                text = cell(value)
            if self.refs.get(name) in self.notes.gone:
                self._gone_refs(sid, name, self.refs[name], value)
            if problem:
                self.notes.note(self.spec.file, sid, name, problem, value)
            out.append(text)
        return out

    def _gone_refs(self, sid: Any, name: str, target: str, value: Any) -> None:
        refs = value if isinstance(value, list) else [value]
        if any(r in self.notes.gone[target] for r in refs):
            self.notes.note(self.spec.file, sid, name, "gone_reference", value)

    def keep(self, obj: dict[str, Any]) -> bool:
        """False for a record the API marks tobedeleted (noted); an unknown status is noted and kept."""
        status = record_status(obj.get("status"))
        sid = raw_value(obj, "sourcedId", self.spec.table)
        if status == "unknown":
            self.notes.note(self.spec.file, sid, "status", "unknown_status", obj.get("status"))
        if status != "tobedeleted":
            return True
        omitted = self.notes.omitted.setdefault(self.spec.file, [])
        if len(omitted) < LISTED:
            omitted.append(str(sid))
        return False


# --------------------------------------------------------------------------- 1.2 users: roles, userProfiles


def profile_id(user_id: Any, profile: Any) -> str:
    return f"{user_id}-{profile}"


def role_rows(user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A 1.2 user's ``roles[]`` as roles.csv objects; the role's sourcedId is derived from its parts."""
    uid = user.get("sourcedId")
    for role in user.get("roles") or []:
        org = _ref(role.get("org"))
        parts = (uid, role.get("roleType"), role.get("role"), org)
        yield {
            "sourcedId": "-".join(str(p) for p in parts),
            "userSourcedId": uid,
            "roleType": role.get("roleType"),
            "role": role.get("role"),
            "beginDate": role.get("beginDate"),
            "endDate": role.get("endDate"),
            "orgSourcedId": org,
            "userProfileSourcedId": _profile_ref(uid, role.get("userProfile")),
        }


def _profile_ref(user_id: Any, profile: Any) -> str | None:
    """A role's ``userProfile`` (the profileId, or a GUIDRef some servers send) as its CSV sourcedId."""
    if isinstance(profile, dict):
        return _ref(profile)
    return None if profile is None else profile_id(user_id, profile)


def profile_rows(user: dict[str, Any], notes: ConversionNotes) -> Iterator[dict[str, Any]]:
    """A 1.2 user's ``userProfiles[]`` as userProfiles.csv objects (first credential; never a password)."""
    uid = user.get("sourcedId")
    for profile in user.get("userProfiles") or []:
        sid = profile_id(uid, profile.get("profileId"))
        credentials = [c for c in profile.get("credentials") or [] if isinstance(c, dict)]
        if len(credentials) > 1:
            notes.note("userProfiles.csv", sid, "credentials", "extra_credentials", credentials)
        first = credentials[0] if credentials else {}
        yield {
            "sourcedId": sid,
            "userSourcedId": uid,
            "profileType": profile.get("profileType"),
            "vendorId": profile.get("vendorId"),
            "applicationId": profile.get("applicationId"),
            "description": profile.get("description"),
            "credentialType": first.get("type", first.get("credentialType")),
            "username": first.get("username"),
        }
