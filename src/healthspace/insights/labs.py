"""Lab results: per-analyte trends, the latest bloodwork, out-of-range and critical values.

Results are grouped by analyte: LOINC codes that name the same analyte (LDL measured
directly, calculated, or in mmol/L) fall under one catalogue entry and are shown in its
canonical unit, with the value as recorded kept beside it. Each result is judged against
the range the laboratory sent with it; only when none came is the catalogue's typical
adult range used, and then it is marked ``source="typical"`` with its publication named.
Values at or beyond a published critical limit are marked so the assistant escalates.

Reads go through the store only: :meth:`Labs.load` reads every observation of a space,
:meth:`Labs.for_analyte` only those whose primary code is one of the analyte's LOINC
codes (an indexed lookup, for a single trend).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from healthspace.insights._labs_flags import CriticalMark, RangeUsed
from healthspace.insights._labs_results import LabResult, build_result
from healthspace.insights._labs_trend import LabTrend, build_trend, least_squares_slope
from healthspace.insights.catalogue import Catalogue, CatalogueAnalyte, catalogue
from healthspace.insights.facts import Fact, Severity, unique_citations
from healthspace.model import LOINC, Code, Patient, canonical_unit, is_valid_loinc
from healthspace.store import RecordRepository, SpaceSession, StoredRecord

__all__ = [
    "CriticalMark",
    "LabResult",
    "LabTrend",
    "Labs",
    "Panel",
    "RangeUsed",
    "lab_results",
    "latest_panel",
    "least_squares_slope",
    "patient_sex",
    "resolve_analyte",
    "trend",
]


def resolve_analyte(key: str, cat: Catalogue | None = None) -> tuple[str, CatalogueAnalyte | None]:
    """(analyte key, catalogue entry) for an id, a LOINC code or an ``loinc:``/``code:`` key."""
    cat = cat or catalogue()
    found = cat.resolve(key.strip())
    if found is not None:
        return found.id, found
    if key.startswith("loinc:") and (hit := cat.by_loinc(key[len("loinc:") :])) is not None:
        return hit.id, hit
    if is_valid_loinc(key.strip()):
        return f"loinc:{key.strip()}", None
    return key, None


def patient_sex(repo: RecordRepository) -> str | None:
    """The person's sex when their Patient records state one consistently, else None."""
    sexes = {
        stored.record.sex
        for stored in repo.list(kind="patient")
        if isinstance(stored.record, Patient) and stored.record.sex in ("female", "male")
    }
    return sexes.pop() if len(sexes) == 1 else None


@dataclass(frozen=True, slots=True)
class Panel:
    """Every lab result collected on one day (in the zone the source wrote)."""

    collected: date
    results: tuple[LabResult, ...]

    def out_of_range(self) -> tuple[LabResult, ...]:
        return tuple(r for r in self.results if r.range_flag in ("high", "low", "abnormal"))

    def critical(self) -> tuple[LabResult, ...]:
        return tuple(r for r in self.results if r.critical is not None)

    def summary(self) -> Fact:
        flagged = self.out_of_range()
        text = f"Lab results of {self.collected.isoformat()}: {len(self.results)} results"
        if flagged:
            listed = ", ".join(f"{r.name} {r.range_flag}" for r in flagged)
            text += f"; {len(flagged)} outside their range ({listed})"
        else:
            text += "; none outside their range"
        critical = self.critical()
        if critical:
            text += f"; {len(critical)} at a critical value ({', '.join(r.name for r in critical)})"
        values: dict[str, float | int | str | bool | None] = {
            "date": self.collected.isoformat(),
            "results": len(self.results),
            "out_of_range": len(flagged),
            "critical": len(critical),
        }
        severity: Severity = "critical" if critical else ("warning" if flagged else "info")
        citations = unique_citations(r.citation for r in self.results)
        return Fact("lab.panel", text + ".", citations, (), values, severity)

    def facts(self) -> tuple[Fact, ...]:
        return (self.summary(), *(r.fact() for r in self.results))

    def to_dict(self) -> dict[str, Any]:
        return {
            "collected": self.collected.isoformat(),
            "results": [r.to_dict() for r in self.results],
            "summary": self.summary().to_dict(),
        }


