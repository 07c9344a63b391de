"""The per-day aggregates kept beside each chunk: what daily trends read without
decoding samples."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from healthspace.store._chunk import ChunkData
from healthspace.store._chunk_days import DayChunks

__all__ = ["DayStats", "stats_days", "stats_of"]


_STATS = struct.Struct("<BQdddqq")
_STATS_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class DayStats:
    """The aggregates of one chunk that trends read without decoding samples."""

    n: int
    sum: float
    min: float
    max: float
    first_ms: int
    last_ms: int

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else float("nan")

    def pack(self) -> bytes:
        return _STATS.pack(
            _STATS_VERSION, self.n, self.sum, self.min, self.max, self.first_ms, self.last_ms
        )

    @classmethod
    def unpack(cls, data: bytes) -> DayStats:
        if len(data) != _STATS.size or data[0] != _STATS_VERSION:
            raise ValueError("malformed day statistics")
        _, n, total, lo, hi, first, last = _STATS.unpack(data)
        return cls(n, total, lo, hi, first, last)


def stats_of(chunk: ChunkData) -> DayStats:
    """Count, sum, min, max and first/last start time; NaN min/max for an empty chunk."""
    if not len(chunk):
        return DayStats(0, 0.0, float("nan"), float("nan"), 0, 0)
    v = chunk.values
    with np.errstate(over="ignore"):  # finite values near 1e308 may sum to inf; so be it
        total = float(v.sum())
    return DayStats(
        len(chunk),
        total,
        float(v.min()),
        float(v.max()),
        int(chunk.t_ms.min()),
        int(chunk.t_ms.max()),
    )


def stats_days(days: DayChunks, which: Sequence[int]) -> list[DayStats]:
    """``[stats_of(days.chunk(i)) for i in which]``, the same numbers, faster."""
    if not which:
        return []
    starts = days.bounds[:-1]
    v, t = days.values, days.t_ms
    lows = np.minimum.reduceat(v, starts).tolist()
    highs = np.maximum.reduceat(v, starts).tolist()
    firsts = np.minimum.reduceat(t, starts).tolist()
    lasts = np.maximum.reduceat(t, starts).tolist()
    bounds = days.bounds.tolist()
    out = []
    add = np.add.reduce
    with np.errstate(over="ignore"):  # as in stats_of
        for i in which:
            lo, hi = bounds[i], bounds[i + 1]
            low, high = lows[i], highs[i]
            # Only -0.0 against 0.0, or NaN payloads, could tell the reductions apart.
            if low == 0.0 or low != low:
                low = float(v[lo:hi].min())
            if high == 0.0 or high != high:
                high = float(v[lo:hi].max())
            total = float(add(v[lo:hi]))  # the very sum stats_of takes: pairwise, per chunk
            out.append(DayStats(hi - lo, total, low, high, firsts[i], lasts[i]))
    return out
