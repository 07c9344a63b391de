"""Hardened readers for hostile input: archives, XML, sizes (T-UP-1/2/3).

Every importer opens ZIPs and XML through these helpers, never directly.
"""

from __future__ import annotations

import io
import itertools
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from lxml import etree

from healthspace.errors import SourceError
from healthspace.sources._zip_inflate import open_member

__all__ = [
    "Limits",
    "SafeZip",
    "check_size",
    "xml_parser",
]


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 4 << 30  # a real Apple Health export reaches a few GB
    max_member_bytes: int = 8 << 30
    max_total_bytes: int = 16 << 30
    max_entries: int = 50_000
    max_ratio: int = 200  # uncompressed / compressed, per member
    max_nesting: int = 1


DEFAULT_LIMITS = Limits()


def check_size(name: str, size: int, limits: Limits = DEFAULT_LIMITS) -> None:
    if size > limits.max_file_bytes:
        raise SourceError(f"file is {size} bytes; the limit is {limits.max_file_bytes}", file=name)


def xml_parser(*, huge_tree: bool = False, **kwargs: Any) -> etree.XMLParser:
    """An lxml parser that resolves no entities, fetches nothing and loads no DTD."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
        **kwargs,
    )


def refuse_entities(name: str, data: bytes) -> None:
    """Entity declarations are refused outright (billion laughs, XXE, quadratic blowup).

    Pass the whole document, not a head: a declaration can sit behind any amount of
    comments. Outside a DTD the string can only occur in comments or CDATA, so
    refusing it anywhere costs nothing real.
    """
    if b"<!ENTITY" in data:
        raise SourceError("XML declares entities; refused for safety", file=name, place="DTD")


class _CountingReader(io.RawIOBase):
    """Stops reading past a byte budget whatever the archive header declared."""

    def __init__(self, inner: IO[bytes], budget: int, name: str) -> None:
        self._inner = inner
        self._left = budget
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise SourceError("archive member expands beyond the size limit", file=self._name)
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class SafeZip:
    """A ZIP opened with limits: entries, sizes, ratio, paths, links, nesting."""

    def __init__(self, fh: IO[bytes], name: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.name = name
        self.limits = limits
        self._fh = fh
        try:
            self._zip = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SourceError(f"not a readable ZIP archive ({exc})", file=name) from None
        infos = self._zip.infolist()
        if len(infos) > limits.max_entries:
            raise SourceError(
                f"archive has {len(infos)} entries; limit {limits.max_entries}", file=name
            )
        total = 0
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            self._check_member(info)
            total += info.file_size
            if not info.is_dir():
                self._members[info.filename] = info
        if total > limits.max_total_bytes:
            raise SourceError("archive declares more data than the size limit", file=name)
        self._check_overlaps(infos)

    def _check_overlaps(self, infos: list[zipfile.ZipInfo]) -> None:
        """Refuse members that share bytes (non-recursive zip bombs; gh-109858).

        Python 3.11.7's zipfile predates that check, so we make it ourselves.
        """
        ordered = sorted(infos, key=lambda i: i.header_offset)
        for info, following in itertools.pairwise(ordered):
            # A local header is at least 30 bytes plus the name: a lower bound of the end.
            end = info.header_offset + 30 + len(info.orig_filename.encode()) + info.compress_size
            if following.header_offset < end:
                raise SourceError(
                    "archive members overlap (zip bomb?)",
                    file=f"{self.name}!{following.filename}",
                )

    def _check_member(self, info: zipfile.ZipInfo) -> None:
        where = f"{self.name}!{info.filename}"
        name = info.filename
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise SourceError("archive member has an absolute path", file=where)
        if any(part == ".." for part in name.replace("\\", "/").split("/")):
            raise SourceError("archive member path escapes the archive (..)", file=where)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise SourceError("archive member is a symbolic link", file=where)
        if info.file_size > self.limits.max_member_bytes:
            raise SourceError("archive member is larger than the size limit", file=where)
        if (
            info.compress_size
            and info.file_size / max(info.compress_size, 1) > self.limits.max_ratio
        ):
            raise SourceError(
                "archive member compression ratio is too high (zip bomb?)", file=where
            )

    def names(self) -> list[str]:
        return list(self._members)

    def size(self, member: str) -> int:
        return self._members[member].file_size

    def open(self, member: str) -> IO[bytes]:
        info = self._members[member]
        where = f"{self.name}!{member}"
        budget = min(info.file_size, self.limits.max_member_bytes)
        try:
            direct = open_member(self._fh, info, budget, where)
            if direct is not None:
                return direct
            inner = self._zip.open(info)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"archive member unreadable ({exc})", file=where) from None
        return io.BufferedReader(_CountingReader(inner, budget, where))

    def is_nested_archive(self, member: str) -> bool:
        with self.open(member) as fh:
            return fh.read(4) == b"PK\x03\x04"

    def iter_files(self) -> Iterator[str]:
        yield from self._members

    def close(self) -> None:
        self._zip.close()
