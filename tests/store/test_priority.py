"""Source priority, page by page (store/_priority.py), equals the rule applied to the
whole history at once (the oracle below, written straight from the rule)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthspace.model import SampleBatch
from healthspace.store import SeriesRepository, SpaceSession, ingest
from healthspace.store._chunk import ChunkData
from healthspace.store._priority import resolve, source_order

HOUR = 3_600_000
DAY_MS = 86_400_000
RANKS = {"Watch": 0, "Watch B": 0, "iPhone": 1, "Scale": 2}


def oracle(
    samples: list[tuple[int, int, float, str]], ranks: dict[str, int]
) -> dict[tuple[int, int, str], tuple[float, float]]:
    """(t, d, source) -> (counted, lost), by measuring coverage point by point in ms."""
    order = source_order(ranks)
    out = {}
    for t, d, v, src in samples:
        better = [(t2, d2) for t2, d2, _, s2 in samples if order[s2] < order[src] and d2 > 0]
        if d > 0:
            covered = 0
            # Coverage of [t, t + d) by the union of better spans, by sweeping boundaries.
            cuts = sorted({t, t + d, *(x for t2, d2 in better for x in (t2, t2 + d2))})
            for a, b in itertools.pairwise(cuts):
                if a < t or b > t + d:
                    continue
                if any(t2 <= a and b <= t2 + d2 for t2, d2 in better):
                    covered += b - a
            share = (d - covered) / d
        else:
            share = 0.0 if any(t2 <= t < t2 + d2 for t2, d2 in better) else 1.0
        counted = v * share
        out[(t, d, src)] = (counted, v - counted if share < 1.0 and v != 0 else 0.0)
    return out


def chunk_of(rows: list[tuple[int, int, float, str]]) -> ChunkData:
    names = tuple(sorted({r[3] for r in rows}))
    return ChunkData(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([names.index(r[3]) for r in rows], dtype=np.uint16),
        names,
    )


def paged(samples: list[tuple[int, int, float, str]], cuts: list[int]) -> list[ChunkData]:
    """The samples sorted by (t, duration, source), split before the given positions."""
    rows = sorted(samples, key=lambda r: (r[0], r[1], r[3]))
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(rows)}), len(rows)]
    return [chunk_of(rows[lo:hi]) for lo, hi in itertools.pairwise(bounds)]


def resolved(
    samples: list[tuple[int, int, float, str]], cuts: list[int] | None = None
) -> dict[tuple[int, int, str], tuple[float, float]]:
    if cuts is None:  # one page per UTC day, as the store reads them
        rows = sorted(samples)
        cuts = [i for i in range(1, len(rows)) if rows[i][0] // DAY_MS != rows[i - 1][0] // DAY_MS]
    out: dict[tuple[int, int, str], tuple[float, float]] = {}
    lost: dict[tuple[int, int, str], float] = {}
    for counted, overlap in resolve(paged(samples, cuts), source_order(RANKS)):
        for t, d, v, i in zip(
            counted.t_ms, counted.duration_ms, counted.values, counted.source_idx, strict=True
        ):
            out[(int(t), int(d), counted.sources[i])] = (float(v), 0.0)
        if overlap is not None:
            for t, d, v, i in zip(
                overlap.t_ms, overlap.duration_ms, overlap.values, overlap.source_idx, strict=True
            ):
                lost[(int(t), int(d), overlap.sources[i])] = float(v)
    return {k: (c, lost.get(k, 0.0)) for k, (c, _) in out.items()}


SAMPLES = st.lists(
    st.tuples(
        st.integers(0, 4 * DAY_MS // 60_000).map(lambda m: m * 60_000),
        st.sampled_from([0, 60_000, 10 * 60_000, HOUR, 5 * HOUR, 30 * HOUR, 3 * DAY_MS]),
        st.sampled_from([0.0, 1.0, 10.0, 123.5]),
        st.sampled_from(sorted(RANKS)),
    ),
    max_size=40,
    unique_by=lambda s: (s[0], s[1], s[3]),
)


@settings(max_examples=300, deadline=None)
@given(SAMPLES, st.lists(st.integers(0, 40), max_size=6), st.booleans())
def test_page_by_page_equals_the_whole_history(
    samples: list[tuple[int, int, float, str]], cuts: list[int], by_day: bool
) -> None:
    expected = oracle(samples, RANKS)
    got = resolved(samples, None if by_day else cuts)
    assert got.keys() == expected.keys()
    for key, (counted, lost) in expected.items():
        assert np.isclose(got[key][0], counted, rtol=1e-12, atol=1e-9), key
        assert np.isclose(got[key][1], lost, rtol=1e-12, atol=1e-9), key


def test_a_phone_sample_across_midnight_is_covered_by_next_days_watch() -> None:
    midnight = 10 * DAY_MS
    samples = [
        (midnight - 10 * 60_000, 20 * 60_000, 100.0, "iPhone"),  # 23:50-00:10
        (midnight, 10 * 60_000, 40.0, "Watch"),  # 00:00-00:10, next day's chunk
    ]
    got = resolved(samples)
    assert got[(midnight - 10 * 60_000, 20 * 60_000, "iPhone")] == (50.0, 50.0)
    assert got[(midnight, 10 * 60_000, "Watch")] == (40.0, 0.0)


def test_ties_in_rank_go_by_name_and_unranked_sources_come_last() -> None:
    assert source_order({"b": 0, "a": 0, "c": 1}) == {"a": 0, "b": 1, "c": 2}
    day = [(0, 60_000, 5.0, "Unknown app"), (0, 60_000, 7.0, "Watch")]
    out = list(resolve([chunk_of(day)], source_order({"Watch": 0})))
    ((counted, overlap),) = out
    values = dict(
        zip((counted.sources[i] for i in counted.source_idx), counted.values, strict=True)
    )
    assert values == {"Unknown app": 0.0, "Watch": 7.0}
    assert overlap is not None
    assert overlap.values.tolist() == [5.0]


# -- through ingest: resolved at completion, also after a resumed run ---------------------


def _ranked_items() -> list[SampleBatch]:
    minute = 60_000
    start = 20_000 * DAY_MS - 30 * minute  # the phone's samples cross midnight
    watch_t = start + np.arange(0, 60, 2) * minute
    phone_t = start + np.arange(0, 60, 5) * minute
    return [
        SampleBatch(
            "steps",
            "count",
            watch_t,
            np.full(30, 2 * minute),
            np.full(30, 20.0),
            source="Watch",
            rank=0,
        ),
        SampleBatch(
            "heart_rate",
            "count/min",
            watch_t,
            np.zeros(30, dtype=np.int64),
            np.full(30, 60.0),
            source="Watch",
        ),
        SampleBatch(
            "steps",
            "count",
            phone_t,
            np.full(12, 5 * minute),
            np.full(12, 50.0),
            source="iPhone",
            rank=1,
        ),
        SampleBatch(
            "steps",
            "count",
            phone_t[:3] + 7 * DAY_MS,
            np.full(3, 5 * minute),
            np.full(3, 50.0),
            source="iPhone",
            rank=1,
        ),
    ]


def _stored(session: SpaceSession, metric: str) -> dict[tuple[int, int, str], float]:
    data = SeriesRepository(session).samples(metric, 0, 2**62)
    return {
        (int(t), int(d), data.sources[i]): float(v)
        for t, d, v, i in zip(
            data.t_ms, data.duration_ms, data.values, data.source_idx, strict=True
        )
    }


def _interrupt_after(items: list[SampleBatch], at: int) -> Iterator[SampleBatch]:
    for index, item in enumerate(items, start=1):
        if index == at:
            raise KeyboardInterrupt
        yield item


def test_ranked_batches_are_resolved_when_the_import_completes(health: SpaceSession) -> None:
    items = _ranked_items()
    result = ingest(health, iter(items), source="test", input_sha256="c" * 64, batch_samples=1)
    steps, overlap = _stored(health, "steps"), _stored(health, "steps.overlap")
    raw = {
        (int(t), int(d), b.source): float(v)
        for b in items
        if b.metric == "steps"
        for t, d, v in zip(b.t_ms, b.duration_ms, b.values, strict=True)
    }
    expected = oracle([(t, d, v, s) for (t, d, s), v in raw.items()], {"Watch": 0, "iPhone": 1})
    assert steps.keys() == raw.keys()
    for key, (counted, lost) in expected.items():
        assert steps[key] == pytest.approx(counted)
        assert overlap.get(key, 0.0) == pytest.approx(lost)
        assert steps[key] + overlap.get(key, 0.0) == pytest.approx(raw[key])
    # The watch covers the phone's first hour (across midnight) entirely: the phone
    # counts only its samples a week later.
    assert sum(v for (t, _, s), v in steps.items() if s == "iPhone") == pytest.approx(150.0)
    assert all(v == 60.0 for v in _stored(health, "heart_rate").values())
    assert result.samples == len(raw) + 30 + len(overlap)
    # A second import of the same input changes nothing.
    again = ingest(health, iter(items), source="test", input_sha256="c" * 64)
    assert again.samples == 0
    assert _stored(health, "steps") == steps


def test_a_resumed_import_still_knows_the_ranks_of_batches_it_skips(
    health: SpaceSession,
) -> None:
    items = _ranked_items()
    with pytest.raises(KeyboardInterrupt):
        ingest(
            health,
            _interrupt_after(items, 4),
            source="test",
            input_sha256="d" * 64,
            batch_samples=1,
        )
    assert _stored(health, "steps") == {}  # nothing of an unfinished job is visible
    result = ingest(health, iter(items), source="test", input_sha256="d" * 64, batch_samples=1)
    assert result.resumed_from == 3
    assert sum(v for (_, _, s), v in _stored(health, "steps").items() if s == "iPhone") == (
        pytest.approx(150.0)
    )
