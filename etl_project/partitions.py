"""The one partitioning scheme: night (daily) × district (dynamic), declared once.

A partition key reads ``2026-11-28|lincoln``: Dagster orders dimensions by name, so ``date`` comes first.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

DISTRICTS_PARTITION = "districts"
PARTITIONS_START = "2026-09-01"

districts_partitions = DynamicPartitionsDefinition(name=DISTRICTS_PARTITION)
# end_offset=1: the current night (today, UTC) is a partition: a drop named with its date syncs at once.
nights_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)
district_nights = MultiPartitionsDefinition({"date": nights_partitions, "district": districts_partitions})

_DISTRICT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidDistrictId(ValueError):
    pass


class NightOutOfRange(ValueError):
    """A well-formed date that is not one of the partitions' nights (before the start, or after today)."""


def validate_district_id(district_id: str) -> str:
    """District ids become partition keys, run tags, file names and S3 path segments: keep them boring."""
    if not isinstance(district_id, str) or not _DISTRICT_ID.match(district_id):
        raise InvalidDistrictId(
            f"invalid district id {district_id!r}: use 1-63 characters from a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return district_id


def validate_night(date: str) -> str:
    if not isinstance(date, str) or not _DATE.match(date):
        raise ValueError(f"invalid date {date!r}: expected YYYY-MM-DD")
    datetime.date.fromisoformat(date)
    return date


def validate_partition_night(date: str, now: datetime.datetime | None = None) -> str:
    """``date`` when it is a partition night (from PARTITIONS_START to today, UTC), else NightOutOfRange."""
    validate_night(date)
    keys = nights_partitions.get_partition_keys(current_time=now)
    last = keys[-1] if keys else PARTITIONS_START
    if not keys or not PARTITIONS_START <= date <= last:
        raise NightOutOfRange(
            f"no night {date}: nights run from {PARTITIONS_START} to {last} (today, UTC)"
            "; pick one in that range"
        )
    return date


@dataclass(frozen=True)
class DistrictNight:
    """One partition: one district's drop for one night."""

    date: str
    district: str

    @property
    def key(self) -> MultiPartitionKey:
        return MultiPartitionKey({"date": self.date, "district": self.district})

    def __str__(self) -> str:
        return f"{self.date}|{self.district}"

    @classmethod
    def of(cls, partition_key: str | MultiPartitionKey) -> DistrictNight:
        """Parse a partition key, whether Dagster hands us a MultiPartitionKey or a plain string."""
        if isinstance(partition_key, MultiPartitionKey):
            dims = partition_key.keys_by_dimension
            return cls(date=dims["date"], district=dims["district"])
        date, _, district = str(partition_key).partition("|")
        return cls(date=validate_night(date), district=validate_district_id(district))
