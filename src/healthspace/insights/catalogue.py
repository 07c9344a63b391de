"""The lab catalogue: common analytes, their LOINC codes, plain-language explanations in
English, Simplified Chinese and French, typical adult ranges with their published sources,
and critical (panic) limits.

The content is data, shipped as ``insights/data/lab_catalogue_*.json`` (one file per panel),
``lab_sources.json`` and ``critical_values.json``, so it can be reviewed and extended without
code. Loading validates it: every LOINC code carries a correct check digit, no two analytes
share a code, every range names a known source, every analyte speaks every language.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from typing import Any, Final, Literal

from healthspace.model import is_valid_loinc, normalize_unit

__all__ = [
    "LANGUAGES",
    "Bounds",
    "Catalogue",
    "CatalogueAnalyte",
    "CriticalLimit",
    "Language",
    "PublishedSource",
    "Sex",
    "TypicalRange",
    "catalogue",
]

Language = Literal["en", "zh", "fr"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "zh", "fr")
Sex = Literal["female", "male"]
Position = Literal["low", "normal", "high"]


@dataclass(frozen=True, slots=True)
class PublishedSource:
    """A publication a range or limit comes from."""

    key: str
    title: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "url": self.url}


@dataclass(frozen=True, slots=True)
class Bounds:
    """An interval; either side may be open. Inclusive unless stated ("below 200")."""

    low: float | None
    high: float | None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def position(self, value: float) -> Position:
        if self.low is not None and (
            value < self.low or (value == self.low and not self.low_inclusive)
        ):
            return "low"
        if self.high is not None and (
            value > self.high or (value == self.high and not self.high_inclusive)
        ):
            return "high"
        return "normal"

    def text(self, unit: str) -> str:
        suffix = f" {unit}" if unit else ""
        if self.low is not None and self.high is not None:
            return f"{self.low:g}-{self.high:g}{suffix}"
        if self.high is not None:
            return f"{'<=' if self.high_inclusive else '<'}{self.high:g}{suffix}"
        if self.low is not None:
            return f"{'>=' if self.low_inclusive else '>'}{self.low:g}{suffix}"
        return "no limits"


@dataclass(frozen=True, slots=True)
class TypicalRange:
    """A typical adult range in the analyte's unit, sex-specific where the source is."""

    bounds: Bounds  # both sexes pooled (the outer limits) when the source splits them
    unit: str
    source: PublishedSource
    female: Bounds | None = None
    male: Bounds | None = None
    note: str | None = None

    def for_sex(self, sex: str | None) -> Bounds:
        if sex == "female" and self.female is not None:
            return self.female
        if sex == "male" and self.male is not None:
            return self.male
        return self.bounds


@dataclass(frozen=True, slots=True)
class CriticalLimit:
    """Values at or beyond these limits (``<= low``, ``>= high``) are critical."""

    analyte: str
    unit: str
    low: float | None
    high: float | None
    source: PublishedSource
    note: str | None = None

    def crossed(self, value: float) -> Literal["low", "high"] | None:
        if self.low is not None and value <= self.low:
            return "low"
        if self.high is not None and value >= self.high:
            return "high"
        return None


@dataclass(frozen=True, slots=True)
class CatalogueAnalyte:
    """One analyte: its codes, canonical unit, words in every language, typical range."""

    id: str
    panel: str
    loinc: tuple[str, ...]  # the first is the main code; all name the same analyte
    unit: str
    names: Mapping[str, str]
    explanations: Mapping[str, str]
    typical_range: TypicalRange
    molar_mass_g_per_mol: float | None = None
    # Units that need the analyte to convert, as "1 <unit> = factor <analyte unit>".
    unit_factors: Mapping[str, float] = field(default_factory=dict)
    critical: CriticalLimit | None = None
    trend_tolerance: float = 0.05  # relative change still counted as "stable"

    def name(self, language: str = "en") -> str:
        return self.names.get(language) or self.names["en"]

    def explanation(self, language: str = "en") -> str:
        return self.explanations.get(language) or self.explanations["en"]


class Catalogue:
    """The loaded catalogue, looked up by analyte id or by any of its LOINC codes."""

    def __init__(
        self,
        analytes: tuple[CatalogueAnalyte, ...],
        sources: Mapping[str, PublishedSource],
        critical_sources: Mapping[str, PublishedSource],
    ) -> None:
        self.analytes = analytes
        self.sources = dict(sources)
        self.critical_sources = dict(critical_sources)
        self._by_id = {a.id: a for a in analytes}
        self._by_loinc = {code: a for a in analytes for code in a.loinc}

    def __len__(self) -> int:
        return len(self.analytes)

    def __iter__(self) -> Iterator[CatalogueAnalyte]:
        return iter(self.analytes)

    def get(self, analyte_id: str) -> CatalogueAnalyte | None:
        return self._by_id.get(analyte_id)

    def by_loinc(self, code: str) -> CatalogueAnalyte | None:
        return self._by_loinc.get(code.strip())

    def resolve(self, key: str) -> CatalogueAnalyte | None:
        """The analyte for an id ("ldl_cholesterol") or a LOINC code ("18262-6")."""
        return self.get(key) or self.by_loinc(key)


