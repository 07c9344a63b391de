"""What the FHIR mappers of one file share: identities, references, places and warnings.

Identity: a resource's ``source_id`` is ``fhir:`` + its Bundle ``fullUrl`` when it has
one (``urn:uuid:...`` included), else ``fhir:ResourceType/id``, else (no id at all)
``fhir:ResourceType/sha256-<hex>`` over its canonical JSON (sorted keys), so the same
input always yields the same ids. A contained resource is ``<parent source_id>#<id>``.

References resolve, in order: ``#id`` against the resource's own ``contained``; the
exact string against the file's fullUrls; then ``Type/id`` (relative, absolute or
``/_history/``-versioned) against the resources of the file. A reference that resolves
nowhere still yields an id (``fhir:`` + its ``Type/id``, or the ``urn:`` itself) so
records link up when the target arrives in another file (bulk-data NDJSON, where
identities are ``fhir:Type/id``, relies on this).

The warning rule for references that do not resolve (warnings never fail an import):

- ``#id`` and ``urn:uuid:``/``urn:oid:`` references are file-local by definition: a
  miss is always a warning;
- relative and absolute ``Type/id`` references warn only inside a Bundle, which is
  expected to carry what it refers to; a single resource or a bulk-data NDJSON file
  (split by type by design) refers outside itself normally;
- only references the mapping uses are checked: the subject/patient, the encounter,
  DiagnosticReport.result, medicationReference, CarePlan.addresses,
  Encounter.diagnosis.condition and ExplanationOfBenefit.insurance.coverage. Names
  (performer, provider, ...) fall back to the reference's ``display`` silently.

Warnings name the place and the field, never the reference itself, and repeated
misses of one target are reported once with a count.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from healthspace.model import AnyRecord, Attached, PartialDateTime, Provenance
from healthspace.sources._fhir_types import JSON, dicts, human_name, string, when
from healthspace.sources.base import ImportContext

__all__ = ["Env", "Res", "Target", "original_ref", "resource_place", "source_id"]

# Resource types whose names stand in for references (performer, provider, payer, ...).
_NAMED_TYPES = frozenset(
    {"Organization", "Practitioner", "PractitionerRole", "Patient", "RelatedPerson", "Location"}
)


def source_id(resource: JSON, full_url: object = None) -> str:
    if isinstance(full_url, str) and full_url.strip():
        return f"fhir:{full_url.strip()}"
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    if isinstance(rid, str) and rid.strip():
        return f"fhir:{rtype}/{rid.strip()}"
    digest = hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"fhir:{rtype}/sha256-{digest}"


def original_ref(resource: JSON, full_url: object = None) -> str:
    rid = string(resource.get("id"))
    if rid is not None:
        return f"{resource.get('resourceType')}/{rid}"
    if isinstance(full_url, str) and full_url.strip():
        return full_url.strip()
    return str(resource.get("resourceType"))


def resource_place(where: str, resource: JSON) -> str:
    """``entry 12 (Observation/abc)``: the place plus ResourceType/id when known."""
    rtype = resource.get("resourceType")
    rid = string(resource.get("id"))
    label = f"{rtype}/{rid}" if rid is not None else str(rtype)
    return f"{where} ({label})" if where else label


def _type_and_id(reference: str) -> str | None:
    """``Type/id`` of a relative, absolute or versioned literal reference."""
    parts = [p for p in reference.split("?")[0].split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}/{parts[-1]}"
    return None


@dataclass(frozen=True)
class Target:
    resource: JSON
    source_id: str


@dataclass
class _Miss:
    place: str
    field: str
    count: int = 1


@dataclass
class Env:
    """One file's shared state. ``check_relative`` is True inside Bundles (see the rule)."""

    ctx: ImportContext
    file_name: str
    file_sha256: str
    source: str = "fhir"
    check_relative: bool = False
    by_url: dict[str, Target] = field(default_factory=dict)
    by_type_id: dict[str, Target] = field(default_factory=dict)
    _misses: dict[tuple[str, str], _Miss] = field(default_factory=dict)
    _tolerated: dict[tuple[str, str], _Miss] = field(default_factory=dict)

    def add(self, resource: JSON, full_url: object, sid: str) -> None:
        target = Target(resource, sid)
        if isinstance(full_url, str) and full_url.strip():
            self.by_url.setdefault(full_url.strip(), target)
        rid = string(resource.get("id"))
        if rid is not None:
            self.by_type_id.setdefault(f"{resource.get('resourceType')}/{rid}", target)

    def lookup(self, reference: str) -> Target | None:
        found = self.by_url.get(reference)
        if found is not None:
            return found
        key = _type_and_id(reference)
        return self.by_type_id.get(key) if key is not None else None

    def missed(self, place: str, field_path: str, reference: str) -> None:
        key = (field_path, reference)
        if key in self._misses:
            self._misses[key].count += 1
        else:
            self._misses[key] = _Miss(place, field_path)

    def tolerate(self, place: str, rtype: str, path: str) -> None:
        """A required element is absent: kept (real exports do this), reported once per path."""
        key = (rtype, path)
        if key in self._tolerated:
            self._tolerated[key].count += 1
        else:
            self._tolerated[key] = _Miss(place, path)

    def flush(self) -> None:
        """Report the aggregated warnings; called once the whole file is mapped."""
        for miss in self._misses.values():
            more = f" ({miss.count} references to it)" if miss.count > 1 else ""
            self.ctx.warn(miss.place, f"{miss.field}: reference not found in the file{more}")
        for (rtype, _), miss in self._tolerated.items():
            count = f" ({miss.count} times in {rtype} resources)" if miss.count > 1 else ""
            self.ctx.warn(miss.place, f"required element {miss.field} is missing{count}; kept")
        self._misses.clear()
        self._tolerated.clear()


