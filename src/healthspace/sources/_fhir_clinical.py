"""Patient, Condition, AllergyIntolerance, Immunization, Procedure -> model records.

"No known allergy" entries are AllergyIntolerance resources whose code is one of the
SNOMED CT negation concepts below (NKA, NKDA, no known food / environmental / insect /
latex allergy); they become ``Allergy(no_known_allergy=True)``, never a real allergy.
"""

from __future__ import annotations

from typing import Final, Literal, cast

from healthspace.model import (
    CPT,
    CVX,
    ICD10CM,
    RXNORM,
    SNOMED,
    Allergy,
    Condition,
    Immunization,
    PartialDateTime,
    Patient,
    Procedure,
    Reaction,
)
from healthspace.sources._fhir_env import Res
from healthspace.sources._fhir_types import (
    as_list,
    codings,
    concept,
    concept_label,
    dicts,
    first_code,
    human_name,
    notes,
    period,
    quantity,
    string,
    when,
)
from healthspace.sources.base import Item

__all__ = [
    "NO_KNOWN_ALLERGY_CODES",
    "map_allergy",
    "map_condition",
    "map_immunization",
    "map_patient",
    "map_procedure",
]

NO_KNOWN_ALLERGY_CODES: Final = frozenset(
    {
        "716186003",  # No known allergy
        "409137002",  # No known drug allergy
        "429625007",  # No known food allergy
        "428607008",  # No known environmental allergy
        "428197003",  # No known insect allergy
        "1003774007",  # No known latex allergy
    }
)
_SEVERITIES: Final = frozenset({"mild", "moderate", "severe"})


def map_patient(r: Res) -> list[Item]:
    names = dicts(r.get("name"))
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    deceased_date = r.when("deceasedDateTime")
    language = None
    for comm in dicts(r.get("communication")):
        codes = codings(comm.get("language"))
        if codes and (language is None or comm.get("preferred") is True):
            language = codes[0].code
    gender = r.get("gender")
    record = Patient(
        source_id=r.source_id,
        provenance=r.provenance(),
        name=human_name(names),
        given=tuple(g.strip() for g in as_list(official.get("given")) if string(g)),
        family=string(official.get("family")),
        birth_date=r.when("birthDate"),
        sex=cast(Literal["female", "male", "other", "unknown"] | None, gender),
        deceased=r.get("deceasedBoolean") is True or deceased_date is not None,
        deceased_date=deceased_date,
        language=language,
        marital_status=concept_label(r.get("maritalStatus")),
    )
    return [r.attach(record)]


def _onset(r: Res, prefix: str) -> tuple[PartialDateTime | None, str | None]:
    """(date, text) of an onset[x] / abatement[x] choice."""
    moment = r.when(f"{prefix}DateTime")
    if moment is not None:
        return moment, None
    start, end = period(r.get(f"{prefix}Period"), f"{prefix}Period")
    if start is not None or end is not None:
        return (start if prefix == "onset" else end or start), None
    text = string(r.get(f"{prefix}String"))
    age = quantity(r.get(f"{prefix}Age"), f"{prefix}Age")
    if text is None and age is not None:
        text = f"age {age}"
    return None, text


def map_condition(r: Res) -> list[Item]:
    r.resolve(r.get("subject"), "subject")
    code, codes, text = concept(r.get("code"), (SNOMED, ICD10CM))
    onset, onset_text = _onset(r, "onset")
    abatement, _ = _onset(r, "abatement")
    sites = [label for site in dicts(r.get("bodySite")) if (label := concept_label(site))]
    record = Condition(
        source_id=r.source_id,
        provenance=r.provenance(),
        note=notes(r.get("note")),
        code=code,
        codes=codes,
        text=text,
        category=first_code(r.get("category")),
        clinical_status=first_code([r.get("clinicalStatus")]),
        verification_status=first_code([r.get("verificationStatus")]),
        severity=concept_label(r.get("severity")),
        body_site=", ".join(sites) or None,
        onset=onset,
        onset_text=onset_text,
        abatement=abatement,
        recorded=r.when("recordedDate"),
        asserter=r.name(r.get("asserter")),
        encounter_id=r.ref_id(r.get("encounter"), "encounter"),
    )
    return [r.attach(record)]


