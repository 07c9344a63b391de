"""The direct member reader (sources/_zip_inflate.py) reads what zipfile reads, and
fails where zipfile fails: bad CRC, truncation, forged sizes, a local header that
disagrees with the central directory."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthspace.errors import SourceError
from healthspace.sources._safety import SafeZip
from healthspace.sources._zip_inflate import open_member

BIG = 1 << 40


def _archive(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, method) in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def _read_all(path: Path, name: str, size: int = 1 << 20) -> bytes:
    with path.open("rb") as fh:
        info = zipfile.ZipFile(fh).getinfo(name)
        reader = open_member(fh, info, BIG, name)
        assert reader is not None
        out = []
        while chunk := reader.read(size):
            out.append(chunk)
        return b"".join(out)


@settings(max_examples=40, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=5000),
        st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=50), st.integers(1, 20000)),
    ),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
    size=st.sampled_from([1, 7, 4096, 1 << 20]),
)
def test_reads_what_zipfile_reads(
    data: bytes, method: int, size: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = _archive(tmp_path_factory.mktemp("z") / "a.zip", {"a/b.xml": (data, method)})
    assert _read_all(path, "a/b.xml", size) == data


def test_only_real_files_and_plain_members_are_taken(tmp_path: Path) -> None:
    path = _archive(tmp_path / "a.zip", {"x": (b"hello" * 100, zipfile.ZIP_DEFLATED)})
    raw = path.read_bytes()
    info = zipfile.ZipFile(io.BytesIO(raw)).getinfo("x")
    assert open_member(io.BytesIO(raw), info, BIG, "x") is None  # no file descriptor
    info.flag_bits |= 0x1  # encrypted: zipfile's business (it asks for a password)
    with path.open("rb") as fh:
        assert open_member(fh, info, BIG, "x") is None


def _corrupt(path: Path, at: int, value: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[at : at + len(value)] = value
    path.write_bytes(bytes(raw))


@pytest.fixture
def member(tmp_path: Path) -> Path:
    data = b"".join(b'<Record value="%d"/>\n' % i for i in range(20000))
    return _archive(tmp_path / "a.zip", {"m.xml": (data, zipfile.ZIP_DEFLATED)})


def _central_offset(path: Path) -> int:
    raw = path.read_bytes()
    return raw.rindex(b"PK\x01\x02")


def test_a_wrong_crc_fails_like_zipfile(member: Path) -> None:
    crc_at = _central_offset(member) + 16
    _corrupt(member, crc_at, b"\0\0\0\0")
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        _read_all(member, "m.xml")


def test_a_forged_smaller_size_stops_there_and_fails_its_crc(member: Path) -> None:
    size_at = _central_offset(member) + 24
    _corrupt(member, size_at, struct.pack("<L", 1000))
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        _read_all(member, "m.xml")


def test_a_forged_larger_size_is_an_early_end(member: Path) -> None:
    size_at = _central_offset(member) + 24
    real = zipfile.ZipFile(member).getinfo("m.xml").file_size
    _corrupt(member, size_at, struct.pack("<L", real + 10))
    with pytest.raises(EOFError):
        _read_all(member, "m.xml")


def test_a_truncated_stream_is_an_early_end(member: Path) -> None:
    info = zipfile.ZipFile(member).getinfo("m.xml")
    raw = member.read_bytes()
    # Cut the compressed data in half but keep the directory: the stream runs dry.
    start = info.header_offset + 30 + len("m.xml")
    middle = start + info.compress_size // 2
    member.write_bytes(
        raw[:middle]
        + b"\0" * (start + info.compress_size - middle)
        + raw[start + info.compress_size :]
    )
    with pytest.raises((EOFError, zlib.error, zipfile.BadZipFile)):
        _read_all(member, "m.xml")


def test_a_local_header_that_disagrees_is_refused(member: Path) -> None:
    _corrupt(member, 30, b"n")  # the local header's file name: "n.xml"
    with pytest.raises(zipfile.BadZipFile, match="differ"):
        _read_all(member, "m.xml")
    _corrupt(member, 0, b"PK\x05\x06")
    with pytest.raises(zipfile.BadZipFile, match="magic"):
        _read_all(member, "m.xml")


def test_the_size_budget_holds(member: Path) -> None:
    with member.open("rb") as fh:
        info = zipfile.ZipFile(fh).getinfo("m.xml")
        reader = open_member(fh, info, 1000, "a.zip!m.xml")
        assert reader is not None
        with pytest.raises(SourceError, match="size limit"):
            reader.read()


def test_safezip_errors_name_archive_and_member(member: Path) -> None:
    _corrupt(member, 30, b"n")
    with member.open("rb") as fh, pytest.raises(SourceError) as caught:
        SafeZip(fh, "a.zip").open("m.xml")
    assert "a.zip!m.xml" in str(caught.value)
