"""Scratch space: one root (``ETL_PROJECT_SCRATCH``, default ``$ETL_PROJECT_HOME/scratch``), a folder per use.

A scratch folder is removed when its ``with`` block ends, however it ends. A process killed inside the block
cannot remove it, so every folder is named after its owner (``<prefix>.<pid>@<host>.<random>``) and has an
owner file beside it (``<folder>.owner``, with the process's start time; beside, not inside, so the folder
holds only what its user puts there: a drop fetched into it stays exactly the drop); ``sweep_scratch``
removes the folders whose owner process is gone from this host. Folders of live processes and of other
hosts (a shared scratch volume) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from etl_project.files import private_dir
from etl_project.owner import Owner
from etl_project.settings import Settings

OWNER_SUFFIX = ".owner"


def scratch_root() -> Path:
    return Path(Settings.from_env().scratch_dir)


@contextlib.contextmanager
def scratch_dir(prefix: str, root: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A new, private (0700) folder under the scratch root (or ``root``), removed when the block ends."""
    owner = Owner.of()
    base = private_dir(root if root is not None else scratch_root())
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}.{owner.pid}@{owner.host}.", dir=base))
    try:
        _owner_file(path).write_text(owner.to_json())
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        _owner_file(path).unlink(missing_ok=True)


def _owner_file(folder: Path) -> Path:
    return folder.with_name(folder.name + OWNER_SUFFIX)


def owner_of(folder: Path) -> Owner | None:
    """The owner a scratch folder names (its owner file, else its name); None for anything else."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return Owner.from_json(_owner_file(folder).read_text())
    stem, _, _ = folder.name.rpartition(".")
    head, at, host = stem.rpartition("@")
    pid = head.rpartition(".")[2]
    if not (at and host and pid.isdigit()):
        return None
    return Owner(host=host, pid=int(pid))


def sweep_scratch(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the scratch folders whose owner process is gone from this host; returns what was removed."""
    base = Path(root if root is not None else scratch_root())
    if not base.is_dir():
        return []
    removed = []
    for folder in sorted(base.iterdir()):
        owner = owner_of(folder) if folder.is_dir() and not folder.is_symlink() else None
        if owner is not None and owner.is_dead():
            shutil.rmtree(folder, ignore_errors=True)
            _owner_file(folder).unlink(missing_ok=True)
            removed.append(folder)
    return removed
