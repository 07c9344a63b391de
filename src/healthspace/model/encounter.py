"""Encounters: visits, admissions, telehealth calls."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from healthspace.model.coding import Code
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Encounter"]


class Encounter(Record):
    """A contact with care (FHIR Encounter, C-CDA encounter activity)."""

    kind: Literal["encounter"] = "encounter"

    encounter_class: str | None = None  # v3 ActCode: "AMB", "IMP", "EMER", "VR", "HH"
    encounter_type: Code | None = None
    encounter_types: tuple[Code, ...] = ()
    text: str | None = None
    start: PartialDateTime | None = None
    end: PartialDateTime | None = None
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[Code, ...] = ()
    diagnosis_ids: tuple[str, ...] = ()  # source_ids of conditions
    participants: tuple[str, ...] = ()  # practitioner names
    location: str | None = None
    service_provider: str | None = None  # the organisation
    discharge_disposition: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.start, self.end)

    def primary_code(self) -> Code | None:
        return self.encounter_type

    def display_text(self) -> str:
        return label(
            self.text,
            (self.encounter_type, *self.encounter_types),
            self.encounter_class or "Encounter",
        )

    def summary_value(self) -> SummaryValue:
        return self.location or self.service_provider, None
