"""Procedures: surgeries, scans, counselling, anything done to or for the person."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from healthspace.model.coding import Code
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Procedure"]


class Procedure(Record):
    """A procedure performed (FHIR Procedure, C-CDA procedure activity)."""

    kind: Literal["procedure"] = "procedure"

    code: Code | None = None  # SNOMED or CPT
    codes: tuple[Code, ...] = ()
    text: str | None = None
    category: str | None = None
    performed: PartialDateTime | None = None
    performed_end: PartialDateTime | None = None
    body_site: str | None = None
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[Code, ...] = ()
    performer: str | None = None
    location: str | None = None
    outcome: str | None = None
    encounter_id: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.performed, self.performed_end)

    def primary_code(self) -> Code | None:
        return self.code

    def display_text(self) -> str:
        return label(self.text, (self.code, *self.codes), "Procedure")

    def summary_value(self) -> SummaryValue:
        return self.outcome, None
