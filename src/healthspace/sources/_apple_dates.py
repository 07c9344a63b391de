"""Apple Health date-times, millions at a time.

Modern exports write every date as ``2023-11-05 08:10:00 -0800``: 25 bytes, fixed
positions. A column of them is parsed at once with numpy (digits, separators and
calendar ranges checked row by row, vectorised); anything else (iOS 8's compact
``20150616071916-0700``, ISO 8601 with a ``T``) goes through :func:`instant`, one at
a time. HRV beat times are locale-formatted times of day (``11:26:02.34 AM``,
``00:20:37,80``) and are placed on the day of their record by :func:`time_of_day_ms`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DAY_MS",
    "instant",
    "instants",
    "local_day_start_ms",
    "parse_matrix",
    "time_of_day_ms",
]

DAY_MS: Final = 86_400_000
_WIDTH: Final = 25
_DIGITS: Final = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 21, 22, 23, 24]

I64 = npt.NDArray[np.int64]
I16 = npt.NDArray[np.int16]
Bool = npt.NDArray[np.bool_]


def _days_from_civil(y: I64, m: I64, d: I64) -> I64:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    result: I64 = era * 146_097 + doe - 719_468
    return result


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def parse_matrix(a: npt.NDArray[np.uint8]) -> tuple[I64, I16, Bool]:
    """(epoch ms, offset minutes, readable) of an (n, 25) matrix of Apple date bytes."""
    ok = (
        (a[:, 4] == 45)
        & (a[:, 7] == 45)
        & (a[:, 10] == 32)
        & (a[:, 13] == 58)
        & (a[:, 16] == 58)
        & (a[:, 19] == 32)
        & ((a[:, 20] == 43) | (a[:, 20] == 45))
    )
    d = a.astype(np.int64) - 48
    ok &= (a[:, _DIGITS] - np.uint8(48) <= 9).all(axis=1)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 5] * 10 + d[:, 6]
    day = d[:, 8] * 10 + d[:, 9]
    hour = d[:, 11] * 10 + d[:, 12]
    minute = d[:, 14] * 10 + d[:, 15]
    second = d[:, 17] * 10 + d[:, 18]
    off = (d[:, 21] * 10 + d[:, 22]) * 60 + d[:, 23] * 10 + d[:, 24]
    off = np.where(a[:, 20] == 45, -off, off)
    ok &= (month >= 1) & (month <= 12) & (year >= 1)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    limit = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (day >= 1) & (day <= limit)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    ok &= (d[:, 23] * 10 + d[:, 24] <= 59) & (np.abs(off) < 24 * 60)
    days = _days_from_civil(year, np.clip(month, 1, 12), day)
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second - off * 60
    return seconds * 1000, off.astype(np.int16), ok


_INSTANT = re.compile(
    rb"""^\s*([0-9]{4})-?([0-9]{2})-?([0-9]{2})(?:[T ]?([0-9]{2}):?([0-9]{2})
    (?::?([0-9]{2})(?:[.,]([0-9]{1,9}))?)?)?\s*(Z|[+-][0-9]{2}:?[0-9]{2})?\s*$""",
    re.VERBOSE,
)


def instant(text: bytes) -> tuple[int, int] | None:
    """(UTC epoch ms, UTC offset in minutes) of one date-time, or None if unreadable.

    Reads Apple's ``2023-11-05 08:10:00 -0800``, iOS 8's ``20231105081000-0800``, ISO
    8601 and a bare date (midnight). No zone means UTC.
    """
    match = _INSTANT.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = 0
    if zone and zone != b"Z":
        digits = zone[1:].replace(b":", b"")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if minutes > 59 or hours > 23:
            return None
        offset = (hours * 60 + minutes) * (-1 if zone[:1] == b"-" else 1)
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or b"0").ljust(6, b"0")[:6]),
            tzinfo=timezone(timedelta(minutes=offset)),
        )
    except ValueError:
        return None
    return int((moment - _EPOCH) // timedelta(milliseconds=1)), offset


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def instants(texts: list[bytes]) -> tuple[I64, I16, Bool]:
    """(epoch ms, offset minutes, readable) for a column of date-times."""
    n = len(texts)
    joined = b"".join(texts)
    if n and len(joined) == n * _WIDTH:
        ms, off, ok = parse_matrix(np.frombuffer(joined, dtype=np.uint8).reshape(n, _WIDTH))
        if bool(ok.all()):
            return ms, off, ok
        rows = np.flatnonzero(~ok).tolist()
    else:
        ms = np.zeros(n, dtype=np.int64)
        off = np.zeros(n, dtype=np.int16)
        ok = np.zeros(n, dtype=bool)
        rows = list(range(n))
    for i in rows:
        parsed = instant(texts[i])
        if parsed is not None:
            ms[i], off[i] = parsed
            ok[i] = True
    return ms, off, ok


def local_day_start_ms(t_ms: int, offset_min: int) -> int:
    """The UTC epoch ms of local midnight of the day ``t_ms`` falls on at that offset."""
    local = t_ms + offset_min * 60_000
    return local - local % DAY_MS - offset_min * 60_000


_CLOCK = re.compile(r"([0-9]{1,2})[:.]([0-9]{2})[:.]([0-9]{2})(?:[.,]([0-9]{1,6}))?")
_PM = ("pm", "p.m", "nachm", "下午", "μμ", "오후", "午後")
_AM = ("am", "a.m", "vorm", "上午", "πμ", "오전", "午前")


def time_of_day_ms(text: str, record_start_ms: int, offset_min: int) -> int | None:
    """The epoch ms of a beat-to-beat time of day, on the day of its record.

    12-hour clocks are read from their AM/PM marker; with an unknown marker the
    reading nearest to the record's start wins. A time earlier than the record's
    start (by more than an hour) belongs to the next day.
    """
    match = _CLOCK.search(text)
    if match is None:
        return None
    hour, minute, second = (int(g) for g in match.groups()[:3])
    fraction = match.group(4) or ""
    if hour > 23 or minute > 59 or second > 59:
        return None
    rest = (text[: match.start()] + text[match.end() :]).strip().lower()
    candidates = [hour]
    if rest and hour <= 12:
        if any(marker in rest for marker in _PM):
            candidates = [hour % 12 + 12]
        elif any(marker in rest for marker in _AM):
            candidates = [hour % 12]
        else:
            candidates = [hour % 12, hour % 12 + 12]
    base = local_day_start_ms(record_start_ms, offset_min)
    millis = int((fraction + "000")[:3])
    best: int | None = None
    for h in candidates:
        moment = base + ((h * 60 + minute) * 60 + second) * 1000 + millis
        if moment < record_start_ms - 3_600_000:
            moment += DAY_MS
        if best is None or abs(moment - record_start_ms) < abs(best - record_start_ms):
            best = moment
    return best
