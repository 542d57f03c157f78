"""A district drop folder on this machine: the embedded default, and districts that push to a server we run.

Same discovery and completeness rules as SFTP (see ``etl_project.sources.drop``); files are copied in 1 MiB
chunks and hashed on the way. Every folder and file is opened beneath the district's folder with
``O_NOFOLLOW`` (``etl_project.nofollow``), so a link swapped in after the listing is refused, never read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from etl_project.nofollow import describe_mode, open_beneath
from etl_project.sources.base import DropNotFound, RemoteFile, SourceInfo
from etl_project.sources.drop import MANIFEST_MAX_BYTES, DropSourceBase, Entry

CHUNK = 1 << 20


class LocalDropSource(DropSourceBase):
    def __init__(self, path: str | os.PathLike[str]):
        self.root = str(Path(path).expanduser().resolve())
        self.info = SourceInfo(kind="local", host=None, path=self.root)

    def _join(self, directory: str, name: str) -> str:
        return os.path.join(directory, name)

    def _entry(self, path: str, name: str, st: os.stat_result) -> Entry:
        is_dir = stat.S_ISDIR(st.st_mode)
        return Entry(name, path, st.st_size, int(st.st_mtime), is_dir, describe_mode(st.st_mode))

    def _list_dir(self, path: str) -> list[Entry]:
        try:
            fd = open_beneath(self.root, self._relative(path), directory=True)
        except FileNotFoundError:
            raise DropNotFound(f"drop folder {path} does not exist") from None
        try:
            with os.scandir(fd) as it:
                return [
                    self._entry(self._join(path, e.name), e.name, e.stat(follow_symlinks=False)) for e in it
                ]
        finally:
            os.close(fd)

    def _stat(self, path: str) -> Entry | None:
        try:
            return self._entry(path, os.path.basename(path), os.lstat(path))
        except FileNotFoundError:
            return None

    def _read_small(self, path: str) -> bytes:
        with os.fdopen(open_beneath(self.root, self._relative(path)), "rb") as f:
            return f.read(MANIFEST_MAX_BYTES + 1)

    def _download(self, remote: RemoteFile, dest: Path) -> tuple[int, str]:
        sha = hashlib.sha256()
        size = 0
        fd = open_beneath(self.root, self._relative(remote.path))
        with os.fdopen(fd, "rb") as src, open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                sha.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return size, sha.hexdigest()
