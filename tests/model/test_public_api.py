"""healthspace.model exports a complete, sorted, importable __all__."""

from __future__ import annotations

import re
import types

import healthspace.model as model


def _natural(name: str) -> tuple[object, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name))


def test_all_is_sorted_and_unique() -> None:
    assert len(set(model.__all__)) == len(model.__all__)
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, numbers compared as numbers.
    constants = [name for name in model.__all__ if name.isupper()]
    classes = [name for name in model.__all__ if not name.isupper() and name[0].isupper()]
    functions = [name for name in model.__all__ if name[0].islower()]
    expected = sorted(constants, key=_natural) + sorted(classes, key=_natural)
    assert model.__all__ == expected + sorted(functions, key=_natural)


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(model).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(model.__all__)


def test_contract_names_exist() -> None:
    for name in [
        "LOINC", "SNOMED", "RXNORM", "UCUM", "HEALTHKIT", "ICD10CM", "CVX", "NDC",
        "system_from_oid", "Code", "is_valid_loinc", "is_valid_snomed", "is_valid_rxnorm",
        "is_healthkit_identifier", "Precision", "PartialDateTime", "Quantity",
        "normalize_unit", "is_ucum", "convert", "UnitConversionError", "canonical_unit",
        "Provenance", "Record", "Observation", "QuantityValue", "StringValue", "CodedValue",
        "RangeValue", "BooleanValue", "ObservationComponent", "ReferenceRange", "Medication",
        "Schedule", "Allergy", "Document", "Coverage", "Claim", "Money", "Workout",
        "SleepSession", "NutritionDay", "Patient", "Procedure", "Encounter", "Immunization",
        "Condition", "DiagnosticReport", "CarePlan", "Sample", "SampleBatch", "METRICS",
        "AnyRecord", "RECORD_KINDS", "record_to_json", "record_from_json", "ModelItem",
    ]:  # fmt: skip
        assert name in model.__all__, name
