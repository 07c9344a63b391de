"""The person (``Me``), workouts (with statistics, events, metadata and route) and
nights of sleep as records.

Every record's ``source_id`` hashes what identifies it in HealthKit (type, source,
start, end), not the file, so a later export of the same data updates in place.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

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


def moment(text: str | None) -> PartialDateTime | None:
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


def _zone(offset_min: int) -> str:
    if offset_min == 0:
        return "Z"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{'-' if offset_min < 0 else '+'}{hours:02d}:{minutes:02d}"


def moments(ms: npt.NDArray[np.int64], offset_min: int) -> list[PartialDateTime]:
    """Epoch-ms instants as PartialDateTimes in the zone they were recorded in.

    The local text of all of them comes from one numpy call; equal instants share
    one object (a stage's end is usually the next one's start).
    """
    local = (ms + offset_min * 60_000).astype("datetime64[ms]")
    precise = ms % 1000 != 0
    texts = np.datetime_as_string(local, unit="ms" if bool(precise.any()) else "s").tolist()
    zone = _zone(offset_min)
    made: dict[int, PartialDateTime] = {}
    out: list[PartialDateTime] = []
    for t, text, fine in zip(ms.tolist(), texts, precise.tolist(), strict=True):
        found = made.get(t)
        if found is None:
            found = made[t] = PartialDateTime(
                original=text + zone,
                precision=Precision.millisecond if fine else Precision.second,
                start=_EPOCH + timedelta(milliseconds=t),
                tz_known=True,
                utc_offset_minutes=offset_min,
            )
        out.append(found)
    return out


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def sleep_session(night: SleepNight, prov: Provenance) -> SleepSession:
    off = night.offset_min
    ends = night.t + night.d
    bounds = moments(np.concatenate((night.t, ends)), off)
    n = len(night.t)
    stages = tuple(
        SleepStagePeriod(stage=SLEEP_STAGE_VALUES[int(code)], start=bounds[i], end=bounds[n + i])
        for i, code in enumerate(night.codes.tolist())
    )
    first = int(night.t[0])
    last = int(ends.max())
    return SleepSession(
        source_id=stable_id("sleep", night.source, str(first)),
        provenance=prov,
        start=bounds[0] if n else moments(np.array([first]), off)[0],
        end=moments(np.array([last], dtype=np.int64), off)[0],
        stages=stages,
        source_name=night.source or None,
        device=night.device or None,
    )
