"""Fitbit export entries: checked access, times, and the sleep/exercise/weight mappings."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from healthspace.errors import SourceError
from healthspace.model import (
    LOINC,
    SLEEP_STAGE_VALUES,
    Code,
    Observation,
    PartialDateTime,
    Precision,
    Quantity,
    QuantityValue,
    Sample,
    SleepSession,
    SleepStage,
    SleepStagePeriod,
    Workout,
    convert,
)
from healthspace.sources._wellness import (
    epoch_ms,
    provenance,
    sample_batch,
    shifted,
    wall_time,
)
from healthspace.sources.base import ImportContext, InputFile, Item

__all__ = ["Entry", "entries", "exercise", "parse_time", "sleep", "weight"]

_FORMATS: Final = (
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
)
# Fitbit's stage names -> ours. "light" is what Apple calls "core"; the classic
# algorithm's "restless" counts as awake in Fitbit's own minutesAwake.
_STAGES: Final[dict[str, SleepStage]] = {
    "deep": "deep",
    "light": "core",
    "rem": "rem",
    "wake": "awake",
    "asleep": "asleep",
    "restless": "awake",
    "awake": "awake",
}
_STAGE_CODE: Final = {name: code for code, name in SLEEP_STAGE_VALUES.items()}
_WEIGHT = Code(system=LOINC, code="29463-7", display="Body weight")
_BMI = Code(system=LOINC, code="39156-5", display="Body mass index (BMI)")
_FAT = Code(system=LOINC, code="41982-0", display="Percentage of body fat")


@dataclass(frozen=True, slots=True)
class Entry:
    """One JSON object of an export file, with checked access and its place for errors."""

    data: dict[str, Any]
    place: str
    file: str

    def inner(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise SourceError(f"{key!r} is not an object", file=self.file, place=self.place)
        return value

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise SourceError(f"{key!r} is missing or not text", file=self.file, place=self.place)
        return value

    def number(self, key: str, *, within: str | None = None) -> float | None:
        """A number (Fitbit writes some as strings); None when absent or null."""
        holder = self.inner(within) if within is not None else self.data
        value = holder.get(key)
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise SourceError(
                    f"{key!r} is not a number", file=self.file, place=self.place
                ) from None
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise SourceError(f"{key!r} is not a finite number", file=self.file, place=self.place)
        return float(value)


def entries(items: list[Any], file: str) -> list[Entry]:
    out = []
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise SourceError("entry is not a JSON object", file=file, place=f"entry {number}")
        out.append(Entry(item, f"entry {number}", file))
    return out


def parse_time(text: str, file: str, place: str) -> PartialDateTime:
    """A Fitbit time (``MM/DD/YY HH:MM:SS`` or ISO without zone), kept as written."""
    cleaned = text.strip()
    for fmt in _FORMATS:
        try:
            moment = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        precision = Precision.millisecond if "%f" in fmt else Precision.second
        return wall_time(moment, cleaned, precision)
    raise SourceError("the time is not a recognised Fitbit date-time", file=file, place=place)


# -- weight -----------------------------------------------------------------------------


def _weight_unit(pounds: float, bmi: float | None) -> str:
    """[lb_av], as the export writes, unless the BMI says the number can only be kg."""
    if bmi is None or bmi <= 0:
        return "[lb_av]"
    height_if_lb = math.sqrt(pounds * 0.45359237 / bmi)
    height_if_kg = math.sqrt(pounds / bmi)
    # Fitbit accounts are for people 13 and over: a height outside 1.35-2.2 m is implausible.
    if not 1.35 <= height_if_lb <= 2.2 and 1.35 <= height_if_kg <= 2.2:
        return "kg"
    return "[lb_av]"


def weight(listed: list[Entry], file: InputFile, ctx: ImportContext, source: str) -> Iterator[Item]:
    in_kg = 0
    for entry in listed:
        value = entry.number("weight")
        if value is None:
            raise SourceError("entry has no weight", file=file.name, place=entry.place)
        day = entry.text("date")
        clock = entry.data.get("time") if isinstance(entry.data.get("time"), str) else "00:00:00"
        when = parse_time(f"{day} {clock}", file.name, entry.place)
        bmi = entry.number("bmi")
        unit = _weight_unit(value, bmi)
        in_kg += unit == "kg"
        log = entry.data.get("logId", f"{day} {clock}")
        prov = provenance(source, ctx, entry.place)
        for code, amount, amount_unit in (
            (_WEIGHT, value, unit),
            (_BMI, bmi, "kg/m2"),
            (_FAT, entry.number("fat"), "%"),
        ):
            if amount is None:
                continue
            yield Observation(
                source_id=f"fitbit:weight:{log}:{code.code}",
                provenance=prov,
                code=code,
                codes=(code,),
                category="vital-signs",
                value=QuantityValue(quantity=Quantity(value=amount, unit=amount_unit)),
                effective=when,
            )
        yield Sample("body_mass", epoch_ms(when), convert(value, unit, "kg"), 0, "Fitbit")
    if in_kg:
        ctx.warn("file", f"{in_kg} weights are only plausible in kg (by BMI); kept as kg")


# -- sleep ------------------------------------------------------------------------------


def sleep(listed: list[Entry], file: InputFile, ctx: ImportContext, source: str) -> Iterator[Item]:
    for entry in listed:
        start = parse_time(entry.text("startTime"), file.name, entry.place)
        end = parse_time(entry.text("endTime"), file.name, entry.place)
        if end.start < start.start:
            raise SourceError("sleep ends before it starts", file=file.name, place=entry.place)
        levels = entry.data.get("levels")
        data = levels.get("data", []) if isinstance(levels, dict) else []
        if not isinstance(data, list):
            raise SourceError("'levels.data' is not a list", file=file.name, place=entry.place)
        periods: list[SleepStagePeriod] = []
        samples: list[tuple[int, int, float]] = []
        unknown = 0
        for number, item in enumerate(data):
            stage_entry = (
                Entry(item, f"{entry.place}, stage {number}", file.name)
                if isinstance(item, dict)
                else None
            )
            if stage_entry is None:
                raise SourceError("stage is not an object", file=file.name, place=entry.place)
            stage = _STAGES.get(str(stage_entry.data.get("level", "")).casefold())
            seconds = stage_entry.number("seconds")
            if stage is None or seconds is None or seconds < 0:
                unknown += 1
                continue
            begin = parse_time(stage_entry.text("dateTime"), file.name, stage_entry.place)
            until = shifted(begin, timedelta(seconds=seconds))
            periods.append(SleepStagePeriod(stage=stage, start=begin, end=until))
            samples.append((epoch_ms(begin), int(seconds * 1000), float(_STAGE_CODE[stage])))
        if unknown:
            ctx.warn(entry.place, f"{unknown} sleep stages with unknown level skipped")
        notes = [f"Fitbit {entry.data.get('type', 'sleep')} sleep log"]
        if entry.data.get("type") == "classic":
            notes.append("restless periods recorded as awake (as Fitbit counts them)")
        efficiency = entry.number("efficiency")
        if efficiency is not None:
            notes.append(f"efficiency {efficiency:g}%")
        if entry.data.get("mainSleep") is False or entry.data.get("isMainSleep") is False:
            notes.append("not the main sleep of the day (a nap)")
        log = entry.data.get("logId", start.original)
        yield SleepSession(
            source_id=f"fitbit:sleep:{log}",
            provenance=provenance(source, ctx, entry.place),
            note="; ".join(notes),
            start=start,
            end=end,
            stages=tuple(periods),
            source_name="Fitbit",
        )
        if samples:
            yield sample_batch("sleep", "", samples, "Fitbit")


# -- exercise ---------------------------------------------------------------------------


def exercise(
    listed: list[Entry], file: InputFile, ctx: ImportContext, source: str
) -> Iterator[Item]:
    for entry in listed:
        start = parse_time(entry.text("startTime"), file.name, entry.place)
        duration_ms = entry.number("duration")
        metric = str(entry.data.get("distanceUnit", "")).casefold() in ("kilometer", "meter", "")
        distance_unit = {"kilometer": "km", "mile": "[mi_i]", "meter": "m"}.get(
            str(entry.data.get("distanceUnit", "")).casefold()
        )
        stats: dict[str, Quantity] = {}
        for key, stat, unit in (
            ("steps", "steps", "{steps}"),
            ("activeDuration", "active_duration", "ms"),
            ("elevationGain", "elevation_gain", "m" if metric else "[ft_i]"),
            ("speed", "avg_speed", "km/h" if metric else "[mi_i]/h"),
            ("pace", "avg_pace", "s/km" if metric else "s/[mi_i]"),
        ):
            value = entry.number(key)
            if value is not None:
                stats[stat] = Quantity(value=value, unit=unit)
        for group, prefix in (("heartRateZones", "hr_zone"), ("activityLevel", "activity_level")):
            for zone in entry.data.get(group) or []:
                if isinstance(zone, dict) and isinstance(zone.get("minutes"), int | float):
                    zone_name = str(zone.get("name", "")).strip().casefold().replace(" ", "_")
                    stats[f"{prefix}.{zone_name}"] = Quantity(
                        value=float(zone["minutes"]), unit="min"
                    )
        distance = entry.number("distance")
        calories = entry.number("calories")
        heart = entry.number("averageHeartRate")
        device = entry.data.get("source")
        name = entry.data.get("activityName")
        yield Workout(
            source_id=f"fitbit:exercise:{entry.data.get('logId', start.original)}",
            provenance=provenance(source, ctx, entry.place),
            note=f"Logged as: {entry.data['logType']}"
            if isinstance(entry.data.get("logType"), str)
            else None,
            activity_type=name.strip() if isinstance(name, str) and name.strip() else "exercise",
            start=start,
            end=None
            if duration_ms is None
            else shifted(start, timedelta(milliseconds=duration_ms)),
            duration_s=None if duration_ms is None else duration_ms / 1000,
            distance=None
            if distance is None or distance_unit is None
            else Quantity(value=distance, unit=distance_unit),
            energy=None if calories is None else Quantity(value=calories, unit="kcal"),
            avg_heart_rate=None if heart is None else Quantity(value=heart, unit="/min"),
            statistics=stats,
            source_name="Fitbit",
            device=device.get("name") if isinstance(device, dict) else None,
        )
