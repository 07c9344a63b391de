"""How much care a person uses per year, from their own records, and the three scenarios.

Per calendar year:

- visits from Encounter records: class EMER -> emergency; IMP/ACUTE/NONAC (or
  "inpatient" in the type) -> inpatient; "urgent" in the type -> urgent care;
  "consult"/"specialist"/"referral" -> specialist; "outpatient" -> outpatient
  (facility); administrative encounters (death certification) are not care; every
  other encounter (ambulatory, virtual, home) -> primary care.
- lab: the number of distinct days with laboratory results (one draw per day).
- drug fills from Medication requests: one 30-day fill per month the request is active
  within the year (start or authored date to its end; an active request without an
  end runs to the year's end); a request with no such period counts 1 + its refills.
  Keyed by RxNorm code (or the normalised name when it has none).
- Claims (EOBs) fill in what records lack: pharmacy claims count fills in years
  without medication requests, and medical claims count visits (inpatient, outpatient,
  else primary care) in years without encounters, so nothing is counted twice.

Scenarios over the chosen years (the ``years`` years up to ``through``, never before
the first year with data; years without data inside that span count as zero):
expected = the mean per year; low = the lowest year (half the expected when there is
only one year); high = the highest year or twice the expected, whichever is more, and
at least one emergency visit and one hospital stay. Drug fills: low = lowest year,
expected = mean, high = highest year (a single year gives the same number for all).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from healthspace.insights._insurance_cost import Usage
from healthspace.insights._medications_text import normalise_name
from healthspace.insights.facts import Citation, citation_of, unique_citations
from healthspace.model import RXNORM, Claim, Encounter, Medication, Observation
from healthspace.store import RecordRepository, SpaceSession, StoredRecord

__all__ = [
    "UtilisationProfile",
    "YearUse",
    "claim_service",
    "encounter_service",
    "profile_from_years",
    "utilisation_history",
]

_INPATIENT: Final = frozenset({"IMP", "ACUTE", "NONAC", "INPATIENT"})
_EMERGENCY: Final = frozenset({"EMER", "EMERGENCY"})
_TAG = re.compile(r"\([^)]*\)")
_NOT_CARE: Final = ("death certification",)
_TWO_DP: Final = Decimal("0.01")


def encounter_service(encounter: Encounter) -> str | None:
    """The service an encounter is costed as; None for administrative ones."""
    klass = (encounter.encounter_class or "").strip().upper()
    text = _TAG.sub(" ", encounter.display_text()).lower()
    if any(word in text for word in _NOT_CARE):
        return None
    if klass in _EMERGENCY or "emergency" in text:
        return "emergency"
    if klass in _INPATIENT or "inpatient" in text:
        return "inpatient"
    if "urgent" in text:
        return "urgent_care"
    if any(word in text for word in ("consult", "specialist", "referral")):
        return "specialist"
    if "outpatient" in text:
        return "outpatient"
    return "primary_care"


def claim_service(claim: Claim) -> str:
    """ "drug" for pharmacy claims, else the medical service a claim stands for."""
    text = " ".join(p for p in (claim.claim_type, claim.facility) if p).lower()
    if "pharm" in text or "pde" in text:
        return "drug"
    if "inpatient" in text:
        return "inpatient"
    if "outpatient" in text or "institutional" in text:
        return "outpatient"
    return "primary_care"


@dataclass(frozen=True, slots=True)
class YearUse:
    """One calendar year of care, counted from records."""

    year: int
    services: dict[str, int] = field(default_factory=dict)
    drugs: dict[str, int] = field(default_factory=dict)
    citations: tuple[Citation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "services": dict(self.services),
            "drugs": dict(self.drugs),
            "records": len(self.citations),
        }


@dataclass(frozen=True, slots=True)
class UtilisationProfile:
    """Low, expected and high use for a year, and what they were estimated from."""

    low: Usage
    expected: Usage
    high: Usage
    basis: str
    years: tuple[YearUse, ...] = ()
    citations: tuple[Citation, ...] = ()

    def scenarios(self) -> dict[str, Usage]:
        return {"low": self.low, "expected": self.expected, "high": self.high}

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "scenarios": {k: v.to_dict() for k, v in self.scenarios().items()},
            "years": [y.to_dict() for y in self.years],
        }


def _d(value: float | int | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(_TWO_DP, rounding=ROUND_HALF_UP)


def profile_from_years(years: Sequence[YearUse], *, basis: str | None = None) -> UtilisationProfile:
    """The three scenarios from counted years (see the module docstring)."""
    if not years:
        empty = Usage()
        return UtilisationProfile(empty, empty, empty, basis or "no history", (), ())
    n = len(years)
    services = sorted({s for y in years for s in y.services})
    drugs = sorted({d for y in years for d in y.drugs})

    def series(name: str, drug: bool) -> list[int]:
        return [(y.drugs if drug else y.services).get(name, 0) for y in years]

    low: dict[str, Decimal] = {}
    expected: dict[str, Decimal] = {}
    high: dict[str, Decimal] = {}
    for s in services:
        counts = series(s, False)
        mean = _d(Decimal(sum(counts)) / n)
        expected[s] = mean
        low[s] = _d(min(counts)) if n > 1 else _d(mean / 2)
        high[s] = max(_d(max(counts)), _d(mean * 2))
    for s in ("emergency", "inpatient"):
        high[s] = max(high.get(s, Decimal(0)), Decimal(1))
    drugs_low = {d: _d(min(series(d, True))) for d in drugs}
    drugs_exp = {d: _d(Decimal(sum(series(d, True))) / n) for d in drugs}
    drugs_high = {d: _d(max(series(d, True))) for d in drugs}
    first, last = years[0].year, years[-1].year
    span = f"{first}" if first == last else f"{first}-{last}"
    return UtilisationProfile(
        low=Usage(low, drugs_low),
        expected=Usage(expected, drugs_exp),
        high=Usage(high, drugs_high),
        basis=basis or f"your records, {span} ({n} year{'s' if n != 1 else ''})",
        years=tuple(years),
        citations=unique_citations(c for y in years for c in y.citations),
    )


def _year(moment: datetime | None) -> int | None:
    return moment.astimezone(UTC).year if moment is not None else None


def _drug_key(med: Medication) -> str:
    codes = [med.code, *med.codes]
    rx = next((c.code for c in codes if c is not None and c.system == RXNORM), None)
    return rx or normalise_name(med)


def _fills(med: Medication, year: int) -> int:
    """30-day fills of a request within ``year`` (see the module docstring)."""
    begin = med.start or med.authored
    if begin is None:
        return 0
    year_start = datetime(year, 1, 1, tzinfo=UTC)
    year_end = datetime(year + 1, 1, 1, tzinfo=UTC)
    if med.end is not None:
        stop = med.end.end()
    elif (med.status or "").lower() == "active":
        stop = year_end
    else:
        return (1 + (med.refills or 0)) if begin.start.year == year else 0
    lo, hi = max(begin.start, year_start), min(stop, year_end)
    if hi <= lo:
        return 0
    months = (hi.year - lo.year) * 12 + hi.month - lo.month + (1 if hi.day > lo.day else 0)
    return max(1, months)


def _count(
    stored: Iterable[StoredRecord], first: int, last: int
) -> dict[int, tuple[Counter[str], Counter[str], list[Citation]]]:
    per: dict[int, tuple[Counter[str], Counter[str], list[Citation]]] = defaultdict(
        lambda: (Counter(), Counter(), [])
    )
    lab_days: dict[int, set[date]] = defaultdict(set)
    claims: list[tuple[int, str, StoredRecord]] = []
    has_visits: set[int] = set()
    has_requests: set[int] = set()
    for item in stored:
        record = item.record
        if isinstance(record, Encounter):
            year = _year(record.sort_time())
            service = encounter_service(record)
            if year is not None and first <= year <= last and service is not None:
                per[year][0][service] += 1
                per[year][2].append(citation_of(item))
                has_visits.add(year)
        elif isinstance(record, Medication) and record.medication_kind == "request":
            for year in range(first, last + 1):
                fills = _fills(record, year)
                if fills:
                    per[year][1][_drug_key(record)] += fills
                    per[year][2].append(citation_of(item))
                    has_requests.add(year)
        elif isinstance(record, Observation) and record.category == "laboratory":
            moment = record.effective or record.issued
            year = _year(record.sort_time())
            if moment is not None and year is not None and first <= year <= last:
                lab_days[year].add(moment.local_start().date())
                per[year][2].append(citation_of(item))
        elif isinstance(record, Claim):
            year = _year(record.sort_time())
            if year is not None and first <= year <= last:
                claims.append((year, claim_service(record), item))
    for year, service, item in claims:
        if service == "drug" and year not in has_requests:
            assert isinstance(item.record, Claim)
            per[year][1][f"claim:{item.record.claim_type or 'pharmacy'}"] += 1
            per[year][2].append(citation_of(item))
        elif service != "drug" and year not in has_visits:
            per[year][0][service] += 1
            per[year][2].append(citation_of(item))
    for year, days in lab_days.items():
        per[year][0]["lab"] += len(days)
    return per


def utilisation_history(
    session: SpaceSession, *, years: int = 3, through: int | None = None
) -> UtilisationProfile:
    """Use per year from the person's records, and the low/expected/high scenarios."""
    repo = RecordRepository(session)
    stored = [
        item
        for kind in ("encounter", "medication", "claim", "observation")
        for item in repo.list(kind=kind)
    ]
    known = [y for s in stored if (y := _year(s.record.sort_time())) is not None]
    if not known:
        return profile_from_years(())
    last = through if through is not None else max(known)
    first = max(min(known), last - years + 1)
    per = _count(stored, first, last)
    counted = [
        YearUse(
            year,
            dict(per[year][0]) if year in per else {},
            dict(per[year][1]) if year in per else {},
            unique_citations(per[year][2]) if year in per else (),
        )
        for year in range(first, last + 1)
    ]
    return profile_from_years(counted)
