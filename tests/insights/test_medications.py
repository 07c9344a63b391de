"""The merged active medication list, allergies, and the reminder calendar parsed back."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from icalendar import Calendar

from healthspace.insights.medications import (
    active_medications,
    allergy_list,
    normalise_name,
    reminder_calendar,
)
from healthspace.model import (
    RXNORM,
    SNOMED,
    Allergy,
    Code,
    Medication,
    PartialDateTime,
    Provenance,
    Quantity,
    Reaction,
    Schedule,
)
from healthspace.store import RecordRepository, SpaceSession, ingest

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
METFORMIN = Code(system=RXNORM, code="860975", display="Metformin hydrochloride 500 MG Oral Tablet")


def med(
    sid: str,
    *,
    text: str | None = None,
    code: Code | None = None,
    status: str | None = "active",
    dose: tuple[float, str] | None = None,
    schedule: Schedule | None = None,
    start: str | None = None,
    end: str | None = None,
    source: str = "fhir",
    note: str | None = None,
) -> Medication:
    return Medication(
        source_id=sid,
        medication_kind="request" if source == "fhir" else "statement",
        code=code,
        text=text,
        status=status,
        dose=Quantity(value=dose[0], unit=dose[1]) if dose else None,
        schedule=schedule,
        start=PartialDateTime.parse(start) if start else None,
        end=PartialDateTime.parse(end) if end else None,
        note=note,
        provenance=Provenance(source=source),
    )


def records(canary: str) -> list[Medication]:
    twice = Schedule(frequency=2, period=1, period_unit="d", times_of_day=("07:30", "19:30"))
    return [
        med(
            "m1", code=METFORMIN, dose=(500, "mg"), schedule=twice, start="2023-01-10", note=canary
        ),
        med(
            "m2",
            text="metformin 500 mg tablet",
            status=None,
            dose=(500, "mg"),
            start="2022-05-01",
            source="ccda",
        ),
        # The brand name alone, but the same RxNorm code: merged by code.
        med(
            "m3",
            text="Glucophage",
            code=METFORMIN,
            dose=(1000, "mg"),
            start="2024-02-01",
            source="smart",
        ),
        med(
            "m4",
            text="Lisinopril 10 MG Oral Tablet",
            dose=(10, "mg"),
            start="2024-01-01",
            end="2024-12-31",
            schedule=Schedule(frequency=1, period=1, period_unit="d"),
        ),
        med("m5", text="Simvastatin 20 MG Oral Tablet", status="stopped", start="2020-01-01"),
        med("m6", text="Atorvastatin 40 MG Oral Tablet", start="2021-01-01", end="2023-01-01"),
        med(
            "m7",
            text="Ibuprofen 200 MG Oral Tablet",
            start="2024-03-01",
            schedule=Schedule(as_needed=True, as_needed_reason="pain"),
        ),
        med(
            "m8",
            text="Amoxicillin 500 MG Oral Capsule",
            dose=(500, "mg"),
            start="2024-05-28",
            end="2024-06-06",
            schedule=Schedule(frequency=1, period=8, period_unit="h"),
        ),
        med(
            "m9",
            text="Cholecalciferol 50000 UNT Oral Capsule",
            start="2024-04-01",
            schedule=Schedule(frequency=1, period=1, period_unit="wk"),
        ),
        med("m10", text="Warfarin Sodium 5 MG Oral Tablet", status="entered-in-error"),
    ]


@pytest.fixture
def stored(health: SpaceSession, canary: str) -> None:
    ingest(health, records(canary), source="test", input_sha256="7" * 64)


def test_normalised_names() -> None:
    assert (
        normalise_name("Metformin hydrochloride 500 MG Extended Release Oral Tablet") == "metformin"
    )
    assert normalise_name("metformin 500 mg tablet") == "metformin"
    assert normalise_name("Warfarin Sodium 5 MG Oral Tablet [Coumadin]") == "warfarin"
    assert normalise_name("Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet") == (
        "amoxicillin / clavulanate"
    )
    # A salt that is the drug itself stays.
    assert normalise_name("ferrous sulfate 325 MG Oral Tablet") == "ferrous sulfate"
    assert normalise_name("Potassium Chloride 20 MEQ Extended Release Tablet") == (
        "potassium chloride"
    )


def test_active_list_merges_across_sources(health: SpaceSession, stored: None) -> None:
    result = active_medications(health, now=NOW)
    by_key = {m.key: m for m in result.medications}
    assert set(by_key) == {"metformin", "lisinopril", "ibuprofen", "amoxicillin", "cholecalciferol"}
    ids = {
        s.record.source_id: s.record_id for s in RecordRepository(health).list(kind="medication")
    }
    metformin = by_key["metformin"]
    assert set(metformin.record_ids()) == {ids["m1"], ids["m2"], ids["m3"]}
    assert metformin.sources == ("ccda", "fhir", "smart")
    assert metformin.rxnorm == ("860975",)
    # The most recent record (2024-02-01) gives the dose; the schedule comes from m1.
    assert metformin.dose is not None
    assert metformin.dose.value == 1000
    assert metformin.doses_differ
    assert metformin.schedule_text == "twice a day at 07:30, 19:30"
    assert metformin.start == "2022-05-01"
    assert by_key["ibuprofen"].schedule_text == "as needed for pain"
    assert by_key["amoxicillin"].schedule_text == "every 8 hours"
    facts = [f for f in result.facts if f.topic == "medication.active"]
    assert len(facts) == 5
    metformin_fact = next(f for f in facts if f.values["name"] == metformin.name)
    assert "3 records" in metformin_fact.statement
    assert metformin_fact.severity == "notice"
    cited = {c.record_id for f in facts for c in f.citations}
    assert cited.isdisjoint({ids["m5"], ids["m6"], ids["m10"]})  # stopped, ended, in error


def _events(ics: bytes) -> dict[str, list]:
    cal = Calendar.from_ical(ics)
    out: dict[str, list] = {}
    for event in cal.walk("VEVENT"):
        out.setdefault(str(event.get("summary")), []).append(event)
    return out


def test_reminder_calendar_round_trip(health: SpaceSession, stored: None, canary: str) -> None:
    meds = active_medications(health, now=NOW).medications
    export = reminder_calendar(meds, start=date(2024, 6, 1), now=NOW)
    events = _events(export.ics)
    # metformin 2 times + lisinopril 1 + amoxicillin 3 (every 8 h) + cholecalciferol 1.
    assert export.events == 7
    assert sum(len(v) for v in events.values()) == 7
    assert [name for name, _ in export.skipped] == ["Ibuprofen 200 MG Oral Tablet"]
    metformin = events["Take Glucophage (1000 mg)"]
    assert sorted(e.decoded("dtstart").time() for e in metformin) == [time(7, 30), time(19, 30)]
    for e in metformin:
        rule = e.get("rrule")
        assert rule["FREQ"] == ["DAILY"]
        assert rule["INTERVAL"] == [1]
        assert "UNTIL" not in rule
        assert e.decoded("dtstart").date() == date(2024, 6, 1)
        assert e.decoded("dtstart").tzinfo is None  # floating: local wherever the person is
        assert e.walk("VALARM")
    lisinopril = events["Take Lisinopril 10 MG Oral Tablet (10 mg)"]
    assert [e.decoded("dtstart").time() for e in lisinopril] == [time(8, 0)]
    assert lisinopril[0].get("rrule")["UNTIL"] == [datetime(2024, 12, 31, 23, 59, 59)]
    amoxicillin = events["Take Amoxicillin 500 MG Oral Capsule (500 mg)"]
    assert sorted(e.decoded("dtstart").time() for e in amoxicillin) == [
        time(0, 0),
        time(8, 0),
        time(16, 0),
    ]
    assert {e.get("rrule")["UNTIL"][0].date() for e in amoxicillin} == {date(2024, 6, 6)}
    vitamin = events["Take Cholecalciferol 50000 UNT Oral Capsule"][0]
    assert vitamin.get("rrule")["FREQ"] == ["WEEKLY"]
    # Only what was asked for: no notes; stable UIDs across exports.
    assert canary.encode() not in export.ics
    again = reminder_calendar(meds, start=date(2024, 6, 1), now=NOW)
    assert again.ics == export.ics


def test_generic_titles_and_time_zone(health: SpaceSession, stored: None) -> None:
    meds = active_medications(health, now=NOW).medications
    export = reminder_calendar(
        meds, start=date(2024, 6, 1), now=NOW, tz="America/Denver", generic_titles=True
    )
    text = export.ics.decode()
    for entry in meds:
        assert entry.name not in text
    cal = Calendar.from_ical(export.ics)
    assert [str(tz.get("tzid")) for tz in cal.walk("VTIMEZONE")] == ["America/Denver"]
    events = cal.walk("VEVENT")
    assert len(events) == export.events == 7
    assert {str(e.get("summary")) for e in events} == {"Medication reminder"}
    for e in events:
        assert e.get("dtstart").params["TZID"] == "America/Denver"
        until = e.get("rrule").get("UNTIL")
        if until:
            assert until[0].tzinfo is not None
            assert until[0].utcoffset().total_seconds() == 0


def allergy(sid: str, **fields: object) -> Allergy:
    return Allergy(source_id=sid, provenance=Provenance(source="fhir"), **fields)  # type: ignore[arg-type]


def test_allergies_beside_the_list(health: SpaceSession) -> None:
    penicillin = Code(system=SNOMED, code="373270004", display="Penicillin")
    ingest(
        health,
        [
            allergy(
                "a1",
                code=penicillin,
                criticality="high",
                clinical_status="active",
                reactions=(Reaction(manifestation="Hives", severity="moderate"),),
            ),
            allergy(
                "a2",
                code=penicillin,
                reactions=(Reaction(manifestation="Rash", severity="severe"),),
            ),
            allergy("a3", text="Latex", verification_status="refuted"),
            allergy("a4", text="Shellfish", clinical_status="resolved"),
        ],
        source="test",
        input_sha256="8" * 64,
    )
    result = active_medications(health, now=NOW).allergies
    assert [e.name for e in result.entries] == ["Penicillin"]
    entry = result.entries[0]
    assert entry.reactions == ("Hives", "Rash")
    assert entry.severity == "severe"
    assert len(entry.citations) == 2
    assert [f.topic for f in result.facts] == ["allergy.active"]
    assert result.facts[0].severity == "notice"


def test_no_known_allergies_is_not_missing_information(health: SpaceSession) -> None:
    assert [f.topic for f in allergy_list([]).facts] == ["allergy.not_recorded"]
    ingest(
        health,
        [allergy("nka", no_known_allergy=True, recorded=PartialDateTime.parse("2023-04-05"))],
        source="test",
        input_sha256="9" * 64,
    )
    result = active_medications(health, now=NOW)
    assert result.allergies.entries == ()
    fact = next(f for f in result.facts if f.topic.startswith("allergy"))
    assert fact.topic == "allergy.none_known"
    assert "No known allergies (recorded 2023-04-05)" in fact.statement
    assert [f.topic for f in result.facts if f.topic.startswith("medication")] == [
        "medication.none_active"
    ]
