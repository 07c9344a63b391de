"""The shared vocabulary of insights: facts, their citations, and chart-ready series.

Every insight answers with :class:`Fact` objects. A fact states one thing in plain
English (numbers included), carries the machine-readable numbers behind it, and cites
where it came from: stored records (:class:`Citation`, by record id) and, for
wearable data, day windows of a time series (:class:`SampleWindow`). Trends come
with a :class:`Series`: points in one unit plus a reference band, ready for a chart.

Everything here is a plain frozen dataclass with a ``to_dict()`` giving JSON-ready
values, so the assistant, the web pages, the CLI and the MCP server share one shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

from healthspace.model import AnyRecord, PartialDateTime, normalize_unit
from healthspace.store import StoredRecord

__all__ = [
    "Band",
    "Citation",
    "Fact",
    "Flag",
    "Point",
    "SampleWindow",
    "Series",
    "Severity",
    "citation_of",
    "format_number",
    "local_date",
    "record_moment",
    "unique_citations",
    "unit_label",
    "with_unit",
]

# Where a result stands against its reference range. "critical" is set on top of the
# range flag when a published critical (panic) threshold is crossed.
Flag = Literal["normal", "high", "low", "abnormal", "critical"]
# How much attention a fact deserves; "critical" means the assistant must escalate.
Severity = Literal["info", "notice", "warning", "critical"]


def record_moment(record: AnyRecord) -> PartialDateTime | None:
    """The moment a record is filed under (its ``sort_time``), as the source wrote it.

    Each record kind decides which of its dates counts (an observation's effective
    time, a medication's start, ...); this finds that field, zone and precision kept.
    """
    instant = record.sort_time()
    if instant is None:
        return None
    for name in type(record).model_fields:
        moment = getattr(record, name)
        if isinstance(moment, PartialDateTime) and moment.start == instant:
            return moment
    return None


def local_date(moment: PartialDateTime | None) -> date | None:
    """The calendar day of a moment in the zone its source wrote (a lab's collection day)."""
    return None if moment is None else moment.local_start().date()


def format_number(value: float) -> str:
    """A number as a statement shows it: three significant digits or so, no trailing zeros.

    Statements round; ``Fact.values`` keeps the full-precision numbers behind them.
    """
    size = abs(value)
    if size >= 100:
        text = f"{value:.0f}"
    elif size >= 10:
        text = f"{value:.1f}"
    elif size >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# UCUM codes as people write them, for statements (values keep the UCUM code).
_UNIT_LABELS: Final[dict[str, str]] = {
    "10*3/uL": "×10³/µL",
    "10*6/uL": "×10⁶/µL",
    "10*9/L": "×10⁹/L",
    "10*12/L": "×10¹²/L",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
    "u[IU]/mL": "µIU/mL",
    "m[IU]/L": "mIU/L",
    "[IU]/L": "IU/L",
    "{INR}": "",
    "mm[Hg]": "mmHg",
    "ug/dL": "µg/dL",
    "ug/mL": "µg/mL",
    "ug/L": "µg/L",
    "umol/L": "µmol/L",
    "Cel": "°C",
    "[degF]": "°F",
    "{steps}": "steps",
    "kg/m2": "kg/m²",
}


def unit_label(unit: str | None) -> str:
    """A UCUM code as a person would write it ("10*3/uL" -> "×10³/µL"); "" for none."""
    code = normalize_unit(unit)
    return _UNIT_LABELS.get(code, code)


def with_unit(number: str, unit: str | None) -> str:
    """``"4.2 mmol/L"``: a formatted number and its unit label, no stray space."""
    label = unit_label(unit)
    if not label:
        return number
    return f"{number}{label}" if label.startswith("×") else f"{number} {label}"


@dataclass(frozen=True, slots=True)
class Citation:
    """One stored record a fact stands on (the ``citations`` shape of ``healthspace ask``)."""

    record_id: str
    kind: str
    date: str | None  # ISO 8601, at the precision the source gave
    source: str  # provenance source ("fhir", "ccda", ...), "unknown" when none was kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "kind": self.kind,
            "date": self.date,
            "source": self.source,
        }


def citation_of(stored: StoredRecord) -> Citation:
    """The citation of a stored record."""
    record = stored.record
    moment = record_moment(record)
    provenance = record.provenance
    return Citation(
        record_id=stored.record_id,
        kind=stored.kind,
        date=moment.isoformat() if moment is not None else None,
        source=provenance.source if provenance is not None else "unknown",
    )


def unique_citations(citations: Iterable[Citation]) -> tuple[Citation, ...]:
    """Citations without repeats, first occurrence first."""
    seen: dict[str, Citation] = {}
    for citation in citations:
        seen.setdefault(citation.record_id, citation)
    return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class SampleWindow:
    """Days of a time series a fact summarises: ``start`` to ``end`` inclusive (UTC days)."""

    metric: str
    start: date
    end: date
    days_with_data: int
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days_with_data": self.days_with_data,
            "samples": self.samples,
        }


@dataclass(frozen=True, slots=True)
class Fact:
    """One statement computed from the person's data, with what it stands on.

    ``topic`` names what kind of fact it is ("lab.result", "lab.trend", "lab.critical",
    "condition.active", ...); ``values`` holds the numbers and labels the statement
    uses, so a grounding check can find every stated number in the data.
    """

    topic: str
    statement: str
    citations: tuple[Citation, ...]
    windows: tuple[SampleWindow, ...] = ()
    values: Mapping[str, float | int | str | bool | None] = field(default_factory=dict)
    severity: Severity = "info"

    def record_ids(self) -> tuple[str, ...]:
        return tuple(c.record_id for c in self.citations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "statement": self.statement,
            "severity": self.severity,
            "values": dict(self.values),
            "citations": [c.to_dict() for c in self.citations],
            "windows": [w.to_dict() for w in self.windows],
        }


@dataclass(frozen=True, slots=True)
class Point:
    """One point of a chart: the value in the series unit, and as the source gave it."""

    when: datetime  # UTC instant (the start of the source's period)
    date: str  # ISO 8601 as the source wrote it (zone and precision kept)
    value: float  # in the series' unit
    original_value: float | str | None = None
    original_unit: str | None = None
    flag: Flag | None = None
    record_id: str | None = None  # None for points made from series aggregates

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "value": self.value,
            "original_value": self.original_value,
            "original_unit": self.original_unit,
            "flag": self.flag,
            "record_id": self.record_id,
        }


@dataclass(frozen=True, slots=True)
class Band:
    """The reference band drawn behind a series, in the series' unit.

    ``source`` says where it came from: "reported" (the lab's own range), "typical"
    (a published typical adult range or guideline, named in ``reference``) or
    "personal" (the person's own baseline, e.g. mean ± 2 SD of the previous 28 days).
    """

    low: float | None
    high: float | None
    source: Literal["reported", "typical", "personal"]
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "source": self.source,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class Series:
    """A chart-ready series: points in one unit, oldest first, with a reference band."""

    key: str  # analyte id or metric name
    label: str
    unit: str
    points: tuple[Point, ...]
    band: Band | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "points": [p.to_dict() for p in self.points],
            "band": self.band.to_dict() if self.band is not None else None,
        }
