"""Documents: original files (PDFs, images, C-CDA XML), referenced, never embedded."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from healthspace.model.coding import Code
from healthspace.model.provenance import Sha256Hex
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Document"]


class Document(Record):
    """A file the person brought in (FHIR DocumentReference).

    The bytes live in the encrypted blob store; ``content_ref`` names that blob.
    """

    kind: Literal["document"] = "document"

    title: str | None = None
    media_type: str = Field(pattern=r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")
    sha256: Sha256Hex
    size: int = Field(ge=0)
    date: PartialDateTime | None = None
    content_ref: str | None = None
    doc_type: Code | None = None  # LOINC document type, e.g. 34133-9 summary of episode
    category: str | None = None
    author: str | None = None
    description: str | None = None
    file_name: str | None = None
    language: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.date)

    def primary_code(self) -> Code | None:
        return self.doc_type

    def display_text(self) -> str:
        return label(self.title or self.file_name, (self.doc_type,), "Document")

    def summary_value(self) -> SummaryValue:
        return self.media_type, None
