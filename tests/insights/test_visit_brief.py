"""The visit brief on a record set built here (every expectation derived from it), and on
an imported Synthea patient: citations exist, rules fire, output is escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from healthspace.insights.catalogue import catalogue
from healthspace.insights.facts import Fact
from healthspace.insights.labs import Labs
from healthspace.insights.visit_brief import visit_brief
from healthspace.model import (
    LOINC,
    SNOMED,
    Allergy,
    AnyRecord,
    Code,
    Condition,
    Encounter,
    Medication,
    Observation,
    ObservationComponent,
    PartialDateTime,
    Patient,
    Provenance,
    Quantity,
    QuantityValue,
    Sample,
)
from healthspace.sources.pipeline import import_paths
from healthspace.store import (
    HealthGrant,
    RecordRepository,
    Space,
    SpaceSession,
    Store,
    ingest,
)
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.vault import MemoryKeySource, Vault
from tests.conftest import SHARED_DATA

TODAY = date(2024, 6, 1)
LAST_VISIT = date(2024, 1, 15)
NOTE = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"
PROV = Provenance(source="test", file_name="brief.json")
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
STEPS_RECENT, STEPS_BEFORE = 5000.0, 8000.0
WEIGHT_FIRST, WEIGHT_LAST = 80.0, 77.0
MMHG = "mm[Hg]"


def pdt(text: str) -> PartialDateTime:
    return PartialDateTime.parse(text)


def q(value: float, unit: str) -> QuantityValue:
    return QuantityValue(quantity=Quantity(value=value, unit=unit))


def lab(
    sid: str, code: str, value: float, unit: str, day: str, note: str | None = None
) -> Observation:
    return Observation(
        source_id=sid,
        code=Code(system=LOINC, code=code),
        category="laboratory",
        value=q(value, unit),
        effective=pdt(day),
        provenance=PROV,
        note=note,
    )


def records() -> list[AnyRecord]:
    return [
        Patient(source_id="patient", sex="female", provenance=PROV),
        Encounter(source_id="enc-1", start=pdt("2023-06-01"), provenance=PROV),
        Encounter(source_id="enc-2", start=pdt(LAST_VISIT.isoformat()), provenance=PROV),
        Encounter(source_id="enc-today", start=pdt(TODAY.isoformat()), provenance=PROV),
        lab("ldl-1", "18262-6", 130, "mg/dL", "2023-06-01"),
        lab("ldl-2", "13457-7", 165, "mg/dL", "2024-05-20", note=NOTE),
        lab("k-1", "2823-3", 6.3, "mmol/L", "2024-05-20"),
        lab("a1c-1", "4548-4", 5.4, "%", "2023-06-01"),
        Condition(
            source_id="htn",
            text="Hypertension",
            code=Code(system=SNOMED, code="38341003"),
            clinical_status="active",
            onset=pdt("2015-03-01"),
            note=NOTE,
            provenance=PROV,
        ),
        Condition(
            source_id="migraine",
            text="Migraine",
            clinical_status="active",
            onset=pdt("2024-03-01"),
            provenance=PROV,
        ),
        Condition(
            source_id="bronchitis",
            text="Bronchitis",
            clinical_status="resolved",
            onset=pdt("2019-02-01"),
            abatement=pdt("2019-03-01"),
            provenance=PROV,
        ),
        Medication(
            source_id="lisinopril",
            medication_kind="request",
            text="Lisinopril 10 MG Oral Tablet",
            status="active",
            start=pdt("2020-01-01"),
            provenance=PROV,
        ),
        Medication(
            source_id="amoxicillin",
            medication_kind="request",
            text="Amoxicillin 500 MG",
            status="completed",
            start=pdt("2019-02-01"),
            end=pdt("2019-02-10"),
            provenance=PROV,
        ),
        Allergy(source_id="pen", text="Penicillin", clinical_status="active", provenance=PROV),
        Observation(
            source_id="bp",
            code=Code(system=LOINC, code="85354-9"),
            category="vital-signs",
            components=(
                ObservationComponent(
                    code=Code(system=LOINC, code="8480-6"), value=q(150, "mm[Hg]")
                ),
                ObservationComponent(code=Code(system=LOINC, code="8462-4"), value=q(95, "mm[Hg]")),
            ),
            effective=pdt("2024-05-20"),
            provenance=PROV,
        ),
    ]


def samples() -> list[Sample]:
    """60 days of steps and resting heart rate; device weight over the last 30 days."""
    out = []
    for i in range(60):
        day = TODAY - timedelta(days=i)
        t = (day - EPOCH).days * DAY_MS + 10 * 3_600_000
        steps = STEPS_RECENT if i < 30 else STEPS_BEFORE
        out.append(Sample("steps", t, steps / 2, 3_600_000, "watch"))
        out.append(Sample("steps", t + 3_600_000, steps / 2, 3_600_000, "watch"))
        out.append(Sample("resting_heart_rate", t, 60.0, 0, "watch"))
        if i < 30:
            weight = WEIGHT_LAST + (WEIGHT_FIRST - WEIGHT_LAST) * i / 29
            out.append(Sample("body_mass", t, weight, 0, "scale"))
    return out


@pytest.fixture
def built(health: SpaceSession) -> dict[str, str]:
    """Ingests the records and samples; returns record ids by source id."""
    ingest(health, records(), source="test", input_sha256="b" * 64)
    ingest(health, samples(), source="test", input_sha256="c" * 64)
    return {s.record.source_id: s.record_id for s in RecordRepository(health).list()}


def statements(facts: tuple[Fact, ...]) -> list[str]:
    return [f.statement for f in facts]


def test_brief_sections_follow_the_records(health: SpaceSession, built: dict[str, str]) -> None:
    brief = visit_brief(health, today=TODAY)
    assert (brief.since, brief.since_basis) == (LAST_VISIT, "last_encounter")
    assert brief.since_citation is not None
    assert brief.since_citation.record_id == built["enc-2"]

    (critical,) = brief.section("attention").facts
    assert critical.severity == "critical"
    assert critical.record_ids() == (built["k-1"],)
    potassium = catalogue().get("potassium")
    assert potassium is not None
    assert potassium.critical is not None
    assert potassium.critical.source.title in critical.statement

    changes = brief.section("changes").facts
    panel = next(f for f in changes if f.topic == "lab.panel")
    assert set(panel.record_ids()) == {built["ldl-2"], built["k-1"]}
    new_conditions = next(f for f in changes if f.topic == "change.condition")
    assert new_conditions.record_ids() == (built["migraine"],)
    assert not any(built["enc-1"] in f.record_ids() for f in changes)

    conditions = brief.section("conditions").facts
    assert {f.record_ids()[0] for f in conditions} == {built["htn"], built["migraine"]}
    meds = brief.section("medications").facts
    cited = {i for f in meds for i in f.record_ids()}
    assert built["lisinopril"] in cited
    assert built["pen"] in cited
    assert built["amoxicillin"] not in cited

    vitals = brief.section("vitals").facts
    assert "Blood pressure 150/95 mmHg on 2024-05-20." in statements(vitals)
    steps = next(f for f in vitals if f.topic == "activity.steps")
    assert steps.values["mean"] == pytest.approx(STEPS_RECENT)
    assert steps.values["previous_mean"] == pytest.approx(STEPS_BEFORE)
    assert [(w.metric, w.days_with_data) for w in steps.windows] == [("steps", 30), ("steps", 30)]
    assert steps.windows[0].end == TODAY
    weight = next(f for f in vitals if f.topic == "activity.weight")
    assert weight.values["change"] == pytest.approx(WEIGHT_LAST - WEIGHT_FIRST)


def test_questions_come_from_the_rules(health: SpaceSession, built: dict[str, str]) -> None:
    brief = visit_brief(health, today=TODAY)
    asked = brief.section("questions").facts
    assert asked[0].severity == "critical"
    assert asked[0].record_ids() == (built["k-1"],)
    ldl = next(f for f in asked if "LDL cholesterol rose" in f.statement)
    assert "from 130 mg/dL to 165 mg/dL since 2023-06-01" in ldl.statement
    assert set(ldl.record_ids()) == {built["ldl-1"], built["ldl-2"]}
    meds = next(f for f in asked if "active medication" in f.statement)
    assert meds.record_ids() == (built["lisinopril"],)
    assert any("allergy list (Penicillin)" in f.statement for f in asked)
    steps = next(f for f in asked if "daily steps fell" in f.statement)
    assert steps.windows
    assert any("weight changed by -3 kg" in f.statement for f in asked)
    # HbA1c was normal and alone: no question about it.
    assert not any("A1c" in f.statement for f in asked)


def test_every_citation_exists_and_every_finding_is_cited(
    health: SpaceSession, built: dict[str, str]
) -> None:
    brief = visit_brief(health, today=TODAY)
    repo = RecordRepository(health)
    ids = brief.record_ids()
    assert ids
    for record_id in ids:
        assert repo.get(record_id).record_id == record_id
    for fact in brief.facts():
        assert fact.citations or fact.windows, fact.statement
    assert brief.to_dict() == visit_brief(health, today=TODAY).to_dict()  # deterministic


def test_output_is_escaped_and_self_contained(health: SpaceSession, built: dict[str, str]) -> None:
    brief = visit_brief(health, today=TODAY)
    page = brief.to_html()
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert not re.search(r"\b(src|href)\s*=", page.replace("&lt;img src=x", ""))
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    markdown = brief.to_markdown()
    assert "<script>" not in markdown
    assert "\\<script\\>" in markdown
    assert "\\<img src=x onerror=alert(1)\\>" in markdown
    assert "\\&" in markdown


def test_given_date_and_empty_space(health: SpaceSession) -> None:
    empty = visit_brief(health, today=TODAY)
    assert (empty.since, empty.since_basis) == (None, "none")
    assert empty.record_ids() == set()
    assert "No earlier visit" in empty.to_markdown()
    ingest(health, [lab("ldl-1", "18262-6", 130, "mg/dL", "2023-06-01")], source="test")
    given = visit_brief(health, since=date(2023, 1, 1), today=TODAY)
    assert given.since_basis == "given"
    (panel,) = given.section("changes").facts
    assert panel.topic == "lab.panel"


# -- an imported Synthea patient -------------------------------------------------------------


@pytest.fixture(scope="module")
def evelyn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpaceSession]:
    tmp = tmp_path_factory.mktemp("brief")
    store = Store(
        create_engine(f"sqlite:///{tmp / 'hs.db'}"),
        Vault(MemoryKeySource()),
        KeyStore(create_engine(f"sqlite:///{tmp / 'keys.db'}")),
        actor="test",
    )
    store.initialize()
    user = store.create_user("evelyn@example.org")
    (path,) = (SHARED_DATA / "fhir" / "synthea-r4").glob("Evelyn_McCullough_*.json")
    try:
        with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
            assert import_paths(s, [path]).errors == []
            yield s
    finally:
        store.close()


def test_imported_patient_brief_cites_existing_records(evelyn: SpaceSession) -> None:
    repo = RecordRepository(evelyn)
    encounters = [s for s in repo.list(kind="encounter") if s.effective_ms is not None]
    last = max(encounters, key=lambda s: s.effective_ms or 0)
    assert last.effective_ms is not None
    today = date(1970, 1, 1) + timedelta(days=last.effective_ms // DAY_MS + 30)
    brief = visit_brief(evelyn, today=today)
    assert brief.since_basis == "last_encounter"
    for record_id in brief.record_ids():
        assert repo.get(record_id).record_id == record_id
    labs = Labs.load(evelyn)
    expected = {r.record_id for r in labs.out_of_range() if r.critical is None}
    shown = {f.record_ids()[0] for f in brief.section("results").facts}
    assert shown == expected
    page = brief.to_html()
    assert page.count("<li") == len(brief.facts()) + sum(1 for s in brief.sections if not s.facts)
