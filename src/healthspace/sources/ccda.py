"""C-CDA R2.1 documents: CCD, referral / transition of care, discharge and visit summaries,
and unstructured documents that wrap a PDF.

Sections are recognised by templateId (any version) or, failing that, by their LOINC
code; each entry becomes canonical records that keep the entry's own XML as their
original. Sections this importer does not map are counted in ``ctx.unmapped``. The
document itself is kept as a Document (the XML, or the file an unstructured document
embeds), so nothing of the narrative is lost.

Parsing is hardened (see ``_ccda_load``): no DTD, no entities, no network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final, Literal

from pydantic import ValidationError

from healthspace.errors import SourceError
from healthspace.hookspecs import hookimpl
from healthspace.model import Attached, Document, Patient
from healthspace.sources import _ccda_care as care
from healthspace.sources import _ccda_meds as meds
from healthspace.sources import _ccda_problems as problems
from healthspace.sources import _ccda_results as results
from healthspace.sources._ccda_load import MAX_DOCUMENT_BYTES, is_clinical_document, load_document
from healthspace.sources._ccda_xml import (
    SDTC,
    DocReader,
    Element,
    Mapper,
    attr,
    child,
    original,
    q,
)
from healthspace.sources.base import ImportContext, InputFile, Item, SourceManifest

__all__ = ["SECTIONS", "CcdaSource", "SectionKind", "identify_section", "register_sources"]


@dataclass(frozen=True)
class SectionKind:
    """A section this importer maps: how it is recognised and which mapper reads it."""

    key: str
    templates: tuple[str, ...]  # section templateId roots (entries optional / required)
    loinc: tuple[str, ...]
    mapper: Mapper


_S = "2.16.840.1.113883.10.20.22.2."
SECTIONS: Final[tuple[SectionKind, ...]] = (
    SectionKind("results", (_S + "3", _S + "3.1"), ("30954-2",), results.results),
    SectionKind("vital signs", (_S + "4", _S + "4.1"), ("8716-3",), results.vital_signs),
    SectionKind("problems", (_S + "5", _S + "5.1"), ("11450-4",), problems.problems),
    SectionKind("allergies", (_S + "6", _S + "6.1"), ("48765-2",), problems.allergies),
    SectionKind("medications", (_S + "1", _S + "1.1"), ("10160-0",), meds.medications),
    SectionKind("medications administered", (_S + "38",), ("29549-3",), meds.medications),
    SectionKind("admission medications", (_S + "44",), ("42346-7",), meds.medications),
    SectionKind("discharge medications", (_S + "11", _S + "11.1"), ("10183-2",), meds.medications),
    SectionKind("admission diagnosis", (_S + "43",), ("46241-6",), problems.diagnoses),
    SectionKind("discharge diagnosis", (_S + "24",), ("11535-2",), problems.diagnoses),
    SectionKind("immunizations", (_S + "2", _S + "2.1"), ("11369-6",), meds.immunizations),
    SectionKind("encounters", (_S + "22", _S + "22.1"), ("46240-8",), care.encounters),
    SectionKind("procedures", (_S + "7", _S + "7.1"), ("47519-4",), care.procedures),
    SectionKind("payers", (_S + "18",), ("48768-6",), care.payers),
    SectionKind("plan of care", (_S + "10",), ("18776-5",), care.plan_of_care),
    SectionKind("social history", (_S + "17",), ("29762-2",), results.social_history),
)
_BY_TEMPLATE: Final = {t: kind for kind in SECTIONS for t in kind.templates}
_BY_LOINC: Final = {code: kind for kind in SECTIONS for code in kind.loinc}
_MAX_EMBEDDED_BYTES: Final = 256 << 20
_MEDIA_TYPE: Final = re.compile(r"[\w.+-]+/[\w.+-]+")
_GENDER: Final[dict[str, Literal["female", "male", "other"]]] = {
    "F": "female",
    "M": "male",
    "UN": "other",
}

MANIFEST: Final = SourceManifest(
    id="ccda",
    name="C-CDA documents (CCD, referral, discharge and visit summaries)",
    reads=(
        "observation",
        "report",
        "condition",
        "allergy",
        "medication",
        "immunization",
        "encounter",
        "procedure",
        "coverage",
        "care_plan",
        "document",
        "patient",
    ),
    purpose="Bring in the records your doctors' systems export as C-CDA documents.",
)


def identify_section(section: Element) -> SectionKind | None:
    """The mapped kind of a section, by templateId first, then by LOINC section code."""
    for template in section.findall(q("templateId")):
        found = _BY_TEMPLATE.get(template.get("root") or "")
        if found is not None:
            return found
    return _BY_LOINC.get(attr(child(section, "code"), "code") or "")


def _section_label(section: Element) -> str:
    code = attr(child(section, "code"), "code")
    if code is not None:
        return code
    template = attr(child(section, "templateId"), "root")
    return template or "without code"


def _validation_reason(exc: ValidationError) -> str:
    # The field names and error kinds only: pydantic's message would quote the input.
    fields = sorted(
        {".".join(str(p) for p in err["loc"]) + f" ({err['type']})" for err in exc.errors()}
    )
    return "left out: invalid " + ", ".join(fields)


class CcdaSource:
    """The C-CDA importer (a :class:`healthspace.sources.base.Source`)."""

    manifest = MANIFEST

    def sniff(self, file: InputFile, head: bytes) -> bool:
        return is_clinical_document(head)

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        if file.size > MAX_DOCUMENT_BYTES:
            raise SourceError(
                f"C-CDA document is {file.size} bytes; the limit is {MAX_DOCUMENT_BYTES}",
                file=file.name,
            )
        data = file.read()
        root = load_document(file.name, data)
        doc = DocReader(root, file_name=file.name, file_sha256=ctx.file_sha256, warn=ctx.warn)
        try:
            patient = _patient(doc)
        except ValidationError as exc:
            ctx.warn("recordTarget", _validation_reason(exc))
            patient = None
        if patient is not None:
            yield patient
        body = child(root, "component", "nonXMLBody")
        try:
            if body is not None:
                yield _embedded(doc, body)
                return
            yield _document_record(doc, media_type="application/xml", payload=data)
        except ValidationError as exc:
            raise SourceError(
                _validation_reason(exc), file=file.name, place="ClinicalDocument"
            ) from None
        structured = child(root, "component", "structuredBody")
        if structured is None:
            ctx.warn("ClinicalDocument", "no structuredBody or nonXMLBody; only the document kept")
            return
        for section in structured.iter(q("section")):
            yield from _section(doc, ctx, section)


def _section(doc: DocReader, ctx: ImportContext, section: Element) -> Iterator[Item]:
    entries = section.findall(q("entry"))
    kind = identify_section(section)
    if kind is None:
        if entries:
            ctx.unmapped[f"section {_section_label(section)}"] += len(entries)
        return
    for number, entry in enumerate(entries, 1):
        place = f"section {kind.key}, entry {number}"
        try:
            items = kind.mapper(doc, entry, place)
        except ValidationError as exc:
            ctx.warn(place, _validation_reason(exc))
            ctx.unmapped[f"{kind.key}: unreadable entry"] += 1
            continue
        if not items:
            ctx.unmapped[f"{kind.key}: entry of an unknown shape"] += 1
        yield from items


def _document_record(
    doc: DocReader, *, media_type: str, payload: bytes, suffix: str = ""
) -> Attached:
    root = doc.root
    author = child(root, "author")
    code_el = child(root, "code")
    base = PurePath(doc.file_name.rsplit("!", 1)[-1]).name
    record = Document(
        source_id=f"ccda:document:{doc.doc_key}{suffix}",
        provenance=doc.provenance("ClinicalDocument" + suffix),
        status="current",
        title=doc.text(child(root, "title")),
        media_type=media_type,
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        date=doc.time(child(root, "effectiveTime"), "ClinicalDocument/effectiveTime"),
        doc_type=doc.code(code_el),
        category="clinical-note",
        author=doc.organization(author) or doc.person(author),
        file_name=base if not suffix else None,
        language=attr(child(root, "languageCode"), "code"),
    )
    return Attached(record, file=payload)


def _embedded(doc: DocReader, body: Element) -> Attached:
    """The file an unstructured document carries in ``nonXMLBody/text`` (base64)."""
    place = "nonXMLBody/text"
    text = child(body, "text")
    if text is None or (child(text, "reference") is not None and not (text.text or "").strip()):
        raise SourceError(
            "unstructured document refers to an outside file", file=doc.file_name, place=place
        )
    media_type = attr(text, "mediaType") or "text/plain"
    if _MEDIA_TYPE.fullmatch(media_type) is None:
        media_type = "application/octet-stream"
    if (attr(text, "representation") or "TXT").upper() == "B64":
        try:
            payload = base64.b64decode("".join((text.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            raise SourceError(
                "embedded file is not valid base64", file=doc.file_name, place=place
            ) from None
    else:
        payload = (text.text or "").encode()
    payload = _inflate(doc, attr(text, "compression"), payload, place)
    if media_type == "application/pdf" and not payload.startswith(b"%PDF-"):
        raise SourceError(
            "embedded file is declared a PDF but is not one", file=doc.file_name, place=place
        )
    return _document_record(doc, media_type=media_type, payload=payload, suffix="#nonXMLBody")


def _inflate(doc: DocReader, compression: str | None, payload: bytes, place: str) -> bytes:
    if compression is None:
        return payload
    if compression.upper() not in ("DF", "GZ", "ZL"):
        raise SourceError(
            f"embedded file uses unsupported compression {compression!r}",
            file=doc.file_name,
            place=place,
        )
    wbits = {"DF": -15, "GZ": 31, "ZL": 15}[compression.upper()]
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(payload, _MAX_EMBEDDED_BYTES + 1)
    except zlib.error:
        raise SourceError(
            "embedded file does not decompress", file=doc.file_name, place=place
        ) from None
    if len(out) > _MAX_EMBEDDED_BYTES or inflater.unconsumed_tail:
        raise SourceError(
            "embedded file expands beyond the size limit", file=doc.file_name, place=place
        )
    return out


def _patient(doc: DocReader) -> Attached | None:
    role = child(doc.root, "recordTarget", "patientRole")
    person = child(role, "patient")
    if person is None:
        return None
    place = "recordTarget"
    name_el = child(person, "name")
    given = (
        tuple(filter(None, (doc.name(g) for g in name_el.findall(q("given")))))
        if name_el is not None
        else ()
    )
    deceased = person.find(q("deceasedInd", SDTC))
    record = Patient(
        source_id=doc.source_id("patient", role, place),
        provenance=doc.provenance(place),
        name=doc.name(name_el),
        given=given,
        family=doc.name(child(name_el, "family")),
        birth_date=doc.time(child(person, "birthTime"), place),
        sex=_GENDER.get(attr(child(person, "administrativeGenderCode"), "code") or ""),
        deceased=attr(deceased, "value") == "true",
        deceased_date=doc.time(person.find(q("deceasedTime", SDTC)), place),
        language=attr(child(person, "languageCommunication", "languageCode"), "code"),
        marital_status=doc.code_text(child(person, "maritalStatusCode")),
    )
    return Attached(record, original=original(role))


@hookimpl
def register_sources() -> list[CcdaSource]:
    return [CcdaSource()]
