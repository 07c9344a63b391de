"""Dates and times as sources write them: partial ("2019-03"), zoned or not.

Clinical sources often give only a year or a month, and C-CDA writes HL7 v3 timestamps
(``20190304101112-0500``). A :class:`PartialDateTime` keeps what was written, how precise
it was, and the period it stands for as a UTC instant plus an exclusive end.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["PartialDateTime", "Precision"]


class Precision(StrEnum):
    """How much of a date-time the source gave."""

    year = "year"
    month = "month"
    day = "day"
    hour = "hour"  # HL7 v3 TS allows YYYYMMDDHH
    minute = "minute"
    second = "second"
    millisecond = "millisecond"  # any fractional seconds


# ISO 8601 / FHIR, plus Apple Health's "2019-03-04 10:11:12 -0800" (space, then zone).
_ISO_RE = re.compile(
    r"""^(?P<year>[0-9]{4})
    (?:-(?P<month>[0-9]{2})
      (?:-(?P<day>[0-9]{2})
        (?:[T ](?P<hour>[0-9]{2})
          (?::(?P<minute>[0-9]{2})
            (?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]+))?)?
          )?
          \ ?(?P<zone>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?
        )?
      )?
    )?$""",
    re.VERBOSE,
)

# HL7 v3 TS: YYYY[MM[DD[HH[MM[SS[.F+]]]]]][+|-ZZzz]
_HL7_RE = re.compile(
    r"""^(?P<year>[0-9]{4})
    (?:(?P<month>[0-9]{2})
      (?:(?P<day>[0-9]{2})
        (?:(?P<hour>[0-9]{2})
          (?:(?P<minute>[0-9]{2})
            (?:(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?
          )?
        )?
      )?
    )?
    (?P<zone>[+-][0-9]{4})?$""",
    re.VERBOSE,
)


def _offset_minutes(zone: str) -> int:
    if zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) > 2 else 0
    if hours > 23 or minutes > 59:
        raise ValueError(f"time zone offset {zone!r} is out of range")
    return sign * (hours * 60 + minutes)


def _precision_of(parts: dict[str, str | None]) -> Precision:
    if parts["fraction"] is not None:
        return Precision.millisecond
    for name, precision in (
        ("second", Precision.second),
        ("minute", Precision.minute),
        ("hour", Precision.hour),
        ("day", Precision.day),
        ("month", Precision.month),
    ):
        if parts[name] is not None:
            return precision
    return Precision.year


def _check_range(name: str, value: int, low: int, high: int, where: str = "") -> None:
    if not low <= value <= high:
        suffix = f" for {where}" if where else ""
        raise ValueError(f"{name} {value} is out of range {low}..{high}{suffix}")


def _build(text: str, parts: dict[str, str | None]) -> PartialDateTime:
    year = int(parts["year"] or "0")
    month = int(parts["month"] or "1")
    day = int(parts["day"] or "1")
    hour = int(parts["hour"] or "0")
    minute = int(parts["minute"] or "0")
    second = int(parts["second"] or "0")
    fraction = parts["fraction"] or ""
    _check_range("year", year, 1, 9999)
    _check_range("month", month, 1, 12)
    _check_range("day", day, 1, calendar.monthrange(year, month)[1], f"{year:04d}-{month:02d}")
    _check_range("hour", hour, 0, 23)
    _check_range("minute", minute, 0, 59)
    _check_range("second", second, 0, 59)  # leap seconds cannot be represented
    microsecond = int((fraction + "000000")[:6])

    zone = parts["zone"]
    offset = _offset_minutes(zone) if zone is not None else None
    tzinfo = timezone(timedelta(minutes=offset)) if offset is not None else UTC
    local = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tzinfo)
    try:
        start = local.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{text!r} falls outside the representable range") from exc
    return PartialDateTime(
        original=text,
        precision=_precision_of(parts),
        start=start,
        tz_known=offset is not None,
        utc_offset_minutes=offset,
    )


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


class PartialDateTime(BaseModel):
    """A date or date-time as precise as its source, anchored as a UTC period.

    ``start`` is the earliest instant of the period in UTC; when the source gave no zone
    the wall time is read as UTC and ``tz_known`` is False. Two values are equal when
    they denote the same period at the same precision and zone, however they were spelled.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    original: str
    precision: Precision
    start: datetime
    tz_known: bool
    utc_offset_minutes: int | None = None

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.tz_known != (self.utc_offset_minutes is not None):
            raise ValueError("utc_offset_minutes must be set exactly when tz_known is true")
        if self.utc_offset_minutes is not None and abs(self.utc_offset_minutes) >= 24 * 60:
            raise ValueError("utc_offset_minutes must be within +/-23:59")
        return self

    @classmethod
    def parse(cls, text: str) -> PartialDateTime:
        """Read ISO 8601 / FHIR, HL7 v3 TS (C-CDA) or Apple Health date-time text.

        Raises ValueError naming the reason for text that is malformed or impossible.
        """
        cleaned = text.strip()
        match = _ISO_RE.match(cleaned) or _HL7_RE.match(cleaned)
        if match is None:
            raise ValueError(f"{cleaned!r} is not a recognised date or date-time")
        parts: dict[str, str | None] = match.groupdict()
        return _build(cleaned, parts)

    @classmethod
    def from_datetime(cls, dt: datetime) -> PartialDateTime:
        """Wrap a datetime at second (or millisecond, if it has a fraction) precision."""
        offset = dt.utcoffset()
        if offset is None:
            start = dt.replace(tzinfo=UTC)
            minutes = None
        else:
            start = dt.astimezone(UTC)
            # Offsets with seconds exist only in historical zones; keep the minute part.
            minutes = int(offset.total_seconds() / 60)
        return cls(
            original=dt.isoformat(),
            precision=Precision.millisecond if dt.microsecond else Precision.second,
            start=start,
            tz_known=minutes is not None,
            utc_offset_minutes=minutes,
        )

    def local_start(self) -> datetime:
        """``start`` in the zone the source wrote (UTC when it wrote none)."""
        if self.utc_offset_minutes is None:
            return self.start
        return self.start.astimezone(timezone(timedelta(minutes=self.utc_offset_minutes)))

    def end(self) -> datetime:
        """The exclusive end of the period, in UTC."""
        local = self.local_start()
        match self.precision:
            case Precision.year:
                stop = local.replace(year=local.year + 1) if local.year < 9999 else None
            case Precision.month:
                stop = _add_months(local, 1) if (local.year, local.month) < (9999, 12) else None
            case Precision.day:
                stop = local + timedelta(days=1)
            case Precision.hour:
                stop = local + timedelta(hours=1)
            case Precision.minute:
                stop = local + timedelta(minutes=1)
            case Precision.second:
                stop = local + timedelta(seconds=1)
            case Precision.millisecond:
                stop = local + timedelta(milliseconds=1)
        if stop is None:
            return datetime.max.replace(tzinfo=UTC)
        return stop.astimezone(UTC)

    def isoformat(self) -> str:
        """ISO 8601 text at the original precision, in the zone as written."""
        local = self.local_start()
        date = f"{local.year:04d}"
        if self.precision is Precision.year:
            return date
        date += f"-{local.month:02d}"
        if self.precision is Precision.month:
            return date
        date += f"-{local.day:02d}"
        if self.precision is Precision.day:
            return date
        text = f"{date}T{local.hour:02d}"
        if self.precision is not Precision.hour:
            text += f":{local.minute:02d}"
        if self.precision in (Precision.second, Precision.millisecond):
            text += f":{local.second:02d}"
        if self.precision is Precision.millisecond:
            micro = local.microsecond
            text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
        return text + self._zone_suffix()

    def _zone_suffix(self) -> str:
        if self.utc_offset_minutes is None:
            return ""
        if self.utc_offset_minutes == 0:
            return "Z"
        sign = "-" if self.utc_offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.utc_offset_minutes), 60)
        return f"{sign}{hours:02d}:{minutes:02d}"

    def _value(self) -> tuple[Any, ...]:
        return (self.precision, self.start, self.tz_known, self.utc_offset_minutes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PartialDateTime):
            return NotImplemented
        return self._value() == other._value()

    def __hash__(self) -> int:
        return hash(self._value())

    def __str__(self) -> str:
        return self.isoformat()
