"""Peloton's workout history CSV (Profile > Workouts > Download Workouts).

One row per workout: ``Workout Timestamp`` (``2020-04-07 16:39 (PST)``), discipline,
class title and length, and whatever the equipment measured: total output (kJ), average
watts, resistance (``45%``), cadence, speed, distance, calories, heart rate, incline,
pace. The zone label is the account's zone when the file was exported, so it can be
wrong across daylight saving: we keep the offset written, record the label in the note,
and warn when it disagrees with that zone's rules instead of shifting the time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

from healthspace.errors import SourceError
from healthspace.hookspecs import hookimpl
from healthspace.model import PartialDateTime, Precision, Quantity, Workout
from healthspace.sources._csv import CsvRow, header_of, parse_number, read_rows
from healthspace.sources._tzlabels import label_mismatch, lookup
from healthspace.sources._wellness import provenance, shifted, wall_time, zoned_time
from healthspace.sources.base import ImportContext, InputFile, Item, Source, SourceManifest

__all__ = ["PelotonSource", "register_sources"]

SOURCE_ID: Final = "peloton"
_TIMESTAMP = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2}) (?P<time>[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)"
    r"(?:\s*\((?P<zone>[A-Za-z]{1,5}|[+-][0-9]{2}:?[0-9]{2})\))?$"
)
_UNIT_IN_HEADER = re.compile(r"\(([^)]*)\)\s*$")
_DISTANCE_UNITS: Final = {"mi": "[mi_i]", "miles": "[mi_i]", "km": "km", "kilometers": "km"}
_SPEED_UNITS: Final = {"mph": "[mi_i]/h", "kph": "km/h", "km/h": "km/h"}
_PACE_UNITS: Final = {"min/mi": "min/[mi_i]", "min/km": "min/km"}


def _column(header: list[str], prefix: str) -> str | None:
    return next((name for name in header if name.startswith(prefix)), None)


def _unit_of(column: str | None, table: dict[str, str]) -> str | None:
    if column is None:
        return None
    match = _UNIT_IN_HEADER.search(column)
    return table.get(match.group(1).strip().lower()) if match else None


class PelotonSource:
    manifest = SourceManifest(
        id=SOURCE_ID,
        name="Peloton workout history (CSV)",
        reads=("workout",),
        purpose="Your Peloton classes with output, heart rate, cadence, distance and calories.",
    )

    def sniff(self, file: InputFile, head: bytes) -> bool:
        header = header_of(head)
        return bool(header) and header[0] == "Workout Timestamp" and "Fitness Discipline" in header

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        header, rows = read_rows(file)
        for required in ("Workout Timestamp", "Fitness Discipline"):
            if required not in header:
                raise SourceError(f"missing column {required!r}", file=file.name, place="line 1")
        units = _Units(header)
        for row in rows:
            yield self._workout(row, units, ctx)

    def _workout(self, row: CsvRow, units: _Units, ctx: ImportContext) -> Workout:
        name = ctx.file.name
        place = f"line {row.line}"
        start, label = _start(row, ctx)

        def number(column: str | None) -> float | None:
            if column is None:
                return None
            return parse_number(row.get(column), file=name, line=row.line, column=column)

        minutes = number("Length (minutes)")
        if minutes is not None and minutes < 0:
            raise SourceError("column 'Length (minutes)' is negative", file=name, place=place)
        stats: dict[str, Quantity] = {}
        for key, column, unit in units.statistics:
            value = number(column)
            if value is not None:
                stats[key] = Quantity(value=value, unit=unit)
        distance = number(units.distance)
        calories = number("Calories Burned")
        heart = number("Avg. Heartrate")
        discipline = row.get("Fitness Discipline")
        end = None if minutes is None else shifted(start, timedelta(minutes=minutes))
        return Workout(
            source_id=f"peloton:workout:{start.start.isoformat()}:{discipline.casefold()}",
            provenance=provenance(SOURCE_ID, ctx, place),
            note=_note(row, label),
            activity_type=discipline.casefold() or "workout",
            start=start,
            end=end,
            duration_s=None if minutes is None else minutes * 60,
            distance=None
            if distance is None or units.distance_unit is None
            else Quantity(value=distance, unit=units.distance_unit),
            energy=None if calories is None else Quantity(value=calories, unit="kcal"),
            avg_heart_rate=None if heart is None else Quantity(value=heart, unit="/min"),
            statistics=stats,
            source_name="Peloton",
        )


class _Units:
    """Which statistic each column holds, and in what unit (from the header)."""

    def __init__(self, header: list[str]) -> None:
        self.distance = _column(header, "Distance (")
        self.distance_unit = _unit_of(self.distance, _DISTANCE_UNITS)
        speed = _column(header, "Avg. Speed (")
        pace = _column(header, "Avg. Pace (")
        candidates: list[tuple[str, str | None, str | None]] = [
            ("total_output", "Total Output", "kJ"),
            ("avg_power", "Avg. Watts", "W"),
            ("avg_resistance", "Avg. Resistance", "%"),
            ("avg_cadence", _column(header, "Avg. Cadence"), "/min"),
            ("avg_speed", speed, _unit_of(speed, _SPEED_UNITS)),
            ("avg_incline", "Avg. Incline", "%"),
            ("avg_pace", pace, _unit_of(pace, _PACE_UNITS)),
        ]
        self.statistics = [
            (key, column, unit)
            for key, column, unit in candidates
            if column is not None and column in header and unit is not None
        ]


def _start(row: CsvRow, ctx: ImportContext) -> tuple[PartialDateTime, str | None]:
    text = row.get("Workout Timestamp")
    place = f"line {row.line}"
    match = _TIMESTAMP.match(text)
    if match is None:
        raise SourceError(
            "column 'Workout Timestamp' is not a date and time", file=ctx.file.name, place=place
        )
    clock = match.group("time")
    precision = Precision.second if clock.count(":") == 2 else Precision.minute
    try:
        wall = datetime.fromisoformat(f"{match.group('date')} {clock.zfill(5)}")
    except ValueError:
        raise SourceError(
            "column 'Workout Timestamp' is not a valid date", file=ctx.file.name, place=place
        ) from None
    label = match.group("zone")
    if label is None:
        return wall_time(wall, text, precision), None
    if label[0] in "+-":
        digits = label[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:])
        return zoned_time(wall, -minutes if label[0] == "-" else minutes, text, precision), label
    info = lookup(label)
    if info is None:
        ctx.warn(place, f"unknown time-zone label ({label}); time kept without a zone")
        return wall_time(wall, text, precision), label
    real = label_mismatch(wall, label)
    if real is not None:
        ctx.warn(
            place,
            f"time-zone label ({label}) disagrees with daylight-saving time on that date "
            f"(the zone it names was on {real}); kept the time as written, not shifted",
        )
    return zoned_time(wall, info.offset_minutes, text, precision), label


def _note(row: CsvRow, label: str | None) -> str | None:
    parts = []
    for column, title in (
        ("Title", "Class"),
        ("Type", "Type"),
        ("Instructor Name", "Instructor"),
        ("Live/On-Demand", "Live/On-Demand"),
        ("Class Timestamp", "Class aired"),
    ):
        value = row.get(column)
        if value:
            parts.append(f"{title}: {value}")
    if label is not None:
        parts.append(f"Time zone as written: {label}")
    return "; ".join(parts) or None


@hookimpl
def register_sources() -> list[Source]:
    return [PelotonSource()]
