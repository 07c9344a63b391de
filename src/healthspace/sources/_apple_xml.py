"""Apple Health XML at the byte level: the prolog, block cuts, a tolerant element reader.

An export is one root (``HealthData``) holding millions of flat, single-line elements.
We never build a tree of it: the prolog is checked (no entity declarations, UTF-8),
the body is cut into blocks at top-level element starts, and only the rare elements
that carry structure (workouts, correlations, HRV lists) are read into small
:class:`Elem` trees by a tolerant reader. Tolerant, because iOS 8 exports are not
well-formed XML: their metadata became attributes with spaces in their names.

Nothing here resolves an entity, loads a DTD or touches the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from healthspace.errors import SourceError

__all__ = [
    "MAX_ELEMENT",
    "Elem",
    "Prolog",
    "cut_point",
    "read_elements",
    "read_prolog",
    "segments",
    "special_span",
    "unescape",
]

# One top-level element larger than this is refused (a real one is a few kB).
MAX_ELEMENT: Final = 64 << 20
_MAX_PROLOG: Final = 1 << 20

_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name[0] != "#":
        return _NAMED[name]
    try:
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        return chr(code)
    except (ValueError, OverflowError):
        return match.group(0)


def unescape(text: str) -> str:
    """The five XML entities and character references; anything else is left as written."""
    return _ENTITY.sub(_entity, text) if "&" in text else text


@dataclass(slots=True)
class Elem:
    """One element as read: tag, attributes (unescaped), children, byte span in its buffer."""

    tag: str
    attrs: dict[str, str]
    children: list[Elem] = field(default_factory=list)
    start: int = 0
    end: int = 0

    def find_all(self, tag: str) -> list[Elem]:
        return [child for child in self.children if child.tag == tag]

    def iter(self, tag: str) -> list[Elem]:
        """Every descendant with ``tag``, in document order."""
        found: list[Elem] = []
        for child in self.children:
            if child.tag == tag:
                found.append(child)
            found.extend(child.iter(tag))
        return found


_TAG = re.compile(rb"<(/?)([A-Za-z_][^\s/>]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)\s*(/?)>")
# Attribute names may contain spaces (iOS 8 wrote metadata keys as attribute names).
_ATTR = re.compile(rb"([^\s=\"']+(?:[ \t]+[^\s=\"']+)*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _attrs(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for match in _ATTR.finditer(raw):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        out[match.group(1).decode("utf-8", "replace")] = unescape(value.decode("utf-8", "replace"))
    return out


def read_elements(data: bytes, start: int = 0, end: int | None = None) -> list[Elem]:
    """The elements of ``data[start:end]`` as trees; text, comments and PIs are skipped.

    Raises ValueError (a reason without any content) when tags do not nest.
    """
    stop = len(data) if end is None else end
    roots: list[Elem] = []
    stack: list[Elem] = []
    pos = start
    while True:
        lt = data.find(b"<", pos, stop)
        if lt == -1:
            break
        if data.startswith(b"<!--", lt):
            close = data.find(b"-->", lt + 4, stop)
            pos = stop if close == -1 else close + 3
            continue
        if data.startswith(b"<?", lt):
            close = data.find(b"?>", lt + 2, stop)
            pos = stop if close == -1 else close + 2
            continue
        if data.startswith(b"<![CDATA[", lt):
            close = data.find(b"]]>", lt + 9, stop)
            pos = stop if close == -1 else close + 3
            continue
        if data.startswith(b"<!", lt):
            raise ValueError("a declaration inside the document body")
        match = _TAG.match(data, lt, stop)
        if match is None:
            raise ValueError("a malformed tag")
        closing, name, raw_attrs, empty = match.groups()
        tag = name.decode("utf-8", "replace")
        pos = match.end()
        if closing:
            if not stack or stack[-1].tag != tag:
                raise ValueError(f"an unexpected closing tag </{tag}>")
            stack.pop().end = pos
            continue
        elem = Elem(tag, _attrs(raw_attrs), start=lt, end=pos)
        (stack[-1].children if stack else roots).append(elem)
        if not empty:
            stack.append(elem)
    if stack:
        raise ValueError(f"<{stack[-1].tag}> is not closed")
    return roots


@dataclass(frozen=True)
class Prolog:
    """What precedes the body: the root's attributes and where the body starts."""

    root_attrs: dict[str, str]
    body_start: int  # offset of the first byte after the root start tag
    export_version: int | None


