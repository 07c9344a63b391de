"""C-CDA entries about the person's conditions: problems, diagnoses and allergies.

Concern acts wrap the statements that matter (problem and allergy observations); each
statement becomes one record, the concern supplying status when the statement has none.
"""

from __future__ import annotations

from typing import Final, Literal

from healthspace.model import Allergy, Attached, Condition, PartialDateTime, Reaction
from healthspace.sources._ccda_values import PROBLEM_OBSERVATION
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
)
from healthspace.sources.base import Item

__all__ = ["allergies", "diagnoses", "problems"]

_T = "2.16.840.1.113883.10.20.22.4."
_PROBLEM_STATUS: Final = (_T + "6", "2.16.840.1.113883.10.20.1.50")
_ALLERGY_OBSERVATION: Final = _T + "7"
_SEVERITY: Final = _T + "8"
_REACTION: Final = _T + "9"
_ALLERGY_STATUS: Final = (_T + "28", "2.16.840.1.113883.10.20.1.39")
_CRITICALITY_OBSERVATION: Final = _T + "145"
_CLINICAL_STATUS: Final = {
    "55561003": "active",
    "73425007": "inactive",
    "413322009": "resolved",
    "246455001": "recurrence",
    "277022003": "remission",
    "723506003": "resolved",
}
_CONCERN_STATUS: Final = {
    "active": "active",
    "suspended": "inactive",
    "aborted": "inactive",
    "completed": "resolved",
}
_AllergyType = Literal["allergy", "intolerance"]
_ALLERGY_TYPES: Final[dict[str, tuple[_AllergyType | None, str | None]]] = {
    "419199007": ("allergy", None),
    "416098002": ("allergy", "medication"),
    "414285001": ("allergy", "food"),
    "426232007": ("allergy", "environment"),
    "232347008": ("allergy", "environment"),
    "59037007": ("intolerance", "medication"),
    "235719002": ("intolerance", "food"),
    "418471000": (None, "food"),
    "419511003": (None, "medication"),
    "418038007": (None, None),
    "420134006": (None, None),
}
_NO_KNOWN_ALLERGY: Final = frozenset(
    {"716186003", "409137002", "429625007", "428607008", "428197003"}
)
_Severity = Literal["mild", "moderate", "severe"]
_SEVERITY_CODES: Final[dict[str, _Severity]] = {
    "255604002": "mild",
    "6736007": "moderate",
    "24484000": "severe",
    "371923003": "moderate",  # mild to moderate
    "371924009": "severe",  # moderate to severe
    "399166001": "severe",  # fatal
}
_CRITICALITY: Final[dict[str, Literal["low", "high", "unable-to-assess"]]] = {
    "CRITL": "low",
    "CRITH": "high",
    "CRITU": "unable-to-assess",
}


def _author_time(doc: DocReader, el: Element, place: str) -> PartialDateTime | None:
    return doc.time(child(el, "author", "time"), place)


def _related_value_code(doc: DocReader, el: Element, *templates: str) -> str | None:
    for found in doc.related(el, "observation", *templates):
        code = attr(child(found, "value"), "code")
        if code is not None:
            return code
    return None


def _severity(doc: DocReader, el: Element) -> tuple[_Severity | None, str | None]:
    """(the severity on FHIR's scale, the source's words) from a Severity observation."""
    for found in doc.related(el, "observation", _SEVERITY):
        value_el = child(found, "value")
        code = attr(value_el, "code")
        words = doc.code_text(value_el)
        scaled = _SEVERITY_CODES.get(code or "")
        if scaled is None and words:
            lowered = words.lower()
            scaled = next((s for s in ("severe", "moderate", "mild") if s in lowered), None)
        return scaled, words
    return None, None


def _statements(doc: DocReader, body: Element, template: str) -> list[Element]:
    """The observations a concern act is about (by template; else every SUBJ one)."""
    if local(body) == "observation":
        return [body]
    if local(body) != "act":
        return []
    found = list(doc.related(body, "observation", template))
    if found:
        return found
    return [
        obs
        for rel in body.findall(q("entryRelationship"))
        if rel.get("typeCode") == "SUBJ"
        for obs in rel.findall(q("observation"))
    ]


def problems(doc: DocReader, entry: Element, place: str) -> list[Item]:
    return _conditions(doc, entry, place, "problem-list-item")


def diagnoses(doc: DocReader, entry: Element, place: str) -> list[Item]:
    """Admission and discharge diagnosis sections: the same problems, from a stay."""
    return _conditions(doc, entry, place, "encounter-diagnosis")


