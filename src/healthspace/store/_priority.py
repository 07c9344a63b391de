"""Source priority for cumulative series: each sample counts only what better sources
did not already record.

The rule (documented for users in docs/sources/apple_health.md): the sources of a
metric are ordered by rank (lower first), then by name. A sample keeps the part of
its time span that no higher-ordered source covers, and its value in proportion: a
phone sample fully covered by watch samples counts 0, one half covered counts half.
Instants (no duration) count only outside every higher-ordered span. The metric
keeps each sample with its counted value; what it lost, ``value - counted``, goes to
the overlap series under the same time and source, so metric + overlap, sample by
sample, is exactly what each source recorded.

Pages of days are resolved one at a time, in order, so memory does not grow with
the length of the history: a page sees the spans carried over from earlier pages
and the samples of the following pages that start before its own samples end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from healthspace.model import OVERLAP_SUFFIX
from healthspace.store._chunk import ChunkData
from healthspace.store.series import SeriesRepository, _concat_sorted, _row_id
from healthspace.store.tables import series_chunks as sc

__all__ = ["resolve", "resolve_job", "source_order"]

_PAGE_DAYS = 256  # days read per query
_PAGE_SAMPLES = 32_768  # samples resolved, and written back, at a time

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


def source_order(ranks: Mapping[str, int]) -> dict[str, int]:
    """Each source's place: by rank, then by name (0 is the most trusted)."""
    return {name: i for i, name in enumerate(sorted(ranks, key=lambda n: (ranks[n], n)))}


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
    lengths = np.concatenate(([0], np.cumsum(ue - us)))

    def before(x: I64) -> I64:
        # Measure of the union left of x: whole intervals, minus what the last pokes past x.
        k = np.searchsorted(us, x, side="left")
        over = np.where(k > 0, np.maximum(0, ue[np.maximum(k - 1, 0)] - x), 0)
        result: I64 = lengths[k] - over
        return result

    return before(b) - before(a)


def _inside(us: I64, ue: I64, x: I64) -> Bool:
    k = np.searchsorted(us, x, side="right")
    inside: Bool = (k > 0) & (x < ue[np.maximum(k - 1, 0)])
    return inside


def _places(chunk: ChunkData, order: Mapping[str, int]) -> I64:
    """Each sample's source place; sources without a rank come last, by name."""
    unranked = sorted(s for s in chunk.sources if s not in order)
    extra = {name: len(order) + i for i, name in enumerate(unranked)}
    table = np.asarray([order.get(s, extra.get(s, 0)) for s in chunk.sources], dtype=np.int64)
    return table[chunk.source_idx] if len(table) else np.zeros(0, dtype=np.int64)


def _shares(t: I64, d: I64, place: I64, ctx_s: I64, ctx_e: I64, ctx_place: I64) -> F64:
    """What fraction of each sample counts, given every span that could cover it."""
    share = np.ones(len(t), dtype=np.float64)
    for level in np.unique(place).tolist():
        better = ctx_place < level
        if not bool(better.any()):
            continue
        us, ue = _union(ctx_s[better], ctx_e[better])
        if not len(us):
            continue
        mine = np.flatnonzero(place == level)
        span = d[mine] > 0
        spans, instants = mine[span], mine[~span]
        if len(spans):
            covered = _covered(us, ue, t[spans], t[spans] + d[spans])
            share[spans] = (d[spans] - covered) / d[spans]
        if len(instants):
            share[instants] = np.where(_inside(us, ue, t[instants]), 0.0, 1.0)
    return share


