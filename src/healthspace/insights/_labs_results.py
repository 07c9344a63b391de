"""One lab result, normalised: which analyte, value in canonical and original units, the
range it was judged against and where that range came from, its flag, critical marks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from healthspace.insights._labs_flags import (
    CriticalMark,
    RangeFlag,
    RangeUsed,
    critical_from_interpretation,
    critical_from_limit,
    interpretation_flag,
    reported_range,
    typical_range,
)
from healthspace.insights._labs_units import to_unit
from healthspace.insights.catalogue import Catalogue, CatalogueAnalyte
from healthspace.insights.facts import (
    Citation,
    Fact,
    Flag,
    Point,
    Severity,
    citation_of,
    format_number,
    local_date,
    with_unit,
)
from healthspace.model import (
    LOINC,
    Observation,
    PartialDateTime,
    QuantityValue,
    canonical_unit,
    normalize_unit,
)
from healthspace.model.observation import value_summary
from healthspace.store import StoredRecord

__all__ = ["LabResult", "build_result", "identify"]


@dataclass(frozen=True, slots=True)
class LabResult:
    """A stored lab observation as insights read it.

    ``value``/``unit`` are as the source recorded them; ``canonical_value`` is the same
    value in ``canonical_unit`` (the analyte's unit), None when no conversion is known.
    ``range_flag`` compares the value with ``range_used``; ``flag`` is "critical" on top
    of that when ``critical`` is set.
    """

    record_id: str
    source_id: str  # stable across re-imports: orders results taken at the same moment
    citation: Citation
    analyte_id: str
    name: str
    loinc: str | None
    moment: PartialDateTime | None
    value: float | None
    comparator: str | None
    unit: str
    original_value: float | str | None
    canonical_value: float | None
    canonical_unit: str
    range_used: RangeUsed | None
    range_flag: RangeFlag | None
    critical: CriticalMark | None
    canonical_range: RangeUsed | None = None  # range_used in canonical_unit, for charts
    note: str | None = None

    @property
    def flag(self) -> Flag | None:
        return "critical" if self.critical is not None else self.range_flag

    @property
    def when(self) -> datetime | None:
        return None if self.moment is None else self.moment.start

    @property
    def collected(self) -> date | None:
        """The collection day in the zone the source wrote."""
        return local_date(self.moment)

    @property
    def date_text(self) -> str:
        return self.moment.isoformat() if self.moment is not None else "an unknown date"

    @property
    def day_text(self) -> str:
        collected = self.collected
        return collected.isoformat() if collected is not None else "an unknown date"

    def _number(self, value: float, unit: str) -> str:
        """``value`` rounded for reading, but never onto the range limit it is outside of
        (106.4 above 98-106 shows as 106.4, not 106)."""
        text = format_number(value)
        rng = self.range_used
        if rng is None or rng.unit != unit or self.range_flag not in ("high", "low"):
            return text
        bound = rng.high if self.range_flag == "high" else rng.low
        decimals = 0
        while bound is not None and value != bound and float(text) == bound and decimals < 6:
            decimals += 1
            text = f"{value:.{decimals}f}"
        return text

    def value_text(self, *, canonical: bool = False) -> str:
        if canonical and self.canonical_value is not None:
            number = self._number(self.canonical_value, self.canonical_unit)
            return with_unit(number, self.canonical_unit)
        if self.value is not None:
            number = self._number(self.value, self.unit)
            return with_unit(f"{self.comparator or ''}{number}", self.unit)
        return str(self.original_value) if self.original_value is not None else "no value"

    def _judgement(self) -> str:
        rng = self.range_used
        if rng is None:
            if self.range_flag is None:
                return "no reference range came with it"
            return f"flagged {self.range_flag} by the laboratory"
        where = {"high": "above", "low": "below", "normal": "within", "abnormal": "outside"}
        position = where[self.range_flag or "normal"]
        if rng.source == "reported":
            return f"{position} the laboratory's range {rng.text()}"
        note = f"; {rng.note}" if rng.note else ""
        return (
            f"{position} the typical adult range {rng.text()} (no range came with the "
            f"result; typical range from {rng.reference}{note})"
        )

    def statement(self) -> str:
        text = f"{self.name} {self.value_text()} on {self.day_text}: {self._judgement()}."
        if self.critical is not None:
            text += (
                f" This is a critical value, {self.critical.describe()}: "
                "contact your care team promptly."
            )
        return text

    def severity(self) -> Severity:
        if self.critical is not None:
            return "critical"
        if self.range_flag in ("high", "low", "abnormal"):
            return "warning"
        return "info"

    def fact(self) -> Fact:
        values: dict[str, float | int | str | bool | None] = {
            "analyte": self.analyte_id,
            "loinc": self.loinc,
            "value": self.value,
            "unit": self.unit,
            "canonical_value": self.canonical_value,
            "canonical_unit": self.canonical_unit,
            "flag": self.flag,
            "range_flag": self.range_flag,
            "range_source": self.range_used.source if self.range_used else None,
            "range_low": self.range_used.low if self.range_used else None,
            "range_high": self.range_used.high if self.range_used else None,
            "range_unit": self.range_used.unit if self.range_used else None,
            "range_reference": self.range_used.reference if self.range_used else None,
            "date": self.date_text,
        }
        if self.critical is not None:
            values["critical_source"] = self.critical.source
            values["critical_limit"] = self.critical.limit
        topic = "lab.critical" if self.critical is not None else "lab.result"
        return Fact(topic, self.statement(), (self.citation,), (), values, self.severity())

    def point(self) -> Point | None:
        if self.canonical_value is None or self.moment is None:
            return None
        return Point(
            when=self.moment.start,
            date=self.moment.isoformat(),
            value=self.canonical_value,
            original_value=self.value if self.value is not None else self.original_value,
            original_unit=self.unit or None,
            flag=self.flag,
            record_id=self.record_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "analyte": self.analyte_id,
            "name": self.name,
            "loinc": self.loinc,
            "date": self.moment.isoformat() if self.moment else None,
            "value": self.value,
            "comparator": self.comparator,
            "unit": self.unit,
            "original_value": self.original_value,
            "canonical_value": self.canonical_value,
            "canonical_unit": self.canonical_unit,
            "range": self.range_used.to_dict() if self.range_used else None,
            "range_flag": self.range_flag,
            "flag": self.flag,
            "critical": self.critical.to_dict() if self.critical else None,
            "citation": self.citation.to_dict(),
        }


def _loinc_codes(obs: Observation) -> list[str]:
    codes = [c.code for c in (obs.code, *obs.codes) if c.system == LOINC]
    return list(dict.fromkeys(codes))


def identify(obs: Observation, cat: Catalogue) -> tuple[CatalogueAnalyte | None, str, str | None]:
    """(catalogue analyte or None, analyte key, the LOINC code it was found by)."""
    codes = _loinc_codes(obs)
    for code in codes:
        analyte = cat.by_loinc(code)
        if analyte is not None:
            return analyte, analyte.id, code
    if codes:
        return None, f"loinc:{codes[0]}", codes[0]
    return None, f"code:{obs.code.system}|{obs.code.code}", None


def _is_lab(obs: Observation, analyte: CatalogueAnalyte | None) -> bool:
    category = (obs.category or "").strip().lower()
    if category:
        return category == "laboratory"
    return analyte is not None or bool(obs.reference_ranges)


def build_result(stored: StoredRecord, cat: Catalogue, sex: str | None) -> LabResult | None:
    """The lab result of a stored record, or None if it is not a lab result with a value."""
    obs = stored.record
    if not isinstance(obs, Observation) or obs.value is None:
        return None
    analyte, key, loinc = identify(obs, cat)
    if not _is_lab(obs, analyte):
        return None
    codes = tuple(c for c in (loinc, *(analyte.loinc if analyte else ())) if c)

    def convert(value: float, source: str, target: str) -> float | None:
        return to_unit(
            value,
            source,
            target,
            codes=codes,
            analyte_unit=analyte.unit if analyte else None,
            molar_mass=analyte.molar_mass_g_per_mol if analyte else None,
            unit_factors=analyte.unit_factors if analyte else None,
        )

    value: float | None = None
    comparator: str | None = None
    unit = ""
    if isinstance(obs.value, QuantityValue):
        value = obs.value.quantity.value
        comparator = obs.value.quantity.comparator
        unit = normalize_unit(obs.value.quantity.unit)
    original, _ = value_summary(obs.value)
    interp_flag, interp_critical = interpretation_flag(obs.interpretation)

    target_unit = analyte.unit if analyte else canonical_unit(loinc, unit)
    canonical_value = None if value is None else convert(value, unit, target_unit)
    range_used: RangeUsed | None = None
    range_flag: RangeFlag | None = None
    if value is not None:
        range_used = reported_range(obs.reference_ranges, unit, sex, convert)
        if range_used is not None:
            range_flag = range_used.bounds().position(value)
        elif interp_flag is not None:
            range_flag = interp_flag
        elif analyte is not None and canonical_value is not None:
            range_used = typical_range(analyte, sex)
            range_flag = range_used.bounds().position(canonical_value)
    else:
        range_flag = interp_flag

    canonical_range = _in_unit(range_used, target_unit, convert)
    critical = None if value is None else critical_from_limit(analyte, value, unit, convert)
    if critical is None and interp_critical:
        critical = critical_from_interpretation(range_flag)
    return LabResult(
        record_id=stored.record_id,
        source_id=obs.source_id,
        citation=citation_of(stored),
        analyte_id=key,
        name=analyte.name("en") if analyte else obs.display_text(),
        loinc=loinc,
        moment=obs.effective or obs.issued,
        value=value,
        comparator=comparator,
        unit=unit,
        original_value=original,
        canonical_value=canonical_value,
        canonical_unit=target_unit,
        range_used=range_used,
        range_flag=range_flag,
        critical=critical,
        canonical_range=canonical_range,
        note=obs.note,
    )


def _in_unit(
    rng: RangeUsed | None, unit: str, convert: Callable[[float, str, str], float | None]
) -> RangeUsed | None:
    if rng is None or rng.unit == unit:
        return rng
    low = None if rng.low is None else convert(rng.low, rng.unit, unit)
    high = None if rng.high is None else convert(rng.high, rng.unit, unit)
    if (rng.low is not None and low is None) or (rng.high is not None and high is None):
        return None
    return replace(rng, low=low, high=high, unit=unit)
