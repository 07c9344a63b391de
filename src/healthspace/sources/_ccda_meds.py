"""C-CDA medication and immunization activities (substanceAdministration entries)."""

from __future__ import annotations

from typing import Final

from healthspace.model import (
    CVX,
    RXNORM,
    Attached,
    Code,
    Immunization,
    Medication,
    PeriodUnit,
    Quantity,
    Schedule,
)
from healthspace.sources._ccda_values import reasons
from healthspace.sources._ccda_xml import (
    DocReader,
    Element,
    attr,
    child,
    entry_body,
    local,
    original,
    q,
    status_code,
    xsi_type,
)
from healthspace.sources.base import Item

__all__ = ["immunizations", "medications"]

_T = "2.16.840.1.113883.10.20.22.4."
_SUPPLY_ORDER: Final = _T + "17"
_REFUSAL: Final = _T + "53"
_PLANNED_MOODS: Final = frozenset({"INT", "RQO", "PRMS", "PRP", "APT", "ARQ", "GOL"})
_PERIOD_UNITS: Final[dict[str, PeriodUnit]] = {
    "s": "s",
    "min": "min",
    "h": "h",
    "hr": "h",
    "d": "d",
    "wk": "wk",
    "mo": "mo",
    "a": "a",
}
_MEDICATION_STATUS: Final = {
    "active": "active",
    "completed": "completed",
    "aborted": "stopped",
    "suspended": "on-hold",
    "held": "on-hold",
    "cancelled": "cancelled",
    "nullified": "entered-in-error",
    "new": "intended",
}


def _prefer(codes: tuple[Code, ...], system: str) -> Code | None:
    return next((c for c in codes if c.system == system), codes[0] if codes else None)


def _dose(doc: DocReader, el: Element, place: str) -> Quantity | None:
    dose_el = child(el, "doseQuantity")
    dose = doc.quantity(dose_el, place) or doc.quantity(child(dose_el, "low"), place)
    if dose is not None and not dose.unit:
        # "2" with administrationUnitCode PUFF: the unit as a UCUM annotation, {Puff}.
        form = child(el, "administrationUnitCode")
        words = attr(form, "displayName") or attr(form, "code")
        if words and "{" not in words and "}" not in words:
            return Quantity(value=dose.value, unit=f"{{{words}}}")
    return dose


def _schedule(doc: DocReader, el: Element, place: str) -> Schedule | None:
    sig = doc.text(child(el, "text"))
    criterion = child(el, "precondition", "criterion")
    as_needed = child(el, "precondition") is not None
    frequency: int | None = None
    period: float | None = None
    unit: PeriodUnit | None = None
    times: list[str] = []
    for timing in el.findall(q("effectiveTime")):
        if xsi_type(timing) != "PIVL_TS":
            continue
        every = doc.quantity(child(timing, "period"), place)
        if every is not None and every.value > 0 and every.unit in _PERIOD_UNITS:
            frequency, period, unit = 1, every.value, _PERIOD_UNITS[every.unit]
        phase = doc.interval(child(timing, "phase"), place)[0]
        if phase is not None and phase.precision.value in ("hour", "minute", "second"):
            times.append(phase.local_start().strftime("%H:%M"))
    if sig is None and period is None and not as_needed:
        return None
    return Schedule(
        frequency=frequency,
        period=period,
        period_unit=unit,
        times_of_day=tuple(times),
        as_needed=as_needed,
        as_needed_reason=doc.code_text(child(criterion, "value")),
        text=sig,
    )


def medications(doc: DocReader, entry: Element, place: str) -> list[Item]:
    """Medication activities, directly or wrapped (admission/discharge medication acts)."""
    body = entry_body(entry)
    if body is None:
        return []
    if local(body) == "substanceAdministration":
        found = [body]
    elif local(body) == "act":
        found = list(doc.related(body, "substanceAdministration"))
    else:
        found = []
    items: list[Item] = []
    for number, el in enumerate(found, 1):
        where = place if len(found) == 1 else f"{place}, medication {number}"
        items.append(Attached(_medication(doc, el, where), original=original(entry)))
    return items


