"""The person (``Me``), workouts (with statistics, events, metadata and route) and
nights of sleep as records.

Every record's ``source_id`` hashes what identifies it in HealthKit (type, source,
start, end), not the file, so a later export of the same data updates in place.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from itertools import repeat
from operator import mod
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from healthspace.model import (
    HEALTHKIT,
    SLEEP_STAGE_VALUES,
    Attached,
    Code,
    PartialDateTime,
    Patient,
    Precision,
    Provenance,
    Quantity,
    SleepSession,
    SleepStagePeriod,
    Workout,
    metric_for_healthkit,
)
from healthspace.sources._apple_metrics import apple_unit
from healthspace.sources._apple_route import RouteSummary
from healthspace.sources._apple_series import SleepNight
from healthspace.sources._apple_xml import Elem

__all__ = [
    "device_name",
    "moment",
    "moments",
    "number",
    "patient",
    "quantity",
    "sleep_session",
    "stable_id",
    "workout",
]

_NUMBER_UNIT = re.compile(r"^\s*([-+]?[0-9]+(?:[.,][0-9]+)?(?:[eE][-+]?[0-9]+)?)\s*(.*?)\s*$")
_DEVICE_NAME = re.compile(r"name:([^,>]*)")
_SEX: Final = {
    "HKBiologicalSexFemale": "female",
    "HKBiologicalSexMale": "male",
    "HKBiologicalSexOther": "other",
}
_DURATION_S: Final = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}


def stable_id(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"apple_health:{kind}:{digest}"


@functools.lru_cache(maxsize=64)
def moment(text: str | None) -> PartialDateTime | None:
    """``text`` as a PartialDateTime, None if empty or unreadable.

    Cached: the builder reads an element's date to check it against the export date,
    then the element's reader reads it again; the value is immutable, so both share it.
    """
    if not text:
        return None
    try:
        return PartialDateTime.parse(text)
    except ValueError:
        return None


def number(text: str | None) -> float | None:
    if text is None:
        return None
    match = _NUMBER_UNIT.match(text)
    if match is None or match.group(2):
        return None
    return float(match.group(1).replace(",", "."))


def quantity(value: str | None, unit: str | None) -> Quantity | None:
    amount = number(value)
    if amount is None:
        return None
    return Quantity(value=amount, unit=apple_unit(unit or ""))


def device_name(device: str | None) -> str | None:
    """``<<HKDevice: 0x...>, name:Apple Watch, ...>`` -> ``Apple Watch``."""
    if not device:
        return None
    match = _DEVICE_NAME.search(device)
    return match.group(1).strip() if match else device.strip()


def patient(elem: Elem, prov: Provenance) -> Patient | None:
    birth = moment(elem.attrs.get("HKCharacteristicTypeIdentifierDateOfBirth"))
    sex = _SEX.get(elem.attrs.get("HKCharacteristicTypeIdentifierBiologicalSex", ""))
    if birth is None and sex is None:
        return None
    return Patient(source_id="apple_health:me", provenance=prov, birth_date=birth, sex=sex)


def _metadata(elem: Elem, stats: dict[str, Quantity], notes: list[str]) -> None:
    for entry in elem.find_all("MetadataEntry"):
        key, value = entry.attrs.get("key", ""), entry.attrs.get("value", "")
        match = _NUMBER_UNIT.match(value)
        if key and match is not None:
            amount = float(match.group(1).replace(",", "."))
            stats[key] = Quantity(value=amount, unit=apple_unit(match.group(2)))
        elif key:
            notes.append(f"{key}: {value}")


def _events(elem: Elem, stats: dict[str, Quantity]) -> None:
    counts: dict[str, int] = {}
    marks: list[tuple[float, str]] = []
    for event in elem.find_all("WorkoutEvent"):
        kind = event.attrs.get("type", "").removeprefix("HKWorkoutEventType")
        counts[kind] = counts.get(kind, 0) + 1
        when = moment(event.attrs.get("date"))
        if when is not None:
            marks.append((when.start.timestamp(), kind))
    for kind, n in sorted(counts.items()):
        stats[f"events.{kind}"] = Quantity(value=n, unit="{count}")
    paused, since = 0.0, None
    for at, kind in sorted(marks):
        if kind in ("Pause", "MotionPaused") and since is None:
            since = at
        elif kind in ("Resume", "MotionResumed") and since is not None:
            paused, since = paused + at - since, None
    if paused:
        stats["paused"] = Quantity(value=paused, unit="s")


def _statistics(elem: Elem, stats: dict[str, Quantity]) -> None:
    for stat in elem.find_all("WorkoutStatistics"):
        kind = stat.attrs.get("type", "")
        name = metric_for_healthkit(kind) or kind
        unit = stat.attrs.get("unit")
        for attr, suffix in (("sum", ""), ("average", ".average"), ("minimum", ".minimum")):
            found = quantity(stat.attrs.get(attr), unit)
            if found is not None:
                stats[name + suffix] = found
        found = quantity(stat.attrs.get("maximum"), unit)
        if found is not None:
            stats[name + ".maximum"] = found


def _route(summary: RouteSummary, stats: dict[str, Quantity]) -> None:
    stats["route.distance"] = Quantity(value=round(summary.distance_m, 3), unit="m")
    stats["route.points"] = Quantity(value=summary.points, unit="{count}")
    stats["route.elevation_gain"] = Quantity(value=round(summary.elevation_gain_m, 3), unit="m")
    for name in ("lat_min", "lat_max", "lon_min", "lon_max"):
        stats[f"route.{name}"] = Quantity(value=getattr(summary, name), unit="deg")


def _is_distance(key: str) -> bool:
    return key == "distance" or (key.startswith(_DISTANCE) and "." not in key)


_DISTANCE: Final = "HKQuantityTypeIdentifierDistance"


def route_paths(elem: Elem) -> list[str]:
    return [ref.attrs["path"] for ref in elem.iter("FileReference") if ref.attrs.get("path")]


def workout(
    elem: Elem,
    raw: bytes,
    prov: Provenance,
    routes: Callable[[str], RouteSummary | None],
) -> Attached | None:
    a = elem.attrs
    start = moment(a.get("startDate"))
    if start is None:
        return None
    end = moment(a.get("endDate"))
    stats: dict[str, Quantity] = {}
    notes: list[str] = []
    _metadata(elem, stats, notes)
    _events(elem, stats)
    _statistics(elem, stats)
    for path in route_paths(elem):
        summary = routes(path)
        if summary is not None:
            _route(summary, stats)
            break
    duration = number(a.get("duration"))
    if duration is not None:
        duration *= _DURATION_S.get(a.get("durationUnit", "min"), 60.0)
    elif end is not None:
        duration = (end.start - start.start).total_seconds()
    distance = quantity(a.get("totalDistance"), a.get("totalDistanceUnit"))
    if distance is None or distance.value == 0:
        # iOS 16+ keeps distance only in WorkoutStatistics (walking/running, cycling, ...).
        distance = next((q for k, q in stats.items() if _is_distance(k)), distance)
    energy = quantity(a.get("totalEnergyBurned"), a.get("totalEnergyBurnedUnit"))
    energy = energy if energy is not None else stats.get("active_energy")
    record = Workout(
        source_id=stable_id(
            "workout",
            a.get("workoutActivityType", ""),
            a.get("sourceName", a.get("source", "")),
            a.get("startDate", ""),
            a.get("endDate", ""),
        ),
        provenance=prov,
        activity_type=a.get("workoutActivityType", "") or "HKWorkoutActivityTypeOther",
        activity_code=Code(system=HEALTHKIT, code=a["workoutActivityType"])
        if a.get("workoutActivityType")
        else None,
        start=start,
        end=end,
        duration_s=max(duration, 0.0) if duration is not None else None,
        distance=distance,
        energy=energy,
        avg_heart_rate=stats.get("heart_rate.average"),
        max_heart_rate=stats.get("heart_rate.maximum"),
        statistics=stats,
        source_name=a.get("sourceName") or a.get("source") or None,
        device=device_name(a.get("device")),
        note="\n".join(notes) or None,
    )
    return Attached(record, original=raw)


@functools.cache
def _zone(offset_min: int) -> str:
    if offset_min == 0:
        return "Z"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{'-' if offset_min < 0 else '+'}{hours:02d}:{minutes:02d}"


# An export holds thousands of nights of tens of stage periods each, so the moments,
# periods and sessions of sleep are made without pydantic validation, which would cost
# several times the rest. Every value is made the way validation would leave it:
# ``start`` an aware datetime in UTC, ``tz_known`` with an offset inside +/-23:59 (else
# the validating constructor runs, and raises as before), ``stage`` a value of
# SLEEP_STAGE_VALUES, the fields set those a validated call would set; the objects equal
# validated ones field for field and serialise to the same bytes
# (tests/sources/test_apple_sleep_speed.py holds them to it).
_M = TypeVar("_M", bound=BaseModel)
_new: Final = object.__new__
_set: Final = object.__setattr__
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_DAY_MIN: Final = 24 * 60
_MOMENT_FIELDS: Final = set(PartialDateTime.model_fields)
_STAGE_FIELDS: Final = set(SleepStagePeriod.model_fields)
_SESSION_FIELDS: Final = {
    "source_id",
    "provenance",
    "start",
    "end",
    "stages",
    "source_name",
    "device",
}


def _trusted(cls: type[_M], fields_set: set[str], values: list[dict[str, Any]]) -> list[_M]:
    """``[cls(**v) for v in values]`` for values that are already what the validators of
    ``cls`` (frozen, no extras, no private attributes) would return, and would set
    ``fields_set``.

    All share the one ``fields_set``, which pydantic never changes on a frozen model
    (``model_copy`` copies it first); a set each would be half as many objects again for
    the garbage collector to walk.
    """
    made: list[_M] = []
    for value in values:
        obj = _new(cls)
        _set(obj, "__dict__", value)
        _set(obj, "__pydantic_fields_set__", fields_set)
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        made.append(obj)
    return made


_TWO_DIGITS: Final = [f"{n:02d}" for n in range(60)]
_CLOCK: Final = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]
_DAY_MS: Final = 86_400_000
_ORDINAL_1970: Final = date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    """Days since 1970-01-01 as YYYY-MM-DD; ValueError outside the years 1..9999."""
    return date.fromordinal(day + _ORDINAL_1970).isoformat()


def _originals(instants: list[int], offset_min: int, fine: bool) -> list[str]:
    """The text of epoch-ms instants at a UTC offset: local time to the second (to the
    millisecond if ``fine``), then the zone. The local time is written exactly as
    ``np.datetime_as_string`` writes it (which it still does past the year 9999); that
    call alone costs as much as the rest of a night of a stage or two."""
    shift = offset_min * 60_000
    zone = _zone(offset_min)
    texts: list[str] = []
    try:
        for t in instants:
            day, in_day = divmod(t + shift, _DAY_MS)
            minute, ms = divmod(in_day, 60_000)
            second, ms = divmod(ms, 1000)
            if fine:
                texts.append(
                    f"{_day_text(day)}T{_CLOCK[minute]}:{_TWO_DIGITS[second]}.{ms:03d}{zone}"
                )
            else:
                texts.append(f"{_day_text(day)}T{_CLOCK[minute]}:{_TWO_DIGITS[second]}{zone}")
    except (ValueError, OverflowError):  # local date outside the years 1..9999: numpy's way
        local = (np.array(instants, dtype=np.int64) + shift).astype("datetime64[ms]")
        text: list[str] = np.datetime_as_string(local, unit="ms" if fine else "s").tolist()
        return [t + zone for t in text]
    return texts


def _distinct_moments(
    instants: list[int], offset_min: int
) -> tuple[dict[int, PartialDateTime], bool]:
    """One PartialDateTime per distinct epoch-ms instant, made in first-seen order, and
    whether their text is at milliseconds (it is for all if any instant has a fraction)."""
    offset_min = int(offset_min)  # a numpy integer would be stored as one
    distinct = list(dict.fromkeys(instants))
    fine = any(map(mod, distinct, repeat(1000)))
    originals = _originals(distinct, offset_min, fine)
    # Exact integer arithmetic, as _EPOCH + timedelta(milliseconds=t) but without parsing
    # arguments. (datetime.fromtimestamp would count leap seconds under a right/ TZ.)
    starts = [_EPOCH + _ONE_MS * t for t in distinct]
    second = Precision.second
    precisions = (
        [Precision.millisecond if t % 1000 else second for t in distinct]
        if fine
        else repeat(second)
    )
    values = [
        {
            "original": original,
            "precision": precision,
            "start": start,
            "tz_known": True,
            "utc_offset_minutes": offset_min,
        }
        for original, precision, start in zip(originals, precisions, starts, strict=False)
    ]
    if -_DAY_MIN < offset_min < _DAY_MIN:
        made = _trusted(PartialDateTime, _MOMENT_FIELDS, values)
    else:  # out of range: let validation say why, as it always did
        made = [PartialDateTime(**value) for value in values]
    return dict(zip(distinct, made, strict=True)), fine


def moments(ms: npt.NDArray[np.int64], offset_min: int) -> list[PartialDateTime]:
    """Epoch-ms instants as PartialDateTimes in the zone they were recorded in; equal
    instants share one object (a stage's end is usually the next one's start)."""
    instants: list[int] = ms.tolist()
    made, _ = _distinct_moments(instants, offset_min)
    return [made[t] for t in instants]


def sleep_session(night: SleepNight, prov: Provenance) -> SleepSession:
    off = night.offset_min
    starts: list[int] = night.t.tolist()
    ends: list[int] = (night.t + night.d).tolist()
    made, fine = _distinct_moments(starts + ends, off)
    stages = _trusted(
        SleepStagePeriod,
        _STAGE_FIELDS,
        [
            {"stage": SLEEP_STAGE_VALUES[int(code)], "start": made[a], "end": made[b]}
            for code, a, b in zip(night.codes.tolist(), starts, ends, strict=True)
        ],
    )
    first = starts[0]
    last = max(ends)
    # Alone, a whole-second end is written to the second, even in a night at milliseconds.
    end = made[last] if last % 1000 or not fine else _distinct_moments([last], off)[0][last]
    (session,) = _trusted(
        SleepSession,
        _SESSION_FIELDS,
        [
            {
                "kind": "sleep",
                "source_id": stable_id("sleep", night.source, str(first)),
                "provenance": prov,
                "status": None,
                "note": None,
                "start": made[first],
                "end": end,
                "stages": tuple(stages),
                "source_name": night.source or None,
                "device": night.device or None,
            }
        ],
    )
    return session
