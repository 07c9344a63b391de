"""Conditions: problems, diagnoses, health concerns (FHIR Condition, C-CDA problem)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from healthspace.model.coding import Code
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Condition"]


class Condition(Record):
    """A problem or diagnosis, with when it began and whether it is still active."""

    kind: Literal["condition"] = "condition"

    code: Code | None = None
    codes: tuple[Code, ...] = ()
    text: str | None = None
    category: str | None = None  # "problem-list-item", "encounter-diagnosis", "health-concern"
    clinical_status: str | None = None  # "active", "recurrence", "inactive", "resolved", ...
    verification_status: str | None = None  # "confirmed", "provisional", "refuted", ...
    severity: str | None = None  # "mild", "moderate", "severe" or the source's wording
    body_site: str | None = None
    onset: PartialDateTime | None = None
    onset_text: str | None = None  # "childhood", when no date was given
    abatement: PartialDateTime | None = None
    recorded: PartialDateTime | None = None
    asserter: str | None = None
    encounter_id: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.onset, self.recorded)

    def primary_code(self) -> Code | None:
        return self.code

    def display_text(self) -> str:
        return label(self.text, (self.code, *self.codes), "Condition")

    def summary_value(self) -> SummaryValue:
        return self.clinical_status, None
