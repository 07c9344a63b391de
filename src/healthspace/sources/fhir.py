"""FHIR R4 JSON: Bundles, single resources and bulk-data NDJSON -> model records.

Reads every Bundle type (transaction, collection, searchset with paging links,
batch-response with nested Bundles, document, ...), a single resource, or NDJSON with
one resource per line (FHIR Bulk Data). CARIN Blue Button files are FHIR too (a Bundle
of ExplanationOfBenefit, or one) and come through here.

How it works, and where each rule lives:

- parsing uses orjson; a JSON document is read whole, NDJSON is streamed line by line;
- identities, references and the warning rule for references that do not resolve:
  ``_fhir_env``; validation (fhir.resources R4B, plus required code bindings):
  ``_fhir_validate``; bundle walking, places and unmapped types: ``_fhir_walk``;
- per resource type: ``_fhir_observation`` (Observation, DiagnosticReport),
  ``_fhir_clinical`` (Patient, Condition, AllergyIntolerance, Immunization,
  Procedure), ``_fhir_care`` (MedicationRequest/Statement, Encounter, CarePlan),
  ``_fhir_docs`` (DocumentReference, attachments), ``_fhir_claims`` (Coverage,
  ExplanationOfBenefit).

Every record keeps the resource's JSON (``Attached.original``) so an export is
faithful, and provenance ``source="fhir"``, the file name and sha256, and
``original_ref="ResourceType/id"``. Bad input raises :class:`SourceError` naming the
file, the place (``entry 12 (Observation/abc)``, ``line 40``) and the reason, never a
value from the record.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Final

import orjson

from healthspace.errors import SourceError
from healthspace.hookspecs import hookimpl
from healthspace.sources._fhir_env import Env
from healthspace.sources._fhir_walk import KIND_OF_TYPE, OnInvalid, Walker
from healthspace.sources.base import ImportContext, InputFile, Item, Source, SourceManifest

__all__ = [
    "KIND_OF_TYPE",
    "MAX_JSON_BYTES",
    "FhirSource",
    "looks_like_fhir",
    "parse_resource_bytes",
]

_BOM: Final = b"\xef\xbb\xbf"
# A JSON document is parsed whole (orjson needs it in memory); NDJSON streams instead.
MAX_JSON_BYTES: Final = 1 << 30
# JSON strings and structural characters: enough to find top-level keys in a file's head.
_TOKEN_RE: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:]')


def looks_like_fhir(head: bytes) -> bool:
    """True when the first JSON object of ``head`` has a top-level ``resourceType`` key.

    That covers a resource or Bundle, the first line of NDJSON, and a JSON array whose
    first element is a resource (claimed so that parsing can say why it is refused).
    """
    text = head.removeprefix(_BOM).lstrip()
    if text[:1] == b"[":
        text = text[1:].lstrip()
        if text[:1] != b"{":
            return False
    elif text[:1] != b"{":
        return False
    depth = 0
    previous = b""
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
            if depth <= 0:
                return False
        elif token == b":" and depth == 1 and previous == b'"resourceType"':
            return True
        previous = token
    return False


def _json_error(name: str, exc: orjson.JSONDecodeError) -> SourceError:
    return SourceError(
        "not valid JSON (malformed or truncated)",
        file=name,
        place=f"line {exc.lineno}, column {exc.colno}",
    )


def _load(data: bytes, name: str) -> object:
    body = data.removeprefix(_BOM)
    if not body.strip():
        raise SourceError("the file is empty", file=name)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _json_error(name, exc) from None


def _read(file: InputFile) -> tuple[object, bool]:
    """(document, False) for JSON; (None, True) for NDJSON (several JSON lines)."""
    with file.open() as fh:
        first = fh.readline(MAX_JSON_BYTES + 1).removeprefix(_BOM)
        if first.lstrip().startswith(b"{"):
            try:
                doc = orjson.loads(first)
            except orjson.JSONDecodeError:
                doc = None  # a pretty-printed document: read it whole below
            if isinstance(doc, dict):
                following = next((line for line in fh if line.strip()), None)
                return (None, True) if following is not None else (doc, False)
        if file.size > MAX_JSON_BYTES:
            raise SourceError(
                f"a JSON document over {MAX_JSON_BYTES >> 20} MiB is not read whole; "
                "export it as bulk-data NDJSON (one resource per line)",
                file=file.name,
            )
        return _load(first + fh.read(), file.name), False


class FhirSource:
    """FHIR R4 JSON files: see the module docstring."""

    manifest = SourceManifest(
        id="fhir",
        name="FHIR R4 (JSON, Bundles, bulk-data NDJSON, CARIN Blue Button)",
        reads=tuple(dict.fromkeys(KIND_OF_TYPE.values())),
        purpose="Bring in medical records exported by a patient portal, an EHR or a payer.",
    )

    def sniff(self, file: InputFile, head: bytes) -> bool:
        return looks_like_fhir(head)

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        env = Env(ctx, file_name=file.name, file_sha256=ctx.file_sha256)
        walker = Walker(env)
        doc, is_ndjson = _read(file)
        if is_ndjson:
            yield from walker.ndjson(file)
        else:
            yield from walker.document(doc)


def parse_resource_bytes(
    data: bytes,
    name: str,
    ctx: ImportContext,
    *,
    source: str = "fhir",
    on_invalid: OnInvalid = "raise",
) -> Iterator[Item]:
    """Map one FHIR R4 JSON document held in memory: a resource or a Bundle.

    For importers that find FHIR inside something else (Apple Health's
    ``clinical-records/*.json``). ``name`` is what errors, warnings and provenance call
    the document (e.g. ``export.zip!clinical-records/Observation-1.json``); provenance
    carries ``source`` and the sha256 of ``data``. Findings go to ``ctx`` (warnings,
    unmapped types). With ``on_invalid="skip"`` a resource that fails R4 validation
    (e.g. a DSTU2 resource) is skipped with a warning and counted in ``ctx.unmapped``
    as ``"<Type> (invalid)"`` instead of raising. Raises SourceError for bad input.
    """
    env = Env(ctx, file_name=name, file_sha256=hashlib.sha256(data).hexdigest(), source=source)
    yield from Walker(env, on_invalid=on_invalid).document(_load(data, name))


@hookimpl
def register_sources() -> list[Source]:
    return [FhirSource()]
