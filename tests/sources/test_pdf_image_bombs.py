"""T-UP-1 and T-UP-4: PDF and image bombs, and files that lie about their type.

Each hostile file ends in one SourceError naming the file and the reason, within a
generous time bound (pytest-timeout), and leaves the store as it was: the parser runs
in a limited subprocess and nothing is yielded before it has finished.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from healthspace.sources.base import InputFile
from healthspace.sources.labs_pdf import LabLimits, LabReportSource
from healthspace.sources.pipeline import ImportReport, import_files
from healthspace.store import SpaceSession, Store, review
from tests.store.test_records import logical_dump

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF from object bodies (object 1 must be the catalog), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def one_page_pdf(content: bytes, stream_dict: bytes, resources: bytes = b"") -> bytes:
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            + resources
            + b" >>",
            b"<< /Length %d %s >>\nstream\n" % (len(content), stream_dict)
            + content
            + b"\nendstream",
        ]
    )


@pytest.fixture(scope="module")
def flate_bomb() -> bytes:
    """A 1 GiB page content stream, Flate-compressed twice: about 13 KB on disk."""
    inner = zlib.compressobj(1)
    zeros = bytes(1 << 20)
    once = b"".join(inner.compress(zeros) for _ in range(1024)) + inner.flush()
    twice = zlib.compress(once, 9)
    return one_page_pdf(twice, b"/Filter [/FlateDecode /FlateDecode]")


def many_pages_pdf(count: int) -> bytes:
    kids = b" ".join(b"%d 0 R" % (n + 3) for n in range(count))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count,
            *([page] * count),
        ]
    )


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and carries almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def import_one(
    session: SpaceSession, data: bytes, name: str, limits: LabLimits | None = None
) -> ImportReport:
    sources = None if limits is None else [LabReportSource(limits)]
    return import_files(session, [InputFile.from_bytes(data, name)], sources=sources)  # type: ignore[list-item]


def assert_refused(
    store: Store,
    session: SpaceSession,
    data: bytes,
    name: str,
    *words: str,
    limits: LabLimits | None = None,
) -> str:
    before = logical_dump(store)
    report = import_one(session, data, name, limits)
    (error,) = report.errors
    assert name in error
    for word in words:
        assert word in error
    assert report.imported == {}
    assert review.pending_jobs(session) == []
    assert logical_dump(store) == before
    return error


@pytest.mark.timeout(120)
def test_nested_flate_pdf_bomb(store: Store, health: SpaceSession, flate_bomb: bytes) -> None:
    assert len(flate_bomb) < 64 * 1024
    assert_refused(store, health, flate_bomb, "bomb.pdf", "expands beyond", "object 4")


@pytest.mark.timeout(120)
def test_parser_killed_by_memory_limit_leaves_nothing(
    store: Store, health: SpaceSession, flate_bomb: bytes
) -> None:
    """Without the decompression budget, the PDF library itself hits RLIMIT_AS."""
    limits = LabLimits(decompressed_bytes=1 << 40, memory_bytes=512 << 20)
    assert_refused(store, health, flate_bomb, "bomb.pdf", "memory", limits=limits)


@SQLITE_ONLY
@pytest.mark.timeout(120)
def test_parser_killed_by_cpu_limit(store: Store, health: SpaceSession, flate_bomb: bytes) -> None:
    limits = LabLimits(decompressed_bytes=1 << 40, memory_bytes=4 << 30, cpu_seconds=1)
    assert_refused(store, health, flate_bomb, "bomb.pdf", "CPU", limits=limits)


@SQLITE_ONLY
@pytest.mark.timeout(120)
def test_parser_killed_at_wall_clock_timeout(
    store: Store, health: SpaceSession, flate_bomb: bytes
) -> None:
    limits = LabLimits(decompressed_bytes=1 << 40, memory_bytes=4 << 30, wall_seconds=1.0)
    assert_refused(store, health, flate_bomb, "bomb.pdf", "longer than 1 s", limits=limits)


@SQLITE_ONLY
@pytest.mark.timeout(120)
def test_png_declaring_100k_by_100k_pixels(store: Store, health: SpaceSession) -> None:
    data = png_header(100_000, 100_000)
    assert len(data) < 1024
    assert_refused(store, health, data, "flood.png", "pixels")


@SQLITE_ONLY
@pytest.mark.timeout(120)
def test_pdf_image_declaring_a_pixel_flood(store: Store, health: SpaceSession) -> None:
    image = zlib.compress(b"\x00" * 1024)
    data = one_page_pdf(
        image,
        b"/Type /XObject /Subtype /Image /Width 100000 /Height 100000 /ColorSpace /DeviceGray"
        b" /BitsPerComponent 8 /Filter /FlateDecode",
    )
    assert_refused(store, health, data, "flood.pdf", "pixels")


@SQLITE_ONLY
@pytest.mark.timeout(120)
def test_pdf_with_ten_thousand_pages(store: Store, health: SpaceSession) -> None:
    data = many_pages_pdf(10_000)
    assert_refused(store, health, data, "long.pdf", "10000 pages", "limit is 50")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00" + bytes(120), "executable"),
        (b"\x7fELF\x02\x01\x01" + bytes(120), "program"),
        (None, "ZIP archive"),
    ],
)
def test_pdf_name_with_other_magic_is_refused(
    store: Store, health: SpaceSession, content: bytes | None, what: str
) -> None:
    if content is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("labs.json", '{"resourceType": "Observation"}')
        content = buf.getvalue()
    assert_refused(store, health, content, "results.pdf", what, "refused")
