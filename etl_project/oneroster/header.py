"""Matching a file's header row to the spec's columns, by name.

Every problem of a header is reported at once (one rejection naming each of them), so a district fixes the
export template in one go instead of one problem per night.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from etl_project.oneroster.spec import IGNORED, SECRET, V11, V12, Column, TableSpec

# OneRoster REST names of references, as found in headers of files built from a REST export: the CSV column
# is the reference name plus ``SourcedId(s)`` (the spec's reference naming rule).
REST_NAMES: dict[str, str] = {
    "orgs": "orgSourcedIds",
    "org": "orgSourcedId",
    "school": "schoolSourcedId",
    "course": "courseSourcedId",
    "terms": "termSourcedIds",
    "user": "userSourcedId",
    "class": "classSourcedId",
    "parent": "parentSourcedId",
    "schoolYear": "schoolYearSourcedId",
    "primaryOrg": "primaryOrgSourcedId",
    "userProfile": "userProfileSourcedId",
}


class HeaderProblem(Exception):
    """The header cannot be used; ``problems`` holds every (code, message) found, the first in ``code``."""

    def __init__(self, code: str, message: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.code = code
        self.problems = problems or [(code, message)]


@dataclass
class HeaderMap:
    ncols: int  # columns DuckDB reads (trailing unnamed columns dropped)
    mapping: dict[str, str]  # spec column -> staged column (c0..)
    metadata: list[tuple[str, str]]  # (key, staged column) kept in the metadata JSON
    raw: list[tuple[str, str]]  # (header name, staged column) for the raw JSON of rejects (no secrets)
    warnings: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the header's names, staged column c<i> = names[i]
    trailing: int = 0  # unnamed columns dropped from the header's end


@dataclass
class _Matched:
    mapping: dict[str, str] = field(default_factory=dict)
    metadata: list[tuple[str, str]] = field(default_factory=list)
    raw: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    rest: dict[str, str] = field(default_factory=dict)  # spec column -> the REST name found instead
    problems: list[tuple[str, str]] = field(default_factory=list)


def map_header(spec: TableSpec, names: list[str], version: str | None) -> HeaderMap:
    file = spec.file
    warnings: list[str] = []
    given = len(names)
    names = _strip_trailing(list(names), file, warnings)
    problems = _name_problems(names)
    if not names:
        _raise(file, problems)
    matched = _match(spec, names, warnings)
    problems += matched.problems
    if "sourcedId" not in matched.mapping:
        problems.append(_layout_problem(spec, names))
    else:
        problems += _missing_problems(spec, matched, version)
    if problems:
        _raise(file, problems)
    warnings += _unknown_warnings(spec, matched)
    warnings += _version_warnings(spec, matched.mapping, version)
    absent = [
        c.name
        for c in spec.columns
        if c.name not in matched.mapping and c.kind != IGNORED and (version is None or version in c.versions)
    ]
    if absent and matched.mapping.keys() - {"sourcedId"}:
        warnings.append(f"{file}: optional column(s) {', '.join(absent)} not in the header; left empty")
    return HeaderMap(
        len(names), matched.mapping, matched.metadata, matched.raw, warnings, names, given - len(names)
    )


def _raise(file: str, problems: list[tuple[str, str]]) -> None:
    text = f"{file}: " + "; ".join(message for _, message in problems) + "; the whole file was not loaded"
    raise HeaderProblem(problems[0][0], text, [(code, f"{file}: {message}") for code, message in problems])


def _strip_trailing(names: list[str], file: str, warnings: list[str]) -> list[str]:
    trailing = 0
    while names and names[-1] == "":
        names.pop()
        trailing += 1
    if trailing:
        warnings.append(f"{file}: the header ends with {trailing} column(s) without a name; they are ignored")
    return names


def _name_problems(names: list[str]) -> list[tuple[str, str]]:
    """An empty header, columns without a name, names that appear twice."""
    if not names:
        return [("unknown_header", "the header row is empty")]
    problems = [
        ("unknown_header", f"column {i + 1} of the header has no name")
        for i, name in enumerate(names)
        if name == ""
    ]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name and name in seen:
            problems.append(
                (
                    "duplicate_header",
                    f"the column name {name!r} appears twice in the header (columns {seen[name] + 1} and "
                    f"{i + 1}); keep one",
                )
            )
        seen.setdefault(name, i)
    return problems


def _column_for(spec: TableSpec, name: str, file: str, warnings: list[str]) -> Column | None:
    """The spec column a header name means: exact, 1.0 alias (warning) or another case (warning)."""
    for col in spec.columns:
        if col.name == name:
            return col
    for col in spec.columns:
        if name in col.aliases:
            warnings.append(
                f"{file}: column {name!r} is the OneRoster 1.0 name of {col.name!r}; read as {col.name}"
            )
            return col
    for col in spec.columns:
        if col.name.lower() == name.lower():
            warnings.append(f"{file}: column {name!r} read as {col.name!r} (header names are case-sensitive)")
            return col
    return None


def _match(spec: TableSpec, names: list[str], warnings: list[str]) -> _Matched:
    m = _Matched()
    columns = {c.name for c in spec.columns}
    for i, name in enumerate(names):
        x = f"c{i}"
        if name.lower().startswith("metadata."):
            m.metadata.append((name[len("metadata.") :], x))
            m.raw.append((name, x))
            continue
        col = _column_for(spec, name, spec.file, warnings) if name else None
        if col is None:
            if name and REST_NAMES.get(name) in columns:
                m.rest[REST_NAMES[name]] = name
            if name:
                m.unknown.append(name)
            m.metadata.append((name, x))
            m.raw.append((name, x))
            continue
        if col.name in m.mapping:
            if name not in names[:i]:  # the same name twice is already one of the _name_problems
                m.problems.append(
                    (
                        "duplicate_header",
                        f"two header columns both mean {col.name!r} (column {i + 1}); keep one",
                    )
                )
            continue
        m.mapping[col.name] = x
        if col.kind != SECRET:
            m.raw.append((name, x))
    return m


def _layout_problem(spec: TableSpec, names: list[str]) -> tuple[str, str]:
    expected = [c.name for c in spec.columns]
    prefixed = [n for n in names if "." in n and not n.lower().startswith("metadata.")]
    if prefixed and len(prefixed) >= len(names) / 2:
        return (
            "unknown_header",
            f"unknown header layout: columns such as {prefixed[0]!r} carry a table prefix; the export seems "
            "to have added table names to the column names (e.g. a PowerSchool export); export the OneRoster "
            f"column names ({', '.join(expected[:4])}, ...) without prefixes",
        )
    return (
        "unknown_header",
        f"unknown header layout: no sourcedId column (found {', '.join(names[:6])}"
        f"{', ...' if len(names) > 6 else ''}); expected {', '.join(expected[:5])}, ...",
    )


def _missing_problems(spec: TableSpec, m: _Matched, version: str | None) -> list[tuple[str, str]]:
    """One problem per missing required column; a REST name standing in its place is named."""
    missing = [c.name for c in spec.columns if c.is_required(version) and c.name not in m.mapping]
    problems = [
        (
            "missing_column",
            f"required column {name} is missing; the header has {m.rest[name]!r}, the OneRoster REST name: "
            f"in a CSV file the column is called {name} and holds the sourcedId(s) it refers to",
        )
        for name in missing
        if name in m.rest
    ]
    plain = [name for name in missing if name not in m.rest]
    if plain:
        problems.append(("missing_column", f"required column(s) {', '.join(plain)} missing from the header"))
    return problems


def _unknown_warnings(spec: TableSpec, m: _Matched) -> list[str]:
    if not m.unknown:
        return []
    hints = []
    for name in m.unknown:
        if name in REST_NAMES and REST_NAMES[name] in m.rest:
            hints.append(f"{name!r} is the OneRoster REST name of {REST_NAMES[name]!r}: rename the column")
            continue
        free = [c.name for c in spec.columns if c.name not in m.mapping]
        close = difflib.get_close_matches(name, free, 1, 0.8)
        if close:
            hints.append(f"{name!r} looks like a misspelling of {close[0]!r}")
    return [
        f"{spec.file}: column(s) {', '.join(m.unknown)} are not OneRoster columns (extensions should be "
        "named metadata.*); kept in metadata" + (f" ({'; '.join(hints)})" if hints else "")
    ]


def _version_warnings(spec: TableSpec, mapping: dict[str, str], version: str | None) -> list[str]:
    """Columns of the other OneRoster version (users.orgSourcedIds and role are 1.1 only, ...)."""
    if version is None:
        return []
    other = [c.name for c in spec.columns if c.name in mapping and version not in c.versions]
    if not other:
        return []
    if version in V12:
        where = " (1.2 keeps a user's orgs and roles in roles.csv)" if spec.file == "users.csv" else ""
        return [
            f"{spec.file}: column(s) {', '.join(other)} belong to OneRoster 1.1, not to this 1.2 "
            f"file{where}; kept as sent, but a 1.2 export should leave them out"
        ]
    assert version in V11
    return [
        f"{spec.file}: column(s) {', '.join(other)} belong to OneRoster 1.2, not to this 1.1 file; kept as "
        "sent: check that manifest.csv gives the right oneroster.version"
    ]
