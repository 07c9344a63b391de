"""One line of a lab report -> result rows (analyte, value, unit, range, flag).

A row is an analyte name (from the table in ``_labs_analytes``), then a value, then
in any order a unit, a reference range and a flag. Reports print two tables side by
side, so a line may hold several rows. Names the table does not know are read only
at the start of a line and only with a unit, so headers and addresses stay out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from healthspace.model import Comparator
from healthspace.sources._labs_analytes import AnalyteEntry, FoldedLine, find_analyte, fold
from healthspace.sources._labs_text import (
    FLAG_RE,
    NUM,
    UNIT_RE,
    DocumentHints,
    flag_code,
    to_float,
    unit_code,
)

__all__ = ["LabRow", "parse_line", "table_lines"]


@dataclass(frozen=True)
class LabRow:
    entry: AnalyteEntry | None  # None: a name the table does not know
    name: str  # as printed
    value: float | None
    comparator: Comparator | None
    text_value: str | None  # "Negative", when the result is a word
    unit: str  # UCUM, "" when none was printed
    unit_fits: bool
    low: float | None
    high: float | None
    range_text: str | None
    flag: str | None  # H, L, A, HH, LL, N as printed
    printed: str  # the row's own text
    confidence: float


_VALUE = re.compile(rf"(?P<cmp><=|>=|<|>|≤|≥)?\s?(?P<num>{NUM})")
_WORD_VALUE = re.compile(
    r"(?P<word>Negative|Positive|Not detected|Detected|Non réactif|Réactif|Négatif|Positif"
    r"|阴性|阳性)",
    re.IGNORECASE,
)
# Where a value may begin: a comparator, a digit, or a result word.
_VALUE_START = re.compile(r"[<>≤≥]|(?<![\d.,])\d|" + _WORD_VALUE.pattern, re.IGNORECASE)
_MAX_ROWS_TRIED = 64  # name matches tried per line: bounds the work on hostile text
_LABEL = (
    r"(?:(?:ref(?:erence)?\.?(?:\s?(?:range|interval|values?))?|normal(?:\s?range)?|range"
    r"|valeurs?\s?(?:de\s?)?r[ée]f[ée]rence|r[ée]f\.?|VR|N|参考值|参考范围|参考区间)\s?[:：]?\s?)?"
)
_RANGE = re.compile(
    r"[(\[]?\s?" + _LABEL + rf"(?:(?P<lo>{NUM})\s?(?:-|~|to|à|a)\s?(?P<hi>{NUM})"
    rf"|(?P<op><=|>=|<|>|≤|≥)\s?(?P<bound>{NUM}))\s?[)\]]?",
    re.IGNORECASE,
)
_SEPARATORS = " \t|:;"
_MAX_GAP = 48  # characters allowed between a name and its value: "(White Blood Cells)"
_GENERIC = re.compile(
    r"^\s*(?:\d{1,3}[.)]?\s+)?(?P<name>[^\d<>≤≥|:]{2,60}?)\s?[:：]?\s?(?=[<>≤≥]?\s?\d|"
    + _WORD_VALUE.pattern
    + ")",
    re.IGNORECASE,
)
_COMPARATORS: dict[str, Comparator] = {
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "≤": "<=",
    "≥": ">=",
}
_NO_UNIT_EXPECTED = frozenset(("", "{ratio}", "{INR}"))


def parse_line(text: str, hints: DocumentHints, line_confidence: float = 1.0) -> list[LabRow]:
    """Every result row in one normalised line, left to right."""
    rows: list[LabRow] = []
    folded = FoldedLine(text)
    pos = 0
    for _ in range(_MAX_ROWS_TRIED):
        if pos >= len(text):
            break
        match = find_analyte(folded, pos)
        if match is None:
            generic = _generic_row(text, hints, line_confidence) if not rows else None
            if generic is not None:
                rows.append(generic[0])
            break
        parsed = _after_name(text, match.start, match.end, match.entry, hints, line_confidence)
        if parsed is None:
            pos = match.end
            continue
        rows.append(parsed[0])
        pos = parsed[1]
    return rows


def _generic_row(
    text: str, hints: DocumentHints, line_confidence: float
) -> tuple[LabRow, int] | None:
    head = _GENERIC.match(text)
    if head is None or sum(c.isalpha() for c in head["name"]) < 2:
        return None
    parsed = _after_name(text, head.start("name"), head.end("name"), None, hints, line_confidence)
    if parsed is None or not (parsed[0].unit or parsed[0].text_value):
        return None  # a number without a unit is not enough to call it a result
    return parsed


def _find_value(text: str, start: int, hints: DocumentHints) -> tuple[re.Match[str], bool] | None:
    """The first number after a name that reads as a value (not "3rd", not a date)."""
    limit = min(len(text), start + _MAX_GAP)
    for candidate in _VALUE_START.finditer(text, start, limit):
        pos = candidate.start()
        word = _WORD_VALUE.match(text, pos)
        if word is not None:
            return word, True
        found = _VALUE.match(text, pos)
        if found is None:
            continue
        begin = found.start("num")
        after = found.end()
        glued_before = begin > start and text[begin - 1].isascii() and text[begin - 1].isalpha()
        next_char = text[after] if after < len(text) else " "
        letters_follow = next_char.isascii() and next_char.isalpha()
        if (
            not glued_before
            and next_char not in "/-"
            and (not letters_follow or UNIT_RE.match(text, after) or FLAG_RE.match(text, after))
            and to_float(found["num"], decimal_comma=hints.decimal_comma) is not None
        ):
            return found, False
    return None


def _after_name(
    text: str,
    name_start: int,
    name_end: int,
    entry: AnalyteEntry | None,
    hints: DocumentHints,
    line_confidence: float,
) -> tuple[LabRow, int] | None:
    found = _find_value(text, name_end, hints)
    if found is None:
        return None
    value_match, is_word = found
    gap = text[name_end : value_match.start()]
    pos = value_match.end()
    unit_text = flag_text = None
    range_match: re.Match[str] | None = None
    while pos < len(text):
        while pos < len(text) and text[pos] in _SEPARATORS:
            pos += 1
        if range_match is None and (m := _RANGE.match(text, pos)) is not None:
            range_match, pos = m, m.end()
        elif unit_text is None and (m := UNIT_RE.match(text, pos)) is not None:
            unit_text, pos = m["unit"], m.end()
        elif flag_text is None and (m := FLAG_RE.match(text, pos)) is not None:
            flag_text, pos = m["flag"], m.end()
        else:
            break
    if unit_text is None and (m := UNIT_RE.search(gap)) is not None:
        unit_text = m["unit"]  # "Glucose (mg/dL) 95": the unit printed with the name
    name = text[name_start:name_end].strip(" :：-")
    if is_word:
        # A worded result ("Negative") is a qualitative test: not the quantitative analyte
        # the table codes (urine glucose is not serum glucose). Keep the printed name only.
        entry = None
        name = text[name_start : value_match.start()].strip(" :：-,")
    row = _build(
        name,
        entry,
        value_match,
        is_word,
        unit_text,
        range_match,
        flag_text,
        hints,
        text[name_start:pos].strip(),
        line_confidence,
    )
    return row, pos


def _build(
    name: str,
    entry: AnalyteEntry | None,
    value_match: re.Match[str],
    is_word: bool,
    unit_text: str | None,
    range_match: re.Match[str] | None,
    flag_text: str | None,
    hints: DocumentHints,
    printed: str,
    line_confidence: float,
) -> LabRow:
    comma = hints.decimal_comma
    score = 1.0 if entry is not None else 0.55
    unit, inferred = (
        unit_code(unit_text, entry.unit if entry else None) if unit_text else ("", False)
    )
    fits = True
    if entry is not None and unit:
        fits = entry.code_for(unit)[1]
        score *= 1.0 if fits else 0.7
    elif not unit and entry is not None and entry.unit not in _NO_UNIT_EXPECTED:
        score *= 0.8
    if inferred:
        score *= 0.85
    low = high = None
    range_text = None
    if range_match is not None:
        range_text = range_match.group(0).strip()
        if range_match["lo"] is not None:
            low = to_float(range_match["lo"], decimal_comma=comma)
            high = to_float(range_match["hi"], decimal_comma=comma)
        elif range_match["op"] in ("<", "<=", "≤"):
            high = to_float(range_match["bound"], decimal_comma=comma)
        else:
            low = to_float(range_match["bound"], decimal_comma=comma)
    else:
        score *= 0.95
    value = comparator = text_value = None
    if is_word:
        text_value = value_match["word"]
    else:
        value = to_float(value_match["num"], decimal_comma=comma)
        raw = value_match["cmp"]
        comparator = _COMPARATORS.get(raw) if raw else None
    flag = flag_code(flag_text) if flag_text else None
    if flag in ("H", "HH") and value is not None and high is not None and value <= high:
        score *= 0.8  # the printed flag disagrees with the printed range: misread?
    if flag in ("L", "LL") and value is not None and low is not None and value >= low:
        score *= 0.8
    return LabRow(
        entry=entry,
        name=name,
        value=value,
        comparator=comparator,
        text_value=text_value,
        unit=unit,
        unit_fits=fits,
        low=low,
        high=high,
        range_text=range_text,
        flag=flag,
        printed=printed,
        confidence=round(max(0.0, min(1.0, score * line_confidence)), 3),
    )


# -- tables (cells from pdfplumber) ----------------------------------------------------

# Checked in this order: "Valeurs de référence" is a range, not a value.
_ROLES = (
    ("range", ("reference", "range", "ref", "normal", "valeursdereference", "intervalle",
               "参考", "参考范围", "参考值", "参考区间")),
    ("unit", ("unit", "units", "unite", "unites", "单位")),
    ("flag", ("flag", "提示", "标志", "indicateur", "hl", "abnormal")),
    ("value", ("result", "value", "resultat", "valeur", "结果", "检验结果", "测定值")),
    ("name", ("test", "analyte", "analysis", "examination", "parameter", "component", "examen",
              "analyse", "parametre", "项目", "检验项目", "项目名称", "检查项目")),
)  # fmt: skip
_ORDER = ("name", "value", "flag", "unit", "range")


def _role(cell: str) -> str | None:
    folded = fold(cell)
    for role, words in _ROLES:
        if any(folded.startswith(fold(word)) for word in words):
            return role
    return None


def table_lines(table: list[list[str | None]]) -> list[str]:
    """A table's data rows as lines in the order the parser reads best.

    With a header ("Test | Result | Units | Reference"), cells are put in the order
    name, value, flag, unit, range whatever the report's column order; without one,
    cells are joined as they stand.
    """
    columns: dict[str, int] = {}
    body = table
    for i, row in enumerate(table[:3]):
        roles: dict[str, int] = {}
        for j, cell in enumerate(row):
            role = _role(cell or "")
            if role is not None:
                roles.setdefault(role, j)
        if "value" in roles and ("name" in roles or "unit" in roles or "range" in roles):
            columns = roles
            columns.setdefault("name", 0)
            body = table[i + 1 :]
            break
    lines = []
    for row in body:
        cells = [" ".join((cell or "").split()) for cell in row]
        if columns:
            order = [columns[r] for r in _ORDER if r in columns]
            # Columns without a known header (often the flag) follow the known ones.
            order += [j for j in range(len(cells)) if j not in order]
            ordered = [cells[j] for j in order if j < len(cells)]
        else:
            ordered = cells
        line = "  ".join(c for c in ordered if c)
        if line:
            lines.append(line)
    return lines
