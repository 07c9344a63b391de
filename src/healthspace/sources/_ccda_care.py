"""C-CDA encounters, procedures, payers (coverage) and the plan of care."""

from __future__ import annotations

from typing import Final

from healthspace.model import (
    Attached,
    CarePlan,
    CarePlanActivity,
    Coverage,
    Encounter,
    Procedure,
)
from healthspace.model.coding import OID_SYSTEMS
from healthspace.sources._ccda_values import reasons
from healthspace.sources._ccda_xml import (
    SDTC,
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

__all__ = ["encounters", "payers", "plan_of_care", "procedures"]

_T = "2.16.840.1.113883.10.20.22.4."
_POLICY: Final = _T + "61"
_PAYER_PERFORMER: Final = _T + "87"
_ACT_CODE: Final = OID_SYSTEMS["2.16.840.1.113883.5.4"]
_PROCEDURE_STATUS: Final = {
    "completed": "completed",
    "active": "in-progress",
    "aborted": "stopped",
    "cancelled": "not-done",
    "new": "preparation",
    "held": "on-hold",
    "suspended": "on-hold",
    "nullified": "entered-in-error",
}
_ACTIVITY_STATUS: Final = {
    "new": "not-started",
    "active": "scheduled",
    "ordered": "scheduled",
    "held": "on-hold",
    "suspended": "on-hold",
    "completed": "completed",
    "cancelled": "cancelled",
    "aborted": "stopped",
}
_PLAN_STATUS: Final = {
    "new": "draft",
    "active": "active",
    "ordered": "active",
    "held": "on-hold",
    "suspended": "on-hold",
    "completed": "completed",
    "cancelled": "revoked",
    "aborted": "revoked",
}
# HL7 RoleCode (subscriber relationship) -> FHIR subscriber-relationship.
_RELATIONSHIP: Final = {
    "SELF": "self",
    "SPS": "spouse",
    "CHILD": "child",
    "DEPEN": "child",
    "FAMDEP": "child",
    "HUSB": "spouse",
    "WIFE": "spouse",
    "DOMPART": "common",
    "SUBSCR": "self",
}


def _location(doc: DocReader, el: Element) -> str | None:
    for part in el.findall(q("participant")):
        if part.get("typeCode") == "LOC":
            role = child(part, "participantRole")
            return doc.name(child(role, "playingEntity", "name")) or doc.code_text(
                child(role, "code")
            )
    return None


def encounters(doc: DocReader, entry: Element, place: str) -> list[Item]:
    el = entry_body(entry)
    if el is None or local(el) != "encounter":
        return []
    code_el = child(el, "code")
    codes = doc.codes(code_el)
    types = tuple(c for c in codes if c.system != _ACT_CODE)
    start, end = doc.interval(child(el, "effectiveTime"), place)
    words, reason_codes = reasons(doc, el)
    performers = el.findall(q("performer"))
    people = [p for p in (doc.person(x) for x in performers) if p]
    disposition = el.find(q("dischargeDispositionCode", SDTC))
    record = Encounter(
        source_id=doc.source_id("encounter", el, place),
        provenance=doc.provenance(place),
        status=_PROCEDURE_STATUS.get(status_code(el) or ""),
        note=doc.notes(el),
        encounter_class=next((c.code for c in codes if c.system == _ACT_CODE), None),
        encounter_type=types[0] if types else None,
        encounter_types=types,
        text=doc.text(child(code_el, "originalText")),
        start=start,
        end=end,
        reasons=words,
        reason_codes=reason_codes,
        participants=tuple(dict.fromkeys(people)),
        location=_location(doc, el),
        service_provider=next((o for o in (doc.organization(x) for x in performers) if o), None),
        discharge_disposition=doc.code_text(disposition),
    )
    return [Attached(record, original=original(entry))]


def procedures(doc: DocReader, entry: Element, place: str) -> list[Item]:
    el = entry_body(entry)
    if el is None or local(el) not in ("procedure", "observation", "act"):
        return []
    code_el = child(el, "code")
    codes = doc.codes(code_el)
    start, end = doc.interval(child(el, "effectiveTime"), place)
    words, reason_codes = reasons(doc, el)
    text = doc.text(child(code_el, "originalText"))
    record = Procedure(
        source_id=doc.source_id("procedure", el, place),
        provenance=doc.provenance(place),
        status="not-done"
        if el.get("negationInd") == "true"
        else _PROCEDURE_STATUS.get(status_code(el) or ""),
        note=doc.notes(el),
        code=codes[0] if codes else None,
        codes=codes,
        text=text if codes else text or doc.text(child(el, "text")),
        performed=start,
        performed_end=end if end != start else None,
        body_site=doc.code_text(child(el, "targetSiteCode")),
        reasons=words,
        reason_codes=reason_codes,
        performer=doc.person(child(el, "performer")),
        location=_location(doc, el),
    )
    return [Attached(record, original=original(entry))]


def payers(doc: DocReader, entry: Element, place: str) -> list[Item]:
    """Each policy activity of a coverage activity becomes one Coverage."""
    body = entry_body(entry)
    if body is None:
        return []
    policies = list(doc.related(body, "act", _POLICY))
    if not policies and has_template(body, _POLICY):
        policies = [body]
    items: list[Item] = []
    for number, policy in enumerate(policies, 1):
        where = place if len(policies) == 1 else f"{place}, policy {number}"
        items.append(Attached(_coverage(doc, policy, where), original=original(entry)))
    return items


def _coverage(doc: DocReader, policy: Element, place: str) -> Coverage:
    payer = None
    for performer in policy.findall(q("performer")):
        role = attr(child(performer, "assignedEntity", "code"), "code")
        if has_template(performer, _PAYER_PERFORMER) or role == "PAYOR":
            payer = doc.organization(performer)
            break
    parts = {p.get("typeCode"): p for p in policy.findall(q("participant"))}
    covered, holder = parts.get("COV"), parts.get("HLD")
    role = child(covered, "participantRole")
    relation = child(role, "code")
    start, end = doc.interval(child(covered, "time"), place)
    group = next(
        (attr(i, "extension") for i in policy.findall(q("id")) if attr(i, "extension")), None
    )
    return Coverage(
        source_id=doc.source_id("coverage", policy, place),
        provenance=doc.provenance(place),
        status=status_code(policy),
        note=doc.notes(policy),
        payer=payer,
        plan_name=doc.text(child(policy, "text")),
        coverage_type=doc.code_text(child(policy, "code")),
        member_id=attr(child(role, "id"), "extension"),
        group_id=group,
        subscriber=doc.name(child(holder, "participantRole", "playingEntity", "name")),
        relationship=_RELATIONSHIP.get(attr(relation, "code") or "")
        or (doc.code_text(relation) or "").lower()
        or None,
        start=start,
        end=end,
    )


def _planned_code(el: Element) -> Element | None:
    """What is planned: a medication's or supply's product code, else the act's own code."""
    for path in (
        ("consumable", "manufacturedProduct", "manufacturedMaterial", "code"),
        ("product", "manufacturedProduct", "manufacturedMaterial", "code"),
    ):
        found = child(el, *path)
        if found is not None:
            return found
    return child(el, "code")


def plan_of_care(doc: DocReader, entry: Element, place: str) -> list[Item]:
    """Each planned item (act, encounter, observation, procedure, medication, goal...)."""
    el = entry_body(entry)
    if el is None:
        return []
    code_el = _planned_code(el)
    codes = doc.codes(code_el)
    words = doc.text(child(el, "text"))
    title = doc.code_text(code_el) or words
    start, end = doc.interval(child(el, "effectiveTime"), place)
    status = status_code(el) or ""
    record = CarePlan(
        source_id=doc.source_id("care_plan", el, place),
        provenance=doc.provenance(place),
        status=_PLAN_STATUS.get(status),
        note=doc.notes(el),
        title=title,
        description=words if words != title else None,
        activities=(
            CarePlanActivity(
                text=words or title,
                code=codes[0] if codes else None,
                status=_ACTIVITY_STATUS.get(status),
                scheduled=start,
            ),
        ),
        start=start,
        end=end,
        author=doc.person(child(el, "author")),
    )
    return [Attached(record, original=original(entry))]
