"""A synthetic person for ``healthspace demo``: generated, deterministic, nobody real.

Five years of care as a FHIR R4 collection Bundle (the same path real portal
downloads take) plus ninety days of wearable samples. Codes are real LOINC,
SNOMED CT, RxNorm and CVX codes; values are invented.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from healthspace.model import SampleBatch

__all__ = ["DEMO_SEED", "demo_bundle", "demo_samples"]

DEMO_SEED = 20261121
_NS = uuid.UUID("6f1c1f5e-3d2b-4c8a-9a57-0d6c1b2a7e41")

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"

# (LOINC, display, unit, reference low, reference high, start value, yearly drift, noise)
_LABS: tuple[tuple[str, str, str, float | None, float | None, float, float, float], ...] = (
    ("2093-3", "Total Cholesterol", "mg/dL", None, 200.0, 188.0, 6.0, 6.0),
    ("18262-6", "Low Density Lipoprotein Cholesterol", "mg/dL", None, 100.0, 112.0, 9.0, 5.0),
    ("2085-9", "High Density Lipoprotein Cholesterol", "mg/dL", 40.0, None, 52.0, -1.0, 2.0),
    ("2571-8", "Triglycerides", "mg/dL", None, 150.0, 128.0, 5.0, 12.0),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 5.6, 0.16, 0.08),
    ("2339-0", "Glucose", "mg/dL", 70.0, 99.0, 96.0, 2.5, 4.0),
    ("38483-4", "Creatinine", "mg/dL", 0.6, 1.2, 0.85, 0.01, 0.04),
    ("2947-0", "Sodium", "mmol/L", 136.0, 145.0, 140.0, 0.0, 1.5),
    ("6298-4", "Potassium", "mmol/L", 3.5, 5.1, 4.2, 0.0, 0.2),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 15.5, 13.6, 0.0, 0.3),
)


def _id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(str(p) for p in parts)))


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _observation(
    patient: str,
    when: datetime,
    code: str,
    display: str,
    value: float,
    unit: str,
    low: float | None,
    high: float | None,
    category: str,
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id("obs", code, when.isoformat()),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": _coding(LOINC, code, display),
        "subject": {"reference": f"urn:uuid:{patient}"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    if low is not None or high is not None:
        rng: dict[str, Any] = {}
        if low is not None:
            rng["low"] = {"value": low, "unit": unit, "system": UCUM, "code": unit}
        if high is not None:
            rng["high"] = {"value": high, "unit": unit, "system": UCUM, "code": unit}
        obs["referenceRange"] = [rng]
        flag = (
            "H"
            if high is not None and value > high
            else "L"
            if low is not None and value < low
            else "N"
        )
        obs["interpretation"] = [
            _coding(
                "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", flag, flag
            )
        ]
    return obs


def demo_bundle(today: date | None = None) -> dict[str, Any]:
    """Five years of a synthetic person's records as a FHIR R4 collection Bundle."""
    rnd = random.Random(DEMO_SEED)  # noqa: S311 - synthetic demo values, not secrets
    end = today or date(2026, 11, 1)
    patient = _id("patient")
    entries: list[dict[str, Any]] = [
        _entry(
            {
                "resourceType": "Patient",
                "id": patient,
                "name": [{"given": ["Alex"], "family": "Demo"}],
                "gender": "female",
                "birthDate": "1975-04-12",
            }
        )
    ]
    visits = [end - timedelta(days=182 * i + 30) for i in range(10)][::-1]
    for n, day in enumerate(visits):
        when = datetime(day.year, day.month, day.day, 8, 30, tzinfo=UTC)
        years = n / 2
        entries.append(
            _entry(
                {
                    "resourceType": "Encounter",
                    "id": _id("enc", day),
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                    },
                    "type": [_coding(SNOMED, "185349003", "Encounter for check up (procedure)")],
                    "subject": {"reference": f"urn:uuid:{patient}"},
                    "period": {
                        "start": when.isoformat(),
                        "end": (when + timedelta(minutes=30)).isoformat(),
                    },
                }
            )
        )
        for code, display, unit, low, high, start, drift, noise in _LABS:
            value = start + drift * years + rnd.gauss(0, noise)
            digits = 1 if unit in ("%", "g/dL") else 2 if code == "38483-4" else 0
            entries.append(
                _entry(
                    _observation(
                        patient,
                        when,
                        code,
                        display,
                        round(value, digits),
                        unit,
                        low,
                        high,
                        "laboratory",
                    )
                )
            )
        weight = round(71.0 + 0.8 * years + rnd.gauss(0, 0.6), 1)
        entries.append(
            _entry(
                _observation(
                    patient, when, "29463-7", "Body Weight", weight, "kg", None, None, "vital-signs"
                )
            )
        )
        bp = {
            "resourceType": "Observation",
            "id": _id("bp", day),
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": _coding(LOINC, "85354-9", "Blood pressure panel with all children optional"),
            "subject": {"reference": f"urn:uuid:{patient}"},
            "effectiveDateTime": when.isoformat(),
            "component": [
                {
                    "code": _coding(LOINC, "8480-6", "Systolic blood pressure"),
                    "valueQuantity": {
                        "value": round(124 + 2.5 * years + rnd.gauss(0, 4)),
                        "unit": "mm[Hg]",
                        "system": UCUM,
                        "code": "mm[Hg]",
                    },
                },
                {
                    "code": _coding(LOINC, "8462-4", "Diastolic blood pressure"),
                    "valueQuantity": {
                        "value": round(79 + 1.2 * years + rnd.gauss(0, 3)),
                        "unit": "mm[Hg]",
                        "system": UCUM,
                        "code": "mm[Hg]",
                    },
                },
            ],
        }
        entries.append(_entry(bp))
        if day.month >= 9 or day.month <= 2:
            entries.append(
                _entry(
                    {
                        "resourceType": "Immunization",
                        "id": _id("imm", day),
                        "status": "completed",
                        "vaccineCode": _coding(
                            CVX, "140", "Influenza, seasonal, injectable, preservative free"
                        ),
                        "patient": {"reference": f"urn:uuid:{patient}"},
                        "occurrenceDateTime": when.isoformat(),
                        "primarySource": True,
                    }
                )
            )
    onset = visits[4]
    for code, display, diagnosed in (
        ("55822004", "Hyperlipidemia", visits[3]),
        ("15777000", "Prediabetes", onset),
    ):
        entries.append(
            _entry(
                {
                    "resourceType": "Condition",
                    "id": _id("cond", code),
                    "clinicalStatus": _coding(
                        "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "active",
                        "Active",
                    ),
                    "verificationStatus": _coding(
                        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "confirmed",
                        "Confirmed",
                    ),
                    "code": _coding(SNOMED, code, display),
                    "subject": {"reference": f"urn:uuid:{patient}"},
                    "onsetDateTime": diagnosed.isoformat(),
                }
            )
        )
    entries.append(
        _entry(
            {
                "resourceType": "MedicationRequest",
                "id": _id("med", "312961"),
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": _coding(
                    RXNORM, "312961", "Simvastatin 20 MG Oral Tablet"
                ),
                "subject": {"reference": f"urn:uuid:{patient}"},
                "authoredOn": visits[3].isoformat(),
                "dosageInstruction": [
                    {
                        "text": "Take one tablet by mouth every evening",
                        "timing": {
                            "repeat": {
                                "frequency": 1,
                                "period": 1,
                                "periodUnit": "d",
                                "timeOfDay": ["21:00:00"],
                            }
                        },
                        "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
                    }
                ],
            }
        )
    )
    entries.append(
        _entry(
            {
                "resourceType": "AllergyIntolerance",
                "id": _id("allergy", "300913006"),
                "clinicalStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "active",
                    "Active",
                ),
                "code": _coding(SNOMED, "300913006", "Shellfish allergy"),
                "patient": {"reference": f"urn:uuid:{patient}"},
                "criticality": "high",
            }
        )
    )
    return {"resourceType": "Bundle", "id": _id("bundle"), "type": "collection", "entry": entries}


