"""Workouts by type and by ISO week: count, duration, distance, energy.

A workout belongs to the local day (and Monday-based week) its start was written in.
Durations come from ``duration_s``, else from end minus start; distances are stated in
km and energy in kcal, converted from whatever unit the source used (a workout whose
unit does not convert adds nothing to that total and is counted as such).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from healthspace.insights._wearables_common import (
    DAY_MS,
    day_ms,
    day_start,
    fmt,
    in_unit,
    week_start,
)
from healthspace.insights.facts import (
    Band,
    Citation,
    Fact,
    Point,
    Series,
    citation_of,
)
from healthspace.model import Workout
from healthspace.store import RecordRepository, SpaceSession, StoredRecord

__all__ = [
    "WHO_WEEKLY_MINUTES",
    "WorkoutSummary",
    "WorkoutTypeSummary",
    "WorkoutWeek",
    "activity_name",
    "daily_workout_minutes",
    "workout_summary",
]

# WHO 2020 guidelines on physical activity and sedentary behaviour: adults should do at
# least 150 minutes of moderate-intensity aerobic activity a week.
WHO_WEEKLY_MINUTES: Final = 150.0
_WHO_REFERENCE: Final = (
    "WHO guidelines on physical activity and sedentary behaviour (2020): "
    "at least 150 minutes of moderate activity a week for adults"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def activity_name(activity_type: str) -> str:
    """A readable activity: ``HKWorkoutActivityTypeTraditionalStrengthTraining`` ->
    ``traditional strength training``; free text is lower-cased and trimmed."""
    text = activity_type.strip().removeprefix("HKWorkoutActivityType")
    text = _CAMEL.sub(" ", text).replace("_", " ")
    return " ".join(text.lower().split()) or "workout"


def _duration_s(workout: Workout) -> float:
    if workout.duration_s is not None:
        return workout.duration_s
    if workout.end is not None:
        return max(0.0, (workout.end.start - workout.start.start).total_seconds())
    return 0.0


@dataclass(frozen=True, slots=True)
class WorkoutWeek:
    """One activity in one ISO week."""

    week_start: date
    count: int
    duration_min: float
    distance_km: float | None
    energy_kcal: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "week_start": self.week_start.isoformat(),
            "count": self.count,
            "duration_min": self.duration_min,
            "distance_km": self.distance_km,
            "energy_kcal": self.energy_kcal,
        }


@dataclass(frozen=True, slots=True)
class WorkoutTypeSummary:
    """One activity over the whole window, with its weeks (weeks without it left out)."""

    activity: str
    count: int
    duration_min: float
    distance_km: float | None
    energy_kcal: float | None
    per_week: float  # workouts per week over the whole window
    weeks: tuple[WorkoutWeek, ...]
    citations: tuple[Citation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "activity": self.activity,
            "count": self.count,
            "duration_min": self.duration_min,
            "distance_km": self.distance_km,
            "energy_kcal": self.energy_kcal,
            "per_week": self.per_week,
            "weeks": [w.to_dict() for w in self.weeks],
            "citations": [c.to_dict() for c in self.citations],
        }


@dataclass(frozen=True, slots=True)
class WorkoutSummary:
    """Workouts from ``start`` to ``end`` (local days, inclusive)."""

    start: date
    end: date
    types: tuple[WorkoutTypeSummary, ...]  # most frequent first
    weekly_minutes: Series  # all activities, one point per ISO week, WHO band
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "types": [t.to_dict() for t in self.types],
            "weekly_minutes": self.weekly_minutes.to_dict(),
            "facts": [f.to_dict() for f in self.facts],
        }


def _workouts(session: SpaceSession, start: date, end: date) -> list[StoredRecord]:
    # Stored times are UTC; a day of slack either side catches every local day in range.
    stored = RecordRepository(session).list(
        kind="workout", since_ms=day_ms(start) - DAY_MS, until_ms=day_ms(end) + 2 * DAY_MS
    )
    out = []
    for item in stored:
        record = item.record
        if isinstance(record, Workout) and start <= record.start.local_start().date() <= end:
            out.append(item)
    return out


def daily_workout_minutes(
    session: SpaceSession, start: date, end: date
) -> dict[date, tuple[float, tuple[Citation, ...]]]:
    """Minutes of workouts per local day, with the workouts that add up to them."""
    minutes: dict[date, float] = defaultdict(float)
    cited: dict[date, list[Citation]] = defaultdict(list)
    for item in _workouts(session, start, end):
        record = item.record
        assert isinstance(record, Workout)
        day = record.start.local_start().date()
        minutes[day] += _duration_s(record) / 60
        cited[day].append(citation_of(item))
    return {day: (minutes[day], tuple(cited[day])) for day in sorted(minutes)}


def _total(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 2) if known else None


def _week(week: date, workouts: list[Workout]) -> WorkoutWeek:
    return WorkoutWeek(
        week_start=week,
        count=len(workouts),
        duration_min=round(sum(_duration_s(w) for w in workouts) / 60, 2),
        distance_km=_total(in_unit(w.distance, "km") for w in workouts),
        energy_kcal=_total(in_unit(w.energy, "kcal") for w in workouts),
    )


def _type_fact(summary: WorkoutTypeSummary, start: date, end: date) -> Fact:
    parts = [
        f"{summary.activity}: {summary.count} workouts from {start} to {end} "
        f"({fmt(summary.per_week, 1)} a week), {fmt(summary.duration_min, 0)} minutes in total"
    ]
    if summary.distance_km is not None:
        parts.append(f"{fmt(summary.distance_km, 1)} km")
    if summary.energy_kcal is not None:
        parts.append(f"{fmt(summary.energy_kcal, 0)} kcal")
    return Fact(
        topic="wearable.workouts",
        statement=", ".join(parts) + ".",
        citations=summary.citations,
        values={
            "activity": summary.activity,
            "count": summary.count,
            "per_week": round(summary.per_week, 1),
            "duration_min": round(summary.duration_min),
            "distance_km": None if summary.distance_km is None else round(summary.distance_km, 1),
            "energy_kcal": None if summary.energy_kcal is None else round(summary.energy_kcal),
        },
    )


def workout_summary(session: SpaceSession, start: date, end: date) -> WorkoutSummary:
    """Workouts per activity and per ISO week between two local days (inclusive)."""
    by_type: dict[str, list[StoredRecord]] = defaultdict(list)
    stored = _workouts(session, start, end)
    for item in stored:
        assert isinstance(item.record, Workout)
        by_type[activity_name(item.record.activity_type)].append(item)
    n_weeks = ((end - start).days + 1) / 7
    summaries = []
    for activity, items in by_type.items():
        workouts = [i.record for i in items if isinstance(i.record, Workout)]
        weeks: dict[date, list[Workout]] = defaultdict(list)
        for w in workouts:
            weeks[week_start(w.start.local_start().date())].append(w)
        whole = _week(start, workouts)
        summaries.append(
            WorkoutTypeSummary(
                activity=activity,
                count=whole.count,
                duration_min=whole.duration_min,
                distance_km=whole.distance_km,
                energy_kcal=whole.energy_kcal,
                per_week=whole.count / n_weeks,
                weeks=tuple(_week(week, weeks[week]) for week in sorted(weeks)),
                citations=tuple(citation_of(i) for i in items),
            )
        )
    summaries.sort(key=lambda s: (-s.count, s.activity))
    facts = [_type_fact(s, start, end) for s in summaries]
    return WorkoutSummary(
        start=start,
        end=end,
        types=tuple(summaries),
        weekly_minutes=_weekly_minutes(stored, start, end),
        facts=tuple(facts),
    )


def _weekly_minutes(stored: list[StoredRecord], start: date, end: date) -> Series:
    """Workout minutes per ISO week (every week of the window, empty weeks at 0)."""
    minutes: dict[date, float] = {}
    week = week_start(start)
    while week <= end:
        minutes[week] = 0.0
        week += timedelta(days=7)
    for item in stored:
        record = item.record
        assert isinstance(record, Workout)
        minutes[week_start(record.start.local_start().date())] += _duration_s(record) / 60
    points = tuple(
        Point(
            when=day_start(week),
            date=week.isoformat(),
            value=round(value, 2),
            flag="low" if value < WHO_WEEKLY_MINUTES else "normal",
        )
        for week, value in minutes.items()
    )
    band = Band(low=WHO_WEEKLY_MINUTES, high=None, source="typical", reference=_WHO_REFERENCE)
    return Series("workout_minutes.weekly", "Workout minutes per week", "min", points, band)
