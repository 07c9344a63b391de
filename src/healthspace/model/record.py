"""The base every clinical and wellness record shares."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from healthspace.model.coding import Code
from healthspace.model.provenance import Provenance
from healthspace.model.timing import PartialDateTime

__all__ = ["Record", "SummaryValue", "first_time", "label"]

SummaryValue = tuple[float | str | None, str | None]


def first_time(*moments: PartialDateTime | None) -> datetime | None:
    """The UTC start of the first moment that is known; the usual ``sort_time``."""
    for moment in moments:
        if moment is not None:
            return moment.start
    return None


def label(text: str | None, codes: tuple[Code | None, ...], fallback: str) -> str:
    """Free text if given, else the first code display, else the first code, else fallback."""
    if text:
        return text
    present = [code for code in codes if code is not None]
    for code in present:
        if code.display:
            return code.display
    return present[0].code if present else fallback


class Record(BaseModel):
    """One canonical record, immutable, identified by where it came from.

    ``source_id`` is stable across re-imports of the same input, so importing twice adds
    nothing. Each concrete record declares ``kind`` as a literal; ``records.AnyRecord``
    discriminates on it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    source_id: str = Field(min_length=1)
    provenance: Provenance | None = None
    status: str | None = None
    note: str | None = None

    # Identity is the source identity; hashing it keeps records with dict fields hashable.
    def __hash__(self) -> int:
        return hash((self.kind, self.source_id))

    @abstractmethod
    def sort_time(self) -> datetime | None:
        """The UTC instant the record is filed under (the stored plaintext timestamp)."""

    @abstractmethod
    def primary_code(self) -> Code | None:
        """The code that best names what the record is about."""

    @abstractmethod
    def display_text(self) -> str:
        """A short human label for listings."""

    @abstractmethod
    def summary_value(self) -> SummaryValue:
        """(value, unit) as the source recorded them, for listings; (None, None) if none."""
