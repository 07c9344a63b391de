"""Every record kind: JSON round trip, listing helpers, discriminated loading."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthspace.model import (
    CVX,
    HEALTHKIT,
    LOINC,
    RECORD_CLASSES,
    RECORD_KINDS,
    RXNORM,
    SNOMED,
    Allergy,
    AnyRecord,
    BooleanValue,
    CarePlan,
    CarePlanActivity,
    Claim,
    ClaimItem,
    Code,
    CodedValue,
    Condition,
    Coverage,
    DateTimeValue,
    DiagnosticReport,
    Document,
    Encounter,
    Immunization,
    Medication,
    Money,
    NutritionDay,
    Observation,
    ObservationComponent,
    PartialDateTime,
    Patient,
    Procedure,
    Provenance,
    Quantity,
    QuantityValue,
    RangeValue,
    RatioValue,
    Reaction,
    Record,
    ReferenceRange,
    Schedule,
    SleepSession,
    SleepStagePeriod,
    StringValue,
    Workout,
    record_class,
    record_from_json,
    record_to_json,
)

from .strategies import codes, finite, ids, money, partial_datetimes, provenances, quantities, text

P = PartialDateTime.parse
PROV = Provenance(
    source="fhir",
    file_name="bundle.json",
    file_sha256="ab" * 32,
    original_ref="Observation/ldl-1",
    import_job="job-1",
    imported_at=datetime(2024, 5, 1, 12, tzinfo=UTC),
)
LDL = Code(system=LOINC, code="18262-6", display="LDL Cholesterol")
SYSTOLIC = Code(system=LOINC, code="8480-6", display="Systolic blood pressure")
DIASTOLIC = Code(system=LOINC, code="8462-4", display="Diastolic blood pressure")


def mmhg(value: float) -> QuantityValue:
    return QuantityValue(quantity=Quantity(value=value, unit="mm[Hg]"))


EXAMPLES: dict[str, Record] = {
    "observation": Observation(
        source_id="fhir:Observation/ldl-1",
        provenance=PROV,
        status="final",
        code=LDL,
        codes=(LDL, Code(system="urn:oid:1.2.3", code="LDL")),
        category="laboratory",
        value=QuantityValue(quantity=Quantity(value=162, unit="mg/dL")),
        reference_ranges=(
            ReferenceRange(high=Quantity(value=100, unit="mg/dL"), text="<100", type="normal"),
        ),
        interpretation=(Code(system="v3", code="H", display="High"),),
        effective=P("2024-04-30T08:15:00-05:00"),
        issued=P("2024-04-30T14:00:00Z"),
        performer="Quest",
        specimen="Serum",
    ),
    "condition": Condition(
        source_id="ccda:problem-1",
        code=Code(system=SNOMED, code="44054006", display="Diabetes mellitus type 2"),
        clinical_status="active",
        verification_status="confirmed",
        onset=P("2015"),
        body_site=None,
        severity="moderate",
    ),
    "medication": Medication(
        source_id="fhir:MedicationRequest/1",
        medication_kind="request",
        code=Code(system=RXNORM, code="617312", display="atorvastatin 20 MG Oral Tablet"),
        dose=Quantity(value=20, unit="mg"),
        route="oral",
        schedule=Schedule(frequency=1, period=1, period_unit="d", times_of_day=("21:00",)),
        start=P("2024-05-02"),
        prescriber="Dr. Lee",
        reason="High LDL",
        refills=3,
    ),
    "allergy": Allergy(
        source_id="fhir:AllergyIntolerance/1",
        code=Code(system=RXNORM, code="7980", display="Penicillin G"),
        criticality="high",
        reactions=(Reaction(manifestation="Hives", severity="moderate"),),
        onset=P("1999"),
        clinical_status="active",
    ),
    "immunization": Immunization(
        source_id="ccda:imm-1",
        status="completed",
        code=Code(system=CVX, code="208", display="COVID-19, mRNA"),
        occurrence=P("20210115"),
        lot_number="EK5730",
        dose_quantity=Quantity(value=0.3, unit="mL"),
    ),
    "encounter": Encounter(
        source_id="fhir:Encounter/1",
        encounter_class="AMB",
        encounter_type=Code(system=SNOMED, code="185349003", display="Check-up"),
        start=P("2024-04-30T08:00:00-05:00"),
        end=P("2024-04-30T08:40:00-05:00"),
        location="Main St Clinic",
        participants=("Dr. Lee",),
    ),
    "procedure": Procedure(
        source_id="fhir:Procedure/1",
        code=Code(system=SNOMED, code="73761001", display="Colonoscopy"),
        performed=P("2022-06-01"),
        outcome="No polyps",
    ),
    "report": DiagnosticReport(
        source_id="fhir:DiagnosticReport/lipid",
        code=Code(system=LOINC, code="57698-3", display="Lipid panel"),
        effective=P("2024-04-30"),
        result_ids=("fhir:Observation/ldl-1",),
        conclusion="LDL high",
    ),
    "document": Document(
        source_id="upload:sha256:" + "cd" * 32,
        title="Discharge summary",
        media_type="application/pdf",
        sha256="CD" * 32,
        size=48213,
        date=P("2023-11-02"),
        content_ref="blob-17",
        doc_type=Code(system=LOINC, code="18842-5", display="Discharge summary"),
    ),
    "care_plan": CarePlan(
        source_id="ccda:plan-1",
        title="Diabetes care",
        activities=(CarePlanActivity(text="HbA1c every 3 months", status="scheduled"),),
        start=P("2024-01"),
    ),
    "coverage": Coverage(
        source_id="fhir:Coverage/1",
        payer="Acme Health",
        plan_name="Gold PPO",
        member_id="XJ123",
        start=P("2024-01-01"),
        coverage_type="medical",
    ),
    "claim": Claim(
        source_id="eob:claim-99",
        claim_id="99",
        provider="Main St Clinic",
        billed=Money(amount=Decimal("250.00")),
        allowed=Money(amount=Decimal("180.00")),
        plan_paid=Money(amount=Decimal("144.00")),
        patient_owes=Money(amount=Decimal("36.00")),
        items=(
            ClaimItem(
                sequence=1,
                service=Code(system="http://www.ama-assn.org/go/cpt", code="99213"),
                billed=Money(amount=Decimal("250.00")),
            ),
        ),
        denial_reasons=(Code(system="CARC", code="45"),),
        service_start=P("2024-04-30"),
        outcome="complete",
    ),
    "workout": Workout(
        source_id="apple:workout:2024-05-01T06:00:00-07:00",
        activity_type="HKWorkoutActivityTypeRunning",
        activity_code=Code(system=HEALTHKIT, code="HKWorkoutActivityTypeRunning"),
        start=P("2024-05-01 06:00:00 -0700"),
        end=P("2024-05-01 06:31:00 -0700"),
        duration_s=1860,
        distance=Quantity(value=5.1, unit="km"),
        energy=Quantity(value=410, unit="kcal"),
        avg_heart_rate=Quantity(value=152, unit="/min"),
        statistics={"cadence": Quantity(value=168, unit="/min")},
        device="Apple Watch",
    ),
    "sleep": SleepSession(
        source_id="apple:sleep:2024-05-01",
        start=P("2024-04-30T23:00:00-07:00"),
        end=P("2024-05-01T06:30:00-07:00"),
        stages=(
            SleepStagePeriod(
                stage="core",
                start=P("2024-04-30T23:10:00-07:00"),
                end=P("2024-05-01T03:10:00-07:00"),
            ),
            SleepStagePeriod(
                stage="deep",
                start=P("2024-05-01T03:10:00-07:00"),
                end=P("2024-05-01T04:10:00-07:00"),
            ),
            SleepStagePeriod(
                stage="awake",
                start=P("2024-05-01T04:10:00-07:00"),
                end=P("2024-05-01T04:20:00-07:00"),
            ),
        ),
    ),
    "nutrition": NutritionDay(
        source_id="mfp:2024-05-01",
        date=P("2024-05-01"),
        calories=Quantity(value=2150, unit="kcal"),
        nutrients={
            "protein": Quantity(value=95, unit="g"),
            "sodium": Quantity(value=2300, unit="mg"),
        },
        meals=3,
    ),
    "patient": Patient(
        source_id="fhir:Patient/1",
        given=("Ana",),
        family="Silva",
        birth_date=P("1980-02-14"),
        sex="female",
    ),
}


def test_examples_cover_every_kind() -> None:
    assert set(EXAMPLES) == set(RECORD_KINDS)
    assert len(RECORD_KINDS) == 16
    for kind, record in EXAMPLES.items():
        assert record.kind == kind
        assert isinstance(record, record_class(kind))
        assert RECORD_CLASSES[kind] is type(record)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_json_round_trip(kind: str) -> None:
    record = EXAMPLES[kind]
    data = record_to_json(record)
    assert isinstance(data, bytes)
    back = record_from_json(data)
    assert type(back) is type(record)
    assert back == record
    assert record_to_json(back) == data
    assert hash(back) == hash(record)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_listing_helpers(kind: str) -> None:
    record = EXAMPLES[kind]
    assert record.display_text()
    when = record.sort_time()
    assert when is None or when.tzinfo is not None
    value, unit = record.summary_value()
    assert value is None or isinstance(value, float | int | str)
    assert unit is None or isinstance(unit, str)


def test_listing_values() -> None:
    obs = EXAMPLES["observation"]
    assert obs.summary_value() == (162, "mg/dL")
    assert obs.display_text() == "LDL Cholesterol"
    assert obs.primary_code() == LDL
    assert obs.sort_time() == datetime(2024, 4, 30, 13, 15, tzinfo=UTC)
    assert EXAMPLES["claim"].summary_value() == (36.0, "USD")
    assert EXAMPLES["patient"].display_text() == "Ana Silva"
    assert EXAMPLES["patient"].sort_time() is None  # a birth date must not be plaintext
    assert EXAMPLES["workout"].display_text() == "Running"
    assert EXAMPLES["sleep"].summary_value() == (5.0, "h")


def test_blood_pressure_components_summarise_as_a_pair() -> None:
    bp = Observation(
        source_id="bp-1",
        code=Code(system=LOINC, code="85354-9", display="Blood pressure panel"),
        components=(
            ObservationComponent(code=SYSTOLIC, value=mmhg(120)),
            ObservationComponent(code=DIASTOLIC, value=mmhg(80)),
        ),
        effective=P("2024-04-30"),
    )
    assert bp.summary_value() == ("120/80", "mm[Hg]")
    assert record_from_json(record_to_json(bp)) == bp


@pytest.mark.parametrize(
    ("value", "summary"),
    [
        (StringValue(text="Positive"), ("Positive", None)),
        (
            CodedValue(code=Code(system=SNOMED, code="260373001", display="Detected")),
            ("Detected", None),
        ),
        (
            RangeValue(low=Quantity(value=5, unit="%"), high=Quantity(value=10, unit="%")),
            ("5-10", "%"),
        ),
        (
            RatioValue(numerator=Quantity(value=1), denominator=Quantity(value=320)),
            ("1:320", None),
        ),
        (BooleanValue(value=True), ("true", None)),
        (DateTimeValue(moment=P("2024-03")), ("2024-03", None)),
        (
            QuantityValue(quantity=Quantity(value=0.1, unit="ng/mL", comparator="<")),
            ("<0.1", "ng/mL"),
        ),
        (None, (None, None)),
    ],
)
def test_value_kinds(value: object, summary: tuple[object, object]) -> None:
    obs = Observation(source_id="o", code=LDL, value=value)
    assert obs.summary_value() == summary
    assert record_from_json(record_to_json(obs)) == obs


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        record_from_json(b'{"kind": "spaceship", "source_id": "x"}')
    with pytest.raises(ValueError, match="extra"):
        record_from_json(b'{"kind": "condition", "source_id": "x", "colour": "red"}')
    with pytest.raises(ValueError, match="source_id"):
        Condition(source_id="")
    with pytest.raises(ValueError, match="finite"):
        Quantity(value=float("nan"), unit="kg")
    with pytest.raises(ValueError, match="frozen"):
        EXAMPLES["condition"].note = "x"  # type: ignore[misc]
    with pytest.raises(KeyError, match="spaceship"):
        record_class("spaceship")
    with pytest.raises(TypeError):
        Record(kind="x", source_id="y")  # type: ignore[abstract]


def test_reimport_gives_equal_records() -> None:
    a = Observation(source_id="fhir:Observation/1", code=LDL, effective=P("2024-04-30"))
    b = Observation(source_id="fhir:Observation/1", code=LDL, effective=P("20240430"))
    assert a == b
    assert len({a, b}) == 1


observation_values = st.one_of(
    st.none(),
    st.builds(QuantityValue, quantity=quantities),
    st.builds(StringValue, text=text),
    st.builds(CodedValue, code=codes),
    st.builds(RangeValue, low=st.none() | quantities, high=st.none() | quantities),
    st.builds(BooleanValue, value=st.booleans()),
    st.builds(DateTimeValue, moment=partial_datetimes()),
)
opt_time = st.none() | partial_datetimes()

generated_records = st.one_of(
    st.builds(
        Observation,
        source_id=ids,
        provenance=provenances,
        status=st.none() | text,
        note=st.none() | text,
        code=codes,
        codes=st.lists(codes, max_size=2).map(tuple),
        value=observation_values,
        components=st.lists(
            st.builds(ObservationComponent, code=codes, value=observation_values), max_size=2
        ).map(tuple),
        reference_ranges=st.lists(
            st.builds(ReferenceRange, low=st.none() | quantities, text=st.none() | text), max_size=2
        ).map(tuple),
        effective=opt_time,
        issued=opt_time,
    ),
    st.builds(
        Claim,
        source_id=ids,
        provenance=provenances,
        billed=st.none() | money,
        patient_owes=st.none() | money,
        items=st.lists(
            st.builds(ClaimItem, billed=st.none() | money, quantity=finite), max_size=2
        ).map(tuple),
        service_start=opt_time,
    ),
    st.builds(
        Workout,
        source_id=ids,
        activity_type=text,
        start=partial_datetimes(),
        statistics=st.dictionaries(text, quantities, max_size=3),
        duration_s=st.none() | st.floats(min_value=0, max_value=1e6),
    ),
    st.builds(
        Medication,
        source_id=ids,
        medication_kind=st.sampled_from(["statement", "request"]),
        code=st.none() | codes,
        dose=st.none() | quantities,
        schedule=st.none()
        | st.builds(Schedule, frequency=st.none() | st.integers(1, 6), as_needed=st.booleans()),
        start=opt_time,
    ),
    st.builds(
        Condition, source_id=ids, code=st.none() | codes, onset=opt_time, note=st.none() | text
    ),
    st.builds(
        NutritionDay,
        source_id=ids,
        date=partial_datetimes(),
        nutrients=st.dictionaries(text, quantities, max_size=3),
    ),
)


@settings(max_examples=150)
@given(generated_records)
def test_generated_records_round_trip(record: AnyRecord) -> None:
    assert record_from_json(record_to_json(record)) == record
    record.display_text()
    record.summary_value()
