"""Text clean-up for lab reports: normalisation, numbers, units, dates, language.

Everything here is pure string work on text that PDF extraction or OCR produced.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from healthspace.model import normalize_unit

__all__ = [
    "FLAG_RE",
    "NUM",
    "UNIT_RE",
    "DocumentHints",
    "document_hints",
    "flag_code",
    "normalize_line",
    "to_float",
    "unit_code",
]

_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_POWER_SUPERSCRIPT = re.compile(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹]{1,2})")
_DASHES = str.maketrans({"–": "-", "—": "-", "−": "-", "‐": "-", "‑": "-", "〜": "~"})


def normalize_line(text: str) -> str:
    """NFKC (full-width forms, ligatures), exponents kept as ``10^9``, one space."""
    # NFKC would turn "10⁹" into "109": keep the exponent first.
    text = _POWER_SUPERSCRIPT.sub(lambda m: "10^" + m.group(1).translate(_SUPERSCRIPT), text)
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    return " ".join(text.split())


NUM = r"\d+(?:[.,]\d+)*"
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def to_float(text: str, *, decimal_comma: bool) -> float | None:
    """A printed number as a float: "1,62" in a French report, "250,000" in a US one."""
    if "," in text:
        if not decimal_comma and _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        elif text.count(",") == 1:
            text = text.replace(".", "").replace(",", ".")
        else:
            return None
    if text.count(".") > 1:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# Units as lab reports print them (and as OCR misreads them: "ulU/mL", "x10~3/uL").
_PREFIX = r"(?:mc|[mµμunpfk])?"
_BASE = r"(?:mol|eq|g|[iIl1]U|UI|U|osm|kat)"
_DENOM = r"(?:[dmµμun]?l|kg|g|mmol|mol|mg|min|24\s?h|h)"
_POWER = r"(?:[x×*]\s?)?10\s?(?:\^|\*{1,2}|e|~|%|°|º|')?\s?(?P<exp>\d{1,2})?\s?/\s?(?:[µμun]?l|mm3)"
_COUNT = r"(?:cells|thou|thousand|million|mil|k|m)\s?/\s?(?:[µμu]l|mm3)"
_OTHER = (
    r"%|fl|pg|mm\s?/\s?(?:hr|h|1\s?h)|mmhg"
    r"|ml\s?/\s?min(?:\s?/\s?1[.,]73\s?(?:m2|m\^2|m)?)?"
    r"|/\s?[µμu]l|/\s?mm3|/\s?hpf|t\s?/\s?l|sec(?:onds)?|s(?![a-z])|ratio|index"
)
UNIT_RE = re.compile(
    rf"(?P<unit>{_POWER}|{_COUNT}|{_PREFIX}{_BASE}\s?/\s?{_DENOM}|{_OTHER})"
    r"(?=[HLA](?![a-z])|[^a-z]|$)",
    re.IGNORECASE,
)

_OCR_UNIT_FIXES = (
    (re.compile(r"[µμu][lI1]U", re.IGNORECASE), "uIU"),
    (re.compile(r"m[lI1]U", re.IGNORECASE), "mIU"),
    (re.compile(r"([µμum]?)UI"), r"\1IU"),  # French "mUI/L"
    (re.compile(r"1,73"), "1.73"),
)
_POWER_FIX = re.compile(
    r"^(?:[x×*]\s?)?10\s?(?:\^|\*{1,2}|e|~|%|°|º|')?\s?(\d{1,2})?\s?/\s?(.+)$", re.IGNORECASE
)


def unit_code(printed: str, expected: str | None = None) -> tuple[str, bool]:
    """(UCUM code, inferred?) for a printed unit.

    OCR often loses the exponent of ``x10⁹/L`` ("x10°/L"); when it does, the exponent
    is taken from the analyte's usual unit (``expected``) if that has the same
    denominator, and the result is marked as inferred.
    """
    text = "".join(printed.split())
    if text in _FRENCH_COUNTS:
        return _FRENCH_COUNTS[text], False
    for pattern, repl in _OCR_UNIT_FIXES:
        text = pattern.sub(repl, text)
    power = _POWER_FIX.match(text)
    if power is not None:
        exponent, per = power.groups()
        per = normalize_unit(per) or per
        per = {"mm3": "uL", "ul": "uL", "UL": "uL"}.get(per, per)
        if exponent is None:
            guess = _exponent_for(per, expected)
            if guess is None:
                return "", True
            return f"10*{guess}/{per}", True
        return f"10*{int(exponent)}/{per}", False
    return normalize_unit(text), False


# French reports count cells in giga (G/L) and tera (T/L) per litre; "g/L" stays grams.
_FRENCH_COUNTS = {"G/L": "10*9/L", "G/l": "10*9/L", "T/L": "10*12/L", "T/l": "10*12/L"}
_EXPECTED_POWER = re.compile(r"^10\*(\d+)/(.+)$")


def _exponent_for(per: str, expected: str | None) -> int | None:
    if expected is None or (match := _EXPECTED_POWER.match(expected)) is None:
        return None
    exponent, expected_per = int(match.group(1)), match.group(2)
    if expected_per == per:
        return exponent
    # 10*3/uL is 10*9/L: the same count, another volume.
    if (expected_per, per) == ("uL", "L"):
        return exponent + 6
    if (expected_per, per) == ("L", "uL"):
        return exponent - 6
    return None


# Printed flags: letters, arrows, words. Single letters are case-sensitive on purpose.
FLAG_RE = re.compile(
    r"(?P<flag>HH|LL|H|L|A|N|\*{1,2}|↑|↓|High|Low|Abnormal|Haut|Bas|Élevé|偏高|偏低|异常|高|低)"
    r"(?![A-Za-z])"
)
_FLAGS = {
    "HH": "HH",
    "LL": "LL",
    "H": "H",
    "L": "L",
    "A": "A",
    "N": "N",
    "*": "A",
    "**": "A",
    "↑": "H",
    "↓": "L",
    "High": "H",
    "Low": "L",
    "Abnormal": "A",
    "Haut": "H",
    "Bas": "L",
    "Élevé": "H",
    "偏高": "H",
    "偏低": "L",
    "异常": "A",
    "高": "H",
    "低": "L",
}


def flag_code(printed: str) -> str:
    return _FLAGS[printed]


# -- the document: language, decimal comma, dates -------------------------------------

_CJK = re.compile(r"[\u3400-\u9fff]")
_FRENCH = re.compile(
    r"\b(?:résultats?|valeurs?|référence|à jeun|hémoglobine|glycémie|créatinine|cholestérol|"
    r"prélèvement|prélevé|unités?|antériorités?|triglycérides|plaquettes|leucocytes)\b",
    re.IGNORECASE,
)
_DECIMAL_COMMA = re.compile(r"\d,\d{1,2}(?!\d)")
_DECIMAL_POINT = re.compile(r"\d\.\d")

_COLLECTED = (
    "collected",
    "collection",
    "specimen drawn",
    "drawn",
    "sampled",
    "prélevé",
    "prélèvement",
    "采样",
    "采集",
    "送检",
)
_REPORTED = ("reported", "report date", "date of report", "édité", "compte rendu", "报告")
_DATE_WORDS = ("date", "日期")
_NOT_A_TEST_DATE = ("birth", "naissance", "dob", "出生", "né le", "née le")
_MONTHS = {
    **dict.fromkeys(("jan", "janv", "janvier"), 1),
    **dict.fromkeys(("feb", "fév", "fev", "févr", "février", "fevrier"), 2),
    **dict.fromkeys(("mar", "mars"), 3),
    **dict.fromkeys(("apr", "avr", "avril"), 4),
    **dict.fromkeys(("may", "mai"), 5),
    **dict.fromkeys(("jun", "juin"), 6),
    **dict.fromkeys(("jul", "juil", "juillet"), 7),
    **dict.fromkeys(("aug", "aoû", "aou", "août", "aout"), 8),
    **dict.fromkeys(("sep", "sept", "septembre"), 9),
    **dict.fromkeys(("oct", "octobre"), 10),
    **dict.fromkeys(("nov", "novembre"), 11),
    **dict.fromkeys(("dec", "déc", "décembre", "decembre"), 12),
}
_TIME = r"(?:(?:[ T,]+|\s(?:à|at|um)\s)(?P<hh>\d{1,2})[:h](?P<mi>\d{2}))?"
_YMD = re.compile(r"(?P<y>\d{4})\s?[-/.年]\s?(?P<m>\d{1,2})\s?[-/.月]\s?(?P<d>\d{1,2})日?" + _TIME)
_DMY = re.compile(r"(?<!\d)(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4})" + _TIME)
_NAMED = re.compile(
    r"(?:(?P<d1>\d{1,2})(?:er)?\s+(?P<m1>[a-zéû]{3,9})\.?,?\s+(?P<y1>\d{4})"
    r"|(?P<m2>[a-z]{3,9})\.?\s+(?P<d2>\d{1,2}),?\s+(?P<y2>\d{4}))" + _TIME,
    re.IGNORECASE,
)


class DocumentHints:
    """What the whole text says about how to read each line."""

    def __init__(
        self,
        language: str,
        decimal_comma: bool,
        collected: str | None,
        reported: str | None,
    ) -> None:
        self.language = language
        self.decimal_comma = decimal_comma
        self.collected = collected  # ISO date or date-time, no zone (as printed)
        self.reported = reported


def _find_date(text: str, day_first: bool) -> str | None:
    candidates: list[tuple[int, str]] = []
    if (m := _YMD.search(text)) is not None:
        candidates.append((m.start(), _iso(int(m["y"]), int(m["m"]), int(m["d"]), m)))
    if (m := _DMY.search(text)) is not None:
        a, b = int(m["a"]), int(m["b"])
        # 25/07/2025 is day-first whatever the language; 07/08/2025 follows the language.
        day, month = (a, b) if (a > 12 or (day_first and b <= 12)) else (b, a)
        candidates.append((m.start(), _iso(int(m["y"]), month, day, m)))
    if (m := _NAMED.search(text)) is not None:
        month_name = (m["m1"] or m["m2"]).casefold()
        month_number = _MONTHS.get(month_name) or _MONTHS.get(month_name[:3])
        if month_number is not None:
            day_text = m["d1"] or m["d2"]
            year_text = m["y1"] or m["y2"]
            candidates.append((m.start(), _iso(int(year_text), month_number, int(day_text), m)))
    found = sorted((pos, iso) for pos, iso in candidates if iso)
    return found[0][1] if found else None


def _iso(year: int, month: int, day: int, match: re.Match[str]) -> str:
    try:
        date(year, month, day)
    except ValueError:
        return ""
    text = f"{year:04d}-{month:02d}-{day:02d}"
    hour, minute = match["hh"], match["mi"]
    if hour is not None and minute is not None and int(hour) < 24 and int(minute) < 60:
        text += f"T{int(hour):02d}:{minute}"
    return text


def document_hints(lines: list[str]) -> DocumentHints:
    """Language, decimal separator and the collection / report dates of a report."""
    text = "\n".join(lines)
    if len(_CJK.findall(text)) >= 4:
        language = "zh"
    elif _FRENCH.search(text):
        language = "fr"
    else:
        language = "en"
    commas = len(_DECIMAL_COMMA.findall(text))
    decimal_comma = commas > len(_DECIMAL_POINT.findall(text)) or (language == "fr" and commas > 0)
    day_first = language == "fr"
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        lowered = line.casefold()
        if any(word in lowered for word in _NOT_A_TEST_DATE):
            continue
        for kind, words in (
            ("collected", _COLLECTED),
            ("reported", _REPORTED),
            ("date", _DATE_WORDS),
        ):
            if kind in found or not any(word in lowered for word in words):
                continue
            # The date follows its label on the same line, or stands on the next one.
            when = _find_date(line, day_first)
            if when is None and i + 1 < len(lines):
                when = _find_date(lines[i + 1], day_first)
            if when is not None:
                found[kind] = when
            break
    collected = found.get("collected") or found.get("date")
    return DocumentHints(language, decimal_comma, collected, found.get("reported"))
