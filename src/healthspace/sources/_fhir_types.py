"""FHIR R4 data types read from parsed JSON: codings, quantities, money, dates, names.

Every reader is defensive (the JSON may not have been validated, or may lack elements
validation tolerated) and raises :class:`MappingError` with a field path and a reason
that never quote the value, so messages carry no record contents.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeAlias, get_args

from healthspace.model import UCUM, Code, Comparator, Money, PartialDateTime, Quantity

__all__ = [
    "JSON",
    "MappingError",
    "Unusable",
    "as_list",
    "codings",
    "concept",
    "concept_label",
    "dicts",
    "first_code",
    "human_name",
    "money",
    "notes",
    "number",
    "obj",
    "period",
    "pick",
    "quantity",
    "string",
    "when",
]

JSON: TypeAlias = dict[str, Any]

_COMPARATORS: Final = frozenset(get_args(Comparator))


class MappingError(Exception):
    """A value that cannot be mapped. ``field`` and ``reason`` never quote the value."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Unusable(Exception):
    """A resource that cannot become a record (no code at all, no content): skipped, reported."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def obj(value: object) -> JSON:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def dicts(value: object) -> list[JSON]:
    """The objects of a JSON array (a lone object counts as a one-element array)."""
    if isinstance(value, dict):
        return [value]
    return [item for item in as_list(value) if isinstance(item, dict)]


def string(value: object) -> str | None:
    """A non-blank string, stripped; anything else is None."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def number(value: object, field: str) -> float | None:
    """A finite JSON number (booleans are not numbers here)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(field, "not a number")
    result = float(value)
    if not math.isfinite(result):
        raise MappingError(field, "not a finite number")
    return result


def codings(concept_json: object) -> tuple[Code, ...]:
    """Every coding of a CodeableConcept (or a bare Coding) that has a code."""
    if not isinstance(concept_json, dict):
        return ()
    found: list[Code] = []
    sources = dicts(concept_json.get("coding")) if "coding" in concept_json else [concept_json]
    for coding in sources:
        code = string(coding.get("code"))
        if code is None:
            continue
        system = coding.get("system")
        found.append(
            Code(
                system=system if isinstance(system, str) else "",
                code=code,
                display=string(coding.get("display")),
            )
        )
    return tuple(found)


def pick(codes: tuple[Code, ...], prefer: tuple[str, ...] = ()) -> Code | None:
    """The first code in a preferred system (in order of preference), else the first."""
    for system in prefer:
        for code in codes:
            if code.system == system:
                return code
    return codes[0] if codes else None


def concept_label(concept_json: object) -> str | None:
    """A CodeableConcept as words: its text, else a display, else a code."""
    if not isinstance(concept_json, dict):
        return None
    text = string(concept_json.get("text"))
    if text is not None:
        return text
    codes = codings(concept_json)
    for code in codes:
        if code.display:
            return code.display
    return codes[0].code if codes else None


def concept(
    concept_json: object, prefer: tuple[str, ...] = ()
) -> tuple[Code | None, tuple[Code, ...], str | None]:
    """(preferred code, all codes, text) of a CodeableConcept."""
    codes = codings(concept_json)
    text = string(concept_json.get("text")) if isinstance(concept_json, dict) else None
    return pick(codes, prefer), codes, text


def first_code(concepts: object) -> str | None:
    """The first code among a list of CodeableConcepts (e.g. a category), else its text."""
    for item in dicts(concepts):
        codes = codings(item)
        if codes:
            return codes[0].code
        text = string(item.get("text"))
        if text is not None:
            return text
    return None


def when(value: object, field: str) -> PartialDateTime | None:
    """A FHIR date, dateTime or instant as a PartialDateTime."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise MappingError(field, "not a date or date-time")
    try:
        return PartialDateTime.parse(value)
    except ValueError:
        raise MappingError(field, "not a valid date or date-time") from None


def period(value: object, field: str) -> tuple[PartialDateTime | None, PartialDateTime | None]:
    if not isinstance(value, dict):
        return None, None
    return when(value.get("start"), f"{field}.start"), when(value.get("end"), f"{field}.end")


def quantity(value: object, field: str) -> Quantity | None:
    """A Quantity with its unit as recorded: the UCUM code when coded in UCUM, else ``unit``."""
    if not isinstance(value, dict):
        return None
    amount = number(value.get("value"), f"{field}.value")
    if amount is None:
        return None
    code = string(value.get("code"))
    unit = string(value.get("unit"))
    recorded = (code if value.get("system") == UCUM else None) or unit or code or ""
    comparator = value.get("comparator")
    if comparator is not None and comparator not in _COMPARATORS:
        raise MappingError(f"{field}.comparator", "not a FHIR quantity comparator")
    return Quantity(value=amount, unit=recorded, comparator=comparator)


def money(value: object, field: str) -> Money | None:
    """A Money amount, exact (Decimal from the JSON number's shortest text)."""
    if not isinstance(value, dict):
        return None
    amount = number(value.get("value"), f"{field}.value")
    if amount is None:
        return None
    currency = value.get("currency", "USD")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise MappingError(f"{field}.currency", "not an ISO 4217 currency code")
    raw = value.get("value")
    try:
        exact = Decimal(str(raw)) if isinstance(raw, int | float) else Decimal(amount)
    except InvalidOperation:
        raise MappingError(f"{field}.value", "not a number") from None
    return Money(amount=exact, currency=currency.upper())


def notes(value: object) -> str | None:
    """The texts of a list of Annotations, one per line."""
    texts = [text for item in dicts(value) if (text := string(item.get("text")))]
    return "\n".join(texts) if texts else None


def _one_name(name: JSON) -> str | None:
    text = string(name.get("text"))
    if text is not None:
        return text
    parts = [
        *(p for p in as_list(name.get("prefix")) if isinstance(p, str)),
        *(g for g in as_list(name.get("given")) if isinstance(g, str)),
        *([name["family"]] if isinstance(name.get("family"), str) else []),
        *(s for s in as_list(name.get("suffix")) if isinstance(s, str)),
    ]
    joined = " ".join(part.strip() for part in parts if part.strip())
    return joined or None


def human_name(names: object) -> str | None:
    """The official (else usual, else first) HumanName as written."""
    candidates = dicts(names)
    for use in ("official", "usual"):
        for name in candidates:
            if name.get("use") == use and (text := _one_name(name)):
                return text
    for name in candidates:
        if text := _one_name(name):
            return text
    return None
