"""The chunk codec as it was first written (format version 1), kept as the reference
that the faster codec in :mod:`healthspace.store._chunk` must match byte for byte:
whatever it encodes, this encodes to the same bytes, and it decodes the same. Also the
one-chunk merge (``normalize``, ``merge_counting``, ``merge``): the semantics that
``_chunk_days.merge_days`` reproduces for many days at once."""

from __future__ import annotations

import struct
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import zstandard

from healthspace.store._chunk import (
    FORMAT_VERSION,
    MAX_SAMPLES,
    MAX_SCALE,
    MAX_SOURCES_BYTES,
    ZSTD_LEVEL,
    ChunkData,
)

__all__ = ["decode", "encode", "merge", "merge_counting", "normalize"]

_HEADER = struct.Struct("<BIHBBI")
_SRC_LEN = struct.Struct("<H")

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


# --- byte-level helpers -------------------------------------------------------------


def _zigzag_delta(a: I64) -> npt.NDArray[np.uint64]:
    # Integer arithmetic wraps modulo 2**64 on arrays, so this is exact even
    # for unsorted or extreme values; the inverse below wraps back the same way.
    d = np.empty_like(a)
    if len(a):
        d[0] = a[0]
        np.subtract(a[1:], a[:-1], out=d[1:])
    u = d.view(np.uint64)
    return (u << np.uint64(1)) ^ (d >> np.int64(63)).view(np.uint64)


def _un_zigzag_delta(u: npt.NDArray[np.uint64]) -> I64:
    d = (u >> np.uint64(1)) ^ (-(u & np.uint64(1)).view(np.int64)).view(np.uint64)
    return np.cumsum(d.view(np.int64), dtype=np.int64)


def _shuffle(a: npt.NDArray[Any]) -> bytes:
    width = a.dtype.itemsize
    return (
        a.astype(a.dtype.newbyteorder("<"), copy=False)
        .view(np.uint8)
        .reshape(-1, width)
        .T.tobytes()
    )


def _unshuffle(raw: bytes | memoryview, n: int, dtype: str) -> npt.NDArray[Any]:
    width = np.dtype(dtype).itemsize
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(width, n)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(n).astype(dtype[1:])


def _decimal_scale(values: F64) -> tuple[int, I64] | None:
    """The smallest scale at which every value is an exact decimal, with the integers."""
    if not len(values) or not np.isfinite(values).all():
        return None
    peak = float(np.abs(values).max())
    for scale in range(MAX_SCALE + 1):
        factor = 10.0**scale
        if peak * factor >= 2.0**52:
            return None
        ints = np.rint(values * factor).astype(np.int64)
        # Compare bits, exactly as decode will rebuild them (so -0.0 never passes).
        back = ints.astype(np.float64)
        if scale:
            back /= factor
        if np.array_equal(back.view(np.uint64), values.view(np.uint64)):
            return scale, ints
    return None


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


def encode(chunk: ChunkData) -> bytes:
    """The compact byte form of ``chunk``, any order and any float bits preserved."""
    n = len(chunk)
    if n > MAX_SAMPLES:
        raise ValueError(f"a chunk holds at most {MAX_SAMPLES} samples, got {n}")
    if len(chunk.sources) > 65_535:
        raise ValueError("a chunk holds at most 65535 distinct sources")
    names = b"".join(_SRC_LEN.pack(len(raw)) + raw for raw in (x.encode() for x in chunk.sources))
    if len(names) > MAX_SOURCES_BYTES:
        raise ValueError(f"a chunk's source names take at most {MAX_SOURCES_BYTES} bytes")
    decimal = _decimal_scale(chunk.values)
    mode, scale = (0, 0) if decimal is None else (1, decimal[0])
    header = _HEADER.pack(FORMAT_VERSION, n, len(chunk.sources), mode, scale, len(names))
    parts = [
        names,
        _shuffle(_zigzag_delta(chunk.t_ms)),
        _shuffle(_zigzag_delta(chunk.duration_ms)),
        _shuffle(chunk.values.view(np.uint64) if decimal is None else _zigzag_delta(decimal[1])),
        _shuffle(chunk.source_idx),
    ]
    return header + _zstd()[0].compress(b"".join(parts))


