"""Reading HL7 v3 data types out of C-CDA elements: codes, times, quantities, text, ids.

One :class:`DocReader` per document holds what every entry mapper needs: the narrative
blocks that ``<reference value="#id"/>`` points into, the document identity that
hashed source ids are built from, and where warnings go. Readers never raise on odd
data: a value that cannot be read is left out with a warning naming the place only.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from lxml import etree

from healthspace.model import (
    Code,
    PartialDateTime,
    Provenance,
    Quantity,
    normalize_unit,
    system_from_oid,
)
from healthspace.sources.base import Item

__all__ = [
    "DATA_ABSENT",
    "SDTC",
    "V3",
    "DocReader",
    "Element",
    "Mapper",
    "attr",
    "child",
    "children",
    "entry_body",
    "finite",
    "has_template",
    "local",
    "original",
    "q",
    "status_code",
    "ucum_unit",
    "xsi_type",
]

Element = Any  # lxml.etree._Element; lxml ships no type stubs

V3: Final = "urn:hl7-org:v3"
SDTC: Final = "urn:hl7-org:sdtc"
_XSI_TYPE: Final = "{http://www.w3.org/2001/XMLSchema-instance}type"
DATA_ABSENT: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

# Some systems write the zone as "-05"; HL7 TS wants "-0500".
_SHORT_ZONE = re.compile(r"^([0-9]{8,14}(?:\.[0-9]+)?)([+-][0-9]{2})$")


def q(name: str, ns: str = V3) -> str:
    """The Clark name ``{urn:hl7-org:v3}name``."""
    return f"{{{ns}}}{name}"


def child(el: Element | None, *path: str) -> Element | None:
    """The first element down a path of v3 local names, or None."""
    for name in path:
        if el is None:
            return None
        el = el.find(q(name))
    return el


def children(el: Element | None, name: str) -> list[Element]:
    return [] if el is None else list(el.findall(q(name)))


def attr(el: Element | None, name: str) -> str | None:
    """An attribute, stripped; None when missing or blank."""
    if el is None:
        return None
    value = el.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def has_template(el: Element | None, *roots: str) -> bool:
    if el is None:
        return False
    return any(t.get("root") in roots for t in el.findall(q("templateId")))


def xsi_type(el: Element) -> str | None:
    """``xsi:type`` without its prefix ("PQ", "CD", ...)."""
    value = el.get(_XSI_TYPE)
    return None if value is None else value.rsplit(":", 1)[-1].strip().upper()


def local(el: Element) -> str:
    """An element's tag without its namespace."""
    return str(etree.QName(el).localname)


def status_code(el: Element | None) -> str | None:
    return attr(child(el, "statusCode"), "code")


def entry_body(entry: Element) -> Element | None:
    """The clinical statement an ``<entry>`` wraps (its first element child)."""
    for node in entry:
        if isinstance(node.tag, str):
            return node
    return None


def original(el: Element) -> bytes:
    """An element's XML as the source wrote it (namespaces declared, no tail)."""
    return bytes(etree.tostring(el, with_tail=False))


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    joined = " ".join(text.split())
    return joined or None


