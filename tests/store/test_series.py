"""The series repository on both engines: numpy-checked aggregates, idempotent
re-writes, pending import chunks, space isolation and no plaintext at rest."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from healthspace.errors import IntegrityError
from healthspace.model import Sample, SampleBatch
from healthspace.store import SeriesRepository, SpaceSession, Store
from healthspace.store._chunk import ChunkData, empty
from healthspace.store._chunk_stats import stats_of
from healthspace.store.engine import is_sqlite, reader
from healthspace.store.series import DAY_MS, DayAggregate
from healthspace.store.tables import audit_log, series_chunks
from tests.store import _chunk_reference as chunk_reference
from tests.store._chunk_reference import merge_counting

BASE_DAY = 19_723  # 2024-01-01
T0 = BASE_DAY * DAY_MS


def heart_rate(days: int, *, seed: int = 1, step_ms: int = 60_000, t0: int = T0) -> SampleBatch:
    """Minute heart rate with gaps, shuffled, as a wearable export would give it."""
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(days * DAY_MS // step_ms, dtype=np.int64) * step_ms
    t = t[rng.random(len(t)) > 0.2]  # the watch was off now and then
    rng.shuffle(t)
    values = np.round(70 + 15 * np.sin(t / DAY_MS * 2 * np.pi) + rng.normal(0, 5, len(t)))
    durations = np.full(len(t), step_ms, dtype=np.int64)
    return SampleBatch("heart_rate", "/min", t, durations, values, "watch")


def write(session: SpaceSession, samples: Any, *, job_key: str = "") -> int:
    with session.begin() as conn:
        return SeriesRepository(session).write(conn, samples, job_key=job_key)


def reference_daily(t: np.ndarray, v: np.ndarray) -> list[DayAggregate]:
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    days = t // DAY_MS
    out = []
    for day in np.unique(days).tolist():
        dv = v[days == day]
        out.append(
            DayAggregate(
                date(1970, 1, 1) + timedelta(days=day),
                len(dv),
                float(dv.sum()),
                float(dv.min()),
                float(dv.max()),
                float(dv.mean()),
            )
        )
    return out


def assert_daily_equal(got: list[DayAggregate], want: list[DayAggregate]) -> None:
    assert [(d.day, d.n, d.min, d.max) for d in got] == [(d.day, d.n, d.min, d.max) for d in want]
    for g, w in zip(got, want, strict=True):
        assert g.sum == pytest.approx(w.sum, rel=1e-12)
        assert g.mean == pytest.approx(w.mean, rel=1e-12)


def raw_rows(store: Store) -> list[tuple[Any, ...]]:
    with reader(store.engine) as conn:
        rows = conn.execute(
            sa.select(series_chunks).order_by(
                series_chunks.c.metric_index, series_chunks.c.day, series_chunks.c.job_key
            )
        ).all()
        conn.rollback()
    return [tuple(bytes(x) if isinstance(x, memoryview) else x for x in r) for r in rows]


def job_rows(store: Store, job_key: str) -> int:
    with reader(store.engine) as conn:
        n = conn.execute(
            sa.select(sa.func.count()).where(series_chunks.c.job_key == job_key)
        ).scalar_one()
        conn.rollback()
    return int(n)


# --- write, read, compare with numpy ---------------------------------------------------


def test_write_then_daily_and_samples_match_numpy(health: SpaceSession) -> None:
    batch = heart_rate(12)
    assert write(health, batch) == len(batch)
    repo = SeriesRepository(health)

    assert_daily_equal(repo.daily("heart_rate"), reference_daily(batch.t_ms, batch.values))

    start, end = T0 + 3 * DAY_MS + 12_345, T0 + 7 * DAY_MS + 3_600_000
    got = repo.samples("heart_rate", start, end)
    inside = (batch.t_ms >= start) & (batch.t_ms < end)
    order = np.argsort(batch.t_ms[inside])
    np.testing.assert_array_equal(got.t_ms, batch.t_ms[inside][order])
    np.testing.assert_array_equal(got.values, batch.values[inside][order])
    np.testing.assert_array_equal(got.duration_ms, batch.duration_ms[inside][order])
    assert set(got.source_names()) == {"watch"}

    # A window selects the days whose samples fall in it; aggregates stay whole-day.
    window = repo.daily("heart_rate", start, end)
    assert [d.day for d in window] == [date(2024, 1, 1) + timedelta(days=i) for i in range(3, 8)]
    assert repo.daily("other_metric") == []


def test_window_is_start_inclusive_end_exclusive(health: SpaceSession) -> None:
    t = np.array([T0, T0 + 1000, T0 + DAY_MS], dtype=np.int64)
    zero = np.zeros(3, dtype=np.int64)
    write(health, SampleBatch("steps", "{steps}", t, zero, np.array([1.0, 2.0, 3.0])))
    repo = SeriesRepository(health)
    assert repo.samples("steps", T0, T0 + 1000).values.tolist() == [1.0]
    assert repo.samples("steps", T0 + 1, T0 + DAY_MS + 1).values.tolist() == [2.0, 3.0]
    # The second day's only sample is at its very start, outside [T0, T0 + DAY_MS).
    assert [d.day for d in repo.daily("steps", T0, T0 + DAY_MS)] == [date(2024, 1, 1)]
    assert [d.day for d in repo.daily("steps", T0 + 1001, None)] == [date(2024, 1, 2)]


def test_samples_of_several_metrics_and_sources(health: SpaceSession) -> None:
    samples = [
        Sample("heart_rate", T0 + 5, 61.0, 0, "watch"),
        Sample("heart_rate", T0 + 5, 63.0, 0, "phone"),
        Sample("steps", T0 + 5, 120.0, 60_000, "phone"),
        Sample("heart_rate", T0 - 1, 58.0, 0, "watch"),  # the day before
        Sample("heart_rate", -1, 50.0, 0, "watch"),  # 1969-12-31T23:59:59.999Z
    ]
    assert write(health, samples) == 5
    repo = SeriesRepository(health)
    got = repo.samples("heart_rate", -DAY_MS, T0 + DAY_MS)
    assert got.t_ms.tolist() == [-1, T0 - 1, T0 + 5, T0 + 5]
    assert got.source_names() == ["watch", "watch", "phone", "watch"]
    assert got.values.tolist() == [50.0, 58.0, 63.0, 61.0]
    assert [d.day for d in repo.daily("heart_rate")] == [
        date(1969, 12, 31),
        date(2023, 12, 31),
        date(2024, 1, 1),
    ]
    assert repo.daily("steps")[0].sum == 120.0


def test_duplicates_within_a_batch_keep_the_last(health: SpaceSession) -> None:
    t = np.array([T0, T0, T0 + 1], dtype=np.int64)
    zero = np.zeros(3, dtype=np.int64)
    batch = SampleBatch("heart_rate", "/min", t, zero, np.array([1.0, 2.0, 3.0]), "w")
    assert write(health, batch) == 2
    assert SeriesRepository(health).samples("heart_rate", T0, T0 + 2).values.tolist() == [2.0, 3.0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_values_are_refused(health: SpaceSession, store: Store, bad: float) -> None:
    t, zero = np.array([T0, T0 + 1], dtype=np.int64), np.zeros(2, dtype=np.int64)
    batch = SampleBatch("heart_rate", "/min", t, zero, np.array([60.0, bad]))
    with pytest.raises(ValueError, match="finite"):
        write(health, batch)
    with pytest.raises(ValueError, match="finite"):
        write(health, [Sample("heart_rate", T0, bad)])
    assert raw_rows(store) == []


def test_negative_durations_are_refused(health: SpaceSession) -> None:
    with pytest.raises(ValueError, match="negative"):
        write(health, [Sample("sleep", T0, 1.0, -5)])


# --- idempotence -------------------------------------------------------------------------


def test_rewriting_the_same_batch_changes_nothing(health: SpaceSession, store: Store) -> None:
    batch = heart_rate(3)
    write(health, batch)
    before = raw_rows(store)
    assert write(health, batch) == 0
    assert write(health, list(batch)) == 0  # the same samples as objects
    assert raw_rows(store) == before  # not even updated_at or a fresh nonce


def test_a_changed_value_wins_and_is_counted(health: SpaceSession) -> None:
    batch = heart_rate(2)
    write(health, batch)
    values = batch.values.copy()
    values[:7] += 1
    changed = SampleBatch(batch.metric, batch.unit, batch.t_ms, batch.duration_ms, values, "watch")
    assert write(health, changed) == 7
    repo = SeriesRepository(health)
    assert_daily_equal(repo.daily("heart_rate"), reference_daily(batch.t_ms, values))


def test_many_days_in_one_batch_use_a_range_lookup(health: SpaceSession) -> None:
    # One sample a day for 1000 days: more days than the IN-list limit.
    t = T0 + np.arange(1000, dtype=np.int64) * DAY_MS + 3_600_000
    zero = np.zeros(1000, dtype=np.int64)
    batch = SampleBatch("body_mass", "kg", t, zero, 70 + (np.arange(1000) % 7) / 10)
    assert write(health, batch) == 1000
    assert write(health, batch) == 0
    days = SeriesRepository(health).daily("body_mass")
    assert len(days) == 1000
    assert days[5].mean == pytest.approx(70.5)


# --- import jobs -------------------------------------------------------------------------


def test_pending_chunks_are_invisible_until_finalized(health: SpaceSession, store: Store) -> None:
    visible = heart_rate(2, seed=1)
    write(health, visible)
    pending = heart_rate(2, seed=2, t0=T0 + DAY_MS)  # overlaps day 2, adds day 3
    write(health, pending, job_key="job-1")
    repo = SeriesRepository(health)
    assert_daily_equal(repo.daily("heart_rate"), reference_daily(visible.t_ms, visible.values))
    assert len(repo.samples("heart_rate", T0, T0 + 4 * DAY_MS)) == len(visible)

    before = dict(zip(visible.t_ms.tolist(), visible.values.tolist(), strict=True))
    new_or_changed = sum(
        1
        for t_ms, value in zip(pending.t_ms.tolist(), pending.values.tolist(), strict=True)
        if before.get(t_ms) != value
    )
    with health.begin() as conn:
        assert repo.finalize_job(conn, "job-1") == new_or_changed
    assert new_or_changed > 0
    assert job_rows(store, "job-1") == 0
    # Pending wins where both hold a sample at the same (time, duration, source).
    merged = dict(zip(visible.t_ms.tolist(), visible.values.tolist(), strict=True))
    merged.update(zip(pending.t_ms.tolist(), pending.values.tolist(), strict=True))
    t = np.array(list(merged), dtype=np.int64)
    v = np.array(list(merged.values()))
    assert_daily_equal(repo.daily("heart_rate"), reference_daily(t, v))
    got = repo.samples("heart_rate", T0, T0 + 4 * DAY_MS)
    np.testing.assert_array_equal(got.values, v[np.argsort(t)])


def test_discarded_job_leaves_no_trace(health: SpaceSession, store: Store) -> None:
    visible = heart_rate(1, seed=1)
    write(health, visible)
    before = raw_rows(store)
    write(health, heart_rate(3, seed=9), job_key="job-2")
    assert job_rows(store, "job-2") == 3
    with health.begin() as conn:
        assert SeriesRepository(health).discard_job(conn, "job-2") == 3
    assert raw_rows(store) == before


def test_the_visible_key_is_not_a_job(health: SpaceSession) -> None:
    repo = SeriesRepository(health)
    with health.begin() as conn, pytest.raises(ValueError, match="job id"):
        repo.discard_job(conn, "")


# --- isolation, plaintext, audit -----------------------------------------------------------


def test_general_session_cannot_decrypt_a_health_chunk(
    health: SpaceSession, general: SpaceSession, store: Store
) -> None:
    write(health, heart_rate(1))
    assert SeriesRepository(general).daily("heart_rate") == []
    with reader(store.engine) as conn:
        row = conn.execute(sa.select(series_chunks)).first()
        conn.rollback()
    assert row is not None
    row_id = f"{bytes(row.metric_index).hex()}:{row.day}"
    for column in ("payload", "stats"):
        envelope = bytes(getattr(row, column))
        health.decrypt(envelope, table="series_chunks", row_id=row_id, column=column)
        with pytest.raises(IntegrityError):
            general.decrypt(envelope, table="series_chunks", row_id=row_id, column=column)
    # Moved to another day, a chunk no longer decrypts even in its own space.
    other = f"{bytes(row.metric_index).hex()}:{row.day + 1}"
    with pytest.raises(IntegrityError):
        health.decrypt(bytes(row.payload), table="series_chunks", row_id=other, column="payload")


def test_no_plaintext_metric_name_at_rest(
    health: SpaceSession, store: Store, canary: str, database_url: str, tmp_path: Path
) -> None:
    source = canary + "-SOURCE"
    write(health, [Sample(canary, T0 + i * 1000, 80.0 + i, 0, source) for i in range(100)])
    assert SeriesRepository(health).daily(canary)[0].n == 100
    if is_sqlite(store.engine):
        store.compact()  # checkpoint: every byte is in the main file
        blobs = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
        assert blobs
    else:
        with reader(store.engine) as conn:
            blobs = [
                repr(tuple(r)).encode()
                for table in (series_chunks, audit_log)
                for r in conn.execute(sa.select(table))
            ]
            conn.rollback()
    for needle in (canary.encode(), canary.encode("utf-16-le"), b"CANARY"):
        assert not any(needle in blob for blob in blobs)


def test_each_call_is_audited_once_without_names(health: SpaceSession, store: Store) -> None:
    def events() -> list[tuple[str, str | None]]:
        with reader(store.engine) as conn:
            rows = conn.execute(
                sa.select(audit_log.c.action, audit_log.c.target)
                .where(audit_log.c.user_id == health.user_id, audit_log.c.action.like("series.%"))
                .order_by(audit_log.c.seq)
            ).all()
            conn.rollback()
        return [(r.action, r.target) for r in rows]

    repo = SeriesRepository(health)
    write(health, [Sample("heart_rate", T0, 60.0), Sample("steps", T0 + DAY_MS, 10.0)])
    repo.daily("heart_rate")
    repo.samples("heart_rate", T0, T0 + DAY_MS)
    with health.begin() as conn:
        repo.finalize_job(conn, "nothing-pending")
    assert events() == [
        ("series.write", "series"),
        ("series.read", "series"),
        ("series.read", "series"),
        ("series.write", "series"),
    ]


def test_open_ended_windows_do_not_overflow(health: SpaceSession) -> None:
    write(health, heart_rate(1, seed=3))
    repo = SeriesRepository(health)
    assert len(repo.samples("heart_rate", 0, 2**62)) > 0
    assert repo.daily("heart_rate", -(2**62), 2**62)


# --- the batched write path against one chunk at a time --------------------------------------


class OneDayAtATime:
    """The repository's semantics the slow, obvious way: per metric, job and day,
    ``merge_counting`` with what is stored, and the first codec's bytes."""

    def __init__(self) -> None:
        self.chunks: dict[tuple[str, str, int], ChunkData] = {}

    def write(self, samples: SampleBatch | list[Sample], job_key: str = "") -> int:
        if isinstance(samples, SampleBatch):
            n = len(samples)
            by_metric = {
                samples.metric: ChunkData(
                    samples.t_ms,
                    samples.duration_ms,
                    samples.values,
                    np.zeros(n, np.uint16),
                    (samples.source,),
                )
            }
        else:
            names = list(dict.fromkeys(s.source for s in samples))
            by_metric = {}
            for metric in dict.fromkeys(s.metric for s in samples):
                mine = [s for s in samples if s.metric == metric]
                by_metric[metric] = ChunkData(
                    np.array([s.t_ms for s in mine], dtype=np.int64),
                    np.array([s.duration_ms for s in mine], dtype=np.int64),
                    np.array([s.value for s in mine]),
                    np.array([names.index(s.source) for s in mine], dtype=np.uint16),
                    tuple(names),
                )
        total = 0
        for metric, chunk in by_metric.items():
            days = chunk.t_ms // DAY_MS
            for day in np.unique(days).tolist():
                key = (metric, job_key, day)
                merged, n = merge_counting(self.chunks.get(key, empty()), chunk.take(days == day))
                if n:
                    self.chunks[key] = merged
                total += n
        return total

    def finalize(self, job_key: str) -> int:
        added = 0
        for metric, job, day in [k for k in self.chunks if k[1] == job_key]:
            pending = self.chunks.pop((metric, job, day))
            visible = self.chunks.get((metric, "", day))
            if visible is None:
                self.chunks[(metric, "", day)] = pending
                added += len(pending)
                continue
            merged, n = merge_counting(visible, pending)
            if n:
                self.chunks[(metric, "", day)] = merged
            added += n
        return added


