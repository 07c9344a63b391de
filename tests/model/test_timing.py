"""PartialDateTime: every accepted form, precision, zones, periods, bad dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings

from healthspace.model import PartialDateTime, Precision

from .strategies import aware_datetimes, partial_datetimes


@pytest.mark.parametrize(
    ("text", "precision", "start", "offset", "iso"),
    [
        ("2019", Precision.year, datetime(2019, 1, 1, tzinfo=UTC), None, "2019"),
        ("2019-03", Precision.month, datetime(2019, 3, 1, tzinfo=UTC), None, "2019-03"),
        ("2019-03-04", Precision.day, datetime(2019, 3, 4, tzinfo=UTC), None, "2019-03-04"),
        (
            "2019-03-04T10:11",
            Precision.minute,
            datetime(2019, 3, 4, 10, 11, tzinfo=UTC),
            None,
            "2019-03-04T10:11",
        ),
        (
            "2019-03-04T10:11:12.345+02:00",
            Precision.millisecond,
            datetime(2019, 3, 4, 8, 11, 12, 345000, tzinfo=UTC),
            120,
            "2019-03-04T10:11:12.345+02:00",
        ),
        (
            "2019-03-04T10:11:12Z",
            Precision.second,
            datetime(2019, 3, 4, 10, 11, 12, tzinfo=UTC),
            0,
            "2019-03-04T10:11:12Z",
        ),
        ("201903", Precision.month, datetime(2019, 3, 1, tzinfo=UTC), None, "2019-03"),
        ("20190304", Precision.day, datetime(2019, 3, 4, tzinfo=UTC), None, "2019-03-04"),
        (
            "201903041011",
            Precision.minute,
            datetime(2019, 3, 4, 10, 11, tzinfo=UTC),
            None,
            "2019-03-04T10:11",
        ),
        (
            "20190304101112",
            Precision.second,
            datetime(2019, 3, 4, 10, 11, 12, tzinfo=UTC),
            None,
            "2019-03-04T10:11:12",
        ),
        (
            "20190304101112.1234-0500",
            Precision.millisecond,
            datetime(2019, 3, 4, 15, 11, 12, 123400, tzinfo=UTC),
            -300,
            "2019-03-04T10:11:12.123400-05:00",
        ),
        (
            "2019-03-04 10:11:12 -0800",
            Precision.second,
            datetime(2019, 3, 4, 18, 11, 12, tzinfo=UTC),
            -480,
            "2019-03-04T10:11:12-08:00",
        ),
        (
            "2019030410",
            Precision.hour,
            datetime(2019, 3, 4, 10, tzinfo=UTC),
            None,
            "2019-03-04T10",
        ),
    ],
)
def test_forms(
    text: str, precision: Precision, start: datetime, offset: int | None, iso: str
) -> None:
    value = PartialDateTime.parse(text)
    assert value.original == text
    assert value.precision is precision
    assert value.start == start
    assert value.start.tzinfo is UTC
    assert value.tz_known is (offset is not None)
    assert value.utc_offset_minutes == offset
    assert value.isoformat() == iso
    assert PartialDateTime.parse(iso) == value


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("2019", datetime(2020, 1, 1, tzinfo=UTC)),
        ("2019-12", datetime(2020, 1, 1, tzinfo=UTC)),
        ("2020-02-29", datetime(2020, 3, 1, tzinfo=UTC)),
        ("2019-03-04T10:11", datetime(2019, 3, 4, 10, 12, tzinfo=UTC)),
        ("2019-03-04T10:11:12Z", datetime(2019, 3, 4, 10, 11, 13, tzinfo=UTC)),
        ("2019-03-04T10:11:12.345Z", datetime(2019, 3, 4, 10, 11, 12, 346000, tzinfo=UTC)),
        ("201903-0500", datetime(2019, 4, 1, 5, tzinfo=UTC)),  # local month, in UTC
        ("9999", datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_end_is_exclusive_end_of_period(text: str, end: datetime) -> None:
    assert PartialDateTime.parse(text).end() == end


def test_surrounding_whitespace_is_ignored() -> None:
    assert PartialDateTime.parse(" 20190304\n").original == "20190304"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2019-13", "month 13"),
        ("201913", "month 13"),
        ("2019-02-29", "day 29 is out of range 1..28 for 2019-02"),
        ("2019-04-31", "day 31"),
        ("2019-03-04T24:00", "hour 24"),
        ("2019-03-04T10:60", "minute 60"),
        ("2019-03-04T10:11:60Z", "second 60"),
        ("2019-03-04T10:11+25:00", "offset"),
        ("0000", "year 0"),
        ("March 2019", "not a recognised"),
        ("2019-3-4", "not a recognised"),
        ("", "not a recognised"),
    ],
)
def test_impossible_dates_raise_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        PartialDateTime.parse(text)


def test_from_datetime() -> None:
    zoned = PartialDateTime.from_datetime(
        datetime(2019, 3, 4, 10, 11, 12, tzinfo=timezone(timedelta(hours=-5)))
    )
    assert zoned.precision is Precision.second
    assert zoned.start == datetime(2019, 3, 4, 15, 11, 12, tzinfo=UTC)
    assert zoned.utc_offset_minutes == -300
    naive = PartialDateTime.from_datetime(datetime(2019, 3, 4, 10, 11, 12, 500))
    assert naive.precision is Precision.millisecond
    assert not naive.tz_known
    assert naive.start == datetime(2019, 3, 4, 10, 11, 12, 500, tzinfo=UTC)


def test_equality_is_by_value_not_spelling() -> None:
    a, b = PartialDateTime.parse("2019-03"), PartialDateTime.parse("201903")
    assert a == b
    assert hash(a) == hash(b)
    assert a != PartialDateTime.parse("2019-03-01")  # same start, other precision
    assert PartialDateTime.parse("2019-03-04T10:00Z") != PartialDateTime.parse("2019-03-04T10:00")


def test_validation_rejects_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PartialDateTime(
            original="x", precision=Precision.day, start=datetime(2019, 1, 1), tz_known=False
        )
    with pytest.raises(ValueError, match="tz_known"):
        PartialDateTime(
            original="x",
            precision=Precision.day,
            start=datetime(2019, 1, 1, tzinfo=UTC),
            tz_known=True,
        )


@settings(max_examples=150)
@given(aware_datetimes)
def test_isoformat_of_aware_datetimes_round_trips(moment: datetime) -> None:
    value = PartialDateTime.parse(moment.isoformat())
    assert value.start == moment
    assert value.tz_known
    assert value.utc_offset_minutes == moment.utcoffset() // timedelta(minutes=1)  # type: ignore[operator]
    assert PartialDateTime.parse(value.isoformat()) == value


@settings(max_examples=150)
@given(partial_datetimes())
def test_partial_values_round_trip_through_isoformat_and_json(value: PartialDateTime) -> None:
    assert PartialDateTime.parse(value.isoformat()) == value
    assert PartialDateTime.model_validate_json(value.model_dump_json()) == value
    assert value.start < value.end()
