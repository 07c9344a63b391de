"""Observation and DiagnosticReport -> model records.

Observation values keep what the source recorded: value[x] of every R4 kind
(Quantity, CodeableConcept, String, Boolean, Integer, Range, Ratio, DateTime, Period,
Time), components (blood pressure systolic/diastolic), reference ranges with
low/high/text/type/appliesTo/age, and interpretation flags. ``valueSampledData`` has no
model counterpart: the observation is kept without a value and the element is counted
in ``unmapped``. DiagnosticReport.result becomes ``result_ids``: the source_ids of the
observations it groups (see the reference rule in ``_fhir_env``).
"""

from __future__ import annotations

from typing import Final

from healthspace.model import (
    LOINC,
    SNOMED,
    Attached,
    BooleanValue,
    Code,
    CodedValue,
    DateTimeValue,
    DiagnosticReport,
    Observation,
    ObservationComponent,
    ObservationValue,
    PartialDateTime,
    Quantity,
    QuantityValue,
    RangeValue,
    RatioValue,
    ReferenceRange,
    StringValue,
)
from healthspace.sources._fhir_docs import attachment_document
from healthspace.sources._fhir_env import Res
from healthspace.sources._fhir_types import (
    JSON,
    MappingError,
    Unusable,
    codings,
    concept,
    concept_label,
    dicts,
    first_code,
    notes,
    number,
    obj,
    period,
    pick,
    quantity,
    string,
    when,
)
from healthspace.sources.base import Item

__all__ = ["map_diagnostic_report", "map_observation"]

# Years per unit of an age given in a reference range (UCUM codes and common spellings).
_AGE_YEARS: Final[dict[str, float]] = {
    "a": 1.0,
    "yr": 1.0,
    "year": 1.0,
    "years": 1.0,
    "mo": 1 / 12,
    "month": 1 / 12,
    "months": 1 / 12,
    "wk": 7 / 365.25,
    "d": 1 / 365.25,
}


def _value(r: Res, holder: JSON, field: str) -> ObservationValue | None:
    """value[x] of an Observation or a component (``field`` prefixes error paths)."""
    if "valueQuantity" in holder or "valueInteger" in holder:
        if "valueInteger" in holder:
            amount = number(holder["valueInteger"], f"{field}valueInteger")
            return None if amount is None else QuantityValue(quantity=Quantity(value=amount))
        q = quantity(holder["valueQuantity"], f"{field}valueQuantity")
        return None if q is None else QuantityValue(quantity=q)
    if "valueCodeableConcept" in holder:
        cc = holder["valueCodeableConcept"]
        code = pick(codings(cc), (SNOMED, LOINC))
        if code is not None:
            return CodedValue(code=code)
        text = concept_label(cc)
        return None if text is None else StringValue(text=text)
    for key in ("valueString", "valueTime"):
        if key in holder:
            text = string(holder[key])
            return None if text is None else StringValue(text=text)
    if "valueBoolean" in holder:
        flag = holder["valueBoolean"]
        if not isinstance(flag, bool):
            raise MappingError(f"{field}valueBoolean", "not a boolean")
        return BooleanValue(value=flag)
    if "valueRange" in holder:
        rng = obj(holder["valueRange"])
        low = quantity(rng.get("low"), f"{field}valueRange.low")
        high = quantity(rng.get("high"), f"{field}valueRange.high")
        return None if low is None and high is None else RangeValue(low=low, high=high)
    if "valueRatio" in holder:
        ratio = obj(holder["valueRatio"])
        num = quantity(ratio.get("numerator"), f"{field}valueRatio.numerator")
        den = quantity(ratio.get("denominator"), f"{field}valueRatio.denominator")
        if num is None or den is None:
            return None
        return RatioValue(numerator=num, denominator=den)
    if "valueDateTime" in holder or "valuePeriod" in holder:
        moment = when(holder.get("valueDateTime"), f"{field}valueDateTime")
        if moment is None:
            moment, _ = period(holder.get("valuePeriod"), f"{field}valuePeriod")
        return None if moment is None else DateTimeValue(moment=moment)
    if "valueSampledData" in holder:
        r.env.ctx.unmapped["Observation.valueSampledData"] += 1
    return None


def _age_years(value: object, field: str) -> float | None:
    if not isinstance(value, dict):
        return None
    amount = number(value.get("value"), f"{field}.value")
    unit = string(value.get("code")) or string(value.get("unit")) or "a"
    factor = _AGE_YEARS.get(unit.lower())
    if amount is None or factor is None:
        return None
    return amount * factor


