"""C-CDA entries that are observations: results (with their organizer as a report),
vital signs and social history."""

from __future__ import annotations

from typing import Final

from healthspace.model import LOINC, Attached, Code, DiagnosticReport, Observation
from healthspace.sources import _ccda_values as values
from healthspace.sources._ccda_xml import (
    DATA_ABSENT,
    DocReader,
    Element,
    attr,
    child,
    entry_body,
    has_template,
    local,
    original,
    q,
    status_code,
)
from healthspace.sources.base import Item

__all__ = ["observation", "results", "social_history", "vital_signs"]

_T = "2.16.840.1.113883.10.20.22.4."
_OBSERVATION_STATUS: Final = {
    "completed": "final",
    "active": "preliminary",
    "aborted": "cancelled",
    "cancelled": "cancelled",
    "nullified": "entered-in-error",
    "held": "registered",
    "new": "registered",
}
# C-CDA R1.1 coded smoking status and pregnancy as "ASSERTION"; R2.1 uses these LOINC codes.
_IMPLIED_CODES: Final = {
    _T + "78": Code(system=LOINC, code="72166-2", display="Tobacco smoking status"),
    "2.16.840.1.113883.10.20.15.3.8": Code(
        system=LOINC, code="82810-3", display="Pregnancy status"
    ),
}


def observation(
    doc: DocReader,
    el: Element,
    place: str,
    *,
    category: str,
    fallback_time: Element | None = None,
) -> Observation:
    code_el = child(el, "code")
    codes = _implied_code(el) + doc.codes(code_el)
    text = doc.text(child(code_el, "originalText"))
    if not codes:
        text = text or doc.text(child(el, "text"))
    value_el = child(el, "value")
    value = values.value(doc, value_el, place)
    start, end = doc.interval(child(el, "effectiveTime"), place)
    if start is None and end is None and fallback_time is not None:
        start, end = doc.interval(fallback_time, place)
    return Observation(
        source_id=doc.source_id("observation", el, place),
        provenance=doc.provenance(place),
        status=_OBSERVATION_STATUS.get(status_code(el) or ""),
        note=doc.notes(el),
        code=codes[0] if codes else Code(system=DATA_ABSENT, code="unknown"),
        codes=codes,
        text=text,
        category=category,
        value=value,
        data_absent_reason=values.absent_reason(value_el) if value is None else None,
        reference_ranges=values.reference_ranges(doc, el, place),
        interpretation=values.interpretations(doc, el),
        effective=start,
        effective_end=end if end != start else None,
        performer=doc.person(child(el, "performer")) or doc.person(child(el, "author")),
        specimen=doc.code_text(
            child(el, "specimen", "specimenRole", "specimenPlayingEntity", "code")
        ),
        method=doc.code_text(child(el, "methodCode")),
        body_site=doc.code_text(child(el, "targetSiteCode")),
    )


def _implied_code(el: Element) -> tuple[Code, ...]:
    """The LOINC code C-CDA R1.1 left implicit: smoking status and pregnancy were "ASSERTION"."""
    if attr(child(el, "code"), "code") not in (None, "ASSERTION"):
        return ()
    for template, code in _IMPLIED_CODES.items():
        if has_template(el, template):
            return (code,)
    return ()


def _observations(
    doc: DocReader, entry: Element, place: str, category: str, *, report: bool
) -> list[Item]:
    body = entry_body(entry)
    if body is None:
        return []
    if local(body) == "observation":
        obs = observation(doc, body, place, category=category)
        return [Attached(obs, original=original(entry))]
    if local(body) != "organizer":
        return []
    items: list[Item] = []
    result_ids: list[str] = []
    when = child(body, "effectiveTime")
    components = body.findall(f"{q('component')}/{q('observation')}")
    for number, component in enumerate(components, 1):
        where = f"{place}, component {number}"
        obs = observation(doc, component, where, category=category, fallback_time=when)
        result_ids.append(obs.source_id)
        items.append(Attached(obs, original=original(component)))
    if report:
        code_el = child(body, "code")
        start, end = doc.interval(when, place)
        items.append(
            Attached(
                DiagnosticReport(
                    source_id=doc.source_id("report", body, place),
                    provenance=doc.provenance(place),
                    status=_OBSERVATION_STATUS.get(status_code(body) or ""),
                    code=(doc.codes(code_el) or (None,))[0],
                    codes=doc.codes(code_el),
                    text=doc.text(child(code_el, "originalText")),
                    category="LAB",
                    effective=start,
                    effective_end=end if end != start else None,
                    result_ids=tuple(result_ids),
                    performer=doc.person(child(body, "performer"))
                    or doc.person(child(body, "author")),
                ),
                original=original(entry),
            )
        )
    return items


def results(doc: DocReader, entry: Element, place: str) -> list[Item]:
    """A result organizer (a report and its observations) or a lone result observation."""
    return _observations(doc, entry, place, "laboratory", report=True)


def vital_signs(doc: DocReader, entry: Element, place: str) -> list[Item]:
    return _observations(doc, entry, place, "vital-signs", report=False)


def social_history(doc: DocReader, entry: Element, place: str) -> list[Item]:
    return _observations(doc, entry, place, "social-history", report=False)