def _reactions(r: Res) -> tuple[Reaction, ...]:
    found = []
    for n, item in enumerate(dicts(r.get("reaction"))):
        labels = [lbl for m in dicts(item.get("manifestation")) if (lbl := concept_label(m))]
        severity = item.get("severity")
        found.append(
            Reaction(
                manifestation=", ".join(labels) or None,
                manifestation_codes=tuple(
                    c for m in dicts(item.get("manifestation")) for c in codings(m)
                ),
                severity=severity if severity in _SEVERITIES else None,
                onset=when(item.get("onset"), f"reaction[{n}].onset"),
                description=string(item.get("description")),
            )
        )
    return tuple(found)


def map_allergy(r: Res) -> list[Item]:
    r.resolve(r.get("patient"), "patient")
    code, codes, text = concept(r.get("code"), (RXNORM, SNOMED))
    negated = any(c.system == SNOMED and c.code in NO_KNOWN_ALLERGY_CODES for c in codes)
    onset, _ = _onset(r, "onset")
    categories = [c for c in as_list(r.get("category")) if isinstance(c, str)]
    record = Allergy(
        source_id=r.source_id,
        provenance=r.provenance(),
        note=notes(r.get("note")),
        code=code,
        codes=codes,
        text=text,
        no_known_allergy=negated,
        allergy_type=r.get("type"),
        category=categories[0] if categories else None,
        criticality=r.get("criticality"),
        clinical_status=first_code([r.get("clinicalStatus")]),
        verification_status=first_code([r.get("verificationStatus")]),
        reactions=_reactions(r),
        onset=onset,
        recorded=r.when("recordedDate"),
    )
    return [r.attach(record)]


def map_immunization(r: Res) -> list[Item]:
    r.resolve(r.get("patient"), "patient")
    code, codes, text = concept(r.get("vaccineCode"), (CVX,))
    protocol = dicts(r.get("protocolApplied"))
    first = protocol[0] if protocol else {}
    dose_number = first.get("doseNumberPositiveInt", first.get("doseNumberString"))
    performers = r.names([p.get("actor") for p in dicts(r.get("performer"))])
    record = Immunization(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        note=notes(r.get("note")),
        code=code,
        codes=codes,
        text=text,
        occurrence=r.when("occurrenceDateTime"),
        recorded=r.when("recorded"),
        status_reason=concept_label(r.get("statusReason")),
        lot_number=string(r.get("lotNumber")),
        expiration=r.when("expirationDate"),
        manufacturer=r.name(r.get("manufacturer")),
        site=concept_label(r.get("site")),
        route=concept_label(r.get("route")),
        dose_quantity=quantity(r.get("doseQuantity"), "doseQuantity"),
        dose_number=str(dose_number) if isinstance(dose_number, int | str) else None,
        series=string(first.get("series")),
        performer=performers[0] if performers else None,
        location=r.name(r.get("location")),
    )
    return [r.attach(record)]


def map_procedure(r: Res) -> list[Item]:
    r.resolve(r.get("subject"), "subject")
    code, codes, text = concept(r.get("code"), (SNOMED, CPT))
    start = r.when("performedDateTime")
    end = None
    if start is None:
        start, end = period(r.get("performedPeriod"), "performedPeriod")
    reason_refs = r.names(r.get("reasonReference"))
    reasons = [lbl for rc in dicts(r.get("reasonCode")) if (lbl := concept_label(rc))]
    performers = r.names([p.get("actor") for p in dicts(r.get("performer"))])
    sites = [label for site in dicts(r.get("bodySite")) if (label := concept_label(site))]
    record = Procedure(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        note=notes(r.get("note")),
        code=code,
        codes=codes,
        text=text,
        category=concept_label(r.get("category")),
        performed=start,
        performed_end=end,
        body_site=", ".join(sites) or None,
        reasons=tuple(dict.fromkeys([*reasons, *reason_refs])),
        reason_codes=tuple(c for rc in dicts(r.get("reasonCode")) for c in codings(rc)),
        performer=performers[0] if performers else None,
        location=r.name(r.get("location")),
        outcome=concept_label(r.get("outcome")),
        encounter_id=r.ref_id(r.get("encounter"), "encounter"),
    )
    return [r.attach(record)]
