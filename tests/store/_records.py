"""Builders for synthetic records used across store tests."""

from __future__ import annotations

import hashlib

from healthspace.model import (
    LOINC,
    Code,
    Document,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
)

CHOLESTEROL = Code(system=LOINC, code="2093-3", display="Cholesterol [Mass/volume] in Serum")
HBA1C = Code(system=LOINC, code="4548-4", display="Hemoglobin A1c")


def lab(
    n: int,
    *,
    code: Code = CHOLESTEROL,
    value: float | None = None,
    note: str | None = None,
    unit: str = "mg/dL",
) -> Observation:
    return Observation(
        source_id=f"test-lab:{code.code}:{n}",
        code=code,
        category="laboratory",
        value=QuantityValue(
            quantity=Quantity(value=value if value is not None else 150.0 + n, unit=unit)
        ),
        effective=PartialDateTime.parse(f"{2000 + n % 25:04d}-{1 + n % 12:02d}-{1 + n % 28:02d}"),
        note=note,
        provenance=Provenance(
            source="test", file_name="labs.json", original_ref=f"Observation/{n}"
        ),
    )


def document(data: bytes, *, title: str = "Discharge summary") -> Document:
    return Document(
        source_id="test-doc:" + hashlib.sha256(data).hexdigest()[:16],
        title=title,
        media_type="application/pdf",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        date=PartialDateTime.parse("2024-05-06"),
    )
