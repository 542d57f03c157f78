"""Files the project writes are the owner's only: student data and secrets are never world-readable.

Two layers: every entry point sets the process umask to ``PRIVATE_UMASK`` (so every file and folder it or a
library it calls creates is 0600 / 0700), and the known roots (ETL_PROJECT_HOME, archive, warehouse, LMS
file, Dagster home, scratch, reports) are created 0700 explicitly, so their contents stay unreachable for
others even from a process that kept a looser umask. Existing files and folders are left as they are.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_umask() -> int:
    """Make everything this process creates from now on owner-only; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and any missing parent as 0700 (existing folders keep their mode); returns it."""
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, PRIVATE_DIR_MODE)
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty as 0600 if it does not exist (its folder 0700 if missing); returns it.

    SQLite gives its -wal / -shm / -journal files the mode of the database file, so a database created this
    way stays private whatever the umask of the processes that write to it later."""
    path = Path(path)
    private_dir(path.parent)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    return path
