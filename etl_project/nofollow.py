"""Opening files beneath a trusted folder without ever following a symbolic link.

``open_beneath(root, "a/b/c.csv")`` opens ``root`` and then each component relative to the previous one's
file descriptor with ``O_NOFOLLOW``: a link anywhere below ``root`` (a component swapped for a link after it
was listed, too) fails the open instead of reaching outside. Only regular files (or, when asked, folders) are
returned; FIFOs are opened non-blocking so that refusing one never waits for a writer. ``root`` itself is the
operator's configuration and is trusted as given.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import PurePath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class UnsafeEntry(Exception):
    """``entry`` (relative to the root) is a symbolic link or not a regular file; ``what`` says which."""

    def __init__(self, entry: str, what: str):
        super().__init__(f"{entry} is {what}")
        self.entry, self.what = entry, what


def unsafe_sentence(where: str, problems: Iterable[str]) -> str:
    """The one-sentence security refusal of a drop; it names entries only, never a target or any content."""
    where = f" {where}" if where else ""
    return (
        f"SECURITY: the drop{where} is refused as unsafe because {'; '.join(problems)}: links and special "
        "files are never followed or read, as they could expose files outside the district's folder or "
        "another district's drop; replace them with real files and send the drop again"
    )


def describe_mode(mode: int) -> str | None:
    """What an lstat mode is when it is not a regular file or folder ("a symbolic link", "a FIFO"...)."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def unsafe_entries(base: str | os.PathLike[str]) -> list[str]:
    """Every symbolic link or special file anywhere under ``base`` ("sub/users.csv is a symbolic link")."""
    problems = []
    for folder, dirs, names in os.walk(base):  # lists linked folders, never descends into them
        for name in dirs + names:
            path = os.path.join(folder, name)
            what = describe_mode(os.lstat(path).st_mode)
            if what is not None:
                problems.append(f"{PurePath(os.path.relpath(path, base)).as_posix()} is {what}")
    return sorted(problems)


def _parts(relative: str) -> list[str]:
    parts = [p for p in PurePath(relative).parts if p not in ("", ".")]
    if PurePath(relative).is_absolute() or ".." in parts:
        raise UnsafeEntry(relative, "outside the folder")
    return parts


def _open_at(name: str, flags: int, dir_fd: int, shown: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            mode = os.lstat(name, dir_fd=dir_fd).st_mode
            raise UnsafeEntry(shown, describe_mode(mode) or "not a folder") from None
        raise


def open_beneath(root: str | os.PathLike[str], relative: str, *, directory: bool = False) -> int:
    """A read-only fd of ``root/relative`` (a regular file, or a folder if ``directory``); caller closes it.

    Raises ``UnsafeEntry`` for a link or special file on the way, ``FileNotFoundError`` when absent.
    """
    parts = _parts(relative)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            shown = "/".join(parts[: i + 1])
            flags = _FILE_FLAGS if last and not directory else _DIR_FLAGS
            nfd = _open_at(name, flags, fd, shown)
            os.close(fd)
            fd = nfd
            what = describe_mode(os.fstat(fd).st_mode)
            if what is not None or (last and not directory and stat.S_ISDIR(os.fstat(fd).st_mode)):
                raise UnsafeEntry(shown, what or "a folder")
        if not directory:
            os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_beneath(root: str | os.PathLike[str], relative: str, limit: int = -1) -> bytes:
    """The bytes of ``root/relative`` (at most ``limit``), read without following any link."""
    with os.fdopen(open_beneath(root, relative), "rb") as f:
        return f.read(limit)
