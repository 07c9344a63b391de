"""UCUM units: tidying real-world spellings, validating, converting.

Parsing goes through ucumvert into pint's *application* registry (ucumvert builds its
quantities there, and quantities of different registries cannot be mixed). Parsing costs
about a millisecond, so parsed units are cached; the parser itself is built on first use,
not at import, because ``healthspace.model`` is imported by every command.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from healthspace.errors import HealthspaceError
from healthspace.model.analytes import Analyte, analyte_info

__all__ = [
    "UnitConversionError",
    "can_convert",
    "canonical_unit",
    "convert",
    "is_ucum",
    "normalize_unit",
]


class UnitConversionError(HealthspaceError, ValueError):
    """A value cannot be converted between the given units (for this analyte)."""


# Spellings seen in EHR exports, lab PDFs and Apple Health, keyed by their case-folded,
# space-free form. Only unambiguous keys: a bare "m" or "g" is left alone.
_ALIASES: Final[dict[str, str]] = {
    **dict.fromkeys(("unk", "unknown", "null", "none", "n/a"), ""),
    **dict.fromkeys(("%", "percent", "pct"), "%"),
    "mol/l": "mol/L",
    "mmol/l": "mmol/L",
    "umol/l": "umol/L",
    "nmol/l": "nmol/L",
    "pmol/l": "pmol/L",
    "mg/dl": "mg/dL",
    "g/dl": "g/dL",
    "ng/dl": "ng/dL",
    **dict.fromkeys(("ug/dl", "mcg/dl"), "ug/dL"),
    "mg/l": "mg/L",
    "g/l": "g/L",
    "ng/l": "ng/L",
    **dict.fromkeys(("ug/l", "mcg/l"), "ug/L"),
    "mg/ml": "mg/mL",
    "ng/ml": "ng/mL",
    "pg/ml": "pg/mL",
    **dict.fromkeys(("ug/ml", "mcg/ml"), "ug/mL"),
    "meq/l": "meq/L",
    "mosm/kg": "mosm/kg",
    "uiu/ml": "u[IU]/mL",
    "uiu/l": "u[IU]/L",
    "miu/ml": "m[IU]/mL",
    "miu/l": "m[IU]/L",
    "iu/l": "[IU]/L",
    "iu/ml": "[IU]/mL",
    "iu": "[IU]",
    **dict.fromkeys(("u/l", "units/l"), "U/L"),
    **dict.fromkeys(("k/ul", "thou/ul", "k/mm3", "thou/mm3"), "10*3/uL"),
    **dict.fromkeys(("m/ul", "mil/ul", "million/ul", "m/mm3", "mil/mm3"), "10*6/uL"),
    **dict.fromkeys(("cells/ul", "cells/mm3", "/ul", "/mm3"), "/uL"),
    "fl": "fL",
    **dict.fromkeys(("mcg", "ug"), "ug"),
    "mg": "mg",
    "kg": "kg",
    **dict.fromkeys(("gm", "gram", "grams"), "g"),
    **dict.fromkeys(("lb", "lbs", "pound", "pounds", "[lb_av]"), "[lb_av]"),
    **dict.fromkeys(("oz", "ounce", "ounces"), "[oz_av]"),
    **dict.fromkeys(("stone", "[stone_av]"), "[stone_av]"),
    **dict.fromkeys(("in", "inch", "inches", "[in_i]"), "[in_i]"),
    **dict.fromkeys(("ft", "feet", "foot", "[ft_i]"), "[ft_i]"),
    **dict.fromkeys(("mi", "mile", "miles", "[mi_i]"), "[mi_i]"),
    "cm": "cm",
    "mm": "mm",
    "km": "km",
    **dict.fromkeys(("°f", "degf", "fahrenheit", "[degf]"), "[degF]"),
    **dict.fromkeys(("°c", "degc", "c", "cel", "celsius"), "Cel"),
    **dict.fromkeys(
        ("bpm", "beats/min", "beat/min", "beats/minute", "count/min", "breaths/min", "1/min"),
        "/min",
    ),
    **dict.fromkeys(("mmhg", "mm[hg]"), "mm[Hg]"),
    **dict.fromkeys(("kg/m2", "kg/m^2"), "kg/m2"),
    **dict.fromkeys(("ms", "msec"), "ms"),
    **dict.fromkeys(("sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "min"),
    **dict.fromkeys(("hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("day", "days"), "d"),
    **dict.fromkeys(("mm/hr", "mm/h"), "mm/h"),
    # UCUM's nutrition-label Calorie is a kilocalorie, and ucumvert reads [Cal] as a calorie.
    **dict.fromkeys(("kcal", "[cal]"), "kcal"),
    "kj": "kJ",
    "ml": "mL",
    "l": "L",
    "dl": "dL",
    "l/min": "L/min",
    "ml/min": "mL/min",
    "fl_oz_us": "[foz_us]",
    **dict.fromkeys(("ml/(kg.min)", "ml/kg/min"), "mL/kg/min"),
    **dict.fromkeys(
        ("ml/min/1.73m2", "ml/min/1.73m^2", "ml/min/{1.73_m2}", "ml/min/1.73"),
        "mL/min/{1.73_m2}",
    ),
    **dict.fromkeys(("count", "{count}"), "{count}"),
    **dict.fromkeys(("ratio", "{ratio}"), "{ratio}"),
    "dbaspl": "dB[SPL]",
}

# Exact-case spellings whose meaning depends on case.
_EXACT: Final[dict[str, str]] = {
    "Cal": "kcal",  # Apple Health's dietary energy
}

_TRANSLATE: Final = str.maketrans({"²": "2", "³": "3", "µ": "u", "μ": "u", "·": ".", "×": "x"})
_SPACE_AROUND_OPERATOR = re.compile(r"\s*([/.*^])\s*")
# x10^3/uL, 10^3/µL, x10E3/uL, 10*9/L, 10(9)/L ...
_POWER_OF_TEN = re.compile(
    r"^(?:x)?10(?:\^|\*\*?|e|\()([0-9]{1,2})\)?/(ul|mm3|l|nl)$",
)
# Apple writes molar glucose as "mmol<180.1558800000541>/L", the molar mass inline.
_APPLE_MOLAR = re.compile(r"^(mmol|mol|umol)<[0-9.]+>/(l|dl)$")
_ANNOTATION = re.compile(r"\{[^}]*\}")


def normalize_unit(text: str | None) -> str:
    """The UCUM code for a unit as a source spelled it; "" for none or unknown.

    Known spellings map to UCUM (``mg/dl`` -> ``mg/dL``, ``x10^3/uL`` -> ``10*3/uL``,
    ``°F`` -> ``[degF]``); anything else is returned trimmed, otherwise as written.
    """
    if text is None:
        return ""
    stripped = text.strip()
    if stripped in _EXACT:
        return _EXACT[stripped]
    tidy = _SPACE_AROUND_OPERATOR.sub(r"\1", stripped.translate(_TRANSLATE))
    key = "".join(tidy.split()).casefold()
    if not key:
        return ""
    alias = _ALIASES.get(key)
    if alias is not None:
        return alias
    if match := _POWER_OF_TEN.match(key):
        power, per = match.groups()
        denominator = {"ul": "uL", "mm3": "uL", "l": "L", "nl": "nL"}[per]
        return f"10*{int(power)}/{denominator}"
    if match := _APPLE_MOLAR.match(key):
        amount, volume = match.groups()
        return f"{amount}/{'dL' if volume == 'dl' else 'L'}"
    return tidy


_init_lock = threading.Lock()
_parser: Callable[[str], Any] | None = None
_registry: Any = None


def _ucum() -> tuple[Callable[[str], Any], Any]:
    """The UCUM parser and pint's application registry, built once on first use."""
    global _parser, _registry
    if _parser is not None:
        return _parser, _registry
    with _init_lock:
        if _parser is None:
            import pint
            from ucumvert import UcumToPintTransformer, get_ucum_parser, parse_ucum

            grammar = get_ucum_parser()
            # Loads ucumvert's UCUM definitions into the application registry (once).
            transformer = UcumToPintTransformer()

            def parse(code: str) -> Any:
                return transformer.transform(parse_ucum(code, grammar))

            _registry = pint.get_application_registry()  # type: ignore[no-untyped-call]
            _parser = parse
        return _parser, _registry