def demo_samples(today: date | None = None, days: int = 90) -> list[SampleBatch]:
    """Ninety days of watch data: hourly heart rate, hourly steps, daily resting heart rate."""
    end = today or date(2026, 11, 1)
    start = datetime(end.year, end.month, end.day, tzinfo=UTC) - timedelta(days=days)
    t0 = int(start.timestamp() * 1000)
    rng = np.random.default_rng(DEMO_SEED)
    hours = np.arange(days * 24, dtype=np.int64)
    t_ms = t0 + hours * 3_600_000
    hour_of_day = hours % 24
    awake = (hour_of_day >= 7) & (hour_of_day <= 22)
    hr = (
        np.where(awake, 74.0, 58.0)
        + 6 * np.sin(hours / 24 * 2 * math.pi)
        + rng.normal(0, 3, len(hours))
    )
    steps = np.where(awake, rng.gamma(2.0, 260.0, len(hours)), 0.0).round()
    day_t = t0 + np.arange(days, dtype=np.int64) * 86_400_000 + 6 * 3_600_000
    resting = 60.0 + rng.normal(0, 1.5, days) + np.linspace(0, -2, days)
    zeros_h = np.zeros(len(hours), dtype=np.int64)
    source = "Demo Watch"
    return [
        SampleBatch("heart_rate", "/min", t_ms, zeros_h, hr.round(), source),
        SampleBatch(
            "steps", "{steps}", t_ms, np.full(len(hours), 3_600_000, dtype=np.int64), steps, source
        ),
        SampleBatch(
            "resting_heart_rate",
            "/min",
            day_t,
            np.zeros(days, dtype=np.int64),
            resting.round(1),
            source,
        ),
    ]
