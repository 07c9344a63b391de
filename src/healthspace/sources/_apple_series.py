"""Samples on their way out: big batches per (metric, source), the source-priority
rule for cumulative metrics, and nights of sleep.

Source priority (docs/sources/apple_health.md): for a cumulative metric (steps,
distance, energy, ...) every source is ranked Apple Watch > iPhone > anything else,
then by name. A sample keeps the part of its time span that no higher-ranked source
covers, and its value in proportion: a phone sample fully covered by watch samples
counts 0, one half covered counts half. Instants (no duration) count only outside
every higher-ranked span. That is what Apple's Health app does with overlapping
sources.

Every sample is written to the metric with its counted value (0 when fully covered,
so a re-import over older data overwrites what an earlier import counted), and the
part it lost, ``value - counted``, to ``<metric>.overlap`` under the same time and
source. Daily totals of the metric are de-duplicated; metric + overlap, sample by
sample, is exactly what each source recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from healthspace.model import SampleBatch

__all__ = ["OVERLAP", "Deduper", "SeriesSink", "SleepNight", "sleep_nights"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

BATCH = 100_000
OVERLAP = ".overlap"


@dataclass
class _Buffer:
    unit: str
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
        self, metric: str, unit: str, source: str, t: I64, d: I64, v: F64
    ) -> Iterator[SampleBatch]:
        if not len(t):
            return
        key = (metric, source)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = _Buffer(unit)
        buffer.add(t, d, v)
        if buffer.n >= self.batch:
            yield SampleBatch(metric, unit, *buffer.take(), source=source)

    def drain(self) -> Iterator[SampleBatch]:
        """What is left, in (metric, source) order so the same input yields the same items."""
        for (metric, source), buffer in sorted(self._buffers.items()):
            if buffer.n:
                yield SampleBatch(metric, buffer.unit, *buffer.take(), source=source)


def _union(starts: I64, ends: I64) -> tuple[I64, I64]:
    """Disjoint sorted intervals covering the same points as [starts, ends)."""
    keep = ends > starts
    s, e = starts[keep], ends[keep]
    if not len(s):
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > reach[:-1]
    last = np.ones(len(s), dtype=bool)
    last[:-1] = new[1:]
    return s[new], reach[last]


def _covered(us: I64, ue: I64, a: I64, b: I64) -> I64:
    """How much of each [a, b) the disjoint sorted intervals [us, ue) cover."""
    if not len(us):
        return np.zeros(len(a), dtype=np.int64)
    lengths = np.concatenate(([0], np.cumsum(ue - us)))

    def before(x: I64) -> I64:
        # Measure of the union left of x: whole intervals, minus what the last pokes past x.
        k = np.searchsorted(us, x, side="left")
        over = np.where(k > 0, np.maximum(0, ue[np.maximum(k - 1, 0)] - x), 0)
        result: I64 = lengths[k] - over
        return result

    return before(b) - before(a)


def _inside(us: I64, ue: I64, x: I64) -> npt.NDArray[np.bool_]:
    if not len(us):
        return np.zeros(len(x), dtype=bool)
    k = np.searchsorted(us, x, side="right")
    inside: npt.NDArray[np.bool_] = (k > 0) & (x < ue[np.maximum(k - 1, 0)])
    return inside


@dataclass
class _Metric:
    unit: str
    sources: dict[str, _Buffer] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)  # priority class per source


class Deduper:
    """Holds the samples of cumulative metrics until the end, then applies the rule.

    The only samples held for the whole import: 24 bytes each, cumulative types only.
    """

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def add(self, metric: str, unit: str, source: str, klass: int, t: I64, d: I64, v: F64) -> None:
        if not len(t):
            return
        entry = self._metrics.setdefault(metric, _Metric(unit))
        entry.sources.setdefault(source, _Buffer(unit)).add(t, d, v)
        entry.rank[source] = min(klass, entry.rank.get(source, klass))

    def batches(self) -> Iterator[SampleBatch]:
        for metric in sorted(self._metrics):
            yield from self._apply(metric, self._metrics[metric])
        self._metrics.clear()

    @staticmethod
    def _apply(metric: str, entry: _Metric) -> Iterator[SampleBatch]:
        ordered = sorted(entry.sources, key=lambda name: (entry.rank[name], name))
        us = np.zeros(0, dtype=np.int64)
        ue = np.zeros(0, dtype=np.int64)
        for source in ordered:
            t, d, v = entry.sources[source].take()
            end = t + d
            has_span = d > 0
            share = np.ones(len(t), dtype=np.float64)
            if len(us):
                covered = _covered(us, ue, t[has_span], end[has_span])
                share[has_span] = (d[has_span] - covered) / d[has_span]
                share[~has_span] = np.where(_inside(us, ue, t[~has_span]), 0.0, 1.0)
            counted = v * share
            yield SampleBatch(metric, entry.unit, t, d, counted, source=source)
            lost = (share < 1.0) & (v != 0)
            if bool(lost.any()):
                yield SampleBatch(
                    metric + OVERLAP,
                    entry.unit,
                    t[lost],
                    d[lost],
                    v[lost] - counted[lost],
                    source=source,
                )
            us, ue = _union(np.concatenate((us, t)), np.concatenate((ue, end)))


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
