"""Reading the CSV exports of wellness apps: decoding, rows with line numbers, numbers.

Errors name the file, the line and the column, never a cell's value.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from healthspace.errors import SourceError
from healthspace.sources._wellness import read_limited
from healthspace.sources.base import InputFile

__all__ = ["CsvRow", "decode_text", "header_of", "parse_number", "read_rows"]

_MAX_BYTES = 256 << 20  # a decade of daily exports is a few MB
_THOUSANDS = re.compile(r"^[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?$")


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text with any byte-order mark removed; a clear error for other encodings."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError("file is not UTF-8 text", file=name, place=f"byte {exc.start}") from None


def header_of(head: bytes) -> list[str]:
    """The first CSV row of a file's first bytes (for sniffing); [] if unreadable."""
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text else ""
    try:
        return [cell.strip() for cell in next(csv.reader([first]), [])]
    except csv.Error:
        return []


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row: its cells by column name, and the line it starts on."""

    line: int
    cells: dict[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "").strip()


def read_rows(file: InputFile) -> tuple[list[str], Iterator[CsvRow]]:
    """The header (stripped) and the data rows of a CSV file; blank lines are skipped."""
    text = decode_text(read_limited(file, _MAX_BYTES, "the CSV file"), file.name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise SourceError("file is empty", file=file.name, place="line 1") from None
    except csv.Error as exc:
        raise SourceError(f"unreadable CSV ({exc})", file=file.name, place="line 1") from None

    def rows() -> Iterator[CsvRow]:
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise SourceError(
                    f"unreadable CSV ({exc})", file=file.name, place=f"line {line}"
                ) from None
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
                raise SourceError(
                    f"row has {len(cells)} cells but the header names {len(header)}",
                    file=file.name,
                    place=f"line {line}",
                )
            yield CsvRow(line, dict(zip(header, cells, strict=False)))

    return header, rows()


def parse_number(text: str, *, file: str, line: int, column: str) -> float | None:
    """A number as these exports write it: ``1,234.5``, ``45%``; None for an empty cell."""
    cleaned = text.strip().removesuffix("%").strip()
    if not cleaned or cleaned in {"-", "--", "N/A", "n/a"}:
        return None
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        raise SourceError(
            f"column {column!r} is not a number", file=file, place=f"line {line}"
        ) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SourceError(
            f"column {column!r} is not a finite number", file=file, place=f"line {line}"
        )
    return value
