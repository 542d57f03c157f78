import datetime

import pytest
from dagster import MultiPartitionKey

from etl_project.partitions import (
    PARTITIONS_START,
    DistrictNight,
    InvalidDistrictId,
    NightOutOfRange,
    district_nights,
    nights_partitions,
    validate_district_id,
    validate_partition_night,
)


@pytest.mark.parametrize("bad", ["", "A", "a|b", "a b", "a/b", "../x", "-lead", "x" * 64, "é"])
def test_district_ids_outside_the_safe_set_are_refused(bad):
    with pytest.raises(InvalidDistrictId):
        validate_district_id(bad)


@pytest.mark.parametrize("good", ["lincoln", "d1", "north_side-2"])
def test_safe_district_ids_pass(good):
    assert validate_district_id(good) == good


def test_partition_key_reads_date_then_district():
    night = DistrictNight(date="2026-11-28", district="lincoln")
    assert str(night.key) == "2026-11-28|lincoln"
    assert DistrictNight.of("2026-11-28|lincoln") == night
    assert DistrictNight.of(MultiPartitionKey({"district": "lincoln", "date": "2026-11-28"})) == night
    assert district_nights.partition_dimension_names == ["date", "district"]


def test_partition_key_with_bad_district_is_refused():
    with pytest.raises(InvalidDistrictId):
        DistrictNight.of("2026-11-28|Lin|coln")


def test_the_current_night_is_a_partition_and_tomorrow_is_not():
    now = datetime.datetime(2026, 12, 4, 0, 30, tzinfo=datetime.UTC)
    keys = nights_partitions.get_partition_keys(current_time=now)
    assert keys[0] == PARTITIONS_START and keys[-1] == "2026-12-04"
    assert validate_partition_night("2026-12-04", now) == "2026-12-04"
    for outside in ("2026-12-05", "2026-08-31"):
        expected = f"no night {outside}: nights run from {PARTITIONS_START} to 2026-12-04 "
        with pytest.raises(NightOutOfRange, match=expected):
            validate_partition_night(outside, now)
