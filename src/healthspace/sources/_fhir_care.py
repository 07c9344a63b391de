"""MedicationRequest / MedicationStatement, Encounter and CarePlan -> model records.

The medication is ``medicationCodeableConcept``, or the Medication that
``medicationReference`` points to (contained ``#id`` or elsewhere in the file). The
first dosage instruction gives the dose, route and schedule (Timing.repeat frequency /
period / periodUnit / timeOfDay / boundsPeriod, asNeeded, and the sig text).
"""

from __future__ import annotations

from typing import Final, get_args

from healthspace.model import (
    CPT,
    RXNORM,
    SNOMED,
    CarePlan,
    CarePlanActivity,
    Code,
    Encounter,
    Medication,
    PartialDateTime,
    PeriodUnit,
    Quantity,
    Schedule,
)
from healthspace.sources._fhir_env import Res
from healthspace.sources._fhir_types import (
    JSON,
    as_list,
    codings,
    concept,
    concept_label,
    dicts,
    notes,
    number,
    obj,
    period,
    pick,
    quantity,
    string,
)
from healthspace.sources.base import Item

__all__ = ["map_care_plan", "map_encounter", "map_medication"]

_PERIOD_UNITS: Final = frozenset(get_args(PeriodUnit))


def _medication_code(r: Res) -> tuple[Code | None, tuple[Code, ...], str | None]:
    if "medicationCodeableConcept" in r.json:
        return concept(r.get("medicationCodeableConcept"), (RXNORM,))
    ref = r.get("medicationReference")
    target = r.resolve(ref, "medicationReference")
    if target is not None and target.resource.get("resourceType") == "Medication":
        code, codes, text = concept(target.resource.get("code"), (RXNORM,))
        return code, codes, text or (string(ref.get("display")) if isinstance(ref, dict) else None)
    return None, (), string(ref.get("display")) if isinstance(ref, dict) else None


def _schedule(
    dosage: JSON, field: str
) -> tuple[Schedule | None, PartialDateTime | None, PartialDateTime | None]:
    """(schedule, bounds start, bounds end) of one Dosage."""
    timing = obj(dosage.get("timing"))
    repeat = obj(timing.get("repeat"))
    frequency = repeat.get("frequency")
    period_length = number(repeat.get("period"), f"{field}.timing.repeat.period")
    unit = repeat.get("periodUnit")
    start, end = period(repeat.get("boundsPeriod"), f"{field}.timing.repeat.boundsPeriod")
    as_needed = dosage.get("asNeededBoolean") is True or "asNeededCodeableConcept" in dosage
    schedule = Schedule(
        frequency=frequency if isinstance(frequency, int) and frequency >= 1 else None,
        period=period_length if period_length is not None and period_length > 0 else None,
        period_unit=unit if unit in _PERIOD_UNITS else None,
        times_of_day=tuple(t for t in as_list(repeat.get("timeOfDay")) if isinstance(t, str)),
        as_needed=as_needed,
        as_needed_reason=concept_label(dosage.get("asNeededCodeableConcept")),
        text=string(dosage.get("text")) or concept_label(timing.get("code")),
    )
    return (None if schedule == Schedule() else schedule), start, end


def _dose(dosage: JSON, field: str) -> Quantity | None:
    for n, rate in enumerate(dicts(dosage.get("doseAndRate"))):
        dose = quantity(rate.get("doseQuantity"), f"{field}.doseAndRate[{n}].doseQuantity")
        if dose is not None:
            return dose
    return None


def _reasons(r: Res) -> tuple[str | None, tuple[Code, ...]]:
    labels = [lbl for rc in dicts(r.get("reasonCode")) if (lbl := concept_label(rc))]
    labels += r.names(r.get("reasonReference"))
    codes = tuple(c for rc in dicts(r.get("reasonCode")) for c in codings(rc))
    return "; ".join(dict.fromkeys(labels)) or None, codes


