"""Lab reports as PDFs and as photos or scans: results read out, held for review.

A text PDF is read with pypdfium2 (its text layer, line by line) and pdfplumber
(table cells, where the report draws a table); a page without text, or a photo
(PNG, JPEG, WebP, TIFF), goes through OCR (RapidOCR, offline, the ``ocr`` extra).
Each result row becomes an :class:`Observation` (category laboratory) coded with
LOINC from the analyte table in ``sources/data/lab_analytes.json`` (English, French
and Simplified Chinese names), with the value, unit, reference range and flag as
printed (never invented) and a note giving the extraction method and a confidence
in [0, 1]. The file itself is kept as a :class:`Document`.

Lab-testing services that deliver results as PDF (Function Health, Quest, Labcorp,
InsideTracker, hospital portals' printouts...) come in through this source too.

Nothing read this way is trusted silently: the manifest sets ``needs_review``, so
an import ends held for review until the person confirms it (``healthspace review``).

Safety (T-UP-1, T-UP-4): a ``.pdf`` or image name whose bytes are something else (an
executable, a ZIP) is refused; parsing runs in a separate process limited in memory,
CPU and time, after a decompression budget check and under a page and pixel limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath
from typing import NamedTuple

from healthspace.errors import SourceError
from healthspace.hookspecs import hookimpl
from healthspace.model import (
    LOINC,
    Attached,
    Code,
    Document,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
    ReferenceRange,
    StringValue,
    system_from_oid,
)
from healthspace.sources._labs_analytes import fold
from healthspace.sources._labs_rows import LabRow, parse_line, table_lines
from healthspace.sources._labs_sandbox import DEFAULT_LIMITS, Extraction, LabLimits, run_worker
from healthspace.sources._labs_text import DocumentHints, document_hints, normalize_line
from healthspace.sources._labs_worker import media_type
from healthspace.sources.base import ImportContext, InputFile, Item, SourceManifest

__all__ = ["LOCAL_NAME_SYSTEM", "LabLimits", "LabReportSource", "register_sources"]

SOURCE_ID = "labs_pdf"
# Analytes the table does not know keep their printed name under this local system.
LOCAL_NAME_SYSTEM = "urn:healthspace:labs_pdf:analyte-name"
_INTERPRETATION = system_from_oid("2.16.840.1.113883.5.83") or "v3-ObservationInterpretation"
_FLAG_DISPLAY = {
    "H": "High",
    "HH": "Critical high",
    "L": "Low",
    "LL": "Critical low",
    "A": "Abnormal",
    "N": "Normal",
}
_METHODS = {
    "pdf-text": "the PDF's text layer (pypdfium2)",
    "pdf-table": "the PDF's table cells (pdfplumber)",
    "ocr": "OCR (RapidOCR)",
}
_LAB_REPORT = Code(system=LOINC, code="11502-2", display="Laboratory report")
_CLAIMED_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
_KNOWN_MAGIC = {b"MZ": "a Windows executable", b"PK": "a ZIP archive", b"\x7fELF": "a program"}


def _describe(head: bytes) -> str:
    for magic, what in _KNOWN_MAGIC.items():
        if head.startswith(magic):
            return what
    return "not a PDF or an image"


class LabReportSource:
    """Lab reports: text PDFs, scanned PDFs and photos."""

    manifest = SourceManifest(
        id=SOURCE_ID,
        name="Lab reports (PDF, photo)",
        reads=("observation", "document"),
        purpose="Read lab results from PDF reports and photos so you can review and keep them.",
        needs_review=True,
    )

    def __init__(self, limits: LabLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def sniff(self, file: InputFile, head: bytes) -> bool:
        # A ".pdf" that is not one is claimed too, so that parse refuses it (T-UP-1)
        # instead of the pipeline opening it as whatever it really is.
        return media_type(head) is not None or file.name.lower().endswith(_CLAIMED_SUFFIXES)

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        head = file.head(1024)
        kind = media_type(head)
        if kind is None:
            suffix = PurePath(file.name).suffix or "this"
            raise SourceError(
                f"named as {suffix} but the content is {_describe(head)}; refused", file=file.name
            )
        if file.size > self.limits.max_bytes:
            raise SourceError(
                f"file is {file.size} bytes; the limit for lab reports is {self.limits.max_bytes}",
                file=file.name,
            )
        data = file.read()
        # All reading happens before the first item is yielded: a failure leaves nothing.
        extraction = run_worker(data, file.name, self.limits)
        yield from _items(extraction, data, file, ctx)


class _Found(NamedTuple):
    method: str  # "pdf-table", "pdf-text", "ocr"
    row: LabRow
    place: str  # where on the report, for people: "page 1, line 5"
    suffix: str  # where on the report, for the stable source_id


def _rows(extraction: Extraction, hints: DocumentHints, ctx: ImportContext) -> list[_Found]:
    found: list[_Found] = []
    for page in extraction.pages:
        p = page.number
        if page.method == "ocr-unavailable":
            ctx.warn(
                f"page {p}",
                "no text layer and OCR is not installed (pip install 'healthspace[ocr]'); "
                "no values were read from it",
            )
            continue
        seen: set[tuple[str, float | None, str]] = set()
        for t, table in enumerate(page.tables):
            for r, line in enumerate(table_lines(table)):
                for k, row in enumerate(parse_line(normalize_line(line), hints)):
                    seen.add(_key(row))
                    place = f"page {p}, table {t + 1}, row {r + 1}"
                    found.append(_Found("pdf-table", row, place, f"p{p}t{t}r{r}k{k}"))
        for n, (text, confidence) in enumerate(page.lines):
            for k, row in enumerate(parse_line(normalize_line(text), hints, confidence)):
                if _key(row) not in seen:  # else already read from the table's cells
                    place = f"page {p}, line {n + 1}"
                    found.append(_Found(page.method, row, place, f"p{p}l{n}k{k}"))
    return found


def _items(
    extraction: Extraction, data: bytes, file: InputFile, ctx: ImportContext
) -> Iterator[Item]:
    all_lines = [normalize_line(text) for page in extraction.pages for text, _ in page.lines]
    hints = document_hints(all_lines)
    found = _rows(extraction, hints, ctx)
    provenance_base = {
        "source": SOURCE_ID,
        "file_name": PurePath(file.name).name,
        "file_sha256": ctx.file_sha256,
    }
    effective = _moment(hints.collected)
    issued = _moment(hints.reported)
    methods = sorted({f.method for f in found})
    document = Document(
        source_id=f"{SOURCE_ID}:{ctx.file_sha256}",
        provenance=Provenance(**provenance_base, original_ref="file"),
        title=PurePath(file.name).stem,
        media_type=extraction.media_type,
        sha256=ctx.file_sha256,
        size=len(data),
        date=effective or issued,
        doc_type=_LAB_REPORT,
        category="laboratory",
        description=f"Lab report: {len(found)} results read ({', '.join(methods) or 'none'}), "
        "held for review",
        file_name=PurePath(file.name).name,
        language=hints.language,
    )
    yield Attached(document, file=data)
    for method, row, place, suffix in found:
        if row.entry is None:
            ctx.unmapped["lab analyte name not in the table"] += 1
        yield _observation(
            row,
            method,
            place,
            f"{SOURCE_ID}:{ctx.file_sha256}:{suffix}",
            Provenance(**provenance_base, original_ref=place),
            effective,
            issued,
        )


def _key(row: LabRow) -> tuple[str, float | None, str]:
    return (row.entry.id if row.entry else fold(row.name), row.value, row.unit)


def _moment(iso: str | None) -> PartialDateTime | None:
    return PartialDateTime.parse(iso) if iso else None


def _observation(
    row: LabRow,
    method: str,
    place: str,
    source_id: str,
    provenance: Provenance,
    effective: PartialDateTime | None,
    issued: PartialDateTime | None,
) -> Observation:
    if row.entry is not None:
        loinc, _ = row.entry.code_for(row.unit)
        code = Code(system=LOINC, code=loinc, display=row.entry.display(loinc))
    else:
        code = Code(
            system=LOCAL_NAME_SYSTEM, code=fold(row.name)[:80] or "unnamed", display=row.name
        )
    if row.value is not None:
        value: QuantityValue | StringValue = QuantityValue(
            quantity=Quantity(value=row.value, unit=row.unit, comparator=row.comparator)
        )
    else:
        value = StringValue(text=row.text_value or "")
    ranges: tuple[ReferenceRange, ...] = ()
    if row.range_text is not None:
        ranges = (
            ReferenceRange(
                low=None if row.low is None else Quantity(value=row.low, unit=row.unit),
                high=None if row.high is None else Quantity(value=row.high, unit=row.unit),
                text=row.range_text,
            ),
        )
    interpretation = (
        (Code(system=_INTERPRETATION, code=row.flag, display=_FLAG_DISPLAY[row.flag]),)
        if row.flag
        else ()
    )
    note = (
        f"Read from {place} of the report by {_METHODS.get(method, method)}; "
        f"confidence {row.confidence:.2f}. Printed: {row.printed}"
    )
    return Observation(
        source_id=source_id,
        provenance=provenance,
        status="final",
        note=note,
        code=code,
        codes=(code,),
        text=row.name,
        category="laboratory",
        value=value,
        reference_ranges=ranges,
        interpretation=interpretation,
        effective=effective,
        issued=issued,
    )


@hookimpl
def register_sources() -> list[LabReportSource]:
    return [LabReportSource()]