@lru_cache(maxsize=1024)
def _parse(code: str) -> Any | None:
    """The pint quantity for a UCUM code, or None when it is not valid UCUM."""
    parse, registry = _ucum()
    if code == "":
        return registry.Quantity(1, "dimensionless")
    try:
        parsed = parse(code)
    except Exception:  # ucumvert raises lark, pint and its own errors alike
        return None
    if not hasattr(parsed, "dimensionality"):
        # An annotation alone ("{steps}") is a dimensionless count.
        return registry.Quantity(1, "dimensionless")
    return parsed


def is_ucum(unit: str) -> bool:
    """True when ``unit`` is a valid UCUM code ("" counts: it stands for unitless "1")."""
    return _parse(unit) is not None


def _quantity(unit: str) -> Any:
    parsed = _parse(unit)
    if parsed is None:
        raise UnitConversionError(f"{unit!r} is not a UCUM unit")
    return parsed


def _convert_plain(value: float, source: str, target: str) -> float:
    _, registry = _ucum()
    src, dst = _quantity(source), _quantity(target)
    try:
        # Multiply magnitudes in rather than quantities: offset units (Cel) forbid products.
        result = registry.Quantity(value * src.magnitude, src.units).to(dst.units)
        return float(result.magnitude / dst.magnitude)
    except Exception as exc:  # pint: DimensionalityError, OffsetUnitCalculusError, ...
        raise UnitConversionError(f"cannot convert {source!r} to {target!r}") from exc