_ROOT = re.compile(rb"<HealthData(?=[\s>/])((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_VERSION = re.compile(rb"HealthKit Export Version:\s*([0-9]+)")
_ENCODING = re.compile(rb"""^<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES: Final = {"utf-8", "utf8", "us-ascii", "ascii"}


def read_prolog(head: bytes, name: str) -> Prolog | None:
    """The prolog of an export if ``head`` holds all of it; None if more bytes are needed.

    Raises SourceError for what we refuse: entity declarations, other encodings than
    UTF-8, and a document whose root is not ``HealthData``.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError("UTF-16 exports are not supported; expected UTF-8", file=name)
    encoding = _ENCODING.match(head.removeprefix(b"\xef\xbb\xbf"))
    if encoding and encoding.group(1).decode("ascii").lower() not in _UTF8_NAMES:
        raise SourceError("only UTF-8 encoded exports are supported", file=name, place="line 1")
    body_from = 0
    doctype = head.find(b"<!DOCTYPE")
    if doctype != -1:
        bracket = head.find(b"[", doctype)
        gt = head.find(b">", doctype)
        if bracket != -1 and (gt == -1 or bracket < gt):
            close = head.find(b"]>", bracket)
            if close == -1:
                _need_more(head, name)
                return None
            body_from = close + 2
        elif gt != -1:
            body_from = gt + 1
        else:
            _need_more(head, name)
            return None
    if b"<!ENTITY" in head[:body_from] or (doctype == -1 and b"<!ENTITY" in head):
        raise SourceError("XML declares entities; refused for safety", file=name, place="DTD")
    root = _ROOT.search(head, body_from)
    if root is None:
        _need_more(head, name)
        return None
    if _first_element_before(head, body_from, root.start()):
        raise SourceError("the root element is not HealthData", file=name)
    version = _VERSION.search(head, 0, body_from) if body_from else None
    return Prolog(
        root_attrs=_attrs(root.group(1)),
        body_start=root.end(),
        export_version=int(version.group(1)) if version else None,
    )


def _need_more(head: bytes, name: str) -> None:
    if len(head) >= _MAX_PROLOG:
        raise SourceError("no HealthData root element in the first megabyte", file=name)


def _first_element_before(head: bytes, lo: int, hi: int) -> bool:
    """True when an element (not a comment or PI) starts between ``lo`` and ``hi``."""
    return any(match.group(1) != b"/" for match in re.finditer(rb"<([^!?])", head[lo:hi]))


# Elements that sit directly under HealthData; a block may start at any of them.
_TOP_START = re.compile(
    rb"<(?:Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram"
    rb"|VisionPrescription|ExportDate|Me)(?=[\s/>])"
)
_WINDOW: Final = 1 << 14
_MAX_CORRELATION: Final = 1 << 20


def cut_point(buf: bytes, end: int) -> int:
    """The start of the last top-level element in ``buf[:end]`` after offset 0, or -1.

    Everything before it is whole elements. A ``<Record`` inside a ``<Correlation``
    is not top-level: the cut then moves to the correlation's start.
    """
    lo = max(1, end - _WINDOW)
    while True:
        last = -1
        for match in _TOP_START.finditer(buf, lo, end):
            last = match.start()
        if last != -1 or lo == 1:
            break
        lo = max(1, lo - 4 * _WINDOW)
    if last == -1:
        return -1
    # Correlations are small (a few records): look back a bounded stretch only.
    open_corr = buf.rfind(b"<Correlation", max(0, last - _MAX_CORRELATION), last)
    if open_corr != -1 and buf.find(b"</Correlation>", open_corr, last) == -1:
        return open_corr if open_corr > 0 else -1
    return last


# -- pieces of a block: runs of plain Records, and everything else -------------------------

_SPECIAL = re.compile(rb"<(?!Record[\s/>]|/Record\s*>|MetadataEntry[\s/>])")
_TAG_NAME = re.compile(rb"<(/?)([A-Za-z_][^\s/>]*)")


def _enclosing_record(data: bytes, lo: int, at: int) -> tuple[int, int] | None:
    """The span of the ``<Record>`` element that position ``at`` lies inside, if any."""
    start = data.rfind(b"<Record", lo, at)
    if start == -1:
        return None
    head_end = data.find(b">", start, at)
    if head_end != -1 and (data[head_end - 1 : head_end] == b"/" or b"</Record" in data[start:at]):
        return None  # that record was closed before ``at``
    close = data.find(b"</Record>", at)
    return (start, len(data)) if close == -1 else (start, close + len(b"</Record>"))


def _element_end(data: bytes, at: int, tag: bytes) -> int:
    """Where the element starting at ``at`` ends (past its end tag); the block end if never."""
    head_end = data.find(b">", at)
    if head_end == -1:
        return len(data)
    if data[head_end - 1 : head_end] == b"/":
        return head_end + 1
    close = data.find(b"</" + tag + b">", head_end)
    return len(data) if close == -1 else close + len(tag) + 3


def special_span(data: bytes, at: int) -> tuple[int, int]:
    """The piece starting with the ``<`` at ``at``: an element, comment or PI."""
    if data.startswith(b"<!--", at):
        close = data.find(b"-->", at)
        return at, len(data) if close == -1 else close + 3
    if data.startswith(b"<?", at):
        close = data.find(b"?>", at)
        return at, len(data) if close == -1 else close + 2
    name = _TAG_NAME.match(data, at)
    if name is None or name.group(1):
        return at, at + 1
    return at, _element_end(data, at, name.group(2))


def segments(data: bytes) -> list[tuple[bool, int, int]]:
    """(plain run of Records?, start, end) pieces of a block, in order."""
    if _SPECIAL.search(data) is None:
        return [(True, 0, len(data))]
    out: list[tuple[bool, int, int]] = []
    pos = 0
    for match in _SPECIAL.finditer(data):
        at = match.start()
        if at < pos:
            continue
        span = _enclosing_record(data, pos, at) or special_span(data, at)
        if span[0] > pos:
            out.append((True, pos, span[0]))
        out.append((False, span[0], span[1]))
        pos = span[1]
    if pos < len(data):
        out.append((True, pos, len(data)))
    return out