def _medication(doc: DocReader, el: Element, place: str) -> Medication:
    request = (el.get("moodCode") or "EVN") in _PLANNED_MOODS
    material = child(el, "consumable", "manufacturedProduct", "manufacturedMaterial")
    code_el = child(material, "code")
    codes = doc.codes(code_el)
    span = next(
        (t for t in el.findall(q("effectiveTime")) if xsi_type(t) in (None, "IVL_TS", "TS")),
        None,
    )
    start, end = doc.interval(span, place)
    words, reason_codes = reasons(doc, el)
    supply = next(iter(doc.related(el, "supply", _SUPPLY_ORDER)), None)
    repeats = attr(child(supply, "repeatNumber"), "value")
    # A supply order's repeatNumber counts every fill, the first included.
    refills = max(int(repeats) - 1, 0) if repeats is not None and repeats.isdigit() else None
    negated = el.get("negationInd") == "true"
    return Medication(
        source_id=doc.source_id("medication", el, place),
        provenance=doc.provenance(place),
        status="not-taken" if negated else _MEDICATION_STATUS.get(status_code(el) or ""),
        note=doc.notes(el),
        medication_kind="request" if request else "statement",
        code=_prefer(codes, RXNORM),
        codes=codes,
        text=doc.code_text(code_el) or doc.name(child(material, "name")),
        dose=_dose(doc, el, place),
        route=doc.code_text(child(el, "routeCode")),
        schedule=_schedule(doc, el, place),
        start=start,
        end=end,
        authored=doc.time(child(el, "author", "time"), place) if request else None,
        prescriber=doc.person(child(el, "author")) or doc.person(child(el, "performer")),
        reason="; ".join(words) or None,
        reason_codes=reason_codes,
        dispense_quantity=doc.quantity(child(supply, "quantity"), place),
        refills=refills,
    )


def immunizations(doc: DocReader, entry: Element, place: str) -> list[Item]:
    el = entry_body(entry)
    if el is None or local(el) != "substanceAdministration":
        return []
    product = child(el, "consumable", "manufacturedProduct")
    material = child(product, "manufacturedMaterial")
    codes = doc.codes(child(material, "code"))
    planned = (el.get("moodCode") or "EVN") in _PLANNED_MOODS
    refusal = next(iter(doc.related(el, "observation", _REFUSAL)), None)
    if el.get("negationInd") == "true" or planned:
        status = "not-done"
    elif status_code(el) == "nullified":
        status = "entered-in-error"
    else:
        status = "completed"
    reason = doc.code_text(child(refusal, "code")) if refusal is not None else None
    record = Immunization(
        source_id=doc.source_id("immunization", el, place),
        provenance=doc.provenance(place),
        status=status,
        note=doc.notes(el),
        code=_prefer(codes, CVX),
        codes=codes,
        text=doc.code_text(child(material, "code")) or doc.text(child(el, "text")),
        occurrence=doc.interval(child(el, "effectiveTime"), place)[0],
        recorded=doc.time(child(el, "author", "time"), place),
        status_reason=reason or ("planned, not yet given" if planned else None),
        lot_number=doc.text(child(material, "lotNumberText")),
        manufacturer=doc.name(child(product, "manufacturerOrganization", "name")),
        site=doc.code_text(child(el, "approachSiteCode")),
        route=doc.code_text(child(el, "routeCode")),
        dose_quantity=doc.quantity(child(el, "doseQuantity"), place),
        dose_number=attr(child(el, "repeatNumber"), "value"),
        performer=doc.person(child(el, "performer")),
        location=doc.organization(child(el, "performer")),
    )
    return [Attached(record, original=original(entry))]