def map_medication(r: Res) -> list[Item]:
    """MedicationRequest (``request``) and MedicationStatement (``statement``)."""
    r.resolve(r.get("subject"), "subject")
    is_request = r.get("resourceType") == "MedicationRequest"
    code, codes, text = _medication_code(r)
    key = "dosageInstruction" if is_request else "dosage"
    dosages = dicts(r.get(key))
    schedule, start, end = _schedule(dosages[0], f"{key}[0]") if dosages else (None, None, None)
    dose = _dose(dosages[0], f"{key}[0]") if dosages else None
    route = concept_label(dosages[0].get("route")) if dosages else None
    reason, reason_codes = _reasons(r)
    dispense = obj(r.get("dispenseRequest"))
    if is_request:
        valid_start, valid_end = period(
            dispense.get("validityPeriod"), "dispenseRequest.validityPeriod"
        )
        start = start or valid_start
        end = end or valid_end
    else:
        moment = r.when("effectiveDateTime")
        eff_start, eff_end = period(r.get("effectivePeriod"), "effectivePeriod")
        start, end = moment or eff_start or start, eff_end or end
    refills = dispense.get("numberOfRepeatsAllowed")
    record = Medication(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        note=notes(r.get("note")),
        medication_kind="request" if is_request else "statement",
        code=code,
        codes=codes,
        text=text,
        dose=dose,
        route=route,
        schedule=schedule,
        start=start,
        end=end,
        authored=r.when("authoredOn") if is_request else r.when("dateAsserted"),
        prescriber=r.name(r.get("requester")) if is_request else None,
        reason=reason,
        reason_codes=reason_codes,
        dispense_quantity=quantity(dispense.get("quantity"), "dispenseRequest.quantity"),
        refills=refills if isinstance(refills, int) and refills >= 0 else None,
    )
    return [r.attach(record)]


def map_encounter(r: Res) -> list[Item]:
    r.resolve(r.get("subject"), "subject")
    types = dicts(r.get("type"))
    all_codes = tuple(c for t in types for c in codings(t))
    klass = codings(r.get("class"))
    start, end = period(r.get("period"), "period")
    reasons = [lbl for rc in dicts(r.get("reasonCode")) if (lbl := concept_label(rc))]
    reasons += r.names(r.get("reasonReference"))
    locations = [loc.get("location") for loc in dicts(r.get("location"))]
    hospitalization = r.get("hospitalization")
    record = Encounter(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        encounter_class=klass[0].code if klass else None,
        encounter_type=pick(all_codes, (SNOMED, CPT)),
        encounter_types=all_codes,
        text=concept_label(types[0]) if types else None,
        start=start,
        end=end,
        reasons=tuple(dict.fromkeys(reasons)),
        reason_codes=tuple(c for rc in dicts(r.get("reasonCode")) for c in codings(rc)),
        diagnosis_ids=r.ref_ids(
            [d.get("condition") for d in dicts(r.get("diagnosis"))], "diagnosis.condition"
        ),
        participants=r.names([p.get("individual") for p in dicts(r.get("participant"))]),
        location=next(iter(r.names(locations)), None),
        service_provider=r.name(r.get("serviceProvider")),
        discharge_disposition=concept_label(hospitalization.get("dischargeDisposition"))
        if isinstance(hospitalization, dict)
        else None,
    )
    return [r.attach(record)]


def _activity(r: Res, activity: JSON, n: int) -> CarePlanActivity | None:
    detail = activity.get("detail")
    if not isinstance(detail, dict):
        name = r.name(activity.get("reference"))
        return CarePlanActivity(text=name) if name else None
    code, _, _ = concept(detail.get("code"), (SNOMED,))
    scheduled, _ = period(detail.get("scheduledPeriod"), f"activity[{n}].detail.scheduledPeriod")
    return CarePlanActivity(
        text=string(detail.get("description")) or concept_label(detail.get("code")),
        code=code,
        status=string(detail.get("status")),
        scheduled=scheduled,
    )


def map_care_plan(r: Res) -> list[Item]:
    r.resolve(r.get("subject"), "subject")
    categories = dicts(r.get("category"))
    category = None
    if categories:
        category, _, label = concept(categories[0], (SNOMED,))
        if category is None and label is not None:
            category = Code(system="", code=label, display=label)
    start, end = period(r.get("period"), "period")
    activities = [_activity(r, a, n) for n, a in enumerate(dicts(r.get("activity")))]
    authors = r.names([r.get("author"), *dicts(r.get("contributor"))])
    record = CarePlan(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        note=notes(r.get("note")),
        title=string(r.get("title")),
        description=string(r.get("description")),
        category=category,
        activities=tuple(a for a in activities if a is not None),
        start=start,
        end=end,
        addresses_ids=r.ref_ids(r.get("addresses"), "addresses"),
        author=authors[0] if authors else None,
    )
    return [r.attach(record)]
