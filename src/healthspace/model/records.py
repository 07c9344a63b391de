"""Every record kind in one tagged union, and its fast JSON form.

``record_to_json`` / ``record_from_json`` are what the store encrypts and decrypts, so
they go through one module-level TypeAdapter (built once, validated in Rust).
"""

from __future__ import annotations

from typing import Annotated, Final, TypeAlias, get_args

from pydantic import Field, TypeAdapter

from healthspace.model.allergy import Allergy
from healthspace.model.care_plan import CarePlan
from healthspace.model.condition import Condition
from healthspace.model.coverage import Claim, Coverage
from healthspace.model.document import Document
from healthspace.model.encounter import Encounter
from healthspace.model.immunization import Immunization
from healthspace.model.medication import Medication
from healthspace.model.observation import Observation
from healthspace.model.patient import Patient
from healthspace.model.procedure import Procedure
from healthspace.model.record import Record
from healthspace.model.report import DiagnosticReport
from healthspace.model.sample import Sample, SampleBatch
from healthspace.model.wellness import NutritionDay, SleepSession, Workout

__all__ = [
    "RECORD_CLASSES",
    "RECORD_KINDS",
    "AnyRecord",
    "ModelItem",
    "record_class",
    "record_from_json",
    "record_to_json",
]

AnyRecord: TypeAlias = Annotated[
    Observation
    | Condition
    | Medication
    | Allergy
    | Immunization
    | Encounter
    | Procedure
    | DiagnosticReport
    | Document
    | CarePlan
    | Coverage
    | Claim
    | Workout
    | SleepSession
    | NutritionDay
    | Patient,
    Field(discriminator="kind"),
]

# What a source yields and store.ingest accepts.
ModelItem: TypeAlias = AnyRecord | Sample | SampleBatch


def _classes() -> dict[str, type[Record]]:
    union = get_args(AnyRecord)[0]
    classes: dict[str, type[Record]] = {}
    for cls in get_args(union):
        kind = cls.model_fields["kind"].default
        classes[kind] = cls
    return classes


RECORD_CLASSES: Final[dict[str, type[Record]]] = _classes()
RECORD_KINDS: Final[tuple[str, ...]] = tuple(RECORD_CLASSES)

_ADAPTER: Final[TypeAdapter[AnyRecord]] = TypeAdapter(AnyRecord)


def record_class(kind: str) -> type[Record]:
    """The record class for a kind; KeyError naming the kind if there is none."""
    try:
        return RECORD_CLASSES[kind]
    except KeyError:
        raise KeyError(f"unknown record kind {kind!r}") from None


def record_to_json(record: Record) -> bytes:
    """Compact JSON for a record; fields that are None are left out."""
    # The record's own serializer: the same Rust code as the adapter, with no union lookup.
    return record.__pydantic_serializer__.to_json(record, exclude_none=True)


def record_from_json(data: bytes | str) -> AnyRecord:
    """The record serialised by :func:`record_to_json`; raises ValueError when invalid."""
    return _ADAPTER.validate_json(data)
