"""T-UP-2 for every importer: the pipeline's archive guard, whatever the members are."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from healthspace.errors import SourceError
from healthspace.sources._safety import SafeZip
from healthspace.sources.pipeline import import_paths
from healthspace.store import SpaceSession, Store
from tests.store.test_records import logical_dump

BODY = b'{"resourceType": "Patient", "id": "p1"}' * 50


def _zip(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, b"/etc/passwd")
    return buf.getvalue()


def _overlapped() -> bytes:
    """Two directory entries pointing at one member's bytes."""
    data = zlib.compress(BODY)[2:-4]
    crc = zlib.crc32(BODY)
    out = b""
    names = (b"a.json", b"b.json")
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), len(BODY), len(names[0]), 0
    )
    out = local + names[0] + data
    central = b""
    for name in names:
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(data),
                len(BODY),
                len(name),
                0,
                0,
                0,
                0,
                0,
                0,
            )
            + name
        )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(central), len(out), 0)
    return out + central + end


def _ratio_bomb() -> bytes:
    return _zip({"big.json": b" " * (20 << 20)})


CASES = {
    "traversal": (lambda: _zip({"../evil.json": BODY}), "escapes the archive"),
    "absolute": (lambda: _zip({"/etc/evil.json": BODY}), "absolute path"),
    "symlink": (lambda: _zip({"ok.json": BODY}, symlink="link.json"), "symbolic link"),
    "ratio": (_ratio_bomb, "compression ratio"),
    "overlapped": (_overlapped, "overlap"),
    "nested": (lambda: _zip({"inner.zip": _zip({"x.json": BODY})}), "nested archives"),
    "truncated": (lambda: _zip({"ok.json": BODY})[:-30], "not a readable ZIP"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_archives_are_refused_and_change_nothing(
    store: Store, health: SpaceSession, tmp_path: Path, case: str
) -> None:
    build, reason = CASES[case]
    path = tmp_path / f"{case}.zip"
    path.write_bytes(build())
    before = logical_dump(store)
    report = import_paths(health, [path])
    assert len(report.errors) == 1
    assert reason in report.errors[0]
    assert str(path) in report.errors[0]
    assert logical_dump(store) == before


def test_forged_member_size_is_stopped_while_reading(tmp_path: Path) -> None:
    """A member whose header under-declares its size is cut off at the declared size."""
    real = b"x" * (1 << 20)
    raw = bytearray(_zip({"m.json": real}))
    # Patch the declared uncompressed size (local and central headers) down to 1 KiB.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(sig)
        raw[at + offset : at + offset + 4] = struct.pack("<I", 1024)
    archive = SafeZip(io.BytesIO(bytes(raw)), "forged.zip")

    def drain() -> int:
        total = 0
        with archive.open("m.json") as fh:
            while chunk := fh.read(65536):
                total += len(chunk)
        return total

    with pytest.raises((SourceError, zipfile.BadZipFile)):
        drain()


def test_oversized_file_is_refused_before_reading(
    store: Store, health: SpaceSession, tmp_path: Path
) -> None:
    """T-UP-1: the size limit applies before a byte is parsed (a sparse 5 GiB file)."""
    path = tmp_path / "huge.json"
    with open(path, "wb") as fh:
        fh.truncate(5 << 30)
    before = logical_dump(store)
    report = import_paths(health, [path])
    assert len(report.errors) == 1
    assert str(path) in report.errors[0]
    assert "limit" in report.errors[0]
    assert logical_dump(store) == before
