"""Walking FHIR JSON: Bundles of every type (nested too), single resources, NDJSON lines.

A document is flattened first (every resource with its place and identity, nested
Bundles included, so references resolve across the whole file), then each resource is
validated and mapped in file order. Resources of a type we do not map are counted in
``ctx.unmapped`` by resourceType; so are ``response.outcome`` resources of a
batch-response. Places read ``entry 12 (Observation/abc)`` (the index into
``Bundle.entry``), ``entry 2, entry 5 (...)`` inside a nested Bundle, and
``line 40 (...)`` in NDJSON (1-based).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

import orjson
from pydantic import ValidationError

from healthspace.errors import SourceError
from healthspace.sources._fhir_care import map_care_plan, map_encounter, map_medication
from healthspace.sources._fhir_claims import map_coverage, map_eob
from healthspace.sources._fhir_clinical import (
    map_allergy,
    map_condition,
    map_immunization,
    map_patient,
    map_procedure,
)
from healthspace.sources._fhir_docs import map_document_reference
from healthspace.sources._fhir_env import Env, Res, resource_place, source_id
from healthspace.sources._fhir_observation import map_diagnostic_report, map_observation
from healthspace.sources._fhir_types import JSON, MappingError, Unusable, dicts
from healthspace.sources._fhir_validate import is_resource_type, validate
from healthspace.sources.base import InputFile, Item

__all__ = ["KIND_OF_TYPE", "OnInvalid", "Walker"]

OnInvalid = Literal["raise", "skip"]

MAPPERS: Final[dict[str, Callable[[Res], list[Item]]]] = {
    "Patient": map_patient,
    "Observation": map_observation,
    "DiagnosticReport": map_diagnostic_report,
    "Condition": map_condition,
    "MedicationRequest": map_medication,
    "MedicationStatement": map_medication,
    "AllergyIntolerance": map_allergy,
    "Immunization": map_immunization,
    "Encounter": map_encounter,
    "Procedure": map_procedure,
    "DocumentReference": map_document_reference,
    "CarePlan": map_care_plan,
    "Coverage": map_coverage,
    "ExplanationOfBenefit": map_eob,
}

# The record kind each mapped resource type becomes (besides attachments -> "document").
KIND_OF_TYPE: Final[dict[str, str]] = {
    "Patient": "patient",
    "Observation": "observation",
    "DiagnosticReport": "report",
    "Condition": "condition",
    "MedicationRequest": "medication",
    "MedicationStatement": "medication",
    "AllergyIntolerance": "allergy",
    "Immunization": "immunization",
    "Encounter": "encounter",
    "Procedure": "procedure",
    "DocumentReference": "document",
    "CarePlan": "care_plan",
    "Coverage": "coverage",
    "ExplanationOfBenefit": "claim",
}

_MAX_NESTING: Final = 8
# NDJSON lines worth indexing up front: what references are resolved into names or codes.
_LOOKUP_RE: Final = re.compile(
    rb'"resourceType"\s*:\s*"(?:Organization|Practitioner|PractitionerRole|Location|'
    rb'Medication|Patient|RelatedPerson|Specimen|Bundle)"'
)
_SAFE_ERRORS: Final = (ValueError, TypeError, KeyError, AttributeError, IndexError, ArithmeticError)


@dataclass(frozen=True)
class _Entry:
    resource: JSON
    place: str
    full_url: str | None
    source_id: str


class Walker:
    """Maps the resources of one input; ``env`` carries its identity and warnings."""

    def __init__(self, env: Env, *, on_invalid: OnInvalid = "raise") -> None:
        self.env = env
        self.on_invalid = on_invalid

    def error(self, place: str | None, reason: str) -> SourceError:
        return SourceError(reason, file=self.env.file_name, place=place or None)

    # -- structure -------------------------------------------------------------------

    def _type(self, resource: JSON, where: str) -> str:
        if "resourceType" not in resource:
            raise self.error(where or "top level", "the object has no resourceType")
        rtype = resource["resourceType"]
        if not is_resource_type(rtype):
            raise self.error(where or "top level", "resourceType is not a FHIR R4 resource type")
        return str(rtype)

    def _entry(self, resource: JSON, where: str, full_url: str | None) -> _Entry:
        return _Entry(
            resource, resource_place(where, resource), full_url, source_id(resource, full_url)
        )

    def _flatten(self, bundle: JSON, prefix: str, depth: int) -> Iterator[_Entry]:
        if depth > _MAX_NESTING:
            raise self.error(prefix.rstrip(", ") or None, "Bundles nested too deeply")
        for link in dicts(bundle.get("link")):
            if link.get("relation") == "next":
                self.env.ctx.warn(
                    prefix.rstrip(", ") or "Bundle",
                    "the Bundle has a next page; only this page was imported",
                )
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            raise self.error(f"{prefix}entry", "Bundle.entry is not a JSON array")
        for n, entry in enumerate(entries):
            where = f"{prefix}entry {n}"
            if not isinstance(entry, dict):
                raise self.error(where, "the entry is not a JSON object")
            full_url = entry.get("fullUrl")
            if full_url is not None and not isinstance(full_url, str):
                raise self.error(where, "fullUrl is not a string")
            response = entry.get("response")
            if isinstance(response, dict) and isinstance(response.get("outcome"), dict):
                outcome = response["outcome"]
                self.env.ctx.unmapped[self._type(outcome, f"{where} response.outcome")] += 1
            resource = entry.get("resource")
            if resource is None:
                continue  # a DELETE in a transaction, or a response without a body
            if not isinstance(resource, dict):
                raise self.error(where, "entry.resource is not a JSON object")
            if self._type(resource, where) == "Bundle":
                yield from self._flatten(resource, f"{where}, ", depth + 1)
            else:
                yield self._entry(resource, where, full_url)

    def _gather(self, doc: object, where: str) -> list[_Entry]:
        if isinstance(doc, list):
            raise self.error(
                where or "top level",
                "a JSON array is not FHIR JSON: expected one resource or a Bundle object "
                "(or NDJSON, one resource per line)",
            )
        if not isinstance(doc, dict):
            raise self.error(where or "top level", "not a JSON object")
        if self._type(doc, where) == "Bundle":
            return list(self._flatten(doc, f"{where}, " if where else "", 0))
        return [self._entry(doc, where, None)]

    # -- mapping ---------------------------------------------------------------------

    def document(self, doc: object, where: str = "") -> Iterator[Item]:
        """Every item of one JSON document (a Bundle of any type, or one resource)."""
        entries = self._gather(doc, where)
        if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            self.env.check_relative = True
        for entry in entries:
            self.env.add(entry.resource, entry.full_url, entry.source_id)
        for entry in entries:
            yield from self._map(entry)
        self.env.flush()

    def ndjson(self, file: InputFile) -> Iterator[Item]:
        """Bulk-data NDJSON, streamed: referenced names first, then one resource per line."""
        for lineno, line in self._lines(file):
            if _LOOKUP_RE.search(line) is not None:
                doc = self._load_line(line, lineno)
                for entry in self._gather(doc, f"line {lineno}"):
                    self.env.add(entry.resource, entry.full_url, entry.source_id)
        for lineno, line in self._lines(file):
            for entry in self._gather(self._load_line(line, lineno), f"line {lineno}"):
                yield from self._map(entry)
        self.env.flush()

    def _lines(self, file: InputFile) -> Iterator[tuple[int, bytes]]:
        with file.open() as fh:
            for lineno, line in enumerate(fh, 1):
                if lineno == 1:
                    line = line.removeprefix(b"\xef\xbb\xbf")
                if line.strip():
                    yield lineno, line

    def _load_line(self, line: bytes, lineno: int) -> object:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self.error(f"line {lineno}", "not valid JSON") from None

    def _map(self, entry: _Entry) -> Iterator[Item]:
        resource, place = entry.resource, entry.place
        rtype = str(resource["resourceType"])
        mapper = MAPPERS.get(rtype)
        if mapper is None:
            self.env.ctx.unmapped[rtype] += 1
            return
        try:
            missing = validate(resource, rtype)
        except MappingError as exc:
            if self.on_invalid == "skip":
                self.env.ctx.warn(place, f"{exc.field}: {exc.reason}; skipped")
                self.env.ctx.unmapped[f"{rtype} (invalid)"] += 1
                return
            raise self.error(place, f"{exc.field}: {exc.reason}") from None
        for path in missing:
            self.env.tolerate(place, rtype, path)
        res = Res(self.env, resource, place, entry.source_id, entry.full_url)
        try:
            items = mapper(res)
        except Unusable as exc:
            self.env.ctx.warn(place, f"{exc.reason}; not imported")
            self.env.ctx.unmapped[f"{rtype} ({exc.reason})"] += 1
            return
        except MappingError as exc:
            raise self.error(place, f"{exc.field}: {exc.reason}") from None
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            path = ".".join(str(p) for p in first["loc"])
            raise self.error(place, f"cannot be mapped ({path}: {first['type']})") from None
        except _SAFE_ERRORS as exc:
            raise self.error(place, f"cannot be mapped ({type(exc).__name__})") from None
        yield from items
