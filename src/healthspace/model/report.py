"""Diagnostic reports: a lab panel or imaging study that groups results."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from healthspace.model.coding import Code
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["DiagnosticReport"]


class DiagnosticReport(Record):
    """A report (FHIR DiagnosticReport, C-CDA result organizer).

    Results are observations stored on their own; ``result_ids`` holds their source_ids.
    """

    kind: Literal["report"] = "report"

    code: Code | None = None
    codes: tuple[Code, ...] = ()
    text: str | None = None
    category: str | None = None  # "LAB", "RAD", ...
    effective: PartialDateTime | None = None
    effective_end: PartialDateTime | None = None
    issued: PartialDateTime | None = None
    result_ids: tuple[str, ...] = ()
    conclusion: str | None = None
    conclusion_codes: tuple[Code, ...] = ()
    document_ids: tuple[str, ...] = ()  # source_ids of attached documents (presentedForm)
    performer: str | None = None
    encounter_id: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.effective, self.issued)

    def primary_code(self) -> Code | None:
        return self.code

    def display_text(self) -> str:
        return label(self.text, (self.code, *self.codes), "Report")

    def summary_value(self) -> SummaryValue:
        return self.conclusion, None
