"""The time-series chunk codec: one day of one metric as a compact byte string.

Pure (numpy and zstandard, no database, no keys): the repository encrypts what
this module produces. Layout of an encoded chunk (all integers little-endian)::

    0      1 byte    format version (1)
    1..12  <IHBBI    n, number of sources, value mode, value scale, sources byte length
    13..   one zstd frame (content size recorded) holding:
             sources      per source: <H byte length, UTF-8
             t_ms         zigzag(delta) as uint64, byte-shuffled     8n bytes
             duration_ms  zigzag(delta) as uint64, byte-shuffled     8n bytes
             values       mode 0: float64 bits, byte-shuffled        8n bytes
                          mode 1: zigzag(delta(round(v * 10**scale))), shuffled
             source_idx   uint16, byte-shuffled                      2n bytes

The sizes sit before the frame so that decoding knows the exact output size
before it decompresses anything: a forged frame cannot make it allocate more
than ``MAX_SAMPLES`` rows' worth. (The whole chunk is inside an authenticated
envelope anyway; this is defence in depth.)

Delta + zigzag turns sorted timestamps into small numbers whose high bytes are
zero; byte shuffling puts those zero bytes next to each other, which zstd then
squeezes to almost nothing. Mode 1 applies when every value is a decimal with at
most ``MAX_SCALE`` fraction digits (heart rate, steps, glucose in mmol/L): it is
chosen only when it reproduces the float64 bits exactly, so the codec is
lossless for every input, NaN and -0.0 included.

A write touches hundreds of days at a time: ``_chunk_days`` merges and encodes
many days at once with the same results as this module's one-chunk functions, and
``_chunk_stats`` holds the per-day aggregates.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zstandard

__all__ = [
    "FORMAT_VERSION",
    "MAX_SAMPLES",
    "ChunkData",
    "decode",
    "empty",
    "encode",
]

FORMAT_VERSION: Final = 1
# A day at ~48 Hz, far above any wearable series we import. Bounds what a
# (possibly corrupted) chunk may make us allocate: about 110 MB.
MAX_SAMPLES: Final = 1 << 22
MAX_SOURCES_BYTES: Final = 1 << 16
MAX_SCALE: Final = 3
ZSTD_LEVEL: Final = 3

_HEADER = struct.Struct("<BIHBBI")
_SRC_LEN = struct.Struct("<H")

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U16 = npt.NDArray[np.uint16]


def _arr(value: Any, dtype: type[np.generic]) -> Any:
    out = np.ascontiguousarray(value, dtype=dtype)
    if out.ndim != 1:
        raise ValueError("chunk columns must be one-dimensional")
    return out


@dataclass(frozen=True, eq=False, slots=True)
class ChunkData:
    """Samples of one metric as parallel columns; ``source_idx`` indexes ``sources``.

    Equality compares columns element-wise (values bit for bit, so NaN equals
    NaN and -0.0 differs from 0.0) and the sources tuple.
    """

    t_ms: I64
    duration_ms: I64
    values: F64
    source_idx: U16
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        t = _arr(self.t_ms, np.int64)
        n = len(t)
        cols = (
            _arr(self.duration_ms, np.int64),
            _arr(self.values, np.float64),
            _arr(self.source_idx, np.uint16),
        )
        if any(len(c) != n for c in cols):
            raise ValueError("chunk columns differ in length")
        if n and int(cols[2].max()) >= len(self.sources):
            raise ValueError("source_idx points past the sources tuple")
        object.__setattr__(self, "t_ms", t)
        object.__setattr__(self, "duration_ms", cols[0])
        object.__setattr__(self, "values", cols[1])
        object.__setattr__(self, "source_idx", cols[2])
        object.__setattr__(self, "sources", tuple(self.sources))

    @classmethod
    def _trusted(
        cls, t_ms: I64, duration_ms: I64, values: F64, source_idx: U16, sources: tuple[str, ...]
    ) -> ChunkData:
        """Internal: columns already one-dimensional, contiguous, of these dtypes, of equal
        length, ``source_idx`` within ``sources``; skips the checks and copies."""
        self = object.__new__(cls)
        object.__setattr__(self, "t_ms", t_ms)
        object.__setattr__(self, "duration_ms", duration_ms)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "source_idx", source_idx)
        object.__setattr__(self, "sources", sources)
        return self

    def __len__(self) -> int:
        return len(self.t_ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChunkData):
            return NotImplemented
        return (
            self.sources == other.sources
            and np.array_equal(self.t_ms, other.t_ms)
            and np.array_equal(self.duration_ms, other.duration_ms)
            and np.array_equal(self.values.view(np.uint64), other.values.view(np.uint64))
            and np.array_equal(self.source_idx, other.source_idx)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable numpy columns

    def take(self, index: Any) -> ChunkData:
        """The rows selected by ``index`` (a slice, mask or index array)."""
        t, dur, values = self.t_ms[index], self.duration_ms[index], self.values[index]
        src = self.source_idx[index]
        if src.ndim != 1:  # a scalar or 2-D index: the constructor coerces or refuses it
            return ChunkData(t, dur, values, src, self.sources)
        c = np.ascontiguousarray
        return ChunkData._trusted(c(t), c(dur), c(values), c(src), self.sources)

    def source_names(self) -> list[str]:
        """The source of each row as a string (for callers that want no indexes)."""
        return [self.sources[i] for i in self.source_idx.tolist()]


def _no_rows() -> tuple[I64, I64, F64, U16]:
    return (
        np.empty(0, np.int64),
        np.empty(0, np.int64),
        np.empty(0, np.float64),
        np.empty(0, np.uint16),
    )


def empty() -> ChunkData:
    return ChunkData._trusted(*_no_rows(), ())


# --- byte-level helpers -------------------------------------------------------------

U64 = npt.NDArray[np.uint64]

# One row of the shuffled columns, packed (no padding): shuffling a chunk is then a
# single byte transpose of its rows, t_ms, duration_ms, values and source_idx planes
# in a row, exactly the concatenation of the four shuffled columns.
_ROW = np.dtype([("t", "<u8"), ("d", "<u8"), ("v", "<u8"), ("s", "<u2")])
_ROW_BYTES: Final = 26


def _zigzag_delta(a: I64, starts: Any = None) -> U64:
    """zigzag(delta) of ``a``; with ``starts``, each segment starting there on its own."""
    # Integer arithmetic wraps modulo 2**64 on arrays, so this is exact even
    # for unsorted or extreme values; the inverse below wraps back the same way.
    d = np.empty_like(a)
    if len(a):
        d[0] = a[0]
        np.subtract(a[1:], a[:-1], out=d[1:])
        if starts is not None:
            d[starts] = a[starts]
    u = d.view(np.uint64)
    return (u << np.uint64(1)) ^ (d >> np.int64(63)).view(np.uint64)


def _un_zigzag(u: U64) -> I64:
    return ((u >> np.uint64(1)) ^ (-(u & np.uint64(1)).view(np.int64)).view(np.uint64)).view(
        np.int64
    )


def _decimal_scales(values: F64, starts: I64) -> tuple[I64, I64]:
    """The value mode of each segment (``starts``, none empty): the smallest scale at
    which every value is an exact decimal (-1: none, mode 0), and each row's integer
    at its segment's scale (meaningful where one was found).

    Per segment the rule of the format: all values finite, then scale by scale, none
    if ``peak * 10**scale`` reaches 2**52, else this scale if the integers rebuild
    every value's bits exactly as decode will (so -0.0 never passes).
    """
    n, n_seg = len(values), len(starts)
    scale = np.full(n_seg, -1, dtype=np.int64)
    ints = np.zeros(n, dtype=np.int64)
    if not n:
        return scale, ints
    lengths = np.diff(np.append(starts, n))
    bits = values.view(np.uint64)
    pending = np.logical_and.reduceat(np.isfinite(values), starts)
    with np.errstate(invalid="ignore"):
        peak = np.maximum.reduceat(np.abs(values), starts)
    for s in range(MAX_SCALE + 1):
        factor = 10.0**s
        with np.errstate(invalid="ignore", over="ignore"):
            pending &= peak * factor < 2.0**52
        if not pending.any():
            break
        # Rows of undecided segments only: finite, and small enough to cast exactly.
        every = bool(pending.all())
        rows: Any = slice(None) if every else np.repeat(pending, lengths)
        v = values[rows]
        scaled = np.rint(v * factor).astype(np.int64)
        back = scaled.astype(np.float64)
        if s:
            back /= factor
        exact = back.view(np.uint64) == bits[rows]
        seg = np.flatnonzero(pending)
        sub_starts = np.concatenate(([0], np.cumsum(lengths[seg])[:-1]))
        found = np.logical_and.reduceat(exact, sub_starts)
        ints[rows] = scaled
        scale[seg[found]] = s
        pending[seg[found]] = False
    return scale, ints


# Source lists repeat from chunk to chunk (one watch, a phone): their encoded and
# decoded forms are kept, for small lists only, so the caches stay a few MB at most.
_CACHE_ENTRIES: Final = 1024
_CACHE_NAMES_BYTES: Final = 1024
_NAMES: dict[tuple[str, ...], bytes] = {}
_SOURCES: dict[bytes, tuple[str, ...]] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any, size: int) -> None:
    if size <= _CACHE_NAMES_BYTES:
        if len(cache) >= _CACHE_ENTRIES:
            cache.clear()
        cache[key] = value


def _source_names(sources: tuple[str, ...]) -> bytes:
    """The encoded source list; ValueError if a chunk may not hold it."""
    names = _NAMES.get(sources)
    if names is not None:
        return names
    if len(sources) > 65_535:
        raise ValueError("a chunk holds at most 65535 distinct sources")
    names = b"".join(_SRC_LEN.pack(len(raw)) + raw for raw in (x.encode() for x in sources))
    if len(names) > MAX_SOURCES_BYTES:
        raise ValueError(f"a chunk's source names take at most {MAX_SOURCES_BYTES} bytes")
    _remember(_NAMES, sources, names, len(names))
    return names


_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    # Compressor objects are not thread-safe but are costly enough to keep around.
    pair = getattr(_local, "pair", None)
    if pair is None:
        pair = _local.pair = (
            zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True),
            zstandard.ZstdDecompressor(),
        )
    return pair


# --- encode / decode ----------------------------------------------------------------


def _encode_segments(
    t_ms: I64,
    duration_ms: I64,
    values: F64,
    source_idx: U16,
    bounds: list[int],
    sources: Sequence[tuple[str, ...]],
    which: Sequence[int],
) -> list[bytes]:
    """The encoded chunk of each segment ``i`` in ``which``: rows ``bounds[i]:bounds[i+1]``
    with sources ``sources[i]``. Segments are empty only when there is just one.
    The column transforms run once over all rows; per chunk remain a byte transpose
    and the compression."""
    for i in which:
        n = bounds[i + 1] - bounds[i]
        if n > MAX_SAMPLES:
            raise ValueError(f"a chunk holds at most {MAX_SAMPLES} samples, got {n}")
        _source_names(sources[i])
    starts = np.asarray(bounds[:-1], dtype=np.int64)
    scales, ints = _decimal_scales(values, starts)
    rows = np.empty(len(t_ms), dtype=_ROW)
    rows["t"] = _zigzag_delta(t_ms, starts)
    rows["d"] = _zigzag_delta(duration_ms, starts)
    decimal = scales >= 0
    if decimal.all():
        rows["v"] = _zigzag_delta(ints, starts)
    elif not decimal.any():
        rows["v"] = values.view(np.uint64)
    else:
        per_row = np.repeat(decimal, np.diff(np.asarray(bounds)))
        rows["v"] = np.where(per_row, _zigzag_delta(ints, starts), values.view(np.uint64))
    rows["s"] = source_idx
    matrix = rows.view(np.uint8).reshape(len(t_ms), _ROW_BYTES)
    compress = _zstd()[0].compress
    pack = _HEADER.pack
    scale_list = scales.tolist()
    out = []
    for i in which:
        lo, hi = bounds[i], bounds[i + 1]
        names = _source_names(sources[i])
        scale = scale_list[i]
        mode, scale = (0, 0) if scale < 0 else (1, scale)
        header = pack(FORMAT_VERSION, hi - lo, len(sources[i]), mode, scale, len(names))
        out.append(header + compress(names + matrix[lo:hi].T.tobytes()))
    return out


def encode(chunk: ChunkData) -> bytes:
    """The compact byte form of ``chunk``, any order and any float bits preserved."""
    n = len(chunk)
    bounds = [0, n]
    return _encode_segments(
        chunk.t_ms, chunk.duration_ms, chunk.values, chunk.source_idx, bounds, [chunk.sources], [0]
    )[0]


def _parse_sources(raw: bytes, n_sources: int) -> tuple[str, ...]:
    known = _SOURCES.get(raw)
    if known is not None and len(known) == n_sources:
        return known
    pos = 0
    sources: list[str] = []
    try:
        for _ in range(n_sources):
            (length,) = _SRC_LEN.unpack_from(raw, pos)
            pos += _SRC_LEN.size
            if pos + length > len(raw):
                raise ValueError("chunk sources are truncated")
            sources.append(raw[pos : pos + length].decode())
            pos += length
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError("chunk sources are malformed") from exc
    if pos != len(raw):
        raise ValueError("chunk sources have the wrong length")
    out = tuple(sources)
    _remember(_SOURCES, raw, out, len(raw))
    return out


def decode(data: bytes) -> ChunkData:
    """Parse :func:`encode` output; any malformed input raises ValueError."""
    if len(data) < _HEADER.size:
        raise ValueError("chunk is truncated")
    if data[0] != FORMAT_VERSION:
        raise ValueError(f"unknown chunk format {data[0]}")
    _, n, n_sources, mode, scale, names_len = _HEADER.unpack_from(data)
    if n > MAX_SAMPLES or mode not in (0, 1) or scale > MAX_SCALE or names_len > MAX_SOURCES_BYTES:
        raise ValueError("chunk header is invalid")
    size = names_len + _ROW_BYTES * n
    frame = data[_HEADER.size :]
    try:
        if zstandard.frame_content_size(frame) != size:
            raise ValueError("chunk body declares the wrong size")
        body = _zstd()[1].decompress(frame, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise ValueError("chunk body does not decompress") from exc
    if len(body) != size:
        raise ValueError("chunk body has the wrong length")
    sources = _parse_sources(body[:names_len], n_sources)
    if not n:
        return ChunkData._trusted(*_no_rows(), sources)
    # Un-shuffle t_ms, duration_ms and values in one transpose: planes to three rows
    # of n words, then un-zigzag and sum up the deltas of all three rows at once.
    planes = np.frombuffer(body, dtype=np.uint8, count=24 * n, offset=names_len)
    words = (
        np.ascontiguousarray(planes.reshape(3, 8, n).transpose(0, 2, 1))
        .view("<u8")
        .reshape(3, n)
        .astype(np.uint64, copy=False)
    )
    summed = np.add.accumulate(_un_zigzag(words if mode else words[:2]), axis=1)
    t, dur = summed[0], summed[1]
    if mode == 0:
        values = words[2].view(np.float64)
    else:
        values = summed[2].astype(np.float64)
        if scale:
            values /= 10.0**scale
    src_planes = np.frombuffer(body, dtype=np.uint8, count=2 * n, offset=names_len + 24 * n)
    src = (
        np.ascontiguousarray(src_planes.reshape(2, n).T)
        .view("<u2")
        .reshape(n)
        .astype(np.uint16, copy=False)
    )
    if int(src.max()) >= n_sources:
        raise ValueError("chunk source index out of range")
    return ChunkData._trusted(t, dur, values, src, sources)


# --- canonical form and merging -----------------------------------------------------
