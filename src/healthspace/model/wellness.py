"""Wellness records: workouts, nights of sleep, days of nutrition.

Each is one summary record; the second-by-second data behind it (heart rate during a
workout, per-stage sleep samples) lives in time series, see :mod:`healthspace.model.sample`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from healthspace.model.coding import Code
from healthspace.model.quantity import FiniteFloat, Quantity
from healthspace.model.record import Record, SummaryValue, first_time
from healthspace.model.timing import PartialDateTime

__all__ = ["NutritionDay", "SleepSession", "SleepStage", "SleepStagePeriod", "Workout"]

# The stages Apple Health, Fitbit and Oura report, under one vocabulary.
SleepStage = Literal["in_bed", "asleep", "awake", "core", "deep", "rem"]


class Workout(Record):
    """One workout: an activity with its totals (Apple Health Workout, Peloton, FIT, GPX)."""

    kind: Literal["workout"] = "workout"

    activity_type: str  # "HKWorkoutActivityTypeRunning" or free text such as "cycling"
    activity_code: Code | None = None
    start: PartialDateTime
    end: PartialDateTime | None = None
    duration_s: FiniteFloat | None = Field(default=None, ge=0)
    distance: Quantity | None = None
    energy: Quantity | None = None  # active energy, e.g. kcal
    avg_heart_rate: Quantity | None = None
    max_heart_rate: Quantity | None = None
    statistics: dict[str, Quantity] = Field(default_factory=dict)  # metric -> total/average
    source_name: str | None = None  # the app: "Peloton", "Apple Watch"
    device: str | None = None

    def sort_time(self) -> datetime | None:
        return self.start.start

    def primary_code(self) -> Code | None:
        return self.activity_code

    def display_text(self) -> str:
        text = self.activity_type.removeprefix("HKWorkoutActivityType")
        return text or "Workout"

    def summary_value(self) -> SummaryValue:
        if self.distance is not None:
            return self.distance.value, self.distance.unit or None
        if self.duration_s is not None:
            return self.duration_s / 60, "min"
        return None, None


class SleepStagePeriod(BaseModel):
    """A stretch of one sleep stage within a night."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: SleepStage
    start: PartialDateTime
    end: PartialDateTime


class SleepSession(Record):
    """One night (or nap) of sleep with its stages."""

    kind: Literal["sleep"] = "sleep"

    start: PartialDateTime
    end: PartialDateTime
    stages: tuple[SleepStagePeriod, ...] = ()
    source_name: str | None = None
    device: str | None = None

    def seconds_in(self, *stages: SleepStage) -> float:
        """Total seconds spent in any of ``stages``."""
        return sum(
            (period.end.start - period.start.start).total_seconds()
            for period in self.stages
            if period.stage in stages
        )

    def asleep_seconds(self) -> float:
        """Time asleep: the stage periods if any, else the whole session."""
        if self.stages:
            return self.seconds_in("asleep", "core", "deep", "rem")
        return (self.end.start - self.start.start).total_seconds()

    def sort_time(self) -> datetime | None:
        return self.start.start

    def primary_code(self) -> Code | None:
        return None

    def display_text(self) -> str:
        return "Sleep"

    def summary_value(self) -> SummaryValue:
        return round(self.asleep_seconds() / 3600, 2), "h"


class NutritionDay(Record):
    """One day of logged food (MyFitnessPal, Apple Health dietary samples).

    ``nutrients`` keys: protein, carbohydrate, fat, saturated_fat, fiber, sugar, sodium,
    cholesterol, potassium, ... each with its unit (g, mg).
    """

    kind: Literal["nutrition"] = "nutrition"

    date: PartialDateTime  # day precision
    calories: Quantity | None = None
    nutrients: dict[str, Quantity] = Field(default_factory=dict)
    meals: int | None = Field(default=None, ge=0)
    source_name: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.date)

    def primary_code(self) -> Code | None:
        return None

    def display_text(self) -> str:
        return "Nutrition"

    def summary_value(self) -> SummaryValue:
        if self.calories is None:
            return None, None
        return self.calories.value, self.calories.unit or None
