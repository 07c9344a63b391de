"""What every source is: a manifest, a sniffer and a pure parser.

A source turns one input (a file, or a whole archive it understands) into model
items. It does no I/O beyond reading its input, touches no database and no
network (the SMART client, which fetches, is the one exception and lives apart).
Errors are :class:`healthspace.errors.SourceError` naming the file and the place.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from healthspace.model import Attached, ModelItem

__all__ = [
    "ImportContext",
    "InputFile",
    "Item",
    "Source",
    "SourceManifest",
]

Item = ModelItem | Attached


@dataclass(frozen=True)
class SourceManifest:
    """What a source reads and why, shown to the person before they connect it."""

    id: str
    name: str
    reads: tuple[str, ...]  # record kinds or metrics it produces
    purpose: str
    data_leaves_server: bool = False
    spaces: tuple[str, ...] = ("health",)
    # Extracted values (PDF text, OCR) are held for the person's review.
    needs_review: bool = False


@dataclass(frozen=True)
class InputFile:
    """One input: a name to show in errors, and a way to read its bytes."""

    name: str
    size: int
    opener: Callable[[], IO[bytes]]
    path: Path | None = None

    def open(self) -> IO[bytes]:
        return self.opener()

    def read(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def head(self, n: int = 4096) -> bytes:
        with self.open() as fh:
            return fh.read(n)

    def sha256(self) -> str:
        h = hashlib.sha256()
        with self.open() as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    @classmethod
    def from_path(cls, path: Path, name: str | None = None) -> InputFile:
        return cls(
            name=name or str(path),
            size=path.stat().st_size,
            opener=lambda: open(path, "rb"),
            path=path,
        )

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> InputFile:
        import io

        return cls(name=name, size=len(data), opener=lambda: io.BytesIO(data))


@dataclass
class ImportContext:
    """What a parser may know about its input and where it reports findings."""

    file: InputFile
    file_sha256: str
    warnings: list[str] = field(default_factory=list)
    # Things kept but not mapped (e.g. unknown FHIR resource types), by name.
    unmapped: Counter[str] = field(default_factory=Counter)

    def warn(self, place: str, message: str) -> None:
        self.warnings.append(f"{self.file.name}: {place}: {message}")


@runtime_checkable
class Source(Protocol):
    manifest: SourceManifest

    def sniff(self, file: InputFile, head: bytes) -> bool:
        """True if this source reads ``file`` (decided from its name and first bytes)."""
        ...

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        """Yield model items, deterministically: the same input, the same items in order."""
        ...
