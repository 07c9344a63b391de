"""The lab-report reader's worker process: PDF and image bytes in, text lines out.

Run as ``python -m healthspace.sources._labs_worker LIMITS_JSON`` with the file on
stdin; prints one JSON document on stdout. It limits itself before reading anything
(address space, CPU seconds, no files written, no core dumps), so a decompression
bomb or a pixel flood ends this process, never the importer (T-UP-4). It imports
nothing from healthspace beyond its own helpers, to start fast and stay small.
"""

from __future__ import annotations

import io
import json
import sys
import warnings
from typing import Any

__all__ = ["main"]

MAGIC: dict[bytes, str] = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"II*\x00": "image/tiff",
    b"MM\x00*": "image/tiff",
}
_MAX_LINES = 10_000  # 50 pages of 200 lines; bounds the parsing that follows
_MAX_LINE_CHARS = 1_000
_OCR_LONG_SIDE = 2400  # pixels: enough for a page photographed whole, and bounded
_RENDER_DPI = 200


class Refused(Exception):
    def __init__(self, reason: str, place: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.place = place


def media_type(head: bytes) -> str | None:
    """The media type by magic number, at offset 0 (a polyglot EXE-PDF is refused)."""
    for magic, kind in MAGIC.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _limit_self(limits: dict[str, int]) -> None:
    # Imported here: the importer imports this module for ``media_type`` on any OS.
    import resource
    import signal

    memory = limits["memory_bytes"]
    cpu = limits["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # SIGXCPU at the soft limit (reported as such), SIGKILL a few seconds later.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a core dump would hold the file
    # Writing files fails (EFBIG) instead of killing us; nothing here needs to write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _page(number: int, method: str, lines: list[tuple[str, float]], **extra: Any) -> dict[str, Any]:
    return {"page": number, "method": method, "lines": lines, **extra}


def _ocr_page(number: int, image: Any) -> dict[str, Any]:
    from healthspace.sources._labs_ocr import ocr_available, ocr_lines

    if not ocr_available():
        return _page(number, "ocr-unavailable", [])
    scale = min(1.0, _OCR_LONG_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    return _page(number, "ocr", [(line.text, line.confidence) for line in ocr_lines(image)])


def _pdf(data: bytes, limits: dict[str, int]) -> list[dict[str, Any]]:
    from healthspace.sources._labs_pdfscan import BudgetExceeded, scan_pdf

    try:
        scan_pdf(data, budget=limits["decompressed_bytes"], max_pixels=limits["max_pixels"])
    except BudgetExceeded as exc:
        raise Refused(exc.reason, exc.place) from None
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        raise Refused("not a readable PDF (damaged, or protected by a password)") from None
    count = len(pdf)
    if count > limits["max_pages"]:
        raise Refused(f"the PDF has {count} pages; the limit is {limits['max_pages']}")
    pages = []
    plumber: Any = None
    for index in range(count):
        page = pdf[index]
        text = page.get_textpage().get_text_bounded()
        lines = [(line, 1.0) for line in text.splitlines() if line.strip()]
        if sum(len(line) for line, _ in lines) >= 20:
            tables: list[Any] = []
            if any(ch.isdigit() for ch in text):
                if plumber is None:
                    import pdfplumber

                    plumber = pdfplumber.open(io.BytesIO(data))
                try:
                    tables = plumber.pages[index].extract_tables()
                except Exception:  # cells only refine the text; the lines still count
                    tables = []
            pages.append(_page(index + 1, "pdf-text", lines, tables=tables))
            continue
        # No text layer: a scan. Render it (bounded in pixels) and read it.
        width, height = page.get_size()
        scale = min(
            _RENDER_DPI / 72,
            _OCR_LONG_SIDE / max(width, height, 1),
            (limits["max_pixels"] / max(width * height, 1)) ** 0.5,
        )
        image = page.render(scale=scale).to_pil()
        pages.append(_ocr_page(index + 1, image))
    return pages


def _image(data: bytes, limits: dict[str, int]) -> list[dict[str, Any]]:
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = limits["max_pixels"]
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > limits["max_pixels"]:
            raise Refused(
                f"image declares {width}x{height} pixels; the limit is {limits['max_pixels']}"
            )
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(
            f"image declares more pixels than the limit of {limits['max_pixels']}"
        ) from None
    except (OSError, ValueError, SyntaxError):
        raise Refused("not a readable image") from None
    frames = getattr(image, "n_frames", 1)
    if frames > limits["max_pages"]:
        raise Refused(f"the image has {frames} pages; the limit is {limits['max_pages']}")
    pages = []
    for frame in range(frames):
        image.seek(frame)
        if image.format == "JPEG":
            image.draft("RGB", (_OCR_LONG_SIDE, _OCR_LONG_SIDE))  # decode big JPEGs smaller
        try:
            upright = ImageOps.exif_transpose(image).convert("RGB")
        except (OSError, ValueError, SyntaxError):
            raise Refused("not a readable image", f"page {frame + 1}") from None
        pages.append(_ocr_page(frame + 1, upright))
    return pages


def _trim(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bound what the importer will parse, whatever the file holds."""
    budget = _MAX_LINES
    for page in pages:
        page["lines"] = [(t[:_MAX_LINE_CHARS], c) for t, c in page["lines"][: max(budget, 0)]]
        budget -= len(page["lines"])
        tables = []
        for table in page.get("tables", []):
            rows = [[(cell or "")[:_MAX_LINE_CHARS] for cell in row[:32]] for row in table]
            tables.append(rows[: max(budget, 0)])
            budget -= len(rows)
        page["tables"] = tables
    return pages


def extract(data: bytes, limits: dict[str, int]) -> dict[str, Any]:
    kind = media_type(data[:1024])
    if kind is None:
        raise Refused("neither a PDF nor an image this reader knows")
    pages = _pdf(data, limits) if kind == "application/pdf" else _image(data, limits)
    return {"ok": True, "media_type": kind, "pages": _trim(pages)}


def main() -> None:
    limits = {key: int(value) for key, value in json.loads(sys.argv[1]).items()}
    _limit_self(limits)
    sys.dont_write_bytecode = True
    data = sys.stdin.buffer.read()
    try:
        out = extract(data, limits)
    except Refused as exc:
        out = {"ok": False, "reason": exc.reason, "place": exc.place}
    except MemoryError:
        out = {"ok": False, "reason": "ran out of memory while reading", "place": None}
    except Exception as exc:  # a library failed on hostile input: say which kind, not what
        out = {"ok": False, "reason": f"the reader failed ({type(exc).__name__})", "place": None}
    sys.stdout.write(json.dumps(out, ensure_ascii=False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
