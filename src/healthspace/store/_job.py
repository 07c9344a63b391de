"""The write side of one import job: batching, dedupe, files, completion, rollback.

Private to :mod:`healthspace.store.ingest`, which drives it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from healthspace.errors import IngestError
from healthspace.model import AnyRecord, Sample, SampleBatch, record_to_json
from healthspace.model.item import Attached
from healthspace.store._priority import resolve_job
from healthspace.store.records import code_index, delete_job_rows
from healthspace.store.series import SeriesRepository
from healthspace.store.session import SpaceSession
from healthspace.store.tables import files, import_jobs, records

ProgressCallback = Callable[[int], None]

_IN_CHUNK = 500  # identities per IN (...) query: well under every engine's limit


@dataclass
class IngestResult:
    job_id: str
    imported: dict[str, int] = field(default_factory=dict)
    updated: int = 0
    skipped_duplicates: int = 0
    samples: int = 0
    items: int = 0
    resumed_from: int = 0

    def as_counts(self) -> dict[str, object]:
        return {
            "imported": dict(self.imported),
            "updated": self.updated,
            "skipped_duplicates": self.skipped_duplicates,
            "samples": self.samples,
        }


@dataclass(slots=True)
class _Prepared:
    """A record reduced to what its row needs, so the model object can go at once.

    Model objects are many times larger than their JSON (a night of sleep stages:
    ~2 KB per stage as objects, ~150 bytes as JSON); a batch holds only these.
    """

    ident: bytes
    content: bytes
    plain: bytes
    kind: str
    effective_ms: int | None
    code_index: bytes | None
    original: bytes | None
    with_file: Attached | None  # kept whole only when a file is stored beside it

    @property
    def size(self) -> int:
        return len(self.plain) + len(self.original or b"")


@dataclass
class _Pending:
    """What one batch holds before it is written."""

    records: list[_Prepared] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    batches: list[SampleBatch] = field(default_factory=list)
    sample_count: int = 0
    record_bytes: int = 0

    def add_record(self, prepared: _Prepared) -> None:
        self.records.append(prepared)
        self.record_bytes += prepared.size

    def clear(self) -> None:
        self.records.clear()
        self.samples.clear()
        self.batches.clear()
        self.sample_count = 0
        self.record_bytes = 0


@dataclass
class _Update:
    record_id: str
    kind: str
    effective_ms: int | None
    code_index: bytes | None
    content_hash: bytes
    payload: bytes
    original: bytes | None


def _now() -> datetime:
    return datetime.now(UTC)


def _ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Job:
    def __init__(self, session: SpaceSession, source: str, input_key: str) -> None:
        self.session = session
        self.source = source
        self.input_index = session.blind(input_key, domain="input")
        self.series = SeriesRepository(session)
        self.result = IngestResult(job_id=uuid.uuid4().hex)
        self.counts: Counter[str] = Counter()
        self.row_exists = False
        self.cursor = 0
        self.updates: dict[str, _Update] = {}
        # Cumulative metrics whose sources are ranked: metric -> source -> best rank.
        self.ranks: dict[str, dict[str, int]] = {}

    # -- resume -----------------------------------------------------------------

    def find_resumable(self) -> None:
        s = self.session
        host = socket.gethostname()
        with s.begin() as conn:
            rows = conn.execute(
                sa.select(import_jobs).where(
                    import_jobs.c.user_id == s.user_id,
                    import_jobs.c.space == s.space.value,
                    import_jobs.c.input_index == self.input_index,
                    import_jobs.c.status.in_(("running", "interrupted")),
                )
            ).all()
            for row in rows:
                if row.status == "running" and row.host == host and _pid_alive(row.pid):
                    raise IngestError("this input is being imported by another process right now")
            if rows:
                row = max(rows, key=lambda r: r.cursor)
                self.result.job_id = row.job_id
                self.cursor = int(row.cursor)
                self.result.resumed_from = self.cursor
                saved = json.loads(row.counts)
                self.counts.update(saved.get("imported", {}))
                self.result.skipped_duplicates = int(saved.get("skipped_duplicates", 0))
                self.result.samples = int(saved.get("samples", 0))
                self.row_exists = True
                conn.execute(
                    import_jobs.update()
                    .where(import_jobs.c.user_id == s.user_id, import_jobs.c.job_id == row.job_id)
                    .values(status="running", host=host, pid=os.getpid(), updated_at=_now())
                )
                s.audit(conn, "import.resume", target=f"job:{row.job_id} at={self.cursor}")

    # -- writing ------------------------------------------------------------------

    def note_rank(self, batch: SampleBatch) -> None:
        """Remember a ranked batch's source, also for batches a resumed run skips."""
        assert batch.rank is not None
        sources = self.ranks.setdefault(batch.metric, {})
        sources[batch.source] = min(batch.rank, sources.get(batch.source, batch.rank))

    def _job_values(self, status: str) -> dict[str, object]:
        self.result.imported = dict(self.counts)
        return {
            "status": status,
            "cursor": self.cursor,
            "counts": json.dumps(self.result.as_counts(), sort_keys=True),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "updated_at": _now(),
        }

    def flush(self, conn: Connection, pending: _Pending, done: int) -> None:
        s = self.session
        if not self.row_exists:
            now = _now()
            conn.execute(
                import_jobs.insert().values(
                    user_id=s.user_id,
                    job_id=self.result.job_id,
                    space=s.space.value,
                    source=self.source,
                    input_index=self.input_index,
                    started_at=now,
                    **self._job_values("running"),
                )
            )
            self.row_exists = True
        self._write_records(conn, pending.records)
        if pending.samples:
            self.result.samples += self.series.write(
                conn, pending.samples, job_key=self.result.job_id
            )
        for batch in pending.batches:
            self.result.samples += self.series.write(conn, batch, job_key=self.result.job_id)
        self.cursor = done
        conn.execute(
            import_jobs.update()
            .where(import_jobs.c.user_id == s.user_id, import_jobs.c.job_id == self.result.job_id)
            .values(**self._job_values("running"))
        )
        pending.clear()

    def _lookup(
        self, conn: Connection, keys: list[bytes]
    ) -> dict[bytes, tuple[str, bytes, str, str]]:
        """Existing rows by identity: (record_id, content hash, job id, job status)."""
        s = self.session
        found: dict[bytes, tuple[str, bytes, str, str]] = {}
        for i in range(0, len(keys), _IN_CHUNK):
            part = keys[i : i + _IN_CHUNK]
            rows = conn.execute(
                sa.select(
                    records.c.identity,
                    records.c.record_id,
                    records.c.content_hash,
                    records.c.job_id,
                    import_jobs.c.status,
                )
                .select_from(
                    records.outerjoin(
                        import_jobs,
                        sa.and_(
                            import_jobs.c.user_id == records.c.user_id,
                            import_jobs.c.job_id == records.c.job_id,
                        ),
                    )
                )
                .where(
                    records.c.user_id == s.user_id,
                    records.c.space == s.space.value,
                    records.c.identity.in_(part),
                )
            )
            for row in rows:
                found[bytes(row.identity)] = (
                    row.record_id,
                    bytes(row.content_hash),
                    row.job_id,
                    row.status or "",
                )
        return found

    def prepare(self, item: Attached) -> _Prepared:
        """What the row of ``item`` needs: identity, content hash, JSON, index columns."""
        s = self.session
        record = item.record
        plain = record_to_json(record)
        original = item.original
        code = record.primary_code()
        return _Prepared(
            ident=s.blind(record.source_id, domain="identity"),
            content=s.blind(
                hashlib.sha256(plain + (original or b"")).hexdigest(), domain="content"
            ),
            plain=plain,
            kind=record.kind,
            effective_ms=_ms(record.sort_time()),
            code_index=code_index(s, code) if code is not None else None,
            original=original,
            with_file=item if item.file is not None else None,
        )

    def _payloads(
        self, conn: Connection, record_id: str, prep: _Prepared
    ) -> tuple[bytes, bytes | None]:
        """The encrypted payload and original of a row; a file is stored first if any."""
        s = self.session
        plain = prep.plain
        if prep.with_file is not None and prep.with_file.file is not None:
            record = self._store_file(conn, prep.with_file.record, prep.with_file.file)
            plain = record_to_json(record)
        payload = s.encrypt(plain, table="records", row_id=record_id, column="payload")
        original = (
            None
            if prep.original is None
            else s.encrypt(prep.original, table="records", row_id=record_id, column="original")
        )
        return payload, original

    def _stage_update(self, record_id: str, prep: _Prepared) -> None:
        s = self.session
        self.updates[record_id] = _Update(
            record_id,
            prep.kind,
            prep.effective_ms,
            prep.code_index,
            prep.content,
            s.encrypt(prep.plain, table="records", row_id=record_id, column="payload"),
            None
            if prep.original is None
            else s.encrypt(prep.original, table="records", row_id=record_id, column="original"),
        )

    def replay(self, conn: Connection, items: list[_Prepared]) -> None:
        """Rebuild the updates of items an interrupted run already committed past.

        Changed records are applied only at completion, so the cursor alone does
        not remember them: re-derive them from the same input.
        """
        staged = {prep.ident: prep for prep in items}
        existing = self._lookup(conn, list(staged))
        for ident, prep in staged.items():
            found = existing.get(ident)
            if found is None or found[2] == self.result.job_id:
                continue
            if found[1] != prep.content:
                self._stage_update(found[0], prep)

    def _write_records(self, conn: Connection, items: list[_Prepared]) -> None:
        s = self.session
        by_identity: dict[bytes, _Prepared] = {}
        for prep in items:
            if prep.ident in by_identity:
                self.result.skipped_duplicates += 1
            by_identity[prep.ident] = prep
        if not by_identity:
            return
        existing = self._lookup(conn, list(by_identity))
        now = _now()
        rows: list[dict[str, object]] = []
        for ident, prep in by_identity.items():
            found = existing.get(ident)
            if found is not None:
                record_id, old_content, owner, owner_status = found
                if owner != self.result.job_id and owner_status in ("running", "interrupted"):
                    # Held by a job that never finished: this job takes the row
                    # over, or it would stay invisible behind the unfinished one.
                    self._adopt(conn, record_id, prep)
                    self.counts[prep.kind] += 1
                    continue
                if old_content == prep.content:
                    self.result.skipped_duplicates += 1
                    continue
                # Changed at the source: replace at completion, so a failed job
                # leaves the old version untouched.
                self._stage_update(record_id, prep)
                continue
            record_id = uuid.uuid4().hex
            payload, original = self._payloads(conn, record_id, prep)
            rows.append(
                {
                    "user_id": s.user_id,
                    "record_id": record_id,
                    "space": s.space.value,
                    "kind": prep.kind,
                    "effective_ms": prep.effective_ms,
                    "code_index": prep.code_index,
                    "identity": ident,
                    "content_hash": prep.content,
                    "job_id": self.result.job_id,
                    "payload": payload,
                    "original": original,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.counts[prep.kind] += 1
        if rows:
            conn.execute(records.insert(), rows)

    def _adopt(self, conn: Connection, record_id: str, prep: _Prepared) -> None:
        s = self.session
        payload, original = self._payloads(conn, record_id, prep)
        conn.execute(
            records.update()
            .where(records.c.user_id == s.user_id, records.c.record_id == record_id)
            .values(
                job_id=self.result.job_id,
                kind=prep.kind,
                effective_ms=prep.effective_ms,
                code_index=prep.code_index,
                content_hash=prep.content,
                payload=payload,
                original=original,
                updated_at=_now(),
            )
        )

    def _store_file(self, conn: Connection, record: AnyRecord, data: bytes) -> AnyRecord:
        s = self.session
        digest = hashlib.sha256(data).hexdigest()
        sha_index = s.blind(digest, domain="file")
        row = conn.execute(
            sa.select(files.c.file_id, files.c.job_id).where(
                files.c.user_id == s.user_id,
                files.c.space == s.space.value,
                files.c.sha_index == sha_index,
            )
        ).first()
        if row is not None:
            file_id = str(row.file_id)
            if row.job_id != self.result.job_id:
                # Shared by more than one job now: no single job's rollback may
                # delete it; it goes with its space.
                conn.execute(
                    files.update()
                    .where(files.c.user_id == s.user_id, files.c.file_id == file_id)
                    .values(job_id=None)
                )
        else:
            file_id = uuid.uuid4().hex
            conn.execute(
                files.insert().values(
                    user_id=s.user_id,
                    file_id=file_id,
                    space=s.space.value,
                    sha_index=sha_index,
                    size=len(data),
                    job_id=self.result.job_id,
                    payload=s.encrypt(data, table="files", row_id=file_id, column="payload"),
                    created_at=_now(),
                )
            )
        if "content_ref" in type(record).model_fields:
            return record.model_copy(update={"content_ref": file_id})
        return record

    def complete(self, conn: Connection, *, hold_for_review: bool = False) -> None:
        s = self.session
        for u in self.updates.values():
            conn.execute(
                records.update()
                .where(records.c.user_id == s.user_id, records.c.record_id == u.record_id)
                .values(
                    kind=u.kind,
                    effective_ms=u.effective_ms,
                    code_index=u.code_index,
                    content_hash=u.content_hash,
                    payload=u.payload,
                    original=u.original,
                    updated_at=_now(),
                )
            )
        self.result.updated = len(self.updates)
        # Samples count what became new or changed in the visible data, so a
        # re-import reports 0 however many it re-read.
        for metric, ranks in sorted(self.ranks.items()):
            resolve_job(self.series, conn, self.result.job_id, metric, ranks)
        self.result.samples = self.series.finalize_job(conn, self.result.job_id)
        # Nothing new to look at (a re-import of something already confirmed):
        # don't leave an empty job waiting in the review list.
        held = hold_for_review and (sum(self.counts.values()) > 0 or bool(self.updates))
        values = self._job_values("review" if held else "complete")
        conn.execute(
            import_jobs.update()
            .where(import_jobs.c.user_id == s.user_id, import_jobs.c.job_id == self.result.job_id)
            .values(finished_at=_now(), **values)
        )
        s.audit(conn, "import.complete", target=f"job:{self.result.job_id} source={self.source}")

    def mark_interrupted(self) -> None:
        s = self.session
        with s.begin() as conn:
            conn.execute(
                import_jobs.update()
                .where(
                    import_jobs.c.user_id == s.user_id,
                    import_jobs.c.job_id == self.result.job_id,
                    import_jobs.c.status == "running",
                )
                .values(status="interrupted", updated_at=_now())
            )
            s.audit(conn, "import.interrupted", target=f"job:{self.result.job_id}")

    def discard(self) -> None:
        s = self.session
        with s.begin() as conn:
            delete_job_rows(conn, s, self.result.job_id)
            self.series.discard_job(conn, self.result.job_id)
            conn.execute(
                import_jobs.delete().where(
                    import_jobs.c.user_id == s.user_id, import_jobs.c.job_id == self.result.job_id
                )
            )
            s.audit(
                conn,
                "import.failed",
                target=f"job:{self.result.job_id} source={self.source}",
                outcome="failed",
            )
