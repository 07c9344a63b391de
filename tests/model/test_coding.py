"""Codes, code systems and check digits."""

from __future__ import annotations

import pytest

from healthspace.model import (
    CVX,
    HEALTHKIT,
    ICD10CM,
    LOINC,
    NDC,
    RXNORM,
    SNOMED,
    Code,
    is_healthkit_identifier,
    is_valid_loinc,
    is_valid_rxnorm,
    is_valid_snomed,
    system_from_oid,
)


@pytest.mark.parametrize("code", ["2093-3", "4548-4", "18262-6", "2339-0", "59261-8", "8480-6"])
def test_real_loinc_codes_are_valid(code: str) -> None:
    assert is_valid_loinc(code)


@pytest.mark.parametrize("code", ["2093-4", "4548-5", "18262-0", "2339-1", "2093", "abc-1", ""])
def test_loinc_with_wrong_check_digit_or_shape_is_invalid(code: str) -> None:
    assert not is_valid_loinc(code)


def test_every_single_digit_change_breaks_a_loinc_check_digit() -> None:
    for position in range(4):
        digits = list("18262")
        digits[position] = str((int(digits[position]) + 1) % 10)
        assert not is_valid_loinc("".join(digits) + "-6")


@pytest.mark.parametrize("code", ["44054006", "38341003", "73211009", "22298006", "195967001"])
def test_real_snomed_codes_are_valid(code: str) -> None:
    assert is_valid_snomed(code)


@pytest.mark.parametrize("code", ["44054007", "38341004", "12345", "0123456", "4405400x", ""])
def test_bad_snomed_codes_are_invalid(code: str) -> None:
    assert not is_valid_snomed(code)


def test_rxnorm_is_digits() -> None:
    assert is_valid_rxnorm("197361")
    assert not is_valid_rxnorm("19736a")
    assert not is_valid_rxnorm("")


def test_healthkit_identifiers() -> None:
    assert is_healthkit_identifier("HKQuantityTypeIdentifierHeartRate")
    assert is_healthkit_identifier("HKCategoryTypeIdentifierSleepAnalysis")
    assert is_healthkit_identifier("HKWorkoutTypeIdentifier")
    assert not is_healthkit_identifier("HeartRate")
    assert not is_healthkit_identifier("HKWorkoutActivityTypeRunning")


@pytest.mark.parametrize(
    ("oid", "system"),
    [
        ("2.16.840.1.113883.6.1", LOINC),
        ("2.16.840.1.113883.6.96", SNOMED),
        ("urn:oid:2.16.840.1.113883.6.88", RXNORM),
        ("2.16.840.1.113883.12.292", CVX),
        ("2.16.840.1.113883.6.90", ICD10CM),
        (" 2.16.840.1.113883.6.69 ", NDC),
    ],
)
def test_oids_map_to_system_uris(oid: str, system: str) -> None:
    assert system_from_oid(oid) == system


def test_unknown_oid_is_none() -> None:
    assert system_from_oid("1.2.3.4") is None


def test_code_key_and_immutability() -> None:
    code = Code(system=LOINC, code="2093-3", display="Cholesterol")
    assert code.key() == "http://loinc.org|2093-3"
    assert code == Code(system=LOINC, code="2093-3", display="Cholesterol")
    assert len({code, Code(system=LOINC, code="2093-3", display="Cholesterol")}) == 1
    with pytest.raises(ValueError, match="frozen"):
        code.code = "1"  # type: ignore[misc]
    assert HEALTHKIT.startswith("http")
