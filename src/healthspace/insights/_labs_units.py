"""Unit conversion for lab values: the model's converter first, then what the catalogue knows.

``model.units.convert`` handles plain UCUM conversions and, for the LOINC codes it knows,
molar (mg/dL <-> mmol/L) and HbA1c (% <-> mmol/mol) ones. The catalogue adds a molar mass
for more analytes and explicit factors for units that depend on the analyte (urine
albumin/creatinine in mg/mmol). Everything here returns None instead of raising: a value
that cannot be converted is kept as recorded and left out of a chart, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from healthspace.model import UnitConversionError, analyte_info, convert, normalize_unit

__all__ = ["to_unit"]


def _model_convert(value: float, source: str, target: str, codes: Sequence[str]) -> float | None:
    # Codes the model knows go first: a plain unit conversion would turn HbA1c mmol/mol
    # into % by a factor of ten, which is wrong; only the analyte-aware path is right.
    known = [code for code in codes if analyte_info(code) is not None]
    for code in (*known, None):
        try:
            return convert(value, source, target, analyte=code)
        except UnitConversionError:
            continue
    return None


def _molar(value: float, source: str, target: str, molar_mass: float) -> float | None:
    try:
        grams_per_litre = convert(value, source, "g/L")
        return convert(grams_per_litre / molar_mass, "mol/L", target)
    except UnitConversionError:
        pass
    try:
        moles_per_litre = convert(value, source, "mol/L")
        return convert(moles_per_litre * molar_mass, "g/L", target)
    except UnitConversionError:
        return None


def _direct(
    value: float, source: str, target: str, codes: Sequence[str], molar_mass: float | None
) -> float | None:
    if source == target:
        return float(value)
    converted = _model_convert(value, source, target, codes)
    if converted is None and molar_mass is not None:
        converted = _molar(value, source, target, molar_mass)
    return converted


def to_unit(
    value: float,
    source_unit: str,
    target_unit: str,
    *,
    codes: Sequence[str] = (),
    analyte_unit: str | None = None,
    molar_mass: float | None = None,
    unit_factors: Mapping[str, float] | None = None,
) -> float | None:
    """``value`` in ``target_unit``, or None when no known conversion applies.

    ``codes`` are LOINC codes of the analyte (the result's own first); ``unit_factors`` map
    a unit to its size in ``analyte_unit`` ("1 mg/mmol = 8.84 mg/g").
    """
    source, target = normalize_unit(source_unit), normalize_unit(target_unit)
    direct = _direct(value, source, target, codes, molar_mass)
    if direct is not None or not unit_factors or analyte_unit is None:
        return direct
    base = normalize_unit(analyte_unit)
    # Through the analyte unit: source -> analyte unit -> target, a factor on either side.
    if source in unit_factors:
        in_base: float | None = value * unit_factors[source]
    else:
        in_base = _direct(value, source, base, codes, molar_mass)
    if in_base is None:
        return None
    if target in unit_factors:
        return in_base / unit_factors[target]
    return _direct(in_base, base, target, codes, molar_mass)
