"""Matching a file's header row to the spec's columns, by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from etl_project.oneroster.spec import SECRET, TableSpec


class HeaderProblem(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class HeaderMap:
    ncols: int  # columns DuckDB reads (trailing unnamed columns dropped)
    mapping: dict[str, str]  # spec column -> staged column (c0..)
    metadata: list[tuple[str, str]]  # (key, staged column) kept in the metadata JSON
    raw: list[tuple[str, str]]  # (header name, staged column) for the raw JSON of rejects (no secrets)
    warnings: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the header's names, staged column c<i> = names[i]


def map_header(spec: TableSpec, names: list[str], version: str | None) -> HeaderMap:
    file = spec.file
    warnings: list[str] = []
    names = list(names)
    trailing = 0
    while names and names[-1] == "":
        names.pop()
        trailing += 1
    if trailing:
        warnings.append(f"{file}: the header ends with {trailing} column(s) without a name; they are ignored")
    if not names:
        raise HeaderProblem("unknown_header", f"{file}: the header row is empty")
    for i, name in enumerate(names):
        if name == "":
            raise HeaderProblem("unknown_header", f"{file}: column {i + 1} of the header has no name")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise HeaderProblem(
                "duplicate_header",
                f"{file}: the column name {name!r} appears twice in the header (columns {seen[name] + 1} "
                f"and {i + 1})",
            )
        seen[name] = i
    exact = {c.name: c for c in spec.columns}
    alias = {a: c for c in spec.columns for a in c.aliases}
    folded = {c.name.lower(): c for c in spec.columns}
    mapping: dict[str, str] = {}
    metadata: list[tuple[str, str]] = []
    raw: list[tuple[str, str]] = []
    unknown: list[str] = []
    for i, name in enumerate(names):
        x = f"c{i}"
        col = None
        if name.lower().startswith("metadata."):
            metadata.append((name[len("metadata.") :], x))
        elif name in exact:
            col = exact[name]
        elif name in alias:
            col = alias[name]
            warnings.append(
                f"{file}: column {name!r} is the OneRoster 1.0 name of {col.name!r}; read as {col.name}"
            )
        elif name.lower() in folded:
            col = folded[name.lower()]
            warnings.append(f"{file}: column {name!r} read as {col.name!r} (header names are case-sensitive)")
        else:
            unknown.append(name)
            metadata.append((name, x))
        if col is not None:
            if col.name in mapping:
                raise HeaderProblem(
                    "duplicate_header", f"{file}: two header columns both mean {col.name!r} (column {i + 1})"
                )
            mapping[col.name] = x
            if col.kind == SECRET:
                continue
        raw.append((name, x))
    if "sourcedId" not in mapping:
        expected = [c.name for c in spec.columns]
        prefixed = [n for n in names if "." in n and not n.lower().startswith("metadata.")]
        if prefixed and len(prefixed) >= len(names) / 2:
            raise HeaderProblem(
                "unknown_header",
                f"{file}: unknown header layout: columns such as {prefixed[0]!r} carry a table prefix; "
                "the export seems to have added table names to the column names (e.g. a PowerSchool "
                f"export); export the OneRoster column names ({', '.join(expected[:4])}, ...) "
                "without prefixes",
            )
        raise HeaderProblem(
            "unknown_header",
            f"{file}: unknown header layout: no sourcedId column (found {', '.join(names[:6])}"
            f"{', ...' if len(names) > 6 else ''}); expected {', '.join(expected[:5])}, ...",
        )
    missing = [c.name for c in spec.columns if c.is_required(version) and c.name not in mapping]
    if missing:
        raise HeaderProblem(
            "missing_column",
            f"{file}: required column(s) {', '.join(missing)} missing from the header; the whole file was "
            f"not loaded",
        )
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(
                name, [c.name for c in spec.columns if c.name not in mapping], 1, 0.8
            )
            if close:
                hints.append(f"{name!r} looks like a misspelling of {close[0]!r}")
        warnings.append(
            f"{file}: column(s) {', '.join(unknown)} are not OneRoster columns (extensions should be named "
            f"metadata.*); kept in metadata" + (f" ({'; '.join(hints)})" if hints else "")
        )
    absent = [
        c.name
        for c in spec.columns
        if c.name not in mapping and c.kind != "ignored" and (version is None or version in c.versions)
    ]
    if absent and mapping.keys() - {"sourcedId"}:
        warnings.append(f"{file}: optional column(s) {', '.join(absent)} not in the header; left empty")
    return HeaderMap(
        ncols=len(names), mapping=mapping, metadata=metadata, raw=raw, warnings=warnings, names=names
    )
