"""The embedded default archive: a local folder with the S3 layout and the same versioning semantics.

The visible ``district=<id>/date=<night>/<file>`` is the latest version; every version is kept, content-
addressed, under ``.versions/district=<id>/date=<night>/<file>/<version id>`` (version id = the first 32 hex
digits of the sha256). The visible file is a hard link to its version (no second copy), replaced atomically.

Reading the latest version never follows a symbolic link (``etl_project.nofollow``) and accepts only a regular
file whose bytes match a version stored under its own key: a link or a file planted in the archive
(``report.html -> /etc/passwd``, another district's report) raises ``UnsafeArchiveEntry`` and is not read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from etl_project.archive.base import SNAPSHOT_NAME, Archive, ArchiveIntegrityError, UnsafeArchiveEntry
from etl_project.files import private_dir
from etl_project.nofollow import UnsafeEntry, open_beneath, read_beneath
from etl_project.partitions import validate_district_id

VERSIONS = ".versions"
CHUNK = 1 << 20


def file_uri(path: Path) -> str:
    """``file://`` URI that keeps ``district=`` / ``date=`` readable (``=`` is legal in a URI path)."""
    return "file://" + quote(str(path), safe="/=:@-._~!$&'()*+,;")


def version_id_for(sha256: str) -> str:
    return sha256[:32]


class LocalArchive(Archive):
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()
        self.prefix = ""

    def __repr__(self) -> str:
        return f"LocalArchive({str(self.root)!r})"

    def _paths(self, key: str, version_id: str) -> tuple[Path, Path]:
        return self.root / key, self.root / VERSIONS / key / version_id

    def _publish(self, current: Path, version_path: Path) -> None:
        """Make ``current`` the given version: hard link (or copy) under a temp name, then atomic rename."""
        private_dir(self.root)
        current.parent.mkdir(parents=True, exist_ok=True)
        if current.exists() and os.path.samefile(current, version_path):
            return
        tmp = current.parent / f".{current.name}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(version_path, tmp)
        except OSError:
            shutil.copyfile(version_path, tmp)
        os.replace(tmp, current)

    def _write_version(self, version_path: Path, write) -> str:
        private_dir(self.root)
        version_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=version_path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                sha = write(out)
            os.chmod(tmp_name, 0o400)  # read-only: a version never changes; the owner's only
            os.replace(tmp_name, version_path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return sha

    def _store_file(self, key: str, path: str, sha256: str, size: int, content_type: str) -> tuple[str, str]:
        version = version_id_for(sha256)
        current, version_path = self._paths(key, version)
        if not (version_path.exists() and version_path.stat().st_size == size):

            def copy(out) -> str:
                h = hashlib.sha256()
                with open(path, "rb") as src:
                    while block := src.read(CHUNK):
                        h.update(block)
                        out.write(block)
                return h.hexdigest()

            actual = self._write_version(version_path, copy)
            if actual != sha256:
                version_path.unlink(missing_ok=True)
                raise ArchiveIntegrityError(
                    f"{path} changed since it was fetched (sha256 {actual}, not {sha256})"
                )
        self._publish(current, version_path)
        return file_uri(current), version

    def _store_bytes(self, key: str, data: bytes, sha256: str, content_type: str) -> tuple[str, str]:
        version = version_id_for(sha256)
        current, version_path = self._paths(key, version)
        if not version_path.exists():
            self._write_version(version_path, lambda out: out.write(data))
        self._publish(current, version_path)
        return file_uri(current), version

    def _read_latest(self, key: str) -> tuple[bytes, str, str] | None:
        try:
            data = read_beneath(self.root, key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except UnsafeEntry as exc:
            raise UnsafeArchiveEntry(
                f"SECURITY: {exc} in the archive {self.root}; refused: links and special files are never read"
            ) from None
        version = version_id_for(hashlib.sha256(data).hexdigest())
        if not self._has_version(key, version):
            raise UnsafeArchiveEntry(
                f"SECURITY: {key} in the archive {self.root} is not a file etl-project wrote "
                "(no stored version holds its bytes); refused"
            )
        return data, file_uri(self.root / key), version

    def _has_version(self, key: str, version: str) -> bool:
        try:
            os.close(open_beneath(self.root, f"{VERSIONS}/{key}/{version}"))
        except (FileNotFoundError, NotADirectoryError, UnsafeEntry):
            return False
        return True

    def _download_version(self, key: str, version_id: str, dest: Path) -> None:
        _, version_path = self._paths(key, version_id)
        if not version_path.exists():
            raise ArchiveIntegrityError(
                f"version {version_id} of {self.root / key} is missing from the archive"
            )
        shutil.copyfile(version_path, dest)

    def _snapshot_nights(self, district: str) -> list[str]:
        base = self.root / f"district={district}"
        return [p.parent.name.removeprefix("date=") for p in base.glob(f"date=*/{SNAPSHOT_NAME}")]

    def purge_district(self, district: str) -> int:
        validate_district_id(district)
        count = 0
        for base in (self.root / f"district={district}", self.root / VERSIONS / f"district={district}"):
            if base.exists():
                count += sum(1 for p in base.rglob("*") if p.is_file())
                shutil.rmtree(base)
        return count
