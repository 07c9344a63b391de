"""Nutrition: daily calories and macronutrients, averages, protein per kg, goals.

Read from :class:`~healthspace.model.NutritionDay` records, one per logged local day.
When several sources logged the same day (a diary app and Apple Health both), the
fullest log (most nutrients, then calories) is used and the others are counted, not
added, so a day is never double counted.

Energy shares use the Atwater general factors (protein and carbohydrate 4 kcal/g, fat
9 kcal/g) over the day's logged calories, or over the macronutrients' own energy when
no calories were logged.

Protein per kg uses the latest body weight on or before the day: a ``body_mass``
sample or a body-weight observation (LOINC 29463-7 / 3141-9), looking back at most
:data:`WEIGHT_LOOKBACK_DAYS` days.

Goals are the person's own (:class:`NutritionGoals`): calories is a target met within
± ``calorie_tolerance_pct``; protein (g and g/kg) and fiber are minimums; sodium is a
maximum; the shares of energy (``*_pct``) are targets met within ± ``pct_tolerance``
percentage points. Each goal is judged on the window's average and counted per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from healthspace.insights._nutrition_days import (
    AVERAGED,
    KCAL_PER_G,
    WEIGHT_LOOKBACK_DAYS,
    DayNutrition,
    WeightReading,
    nutrition_days,
    weight_before,
)
from healthspace.insights._wearables_common import day_start, fmt, rounded
from healthspace.insights.facts import (
    Band,
    Citation,
    Fact,
    Point,
    SampleWindow,
    Series,
    unique_citations,
)
from healthspace.store import SpaceSession

__all__ = [
    "KCAL_PER_G",
    "WEIGHT_LOOKBACK_DAYS",
    "DayNutrition",
    "GoalCheck",
    "NutritionGoals",
    "NutritionSummary",
    "WeightReading",
    "nutrition_days",
    "nutrition_summary",
    "weight_before",
]


@dataclass(frozen=True, slots=True)
class NutritionGoals:
    """Targets the person set; None means no goal for that item."""

    calories_kcal: float | None = None
    protein_g: float | None = None
    protein_g_per_kg: float | None = None
    carbs_pct: float | None = None
    fat_pct: float | None = None
    protein_pct: float | None = None
    fiber_g: float | None = None
    sodium_mg: float | None = None
    calorie_tolerance_pct: float = 10.0
    pct_tolerance: float = 5.0


@dataclass(frozen=True, slots=True)
class GoalCheck:
    """One goal against the window's average, and on how many days it was met."""

    goal: str  # a field of NutritionGoals
    kind: Literal["target", "min", "max"]
    target: float
    unit: str
    average: float | None
    status: Literal["met", "below", "above", "no data"]
    days_met: int
    days: int  # days with a value for this goal

    def to_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "kind": self.kind,
            "target": self.target,
            "unit": self.unit,
            "average": self.average,
            "status": self.status,
            "days_met": self.days_met,
            "days": self.days,
        }


@dataclass(frozen=True, slots=True)
class NutritionSummary:
    start: date
    end: date
    days: tuple[DayNutrition, ...]
    averages: dict[str, float | None]
    goals: tuple[GoalCheck, ...]
    series: dict[str, Series]
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": [d.to_dict() for d in self.days],
            "averages": dict(self.averages),
            "goals": [g.to_dict() for g in self.goals],
            "series": {k: s.to_dict() for k, s in self.series.items()},
            "facts": [f.to_dict() for f in self.facts],
        }


# -- summarising --------------------------------------------------------------------------

# Goal field -> (DayNutrition field, kind, unit, label).
_GOALS: Final[dict[str, tuple[str, Literal["target", "min", "max"], str, str]]] = {
    "calories_kcal": ("calories_kcal", "target", "kcal", "Calories"),
    "protein_g": ("protein_g", "min", "g", "Protein"),
    "protein_g_per_kg": ("protein_g_per_kg", "min", "g/kg", "Protein per kg of body weight"),
    "protein_pct": ("protein_pct", "target", "%", "Protein share of energy"),
    "carbs_pct": ("carbs_pct", "target", "%", "Carbohydrate share of energy"),
    "fat_pct": ("fat_pct", "target", "%", "Fat share of energy"),
    "fiber_g": ("fiber_g", "min", "g", "Fiber"),
    "sodium_mg": ("sodium_mg", "max", "mg", "Sodium"),
}
_SERIES: Final = {
    "calories_kcal": ("Calories", "kcal", 0),
    "protein_g": ("Protein", "g", 1),
    "carbs_g": ("Carbohydrate", "g", 1),
    "fat_g": ("Fat", "g", 1),
    "protein_g_per_kg": ("Protein per kg of body weight", "g/kg", 2),
}


def _tolerance(goals: NutritionGoals, name: str, target: float) -> float:
    if name == "calories_kcal":
        return target * goals.calorie_tolerance_pct / 100
    return goals.pct_tolerance


def _judge(
    value: float, target: float, kind: Literal["target", "min", "max"], tolerance: float
) -> Literal["met", "below", "above"]:
    if kind == "min":
        return "met" if value >= target else "below"
    if kind == "max":
        return "met" if value <= target else "above"
    if abs(value - target) <= tolerance:
        return "met"
    return "below" if value < target else "above"


def _check(goals: NutritionGoals, name: str, days: list[DayNutrition]) -> GoalCheck | None:
    target = getattr(goals, name)
    if target is None:
        return None
    field, kind, unit, _ = _GOALS[name]
    values = [v for d in days if (v := d.value(field)) is not None]
    tolerance = _tolerance(goals, name, target)
    average = sum(values) / len(values) if values else None
    return GoalCheck(
        goal=name,
        kind=kind,
        target=float(target),
        unit=unit,
        average=average,
        status="no data" if average is None else _judge(average, target, kind, tolerance),
        days_met=sum(1 for v in values if _judge(v, target, kind, tolerance) == "met"),
        days=len(values),
    )


