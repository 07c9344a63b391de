"""Care plans: goals and planned activities."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from healthspace.model.coding import Code
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["CarePlan", "CarePlanActivity"]


class CarePlanActivity(BaseModel):
    """One planned activity: "walk 30 minutes daily", "HbA1c every 3 months"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = None
    code: Code | None = None
    status: str | None = None  # "not-started", "scheduled", "in-progress", "completed", ...
    scheduled: PartialDateTime | None = None


class CarePlan(Record):
    """A plan of care (FHIR CarePlan, C-CDA plan of treatment section)."""

    kind: Literal["care_plan"] = "care_plan"

    title: str | None = None
    description: str | None = None
    category: Code | None = None
    activities: tuple[CarePlanActivity, ...] = ()
    start: PartialDateTime | None = None
    end: PartialDateTime | None = None
    addresses_ids: tuple[str, ...] = ()  # source_ids of the conditions it addresses
    author: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.start, self.end)

    def primary_code(self) -> Code | None:
        return self.category

    def display_text(self) -> str:
        return label(self.title or self.description, (self.category,), "Care plan")

    def summary_value(self) -> SummaryValue:
        return None, None