def _read(name: str) -> dict[str, Any]:
    text = files("healthspace.insights").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _bounds(entry: Mapping[str, Any], where: str) -> Bounds:
    bounds = Bounds(
        low=_number(entry.get("low"), where),
        high=_number(entry.get("high"), where),
        low_inclusive=bool(entry.get("low_inclusive", True)),
        high_inclusive=bool(entry.get("high_inclusive", True)),
    )
    if bounds.low is None and bounds.high is None:
        raise ValueError(f"{where}: a range needs a low or a high limit")
    if bounds.low is not None and bounds.high is not None and bounds.low > bounds.high:
        raise ValueError(f"{where}: low is above high")
    return bounds


def _sources(raw: Mapping[str, Any]) -> dict[str, PublishedSource]:
    return {
        key: PublishedSource(key=key, title=entry["title"], url=entry.get("url"))
        for key, entry in raw.items()
    }


def _analyte(
    raw: Mapping[str, Any], panel: str, sources: Mapping[str, PublishedSource]
) -> CatalogueAnalyte:
    analyte_id = raw["id"]
    where = f"lab catalogue analyte {analyte_id!r}"
    codes = tuple(raw["loinc"])
    if not codes or not all(is_valid_loinc(code) for code in codes):
        raise ValueError(f"{where}: every LOINC code must be valid (check digit)")
    for part in ("name", "explanation"):
        missing = [lang for lang in LANGUAGES if not raw[part].get(lang, "").strip()]
        if missing:
            raise ValueError(f"{where}: {part} missing in {', '.join(missing)}")
    unit = normalize_unit(raw["unit"])
    typical = raw["typical_range"]
    if typical["source"] not in sources:
        raise ValueError(f"{where}: unknown range source {typical['source']!r}")
    sexed = {
        sex: _bounds(typical[sex], f"{where} ({sex})")
        for sex in ("female", "male")
        if sex in typical
    }
    return CatalogueAnalyte(
        id=analyte_id,
        panel=panel,
        loinc=codes,
        unit=unit,
        names=dict(raw["name"]),
        explanations=dict(raw["explanation"]),
        typical_range=TypicalRange(
            bounds=_bounds(typical, where),
            unit=unit,
            source=sources[typical["source"]],
            female=sexed.get("female"),
            male=sexed.get("male"),
            note=typical.get("note"),
        ),
        molar_mass_g_per_mol=_number(raw.get("molar_mass_g_per_mol"), where),
        unit_factors={normalize_unit(u): float(f) for u, f in raw.get("unit_factors", {}).items()},
        trend_tolerance=float(raw.get("trend_tolerance", 0.05)),
    )


def _critical(
    raw: Mapping[str, Any], sources: Mapping[str, PublishedSource]
) -> dict[str, CriticalLimit]:
    limits: dict[str, CriticalLimit] = {}
    for entry in raw["limits"]:
        where = f"critical limit for {entry['analyte']!r}"
        if entry["source"] not in sources:
            raise ValueError(f"{where}: unknown source {entry['source']!r}")
        if entry["analyte"] in limits:
            raise ValueError(f"{where}: listed twice")
        limit = CriticalLimit(
            analyte=entry["analyte"],
            unit=normalize_unit(entry["unit"]),
            low=_number(entry.get("low"), where),
            high=_number(entry.get("high"), where),
            source=sources[entry["source"]],
            note=entry.get("note"),
        )
        if limit.low is None and limit.high is None:
            raise ValueError(f"{where}: needs a low or a high limit")
        limits[limit.analyte] = limit
    return limits


@cache
def catalogue() -> Catalogue:
    """The shipped catalogue, loaded and validated once."""
    sources = _sources(_read("lab_sources.json")["sources"])
    critical_raw = _read("critical_values.json")
    critical_sources = _sources(critical_raw["sources"])
    critical = _critical(critical_raw, critical_sources)
    data_dir = files("healthspace.insights").joinpath("data")
    names = sorted(
        entry.name
        for entry in data_dir.iterdir()
        if entry.name.startswith("lab_catalogue_") and entry.name.endswith(".json")
    )
    analytes: list[CatalogueAnalyte] = []
    seen_codes: dict[str, str] = {}
    for name in names:
        raw = _read(name)
        for entry in raw["analytes"]:
            analyte = _analyte(entry, raw["panel"], sources)
            for code in analyte.loinc:
                if code in seen_codes:
                    raise ValueError(
                        f"LOINC {code} belongs to both {seen_codes[code]!r} and {analyte.id!r}"
                    )
                seen_codes[code] = analyte.id
            limit = critical.pop(analyte.id, None)
            if any(a.id == analyte.id for a in analytes):
                raise ValueError(f"lab catalogue analyte {analyte.id!r} is defined twice")
            if limit is not None:
                analyte = replace(analyte, critical=limit)
            analytes.append(analyte)
    if critical:
        raise ValueError(f"critical limits for unknown analytes: {sorted(critical)}")
    return Catalogue(tuple(analytes), sources, critical_sources)
