"""Analyte names as lab reports print them (English, French, Chinese) -> LOINC.

The table is package data (``sources/data/lab_analytes.json``). Names are compared
folded: NFKC, accents dropped, case folded, spaces and punctuation removed, so that
"Cholestérol LDL", "cholesterol-ldl" and OCR's "CholesterolLDL" are one name. Short
Latin abbreviations ("K", "Na", "Mg") keep their case, or "mg" in a unit would read
as magnesium.
"""

from __future__ import annotations

import json
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

from healthspace.model import analyte_info, can_convert, normalize_unit

__all__ = ["AnalyteEntry", "FoldedLine", "NameMatch", "find_analyte", "fold", "table"]

# Dropped when comparing names; "%" and "+" stay, they are not punctuation here.
_SKIP = frozenset(" \t\u3000-_,.;:()[]{}'\"’`/\\·•|")
_SHORT = 3  # synonyms this short (Latin) match case-sensitively


@dataclass(frozen=True)
class AnalyteEntry:
    id: str
    name: str
    loinc: str
    unit: str
    by_unit: dict[str, str] = field(default_factory=dict)

    def code_for(self, unit: str) -> tuple[str, bool]:
        """The LOINC code for a result in ``unit``, and whether the unit fits that code."""
        if unit in self.by_unit:
            return self.by_unit[unit], True
        if not unit:
            return self.loinc, True
        return self.loinc, unit == self.unit or can_convert(unit, self.unit, analyte=self.loinc)

    def display(self, loinc: str) -> str:
        info = analyte_info(loinc)
        return info.name if info is not None else self.name


@dataclass(frozen=True)
class NameMatch:
    entry: AnalyteEntry
    start: int  # indexes into the text that was searched
    end: int


def _fold_char(char: str, keep_case: bool) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = bare.replace("œ", "oe").replace("Œ", "OE")
    return bare if keep_case else bare.casefold()


def fold(text: str, *, keep_case: bool = False) -> str:
    """The comparison form of a name."""
    return "".join(
        _fold_char(c, keep_case) for c in unicodedata.normalize("NFKC", text) if c not in _SKIP
    )


def _folded_with_index(text: str) -> tuple[str, str, list[int]]:
    """(case kept, case folded, original index of each folded character)."""
    cased: list[str] = []
    lower: list[str] = []
    index: list[int] = []
    for i, char in enumerate(text):
        if char in _SKIP:
            continue
        for piece in _fold_char(char, keep_case=True):
            folded = piece.casefold()
            cased.append(piece)
            lower.append(folded if len(folded) == 1 else piece)
            index.append(i)
    return "".join(cased), "".join(lower), index


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


def _is_short(synonym: str) -> bool:
    return len(synonym) <= _SHORT and synonym.isascii()


@dataclass(frozen=True)
class _Table:
    entries: tuple[AnalyteEntry, ...]
    # first folded char -> [(folded synonym, case-sensitive?, entry)], longest first
    index: dict[str, list[tuple[str, bool, AnalyteEntry]]]


@cache
def table() -> _Table:
    raw = files("healthspace.sources").joinpath("data", "lab_analytes.json").read_text("utf-8")
    entries: list[AnalyteEntry] = []
    synonyms: dict[tuple[str, bool], AnalyteEntry] = {}
    for item in json.loads(raw)["analytes"]:
        entry = AnalyteEntry(
            id=item["id"],
            name=item["name"],
            loinc=item["loinc"],
            unit=normalize_unit(item["unit"]),
            by_unit={normalize_unit(k): v for k, v in item.get("by_unit", {}).items()},
        )
        entries.append(entry)
        for name in (*item["en"], *item["fr"], *item["zh"]):
            short = _is_short(fold(name))
            key = (fold(name, keep_case=short), short)
            other = synonyms.setdefault(key, entry)
            if other is not entry:
                raise ValueError(f"lab_analytes.json: {name!r} names {other.id} and {entry.id}")
    index: dict[str, list[tuple[str, bool, AnalyteEntry]]] = {}
    for (folded, short), entry in synonyms.items():
        index.setdefault(folded[0].casefold(), []).append((folded, short, entry))
    for candidates in index.values():
        candidates.sort(key=lambda c: -len(c[0]))
    return _Table(tuple(entries), index)


def _boundary_ok(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    first, last = text[start], text[end - 1]
    # Latin names end at word edges: "K" is not the start of "Kaliémie", "LDL" is not
    # all of "LDLCholesterol"; a digit may follow ("TSH2.45", OCR without spaces).
    if first.isascii() and first.isalpha() and before.isascii() and before.isalpha():
        return False
    if last.isascii() and last.isalnum() and after.isascii() and after.isalpha():
        return False
    # A one-character CJK name (钠, 钾) must stand alone, not inside a longer word.
    return not (end - start == 1 and _is_cjk(first) and (_is_cjk(before) or _is_cjk(after)))


class FoldedLine:
    """A line folded once, searched many times (a line may hold several rows)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.cased, self.lower, self.index = _folded_with_index(text)


def find_analyte(text: str | FoldedLine, start: int = 0) -> NameMatch | None:
    """The leftmost, then longest, analyte name in ``text[start:]``."""
    line = text if isinstance(text, FoldedLine) else FoldedLine(text)
    tab = table()
    lower, index = line.lower, line.index
    first_pos = bisect_left(index, start)
    for pos in range(first_pos, len(lower)):
        for synonym, short, entry in tab.index.get(lower[pos], ()):
            haystack = line.cased if short else lower
            if not haystack.startswith(synonym, pos):
                continue
            first = index[pos]
            last = index[pos + len(synonym) - 1] + 1
            if _boundary_ok(line.text, first, last):
                return NameMatch(entry, first, last)
    return None
