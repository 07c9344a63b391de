"""The person the records are about: demographics only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from healthspace.model.coding import Code
from healthspace.model.record import Record, SummaryValue
from healthspace.model.timing import PartialDateTime

__all__ = ["Patient"]


class Patient(Record):
    """Demographics as a source states them (FHIR Patient, C-CDA recordTarget, Apple ``Me``)."""

    kind: Literal["patient"] = "patient"

    name: str | None = None  # the full name as written
    given: tuple[str, ...] = ()
    family: str | None = None
    birth_date: PartialDateTime | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None  # administrative gender
    deceased: bool = False
    deceased_date: PartialDateTime | None = None
    language: str | None = None  # BCP 47
    marital_status: str | None = None

    def sort_time(self) -> datetime | None:
        # The sort time is stored in clear; a birth date there would identify the person.
        return None

    def primary_code(self) -> Code | None:
        return None

    def display_text(self) -> str:
        if self.name:
            return self.name
        joined = " ".join((*self.given, self.family or "")).strip()
        return joined or "Patient"

    def summary_value(self) -> SummaryValue:
        return None, None
