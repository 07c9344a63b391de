"""Appointment preparation: what changed since the last visit, results worth raising,
conditions, medications and allergies, recent vitals and activity, and questions to ask.

Deterministic: every line is computed from the person's records and cites them (record
ids, or series days for wearable data). "The last visit" is the most recent Encounter
that began before ``today``, unless a ``since`` date is given. Medications and allergies
come from :func:`healthspace.insights.medications.active_medications` (the list merged
across sources). Rendered as Markdown (:meth:`VisitBrief.to_markdown`) and as a printable
HTML page (:meth:`VisitBrief.to_html`), both escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from healthspace.insights._brief_questions import questions
from healthspace.insights._brief_render import to_html, to_markdown
from healthspace.insights._brief_sections import (
    activity_facts,
    changes_since,
    condition_facts,
    last_encounter,
    vital_facts,
)
from healthspace.insights.facts import Citation, Fact, citation_of, local_date, record_moment
from healthspace.insights.labs import LabResult, Labs, patient_sex
from healthspace.insights.medications import active_medications
from healthspace.store import RecordRepository, SpaceSession, StoredRecord

__all__ = ["BriefSection", "VisitBrief", "visit_brief"]

# Record kinds whose new entries "what changed" lists (labs are listed per panel).
# Trends are shown when their latest result is this recent (or newer than the last visit).
_TREND_DAYS = 730
_CHANGE_KINDS = ("condition", "medication", "immunization", "procedure", "encounter", "report")


@dataclass(frozen=True, slots=True)
class BriefSection:
    key: str
    title: str
    facts: tuple[Fact, ...]
    empty_text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "facts": [f.to_dict() for f in self.facts],
            "empty_text": self.empty_text,
        }


@dataclass(frozen=True, slots=True)
class VisitBrief:
    """The brief: sections of cited facts, ending with questions worth asking."""

    today: date
    since: date | None
    since_basis: Literal["given", "last_encounter", "none"]
    since_citation: Citation | None
    sections: tuple[BriefSection, ...]

    @property
    def heading(self) -> str:
        return f"Visit brief, prepared {self.today.isoformat()}"

    @property
    def subheading(self) -> str:
        if self.since is None:
            return "No earlier visit is on record: this brief summarises everything on file."
        if self.since_basis == "last_encounter":
            return f"Changes since your last recorded visit on {self.since.isoformat()}."
        return f"Changes since {self.since.isoformat()}."

    def section(self, key: str) -> BriefSection:
        return next(s for s in self.sections if s.key == key)

    def facts(self) -> tuple[Fact, ...]:
        return tuple(f for s in self.sections for f in s.facts)

    def record_ids(self) -> set[str]:
        """Every record id the brief cites."""
        ids = {c.record_id for f in self.facts() for c in f.citations}
        if self.since_citation is not None:
            ids.add(self.since_citation.record_id)
        return ids

    def to_markdown(self) -> str:
        return to_markdown(self)

    def to_html(self) -> str:
        return to_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "since_basis": self.since_basis,
            "since_citation": self.since_citation.to_dict() if self.since_citation else None,
            "sections": [s.to_dict() for s in self.sections],
        }


def _recent_critical(labs: Labs, since: date | None) -> list[LabResult]:
    """Critical results that are still current: the latest of their analyte, or new."""
    latest = {r.record_id for r in labs.latest().values()}
    return [
        r
        for r in labs.critical()
        if r.record_id in latest or (since is not None and r.collected and r.collected > since)
    ]


def _recent(result: LabResult, since: date | None, today: date, days: int) -> bool:
    """Collected after the last visit, or within ``days`` days before ``today``."""
    collected = result.collected
    if collected is None:
        return False
    return (since is not None and collected > since) or (today - collected).days <= days


def _with_notes(results: list[LabResult]) -> tuple[Fact, ...]:
    out = []
    for result in results:
        fact = result.fact()
        if result.note and result.note.strip():
            statement = f"{fact.statement} Note: {result.note.strip()}"
            fact = Fact(fact.topic, statement, fact.citations, (), fact.values, fact.severity)
        out.append(fact)
    return tuple(out)


def visit_brief(
    session: SpaceSession,
    *,
    since: date | None = None,
    today: date | None = None,
    activity_days: int = 30,
) -> VisitBrief:
    """Prepare the brief for a visit on ``today`` (default: the current UTC date)."""
    today = today or datetime.now(UTC).date()
    repo = RecordRepository(session)
    sex = patient_sex(repo)
    observations = repo.list(kind="observation")
    labs = Labs.from_records(observations, sex=sex)
    others: list[StoredRecord] = []
    for kind in _CHANGE_KINDS:
        others.extend(repo.list(kind=kind))
    encounters = [s for s in others if s.kind == "encounter"]

    basis: Literal["given", "last_encounter", "none"] = "given" if since else "none"
    since_citation = None
    if since is None and (last := last_encounter(encounters, today)) is not None:
        since_citation = citation_of(last)
        since = local_date(record_moment(last.record))
        basis = "last_encounter"

    critical = _recent_critical(labs, since)
    trends = [
        t
        for t in labs.trends()
        if t.direction in ("up", "down") and _recent(t.last, since, today, _TREND_DAYS)
    ]
    out_of_range = [r for r in labs.out_of_range() if r.critical is None]
    meds = active_medications(session, now=datetime.combine(today, time.max, tzinfo=UTC))
    activity = activity_facts(session, today, activity_days)

    changes: list[Fact] = []
    if since is not None:
        changes = changes_since(since, today, labs, others)
    sections = (
        BriefSection(
            "attention",
            "Needs prompt attention",
            _with_notes(critical),
            "No result on record is at a critical level.",
        ),
        BriefSection(
            "changes",
            f"What changed since {since.isoformat()}" if since else "What changed",
            tuple(changes),
            "Nothing new is recorded since then."
            if since
            else "No earlier visit is recorded to compare with.",
        ),
        BriefSection(
            "results",
            "Latest results outside their range",
            _with_notes(out_of_range),
            "No latest result is outside its range.",
        ),
        BriefSection(
            "trends",
            "Results that are trending",
            tuple(t.fact() for t in trends),
            "No lab result shows a trend beyond its tolerance.",
        ),
        BriefSection(
            "conditions",
            "Active conditions",
            tuple(condition_facts([s for s in others if s.kind == "condition"])),
            "No active condition is recorded.",
        ),
        BriefSection(
            "medications",
            "Medications and allergies",
            meds.facts,
            "No medication or allergy information is recorded.",
        ),
        BriefSection(
            "vitals",
            "Recent vitals and activity",
            (*vital_facts(observations, today), *activity),
            "No vital signs or wearable data from the recent past are recorded.",
        ),
        BriefSection(
            "questions",
            "Questions worth asking",
            tuple(questions(labs, critical, trends, meds, activity, today)),
            "No questions stand out from the records; bring your own.",
        ),
    )
    return VisitBrief(today, since, basis, since_citation, sections)
