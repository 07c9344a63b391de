"""Chunks of many days at once: the write path's merge and encoding.

A write touches hundreds of days at a time, mostly small ones, so the per-call
cost of numpy would dominate a loop over chunks: :func:`merge_days` and
:func:`encode_days` do the work of ``merge_counting`` and ``encode`` (in
``_chunk``) for many days at once, with the same results bit for bit
(tests/store/_chunk_reference.py keeps the first, one-chunk codec to prove it).
Per chunk there remain a byte transpose and the compression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from healthspace.store._chunk import (
    F64,
    I64,
    U16,
    ChunkData,
    _encode_segments,
    _no_rows,
)

__all__ = ["DayChunks", "Keyed", "encode_days", "merge_days"]


@dataclass(frozen=True, eq=False, slots=True)
class DayChunks:
    """Canonical chunks of several days as one set of columns, day after day.

    Chunk ``i`` is the day ``days[i]`` (ascending, each once): rows
    ``bounds[i]:bounds[i + 1]`` (never empty), its sources ``sources[i]`` (which
    ``source_idx`` indexes within that chunk) and ``changed[i]``, how many rows of
    the new data the merge that made it found absent or different.
    """

    days: I64
    bounds: I64
    t_ms: I64
    duration_ms: I64
    values: F64
    source_idx: U16
    sources: tuple[tuple[str, ...], ...]
    changed: I64

    def __len__(self) -> int:
        return len(self.days)

    def chunk(self, i: int) -> ChunkData:
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        return ChunkData._trusted(
            self.t_ms[lo:hi],
            self.duration_ms[lo:hi],
            self.values[lo:hi],
            self.source_idx[lo:hi],
            self.sources[i],
        )


Keyed = tuple[int | I64, ChunkData]


@dataclass(slots=True)
class _Rows:
    """Rows of keyed chunks; ``src`` indexes one name list shared by every side."""

    key: I64
    t: I64
    dur: I64
    values: F64
    src: I64

    def take(self, index: Any) -> _Rows:
        if isinstance(index, slice):
            return self
        return _Rows(
            self.key[index], self.t[index], self.dur[index], self.values[index], self.src[index]
        )


def _gather(pieces: Sequence[Keyed], position: dict[str, int]) -> _Rows:
    lengths = [len(chunk) for _, chunk in pieces]
    if not any(lengths):
        no = _no_rows()
        return _Rows(no[0], no[0], no[1], no[2], no[0])
    keys = [key for key, _ in pieces]
    if all(np.ndim(k) == 0 for k in keys):
        key = np.repeat(np.asarray(keys, dtype=np.int64), lengths)
    else:
        # One day for the whole chunk, or one per row (anything else raises ValueError).
        key = np.concatenate(
            [
                np.broadcast_to(np.asarray(k, np.int64), n)
                for k, n in zip(keys, lengths, strict=True)
            ]
        )
    chunks = [chunk for _, chunk in pieces]
    # Each distinct sources tuple gets a slice of one lookup table into ``position``.
    offsets: dict[tuple[str, ...], int] = {}
    table: list[int] = []
    for chunk in chunks:
        if chunk.sources not in offsets:
            offsets[chunk.sources] = len(table)
            table.extend(position[name] for name in chunk.sources)
    local = np.concatenate([chunk.source_idx for chunk in chunks]).astype(np.int64)
    if len(offsets) > 1:
        local += np.repeat(np.asarray([offsets[c.sources] for c in chunks]), lengths)
    return _Rows(
        key,
        np.concatenate([chunk.t_ms for chunk in chunks]),
        np.concatenate([chunk.duration_ms for chunk in chunks]),
        np.concatenate([chunk.values for chunk in chunks]),
        np.asarray(table, dtype=np.int64)[local],
    )


def _sort_order(rows: _Rows) -> Any:
    """The stable order by (key, t_ms, duration_ms, source); None when already in it
    with no two rows alike.

    Sorted on (key, t_ms) first, which is cheap for the runs of sorted rows it gets;
    duration and source only decide between rows of equal (key, t_ms), so only those
    are sorted by them (a lexsort of every row on four keys would sort the random
    durations of all rows).
    """
    key, t = rows.key, rows.t
    n = len(t)
    if n < 2 or bool(((key[1:] > key[:-1]) | ((key[1:] == key[:-1]) & (t[1:] > t[:-1]))).all()):
        return None
    order = np.lexsort((t, key))
    ks, ts = key[order], t[order]
    tie = (ks[1:] == ks[:-1]) & (ts[1:] == ts[:-1])
    if tie.any():
        group = np.cumsum(np.append(True, ~tie))  # rank of (key, t_ms), ascending
        in_tie = np.zeros(n, dtype=bool)
        in_tie[:-1] = tie
        in_tie[1:] |= tie
        at = np.flatnonzero(in_tie)  # each tied group is a contiguous run of positions
        sub = order[at]
        order[at] = sub[np.lexsort((rows.src[sub], rows.dur[sub], group[at]))]
    return order


def _same_as_next(r: _Rows) -> npt.NDArray[np.bool_]:
    """Whether each row has the same (key, t_ms, duration_ms, source) as the next."""
    same: npt.NDArray[np.bool_] = (
        (r.key[1:] == r.key[:-1])
        & (r.t[1:] == r.t[:-1])
        & (r.dur[1:] == r.dur[:-1])
        & (r.src[1:] == r.src[:-1])
    )
    return same


def _canonical(rows: _Rows) -> _Rows:
    """Sorted by (key, t_ms, duration_ms, source), the last of equal rows kept: what
    :func:`normalize` does to each key's chunk, for all keys at once."""
    order = _sort_order(rows)
    if order is None:
        return rows  # already strictly increasing: sorted, no duplicate keys
    r = rows.take(order)
    same = _same_as_next(r)
    return r.take(np.append(~same, True)) if same.any() else r


