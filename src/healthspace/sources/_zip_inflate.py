"""Reading a ZIP member straight from the archive file: positioned reads and zlib.

zipfile's member reader costs about twice the CPU of the inflation itself, all of it
holding the GIL (small reads, buffer concatenation, a CRC per piece): for a 670 MB
Apple Health export that is half a second in which no other thread can run. This
reader does positioned reads (``os.pread``: no shared file position, no lock) and
inflates with zlib, which, like the CRC of large buffers, releases the GIL.

It takes only what it fully understands: an unencrypted member, stored or deflated,
in an archive on a real file. Anything else stays with zipfile (``open_member``
returns None). The checks are zipfile's: the local header's signature and name must
match the central directory, the stream must end exactly at the declared size with
the declared CRC-32, and nothing past the declared size is ever produced. Errors
are zipfile's types (BadZipFile, EOFError), so callers handle both readers alike.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from typing import IO, Any, Final

from healthspace.errors import SourceError

__all__ = ["open_member"]

_LOCAL = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader
_SIGNATURE: Final = b"PK\x03\x04"
_ENCRYPTED: Final = 0x1
_UTF8: Final = 0x800
_READ: Final = 16 << 10  # compressed bytes per read: zlib is fastest fed small pieces


def _fileno(fh: IO[bytes]) -> int | None:
    try:
        return fh.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


class _MemberReader(io.RawIOBase):
    def __init__(
        self, fd: int, info: zipfile.ZipInfo, data_offset: int, budget: int, name: str
    ) -> None:
        self._fd = fd
        self._budget = budget
        self._name = name
        self._pos = data_offset
        self._left_in = info.compress_size
        self._left_out = info.file_size
        self._expected_crc = info.CRC
        self._crc = 0
        self._inflate = (
            zlib.decompressobj(-zlib.MAX_WBITS)
            if info.compress_type == zipfile.ZIP_DEFLATED
            else None
        )
        self._done = False

    def readable(self) -> bool:
        return True

    def _read_raw(self, n: int) -> bytes:
        data = os.pread(self._fd, min(n, self._left_in), self._pos)
        if not data:
            raise EOFError("the archive ends inside a member")
        self._pos += len(data)
        self._left_in -= len(data)
        return data

    def _produce(self, n: int) -> bytes:
        if self._inflate is None:
            return self._read_raw(min(n, self._left_out)) if self._left_out else b""
        while True:
            source = self._inflate.unconsumed_tail
            if not source and self._left_in and not self._inflate.eof:
                source = self._read_raw(_READ)
            if not source:
                if not self._inflate.eof:
                    raise EOFError(
                        "Compressed file ended before the end-of-stream marker was reached"
                    )
                return b""
            out = self._inflate.decompress(source, n)
            if out or self._inflate.eof:
                return out

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        view = memoryview(buffer).cast("B")
        # Never more than the declared size: like zipfile, a member that goes on
        # is cut there, and then fails its CRC.
        data = self._produce(min(len(view), self._left_out)) if self._left_out else b""
        if len(data) > self._budget:
            raise SourceError("archive member expands beyond the size limit", file=self._name)
        self._budget -= len(data)
        self._left_out -= len(data)
        self._crc = zlib.crc32(data, self._crc)
        if not data or self._left_out == 0:
            self._finish()
        view[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        self._done = True
        if self._left_out:
            raise EOFError("member ended before its declared size")
        if self._crc != self._expected_crc:
            raise zipfile.BadZipFile("Bad CRC-32 for file")


def open_member(fh: IO[bytes], info: zipfile.ZipInfo, budget: int, name: str) -> IO[bytes] | None:
    """A buffered reader of ``info``'s data, or None when zipfile should read it.

    ``budget``: the most it may produce (SourceError past it, naming ``name``).
    """
    fd = _fileno(fh)
    if fd is None or info.flag_bits & _ENCRYPTED:
        return None
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None
    header = os.pread(fd, _LOCAL.size, info.header_offset)
    if len(header) != _LOCAL.size:
        raise zipfile.BadZipFile("Truncated file header")
    fields = _LOCAL.unpack(header)
    if fields[0] != _SIGNATURE:
        raise zipfile.BadZipFile("Bad magic number for file header")
    flags, name_len, extra_len = fields[3], fields[10], fields[11]
    if flags & _ENCRYPTED:
        return None
    raw_name = os.pread(fd, name_len, info.header_offset + _LOCAL.size)
    name = raw_name.decode("utf-8" if flags & _UTF8 else "cp437", "replace")
    if name != info.orig_filename:
        raise zipfile.BadZipFile("File name in directory and header differ")
    data_offset = info.header_offset + _LOCAL.size + name_len + extra_len
    reader = _MemberReader(fd, info, data_offset, budget, name)
    return io.BufferedReader(reader, buffer_size=1 << 16)
