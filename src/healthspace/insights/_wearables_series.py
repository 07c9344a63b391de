"""Daily and weekly values of wearable metrics, read from the time series (and records).

A day is a UTC day, as the series store keeps them. A day's value is its sum for
cumulative metrics and its mean otherwise (``healthspace.model.METRICS``); weight adds
weight observations and exercise minutes fall back to workout durations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any, Final, Literal

from healthspace.insights._wearables_common import DAY_MS, day_ms, week_start
from healthspace.insights._wearables_workouts import daily_workout_minutes
from healthspace.insights.facts import Citation, citation_of
from healthspace.model import LOINC, METRICS, Code, Observation, QuantityValue, UnitConversionError
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession

__all__ = [
    "SPECS",
    "WEIGHT_CODES",
    "DailyValue",
    "MetricSpec",
    "WeeklyValue",
    "daily_values",
    "weekly_values",
]

# Body weight (LOINC 29463-7) and measured body weight (3141-9) observations add to the
# body_mass series, so a scale reading typed in at a visit counts too.
WEIGHT_CODES: Final = (Code(system=LOINC, code="29463-7"), Code(system=LOINC, code="3141-9"))


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A wearable metric: the series names that may hold it (first with data wins)."""

    key: str
    label: str
    unit: str  # the unit stated in facts and series
    metrics: tuple[str, ...]
    aggregation: Literal["sum", "mean"]
    decimals: int
    per: str = ""  # "per day" for cumulative metrics


def _spec(key: str, label: str, decimals: int, unit: str | None = None) -> MetricSpec:
    info = METRICS[key]
    per = " per day" if info.aggregation == "sum" else ""
    return MetricSpec(key, label, unit or info.unit, (key,), info.aggregation, decimals, per)


SPECS: Final[dict[str, MetricSpec]] = {
    "steps": _spec("steps", "Steps", 0, "steps"),
    "active_energy": _spec("active_energy", "Active energy", 0),
    # Not in METRICS: the Apple importer keeps such types under their HealthKit names.
    "exercise_minutes": MetricSpec(
        "exercise_minutes",
        "Exercise minutes",
        "min",
        ("exercise_minutes", "HKQuantityTypeIdentifierAppleExerciseTime"),
        "sum",
        0,
        " per day",
    ),
    "resting_heart_rate": _spec("resting_heart_rate", "Resting heart rate", 1),
    "hrv_sdnn": _spec("hrv_sdnn", "Heart rate variability (SDNN)", 1),
    "vo2_max": MetricSpec(
        "vo2_max",
        "VO2 max",
        "mL/kg/min",
        ("vo2_max", "HKQuantityTypeIdentifierVO2Max"),
        "mean",
        1,
    ),
    "body_mass": _spec("body_mass", "Weight", 1),
}


@dataclass(frozen=True, slots=True)
class DailyValue:
    """One day of one metric: the value, how many readings made it, records cited."""

    day: date
    value: float
    n: int
    citations: tuple[Citation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "value": self.value,
            "n": self.n,
            "citations": [c.to_dict() for c in self.citations],
        }


@dataclass(frozen=True, slots=True)
class WeeklyValue:
    """One ISO week of one metric: total and mean over its days with data."""

    week_start: date
    days: int
    total: float
    mean: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "week_start": self.week_start.isoformat(),
            "days": self.days,
            "total": self.total,
            "mean": self.mean,
        }


# -- reading ------------------------------------------------------------------------------


def _series_days(
    session: SpaceSession, spec: MetricSpec, start: date | None, end: date | None
) -> tuple[str | None, list[DailyValue]]:
    repo = SeriesRepository(session)
    start_ms = day_ms(start) if start is not None else None
    end_ms = day_ms(end) + DAY_MS if end is not None else None
    for metric in spec.metrics:
        rows = repo.daily(metric, start_ms, end_ms)
        if rows:
            total = spec.aggregation == "sum"
            return metric, [DailyValue(a.day, a.sum if total else a.mean, a.n) for a in rows]
    return None, []


def _weight_observations(
    session: SpaceSession, start: date | None, end: date | None
) -> dict[date, list[tuple[float, Citation]]]:
    repo = RecordRepository(session)
    out: dict[date, list[tuple[float, Citation]]] = defaultdict(list)
    since = day_ms(start) if start is not None else None
    until = day_ms(end) + DAY_MS if end is not None else None
    for code in WEIGHT_CODES:
        for item in repo.list(kind="observation", code=code, since_ms=since, until_ms=until):
            record = item.record
            if not isinstance(record, Observation) or not isinstance(record.value, QuantityValue):
                continue
            try:
                kg = record.value.quantity.converted("kg").value
            except UnitConversionError:
                continue
            instant = record.sort_time()
            if instant is not None:
                out[instant.astimezone(UTC).date()].append((kg, citation_of(item)))
    return out


def daily_values(
    session: SpaceSession, key: str, start: date | None = None, end: date | None = None
) -> tuple[str | None, list[DailyValue]]:
    """Daily values of a metric (a key of :data:`SPECS`), oldest first, days with data only.

    Returns the series name the values came from (None when they came from records
    only, or there are none). Weight adds weight observations; exercise minutes fall
    back to workout durations when no exercise-time series exists.
    """
    spec = SPECS[key]
    metric, days = _series_days(session, spec, start, end)
    if key == "body_mass":
        return metric, _merge_weights(days, _weight_observations(session, start, end))
    if key == "exercise_minutes" and not days and start is not None and end is not None:
        minutes = daily_workout_minutes(session, start, end)
        return None, [DailyValue(day, value, len(c), c) for day, (value, c) in minutes.items()]
    return metric, days


def _merge_weights(
    days: list[DailyValue], observed: dict[date, list[tuple[float, Citation]]]
) -> list[DailyValue]:
    """A day's weight is the mean of every reading that day: samples and observations."""
    by_day = {d.day: d for d in days}
    out = []
    for day in sorted(set(by_day) | set(observed)):
        series = by_day.get(day)
        readings = observed.get(day, [])
        total = (series.value * series.n if series else 0.0) + sum(v for v, _ in readings)
        n = (series.n if series else 0) + len(readings)
        out.append(DailyValue(day, total / n, n, tuple(c for _, c in readings)))
    return out


def weekly_values(daily: Sequence[DailyValue]) -> list[WeeklyValue]:
    """ISO weeks (from Monday) of daily values: total and mean of the days with data."""
    weeks: dict[date, list[float]] = defaultdict(list)
    for d in daily:
        weeks[week_start(d.day)].append(d.value)
    return [
        WeeklyValue(week, len(values), sum(values), sum(values) / len(values))
        for week, values in sorted(weeks.items())
    ]
