"""A district drop folder on this machine: the embedded default, and districts that push to a server we run.

Same discovery and completeness rules as SFTP (see ``etl_project.sources.drop``); files are copied in 1 MiB
chunks and hashed on the way.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from etl_project.sources.base import DropNotFound, RemoteFile, SourceInfo
from etl_project.sources.drop import DropSourceBase, Entry

CHUNK = 1 << 20


class LocalDropSource(DropSourceBase):
    def __init__(self, path: str | os.PathLike[str]):
        self.root = str(Path(path).expanduser().resolve())
        self.info = SourceInfo(kind="local", host=None, path=self.root)

    def _join(self, directory: str, name: str) -> str:
        return os.path.join(directory, name)

    def _entry(self, path: str, name: str, st: os.stat_result) -> Entry:
        return Entry(name, path, st.st_size, int(st.st_mtime), stat.S_ISDIR(st.st_mode))

    def _list_dir(self, path: str) -> list[Entry]:
        try:
            with os.scandir(path) as it:
                return [self._entry(e.path, e.name, e.stat()) for e in it]
        except FileNotFoundError:
            raise DropNotFound(f"drop folder {path} does not exist") from None

    def _stat(self, path: str) -> Entry | None:
        try:
            return self._entry(path, os.path.basename(path), os.stat(path))
        except FileNotFoundError:
            return None

    def _read_small(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def _download(self, remote: RemoteFile, dest: Path) -> tuple[int, str]:
        sha = hashlib.sha256()
        size = 0
        with open(remote.path, "rb") as src, open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                sha.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return size, sha.hexdigest()
