"""Unit normalisation and conversion, including analyte-specific conversions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthspace.errors import HealthspaceError
from healthspace.model import (
    Quantity,
    UnitConversionError,
    analyte_info,
    can_convert,
    canonical_unit,
    convert,
    is_ucum,
    normalize_unit,
)

GLUCOSE, LDL, CHOLESTEROL, HDL, NON_HDL = "2345-7", "18262-6", "2093-3", "2085-9", "43396-1"
TRIGLYCERIDES, CREATININE, HBA1C, HBA1C_IFCC = "2571-8", "2160-0", "4548-4", "59261-8"


@pytest.mark.parametrize(
    ("messy", "ucum"),
    [
        ("mMol/L", "mmol/L"),
        ("mg/dl", "mg/dL"),
        ("MG/DL", "mg/dL"),
        ("kg/m²", "kg/m2"),
        ("lbs", "[lb_av]"),
        ("lb", "[lb_av]"),
        ("in", "[in_i]"),
        ("°F", "[degF]"),
        ("degF", "[degF]"),
        ("°C", "Cel"),
        ("C", "Cel"),
        ("bpm", "/min"),
        ("beats/min", "/min"),
        ("mmHg", "mm[Hg]"),
        ("x10^3/uL", "10*3/uL"),
        ("K/uL", "10*3/uL"),
        ("10^3/ul", "10*3/uL"),
        ("x10E3/uL", "10*3/uL"),
        ("10^9/L", "10*9/L"),
        ("uIU/mL", "u[IU]/mL"),
        ("µIU/mL", "u[IU]/mL"),
        ("mEq/L", "meq/L"),
        ("%", "%"),
        ("UNK", ""),
        ("", ""),
        ("  ", ""),
        ("mg / dL", "mg/dL"),
        ("mmol<180.1558800000541>/L", "mmol/L"),
        ("Cal", "kcal"),
        ("mL/min/1.73 m2", "mL/min/{1.73_m2}"),
        ("ng/mL", "ng/mL"),
        ("mmol/mol", "mmol/mol"),  # already UCUM and not in any table: untouched
    ],
)
def test_normalize_unit(messy: str, ucum: str) -> None:
    assert normalize_unit(messy) == ucum
    assert is_ucum(ucum)


def test_normalize_none_is_unitless() -> None:
    assert normalize_unit(None) == ""


def test_is_ucum() -> None:
    assert is_ucum("mg/dL")
    assert is_ucum("10*3/uL")
    assert is_ucum("{steps}")
    assert is_ucum("")
    assert not is_ucum("bpm")
    assert not is_ucum("mg/dL)")


@pytest.mark.parametrize(
    ("value", "source", "target", "analyte", "expected", "places"),
    [
        (162, "mg/dL", "mmol/L", LDL, 4.19, 2),
        (6.5, "%", "mmol/mol", HBA1C, 48, 0),
        (48, "mmol/mol", "%", HBA1C_IFCC, 6.5, 1),
        (100, "mg/dL", "mmol/L", GLUCOSE, 5.55, 2),
        (1.0, "mg/dL", "umol/L", CREATININE, 88.4, 1),
        (88.4, "umol/L", "mg/dL", CREATININE, 1.0, 2),
        (200, "mg/dL", "mmol/L", CHOLESTEROL, 5.17, 2),
        (150, "mg/dL", "mmol/L", TRIGLYCERIDES, 1.69, 2),
        (5.0, "mmol/L", "mg/dL", "15074-8", 90.08, 2),
        (1, "kg", "[lb_av]", None, 2.2046, 4),
        (37, "Cel", "[degF]", None, 98.6, 6),
        (98.6, "°F", "C", None, 37, 6),
        (5.2, "10*3/uL", "10*9/L", None, 5.2, 9),
        (14, "g/dL", "g/L", None, 140, 9),
        (162, "mg/dL", "g/L", LDL, 1.62, 9),  # plain units still work with an analyte
        (120, "mmHg", "mm[Hg]", None, 120, 9),
    ],
)
def test_known_conversions(
    value: float,
    source: str,
    target: str,
    analyte: str | None,
    expected: float,
    places: int,
) -> None:
    assert round(convert(value, source, target, analyte=analyte), places) == pytest.approx(expected)


def test_mass_to_molar_needs_an_analyte() -> None:
    with pytest.raises(UnitConversionError, match="mg/dL"):
        convert(100, "mg/dL", "mmol/L")
    with pytest.raises(UnitConversionError):
        convert(100, "mg/dL", "mmol/L", analyte="8867-4")  # heart rate has no molar mass
    assert not can_convert("mg/dL", "mmol/L")
    assert can_convert("mg/dL", "mmol/L", analyte=GLUCOSE)


@pytest.mark.parametrize(
    ("source", "target"),
    [("kg", "mg/dL"), ("bogus", "kg"), ("kg", "bogus"), ("Cel", "/min"), ("bogus", "bogus")],
)
def test_impossible_conversions_raise(source: str, target: str) -> None:
    with pytest.raises(UnitConversionError):
        convert(1.0, source, target)


def test_hba1c_to_unrelated_unit_raises() -> None:
    with pytest.raises(UnitConversionError):
        convert(6.5, "%", "mg/dL", analyte=HBA1C)


def test_conversion_error_is_a_value_error_and_a_healthspace_error() -> None:
    assert issubclass(UnitConversionError, ValueError)
    assert issubclass(UnitConversionError, HealthspaceError)


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(UnitConversionError):
        convert(float("nan"), "kg", "[lb_av]")


MOLAR_ANALYTES = [GLUCOSE, "2339-0", "1558-6", LDL, "13457-7", CHOLESTEROL, HDL, NON_HDL]
MOLAR_ANALYTES += [TRIGLYCERIDES, CREATININE, "38483-4"]
values = st.floats(min_value=0.01, max_value=5000, allow_nan=False)


@settings(max_examples=40)
@given(analyte=st.sampled_from(MOLAR_ANALYTES), value=values)
def test_molar_round_trip(analyte: str, value: float) -> None:
    molar = convert(value, "mg/dL", "mmol/L", analyte=analyte)
    assert convert(molar, "mmol/L", "mg/dL", analyte=analyte) == pytest.approx(value, rel=1e-9)
    info = analyte_info(analyte)
    assert info is not None
    assert info.molar_mass_g_per_mol is not None
    assert molar == pytest.approx(value * 10 / info.molar_mass_g_per_mol, rel=1e-9)


@settings(max_examples=40)
@given(st.floats(min_value=3, max_value=20, allow_nan=False))
def test_hba1c_round_trip(percent: float) -> None:
    ifcc = convert(percent, "%", "mmol/mol", analyte=HBA1C)
    assert ifcc == pytest.approx((percent - 2.15) * 10.929)
    assert convert(ifcc, "mmol/mol", "%", analyte=HBA1C) == pytest.approx(percent, rel=1e-9)


@settings(max_examples=40)
@given(st.floats(min_value=0.5, max_value=500, allow_nan=False))
def test_kg_lb_round_trip(kg: float) -> None:
    pounds = convert(kg, "kg", "lbs")
    assert pounds == pytest.approx(kg / 0.45359237, rel=1e-12)
    assert convert(pounds, "[lb_av]", "kg") == pytest.approx(kg, rel=1e-12)


def test_canonical_unit_follows_the_loinc_code() -> None:
    assert canonical_unit(GLUCOSE, "mg/dl") == "mg/dL"
    assert canonical_unit(GLUCOSE, "mmol/L") == "mg/dL"  # mass code: mg/dL, not forced to SI
    assert canonical_unit("15074-8", "mg/dL") == "mmol/L"  # molar code
    assert canonical_unit(CREATININE, "umol/L") == "mg/dL"
    assert canonical_unit("14682-9", "mg/dL") == "umol/L"
    assert canonical_unit("8867-4", "bpm") == "/min"
    assert canonical_unit("29463-7", "lbs") == "kg"
    assert canonical_unit("29463-7", "mg/dL") == "mg/dL"  # not convertible: left as is
    assert canonical_unit(None, "mMol/L") == "mmol/L"
    assert canonical_unit("0000-0", "K/uL") == "10*3/uL"


def test_analyte_table_ships_the_listed_codes() -> None:
    listed = ["2339-0", "2345-7", "15074-8", "1558-6", "2093-3", "14647-2", "18262-6"]
    listed += ["13457-7", "2089-1", "22748-8", "2085-9", "14646-4", "2571-8", "14927-8"]
    listed += ["2160-0", "14682-9", "38483-4", "43396-1"]
    for code in listed:
        info = analyte_info(code)
        assert info is not None, code
        assert info.molar_mass_g_per_mol, code
    for code in ["4548-4", "17856-6", "59261-8"]:
        info = analyte_info(code)
        assert info is not None, code
        assert info.special == "hba1c", code
    assert analyte_info("0000-0") is None


def test_quantity_converted_keeps_comparator() -> None:
    q = Quantity(value=100, unit="mg/dl", comparator="<")
    converted = q.converted("mmol/L", analyte=GLUCOSE)
    assert converted.unit == "mmol/L"
    assert converted.comparator == "<"
    assert converted.value == pytest.approx(5.5507, abs=1e-4)
    assert str(q) == "<100 mg/dl"
