"""A record together with the bytes it came from."""

from __future__ import annotations

from dataclasses import dataclass

from healthspace.model.records import AnyRecord

__all__ = ["Attached"]


@dataclass(frozen=True, slots=True)
class Attached:
    """A record plus what the store keeps beside it, encrypted.

    ``original`` is the source's own serialisation of this record (a FHIR resource,
    a C-CDA entry) so an export can be faithful; ``file`` is a whole file the record
    describes (a document's PDF), stored once per content hash.
    """

    record: AnyRecord
    original: bytes | None = None
    file: bytes | None = None
