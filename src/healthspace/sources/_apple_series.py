"""Samples on their way out: big batches per (metric, source), and nights of sleep.

Cumulative metrics (steps, distance, energy, ...) leave with their source's rank
(Apple Watch > iPhone > anything else, see docs/sources/apple_health.md); the store
applies the source-priority rule to them, day by day, when the import completes
(store/_priority.py), so they are never all held here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from healthspace.model import SampleBatch

__all__ = ["SeriesSink", "SleepNight", "sleep_nights"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

BATCH = 50_000


@dataclass
class _Buffer:
    unit: str
    rank: int | None = None
    t: list[I64] = field(default_factory=list)
    d: list[I64] = field(default_factory=list)
    v: list[F64] = field(default_factory=list)
    n: int = 0

    def add(self, t: I64, d: I64, v: F64) -> None:
        self.t.append(t)
        self.d.append(d)
        self.v.append(v)
        self.n += len(t)

    def take(self) -> tuple[I64, I64, F64]:
        out = (np.concatenate(self.t), np.concatenate(self.d), np.concatenate(self.v))
        self.t, self.d, self.v, self.n = [], [], [], 0
        return out


class SeriesSink:
    """Collects samples per (metric, source) and hands them out in batches of ~BATCH."""

    def __init__(self, batch: int = BATCH) -> None:
        self.batch = batch
        self._buffers: dict[tuple[str, str], _Buffer] = {}

    def add(
        self,
        metric: str,
        unit: str,
        source: str,
        t: I64,
        d: I64,
        v: F64,
        rank: int | None = None,
    ) -> Iterator[SampleBatch]:
        """Buffer samples; ``rank``: the source's priority class for a cumulative metric."""
        if not len(t):
            return
        key = (metric, source)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = _Buffer(unit, rank)
        elif rank is not None:
            # One source may write through several devices: it ranks as its best.
            buffer.rank = rank if buffer.rank is None else min(buffer.rank, rank)
        buffer.add(t, d, v)
        if buffer.n >= self.batch:
            yield self._batch(metric, source, buffer)

    @staticmethod
    def _batch(metric: str, source: str, buffer: _Buffer) -> SampleBatch:
        return SampleBatch(metric, buffer.unit, *buffer.take(), source=source, rank=buffer.rank)

    def drain(self) -> Iterator[SampleBatch]:
        """What is left, in (metric, source) order so the same input yields the same items."""
        for (metric, source), buffer in sorted(self._buffers.items()):
            if buffer.n:
                yield self._batch(metric, source, buffer)


@dataclass(frozen=True)
class SleepNight:
    """One session: consecutive stage samples of one source within one night."""

    source: str
    device: str
    offset_min: int
    t: I64
    d: I64
    codes: F64


_NIGHT_SHIFT_MS = 18 * 3_600_000  # a night runs from 18:00 to 18:00 local time
_GAP_MS = 2 * 3_600_000  # a longer pause starts a new session


def sleep_nights(
    samples: dict[tuple[str, str], tuple[list[I64], list[I64], list[F64], list[I64]]],
    stage_of: Callable[[float], str | None],
) -> Iterator[SleepNight]:
    """Group sleep-stage samples into sessions: per source, per local night, split at
    pauses longer than two hours. ``samples`` maps (source, device) to columns
    (t, duration, code, offset minutes)."""
    for (source, device), (ts, ds, vs, offs) in sorted(samples.items()):
        t, d, v, off = (np.concatenate(x) for x in (ts, ds, vs, offs))
        known = np.fromiter((stage_of(c) is not None for c in v.tolist()), bool, len(v))
        t, d, v, off = t[known], d[known], v[known], off[known]
        order = np.lexsort((d, t))
        t, d, v, off = t[order], d[order], v[order], off[order]
        if not len(t):
            continue
        night = (t + off * 60_000 - _NIGHT_SHIFT_MS) // 86_400_000
        reach = np.maximum.accumulate(t + d)
        split = np.ones(len(t), dtype=bool)
        split[1:] = (night[1:] != night[:-1]) | (t[1:] - reach[:-1] > _GAP_MS)
        bounds = [*np.flatnonzero(split).tolist(), len(t)]
        for lo, hi in itertools.pairwise(bounds):
            yield SleepNight(source, device, int(off[lo]), t[lo:hi], d[lo:hi], v[lo:hi])
