"""Section builders of the visit brief: what changed, conditions, vitals and activity.

Each builder returns facts; every fact cites the records (or series days) it states.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final

from healthspace.insights.facts import (
    Fact,
    SampleWindow,
    citation_of,
    format_number,
    local_date,
    record_moment,
    unique_citations,
    with_unit,
)
from healthspace.insights.labs import Labs
from healthspace.model import LOINC, Condition, Observation, QuantityValue
from healthspace.store import SeriesRepository, SpaceSession, StoredRecord

__all__ = [
    "activity_facts",
    "changes_since",
    "condition_facts",
    "is_active_condition",
    "last_encounter",
    "vital_facts",
]

_ACTIVE_CONDITION: Final = frozenset({"active", "recurrence", "relapse"})
_REFUTED: Final = frozenset({"refuted", "entered-in-error"})
# Vital signs shown from records: LOINC code -> label. Blood pressure comes from the
# systolic/diastolic components of a panel (85354-9, or Synthea's 55284-4).
_VITALS: Final[dict[str, str]] = {
    "29463-7": "Body weight",
    "39156-5": "Body mass index",
    "8867-4": "Heart rate",
    "8310-5": "Body temperature",
    "59408-5": "Oxygen saturation",
    "9279-1": "Respiratory rate",
}
_SYSTOLIC: Final = "8480-6"
_DIASTOLIC: Final = "8462-4"


def _day(stored: StoredRecord) -> date | None:
    return local_date(record_moment(stored.record))


def _with_note(text: str, note: str | None) -> str:
    return f"{text} Note: {note.strip()}" if note and note.strip() else text


def last_encounter(encounters: Sequence[StoredRecord], before: date) -> StoredRecord | None:
    """The most recent encounter that began before ``before``."""
    dated = [(d, s) for s in encounters if (d := _day(s)) is not None and d < before]
    if not dated:
        return None
    return max(dated, key=lambda pair: (pair[0], pair[1].record.source_id))[1]


def is_active_condition(condition: Condition) -> bool:
    if (condition.verification_status or "").lower() in _REFUTED:
        return False
    status = (condition.clinical_status or "").lower()
    if status:
        return status in _ACTIVE_CONDITION
    return condition.abatement is None


def condition_facts(conditions: Sequence[StoredRecord]) -> list[Fact]:
    facts = []
    for stored in conditions:
        record = stored.record
        if not isinstance(record, Condition) or not is_active_condition(record):
            continue
        onset = local_date(record.onset)
        since = onset.isoformat() if onset else record.onset_text
        text = f"Active condition: {record.display_text()}"
        text += f" (since {since})." if since else "."
        facts.append(
            Fact(
                "condition.active",
                _with_note(text, record.note),
                (citation_of(stored),),
                values={"name": record.display_text(), "since": since},
            )
        )
    return facts


_KIND_WORDS: Final = {
    "condition": ("new condition", "new conditions"),
    "medication": ("medication record", "medication records"),
    "immunization": ("immunization", "immunizations"),
    "procedure": ("procedure", "procedures"),
    "encounter": ("visit", "visits"),
    "report": ("report", "reports"),
    "document": ("document", "documents"),
}


def changes_since(
    since: date, today: date, labs: Labs, records: Sequence[StoredRecord]
) -> list[Fact]:
    """Lab panels and other records dated after ``since`` (up to ``today``)."""
    facts = [
        panel.summary() for panel in reversed(labs.panels()) if since < panel.collected <= today
    ]
    for kind, (one, many) in _KIND_WORDS.items():
        new = [s for s in records if s.kind == kind and (d := _day(s)) and since < d <= today]
        if not new:
            continue
        names = sorted({s.record.display_text() for s in new})
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        text = f"{len(new)} {one if len(new) == 1 else many} since {since.isoformat()}: {shown}."
        facts.append(
            Fact(
                f"change.{kind}",
                text,
                unique_citations(citation_of(s) for s in new),
                values={"kind": kind, "count": len(new), "since": since.isoformat()},
            )
        )
    return facts


def _loinc(obs: Observation) -> set[str]:
    return {c.code for c in (obs.code, *obs.codes) if c.system == LOINC}


def _component(obs: Observation, code: str) -> QuantityValue | None:
    for component in obs.components:
        codes = {c.code for c in (component.code, *component.codes) if c.system == LOINC}
        if code in codes and isinstance(component.value, QuantityValue):
            return component.value
    return None


def vital_facts(observations: Sequence[StoredRecord], today: date, days: int = 365) -> list[Fact]:
    """The latest of each vital sign recorded within ``days`` days before ``today``."""
    earliest = today - timedelta(days=days)
    latest: dict[str, tuple[date, StoredRecord, str]] = {}
    for stored in observations:
        obs = stored.record
        if not isinstance(obs, Observation):
            continue
        codes = _loinc(obs)
        systolic, diastolic = _component(obs, _SYSTOLIC), _component(obs, _DIASTOLIC)
        found: list[tuple[str, str]] = []
        if systolic is not None and diastolic is not None:
            sq, dq = systolic.quantity, diastolic.quantity
            pair = f"{format_number(sq.value)}/{format_number(dq.value)}"
            found.append(("bp", f"Blood pressure {with_unit(pair, sq.unit or dq.unit)}"))
        for code, label in _VITALS.items():
            if code in codes and isinstance(obs.value, QuantityValue):
                q = obs.value.quantity
                found.append((code, f"{label} {with_unit(format_number(q.value), q.unit)}"))
        # Dates only for vital signs: most observations of a space are not.
        day = _day(stored) if found else None
        if day is None or not earliest <= day <= today:
            continue
        for key, text in found:
            current = latest.get(key)
            if current is None or (day, obs.source_id) > (current[0], current[1].record.source_id):
                latest[key] = (day, stored, text)
    facts = []
    for day, stored, text in sorted(latest.values(), key=lambda v: (v[2], v[0])):
        facts.append(
            Fact(
                "vital.latest",
                f"{text} on {day.isoformat()}.",
                (citation_of(stored),),
                values={"date": day.isoformat()},
            )
        )
    return facts


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _window(
    session: SpaceSession, metric: str, start: date, end: date
) -> list[tuple[date, float, int]]:
    """(day, daily value, samples) for days with data: the sum for steps, else the mean."""
    days = SeriesRepository(session).daily(metric, _ms(start), _ms(end + timedelta(days=1)))
    if metric == "steps":
        return [(d.day, d.sum, d.n) for d in days]
    return [(d.day, d.mean, d.n) for d in days]


def _sample_window(metric: str, rows: list[tuple[date, float, int]]) -> SampleWindow:
    return SampleWindow(metric, rows[0][0], rows[-1][0], len(rows), sum(n for _, _, n in rows))


def activity_facts(session: SpaceSession, today: date, days: int = 30) -> list[Fact]:
    """Steps, resting heart rate and weight from the wearable series over ``days`` days."""
    start = today - timedelta(days=days - 1)
    before_start, before_end = start - timedelta(days=days), start - timedelta(days=1)
    facts: list[Fact] = []
    for metric, label, unit in (
        ("steps", "Steps", "a day"),
        ("resting_heart_rate", "Resting heart rate", "/min"),
        ("body_mass", "Weight (from devices)", "kg"),
    ):
        rows = _window(session, metric, start, today)
        if not rows:
            continue
        window = _sample_window(metric, rows)
        span = f"{window.start.isoformat()} to {window.end.isoformat()}"
        values: dict[str, float | int | str | bool | None] = {"metric": metric}
        if metric == "body_mass":
            first, last = rows[0][1], rows[-1][1]
            values.update(first=first, last=last, change=last - first)
            text = (
                f"{label}: {format_number(last)} kg on {window.end.isoformat()}, "
                f"{format_number(first)} kg on {window.start.isoformat()} "
                f"({'+' if last >= first else ''}{format_number(last - first)} kg)."
            )
            facts.append(Fact("activity.weight", text, (), (window,), values))
            continue
        mean = sum(v for _, v, _ in rows) / len(rows)
        values["mean"] = mean
        text = (
            f"{label}: on average {format_number(mean)} {unit} over the last {days} days "
            f"({window.days_with_data} days with data, {span})"
        )
        windows = [window]
        earlier = _window(session, metric, before_start, before_end)
        if earlier:
            before = sum(v for _, v, _ in earlier) / len(earlier)
            values["previous_mean"] = before
            windows.append(_sample_window(metric, earlier))
            text += f", against {format_number(before)} {unit} in the {days} days before"
        facts.append(Fact(f"activity.{metric}", text + ".", (), tuple(windows), values))
    return facts
