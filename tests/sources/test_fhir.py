"""The FHIR R4 importer, through the real pipeline and the parser.

Expected counts and values are read from the sample JSON in the test itself
(``_fhir_expect``), never typed in by hand.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthspace.errors import SourceError
from healthspace.model import (
    LOINC,
    Allergy,
    Claim,
    Code,
    CodedValue,
    DiagnosticReport,
    Document,
    Medication,
    Observation,
    PartialDateTime,
    QuantityValue,
)
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.fhir import (
    MAX_JSON_BYTES,
    FhirSource,
    looks_like_fhir,
    parse_resource_bytes,
)
from healthspace.sources.pipeline import import_paths
from healthspace.store import FileRepository, RecordRepository, SpaceSession, Store
from tests.conftest import SHARED_DATA
from tests.sources._fhir_expect import (
    FHIR_FILES,
    eob_amounts,
    identities_by_kind,
    load,
    mapped_count,
    resources,
    unmapped,
)
from tests.sources._fhir_samples import (
    PDF_BYTES,
    document_reference,
    dumps,
    observation,
    small_bundle,
)
from tests.store.test_records import logical_dump

EXAMPLES = SHARED_DATA / "fhir" / "hl7-r4-examples"
SYNTHEA = SHARED_DATA / "fhir" / "synthea-r4"
BLUE_BUTTON = SHARED_DATA / "insurance" / "bluebutton"


def parse(data: bytes, name: str = "input.json") -> tuple[list[Item], ImportContext]:
    file = InputFile.from_bytes(data, name)
    ctx = ImportContext(file=file, file_sha256=hashlib.sha256(data).hexdigest())
    return list(FhirSource().parse(file, ctx)), ctx


def parse_path(path: Path) -> tuple[list[Item], ImportContext]:
    return parse(path.read_bytes(), str(path))


def records(items: list[Item]) -> list[Any]:
    return [getattr(item, "record", item) for item in items]


def by_id(items: list[Item]) -> dict[str, Any]:
    return {r.source_id: r for r in records(items)}


# -- every sample file --------------------------------------------------------------


# SQLite only: the slowest test here; every other store test below runs on both engines.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_sample_file_imports_as_its_json_says(
    health: SpaceSession, subtests: pytest.Subtests
) -> None:
    """Each file in turn into one store: new identities imported, re-import adds nothing."""
    seen: dict[str, set[str]] = {}
    for path in FHIR_FILES:
        doc = load(path)
        ids = identities_by_kind(doc)
        with subtests.test(file=path.name):
            new = {k: len(v - seen.get(k, set())) for k, v in ids.items() if v - seen.get(k, set())}
            report = import_paths(health, [path])
            assert report.errors == []
            (outcome,) = report.files
            assert outcome.source == "fhir"
            assert outcome.result is not None
            assert report.imported == new
            assert outcome.unmapped == dict(unmapped(doc))
            total = mapped_count(doc)
            assert outcome.result.skipped_duplicates + outcome.result.updated == total - sum(
                new.values()
            )
            again = import_paths(health, [path])
            assert again.errors == []
            assert again.imported == {}
            assert again.skipped_duplicates == total
        for kind, found in ids.items():
            seen.setdefault(kind, set()).update(found)
    assert RecordRepository(health).count_by_kind() == {k: len(v) for k, v in seen.items()}


def test_parsing_is_deterministic_and_keeps_originals() -> None:
    path = SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
    first, _ = parse_path(path)
    second, _ = parse_path(path)
    assert records(first) == records(second)
    originals = {r["id"]: r for r, _ in resources(load(path))}
    for item in first:
        record = item.record  # type: ignore[union-attr]
        rtype, rid = record.provenance.original_ref.split("/")
        assert json.loads(item.original) == originals[rid]  # type: ignore[union-attr]
        assert originals[rid]["resourceType"] == rtype
        assert record.provenance.source == "fhir"
        assert record.provenance.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# -- values, read back through the store --------------------------------------------


@pytest.mark.parametrize("loinc", ["2093-3", "4548-4"])
def test_synthea_cholesterol_and_hba1c_come_back(health: SpaceSession, loinc: str) -> None:
    path = SYNTHEA / "Eura_Treutel_8a12e2bb-ecc5-43e9-8de2-bfd019911f7f.json"
    want = sorted(
        (
            PartialDateTime.parse(r["effectiveDateTime"]).start,
            r["valueQuantity"]["value"],
            r["valueQuantity"]["code"],
        )
        for r, _ in resources(load(path))
        if r["resourceType"] == "Observation"
        and any(c["code"] == loinc for c in r["code"]["coding"])
    )
    assert want  # this patient has both analytes
    import_paths(health, [path])
    stored = RecordRepository(health).list(code=Code(system=LOINC, code=loinc))
    got = []
    for s in stored:
        obs = s.record
        assert isinstance(obs, Observation)
        assert isinstance(obs.value, QuantityValue)
        assert obs.effective is not None
        got.append((obs.effective.start, obs.value.quantity.value, obs.value.quantity.unit))
    assert sorted(got) == want


@pytest.mark.parametrize("name", ["Bundle-lipids.json", "Bundle-ghp.json", "Observation-f001.json"])
def test_reference_ranges_and_interpretation_survive(name: str) -> None:
    path = EXAMPLES / name
    items, _ = parse_path(path)
    stored = by_id(items)
    checked = 0
    for resource, full_url in resources(load(path)):
        if resource["resourceType"] != "Observation":
            continue
        sid = f"fhir:{full_url}" if full_url else f"fhir:Observation/{resource['id']}"
        obs = stored[sid]
        want_ranges = [
            (
                rr.get("low", {}).get("value"),
                rr.get("high", {}).get("value"),
                rr.get("text"),
            )
            for rr in resource.get("referenceRange", [])
        ]
        got_ranges = [
            (
                rr.low.value if rr.low else None,
                rr.high.value if rr.high else None,
                rr.text,
            )
            for rr in obs.reference_ranges
        ]
        assert got_ranges == want_ranges
        want_flags = [c["code"] for i in resource.get("interpretation", []) for c in i["coding"]]
        assert [c.code for c in obs.interpretation] == want_flags
        checked += 1
    assert checked == sum(1 for r, _ in resources(load(path)) if r["resourceType"] == "Observation")


def test_ghp_report_links_its_results_and_coded_values(health: SpaceSession) -> None:
    path = EXAMPLES / "Bundle-ghp.json"
    doc = load(path)
    report = import_paths(health, [path])
    assert report.files[0].unmapped == {"Specimen": 3}
    stored = {s.record.source_id: s.record for s in RecordRepository(health).list()}
    (dr,) = [r for r in stored.values() if isinstance(r, DiagnosticReport)]
    base = {r["id"]: url for r, url in resources(doc)}
    wanted = [
        f"fhir:{base[ref['reference'].split('/')[-1]]}"
        for ref in doc["entry"][0]["resource"]["result"]
    ]
    assert list(dr.result_ids) == wanted
    assert all(rid in stored for rid in dr.result_ids)
    coded = [r for r, _ in resources(doc) if "valueCodeableConcept" in r]
    for resource in coded:
        obs = stored[f"fhir:{base[resource['id']]}"]
        assert isinstance(obs.value, CodedValue)
        assert obs.value.code.code == resource["valueCodeableConcept"]["coding"][0]["code"]


def test_synthea_names_codes_and_links_resolve_across_the_bundle() -> None:
    path = SYNTHEA / "Evelyn_McCullough_d041a90b-f72b-4601-8b61-e086eb5dd42e.json"
    doc = load(path)
    stored = by_id(parse_path(path)[0])
    by_url = {url: r for r, url in resources(doc)}
    patient_json, patient_url = next(
        (r, u) for r, u in resources(doc) if r["resourceType"] == "Patient"
    )
    patient = stored[f"fhir:{patient_url}"]
    assert patient.deceased is True
    assert patient.deceased_date == PartialDateTime.parse(patient_json["deceasedDateTime"])
    assert patient.birth_date == PartialDateTime.parse(patient_json["birthDate"])
    assert patient.family == patient_json["name"][0]["family"]
    checked = Counter()
    for resource, url in resources(doc):
        record = stored.get(f"fhir:{url}")
        if resource["resourceType"] == "Encounter":
            org = by_url[resource["serviceProvider"]["reference"]]
            assert record.service_provider == org["name"]
            for n, participant in enumerate(resource.get("participant", [])):
                practitioner = by_url[participant["individual"]["reference"]]
                assert practitioner["name"][0]["family"] in record.participants[n]
            checked["encounter"] += 1
        elif resource["resourceType"] == "Immunization":
            assert record.code.code == resource["vaccineCode"]["coding"][0]["code"]
            checked["immunization"] += 1
        elif resource["resourceType"] == "DiagnosticReport":
            assert list(record.result_ids) == [f"fhir:{r['reference']}" for r in resource["result"]]
            assert all(rid in stored for rid in record.result_ids)
            checked["report"] += 1
        elif resource["resourceType"] in {"Observation", "Condition", "Procedure"}:
            assert record.encounter_id == f"fhir:{resource['encounter']['reference']}"
            assert record.encounter_id in stored
            checked[resource["resourceType"]] += 1
    assert set(checked) == {
        "encounter",
        "immunization",
        "report",
        "Observation",
        "Condition",
        "Procedure",
    }


VALUE_CASES = {
    "valueString": ("Positive", "string", "Positive"),
    "valueBoolean": (True, "boolean", "true"),
    "valueInteger": (7, "quantity", 7.0),
    "valueDateTime": ("2020-02-03", "datetime", "2020-02-03"),
    "valueRange": (
        {"low": {"value": 5, "unit": "mg"}, "high": {"value": 10, "unit": "mg"}},
        "range",
        "5-10",
    ),
    "valueRatio": ({"numerator": {"value": 1}, "denominator": {"value": 320}}, "ratio", "1:320"),
    "valueCodeableConcept": (
        {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "10828004", "display": "Positive"}
            ]
        },
        "coded",
        "Positive",
    ),
}


@pytest.mark.parametrize("key", list(VALUE_CASES))
def test_observation_value_kinds(key: str) -> None:
    raw, kind, summary = VALUE_CASES[key]
    resource = observation()
    del resource["valueQuantity"]
    resource[key] = raw
    (item,), _ = parse(dumps(resource))
    obs = item.record  # type: ignore[union-attr]
    assert obs.value.type == kind
    assert obs.summary_value()[0] == summary


def test_document_bundle_and_unknown_types_are_counted() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {
                "fullUrl": "urn:uuid:c1",
                "resource": {"resourceType": "Composition", "id": "c1", "status": "final"},
            },
            {"fullUrl": "urn:uuid:obs-1", "resource": observation()},
            {"fullUrl": "urn:uuid:prov", "resource": {"resourceType": "Provenance", "id": "p"}},
        ],
    }
    items, ctx = parse(dumps(bundle))
    assert [type(r).__name__ for r in records(items)] == ["Observation"]
    assert ctx.unmapped == Counter({"Composition": 1, "Provenance": 1})


def test_blood_pressure_components() -> None:
    path = EXAMPLES / "Observation-blood-pressure.json"
    doc = load(path)
    items, _ = parse_path(path)
    (obs,) = records(items)
    want = [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"], c["valueQuantity"]["code"])
        for c in doc["component"]
    ]
    got = [(c.code.code, c.value.quantity.value, c.value.quantity.unit) for c in obs.components]
    assert got == want
    text, unit = obs.summary_value()
    assert text == "/".join(f"{v:g}" for _, v, _ in want)
    assert unit == want[0][2]


def test_batch_response_with_nested_bundles(health: SpaceSession, tmp_path: Path) -> None:
    real = EXAMPLES / "Bundle-bundle-response-medsallergies.json"
    report = import_paths(health, [real])
    assert report.errors == []
    assert report.imported == {"patient": 1}
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "criticality": "high",
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "227493005", "display": "Cashew nuts"}
            ]
        },
        "patient": {"reference": "Patient/example"},
    }
    nested = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"resource": load(real)["entry"][0]["resource"], "response": {"status": "200"}},
            {
                "resource": {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [
                        {
                            "fullUrl": "http://ehr.example/fhir/AllergyIntolerance/a1",
                            "resource": allergy,
                        }
                    ],
                },
                "response": {"status": "200"},
            },
            {
                "response": {
                    "status": "404",
                    "outcome": {
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "not-found"}],
                    },
                }
            },
        ],
    }
    path = tmp_path / "nested.json"
    path.write_bytes(dumps(nested))
    report = import_paths(health, [path])
    assert report.errors == []
    assert report.imported == {"allergy": 1}
    assert report.files[0].unmapped == {"OperationOutcome": 1}
    nested["entry"][1]["resource"]["entry"][0]["resource"]["criticality"] = "extreme"  # type: ignore[index]
    with pytest.raises(SourceError) as info:
        parse(dumps(nested), "nested.json")
    assert "entry 1, entry 0 (AllergyIntolerance/a1)" in str(info.value)
    assert "criticality" in str(info.value)


def test_no_known_allergy_is_a_negation() -> None:
    nkda, _ = parse_path(EXAMPLES / "AllergyIntolerance-nkda.json")
    cashew, _ = parse_path(EXAMPLES / "AllergyIntolerance-example.json")
    (none,) = records(nkda)
    (real,) = records(cashew)
    assert isinstance(none, Allergy)
    assert none.no_known_allergy
    assert isinstance(real, Allergy)
    assert not real.no_known_allergy
    doc = load(EXAMPLES / "AllergyIntolerance-example.json")
    assert [r.severity for r in real.reactions] == [r.get("severity") for r in doc["reaction"]]


def test_contained_medication_is_resolved() -> None:
    path = EXAMPLES / "MedicationRequest-medrx0310.json"
    doc = load(path)
    (med,) = records(parse_path(path)[0])
    assert isinstance(med, Medication)
    assert med.medication_kind == "request"
    contained = {c["id"]: c for c in doc["contained"]}[doc["medicationReference"]["reference"][1:]]
    coding = contained["code"]["coding"][0]
    assert med.code is not None
    assert (med.code.system, med.code.code) == (
        coding["system"],
        coding["code"],
    )
    dosage = doc["dosageInstruction"][0]
    assert med.schedule is not None
    assert med.schedule.text == dosage["text"]
    assert med.schedule.frequency == dosage["timing"]["repeat"]["frequency"]
    assert med.schedule.as_needed is True


def test_document_reference_with_inline_data(health: SpaceSession, tmp_path: Path) -> None:
    path = tmp_path / "DocumentReference-doc-1.json"
    path.write_bytes(dumps(document_reference()))
    report = import_paths(health, [path])
    assert report.errors == []
    assert report.imported == {"document": 2}
    docs = {s.record.source_id: s.record for s in RecordRepository(health).list(kind="document")}
    inline = docs["fhir:DocumentReference/doc-1"]
    assert isinstance(inline, Document)
    assert inline.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert inline.size == len(PDF_BYTES)
    assert inline.content_ref is not None
    assert FileRepository(health).read(inline.content_ref) == PDF_BYTES
    linked = docs["fhir:DocumentReference/doc-1#content/1"]
    assert linked.size == 0
    assert linked.content_ref is None
    assert linked.note is not None
    assert "https://portal.example/doc/2" in linked.note


def test_blue_button_claim_amounts(health: SpaceSession) -> None:
    paths = sorted(BLUE_BUTTON.glob("eob_*.json"))
    import_paths(health, paths)
    claims = {s.record.source_id: s.record for s in RecordRepository(health).list(kind="claim")}
    seen = 0
    for path in paths:
        for eob, full_url in resources(load(path)):
            claim = claims[
                f"fhir:{full_url}" if full_url else f"fhir:ExplanationOfBenefit/{eob['id']}"
            ]
            assert isinstance(claim, Claim)
            want = eob_amounts(eob)
            got = {
                name: getattr(claim, name).amount if getattr(claim, name) else None for name in want
            }
            assert got == want
            seen += 1
    assert seen == len(claims)
    assert any(c.billed and c.billed.amount > 0 for c in claims.values())


def test_synthea_claim_totals_match_payment() -> None:
    path = SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
    stored = by_id(parse_path(path)[0])
    for eob, full_url in resources(load(path)):
        if eob["resourceType"] != "ExplanationOfBenefit":
            continue
        claim = stored[f"fhir:{full_url}"]
        assert claim.billed.amount == Decimal(str(eob["total"][0]["amount"]["value"]))
        assert claim.plan_paid.amount == Decimal(str(eob["payment"]["amount"]["value"]))
        assert claim.service_start == PartialDateTime.parse(eob["billablePeriod"]["start"])


# -- references and warnings ----------------------------------------------------------


def test_broken_references_are_warnings_naming_the_place(
    health: SpaceSession, tmp_path: Path
) -> None:
    bundle = small_bundle()
    # The Patient is gone: every subject now points nowhere; and a result points nowhere.
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    report_entry = next(
        i
        for i, e in enumerate(bundle["entry"])
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    bundle["entry"][report_entry]["resource"]["result"].append(
        {"reference": "urn:uuid:missing-obs"}
    )
    path = tmp_path / "broken.json"
    path.write_bytes(dumps(bundle))
    report = import_paths(health, [path])
    assert report.errors == []
    warnings = report.files[0].warnings
    subject = [w for w in warnings if "subject: reference not found" in w]
    assert len(subject) == 1
    assert "entry 0 (Observation/obs-1)" in subject[0]
    assert str(path) in subject[0]
    result = [w for w in warnings if "result: reference not found" in w]
    assert len(result) == 1
    assert f"entry {report_entry} (DiagnosticReport/rep-1)" in result[0]
    assert all("missing-obs" not in w and "pat-1" not in w for w in warnings)
    stored = RecordRepository(health).list(kind="report")
    assert stored[0].record.result_ids == ("fhir:urn:uuid:obs-1", "fhir:urn:uuid:missing-obs")  # type: ignore[union-attr]


def test_single_resources_refer_outside_themselves_without_warnings() -> None:
    _, ctx = parse_path(EXAMPLES / "Observation-f001.json")
    assert ctx.warnings == []


def test_missing_required_elements_are_kept_with_a_warning() -> None:
    path = BLUE_BUTTON / "eob_read_carrier_v2.json"
    items, ctx = parse_path(path)
    assert len(items) == 1
    assert any("required element insurer is missing; kept" in w for w in ctx.warnings)


def test_searchset_next_page_is_reported() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": "https://ehr.example/fhir/Observation?page=2"}],
        "entry": [
            {"fullUrl": "https://ehr.example/fhir/Observation/obs-1", "resource": observation()}
        ],
    }
    items, ctx = parse(dumps(bundle))
    assert len(items) == 1
    assert any("next page" in w for w in ctx.warnings)


# -- NDJSON and single resources in memory ----------------------------------------------


def test_bulk_ndjson(health: SpaceSession, tmp_path: Path) -> None:
    doc = load(EXAMPLES / "Bundle-lipids.json")
    lines = [json.dumps(r) for r, _ in resources(doc)]
    lines.insert(
        1,
        json.dumps(
            {
                "resourceType": "Organization",
                "id": "1832473e-2fe0-452d-abe9-3cdb9879522f",
                "name": "Acme Laboratory, Inc",
            }
        ),
    )
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_paths(health, [path])
    assert report.errors == []
    assert report.imported == dict(Counter({"report": 1, "observation": len(lines) - 2}))
    assert report.files[0].unmapped == {"Organization": 1}
    stored = {s.record.source_id: s.record for s in RecordRepository(health).list()}
    (dr,) = [r for r in stored.values() if isinstance(r, DiagnosticReport)]
    # Relative references in bulk data name the observations' own identities.
    assert dr.result_ids
    assert all(rid in stored for rid in dr.result_ids)


def test_parse_resource_bytes_for_apple_clinical_records() -> None:
    data = dumps(observation())
    file = InputFile.from_bytes(b"zip", "export.zip")
    ctx = ImportContext(file=file, file_sha256=hashlib.sha256(b"zip").hexdigest())
    name = "export.zip!apple_health_export/clinical-records/Observation-obs-1.json"
    (item,) = list(parse_resource_bytes(data, name, ctx, source="apple_health"))
    record = item.record  # type: ignore[union-attr]
    assert record.provenance.file_name == name
    assert record.provenance.source == "apple_health"
    assert record.provenance.file_sha256 == hashlib.sha256(data).hexdigest()
    bad = dumps(observation(status="not-a-status"))
    assert list(parse_resource_bytes(bad, name, ctx, on_invalid="skip")) == []
    assert ctx.unmapped["Observation (invalid)"] == 1
    with pytest.raises(SourceError, match=r"Observation-obs-1\.json: Observation/obs-1: status"):
        list(parse_resource_bytes(bad, name, ctx))


def test_oversized_json_document_points_to_ndjson() -> None:
    data = json.dumps(observation(), indent=1).encode()
    huge = InputFile(name="huge.json", size=MAX_JSON_BYTES + 1, opener=lambda: io.BytesIO(data))
    ctx = ImportContext(file=huge, file_sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(SourceError, match="NDJSON") as info:
        list(FhirSource().parse(huge, ctx))
    assert info.value.file == "huge.json"


def test_resources_without_id_get_stable_content_ids() -> None:
    resource = observation()
    del resource["id"]
    (first,), _ = parse(dumps(resource))
    reordered = dict(reversed(list(resource.items())))
    (second,), _ = parse(dumps(reordered))
    sid = first.record.source_id  # type: ignore[union-attr]
    assert sid.startswith("fhir:Observation/sha256-")
    assert sid == second.record.source_id  # type: ignore[union-attr]


def test_sniff() -> None:
    for path in FHIR_FILES:
        assert looks_like_fhir(path.read_bytes()[:65536]), path.name
    for path in (SHARED_DATA / "insurance" / "cms-qhp").glob("*.json"):
        assert not looks_like_fhir(path.read_bytes()[:65536]), path.name
    assert looks_like_fhir(
        b'\xef\xbb\xbf  {"text": {"div": "resourceType"}, "resourceType": "Patient"}'
    )
    assert not looks_like_fhir(b'{"meta": {"resourceType": "Patient"}}')
    assert looks_like_fhir(b'[{"resourceType": "Patient"}]')
    assert not looks_like_fhir(b"<ClinicalDocument/>")


# -- bad input: a SourceError naming file and place; the store unchanged -----------------

CANARY = "CANARY-fhir-7d1c"


def _truncated() -> bytes:
    data = (EXAMPLES / "Bundle-lipids.json").read_bytes()
    return data[: len(data) // 2]


def _entry_without_type() -> bytes:
    bundle = small_bundle(CANARY)
    del bundle["entry"][2]["resource"]["resourceType"]
    return dumps(bundle)


def _bundle_with(resource: dict[str, Any]) -> bytes:
    bundle = small_bundle(CANARY)
    bundle["entry"][1]["resource"] = resource
    return dumps(bundle)


def _ndjson_bad_line() -> bytes:
    good = [json.dumps(observation(f"o{i}", note=[{"text": CANARY}])) for i in range(4)]
    good[2] = good[2][:-7]
    return ("\n".join(good) + "\n").encode()


BAD_INPUTS = {
    "truncated": (_truncated, "Bundle-lipids.json", r"line \d+, column \d+", "not valid JSON"),
    "entry without resourceType": (_entry_without_type, "b.json", "entry 2", "no resourceType"),
    "unknown resourceType": (
        lambda: dumps({"resourceType": "Observatoin", "id": "x", "note": CANARY}),
        "b.json",
        "top level",
        "not a FHIR R4 resource type",
    ),
    "bad status code": (
        lambda: _bundle_with(observation(status=CANARY.lower())),
        "b.json",
        r"entry 1 \(Observation/obs-1\)",
        "status",
    ),
    "impossible date": (
        lambda: _bundle_with(observation(effectiveDateTime="2023-13-45", note=[{"text": CANARY}])),
        "b.json",
        r"entry 1 \(Observation/obs-1\)",
        "effectiveDateTime: fails FHIR R4 validation",
    ),
    "array at top level": (
        lambda: dumps([observation(note=[{"text": CANARY}])]),
        "b.json",
        "top level",
        "JSON array",
    ),
    "ndjson bad line": (_ndjson_bad_line, "b.ndjson", "line 3", "not valid JSON"),
}


def test_bad_input_is_a_clear_error_and_changes_nothing(
    store: Store, health: SpaceSession, tmp_path: Path, subtests: pytest.Subtests
) -> None:
    import_paths(health, [EXAMPLES / "Bundle-lipids.json"])
    for case, (make, name, place, reason) in BAD_INPUTS.items():
        with subtests.test(case=case):
            path = tmp_path / case.replace(" ", "-") / name
            path.parent.mkdir()
            path.write_bytes(make())
            with pytest.raises(SourceError) as info:
                parse_path(path)
            message = str(info.value)
            assert info.value.file == str(path)
            assert info.value.place is not None
            assert message.startswith(f"{path}: ")
            assert re.search(place, info.value.place), message
            assert reason in message
            assert CANARY not in message
            assert CANARY.lower() not in message
            before = logical_dump(store)
            report = import_paths(health, [path])
            (error,) = report.errors
            assert str(path) in error
            assert info.value.place in error
            assert logical_dump(store) == before


# -- hostile mutations never crash with anything but SourceError -----------------------

_JSON_LEAF = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _slots(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _slots(value, (*path, index))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if op == "delete":
        del parent[path[-1]]
    elif op == "wrap":
        parent[path[-1]] = [parent[path[-1]]]
    else:
        parent[path[-1]] = value
    return doc


def _parses_or_source_error(data: bytes) -> None:
    failure: SourceError | None = None
    try:
        parse(data, "mutant.json")
    except SourceError as exc:
        failure = exc
    assert failure is None or failure.file == "mutant.json"


@settings(max_examples=250)
@given(st.data())
def test_mutated_bundles_fail_only_with_source_error(data: st.DataObject) -> None:
    doc = small_bundle()
    slots = _slots(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        slots = _slots(doc)
        path = data.draw(st.sampled_from(slots))
        op = data.draw(st.sampled_from(["replace", "delete", "wrap"]))
        value = data.draw(_JSON)
        doc = _mutate(doc, path, op if path else "replace", value)
    _parses_or_source_error(json.dumps(doc).encode())


@settings(max_examples=100)
@given(st.data())
def test_byte_flips_fail_only_with_source_error(data: st.DataObject) -> None:
    raw = bytearray(dumps(small_bundle()))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _parses_or_source_error(bytes(raw))