class Res:
    """One resource being mapped: its identity and place, and reference helpers."""

    def __init__(self, env: Env, resource: JSON, place: str, sid: str, full_url: object) -> None:
        self.env = env
        self.json = resource
        self.place = place
        self.source_id = sid
        self.original_ref = original_ref(resource, full_url)
        self._contained = {
            rid: item
            for item in dicts(resource.get("contained"))
            if (rid := string(item.get("id"))) is not None
        }

    def get(self, key: str) -> Any:
        return self.json.get(key)

    def provenance(self) -> Provenance:
        return Provenance(
            source=self.env.source,
            file_name=self.env.file_name,
            file_sha256=self.env.file_sha256,
            original_ref=self.original_ref,
        )

    def attach(self, record: AnyRecord, file: bytes | None = None) -> Attached:
        """The record with this resource's JSON kept beside it, for a faithful export."""
        return Attached(record, original=orjson.dumps(self.json), file=file)

    def when(self, key: str) -> PartialDateTime | None:
        return when(self.json.get(key), key)

    def resolve(self, ref: object, field_path: str, *, check: bool = True) -> Target | None:
        """The resource a Reference points to, or None (a warning if ``check``, see the rule)."""
        if not isinstance(ref, dict):
            return None
        reference = string(ref.get("reference"))
        if reference is None:
            return None
        if reference.startswith("#"):
            contained = self._contained.get(reference[1:])
            if contained is not None:
                return Target(contained, f"{self.source_id}{reference}")
            if check:  # "#id" is local to this resource: one finding per resource
                self.env.missed(self.place, field_path, f"{self.place}{reference}")
            return None
        found = self.env.lookup(reference)
        if found is None and check:
            local = reference.startswith("urn:")
            if local or self.env.check_relative:
                self.env.missed(self.place, field_path, reference)
        return found

    def ref_id(self, ref: object, field_path: str, *, check: bool = True) -> str | None:
        """The source_id a Reference points to, resolved or derived from its text."""
        target = self.resolve(ref, field_path, check=check)
        if target is not None:
            return target.source_id
        reference = string(ref.get("reference")) if isinstance(ref, dict) else None
        if reference is None or reference.startswith("#"):
            return None
        if reference.startswith("urn:"):
            return f"fhir:{reference}"
        return f"fhir:{_type_and_id(reference) or reference}"

    def ref_ids(self, refs: object, field_path: str) -> tuple[str, ...]:
        found = (self.ref_id(ref, field_path) for ref in dicts(refs))
        return tuple(dict.fromkeys(sid for sid in found if sid is not None))

    def name(self, ref: object) -> str | None:
        """A Reference as a name: its display, else the name of what it resolves to
        (Organization, Practitioner, Patient, Location, ...), else its identifier value."""
        if not isinstance(ref, dict):
            return None
        display = string(ref.get("display"))
        if display is not None:
            return display
        target = self.resolve(ref, "", check=False)
        if target is None or target.resource.get("resourceType") not in _NAMED_TYPES:
            identifier = ref.get("identifier")
            return string(identifier.get("value")) if isinstance(identifier, dict) else None
        named = target.resource
        if isinstance(named.get("name"), str):
            return string(named["name"])
        return human_name(named.get("name"))

    def names(self, refs: object) -> tuple[str, ...]:
        found = (self.name(ref) for ref in dicts(refs))
        return tuple(dict.fromkeys(n for n in found if n))