def _conditions(doc: DocReader, entry: Element, place: str, category: str) -> list[Item]:
    body = entry_body(entry)
    if body is None:
        return []
    concern = body if local(body) == "act" else None
    found = _statements(doc, body, PROBLEM_OBSERVATION)
    items: list[Item] = []
    for number, obs in enumerate(found, 1):
        where = place if len(found) == 1 else f"{place}, problem {number}"
        value_el = child(obs, "value")
        codes = doc.codes(value_el)
        onset, abatement = doc.interval(child(obs, "effectiveTime"), where)
        status = _CLINICAL_STATUS.get(_related_value_code(doc, obs, *_PROBLEM_STATUS) or "")
        if status is None:
            concern_status = (
                _CONCERN_STATUS.get(status_code(concern) or "") if concern is not None else None
            )
            status = "resolved" if abatement is not None else concern_status
        severity_scale, severity_words = _severity(doc, obs)
        record = Condition(
            source_id=doc.source_id("condition", obs, where),
            provenance=doc.provenance(where),
            note=doc.notes(obs) or (doc.notes(concern) if concern is not None else None),
            code=codes[0] if codes else None,
            codes=codes,
            text=doc.text(child(value_el, "originalText")) or doc.text(child(obs, "text")),
            category=category,
            clinical_status=status,
            verification_status="refuted" if obs.get("negationInd") == "true" else None,
            severity=severity_words or severity_scale,
            body_site=doc.code_text(child(obs, "targetSiteCode")),
            onset=onset,
            abatement=abatement,
            recorded=_author_time(doc, obs, where)
            or (_author_time(doc, concern, where) if concern is not None else None),
            asserter=doc.person(child(obs, "author")),
        )
        items.append(Attached(record, original=original(entry)))
    return items


def allergies(doc: DocReader, entry: Element, place: str) -> list[Item]:
    body = entry_body(entry)
    if body is None:
        return []
    concern = body if local(body) == "act" else None
    found = _statements(doc, body, _ALLERGY_OBSERVATION)
    items: list[Item] = []
    for number, obs in enumerate(found, 1):
        where = place if len(found) == 1 else f"{place}, allergy {number}"
        record = _allergy(doc, obs, concern, where)
        items.append(Attached(record, original=original(entry)))
    return items


def _allergy(doc: DocReader, obs: Element, concern: Element | None, place: str) -> Allergy:
    value_el = child(obs, "value")
    type_code = attr(value_el, "code") or ""
    allergy_type, category = _ALLERGY_TYPES.get(type_code, (None, None))
    substance = child(obs, "participant", "participantRole", "playingEntity")
    substance_code = child(substance, "code")
    codes = doc.codes(substance_code)
    text = doc.code_text(substance_code) or doc.name(child(substance, "name"))
    negated = obs.get("negationInd") == "true"
    # "No known allergies" is a negated allergy with no substance, or an NKA code.
    no_known = type_code in _NO_KNOWN_ALLERGY or (negated and not codes)
    if no_known:
        text = text or doc.code_text(value_el)
    status = _CLINICAL_STATUS.get(_related_value_code(doc, obs, *_ALLERGY_STATUS) or "")
    if status is None and concern is not None:
        status = _CONCERN_STATUS.get(status_code(concern) or "")
    severity, severity_words = _severity(doc, obs)
    if severity is None and concern is not None:
        severity, severity_words = _severity(doc, concern)
    reactions = tuple(
        _reaction(doc, r, place, severity) for r in doc.related(obs, "observation", _REACTION)
    )
    onset, _ = doc.interval(child(obs, "effectiveTime"), place)
    return Allergy(
        source_id=doc.source_id("allergy", obs, place),
        provenance=doc.provenance(place),
        note="; ".join(
            part
            for part in (
                doc.notes(obs),
                f"severity: {severity_words}" if severity_words and not reactions else None,
            )
            if part
        )
        or None,
        code=None if no_known else (codes[0] if codes else None),
        codes=codes,
        text=text,
        no_known_allergy=no_known,
        allergy_type=allergy_type,
        category=category,
        criticality=_CRITICALITY.get(_related_value_code(doc, obs, _CRITICALITY_OBSERVATION) or ""),
        clinical_status=status,
        verification_status="refuted" if negated and not no_known else None,
        reactions=reactions,
        onset=onset,
        recorded=_author_time(doc, obs, place),
    )


def _reaction(doc: DocReader, el: Element, place: str, default: _Severity | None) -> Reaction:
    value_el = child(el, "value")
    severity, _ = _severity(doc, el)
    return Reaction(
        manifestation=doc.code_text(value_el) or doc.text(child(el, "text")),
        manifestation_codes=doc.codes(value_el),
        severity=severity or default,
        onset=doc.interval(child(el, "effectiveTime"), place)[0],
    )
