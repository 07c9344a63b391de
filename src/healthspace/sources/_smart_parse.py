"""Fetched FHIR resources through the FHIR parser, so a synced record maps like a file's.

Each resource goes to ``fhir.parse_resource_bytes`` on its own, as a one-entry
Bundle whose ``fullUrl`` is its address on the server (``{base}/Type/id``):

- identity: the parser names a resource by its fullUrl, so two portals that both
  have an ``Observation/123`` never overwrite each other's record;
- links: the parser names the target of a reference it cannot resolve inside
  its input ``fhir:Type/id``; the target was fetched on another page, under its
  fullUrl identity, so those links are re-based onto the same server
  (``fhir:{base}/Type/id``) and a report's results, an observation's encounter,
  ... point at the records this sync stored. The resource JSON kept beside each
  record is the server's, unchanged;
- stability: provenance names the resource's address and the hash of what was
  parsed, which depends on the resource alone, so an unchanged resource read
  again is an exact duplicate, not an update.

References to resources fetched elsewhere in the sync are expected, so the
parser's "reference not found in the file" warnings are counted, not shown.
Resources that fail R4 validation are skipped with a warning, not fatal: a portal
sync should not fail whole on one malformed resource.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson

from healthspace.model import Attached, Sample, SampleBatch
from healthspace.model.records import AnyRecord
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.fhir import parse_resource_bytes

__all__ = ["PageParser", "rebase_links"]

SOURCE = "smart"
# What the parser derives from a relative reference it could not resolve.
_RELATIVE_LINK = re.compile(r"^fhir:([A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64})$")
_EXPECTED_WARNING = "reference not found in the file"


def rebase_links(record: AnyRecord, base: str) -> AnyRecord:
    """``record`` with links to ``fhir:Type/id`` re-based to ``fhir:{base}/Type/id``."""

    def rebase(value: str) -> str:
        found = _RELATIVE_LINK.match(value)
        return f"fhir:{base}/{found.group(1)}" if found else value

    update: dict[str, Any] = {}
    for name in type(record).model_fields:
        if name == "source_id":
            continue
        value = getattr(record, name)
        if isinstance(value, str):
            new: Any = rebase(value)
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            new = tuple(rebase(v) for v in value)
        else:
            continue
        if new != value:
            update[name] = new
    return record.model_copy(update=update) if update else record


class PageParser:
    """Parses the resources of one sync and keeps counts and warnings."""

    def __init__(self, name: str, base: str) -> None:
        self.name = name
        self.base = base.rstrip("/")
        self.counts: Counter[str] = Counter()
        self.unmapped: Counter[str] = Counter()
        self.warnings: list[str] = []
        self.cross_references = 0

    def _rebased(self, item: Item) -> Item:
        if isinstance(item, Attached):
            return dataclasses.replace(item, record=rebase_links(item.record, self.base))
        if isinstance(item, Sample | SampleBatch):  # samples carry no links
            return item
        return rebase_links(item, self.base)

    def parse(
        self, resource_type: str, number: int, entries: list[dict[str, Any]]
    ) -> Iterator[Item]:
        if not entries:
            return
        page = InputFile.from_bytes(b"", f"{self.name}/{resource_type} page {number}")
        ctx = ImportContext(file=page, file_sha256="0" * 64)
        for entry in entries:
            resource = entry["resource"]
            rtype = str(resource.get("resourceType"))
            rid = resource.get("id")
            entry_out: dict[str, Any] = {"resource": resource}
            if isinstance(rid, str) and rid:
                entry_out["fullUrl"] = f"{self.base}/{rtype}/{rid}"
            name = entry_out.get("fullUrl") or f"{page.name}, {rtype}"
            data = orjson.dumps(
                {"resourceType": "Bundle", "type": "collection", "entry": [entry_out]}
            )
            for item in parse_resource_bytes(data, name, ctx, source=SOURCE, on_invalid="skip"):
                yield self._rebased(item)
            self.counts[rtype] += 1
        for warning in ctx.warnings:
            if _EXPECTED_WARNING in warning:
                self.cross_references += 1
            else:
                self.warnings.append(warning)
        self.unmapped.update(ctx.unmapped)
