"""Which night a drop belongs to, and when a district's drop for a night is due, in the district's time zone.

A partition night ``D`` is the roster as exported overnight after day ``D``: SIS exports usually run in the
small hours of ``D+1``. The rules, all in the district's own time zone (``District.timezone``):

* a **dated** drop (``2026-11-28/``, ``oneroster_20261128.zip``) belongs to the night in its name;
* the **undated** current drop (``manifest.csv`` at the top of the folder, or one undated zip) belongs to the
  night of its newest file's modification time, where a night runs from noon to noon local time: a drop
  written between 12:00 on ``D`` and 11:59 on ``D+1`` is night ``D`` (so 02:00 on Nov 29 is night Nov 28, and
  an early export at 20:00 on Nov 28 is night Nov 28 too);
* the drop for night ``D`` is **due** at ``District.expected_by_hour`` o'clock local time on ``D+1``: the
  nightly schedule starts the district then (if nothing synced it yet) and the freshness check fails after it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable

from etl_project.districts import District
from etl_project.partitions import PARTITIONS_START
from etl_project.sources import DropListing, RemoteFile

NIGHT_STARTS_AT_HOUR = 12  # local noon: the boundary between two nights for undated drops


def _tz(district: District) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(district.timezone)


def local_now(district: District, now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(_tz(district))


def night_of_mtime(district: District, mtime: float) -> str:
    """The night an undated drop written at ``mtime`` (epoch seconds) belongs to (noon-to-noon local)."""
    local = dt.datetime.fromtimestamp(mtime, tz=_tz(district))
    return (local - dt.timedelta(hours=NIGHT_STARTS_AT_HOUR)).date().isoformat()


def newest_mtime(files: Iterable[RemoteFile]) -> int:
    return max((f.mtime for f in files), default=0)


def night_of_listing(district: District, listing: DropListing) -> str:
    """The partition night of a drop: the date in its name, else the noon-to-noon rule on its newest file."""
    if listing.dated and listing.night:
        return listing.night
    return night_of_mtime(district, newest_mtime(listing.files))


def due_at(district: District, night: str) -> dt.datetime:
    """When the drop for ``night`` is due: ``expected_by_hour`` o'clock local time on the next day."""
    day_after = dt.date.fromisoformat(night) + dt.timedelta(days=1)
    naive = dt.datetime.combine(day_after, dt.time(hour=district.expected_by_hour))
    return naive.replace(tzinfo=_tz(district))


def due_night(district: District, now: dt.datetime) -> str | None:
    """The latest night whose drop is already due at ``now``; None before the first partition night."""
    local = local_now(district, now)
    back = 1 if local.hour >= district.expected_by_hour else 2
    night = (local.date() - dt.timedelta(days=back)).isoformat()
    return night if night >= PARTITIONS_START else None


def is_recent(district: District, night: str, now: dt.datetime, nights: int) -> bool:
    """True when ``night`` is a partition night no older than ``nights`` before the district's local today."""
    if night < PARTITIONS_START:
        return False
    today = local_now(district, now).date()
    return dt.date.fromisoformat(night) >= today - dt.timedelta(days=nights)


def format_lateness(delta: dt.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{mins} min"]
    return " ".join(parts)
