"""Immunizations given (or recorded as not given)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from healthspace.model.coding import Code
from healthspace.model.quantity import Quantity
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Immunization"]


class Immunization(Record):
    """A vaccine dose (FHIR Immunization, C-CDA immunization activity).

    ``status`` is "completed", "not-done" or "entered-in-error" as in FHIR.
    """

    kind: Literal["immunization"] = "immunization"

    code: Code | None = None  # CVX preferred
    codes: tuple[Code, ...] = ()
    text: str | None = None
    occurrence: PartialDateTime | None = None
    recorded: PartialDateTime | None = None
    status_reason: str | None = None  # why it was not done
    lot_number: str | None = None
    expiration: PartialDateTime | None = None
    manufacturer: str | None = None
    site: str | None = None
    route: str | None = None
    dose_quantity: Quantity | None = None
    dose_number: str | None = None  # "1", "booster": FHIR allows either
    series: str | None = None
    performer: str | None = None
    location: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.occurrence, self.recorded)

    def primary_code(self) -> Code | None:
        return self.code

    def display_text(self) -> str:
        return label(self.text, (self.code, *self.codes), "Immunization")

    def summary_value(self) -> SummaryValue:
        if self.dose_quantity is None:
            return None, None
        return self.dose_quantity.value, self.dose_quantity.unit or None
