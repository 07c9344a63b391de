"""Logged nutrition days and body weights, the inputs of :mod:`healthspace.insights.nutrition`.

One :class:`DayNutrition` per logged local day; see the summary module for the rules.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from healthspace.insights._wearables_common import DAY_MS, day_ms, in_unit
from healthspace.insights._wearables_series import WEIGHT_CODES
from healthspace.insights.facts import Citation, SampleWindow, citation_of, local_date
from healthspace.model import (
    NutritionDay,
    Observation,
    QuantityValue,
    UnitConversionError,
)
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession, StoredRecord

__all__ = [
    "AVERAGED",
    "KCAL_PER_G",
    "WEIGHT_LOOKBACK_DAYS",
    "DayNutrition",
    "WeightReading",
    "nutrition_days",
    "weight_before",
]

KCAL_PER_G: Final = {"protein": 4.0, "carbohydrate": 4.0, "fat": 9.0}
WEIGHT_LOOKBACK_DAYS: Final = 365
# Field of DayNutrition -> (nutrient key in NutritionDay.nutrients, unit).
_NUTRIENTS: Final = {
    "protein_g": ("protein", "g"),
    "carbs_g": ("carbohydrate", "g"),
    "fat_g": ("fat", "g"),
    "fiber_g": ("fiber", "g"),
    "sodium_mg": ("sodium", "mg"),
}


@dataclass(frozen=True, slots=True)
class WeightReading:
    """A body weight in kg and where it came from (a record, or a sample's day)."""

    t_ms: int
    kg: float
    citation: Citation | None = None

    def window(self) -> SampleWindow | None:
        if self.citation is not None:
            return None
        day = datetime.fromtimestamp(self.t_ms / 1000, UTC).date()
        return SampleWindow("body_mass", day, day, 1, 1)


@dataclass(frozen=True, slots=True)
class DayNutrition:
    """One logged day, in kcal, g and mg, with energy shares and protein per kg."""

    day: date
    calories_kcal: float | None
    protein_g: float | None
    carbs_g: float | None
    fat_g: float | None
    fiber_g: float | None
    sodium_mg: float | None
    protein_pct: float | None
    carbs_pct: float | None
    fat_pct: float | None
    weight: WeightReading | None
    protein_g_per_kg: float | None
    citation: Citation
    other_logs: int = 0  # logs of the same day from other sources, not added

    def value(self, name: str) -> float | None:
        found = getattr(self, name)
        return found if isinstance(found, float) else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"day": self.day.isoformat()}
        for name in (*AVERAGED, "other_logs"):
            out[name] = getattr(self, name)
        out["weight_kg"] = self.weight.kg if self.weight is not None else None
        out["citation"] = self.citation.to_dict()
        return out


AVERAGED: Final = (
    "calories_kcal",
    "protein_g",
    "carbs_g",
    "fat_g",
    "fiber_g",
    "sodium_mg",
    "protein_pct",
    "carbs_pct",
    "fat_pct",
    "protein_g_per_kg",
)


# -- reading ------------------------------------------------------------------------------


def weight_before(session: SpaceSession, start: date, end: date) -> list[WeightReading]:
    """Every body weight from ``WEIGHT_LOOKBACK_DAYS`` before ``start`` to ``end``, by time."""
    first_ms = day_ms(start) - WEIGHT_LOOKBACK_DAYS * DAY_MS
    last_ms = day_ms(end) + DAY_MS
    chunk = SeriesRepository(session).samples("body_mass", first_ms, last_ms)
    readings = [
        WeightReading(t, v) for t, v in zip(chunk.t_ms.tolist(), chunk.values.tolist(), strict=True)
    ]
    repo = RecordRepository(session)
    for code in WEIGHT_CODES:
        for item in repo.list(kind="observation", code=code, since_ms=first_ms, until_ms=last_ms):
            record = item.record
            instant = record.sort_time()
            if not isinstance(record, Observation) or instant is None:
                continue
            if not isinstance(record.value, QuantityValue):
                continue
            try:
                kg = record.value.quantity.converted("kg").value
            except UnitConversionError:
                continue
            readings.append(WeightReading(int(instant.timestamp() * 1000), kg, citation_of(item)))
    readings.sort(key=lambda r: (r.t_ms, r.citation is None))
    return readings


def _fullness(record: NutritionDay) -> tuple[int, int]:
    return len(record.nutrients), int(record.calories is not None)


def _per_day(stored: list[StoredRecord], start: date, end: date) -> dict[date, list[StoredRecord]]:
    by_day: dict[date, list[StoredRecord]] = defaultdict(list)
    for item in stored:
        record = item.record
        if isinstance(record, NutritionDay):
            day = local_date(record.date)
            if day is not None and start <= day <= end:
                by_day[day].append(item)
    return by_day


def _shares(calories: float | None, grams: dict[str, float | None]) -> dict[str, float | None]:
    energy = {k: g * KCAL_PER_G[k] for k in KCAL_PER_G if (g := grams.get(k)) is not None}
    total = calories if calories else sum(energy.values())
    if not total:
        return dict.fromkeys(KCAL_PER_G)
    return {k: (energy[k] / total * 100 if k in energy else None) for k in KCAL_PER_G}


def nutrition_days(session: SpaceSession, start: date, end: date) -> list[DayNutrition]:
    """The logged days from ``start`` to ``end`` (local days, inclusive), oldest first."""
    stored = RecordRepository(session).list(
        kind="nutrition", since_ms=day_ms(start) - DAY_MS, until_ms=day_ms(end) + 2 * DAY_MS
    )
    weights = weight_before(session, start, end)
    times = [w.t_ms for w in weights]
    out = []
    for day, items in sorted(_per_day(stored, start, end).items()):
        best = max(items, key=lambda i: (*_fullness(_nutrition(i)), i.record_id))
        record = _nutrition(best)
        grams = {
            field: in_unit(record.nutrients.get(key), unit)
            for field, (key, unit) in _NUTRIENTS.items()
        }
        calories = in_unit(record.calories, "kcal")
        shares = _shares(
            calories,
            {
                "protein": grams["protein_g"],
                "carbohydrate": grams["carbs_g"],
                "fat": grams["fat_g"],
            },
        )
        at = bisect.bisect_left(times, day_ms(day) + DAY_MS)
        weight = weights[at - 1] if at else None
        protein = grams["protein_g"]
        out.append(
            DayNutrition(
                day=day,
                calories_kcal=calories,
                protein_g=protein,
                carbs_g=grams["carbs_g"],
                fat_g=grams["fat_g"],
                fiber_g=grams["fiber_g"],
                sodium_mg=grams["sodium_mg"],
                protein_pct=shares["protein"],
                carbs_pct=shares["carbohydrate"],
                fat_pct=shares["fat"],
                weight=weight,
                protein_g_per_kg=(
                    protein / weight.kg if protein is not None and weight and weight.kg else None
                ),
                citation=citation_of(best),
                other_logs=len(items) - 1,
            )
        )
    return out


def _nutrition(item: StoredRecord) -> NutritionDay:
    record = item.record
    assert isinstance(record, NutritionDay)
    return record
