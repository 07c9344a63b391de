"""Flags for one lab result: against the laboratory's own range, its own interpretation
codes, or (only when the result came with neither) the catalogue's typical range; plus
critical limits from a published critical-value list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from healthspace.insights.catalogue import Bounds, CatalogueAnalyte
from healthspace.insights.facts import unit_label, with_unit
from healthspace.model import Code, ReferenceRange

__all__ = [
    "CriticalMark",
    "RangeFlag",
    "RangeUsed",
    "critical_from_interpretation",
    "critical_from_limit",
    "interpretation_flag",
    "reported_range",
    "typical_range",
]

RangeFlag = Literal["normal", "high", "low", "abnormal"]
# Converts (value, from unit, to unit) for the result's analyte; None when impossible.
Converter = Callable[[float, str, str], float | None]

# HL7 v3 ObservationInterpretation codes (FHIR and C-CDA use the same ones).
_INTERPRETATION: Final[dict[str, tuple[RangeFlag, bool]]] = {
    "N": ("normal", False),
    "H": ("high", False),
    "HU": ("high", False),
    ">": ("high", False),
    "L": ("low", False),
    "LU": ("low", False),
    "<": ("low", False),
    "A": ("abnormal", False),
    "POS": ("abnormal", False),
    "HH": ("high", True),
    "LL": ("low", True),
    "AA": ("abnormal", True),
}
# Range kinds that describe a healthy population (FHIR referenceRange.type).
_NORMAL_TYPES: Final = frozenset({"normal", "recommended"})


@dataclass(frozen=True, slots=True)
class RangeUsed:
    """The range a result was judged against, in the unit of the value it was compared to.

    ``source`` is "reported" (the laboratory's range, sent with the result) or "typical"
    (the catalogue's typical adult range, whose publication ``reference`` names).
    """

    low: float | None
    high: float | None
    unit: str
    source: Literal["reported", "typical"]
    reference: str | None = None
    url: str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    note: str | None = None

    def bounds(self) -> Bounds:
        return Bounds(self.low, self.high, self.low_inclusive, self.high_inclusive)

    def text(self) -> str:
        return self.bounds().text(unit_label(self.unit))

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "source": self.source,
            "reference": self.reference,
            "url": self.url,
            "text": self.text(),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class CriticalMark:
    """A result at or beyond a critical limit: the assistant must escalate it."""

    direction: Literal["low", "high", "abnormal"]
    limit: float | None
    unit: str
    source: str  # the published list (or the laboratory's own code) it comes from
    url: str | None = None

    def describe(self) -> str:
        if self.limit is None:
            return f"marked critical by the laboratory ({self.source})"
        sign = "<=" if self.direction == "low" else ">="
        limit = with_unit(f"{sign}{self.limit:g}", self.unit)
        return f"at or beyond the critical limit {limit} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "limit": self.limit,
            "unit": self.unit,
            "source": self.source,
            "url": self.url,
        }


def _pick(ranges: Sequence[ReferenceRange], sex: str | None) -> ReferenceRange | None:
    usable = [
        r
        for r in ranges
        if (r.low is not None or r.high is not None)
        and (r.type is None or r.type.lower() in _NORMAL_TYPES)
    ]
    general = [r for r in usable if not r.applies_to]
    if sex is not None:
        for r in usable:
            if sex in {a.lower() for a in r.applies_to}:
                return r
    if general:
        return general[0]
    return usable[0] if usable else None


def reported_range(
    ranges: Sequence[ReferenceRange], value_unit: str, sex: str | None, convert: Converter
) -> RangeUsed | None:
    """The laboratory's range in the value's unit, or None when it gave none usable."""
    chosen = _pick(ranges, sex)
    if chosen is None:
        return None
    bounds: list[float | None] = []
    for quantity in (chosen.low, chosen.high):
        if quantity is None:
            bounds.append(None)
            continue
        # A bound without a unit is in the result's unit (FHIR examples often omit it).
        if not quantity.unit or quantity.unit == value_unit:
            bounds.append(quantity.value)
            continue
        converted = convert(quantity.value, quantity.unit, value_unit)
        if converted is None:
            return None
        bounds.append(converted)
    return RangeUsed(low=bounds[0], high=bounds[1], unit=value_unit, source="reported")


def typical_range(analyte: CatalogueAnalyte, sex: str | None) -> RangeUsed:
    """The catalogue's typical adult range, in the analyte's canonical unit."""
    typical = analyte.typical_range
    bounds = typical.for_sex(sex)
    return RangeUsed(
        low=bounds.low,
        high=bounds.high,
        unit=typical.unit,
        source="typical",
        reference=typical.source.title,
        url=typical.source.url,
        low_inclusive=bounds.low_inclusive,
        high_inclusive=bounds.high_inclusive,
        note=typical.note,
    )


def interpretation_flag(codes: Sequence[Code]) -> tuple[RangeFlag | None, bool]:
    """(flag, critical) from the laboratory's interpretation codes, if it sent any."""
    flag: RangeFlag | None = None
    critical = False
    for code in codes:
        found = _INTERPRETATION.get(code.code.strip().upper())
        if found is None:
            continue
        if flag is None or flag == "normal":
            flag = found[0]
        critical = critical or found[1]
    return flag, critical


def critical_from_limit(
    analyte: CatalogueAnalyte | None, value: float, value_unit: str, convert: Converter
) -> CriticalMark | None:
    """The mark when ``value`` is at or beyond the analyte's published critical limit."""
    if analyte is None or analyte.critical is None:
        return None
    limit = analyte.critical
    in_unit = convert(value, value_unit, limit.unit)
    if in_unit is None:
        return None
    # Conversions carry float noise (6.0 mmol/L may come back as 5.9999999); limits are
    # given to at most a few decimals, so compare at a precision well below them.
    crossed = limit.crossed(round(in_unit, 9))
    if crossed is None:
        return None
    bound = limit.low if crossed == "low" else limit.high
    return CriticalMark(crossed, bound, limit.unit, limit.source.title, limit.source.url)


def critical_from_interpretation(flag: RangeFlag | None) -> CriticalMark:
    direction: Literal["low", "high", "abnormal"] = "abnormal"
    if flag == "low" or flag == "high":
        direction = flag
    return CriticalMark(direction, None, "", "interpretation code HH, LL or AA")
