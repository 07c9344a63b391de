"""Small FHIR documents built in tests (the shared sample files are never edited)."""

from __future__ import annotations

import base64
import json
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

PDF_BYTES = b"%PDF-1.4\n% synthetic discharge summary for tests\n%%EOF\n"


def observation(oid: str = "obs-1", **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "2093-3", "display": "Cholesterol"}]},
        "subject": {"reference": "urn:uuid:pat-1"},
        "effectiveDateTime": "2020-01-02T03:04:05Z",
        "valueQuantity": {"value": 190, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        "referenceRange": [{"high": {"value": 200, "unit": "mg/dL"}, "text": "<200"}],
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "N",
                    }
                ]
            }
        ],
    }
    resource.update(changes)
    return resource


def document_reference(data: bytes = PDF_BYTES) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "18842-5", "display": "Discharge summary"}]},
        "subject": {"reference": "urn:uuid:pat-1"},
        "date": "2021-06-07T08:09:10Z",
        "description": "Discharge summary",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(data).decode(),
                }
            },
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "url": "https://portal.example/doc/2",
                }
            },
        ],
    }


def small_bundle(note: str = "a note") -> dict[str, Any]:
    """A collection Bundle touching most mappers: the seed of the mutation test."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:pat-1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "pat-1",
                    "gender": "female",
                    "birthDate": "1970-01-02",
                    "name": [{"family": "Tester", "given": ["Ada"]}],
                },
            },
            {"fullUrl": "urn:uuid:obs-1", "resource": observation(note=[{"text": note}])},
            {
                "fullUrl": "urn:uuid:rep-1",
                "resource": {
                    "resourceType": "DiagnosticReport",
                    "id": "rep-1",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "57698-3", "display": "Lipids"}]},
                    "subject": {"reference": "urn:uuid:pat-1"},
                    "effectiveDateTime": "2020-01-02",
                    "result": [{"reference": "urn:uuid:obs-1"}],
                },
            },
            {
                "fullUrl": "urn:uuid:med-1",
                "resource": {
                    "resourceType": "MedicationStatement",
                    "id": "med-1",
                    "status": "active",
                    "contained": [
                        {
                            "resourceType": "Medication",
                            "id": "m",
                            "code": {
                                "coding": [
                                    {"system": RXNORM, "code": "617314", "display": "atorvastatin"}
                                ]
                            },
                        }
                    ],
                    "medicationReference": {"reference": "#m"},
                    "subject": {"reference": "urn:uuid:pat-1"},
                    "effectivePeriod": {"start": "2019-05"},
                    "dosage": [
                        {
                            "text": "one tablet twice a day",
                            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                            "doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg"}}],
                        }
                    ],
                },
            },
            {"fullUrl": "urn:uuid:doc-1", "resource": document_reference()},
            {
                "fullUrl": "urn:uuid:org-1",
                "resource": {"resourceType": "Organization", "id": "org-1", "name": "Lab"},
            },
        ],
    }


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()