def assert_stored_as(model: OneDayAtATime, session: SpaceSession, store: Store) -> None:
    with reader(store.engine) as conn:
        rows = conn.execute(sa.select(series_chunks)).all()
        conn.rollback()
    got = {}
    for r in rows:
        index = bytes(r.metric_index)
        row_id = f"{index.hex()}:{r.day}"

        def opened(column: str, r: Any = r, row_id: str = row_id) -> bytes:
            envelope = bytes(getattr(r, column))
            return session.decrypt(envelope, table="series_chunks", row_id=row_id, column=column)

        got[(index, r.job_key, r.day)] = (
            r.n,
            r.first_ms,
            r.last_ms,
            opened("stats"),
            opened("payload"),
        )
    want = {}
    for (metric, job, day), chunk in model.chunks.items():
        stats = stats_of(chunk)
        want[(session.blind(metric, domain="metric"), job, day)] = (
            stats.n,
            stats.first_ms,
            stats.last_ms,
            stats.pack(),
            chunk_reference.encode(chunk),
        )
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == value, key


def shuffled_batch(
    rng: np.random.Generator, metric: str, source: str, days: int, per_day: int, t0: int = T0
) -> SampleBatch:
    n = days * per_day
    t = t0 + rng.integers(0, days * DAY_MS // 1000, n) * 1000  # whole seconds: collisions
    t = np.concatenate([t, t[: n // 10]])  # and duplicates, the later value winning
    values = np.round(rng.normal(70, 10, len(t)), int(rng.integers(0, 3)))
    durations = rng.choice([0, 60_000], len(t))
    return SampleBatch(metric, "1", t, durations, values, source)


def test_writes_store_what_one_day_at_a_time_would(health: SpaceSession, store: Store) -> None:
    """Byte for byte (decrypted): new days, stored days, several sources, re-writes,
    changed values, the range lookup, import jobs and their finalization."""
    rng = np.random.default_rng(7)
    model = OneDayAtATime()
    repo = SeriesRepository(health)

    def both(samples: Any, job_key: str = "") -> None:
        assert write(health, samples, job_key=job_key) == model.write(samples, job_key)
        assert_stored_as(model, health, store)

    def finalize(job_key: str) -> int:
        with health.begin() as conn:
            added = repo.finalize_job(conn, job_key)
        assert added == model.finalize(job_key)
        assert_stored_as(model, health, store)
        return added

    first = shuffled_batch(rng, "heart_rate", "watch", 5, 300)
    both(first)
    mixed = [
        Sample(metric, int(t), float(v), int(d), source)
        for metric, source in (("heart_rate", "phone"), ("heart_rate", "watch"), ("steps", "ring"))
        for t, v, d in zip(
            T0 + rng.integers(3 * DAY_MS, 7 * DAY_MS, 200) // 1000 * 1000,
            rng.integers(0, 100, 200),
            rng.choice([0, 60_000], 200),
            strict=True,
        )
    ]
    both(mixed)
    both(first)  # the same again: nothing changes
    changed_values = first.values.copy()
    changed_values[::17] += 0.5
    both(SampleBatch("heart_rate", "1", first.t_ms, first.duration_ms, changed_values, "watch"))

    # An import: two sources into pending chunks, over stored days and new ones.
    both(shuffled_batch(rng, "heart_rate", "watch", 4, 200, T0 + 4 * DAY_MS), job_key="j1")
    both(shuffled_batch(rng, "heart_rate", "phone", 6, 100, T0 + 2 * DAY_MS), job_key="j1")
    assert finalize("j1") > 0
    # The same export again: every pending chunk equals its visible twin.
    for metric in ("heart_rate", "steps"):
        visible = repo.samples(metric, T0, T0 + 30 * DAY_MS)
        both(
            [
                Sample(metric, t, v, d, s)
                for t, v, d, s in zip(
                    visible.t_ms.tolist(),
                    visible.values.tolist(),
                    visible.duration_ms.tolist(),
                    visible.source_names(),
                    strict=True,
                )
            ],
            job_key="j2",
        )
    assert finalize("j2") == 0

    # Over 900 days: stored chunks are looked up by range, and days inside the range
    # the batch does not touch stay as they are.
    t = T0 - 500 * DAY_MS + np.arange(1000, dtype=np.int64)[::2] * 2 * DAY_MS + 3_600_000
    zero = np.zeros(len(t), dtype=np.int64)
    both(SampleBatch("heart_rate", "1", t, zero, np.full(len(t), 61.0), "watch"))
