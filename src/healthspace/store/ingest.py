"""Import jobs: model items in, encrypted rows out, atomically and idempotently.

One call of :func:`ingest` is one job. Items are written in batches; each batch
commits together with the job's cursor (how many input items are done), so a job
killed half-way resumes where it stopped when the same input is imported again.
Nothing of a job is visible until it completes: records are filtered by job status
and samples go to pending chunks that are folded in at completion. A job that
fails (bad input, a database error) removes everything it wrote. Records carry a
stable source identity: importing the same input again adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from healthspace.errors import HealthspaceError, IngestError
from healthspace.model import AnyRecord, Sample, SampleBatch, record_to_json
from healthspace.model.item import Attached
from healthspace.store.records import code_index, delete_job_rows
from healthspace.store.series import SeriesRepository
from healthspace.store.session import SpaceSession
from healthspace.store.tables import files, import_jobs, records

__all__ = ["IngestResult", "ProgressCallback", "ingest"]

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


@dataclass
class _Pending:
    """What one batch holds before it is written."""

    records: list[Attached] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    batches: list[SampleBatch] = field(default_factory=list)
    sample_count: int = 0

    def clear(self) -> None:
        self.records.clear()
        self.samples.clear()
        self.batches.clear()
        self.sample_count = 0


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
        self.updates: list[_Update] = []

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

    def _write_records(self, conn: Connection, items: list[Attached]) -> None:
        s = self.session
        by_identity: dict[bytes, Attached] = {}
        for item in items:
            ident = s.blind(item.record.source_id, domain="identity")
            if ident in by_identity:
                self.result.skipped_duplicates += 1
            by_identity[ident] = item
        if not by_identity:
            return
        existing: dict[bytes, tuple[str, bytes]] = {}
        keys = list(by_identity)
        for i in range(0, len(keys), _IN_CHUNK):
            part = keys[i : i + _IN_CHUNK]
            for row in conn.execute(
                sa.select(records.c.identity, records.c.record_id, records.c.content_hash).where(
                    records.c.user_id == s.user_id,
                    records.c.space == s.space.value,
                    records.c.identity.in_(part),
                )
            ):
                existing[bytes(row.identity)] = (row.record_id, bytes(row.content_hash))
        now = _now()
        rows: list[dict[str, object]] = []
        for ident, item in by_identity.items():
            record = item.record
            plain = record_to_json(record)
            content = s.blind(
                hashlib.sha256(plain + (item.original or b"")).hexdigest(), domain="content"
            )
            code = record.primary_code()
            cidx = code_index(s, code) if code is not None else None
            found = existing.get(ident)
            if found is not None:
                record_id, old_content = found
                if old_content == content:
                    self.result.skipped_duplicates += 1
                    continue
                # Changed at the source: replace at completion, so a failed job
                # leaves the old version untouched.
                self.updates.append(
                    _Update(
                        record_id,
                        record.kind,
                        _ms(record.sort_time()),
                        cidx,
                        content,
                        s.encrypt(plain, table="records", row_id=record_id, column="payload"),
                        None
                        if item.original is None
                        else s.encrypt(
                            item.original, table="records", row_id=record_id, column="original"
                        ),
                    )
                )
                continue
            record_id = uuid.uuid4().hex
            if item.file is not None:
                record = self._store_file(conn, record, item.file)
                plain = record_to_json(record)
            rows.append(
                {
                    "user_id": s.user_id,
                    "record_id": record_id,
                    "space": s.space.value,
                    "kind": record.kind,
                    "effective_ms": _ms(record.sort_time()),
                    "code_index": cidx,
                    "identity": ident,
                    "content_hash": content,
                    "job_id": self.result.job_id,
                    "payload": s.encrypt(
                        plain, table="records", row_id=record_id, column="payload"
                    ),
                    "original": None
                    if item.original is None
                    else s.encrypt(
                        item.original, table="records", row_id=record_id, column="original"
                    ),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.counts[record.kind] += 1
        if rows:
            conn.execute(records.insert(), rows)

    def _store_file(self, conn: Connection, record: AnyRecord, data: bytes) -> AnyRecord:
        s = self.session
        digest = hashlib.sha256(data).hexdigest()
        sha_index = s.blind(digest, domain="file")
        row = conn.execute(
            sa.select(files.c.file_id).where(
                files.c.user_id == s.user_id,
                files.c.space == s.space.value,
                files.c.sha_index == sha_index,
            )
        ).first()
        if row is not None:
            file_id = str(row.file_id)
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
        for u in self.updates:
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
        self.result.samples = self.series.finalize_job(conn, self.result.job_id)
        values = self._job_values("review" if hold_for_review else "complete")
        conn.execute(
            import_jobs.update()
            .where(import_jobs.c.user_id == s.user_id, import_jobs.c.job_id == self.result.job_id)
            .values(finished_at=_now(), **values)
        )
        s.audit(conn, "import.complete", target=f"job:{self.result.job_id} source={self.source}")

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


def ingest(
    session: SpaceSession,
    items: Iterable[AnyRecord | Attached | Sample | SampleBatch],
    *,
    source: str,
    input_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    batch_records: int = 5000,
    batch_samples: int = 500_000,
    hold_for_review: bool = False,
) -> IngestResult:
    """Write ``items`` as one import job; see the module docstring for the guarantees.

    ``input_sha256`` identifies the input (the file's hash): a job interrupted while
    importing it is resumed by the next call with the same hash. The iterator must
    yield the same items in the same order for the same input.

    ``hold_for_review`` ends the job in status "review" instead of "complete": its
    records stay invisible until the person confirms them (see ``store.review``).
    Used for values read by extraction (PDF text, OCR), never saved silently.
    """
    job = _Job(session, source, input_sha256 or uuid.uuid4().hex)
    job.find_resumable()
    pending = _Pending()
    done = 0
    try:
        for item in items:
            done += 1
            if done <= job.cursor:
                continue  # already committed by the interrupted run
            if isinstance(item, SampleBatch):
                pending.batches.append(item)
                pending.sample_count += len(item.values)
            elif isinstance(item, Sample):
                pending.samples.append(item)
                pending.sample_count += 1
            elif isinstance(item, Attached):
                pending.records.append(item)
            else:
                pending.records.append(Attached(item))
            if len(pending.records) >= batch_records or pending.sample_count >= batch_samples:
                with session.begin() as conn:
                    job.flush(conn, pending, done)
                if progress is not None:
                    progress(done)
        with session.begin() as conn:
            if hold_for_review and (pending.samples or pending.batches or job.result.samples):
                raise IngestError("samples cannot be held for review; import them directly")
            job.flush(conn, pending, done)
            job.complete(conn, hold_for_review=hold_for_review)
        if progress is not None:
            progress(done)
    except Exception as exc:
        if job.row_exists:
            job.discard()
        if isinstance(exc, HealthspaceError):
            raise
        raise IngestError(f"import failed and was rolled back: {type(exc).__name__}") from exc
    job.result.items = done
    return job.result