def _band(goals: NutritionGoals, field: str) -> Band | None:
    target = getattr(goals, field, None)
    if target is None:
        return None
    _, kind, unit, _ = _GOALS[field]
    if kind == "target":
        tol = _tolerance(goals, field, target)
        return Band(target - tol, target + tol, "personal", f"your goal: {fmt(target, 0)} {unit}")
    low, high = (target, None) if kind == "min" else (None, target)
    text = fmt(target, 2 if unit == "g/kg" else 0)
    word = "at least" if kind == "min" else "at most"
    return Band(low, high, "personal", f"your goal: {word} {text} {unit}")


def _series(days: list[DayNutrition], goals: NutritionGoals) -> dict[str, Series]:
    out = {}
    for field, (label, unit, decimals) in _SERIES.items():
        band = _band(goals, field)
        points = []
        for d in days:
            value = d.value(field)
            if value is None:
                continue
            flag: Literal["normal", "high", "low"] | None = None
            if band is not None:
                flag = (
                    "low"
                    if band.low is not None and value < band.low
                    else "high"
                    if band.high is not None and value > band.high
                    else "normal"
                )
            points.append(
                Point(
                    when=day_start(d.day),
                    date=d.day.isoformat(),
                    value=round(value, decimals + 1),
                    flag=flag,
                    record_id=d.citation.record_id,
                )
            )
        out[field] = Series(f"nutrition.{field}", label, unit, tuple(points), band)
    return out


def _citations(days: list[DayNutrition]) -> tuple[Citation, ...]:
    weights = [d.weight.citation for d in days if d.weight is not None and d.weight.citation]
    return unique_citations([*(d.citation for d in days), *weights])


def _windows(days: list[DayNutrition]) -> tuple[SampleWindow, ...]:
    seen: dict[date, SampleWindow] = {}
    for d in days:
        window = d.weight.window() if d.weight is not None else None
        if window is not None:
            seen.setdefault(window.start, window)
    return tuple(seen[k] for k in sorted(seen))


def _average_fact(
    days: list[DayNutrition], averages: dict[str, float | None], start: date, end: date
) -> Fact:
    parts = []
    for field, label, unit, share in (
        ("calories_kcal", "", "kcal", None),
        ("protein_g", " protein", "g", "protein_pct"),
        ("carbs_g", " carbohydrate", "g", "carbs_pct"),
        ("fat_g", " fat", "g", "fat_pct"),
    ):
        value = averages.get(field)
        if value is None:
            continue
        text = f"{fmt(value, 0)} {unit}{label}"
        pct = averages.get(share) if share else None
        if pct is not None:
            text += f" ({fmt(pct, 0)}% of energy)"
        parts.append(text)
    statement = f"From {start} to {end} you logged food on {len(days)} days"
    statement += (": on average " + ", ".join(parts) + " a day.") if parts else "."
    values: dict[str, float | int | str | bool | None] = {"days": len(days)}
    decimals = {"protein_g_per_kg": 2, "calories_kcal": 0}
    values.update({k: rounded(v, decimals.get(k, 0)) for k, v in averages.items()})
    return Fact("nutrition.average", statement, _citations(days), _windows(days), values)


def _goal_fact(check: GoalCheck, days: list[DayNutrition]) -> Fact:
    field, _, unit, label = _GOALS[check.goal]
    decimals = 2 if unit == "g/kg" else 0
    word = {"target": "goal", "min": "goal of at least", "max": "limit of"}[check.kind]
    if check.average is None:
        target = f"{fmt(check.target, decimals)} {unit}"
        statement = f"{label}: no logged days to compare with your {word} {target}."
    else:
        statement = (
            f"{label} averaged {fmt(check.average, decimals)} {unit} a day against your {word} "
            f"{fmt(check.target, decimals)} {unit} ({check.status}); met on {check.days_met} "
            f"of {check.days} days."
        )
    used = [d for d in days if d.value(field) is not None]
    return Fact(
        "nutrition.goal",
        statement,
        _citations(used),
        _windows(used),
        {
            "goal": check.goal,
            "target": check.target,
            "average": rounded(check.average, decimals),
            "status": check.status,
            "days_met": check.days_met,
            "days": check.days,
        },
        severity="info" if check.status in ("met", "no data") else "notice",
    )


def nutrition_summary(
    session: SpaceSession,
    *,
    start: date | None = None,
    end: date | None = None,
    days: int = 7,
    goals: NutritionGoals | None = None,
) -> NutritionSummary:
    """Calories and macronutrients from ``start`` to ``end`` (local days, inclusive).

    ``end`` defaults to today (UTC) and ``start`` to ``days`` days before ``end``.
    """
    goals = goals or NutritionGoals()
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=days - 1)
    logged = nutrition_days(session, start, end)
    averages: dict[str, float | None] = {}
    for field in AVERAGED:
        values = [v for d in logged if (v := d.value(field)) is not None]
        averages[field] = sum(values) / len(values) if values else None
    checks = [c for name in _GOALS if (c := _check(goals, name, logged)) is not None]
    facts = [_average_fact(logged, averages, start, end)] if logged else []
    facts += [_goal_fact(c, logged) for c in checks]
    return NutritionSummary(
        start=start,
        end=end,
        days=tuple(logged),
        averages=averages,
        goals=tuple(checks),
        series=_series(logged, goals),
        facts=tuple(facts),
    )
