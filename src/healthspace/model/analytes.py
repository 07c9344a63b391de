"""What we know about common lab analytes, by LOINC code: name, preferred unit, molar mass.

The tables ship as package data (``model/data/*.json``) so they can grow without code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

__all__ = ["Analyte", "analyte_info"]


@dataclass(frozen=True, slots=True)
class Analyte:
    """An analyte identified by a LOINC code.

    ``molar_mass_g_per_mol`` enables mg/dL <-> mmol/L; ``special="hba1c"`` marks HbA1c,
    whose % (NGSP) <-> mmol/mol (IFCC) conversion is a linear equation, not a unit change.
    """

    loinc: str
    name: str
    unit: str | None = None
    molar_mass_g_per_mol: float | None = None
    special: Literal["hba1c"] | None = None


def _load(name: str) -> dict[str, dict[str, Any]]:
    text = files("healthspace.model").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, dict[str, Any]] = json.loads(text)
    return data


@cache
def _table() -> dict[str, Analyte]:
    table: dict[str, Analyte] = {}
    for loinc, entry in _load("preferred_units.json").items():
        table[loinc] = Analyte(loinc=loinc, name=entry["name"], unit=entry.get("unit"))
    # The molar-mass table wins where both name a code.
    for loinc, entry in _load("molar_masses.json").items():
        special = entry.get("special")
        if special not in (None, "hba1c"):
            raise ValueError(f"molar_masses.json: {loinc} has unknown special {special!r}")
        table[loinc] = Analyte(
            loinc=loinc,
            name=entry["name"],
            unit=entry.get("unit"),
            molar_mass_g_per_mol=entry.get("molar_mass_g_per_mol"),
            special=special,
        )
    return table


def analyte_info(loinc: str) -> Analyte | None:
    """What the shipped tables know about a LOINC code, or None."""
    return _table().get(loinc.strip())
