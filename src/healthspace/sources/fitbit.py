"""Fitbit account export ("Your data" archive, Google Takeout ``Fitbit/Global Export Data``).

The export is a folder of JSON files named ``<kind>-<date>.json`` (a day, or the first
day of a 30-day chunk; ``exercise-<n>.json`` counts by hundreds). Each file is a JSON
list. A ZIP of the export goes through the pipeline's per-member expansion, and each
member is sniffed by its name and its first bytes.

* ``heart_rate``: ``{"dateTime": "MM/DD/YY HH:MM:SS", "value": {"bpm", "confidence"}}``
  -> ``heart_rate`` samples.
* ``steps``: ``{"dateTime", "value": "12"}`` per minute (numbers as strings) -> ``steps``.
* ``resting_heart_rate``: ``{"dateTime", "value": {"date", "value", "error"}}``; a value
  of 0 with ``date: null`` is Fitbit's placeholder for "no estimate", skipped.
* ``weight``: ``{"logId", "weight", "bmi", "fat", "date", "time"}``, weight in pounds
  with no unit field -> observations as written ([lb_av]) and ``body_mass`` samples in kg.
* ``sleep``: sleep logs with ``levels.data`` stages (deep/light/rem/wake, or the classic
  asleep/restless/awake) -> :class:`SleepSession` plus ``sleep`` stage samples.
* ``exercise``: activity logs -> :class:`Workout`.

Times carry no zone in the export: they are kept as written (wall time, zone unknown).
Other kinds of the same export (calories, distance, active minutes, ...) are recognised
and counted as not imported, so importing a whole export does not fail on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

import orjson

from healthspace.errors import SourceError
from healthspace.hookspecs import hookimpl
from healthspace.sources._fitbit import Entry, entries, exercise, parse_time, sleep, weight
from healthspace.sources._wellness import base_name, epoch_ms, read_limited, sample_batch
from healthspace.sources.base import ImportContext, InputFile, Item, Source, SourceManifest

__all__ = ["FitbitSource", "register_sources"]

SOURCE_ID: Final = "fitbit"
_MAX_BYTES: Final = 512 << 20  # one JSON list, parsed in memory
_NAME = re.compile(r"^(?P<kind>[a-z_0-9]+?)-(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]+)\.json$")
_MAPPED: Final = frozenset(
    {"heart_rate", "steps", "resting_heart_rate", "weight", "sleep", "exercise"}
)
# Also in the export; recognised so a whole export imports, but not mapped (yet).
_KNOWN: Final = frozenset(
    {
        "altitude",
        "calories",
        "distance",
        "lightly_active_minutes",
        "moderately_active_minutes",
        "very_active_minutes",
        "sedentary_minutes",
        "time_in_heart_rate_zones",
        "demographic_vo2_max",
        "run_vo2_max",
        "swim_lengths_data",
        "food_logs",
        "water_logs",
    }
)


def kind_of(file: InputFile) -> str | None:
    match = _NAME.match(base_name(file))
    if match is None:
        return None
    kind = match.group("kind")
    return kind if kind in _MAPPED or kind in _KNOWN else None


class FitbitSource:
    manifest = SourceManifest(
        id=SOURCE_ID,
        name="Fitbit account export (JSON)",
        reads=("heart_rate", "steps", "resting_heart_rate", "body_mass", "sleep", "workout"),
        purpose="Heart rate, steps, resting heart rate, weight, sleep stages and exercise "
        "from your Fitbit archive.",
    )

    def sniff(self, file: InputFile, head: bytes) -> bool:
        if kind_of(file) is None:
            return False
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not start.startswith(b"["):
            return False
        rest = start[1:].lstrip()
        return rest.startswith(b"]") or (rest.startswith(b"{") and b'"' in rest[:200])

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        kind = kind_of(file)
        if kind is None:
            raise SourceError("not a Fitbit export file name", file=file.name)
        items = _load(file)
        if kind not in _MAPPED:
            ctx.unmapped[f"fitbit {kind} entries"] += len(items)
            ctx.warn("file", f"Fitbit {kind} files are recognised but not imported")
            return
        listed = entries(items, file.name)
        if kind == "heart_rate":
            yield from _heart_rate(listed, file)
        elif kind == "steps":
            yield from _steps(listed, file)
        elif kind == "resting_heart_rate":
            yield from _resting(listed, file, ctx)
        elif kind == "weight":
            yield from weight(listed, file, ctx, SOURCE_ID)
        elif kind == "sleep":
            yield from sleep(listed, file, ctx, SOURCE_ID)
        else:
            yield from exercise(listed, file, ctx, SOURCE_ID)


def _load(file: InputFile) -> list[Any]:
    data = read_limited(file, _MAX_BYTES, "the Fitbit file")
    try:
        loaded = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise SourceError(
            "not valid JSON", file=file.name, place=f"line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(loaded, list):
        raise SourceError("expected a JSON list of entries", file=file.name, place="top level")
    return loaded


def _batch(metric: str, unit: str, rows: list[tuple[int, int, float]]) -> Iterator[Item]:
    if rows:
        yield sample_batch(metric, unit, rows, "Fitbit")


def _heart_rate(listed: list[Entry], file: InputFile) -> Iterator[Item]:
    rows: list[tuple[int, int, float]] = []
    for entry in listed:
        when = parse_time(entry.text("dateTime"), file.name, entry.place)
        bpm = entry.number("bpm", within="value")
        if bpm is None:
            raise SourceError(
                "entry has no heart rate (value.bpm)", file=file.name, place=entry.place
            )
        if bpm > 0:
            rows.append((epoch_ms(when), 0, bpm))
    yield from _batch("heart_rate", "/min", rows)


def _steps(listed: list[Entry], file: InputFile) -> Iterator[Item]:
    rows: list[tuple[int, int, float]] = []
    for entry in listed:
        when = parse_time(entry.text("dateTime"), file.name, entry.place)
        steps = entry.number("value")
        if steps is None:
            raise SourceError("entry has no step count (value)", file=file.name, place=entry.place)
        if steps < 0:
            raise SourceError("step count is negative", file=file.name, place=entry.place)
        # One entry per minute of the day.
        rows.append((epoch_ms(when), 60_000, steps))
    yield from _batch("steps", "{steps}", rows)


def _resting(listed: list[Entry], file: InputFile, ctx: ImportContext) -> Iterator[Item]:
    rows: list[tuple[int, int, float]] = []
    placeholders = 0
    for entry in listed:
        when = parse_time(entry.text("dateTime"), file.name, entry.place)
        value = entry.number("value", within="value")
        estimated_for = entry.inner("value").get("date")
        # {"date": null, "value": 0.0}: Fitbit had no estimate that day, not a rate of 0.
        if value is None or value <= 0 or estimated_for is None:
            placeholders += 1
            continue
        rows.append((epoch_ms(when), 0, value))
    if placeholders:
        ctx.warn(
            "file",
            f"{placeholders} days without a resting heart rate estimate (placeholder 0) skipped",
        )
    yield from _batch("resting_heart_rate", "/min", rows)


@hookimpl
def register_sources() -> list[Source]:
    return [FitbitSource()]