def decode(data: bytes) -> ChunkData:
    """Parse :func:`encode` output; any malformed input raises ValueError."""
    if len(data) < _HEADER.size:
        raise ValueError("chunk is truncated")
    if data[0] != FORMAT_VERSION:
        raise ValueError(f"unknown chunk format {data[0]}")
    _, n, n_sources, mode, scale, names_len = _HEADER.unpack_from(data)
    if n > MAX_SAMPLES or mode not in (0, 1) or scale > MAX_SCALE or names_len > MAX_SOURCES_BYTES:
        raise ValueError("chunk header is invalid")
    size = names_len + 26 * n
    frame = data[_HEADER.size :]
    try:
        if zstandard.frame_content_size(frame) != size:
            raise ValueError("chunk body declares the wrong size")
        body = _zstd()[1].decompress(frame, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise ValueError("chunk body does not decompress") from exc
    if len(body) != size:
        raise ValueError("chunk body has the wrong length")
    pos = 0
    sources: list[str] = []
    try:
        for _ in range(n_sources):
            (length,) = _SRC_LEN.unpack_from(body, pos)
            pos += _SRC_LEN.size
            if pos + length > names_len:
                raise ValueError("chunk sources are truncated")
            sources.append(body[pos : pos + length].decode())
            pos += length
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError("chunk sources are malformed") from exc
    if pos != names_len:
        raise ValueError("chunk sources have the wrong length")
    cols = memoryview(body)[pos:]
    t = _un_zigzag_delta(_unshuffle(cols[: 8 * n], n, "<u8"))
    dur = _un_zigzag_delta(_unshuffle(cols[8 * n : 16 * n], n, "<u8"))
    raw_values = _unshuffle(cols[16 * n : 24 * n], n, "<u8")
    if mode == 0:
        values = raw_values.view(np.float64)
    else:
        ints = _un_zigzag_delta(raw_values).astype(np.float64)
        values = ints if scale == 0 else ints / 10.0**scale
    src = _unshuffle(cols[24 * n :], n, "<u2")
    if n and int(src.max()) >= n_sources:
        raise ValueError("chunk source index out of range")
    return ChunkData(t, dur, values, src, tuple(sources))


# -- one chunk at a time: the merge semantics that _chunk_days.merge_days reproduces -----


def normalize(chunk: ChunkData) -> ChunkData:
    """The canonical form: sorted by (t_ms, duration_ms, source), one row per key.

    Of rows with equal keys the last one wins. Sources are sorted and unused ones
    dropped, so equal data encodes to equal bytes.
    """
    names = sorted({chunk.sources[i] for i in np.unique(chunk.source_idx).tolist()})
    if tuple(names) == chunk.sources:
        src = chunk.source_idx
    else:
        remap = np.zeros(max(len(chunk.sources), 1), dtype=np.uint16)
        for old, name in enumerate(chunk.sources):
            if name in names:
                remap[old] = names.index(name)
        src = remap[chunk.source_idx]
    t, dur = chunk.t_ms, chunk.duration_ms
    n = len(t)
    if n > 1 and bool((t[1:] > t[:-1]).all()):
        # Already strictly increasing in time: sorted and free of duplicate keys.
        order: Any = slice(None)
        keep: Any = slice(None)
    else:
        order = np.lexsort((src, dur, t))  # stable: equal keys keep input order
        ts, ds, ss = t[order], dur[order], src[order]
        keep = np.ones(n, dtype=bool)
        if n > 1:
            # A row is dropped when the next row has the same key: the last one wins.
            keep[:-1] = (ts[1:] != ts[:-1]) | (ds[1:] != ds[:-1]) | (ss[1:] != ss[:-1])
    return ChunkData(
        t[order][keep], dur[order][keep], chunk.values[order][keep], src[order][keep], tuple(names)
    )


def _concat(old: ChunkData, new: ChunkData) -> ChunkData:
    names = list(old.sources)
    index = {name: i for i, name in enumerate(names)}
    remap = np.empty(max(len(new.sources), 1), dtype=np.uint16)
    for i, name in enumerate(new.sources):
        if name not in index:
            index[name] = len(names)
            names.append(name)
        remap[i] = index[name]
    if len(names) > 65_535:
        raise ValueError("a chunk holds at most 65535 distinct sources")
    return ChunkData(
        np.concatenate([old.t_ms, new.t_ms]),
        np.concatenate([old.duration_ms, new.duration_ms]),
        np.concatenate([old.values, new.values]),
        np.concatenate([old.source_idx, remap[new.source_idx]]),
        tuple(names),
    )


def merge_counting(old: ChunkData, new: ChunkData) -> tuple[ChunkData, int]:
    """:func:`merge`, plus how many rows of ``new`` were absent from ``old`` or changed it."""
    new = normalize(new)
    if not len(old):
        return new, len(new)
    merged = normalize(_concat(old, new))
    if len(merged) == len(old) and merged == normalize(old):
        return merged, 0
    # Rows of ``new`` that were not already present, bit for bit, in ``old``.
    probe = _concat(normalize(old), new)
    bits_all = probe.values.view(np.uint64)
    order = np.lexsort((bits_all, probe.source_idx, probe.duration_ms, probe.t_ms))
    keys = (probe.t_ms[order], probe.duration_ms[order], probe.source_idx[order])
    bits = bits_all[order]
    same_as_prev = np.zeros(len(order), dtype=bool)
    if len(order) > 1:
        same_as_prev[1:] = (
            (keys[0][1:] == keys[0][:-1])
            & (keys[1][1:] == keys[1][:-1])
            & (keys[2][1:] == keys[2][:-1])
            & (bits[1:] == bits[:-1])
        )
    return merged, int(len(new) - np.count_nonzero(same_as_prev))


def merge(old: ChunkData, new: ChunkData) -> ChunkData:
    """The union of both, canonical; where a (t_ms, duration_ms, source) is in both,
    the value of ``new`` wins. Re-importing the same samples changes nothing."""
    return merge_counting(old, new)[0]