def resolve(
    pages: Iterable[ChunkData], order: Mapping[str, int]
) -> Iterator[tuple[ChunkData, ChunkData | None]]:
    """(counted, overlap or None) for each page of samples.

    Pages are consecutive stretches of one metric's samples, each sorted by time and
    later than the one before (days of chunks, concatenated). A page sees the spans
    carried over from earlier pages that reach into it and the samples of later
    pages that start before its own samples end. ``order`` is :func:`source_order`
    of the sources' ranks.
    """
    source = iter(pages)
    ahead: deque[tuple[ChunkData, I64]] = deque()
    carried = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))

    def pull() -> bool:
        for page in source:
            if len(page):
                ahead.append((page, _places(page, order)))
                return True
        return False

    while ahead or pull():
        page, place = ahead.popleft()
        t, d = page.t_ms, page.duration_ms
        end = t + d
        reach = int(end.max())
        # Later pages whose samples may start before this page's samples end.
        while (not ahead or int(ahead[-1][0].t_ms[-1]) < reach) and pull():
            pass
        later_s, later_e, later_p = [], [], []
        for other, other_place in ahead:
            cut = int(np.searchsorted(other.t_ms, reach, side="left"))
            later_s.append(other.t_ms[:cut])
            later_e.append(other.t_ms[:cut] + other.duration_ms[:cut])
            later_p.append(other_place[:cut])
        ctx_s = np.concatenate([carried[0], t, *later_s])
        ctx_e = np.concatenate([carried[1], end, *later_e])
        ctx_p = np.concatenate([carried[2], place, *later_p])
        share = _shares(t, d, place, ctx_s, ctx_e, ctx_p)
        counted_values = page.values * share
        counted = ChunkData(t, d, counted_values, page.source_idx, page.sources)
        lost = (share < 1.0) & (page.values != 0)
        overlap = None
        if bool(lost.any()):
            overlap = ChunkData(
                t[lost],
                d[lost],
                page.values[lost] - counted_values[lost],
                page.source_idx[lost],
                page.sources,
            )
        yield counted, overlap
        # Every later sample starts at or after this page's last one: only spans
        # reaching past it can still cover something.
        last = int(t[-1])
        keep_old = carried[1] > last
        keep_new = (end > last) & (d > 0)
        carried = (
            np.concatenate([carried[0][keep_old], t[keep_new]]),
            np.concatenate([carried[1][keep_old], end[keep_new]]),
            np.concatenate([carried[2][keep_old], place[keep_new]]),
        )


def resolve_job(
    repo: SeriesRepository,
    conn: Connection,
    job_id: str,
    metric: str,
    ranks: Mapping[str, int],
) -> None:
    """Apply the rule to import job ``job_id``'s pending chunks of ``metric``.

    Runs inside the job's completing transaction, before its chunks become visible:
    days whose samples lost something get the counted values in place, and what was
    lost goes to the job's pending chunks of ``metric + OVERLAP_SUFFIX``. Reads,
    resolves and writes a page of whole days (about ``_PAGE_SAMPLES``) at a time.
    """
    if not job_id:
        raise ValueError("a job id is required (the empty key is the visible data)")
    index = repo._metric_index(metric)
    scope = repo._scope(index, job_id)

    def pages() -> Iterator[ChunkData]:
        # Whole days, about _PAGE_SAMPLES samples at a time (``n`` is a plain column).
        last: int | None = None
        page: list[ChunkData] = []
        size = 0
        while True:
            query = sa.select(sc.c.day, sc.c.n, sc.c.payload).where(*scope)
            if last is not None:
                query = query.where(sc.c.day > last)
            rows = conn.execute(query.order_by(sc.c.day).limit(_PAGE_DAYS)).all()
            for day, n, payload in rows:
                page.append(repo._load(payload, _row_id(index, int(day))))
                size += int(n)
                if size >= _PAGE_SAMPLES:
                    yield _concat_sorted(page)
                    page, size = [], 0
            if len(rows) < _PAGE_DAYS:
                break
            last = int(rows[-1].day)
        if page:
            yield _concat_sorted(page)

    for counted, overlap in resolve(pages(), source_order(ranks)):
        if overlap is None:
            continue  # nothing lost: the page stays as written
        repo._replace_days(conn, metric, counted, job_id, only=overlap.t_ms)
        repo._write_metric(conn, metric + OVERLAP_SUFFIX, overlap, job_id)
