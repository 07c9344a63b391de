"""The active medication list merged across sources, with allergies beside it.

Active: a medication record whose status is "active", or that has no status, and that
has no end date or one in the future. Every other status (completed, stopped,
cancelled, on-hold, entered-in-error, not-taken, draft, unknown) is not active.

Merging: records are the same medication when they share an RxNorm code or the same
normalised name (:func:`normalise_name`: lower case, brand brackets, strengths, dose
forms and salts removed, combination parts sorted). The merged entry keeps the dose,
route and schedule of its most recent record that has them (``doses_differ`` flags
disagreement) and cites every record it merged.

Allergies: active unless their clinical status is inactive/resolved or their
verification status is refuted/entered-in-error. An explicit "no known allergies"
record is stated as such; no allergy records at all is stated as "nothing recorded",
which is not the same thing.

The reminder calendar (iCalendar, RFC 5545) lives in
:mod:`healthspace.insights._medications_calendar` and is re-exported here.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from healthspace.insights._medications_calendar import ReminderExport, reminder_calendar
from healthspace.insights._medications_text import normalise_name, schedule_text
from healthspace.insights.facts import Citation, Fact, citation_of
from healthspace.model import RXNORM, Allergy, Medication, Quantity, Schedule
from healthspace.store import RecordRepository, SpaceSession, StoredRecord

__all__ = [
    "AllergyEntry",
    "AllergyList",
    "MedicationEntry",
    "MedicationList",
    "ReminderExport",
    "active_medications",
    "allergy_list",
    "is_active",
    "merge_medications",
    "normalise_name",
    "reminder_calendar",
    "schedule_text",
]

_INACTIVE_ALLERGY: Final = frozenset({"inactive", "resolved"})
_UNVERIFIED: Final = frozenset({"refuted", "entered-in-error"})


def is_active(medication: Medication, now: datetime) -> bool:
    """Status "active" (or none given) and no end, or an end after ``now``."""
    status = (medication.status or "active").strip().lower()
    if status != "active":
        return False
    return medication.end is None or medication.end.end() > now


@dataclass(frozen=True, slots=True)
class MedicationEntry:
    """One medication, merged across every record and source that lists it."""

    key: str  # the normalised name
    name: str  # as the most recent record displays it
    rxnorm: tuple[str, ...]
    dose: Quantity | None
    route: str | None
    schedule: Schedule | None
    schedule_text: str | None
    start: str | None  # the earliest start given, ISO 8601 as written
    end: str | None  # the latest end given, if any
    sources: tuple[str, ...]
    doses_differ: bool
    citations: tuple[Citation, ...]

    def record_ids(self) -> tuple[str, ...]:
        return tuple(c.record_id for c in self.citations)

    def dose_text(self) -> str | None:
        """The dose as written: "500 mg"; a count without a unit is doses ("1 dose")."""
        if self.dose is None:
            return None
        if self.dose.unit:
            return str(self.dose)
        value = self.dose.value
        return f"{value:g} dose" if value == 1 else f"{value:g} doses"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "rxnorm": list(self.rxnorm),
            "dose": self.dose_text(),
            "route": self.route,
            "schedule": self.schedule_text,
            "start": self.start,
            "end": self.end,
            "sources": list(self.sources),
            "doses_differ": self.doses_differ,
            "citations": [c.to_dict() for c in self.citations],
        }


@dataclass(frozen=True, slots=True)
class AllergyEntry:
    key: str
    name: str
    category: str | None
    criticality: str | None
    reactions: tuple[str, ...]
    severity: str | None  # the worst reaction severity given
    citations: tuple[Citation, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "category": self.category,
            "criticality": self.criticality,
            "reactions": list(self.reactions),
            "severity": self.severity,
            "citations": [c.to_dict() for c in self.citations],
        }


@dataclass(frozen=True, slots=True)
class AllergyList:
    entries: tuple[AllergyEntry, ...]
    no_known_allergies: tuple[Citation, ...]  # explicit NKA/NKDA records, if any
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "no_known_allergies": [c.to_dict() for c in self.no_known_allergies],
            "facts": [f.to_dict() for f in self.facts],
        }


@dataclass(frozen=True, slots=True)
class MedicationList:
    as_of: datetime
    medications: tuple[MedicationEntry, ...]
    allergies: AllergyList
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "medications": [m.to_dict() for m in self.medications],
            "allergies": self.allergies.to_dict(),
            "facts": [f.to_dict() for f in self.facts],
        }


# -- merging ------------------------------------------------------------------------------


def _rxnorm_codes(medication: Medication) -> set[str]:
    codes = [medication.code, *medication.codes]
    return {c.code for c in codes if c is not None and c.system == RXNORM}


def _groups(items: Sequence[tuple[StoredRecord, Medication]]) -> list[list[int]]:
    """Union-find over shared RxNorm codes and shared normalised names."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_by_label: dict[str, int] = {}
    for i, (_, med) in enumerate(items):
        labels = {f"rx:{c}" for c in _rxnorm_codes(med)} | {f"name:{normalise_name(med)}"}
        for label in labels:
            j = first_by_label.setdefault(label, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        groups[find(i)].append(i)
    return list(groups.values())


def _latest(meds: list[tuple[StoredRecord, Medication]]) -> list[tuple[StoredRecord, Medication]]:
    """Most recent first: by start/authored time, then record id for a stable order."""
    floor = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(meds, key=lambda p: (p[1].sort_time() or floor, p[0].record_id))
    return ordered[::-1]


def _common_name(meds: list[tuple[StoredRecord, Medication]]) -> str:
    """The normalised name most records use (ties: alphabetical), e.g. not a brand."""
    counts = Counter(normalise_name(m) for _, m in meds)
    return min(counts, key=lambda name: (-counts[name], name))


def _entry(meds: list[tuple[StoredRecord, Medication]]) -> MedicationEntry:
    latest = _latest(meds)
    newest = latest[0][1]
    with_dose = next((m for _, m in latest if m.dose is not None), None)
    with_schedule = next((m for _, m in latest if m.schedule is not None), None)
    doses = {str(m.dose) for _, m in meds if m.dose is not None}
    starts = [m.start for _, m in meds if m.start is not None]
    ends = [m.end for _, m in meds if m.end is not None]
    schedule = with_schedule.schedule if with_schedule is not None else None
    return MedicationEntry(
        key=_common_name(meds),
        name=newest.display_text(),
        rxnorm=tuple(sorted({c for _, m in meds for c in _rxnorm_codes(m)})),
        dose=with_dose.dose if with_dose is not None else None,
        route=next((m.route for _, m in latest if m.route), None),
        schedule=schedule,
        schedule_text=schedule_text(schedule) if schedule is not None else None,
        start=min(starts, key=lambda p: p.start).isoformat() if starts else None,
        end=max(ends, key=lambda p: p.end()).isoformat() if ends else None,
        sources=tuple(
            sorted({m.provenance.source if m.provenance else "unknown" for _, m in meds})
        ),
        doses_differ=len(doses) > 1,
        citations=tuple(citation_of(s) for s, _ in sorted(meds, key=lambda p: p[0].record_id)),
    )


def merge_medications(
    stored: Iterable[StoredRecord], *, now: datetime | None = None
) -> list[MedicationEntry]:
    """The active medications among ``stored``, merged, sorted by name."""
    now = now or datetime.now(UTC)
    items = [
        (s, s.record)
        for s in stored
        if isinstance(s.record, Medication) and is_active(s.record, now)
    ]
    entries = [_entry([items[i] for i in group]) for group in _groups(items)]
    return sorted(entries, key=lambda e: (e.key, e.name))


def _medication_fact(entry: MedicationEntry) -> Fact:
    parts = [entry.name]
    if entry.dose is not None:
        parts.append(entry.dose_text() or "")
    if entry.schedule_text:
        parts.append(entry.schedule_text)
    sources = ", ".join(entry.sources)
    n = len(entry.citations)
    statement = f"Active medication: {', '.join(parts)} (from {sources}; {n} record"
    statement += "s)." if n != 1 else ")."
    if entry.doses_differ:
        statement += " The sources give different doses; the most recent is shown."
    return Fact(
        "medication.active",
        statement,
        entry.citations,
        values={
            "name": entry.name,
            "dose": entry.dose_text(),
            "schedule": entry.schedule_text,
            "records": n,
        },
        severity="notice" if entry.doses_differ else "info",
    )


# -- allergies ----------------------------------------------------------------------------

_SEVERITY_ORDER: Final = {"mild": 1, "moderate": 2, "severe": 3}
_WORD = re.compile(r"[a-z0-9]+")


def _allergy_key(allergy: Allergy) -> str:
    code = allergy.code
    if code is not None:
        return f"{code.system}|{code.code}"
    return " ".join(_WORD.findall(allergy.display_text().lower()))


def _valid(allergy: Allergy) -> bool:
    verification = (allergy.verification_status or "").lower()
    return verification not in _UNVERIFIED


def allergy_list(stored: Iterable[StoredRecord]) -> AllergyList:
    """Active allergies merged by substance code (or name), and explicit NKA records."""
    groups: dict[str, list[tuple[StoredRecord, Allergy]]] = defaultdict(list)
    nka: list[Citation] = []
    for s in stored:
        record = s.record
        if not isinstance(record, Allergy) or not _valid(record):
            continue
        if record.no_known_allergy:
            nka.append(citation_of(s))
        elif (record.clinical_status or "active").lower() not in _INACTIVE_ALLERGY:
            groups[_allergy_key(record)].append((s, record))
    entries = []
    for key, items in sorted(groups.items()):
        allergies = [a for _, a in items]
        severities = [r.severity for a in allergies for r in a.reactions if r.severity]
        reactions = sorted(
            {r.manifestation for a in allergies for r in a.reactions if r.manifestation}
        )
        entries.append(
            AllergyEntry(
                key=key,
                name=allergies[0].display_text(),
                category=next((a.category for a in allergies if a.category), None),
                criticality=next((a.criticality for a in allergies if a.criticality), None),
                reactions=tuple(reactions),
                severity=max(severities, key=_SEVERITY_ORDER.__getitem__) if severities else None,
                citations=tuple(citation_of(s) for s, _ in items),
            )
        )
    return AllergyList(tuple(entries), tuple(nka), tuple(_allergy_facts(entries, nka)))


def _allergy_facts(entries: list[AllergyEntry], nka: list[Citation]) -> list[Fact]:
    if entries:
        facts = []
        for entry in entries:
            text = f"Allergy: {entry.name}"
            if entry.reactions:
                text += f" (reaction: {', '.join(entry.reactions)})"
            if entry.criticality:
                text += f", criticality {entry.criticality}"
            facts.append(
                Fact(
                    "allergy.active",
                    text + ".",
                    entry.citations,
                    values={"name": entry.name, "criticality": entry.criticality},
                    severity="notice" if entry.criticality == "high" else "info",
                )
            )
        if nka:
            facts.append(
                Fact(
                    "allergy.conflict",
                    "A record also says 'no known allergies'; the allergies listed above were "
                    "recorded as well.",
                    tuple(nka),
                    severity="notice",
                )
            )
        return facts
    if nka:
        dates = sorted(c.date for c in nka if c.date)
        when = f" (recorded {dates[-1]})" if dates else ""
        return [Fact("allergy.none_known", f"No known allergies{when}.", tuple(nka))]
    return [
        Fact(
            "allergy.not_recorded",
            "No allergy information is recorded, which is not the same as having none.",
            (),
        )
    ]


def active_medications(session: SpaceSession, *, now: datetime | None = None) -> MedicationList:
    """The merged active medication list and the allergy list, as of ``now``."""
    now = now or datetime.now(UTC)
    repo = RecordRepository(session)
    entries = merge_medications(repo.list(kind="medication"), now=now)
    allergies = allergy_list(repo.list(kind="allergy"))
    facts = [_medication_fact(e) for e in entries]
    if not entries:
        facts.append(Fact("medication.none_active", "No active medications are recorded.", ()))
    return MedicationList(now, tuple(entries), allergies, (*facts, *allergies.facts))
