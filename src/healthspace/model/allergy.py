"""Allergies and intolerances, including an explicit "no known allergies"."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from healthspace.model.coding import Code
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Allergy", "Reaction"]


class Reaction(BaseModel):
    """One reaction to the substance: what happened and how bad it was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifestation: str | None = None  # "hives"
    manifestation_codes: tuple[Code, ...] = ()
    severity: Literal["mild", "moderate", "severe"] | None = None
    onset: PartialDateTime | None = None
    description: str | None = None


class Allergy(Record):
    """An allergy or intolerance (FHIR AllergyIntolerance, C-CDA allergy concern)."""

    kind: Literal["allergy"] = "allergy"

    code: Code | None = None  # the substance
    codes: tuple[Code, ...] = ()
    text: str | None = None
    no_known_allergy: bool = False  # an explicit "NKA"/"NKDA" entry, not a missing list
    allergy_type: Literal["allergy", "intolerance"] | None = None
    category: str | None = None  # "food", "medication", "environment", "biologic"
    criticality: Literal["low", "high", "unable-to-assess"] | None = None
    clinical_status: str | None = None  # "active", "inactive", "resolved"
    verification_status: str | None = None  # "unconfirmed", "confirmed", "refuted", ...
    reactions: tuple[Reaction, ...] = ()
    onset: PartialDateTime | None = None
    recorded: PartialDateTime | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.onset, self.recorded)

    def primary_code(self) -> Code | None:
        return self.code

    def display_text(self) -> str:
        fallback = "No known allergies" if self.no_known_allergy else "Allergy"
        return label(self.text, (self.code, *self.codes), fallback)

    def summary_value(self) -> SummaryValue:
        return self.criticality, None
