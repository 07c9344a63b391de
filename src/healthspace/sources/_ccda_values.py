"""C-CDA observation values, null flavors, reference ranges, interpretations, reasons."""

from __future__ import annotations

import re
from typing import Final

from healthspace.model import (
    BooleanValue,
    Code,
    CodedValue,
    DateTimeValue,
    ObservationValue,
    Quantity,
    QuantityValue,
    RangeValue,
    RatioValue,
    ReferenceRange,
    StringValue,
)
from healthspace.sources._ccda_xml import (
    DocReader,
    Element,
    attr,
    child,
    children,
    ucum_unit,
    xsi_type,
)

__all__ = [
    "PROBLEM_OBSERVATION",
    "absent_reason",
    "interpretations",
    "reasons",
    "reference_ranges",
    "value",
]

_T = "2.16.840.1.113883.10.20.22.4."
PROBLEM_OBSERVATION: Final = _T + "4"
_INDICATION: Final = _T + "19"
_ENCOUNTER_DIAGNOSIS: Final = _T + "80"
_INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# HL7 nullFlavor -> FHIR data-absent-reason.
_NULL_FLAVORS: Final = {
    "UNK": "unknown",
    "ASKU": "asked-unknown",
    "NAV": "temp-unknown",
    "NASK": "not-asked",
    "MSK": "masked",
    "NA": "not-applicable",
    "NAVU": "unknown",
    "NI": "unknown",
    "OTH": "unsupported",
    "NINF": "negative-infinity",
    "PINF": "positive-infinity",
}

_RANGE_TEXT = re.compile(
    r"^\s*(?P<low>-?[0-9]+(?:\.[0-9]+)?)\s*(?:-|–|to)\s*(?P<high>-?[0-9]+(?:\.[0-9]+)?)"
    r"\s*(?P<unit>[^\s0-9][^\s]*)?\s*$"
)
_BOUND_TEXT = re.compile(
    r"^\s*(?P<op><=|>=|<|>|≤|≥)\s*(?P<num>-?[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[^\s0-9][^\s]*)?\s*$"
)


def value(doc: DocReader, el: Element | None, place: str) -> ObservationValue | None:
    """An observation's ``<value>`` by its xsi:type; None when null or empty."""
    if el is None:
        return None
    kind = xsi_type(el)
    if kind in ("PQ", "REAL", "INT", "MO") or (kind is None and el.get("value")):
        quantity = doc.quantity(el, place)
        if quantity is None:
            return None
        if kind == "MO":  # money: the currency is the unit
            quantity = Quantity(value=quantity.value, unit=attr(el, "currency") or "")
        return QuantityValue(quantity=quantity)
    if kind in ("IVL_PQ", "IVL_INT", "IVL_REAL"):
        low = doc.quantity(child(el, "low"), place)
        high = doc.quantity(child(el, "high"), place)
        return None if low is None and high is None else RangeValue(low=low, high=high)
    if kind in ("CD", "CE", "CV", "CO", "CS") or (kind is None and el.get("code")):
        coded = doc.code(el)
        if coded is not None:
            return CodedValue(code=coded)
        words = doc.code_text(el)
        return None if words is None else StringValue(text=words)
    if kind == "BL":
        flag = attr(el, "value")
        return None if flag not in ("true", "false") else BooleanValue(value=flag == "true")
    if kind in ("TS", "IVL_TS"):
        moment = doc.interval(el, place)[0]
        return None if moment is None else DateTimeValue(moment=moment)
    if kind is not None and kind.startswith("RTO"):
        numerator = doc.quantity(child(el, "numerator"), place)
        denominator = doc.quantity(child(el, "denominator"), place)
        if numerator is None or denominator is None:
            return None
        return RatioValue(numerator=numerator, denominator=denominator)
    words = doc.text(el)
    return None if words is None else StringValue(text=words)


def absent_reason(el: Element | None) -> str | None:
    flavor = attr(el, "nullFlavor")
    return None if flavor is None else _NULL_FLAVORS.get(flavor, "unknown")


def reference_ranges(doc: DocReader, el: Element, place: str) -> tuple[ReferenceRange, ...]:
    ranges: list[ReferenceRange] = []
    for ref in children(el, "referenceRange"):
        obs_range = child(ref, "observationRange")
        if obs_range is None:
            continue
        low = high = None
        value_el = child(obs_range, "value")
        words = doc.text(child(obs_range, "text"))
        if value_el is not None and xsi_type(value_el) in ("IVL_PQ", "IVL_INT", "IVL_REAL"):
            low = doc.quantity(child(value_el, "low"), place)
            high = doc.quantity(child(value_el, "high"), place)
        elif value_el is not None:
            words = words or doc.text(value_el)
        if low is None and high is None and words:
            low, high = _bounds_from_text(words)
        interp = attr(child(obs_range, "interpretationCode"), "code")
        if low is None and high is None and words is None:
            continue
        ranges.append(
            ReferenceRange(low=low, high=high, text=words, type="normal" if interp == "N" else None)
        )
    return tuple(ranges)


def interpretations(doc: DocReader, el: Element) -> tuple[Code, ...]:
    out: list[Code] = []
    for code_el in children(el, "interpretationCode"):
        out.extend(doc.codes(code_el, default_system=_INTERPRETATION))
    return tuple(out)


def _bounds_from_text(text: str) -> tuple[Quantity | None, Quantity | None]:
    """Low/high from range text such as "136-145 mmol/L" or "<200 mg/dL"."""
    if match := _RANGE_TEXT.match(text):
        unit = ucum_unit(match.group("unit"))
        return (
            Quantity(value=float(match.group("low")), unit=unit),
            Quantity(value=float(match.group("high")), unit=unit),
        )
    if match := _BOUND_TEXT.match(text):
        unit = ucum_unit(match.group("unit"))
        bound = Quantity(value=float(match.group("num")), unit=unit)
        return (None, bound) if match.group("op") in ("<", "<=", "≤") else (bound, None)
    return None, None


def reasons(doc: DocReader, el: Element) -> tuple[tuple[str, ...], tuple[Code, ...]]:
    """Words and codes of an entry's indications and encounter diagnoses."""
    values = [child(o, "value") for o in doc.related(el, "observation", _INDICATION)]
    for act in doc.related(el, "act", _ENCOUNTER_DIAGNOSIS):
        values += [child(o, "value") for o in doc.related(act, "observation", PROBLEM_OBSERVATION)]
    words: list[str] = []
    codes: list[Code] = []
    for found in values:
        text = doc.code_text(found)
        if text and text not in words:
            words.append(text)
        codes += [c for c in doc.codes(found) if c not in codes]
    return tuple(words), tuple(codes)