def _ranges(items: object, field: str) -> tuple[ReferenceRange, ...]:
    found = []
    for n, rr in enumerate(dicts(items)):
        where = f"{field}[{n}]"
        age = obj(rr.get("age"))
        kind = rr.get("type")
        codes = codings(kind)
        ref = ReferenceRange(
            low=quantity(rr.get("low"), f"{where}.low"),
            high=quantity(rr.get("high"), f"{where}.high"),
            text=string(rr.get("text")),
            type=codes[0].code if codes else concept_label(kind),
            applies_to=tuple(
                label for item in dicts(rr.get("appliesTo")) if (label := concept_label(item))
            ),
            age_low=_age_years(age.get("low"), f"{where}.age.low"),
            age_high=_age_years(age.get("high"), f"{where}.age.high"),
        )
        if ref != ReferenceRange():
            found.append(ref)
    return tuple(found)


def _interpretation(items: object) -> tuple[Code, ...]:
    found: list[Code] = []
    for item in dicts(items):
        codes = codings(item)
        if codes:
            found.extend(codes)
        elif text := string(item.get("text")):
            found.append(Code(system="", code=text, display=text))
    return tuple(found)


def _main_code(
    cc: object, prefer: tuple[str, ...]
) -> tuple[Code | None, tuple[Code, ...], str | None]:
    """A concept's code, falling back to its text as a system-less code."""
    code, codes, text = concept(cc, prefer)
    if code is None and text is not None:
        code = Code(system="", code=text, display=text)
    return code, codes, text


def _specimen(r: Res, ref: object) -> str | None:
    target = r.resolve(ref, "specimen", check=False)
    if target is not None and target.resource.get("resourceType") == "Specimen":
        return concept_label(target.resource.get("type")) or r.name(ref)
    return r.name(ref)


def _effective(r: Res) -> tuple[PartialDateTime | None, PartialDateTime | None]:
    moment = r.when("effectiveDateTime") or r.when("effectiveInstant")
    if moment is not None:
        return moment, None
    return period(r.get("effectivePeriod"), "effectivePeriod")


def map_observation(r: Res) -> list[Item]:
    r.resolve(r.get("subject"), "subject")
    code, codes, text = _main_code(r.get("code"), (LOINC,))
    if code is None:
        raise Unusable("no code")
    components = []
    for n, comp in enumerate(dicts(r.get("component"))):
        where = f"component[{n}]."
        ccode, ccodes, ctext = _main_code(comp.get("code"), (LOINC,))
        if ccode is None:
            continue
        components.append(
            ObservationComponent(
                code=ccode,
                codes=ccodes,
                text=ctext,
                value=_value(r, comp, where),
                data_absent_reason=concept_label(comp.get("dataAbsentReason")),
                interpretation=_interpretation(comp.get("interpretation")),
                reference_ranges=_ranges(comp.get("referenceRange"), f"{where}referenceRange"),
            )
        )
    start, end = _effective(r)
    performers = r.names(r.get("performer"))
    record = Observation(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        note=notes(r.get("note")),
        code=code,
        codes=codes,
        text=text,
        category=first_code(r.get("category")),
        value=_value(r, r.json, ""),
        data_absent_reason=concept_label(r.get("dataAbsentReason")),
        components=tuple(components),
        reference_ranges=_ranges(r.get("referenceRange"), "referenceRange"),
        interpretation=_interpretation(r.get("interpretation")),
        effective=start,
        effective_end=end,
        issued=r.when("issued"),
        performer=performers[0] if performers else None,
        specimen=_specimen(r, r.get("specimen")),
        method=concept_label(r.get("method")),
        body_site=concept_label(r.get("bodySite")),
        encounter_id=r.ref_id(r.get("encounter"), "encounter"),
    )
    return [r.attach(record)]


def map_diagnostic_report(r: Res) -> list[Item]:
    r.resolve(r.get("subject"), "subject")
    code, codes, text = concept(r.get("code"), (LOINC,))
    start, end = _effective(r)
    issued = r.when("issued")
    performers = r.names(r.get("performer")) or r.names(r.get("resultsInterpreter"))
    documents: list[Attached] = []
    for n, attachment in enumerate(dicts(r.get("presentedForm"))):
        doc = attachment_document(
            r,
            attachment,
            f"presentedForm[{n}]",
            sid=f"{r.source_id}#presentedForm/{n}",
            title=text or (code.display if code else None),
            date=issued or start,
            doc_type=r.get("code") if isinstance(r.get("code"), dict) else None,
            author=performers[0] if performers else None,
            keep_original=False,
        )
        if doc is not None:
            documents.append(doc)
    record = DiagnosticReport(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        code=code,
        codes=codes,
        text=text,
        category=first_code(r.get("category")),
        effective=start,
        effective_end=end,
        issued=issued,
        result_ids=r.ref_ids(r.get("result"), "result"),
        conclusion=string(r.get("conclusion")),
        conclusion_codes=tuple(c for cc in dicts(r.get("conclusionCode")) for c in codings(cc)),
        document_ids=tuple(d.record.source_id for d in documents),
        performer=performers[0] if performers else None,
        encounter_id=r.ref_id(r.get("encounter"), "encounter"),
    )
    return [r.attach(record), *documents]
