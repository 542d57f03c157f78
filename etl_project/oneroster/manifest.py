"""manifest.csv: a small key/value file read as a map (row order differs between producers)."""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

from etl_project.oneroster.spec import KNOWN_FILES, MANIFEST_PROPERTIES, MODES, SUPPORTED_VERSIONS


class ManifestError(Exception):
    """The manifest cannot be used at all: the drop is refused."""


@dataclass
class Manifest:
    version: str  # "1.1" or "1.2"
    raw_version: str
    # Spec file name -> mode; ``None`` when the row exists but its value is empty/unknown.
    modes: dict[str, str | None] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


_FILE_NAMES = {f.removesuffix(".csv").lower(): f for f in KNOWN_FILES}


def parse_manifest(path: Path) -> Manifest:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"manifest.csv is not UTF-8 text (byte offset {exc.start}); "
            "save it as UTF-8 and send the drop again"
        ) from None
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    except csv.Error as exc:
        raise ManifestError(f"manifest.csv cannot be read as CSV: {exc}") from None
    warnings: list[str] = []
    if not rows:
        raise ManifestError("manifest.csv is empty")
    header = [c.strip() for c in rows[0]]
    if [h.lower() for h in header[:2]] == ["propertyname", "value"]:
        rows = rows[1:]
    else:
        warnings.append(f"manifest.csv: header is {','.join(header)!r}, expected 'propertyName,value'")
    properties: dict[str, str] = {}
    modes: dict[str, str | None] = {}
    for line, row in enumerate(rows, start=2):
        name = row[0].strip()
        value = row[1].strip() if len(row) > 1 else ""
        if name in properties:
            warnings.append(f"manifest.csv line {line}: {name!r} appears twice; the last value is used")
        properties[name] = value
        lowered = name.lower()
        if lowered.startswith("file."):
            spec_file = _FILE_NAMES.get(lowered[5:])
            if spec_file is None:
                warnings.append(f"manifest.csv line {line}: {name!r} names no OneRoster file; row ignored")
                continue
            mode = value.lower()
            if mode not in MODES:
                warnings.append(
                    f"manifest.csv line {line}: {name} has value {value!r}; expected bulk, delta or absent"
                )
                modes[spec_file] = None
            else:
                modes[spec_file] = mode
        elif name not in MANIFEST_PROPERTIES:
            close = difflib.get_close_matches(
                lowered,
                [*(p.lower() for p in MANIFEST_PROPERTIES), *(f"file.{k}" for k in _FILE_NAMES)],
                1,
                0.8,
            )
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            warnings.append(f"manifest.csv line {line}: unknown property {name!r}{hint}; row ignored")
    raw_version = properties.get("oneroster.version", "")
    if not raw_version:
        raise ManifestError("manifest.csv has no oneroster.version row, so the OneRoster version is unknown")
    version = next(
        (v for v in SUPPORTED_VERSIONS if raw_version == v or raw_version.startswith(v + ".")), None
    )
    if version is None:
        raise ManifestError(
            f"manifest.csv says oneroster.version {raw_version!r}; only OneRoster 1.1 and 1.2 are supported"
        )
    return Manifest(
        version=version, raw_version=raw_version, modes=modes, properties=properties, warnings=warnings
    )