def _convert_molar(value: float, source: str, target: str, analyte: Analyte) -> float:
    molar_mass = analyte.molar_mass_g_per_mol
    assert molar_mass is not None
    _, registry = _ucum()
    src, dst = _quantity(source), _quantity(target)
    mass = registry.parse_units("g/L").dimensionality
    substance = registry.parse_units("mol/L").dimensionality
    if src.dimensionality == mass and dst.dimensionality == substance:
        grams_per_litre = _convert_plain(value, source, "g/L")
        return _convert_plain(grams_per_litre / molar_mass, "mol/L", target)
    if src.dimensionality == substance and dst.dimensionality == mass:
        moles_per_litre = _convert_plain(value, source, "mol/L")
        return _convert_plain(moles_per_litre * molar_mass, "g/L", target)
    raise UnitConversionError(f"cannot convert {source!r} to {target!r} for {analyte.name}")


# HbA1c: IFCC (mmol/mol) = (NGSP (%) - 2.15) * 10.929, the IFCC-NGSP master equation.
_HBA1C_SLOPE: Final = 10.929
_HBA1C_INTERCEPT: Final = 2.15


def _hba1c_scale(unit: str) -> str | None:
    bare = _ANNOTATION.sub("", unit)
    return {"%": "ngsp", "mmol/mol": "ifcc"}.get(bare)


def _convert_hba1c(value: float, source: str, target: str) -> float | None:
    """The NGSP <-> IFCC conversion, or None when the units are on the same scale."""
    scales = (_hba1c_scale(source), _hba1c_scale(target))
    if scales == ("ngsp", "ifcc"):
        return (value - _HBA1C_INTERCEPT) * _HBA1C_SLOPE
    if scales == ("ifcc", "ngsp"):
        return value / _HBA1C_SLOPE + _HBA1C_INTERCEPT
    return None


def convert(value: float, from_unit: str, to_unit: str, *, analyte: str | None = None) -> float:
    """Convert ``value`` from one unit to another; units are normalised first.

    ``analyte`` (a LOINC code) enables what plain units cannot do: mg/dL <-> mmol/L via the
    analyte's molar mass, and HbA1c % (NGSP) <-> mmol/mol (IFCC). Raises
    UnitConversionError when the conversion is impossible.
    """
    source, target = normalize_unit(from_unit), normalize_unit(to_unit)
    if not math.isfinite(value):
        raise UnitConversionError(f"cannot convert non-finite value {value!r}")
    info = analyte_info(analyte) if analyte else None
    if info is not None and info.special == "hba1c":
        special = _convert_hba1c(value, source, target)
        if special is not None:
            return special
    if source == target:
        _quantity(source)  # still refuse a unit that is not UCUM
        return float(value)
    try:
        return _convert_plain(value, source, target)
    except UnitConversionError:
        if info is None or info.molar_mass_g_per_mol is None:
            raise
    return _convert_molar(value, source, target, info)


def can_convert(from_unit: str, to_unit: str, *, analyte: str | None = None) -> bool:
    """True when :func:`convert` would succeed for these units."""
    try:
        convert(1.0, from_unit, to_unit, analyte=analyte)
    except UnitConversionError:
        return False
    return True


def canonical_unit(analyte_loinc: str | None, unit: str) -> str:
    """The preferred unit for an analyte, as its LOINC code implies, if ``unit`` converts to it.

    Mass-concentration codes (2345-7 glucose) prefer mg/dL and molar ones (15074-8) mmol/L:
    the unit follows the code, nothing is forced to SI. Unknown analytes, or units that do
    not convert, give ``unit`` normalised.
    """
    normalized = normalize_unit(unit)
    info = analyte_info(analyte_loinc) if analyte_loinc else None
    if info is None or info.unit is None or info.unit == normalized:
        return normalized
    if can_convert(normalized, info.unit, analyte=analyte_loinc):
        return info.unit
    return normalized
