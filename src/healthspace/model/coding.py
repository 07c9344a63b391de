"""Codes from terminologies (LOINC, SNOMED CT, RxNorm, ...) and their check-digit rules."""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CPT",
    "CVX",
    "HEALTHKIT",
    "ICD9CM",
    "ICD10CM",
    "LOINC",
    "NDC",
    "OID_SYSTEMS",
    "RXNORM",
    "SNOMED",
    "UCUM",
    "Code",
    "is_healthkit_identifier",
    "is_valid_loinc",
    "is_valid_rxnorm",
    "is_valid_snomed",
    "system_from_oid",
]

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM: Final = "http://unitsofmeasure.org"
HEALTHKIT: Final = "http://developer.apple.com/documentation/healthkit"
ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9CM: Final = "http://hl7.org/fhir/sid/icd-9-cm"
CVX: Final = "http://hl7.org/fhir/sid/cvx"
NDC: Final = "http://hl7.org/fhir/sid/ndc"
CPT: Final = "http://www.ama-assn.org/go/cpt"

_V3 = "http://terminology.hl7.org/CodeSystem/"

# The OIDs C-CDA documents name their code systems by, mapped to FHIR system URIs.
OID_SYSTEMS: Final[dict[str, str]] = {
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.88": RXNORM,
    "2.16.840.1.113883.12.292": CVX,
    "2.16.840.1.113883.6.90": ICD10CM,
    "2.16.840.1.113883.6.103": ICD9CM,
    "2.16.840.1.113883.6.69": NDC,
    "2.16.840.1.113883.6.12": CPT,
    "2.16.840.1.113883.6.8": UCUM,
    "2.16.840.1.113883.5.1": _V3 + "v3-AdministrativeGender",
    "2.16.840.1.113883.5.4": _V3 + "v3-ActCode",
    "2.16.840.1.113883.5.83": _V3 + "v3-ObservationInterpretation",
}


def system_from_oid(oid: str) -> str | None:
    """The system URI for a code-system OID (bare or as ``urn:oid:...``), or None if unknown."""
    oid = oid.strip()
    oid = oid.removeprefix("urn:oid:")
    return OID_SYSTEMS.get(oid)


class Code(BaseModel):
    """One coding: a code in a code system, with the display text the source gave."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str
    code: str = Field(min_length=1)
    display: str | None = None

    def key(self) -> str:
        """``system|code``: the identity of the concept, input to blind indexes."""
        return f"{self.system}|{self.code}"


_LOINC_RE = re.compile(r"^([0-9]{1,7})-([0-9])$")
_DIGITS_RE = re.compile(r"^[0-9]+$")
_HEALTHKIT_RE = re.compile(r"^HK[A-Za-z]*TypeIdentifier[A-Za-z0-9]*$")


def _luhn_check_digit(digits: str) -> int:
    """LOINC's mod-10 check digit (the Luhn scheme, rightmost digit doubled)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def is_valid_loinc(code: str) -> bool:
    """True for a LOINC code ``N...N-D`` whose check digit D matches the number."""
    match = _LOINC_RE.match(code)
    if match is None:
        return False
    return _luhn_check_digit(match.group(1)) == int(match.group(2))


# Verhoeff tables: dihedral group D5 multiplication, position permutation, inverse.
_VERHOEFF_D: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def _verhoeff_valid(digits: str) -> bool:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


def is_valid_snomed(code: str) -> bool:
    """True for a SNOMED CT identifier: 6-18 digits, no leading zero, Verhoeff check digit."""
    if not (6 <= len(code) <= 18) or _DIGITS_RE.match(code) is None or code[0] == "0":
        return False
    return _verhoeff_valid(code)


def is_valid_rxnorm(code: str) -> bool:
    """True for an RxNorm concept id (RXCUI): digits only, no check digit exists."""
    return 1 <= len(code) <= 10 and _DIGITS_RE.match(code) is not None


def is_healthkit_identifier(s: str) -> bool:
    """True for a HealthKit type identifier such as ``HKQuantityTypeIdentifierHeartRate``."""
    return _HEALTHKIT_RE.match(s) is not None