def finite(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        number = float(raw.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def ucum_unit(raw: str | None) -> str:
    """The unit in UCUM spelling where that is a pure spelling fix; "" for unity/unknown."""
    unit = normalize_unit(raw)
    return "" if unit == "1" else unit


# A section's entry mapper: (reader, <entry>, place) -> the items the entry holds, built
# completely before any is returned, so an unreadable entry contributes nothing.
# A section's entry mapper: (reader, <entry>, place) -> the items the entry holds, built
# completely before any is returned, so an entry that cannot be read adds nothing.
Mapper = Callable[["DocReader", Element, str], list[Item]]


class DocReader:
    """Per-document reading state: narrative index, identity, provenance, warnings."""

    def __init__(
        self,
        root: Element,
        *,
        file_name: str,
        file_sha256: str,
        warn: Callable[[str, str], None],
    ) -> None:
        self.root = root
        self.file_name = file_name
        self.file_sha256 = file_sha256
        self.warn = warn
        # Narrative blocks by ID: entries point at them with <reference value="#ID"/>.
        self.narrative: dict[str, Element] = {}
        for el in root.iter():
            ident = el.get("ID") if isinstance(el.tag, str) else None
            if ident and ident not in self.narrative:
                self.narrative[ident] = el
        doc_id = self.ident(child(root, "id"))
        self.doc_key = doc_id or f"sha256:{file_sha256}"
        self._used: dict[str, str] = {}

    # -- identity and provenance -------------------------------------------------------

    @staticmethod
    def ident(el: Element | None) -> str | None:
        """``root|extension`` of an II, or None when it is null or has no root."""
        if el is None or el.get("nullFlavor") is not None:
            return None
        root = attr(el, "root")
        if root is None:
            return None
        ext = attr(el, "extension")
        return f"{root}|{ext}" if ext else root

    def first_ident(self, el: Element) -> str | None:
        for id_el in children(el, "id"):
            found = self.ident(id_el)
            if found is not None:
                return found
        return None

    def source_id(self, kind: str, el: Element, place: str) -> str:
        """A stable identity: the element's own id, else a hash of where and what it is.

        An id reused within one document for different content (a vendor quirk) would
        merge distinct records, so later uses fall back to the hash.
        """
        canonical = etree.tostring(el, method="c14n", with_comments=False)
        digest = hashlib.sha256(canonical).hexdigest()
        own = self.first_ident(el)
        if own is not None:
            candidate = f"ccda:{kind}:{own}"
            previous = self._used.get(candidate)
            if previous is None or previous == digest:
                self._used[candidate] = digest
                return candidate
        seed = "\n".join((self.doc_key, place, digest)).encode()
        return f"ccda:{kind}:sha256:{hashlib.sha256(seed).hexdigest()}"

    def provenance(self, place: str) -> Provenance:
        return Provenance(
            source="ccda",
            file_name=self.file_name,
            file_sha256=self.file_sha256,
            original_ref=place,
        )

    # -- text ------------------------------------------------------------------------------

    def resolve(self, reference: Element | None) -> str | None:
        """The narrative text a ``<reference value="#id"/>`` points at."""
        target = attr(reference, "value")
        if target is None or not target.startswith("#"):
            return None
        block = self.narrative.get(target[1:])
        if block is None:
            return None
        return _clean(" ".join(t for t in block.itertext()))

    def text(self, el: Element | None) -> str | None:
        """An element's text: its own words, else the narrative its reference points at."""
        if el is None or (el.get("nullFlavor") is not None and len(el) == 0):
            return None
        parts = [el.text or ""]
        for part in el:
            # Words outside the <reference/> are the entry's own; comments add nothing.
            if isinstance(part.tag, str) and part.tag != q("reference"):
                parts.append("".join(part.itertext()))
            parts.append(part.tail or "")
        own = _clean("".join(parts))
        return own or self.resolve(child(el, "reference"))

    def code_text(self, el: Element | None) -> str | None:
        """What a coded element says in words: originalText, else its displayName."""
        if el is None:
            return None
        return self.text(child(el, "originalText")) or attr(el, "displayName")

    # -- codes ---------------------------------------------------------------------------------

    @staticmethod
    def code(el: Element | None, default_system: str = "") -> Code | None:
        if el is None:
            return None
        value = attr(el, "code")
        if value is None or value.upper() in _NULL_WORDS:
            return None
        oid = attr(el, "codeSystem")
        system = (system_from_oid(oid) or f"urn:oid:{oid}") if oid else default_system
        return Code(system=system, code=value, display=attr(el, "displayName"))

    def codes(self, el: Element | None, default_system: str = "") -> tuple[Code, ...]:
        """The code and its translations, in document order, without repeats."""
        if el is None:
            return ()
        found: list[Code] = []
        for candidate in (el, *children(el, "translation")):
            code = self.code(candidate, default_system)
            if code is not None and all(code.key() != c.key() for c in found):
                found.append(code)
        return tuple(found)

    # -- times ------------------------------------------------------------------------------------

    def time(self, el: Element | None, place: str) -> PartialDateTime | None:
        raw = attr(el, "value")
        if raw is None:
            return None
        fixed = _SHORT_ZONE.sub(r"\g<1>\g<2>00", raw)
        try:
            return PartialDateTime.parse(fixed)
        except ValueError:
            self.warn(place, "a date or time is not valid HL7 TS; it was left out")
            return None

    def interval(
        self, el: Element | None, place: str
    ) -> tuple[PartialDateTime | None, PartialDateTime | None]:
        """(start, end) of a TS or IVL_TS; ``center`` stands in for a missing low."""
        if el is None:
            return None, None
        if el.get("value") is not None:
            return self.time(el, place), None
        start = self.time(child(el, "low"), place) or self.time(child(el, "center"), place)
        return start, self.time(child(el, "high"), place)

    # -- quantities and values ---------------------------------------------------------------

    def quantity(self, el: Element | None, place: str) -> Quantity | None:
        if el is None or attr(el, "value") is None:
            return None
        number = finite(el.get("value"))
        if number is None:
            self.warn(place, "a quantity is not a number; it was left out")
            return None
        return Quantity(value=number, unit=ucum_unit(el.get("unit")))

    # -- people and organisations ---------------------------------------------------------

    def name(self, el: Element | None) -> str | None:
        """A person or organisation name as written: parts joined, or its plain text."""
        if el is None:
            return None
        parts = [
            _clean(part.text)
            for part in el
            if isinstance(part.tag, str) and etree.QName(part).localname in _NAME_PARTS
        ]
        words = [p for p in parts if p]
        return " ".join(words) if words else _clean("".join(el.itertext()))

    def person(self, holder: Element | None) -> str | None:
        """The name of an assigned person or organisation under a performer/author."""
        for path in (
            ("assignedEntity", "assignedPerson", "name"),
            ("assignedAuthor", "assignedPerson", "name"),
            ("assignedEntity", "representedOrganization", "name"),
            ("assignedAuthor", "representedOrganization", "name"),
        ):
            found = self.name(child(holder, *path))
            if found:
                return found
        return None

    def organization(self, holder: Element | None) -> str | None:
        for path in (
            ("assignedEntity", "representedOrganization", "name"),
            ("assignedAuthor", "representedOrganization", "name"),
        ):
            found = self.name(child(holder, *path))
            if found:
                return found
        return None

    def notes(self, el: Element) -> str | None:
        """Comments (4.64) and instructions (4.20) attached to an entry, as one note."""
        texts: list[str] = []
        for rel in children(el, "entryRelationship"):
            act = child(rel, "act")
            if has_template(act, _COMMENT, _INSTRUCTION):
                words = self.text(child(act, "text"))
                if words and words not in texts:
                    texts.append(words)
        return "; ".join(texts) or None

    def related(self, el: Element, tag: str, *templates: str) -> Iterable[Element]:
        """``entryRelationship`` children of one tag, optionally by template."""
        for rel in children(el, "entryRelationship"):
            for found in children(rel, tag):
                if not templates or has_template(found, *templates):
                    yield found


# Placeholders some systems write as a code instead of a nullFlavor.
_NULL_WORDS: Final = frozenset({"UNK", "UNKNOWN", "ASKU", "NASK", "NAV"})  # not "NA": sodium
_NAME_PARTS: Final = frozenset({"prefix", "given", "family", "suffix"})
_COMMENT: Final = "2.16.840.1.113883.10.20.22.4.64"
_INSTRUCTION: Final = "2.16.840.1.113883.10.20.22.4.20"