def _starts(sorted_keys: I64) -> I64:
    """Where each run of equal keys starts (an empty array for no rows)."""
    if not len(sorted_keys):
        return sorted_keys[:0]
    return np.concatenate(([0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1))


def _count_by_key(sorted_keys: I64, days: I64) -> I64:
    return np.searchsorted(sorted_keys, days, "right") - np.searchsorted(sorted_keys, days, "left")


def _not_stored(stored: _Rows, fresh: _Rows) -> _Rows:
    """``fresh`` without the days whose rows ``stored`` holds already, all of them bit
    for bit and nothing else: merging those changes and counts nothing (a re-import)."""
    s_starts, f_starts = _starts(stored.key), _starts(fresh.key)
    s_counts = np.diff(np.append(s_starts, len(stored.key)))
    f_counts = np.diff(np.append(f_starts, len(fresh.key)))
    _, si, fi = np.intersect1d(
        stored.key[s_starts], fresh.key[f_starts], assume_unique=True, return_indices=True
    )
    alike = s_counts[si] == f_counts[fi]
    if not alike.any():
        return fresh
    si, fi = si[alike], fi[alike]
    s_days = np.zeros(len(s_starts), dtype=bool)
    s_days[si] = True
    f_days = np.zeros(len(f_starts), dtype=bool)
    f_days[fi] = True
    # Same days in the same order, same counts: the selected rows line up one to one.
    s_rows, f_rows = np.repeat(s_days, s_counts), np.repeat(f_days, f_counts)
    a, b = stored.take(s_rows), fresh.take(f_rows)
    differ = (
        (a.t != b.t)
        | (a.dur != b.dur)
        | (a.src != b.src)
        | (a.values.view(np.uint64) != b.values.view(np.uint64))
    )
    sub_starts = np.concatenate(([0], np.cumsum(f_counts[fi])[:-1]))
    same_day = ~np.logical_or.reduceat(differ, sub_starts)
    if not same_day.any():
        return fresh
    drop_days = np.zeros(len(f_starts), dtype=bool)
    drop_days[fi[same_day]] = True
    return fresh.take(~np.repeat(drop_days, f_counts))


def merge_days(
    old: Sequence[Keyed], new: Sequence[Keyed] | ChunkData, new_days: I64 | None = None
) -> DayChunks:
    """:func:`merge_counting` of many days at once, without a Python loop over rows.

    ``old`` and ``new`` are chunks with their day (an int, or an array with one per
    row); ``new`` may instead be one ChunkData with ``new_days`` per row. Every day
    that has rows gets the canonical :func:`merge` of its old and new rows (new
    values win) and the count ``merge_counting`` would give. The result is the same
    as merging day by day, chunk for chunk: the rows of one day sort together, in
    the order of the day's own sources (a global sorted list of names, of which each
    day keeps those it uses).
    """
    if isinstance(new, ChunkData):
        if new_days is None:
            raise ValueError("new_days is required with a ChunkData")
        new = [(new_days, new)]
    names = sorted({name for _, chunk in (*old, *new) for name in chunk.sources})
    position = {name: i for i, name in enumerate(names)}
    fresh = _canonical(_gather(new, position))
    matched: I64 | None = None
    if not any(len(chunk) for _, chunk in old):
        merged = fresh
    else:
        stored = _canonical(_gather(old, position))
        fresh = _not_stored(stored, fresh)
        if not len(fresh.t):
            merged = stored
        else:
            cat = np.concatenate
            both = _Rows(
                cat((stored.key, fresh.key)),
                cat((stored.t, fresh.t)),
                cat((stored.dur, fresh.dur)),
                cat((stored.values, fresh.values)),
                cat((stored.src, fresh.src)),
            )
            # Stable: of two equal keys (one old row, one new row, each side being
            # canonical) the old one comes first, and the new one is kept.
            order = _sort_order(both)
            r = both if order is None else both.take(order)
            same = _same_as_next(r)
            bits = r.values.view(np.uint64)
            matched = r.key[:-1][same & (bits[1:] == bits[:-1])]
            merged = r.take(np.append(~same, True)) if same.any() else r
    starts = _starts(merged.key)
    days = merged.key[starts]
    bounds = np.append(starts, len(merged.key))
    changed = _count_by_key(fresh.key, days)
    if matched is not None and len(matched):
        changed -= _count_by_key(matched, days)
    source_idx, sources = _day_sources(merged.src, names, starts, bounds)
    return DayChunks(
        days, bounds, merged.t, merged.dur, merged.values, source_idx, sources, changed
    )


def _day_sources(
    src: I64, names: list[str], starts: I64, bounds: I64
) -> tuple[U16, tuple[tuple[str, ...], ...]]:
    """Each day's sorted used names, and each row's index into its day's names."""
    n_days, k = len(starts), len(names)
    if k == 1:
        return np.zeros(len(src), dtype=np.uint16), ((names[0],),) * n_days
    day_of_row = np.repeat(np.arange(n_days, dtype=np.int64), np.diff(bounds))
    pair = day_of_row * k + src
    used = np.unique(pair)
    if len(used) == n_days * k:  # every day uses every name
        if k > 65_535:
            raise ValueError("a chunk holds at most 65535 distinct sources")
        return src.astype(np.uint16), (tuple(names),) * n_days
    used_day, used_name = np.divmod(used, k)
    first = np.searchsorted(used_day, np.arange(n_days + 1, dtype=np.int64))
    if int(np.diff(first).max(initial=0)) > 65_535:
        raise ValueError("a chunk holds at most 65535 distinct sources")
    rank = np.arange(len(used), dtype=np.int64) - first[used_day]
    local = rank[np.searchsorted(used, pair)].astype(np.uint16)
    cache: dict[tuple[int, ...], tuple[str, ...]] = {}
    out: list[tuple[str, ...]] = []
    name_list = used_name.tolist()
    bounds_list = first.tolist()
    for i in range(n_days):
        ids = tuple(name_list[bounds_list[i] : bounds_list[i + 1]])
        found = cache.get(ids)
        if found is None:
            found = cache[ids] = tuple(names[j] for j in ids)
        out.append(found)
    return local, tuple(out)


def encode_days(days: DayChunks, which: Sequence[int]) -> list[bytes]:
    """``[encode(days.chunk(i)) for i in which]``, the same bytes, faster."""
    if not which:
        return []
    return _encode_segments(
        days.t_ms,
        days.duration_ms,
        days.values,
        days.source_idx,
        days.bounds.tolist(),
        days.sources,
        which,
    )
