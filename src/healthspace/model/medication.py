"""Medications: what the person takes (statements) and what was prescribed (requests)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from healthspace.model.coding import Code
from healthspace.model.quantity import FiniteFloat, Quantity
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Medication", "PeriodUnit", "Schedule"]

# FHIR Timing.repeat.periodUnit (UCUM time units).
PeriodUnit = Literal["s", "min", "h", "d", "wk", "mo", "a"]


class Schedule(BaseModel):
    """How often a dose is taken: ``frequency`` times per ``period`` ``period_unit``.

    "Twice a day" is frequency 2, period 1, period_unit "d".
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    frequency: int | None = Field(default=None, ge=1)
    period: FiniteFloat | None = Field(default=None, gt=0)
    period_unit: PeriodUnit | None = None
    times_of_day: tuple[str, ...] = Field(default=(), description="HH:MM[:SS] local times")
    as_needed: bool = False
    as_needed_reason: str | None = None
    text: str | None = None  # the sig as written: "1 tab by mouth twice daily"


class Medication(Record):
    """A medication statement or request (FHIR MedicationStatement / MedicationRequest)."""

    kind: Literal["medication"] = "medication"

    medication_kind: Literal["statement", "request"]
    code: Code | None = None  # RxNorm preferred
    codes: tuple[Code, ...] = ()
    text: str | None = None
    dose: Quantity | None = None
    route: str | None = None
    schedule: Schedule | None = None
    start: PartialDateTime | None = None
    end: PartialDateTime | None = None
    authored: PartialDateTime | None = None  # when a request was written
    prescriber: str | None = None
    reason: str | None = None
    reason_codes: tuple[Code, ...] = ()
    dispense_quantity: Quantity | None = None
    refills: int | None = Field(default=None, ge=0)

    def sort_time(self) -> datetime | None:
        return first_time(self.start, self.authored, self.end)

    def primary_code(self) -> Code | None:
        return self.code

    def display_text(self) -> str:
        return label(self.text, (self.code, *self.codes), "Medication")

    def summary_value(self) -> SummaryValue:
        if self.dose is None:
            return None, None
        return self.dose.value, self.dose.unit or None
