"""Opening a C-CDA file safely: recognise it from its first bytes, refuse DTDs, parse.

C-CDA never needs a DTD, so any ``<!DOCTYPE`` is refused before the parser sees the
file (billion laughs, quadratic blowup, XXE and DTD fetches all need one); the parser
itself is :func:`healthspace.sources._safety.xml_parser` (no entities, no network).
Parse errors name the line and libxml2's error type, never the text that failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from lxml import etree

from healthspace.errors import SourceError
from healthspace.sources._ccda_xml import V3, Element, q
from healthspace.sources._safety import refuse_entities, xml_parser

__all__ = ["MAX_DOCUMENT_BYTES", "is_clinical_document", "load_document", "scan_prolog"]

# A C-CDA is parsed whole; real ones are kilobytes to a few megabytes.
MAX_DOCUMENT_BYTES: Final = 256 << 20
_PROLOG_LIMIT: Final = 1 << 20
_BOMS: Final = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_ROOT = re.compile(r"<(?:([A-Za-z_][\w.-]*):)?ClinicalDocument(?=[\s/>])")
_ATTRIBUTE = re.compile(r"([\w:.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_TRUNCATED: Final = frozenset(
    {"ERR_TAG_NOT_FINISHED", "ERR_DOCUMENT_END", "ERR_DOCUMENT_EMPTY", "ERR_LTSLASH_REQUIRED"}
)


@dataclass(frozen=True)
class Prolog:
    """What comes before the root element."""

    root_at: int | None  # offset of the root start tag in the decoded head; None if not seen
    doctype_line: int | None  # line of a <!DOCTYPE, if there is one


def _decode_head(head: bytes) -> str:
    """The head as text: its BOM's encoding, else latin-1 (markup is ASCII in every
    ASCII-compatible encoding, and latin-1 decodes any byte)."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="replace")
    if head.startswith(b"<\x00"):
        return head.decode("utf-16-le", errors="replace")
    if head.startswith(b"\x00<"):
        return head.decode("utf-16-be", errors="replace")
    return head.decode("latin-1")


def _doctype_end(text: str, start: int) -> int:
    """The offset after a DOCTYPE's closing '>', skipping its [internal subset]; -1 if cut."""
    quote: str | None = None
    depth = 0
    for at in range(start + len("<!DOCTYPE"), len(text)):
        char = text[at]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == ">" and depth <= 0:
            return at + 1
    return -1


def scan_prolog(text: str) -> Prolog:
    """Walk whitespace, processing instructions, comments and a DOCTYPE to the root."""
    at, size = 0, len(text)
    doctype: int | None = None
    while True:
        while at < size and text[at] in " \t\r\n":
            at += 1
        if text.startswith("<?", at):
            end = text.find("?>", at + 2)
            at = -1 if end < 0 else end + 2
        elif text.startswith("<!--", at):
            end = text.find("-->", at + 4)
            at = -1 if end < 0 else end + 3
        elif text.startswith("<!DOCTYPE", at):
            doctype = doctype or text.count("\n", 0, at) + 1
            at = _doctype_end(text, at)
        elif text.startswith("<", at):
            return Prolog(at, doctype)
        else:
            return Prolog(None, doctype)
        if at < 0:
            return Prolog(None, doctype)


def is_clinical_document(head: bytes) -> bool:
    """True when the root element is ``ClinicalDocument`` in ``urn:hl7-org:v3``."""
    text = _decode_head(head[:_PROLOG_LIMIT])
    prolog = scan_prolog(text)
    if prolog.root_at is None:
        return False
    match = _ROOT.match(text, prolog.root_at)
    if match is None:
        return False
    end = text.find(">", match.end())
    tag = text[match.end() : end if end >= 0 else len(text)]
    prefix = match.group(1)
    wanted = f"xmlns:{prefix}" if prefix else "xmlns"
    for name, double, single in _ATTRIBUTE.findall(tag):
        if name == wanted and (double or single).strip() == V3:
            return True
    return False


def _syntax_reason(exc: etree.XMLSyntaxError, at_end: bool) -> str:
    # libxml2's message can quote the offending bytes; its error type cannot.
    kind = _error_type(exc)
    if at_end or kind in _TRUNCATED:
        return f"XML is not well-formed: the document ends early, truncated? ({kind})"
    return f"XML is not well-formed ({kind})"


def _error_type(exc: etree.XMLSyntaxError) -> str:
    last = exc.error_log.last_error if exc.error_log else None
    return str(last.type_name) if last is not None else "ERR_UNKNOWN"


def _parse(data: bytes) -> Element:
    try:
        return etree.fromstring(data, parser=xml_parser())
    except etree.XMLSyntaxError as exc:
        if _error_type(exc) != "ERR_RESOURCE_LIMIT":
            raise
    # A large embedded file exceeds libxml2's 10 MB text-node limit. With every DTD
    # refused beforehand no entity can expand, so lifting the limits opens no attack.
    return etree.fromstring(data, parser=xml_parser(huge_tree=True))


def _ends_at(data: bytes, line: int, column: int) -> bool:
    """Whether a parse error sits at the very end of the data (a cut-off file)."""
    last_line = data.count(b"\n") + 1
    tail = len(data) - (data.rfind(b"\n") + 1)
    return line > last_line or (line == last_line and column >= tail - 2)


def load_document(name: str, data: bytes) -> Element:
    """The parsed ``ClinicalDocument`` element; SourceError for anything unsafe or broken."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SourceError(
            f"C-CDA document is {len(data)} bytes; the limit is {MAX_DOCUMENT_BYTES}", file=name
        )
    refuse_entities(name, data)
    prolog = scan_prolog(_decode_head(data[:_PROLOG_LIMIT]))
    if prolog.doctype_line is not None:
        raise SourceError(
            "XML has a DOCTYPE (DTD); C-CDA needs none, refused for safety",
            file=name,
            place=f"line {prolog.doctype_line}",
        )
    if prolog.root_at is None and len(data) > _PROLOG_LIMIT:
        raise SourceError("no root element in the first MiB of the file", file=name)
    try:
        root = _parse(data)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno, 0)
        raise SourceError(
            _syntax_reason(exc, _ends_at(data, line, column)),
            file=name,
            place=f"line {line}, column {column}",
        ) from None
    info = root.getroottree().docinfo
    # Belt and braces: the prolog scan above should have caught any DTD already.
    if info.internalDTD is not None or info.externalDTD is not None or info.doctype:
        raise SourceError("XML has a DOCTYPE (DTD); refused for safety", file=name, place="DTD")
    if root.tag != q("ClinicalDocument"):
        raise SourceError(
            "not an HL7 CDA document: the root is not ClinicalDocument in urn:hl7-org:v3",
            file=name,
            place=f"line {root.sourceline}",
        )
    return root