class Labs:
    """The lab results of one space (or of one analyte), ready for questions."""

    def __init__(
        self, results: Iterable[LabResult], *, sex: str | None = None, cat: Catalogue | None = None
    ) -> None:
        self.catalogue = cat or catalogue()
        self.sex = sex
        self.results = tuple(
            sorted(results, key=lambda r: (r.when is None, r.when, r.analyte_id, r.source_id))
        )
        self._by_analyte: dict[str, list[LabResult]] = defaultdict(list)
        for result in self.results:
            self._by_analyte[result.analyte_id].append(result)

    @classmethod
    def from_records(cls, records: Iterable[StoredRecord], *, sex: str | None = None) -> Labs:
        cat = catalogue()
        built = (build_result(stored, cat, sex) for stored in records)
        return cls((r for r in built if r is not None), sex=sex, cat=cat)

    @classmethod
    def load(cls, session: SpaceSession) -> Labs:
        """Every lab result of the space."""
        repo = RecordRepository(session)
        sex = patient_sex(repo)
        return cls.from_records(repo.iter(kind="observation"), sex=sex)

    @classmethod
    def for_analyte(cls, session: SpaceSession, analyte: str) -> Labs:
        """The results of one analyte, found by their primary code (indexed lookups)."""
        repo = RecordRepository(session)
        key, entry = resolve_analyte(analyte)
        if entry is not None:
            codes = [Code(system=LOINC, code=c) for c in entry.loinc]
        elif key.startswith("loinc:"):
            codes = [Code(system=LOINC, code=key[len("loinc:") :])]
        elif key.startswith("code:") and "|" in key:
            system, _, value = key[len("code:") :].rpartition("|")
            codes = [Code(system=system, code=value)]
        else:
            codes = []
        found: dict[str, StoredRecord] = {}
        for code in codes:
            for stored in repo.list(kind="observation", code=code):
                found.setdefault(stored.record_id, stored)
        return cls.from_records(found.values(), sex=patient_sex(repo))

    # -- questions ---------------------------------------------------------------------

    def analytes(self) -> list[str]:
        return list(self._by_analyte)

    def results_for(self, analyte: str) -> tuple[LabResult, ...]:
        key, _ = resolve_analyte(analyte, self.catalogue)
        return tuple(self._by_analyte.get(key, ()))

    def trend(self, analyte: str) -> LabTrend | None:
        """The analyte's trend, or None when it has no dated numeric result."""
        key, entry = resolve_analyte(analyte, self.catalogue)
        results = self._by_analyte.get(key, [])
        if not results:
            return None
        if entry is not None:
            name, unit, tolerance = entry.name("en"), entry.unit, entry.trend_tolerance
        else:
            first = results[0]
            name, tolerance = first.name, 0.05
            unit = canonical_unit(first.loinc, first.unit) if first.loinc else first.unit
        return build_trend(key, name, unit, results, tolerance)

    def trends(self, *, min_results: int = 2) -> list[LabTrend]:
        """Trends of every analyte with at least ``min_results`` numeric results."""
        out = [self.trend(key) for key in self._by_analyte]
        return [t for t in out if t is not None and t.n >= min_results]

    def panels(self) -> list[Panel]:
        """Results grouped by collection day, the most recent first."""
        days: dict[date, list[LabResult]] = defaultdict(list)
        for result in self.results:
            if result.collected is not None:
                days[result.collected].append(result)
        return [Panel(day, tuple(days[day])) for day in sorted(days, reverse=True)]

    def latest_panel(self) -> Panel | None:
        """Every lab result of the most recent collection day."""
        panels = self.panels()
        return panels[0] if panels else None

    def latest(self) -> dict[str, LabResult]:
        """The most recent result of each analyte."""
        return {key: results[-1] for key, results in self._by_analyte.items()}

    def out_of_range(self) -> list[LabResult]:
        """Latest results (one per analyte) outside their range, or marked abnormal."""
        return [r for r in self.latest().values() if r.range_flag in ("high", "low", "abnormal")]

    def critical(self) -> list[LabResult]:
        """Every result at or beyond a critical limit."""
        return [r for r in self.results if r.critical is not None]

    def facts(self) -> list[Fact]:
        """The latest panel, every critical result, and every trend, as facts."""
        out: list[Fact] = []
        panel = self.latest_panel()
        if panel is not None:
            out.extend(panel.facts())
        shown = {f.record_ids()[0] for f in out if f.topic in ("lab.result", "lab.critical")}
        out.extend(r.fact() for r in self.critical() if r.record_id not in shown)
        out.extend(t.fact() for t in self.trends())
        return out


def lab_results(session: SpaceSession) -> list[LabResult]:
    """Every lab result of the space, oldest first."""
    return list(Labs.load(session).results)


def trend(session: SpaceSession, analyte: str) -> LabTrend | None:
    """The trend of one analyte (id such as "ldl_cholesterol", or a LOINC code)."""
    return Labs.for_analyte(session, analyte).trend(analyte)


def latest_panel(session: SpaceSession) -> Panel | None:
    """The latest bloodwork: every lab result of the most recent collection day."""
    return Labs.load(session).latest_panel()
