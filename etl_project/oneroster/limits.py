"""Size limits on a CSV file, checked on its bytes before any engine parses it.

Real SIS exports stay far below these limits (OneRoster's widest file has about 30 columns plus
``metadata.*`` extensions; no roster value comes near a megabyte). Hostile or broken files do not: a header
with 10,000 column names makes the parser allocate per column and row, and a line of tens of megabytes
overflows the parser's buffer. See docs/validation-limits.md.

* the header (its length and its number of columns) is checked by ``read.read_header``: over a limit the whole
  file is rejected;
* physical lines longer than ``max_line_bytes`` are found here, by jumping from newline to newline about a
  limit's length at a time (a handful of ``rfind`` calls per chunk, no per-row Python), and are rejected as
  rows; the file handed to DuckDB has them blanked out;
* a value longer than ``max_field_bytes`` is a row rejection checked in SQL (``validate.field_size_check``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class CsvLimits:
    max_columns: int = 256  # header names per file
    max_header_bytes: int = 1 << 20  # length of the header row
    max_field_bytes: int = 1 << 20  # one value
    max_line_bytes: int = 4 << 20  # one physical line (also DuckDB's max_line_size)


def size_text(n: int) -> str:
    """``1,048,576 bytes (1 MiB)``: exact, with a rounded unit for readers."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n:,} bytes ({n / (1 << shift):.3g} {unit})"
    return f"{n:,} bytes"


@dataclass
class LongLine:
    line: int  # physical line number (header = 1)
    start: int  # byte offset of its first byte
    end: int  # byte offset of its newline (or of the end of the file)

    @property
    def size(self) -> int:
        return self.end - self.start


class LongLineFinder:
    """Physical lines longer than ``limit`` bytes, fed chunk by chunk.

    A line longer than ``limit`` has no newline in the ``limit + 1`` bytes after the previous newline, so
    each step looks for the last newline in that window and jumps to it: a few C-speed ``rfind`` per chunk.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.last_nl = -1  # offset of the last newline passed
        self.found: list[LongLine] = []
        self.open: LongLine | None = None  # a long line whose end has not been read yet

    def feed(self, chunk: bytes, base: int, newlines_before: int) -> None:
        end = base + len(chunk)
        if self.open is not None:
            i = chunk.find(b"\n")
            if i < 0:
                return
            self.open.end = base + i
            self.found.append(self.open)
            self.open = None
            self.last_nl = base + i
        while True:
            lo = self.last_nl + 1
            hi = lo + self.limit + 1  # a long line has no newline in [lo, hi)
            if hi > end:
                break
            j = chunk.rfind(b"\n", max(lo - base, 0), hi - base)
            if j >= 0:
                self.last_nl = base + j
                continue
            line = newlines_before + (chunk.count(b"\n", 0, lo - base) if lo > base else 0) + 1
            k = chunk.find(b"\n", hi - base)
            if k < 0:
                self.open = LongLine(line, lo, -1)
                return
            self.found.append(LongLine(line, lo, base + k))
            self.last_nl = base + k
        last = chunk.rfind(b"\n", max(self.last_nl + 1 - base, 0))
        if last >= 0:
            self.last_nl = base + last

    def finish(self, size: int, newlines: int) -> list[LongLine]:
        if self.open is not None:
            self.open.end = size
            self.found.append(self.open)
            self.open = None
        elif size - (self.last_nl + 1) > self.limit:
            self.found.append(LongLine(newlines + 1, self.last_nl + 1, size))
        return self.found


def blank_out(src: Path, dest: Path, lines: list[LongLine], chunk: int = 8 << 20) -> None:
    """Copy ``src`` to ``dest`` with each long line's bytes removed (its newline kept): a blank line.

    A long last line without a newline becomes a newline, so physical line numbers stay the same.
    """
    with open(src, "rb") as f, open(dest, "wb") as out:
        pos = 0
        for long in lines:
            _copy(f, out, pos, long.start - pos, chunk)
            pos = long.end
            f.seek(pos)
            if not f.read(1):
                out.write(b"\n")
        f.seek(pos)
        while data := f.read(chunk):
            out.write(data)


def _copy(f: BinaryIO, out: BinaryIO, start: int, count: int, chunk: int) -> None:
    f.seek(start)
    while count > 0:
        data = f.read(min(chunk, count))
        if not data:
            return
        out.write(data)
        count -= len(data)


def long_value(path: Path, long: LongLine, limits: CsvLimits) -> tuple[int, int] | None:
    """(0-based column, size) of the first value over the field limit on a long line, if there is one.

    Values are split at commas (quotes are not interpreted: an approximation good enough to name the
    column); only the line's first ``max_line_bytes`` are read, then the value is measured by streaming.
    """
    with open(path, "rb") as f:
        f.seek(long.start)
        head = f.read(min(long.size, limits.max_line_bytes))
        offset, column = 0, -1
        for index, value in enumerate(head.split(b",")):
            if len(value) > limits.max_field_bytes or offset + len(value) == len(head) < long.size:
                column = index
                break
            offset += len(value) + 1
        if column < 0:
            return None
        f.seek(long.start + offset)
        size = 0
        while size < long.size - offset:
            data = f.read(min(8 << 20, long.size - offset - size))
            comma = data.find(b",")
            if comma >= 0:
                size += comma
                break
            size += len(data)
        return (column, size) if size > limits.max_field_bytes else None
