"""Observations: lab results, vital signs, survey answers, device readings (FHIR Observation)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from healthspace.model.coding import Code
from healthspace.model.quantity import FiniteFloat, Quantity
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = [
    "BooleanValue",
    "CodedValue",
    "DateTimeValue",
    "Observation",
    "ObservationComponent",
    "ObservationValue",
    "QuantityValue",
    "RangeValue",
    "RatioValue",
    "ReferenceRange",
    "StringValue",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class QuantityValue(BaseModel):
    """A measured amount: ``162 mg/dL``."""

    model_config = _FROZEN
    type: Literal["quantity"] = "quantity"
    quantity: Quantity


class StringValue(BaseModel):
    """Free text: ``"Positive"``, ``"See comment"``."""

    model_config = _FROZEN
    type: Literal["string"] = "string"
    text: str


class CodedValue(BaseModel):
    """A coded answer, e.g. SNOMED "Detected"."""

    model_config = _FROZEN
    type: Literal["coded"] = "coded"
    code: Code


class RangeValue(BaseModel):
    """A value given as a range: ``5-10``, or open on one side."""

    model_config = _FROZEN
    type: Literal["range"] = "range"
    low: Quantity | None = None
    high: Quantity | None = None


class RatioValue(BaseModel):
    """A ratio such as an antibody titer ``1:320``."""

    model_config = _FROZEN
    type: Literal["ratio"] = "ratio"
    numerator: Quantity
    denominator: Quantity


class BooleanValue(BaseModel):
    """A yes/no answer."""

    model_config = _FROZEN
    type: Literal["boolean"] = "boolean"
    value: bool


class DateTimeValue(BaseModel):
    """A date answer, e.g. "date of last menstrual period"."""

    model_config = _FROZEN
    type: Literal["datetime"] = "datetime"
    moment: PartialDateTime


ObservationValue = Annotated[
    QuantityValue
    | StringValue
    | CodedValue
    | RangeValue
    | RatioValue
    | BooleanValue
    | DateTimeValue,
    Field(discriminator="type"),
]


def value_summary(value: ObservationValue | None) -> SummaryValue:
    """(value, unit) of an observation value as recorded, for listings."""
    match value:
        case QuantityValue(quantity=quantity):
            if quantity.comparator:
                return f"{quantity.comparator}{quantity.value:g}", quantity.unit or None
            return quantity.value, quantity.unit or None
        case StringValue(text=text):
            return text, None
        case CodedValue(code=code):
            return code.display or code.code, None
        case RangeValue(low=low, high=high):
            bound = low if low is not None else high
            unit = bound.unit if bound is not None else ""
            low_text = f"{low.value:g}" if low is not None else ""
            high_text = f"{high.value:g}" if high is not None else ""
            return f"{low_text}-{high_text}", unit or None
        case RatioValue(numerator=numerator, denominator=denominator):
            return f"{numerator.value:g}:{denominator.value:g}", None
        case BooleanValue(value=flag):
            return ("true" if flag else "false"), None
        case DateTimeValue(moment=moment):
            return moment.isoformat(), None
    return None, None


class ReferenceRange(BaseModel):
    """The range a result is judged against, as the lab gave it."""

    model_config = _FROZEN

    low: Quantity | None = None
    high: Quantity | None = None
    text: str | None = None  # "<100", "Negative"
    type: str | None = None  # "normal", "therapeutic", "treatment"
    applies_to: tuple[str, ...] = ()  # "female", "pregnant", ...
    age_low: FiniteFloat | None = None  # years
    age_high: FiniteFloat | None = None


class ObservationComponent(BaseModel):
    """One part of a multi-part observation (systolic / diastolic of a blood pressure)."""

    model_config = _FROZEN

    code: Code
    codes: tuple[Code, ...] = ()
    text: str | None = None
    value: ObservationValue | None = None
    data_absent_reason: str | None = None
    interpretation: tuple[Code, ...] = ()
    reference_ranges: tuple[ReferenceRange, ...] = ()

    def display_text(self) -> str:
        return label(self.text, (self.code, *self.codes), self.code.code)


class Observation(Record):
    """A lab result, vital sign or other measurement (FHIR Observation, C-CDA result)."""

    kind: Literal["observation"] = "observation"

    code: Code
    codes: tuple[Code, ...] = ()  # every coding the source gave, ``code`` included
    text: str | None = None
    category: str | None = None  # "laboratory", "vital-signs", "social-history", ...
    value: ObservationValue | None = None
    data_absent_reason: str | None = None
    components: tuple[ObservationComponent, ...] = ()
    reference_ranges: tuple[ReferenceRange, ...] = ()
    interpretation: tuple[Code, ...] = ()  # "H", "L", "A", ... (v3 ObservationInterpretation)
    effective: PartialDateTime | None = None
    effective_end: PartialDateTime | None = None
    issued: PartialDateTime | None = None
    performer: str | None = None
    specimen: str | None = None
    method: str | None = None
    body_site: str | None = None
    encounter_id: str | None = None  # source_id of the encounter it belongs to

    def sort_time(self) -> datetime | None:
        return first_time(self.effective, self.issued)

    def primary_code(self) -> Code | None:
        return self.code

    def display_text(self) -> str:
        return label(self.text, (self.code, *self.codes), self.code.code)

    def summary_value(self) -> SummaryValue:
        if self.value is not None or not self.components:
            return value_summary(self.value)
        # Blood pressure and similar panels: "120/80" with the shared unit.
        parts = [value_summary(component.value) for component in self.components]
        units = {unit for _, unit in parts}
        text = "/".join(_plain(value) for value, _ in parts)
        return text, units.pop() if len(units) == 1 else None


def _plain(value: float | str | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else value
