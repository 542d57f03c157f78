"""Small helpers that lay out OneRoster drops on disk the way SIS exports do (for source tests)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

USERS = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName\n"
    "u1,,,true,org1,student,ada,,Ada,Lovelace\n"
)
ORGS = (
    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\norg1,,,Lincoln High,school,,\n"
)


def manifest(modes: dict[str, str]) -> str:
    rows = ["propertyName,value", "manifest.version,1.0", "oneroster.version,1.1"]
    rows += [f"file.{table},{mode}" for table, mode in modes.items()]
    return "\n".join(rows) + "\n"


def drop_files(extra_users: int = 0) -> dict[str, str]:
    users = USERS + "".join(f"u{i},,,true,org1,student,s{i},,S,{i}\n" for i in range(2, 2 + extra_users))
    return {
        "manifest.csv": manifest({"orgs": "bulk", "users": "bulk", "enrollments": "absent"}),
        "orgs.csv": ORGS,
        "users.csv": users,
    }


def write_folder_drop(folder: Path, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or drop_files()).items():
        (folder / name).write_text(text)
    return folder


def zip_bytes(files: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (files or drop_files()).items():
            zf.writestr(name, text)
    return buf.getvalue()


def write_zip_drop(path: Path, files: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zip_bytes(files))
    return path
