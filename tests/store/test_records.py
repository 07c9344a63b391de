"""Ingest and read back: dedupe, updates, atomic failure, code lookups, originals, files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from healthspace.errors import IngestError, SourceError, UsageError
from healthspace.model import Attached, Sample
from healthspace.store import (
    FileRepository,
    RecordRepository,
    SeriesRepository,
    SpaceSession,
    Store,
    ingest,
)
from healthspace.store.tables import import_jobs, metadata, records
from tests.store._records import CHOLESTEROL, HBA1C, document, lab


def logical_dump(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every table but the audit log, as sorted rows: 'the store is unchanged' means equal dumps."""
    out: dict[str, list[tuple[object, ...]]] = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "audit_log":
                continue
            out[table.name] = sorted(tuple(r) for r in conn.execute(sa.select(table)).all())
    return out


def test_ingest_then_read_back(health: SpaceSession) -> None:
    items = [lab(i) for i in range(30)] + [
        lab(i, code=HBA1C, value=5.0 + i / 10, unit="%") for i in range(5)
    ]
    result = ingest(health, items, source="test", input_sha256="a" * 64)
    assert result.imported == {"observation": 35}
    assert result.skipped_duplicates == 0
    repo = RecordRepository(health)
    stored = repo.list(kind="observation")
    assert len(stored) == 35
    assert {s.record for s in stored} == set(items)
    assert [s.record for s in repo.list(code=HBA1C)] == sorted(
        items[30:], key=lambda r: r.sort_time()
    )
    assert repo.count_by_kind() == {"observation": 35}
    one = stored[0]
    assert repo.get(one.record_id).record == one.record


def test_reimport_adds_nothing(health: SpaceSession) -> None:
    items = [lab(i) for i in range(20)]
    ingest(health, items, source="test", input_sha256="b" * 64)
    again = ingest(health, items, source="test", input_sha256="b" * 64)
    assert again.imported == {}
    assert again.skipped_duplicates == 20
    assert len(RecordRepository(health).list()) == 20


def test_duplicates_within_one_input_are_skipped(health: SpaceSession) -> None:
    result = ingest(health, [lab(1), lab(1), lab(2)], source="test")
    assert result.imported == {"observation": 2}
    assert result.skipped_duplicates == 1


def test_changed_record_at_source_is_updated_in_place(health: SpaceSession) -> None:
    ingest(health, [lab(1, value=100.0)], source="test")
    before = RecordRepository(health).list()
    result = ingest(health, [lab(1, value=120.0)], source="test")
    assert result.updated == 1
    after = RecordRepository(health).list()
    assert [s.record_id for s in after] == [s.record_id for s in before]
    assert after[0].record.value.quantity.value == 120.0  # type: ignore[union-attr]


def _failing(items: list[object], at: int) -> Iterator[object]:
    for i, item in enumerate(items):
        if i == at:
            raise SourceError("truncated input", file="labs.json", place="entry 7")
        yield item


@pytest.mark.parametrize("fail_at", [3, 25, 95])
def test_failed_import_leaves_store_unchanged(
    store: Store, health: SpaceSession, fail_at: int
) -> None:
    ingest(health, [lab(1000 + i) for i in range(5)], source="test")
    before = logical_dump(store)
    items: list[object] = [lab(i) for i in range(100)]
    items.insert(50, Sample(metric="heart_rate", t_ms=1_700_000_000_000, value=61.0))
    with pytest.raises(SourceError, match=r"labs.json: entry 7: truncated input"):
        # Small batches so some of them commit before the failure.
        ingest(health, _failing(items, fail_at), source="test", batch_records=10, batch_samples=1)  # type: ignore[arg-type]
    assert logical_dump(store) == before


def test_unexpected_exception_is_wrapped_without_contents(health: SpaceSession) -> None:
    def boom() -> Iterator[object]:
        yield lab(1)
        raise ValueError("CANARY-secret-record-content")

    with pytest.raises(IngestError) as info:
        ingest(health, boom(), source="test")  # type: ignore[arg-type]
    assert "CANARY" not in str(info.value)
    assert RecordRepository(health).list() == []


def test_records_invisible_until_job_completes(store: Store, health: SpaceSession) -> None:
    seen: list[int] = []

    def watch(done: int) -> None:
        # Called after each committed batch: the rows are in the table, but no
        # reader sees them while the job runs.
        with store.engine.connect() as conn:
            raw = conn.execute(sa.select(sa.func.count()).select_from(records)).scalar()
        seen.append(int(raw or 0))
        if done < 30:
            assert RecordRepository(health).list() == []

    ingest(health, [lab(i) for i in range(30)], source="test", batch_records=10, progress=watch)
    assert seen[:2] == [10, 20]
    assert len(RecordRepository(health).list()) == 30
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(import_jobs.c.status)).scalars().all() == ["complete"]


def test_original_and_file_are_kept_encrypted(health: SpaceSession) -> None:
    pdf = b"%PDF-1.7 synthetic discharge summary"
    original = b'{"resourceType": "Observation", "id": "1"}'
    ingest(
        health,
        [Attached(lab(1), original=original), Attached(document(pdf), file=pdf)],
        source="test",
    )
    repo = RecordRepository(health)
    obs = repo.list(kind="observation")[0]
    assert repo.original(obs.record_id) == original
    doc = repo.list(kind="document")[0]
    ref = doc.record.content_ref  # type: ignore[union-attr]
    assert ref is not None
    assert FileRepository(health).read(ref) == pdf


def test_series_samples_go_to_chunks(health: SpaceSession) -> None:
    day = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000
    samples = [
        Sample(metric="heart_rate", t_ms=day + i * 60_000, value=60.0 + i % 5) for i in range(100)
    ]
    result = ingest(health, samples, source="test")
    assert result.samples == 100
    assert ingest(health, samples, source="test").samples == 0  # re-import adds nothing
    daily = SeriesRepository(health).daily("heart_rate")
    assert len(daily) == 1
    assert daily[0].n == 100
    assert daily[0].mean == pytest.approx(sum(s.value for s in samples) / 100)


def test_get_unknown_record_is_a_clear_error(health: SpaceSession) -> None:
    with pytest.raises(UsageError, match="no record"):
        RecordRepository(health).get("does-not-exist")


def test_code_index_is_not_the_code_in_clear(store: Store, health: SpaceSession) -> None:
    ingest(health, [lab(1)], source="test")
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(records)).first()
    assert row is not None
    for value in row:
        if isinstance(value, (bytes, memoryview)):
            assert CHOLESTEROL.code.encode() not in bytes(value)
        elif isinstance(value, str):
            assert CHOLESTEROL.code not in value
