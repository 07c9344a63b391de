"""The record side of an import job: identity, dedupe, changed records, stored files.

Private to the store's ingest: :class:`RecordWriter` is what ``_Job`` uses for the
records of each batch (samples go to the series repository).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from healthspace.model import AnyRecord, record_to_json
from healthspace.model.item import Attached
from healthspace.store.records import code_index
from healthspace.store.session import SpaceSession
from healthspace.store.tables import files, import_jobs, records

if TYPE_CHECKING:
    from healthspace.store._job import IngestResult

__all__ = ["PreparedRecord", "RecordWriter", "StagedUpdate", "ms", "now"]

_IN_CHUNK = 500  # identities per IN (...) query: well under every engine's limit


def now() -> datetime:
    return datetime.now(UTC)


def ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


@dataclass(slots=True)
class PreparedRecord:
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
class StagedUpdate:
    """A changed record, applied only when its job completes."""

    record_id: str
    kind: str
    effective_ms: int | None
    code_index: bytes | None
    content_hash: bytes
    payload: bytes
    original: bytes | None


class RecordWriter:
    """Writes a job's records: new rows, duplicates skipped, changes staged, files stored.

    Shares the job's ``result`` (id, skipped duplicates) and ``counts`` (per kind).
    """

    def __init__(self, session: SpaceSession, result: IngestResult, counts: Counter[str]) -> None:
        self.session = session
        self.result = result
        self.counts = counts
        self.updates: dict[str, StagedUpdate] = {}

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

    def prepare(self, item: Attached) -> PreparedRecord:
        """What the row of ``item`` needs: identity, content hash, JSON, index columns."""
        s = self.session
        record = item.record
        plain = record_to_json(record)
        original = item.original
        code = record.primary_code()
        return PreparedRecord(
            ident=s.blind(record.source_id, domain="identity"),
            content=s.blind(
                hashlib.sha256(plain + (original or b"")).hexdigest(), domain="content"
            ),
            plain=plain,
            kind=record.kind,
            effective_ms=ms(record.sort_time()),
            code_index=code_index(s, code) if code is not None else None,
            original=original,
            with_file=item if item.file is not None else None,
        )

    def _payloads(
        self, conn: Connection, record_id: str, prep: PreparedRecord
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

    def _stage_update(self, record_id: str, prep: PreparedRecord) -> None:
        s = self.session
        self.updates[record_id] = StagedUpdate(
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

    def replay(self, conn: Connection, items: list[PreparedRecord]) -> None:
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

    def write(self, conn: Connection, items: list[PreparedRecord]) -> None:
        s = self.session
        by_identity: dict[bytes, PreparedRecord] = {}
        for prep in items:
            if prep.ident in by_identity:
                self.result.skipped_duplicates += 1
            by_identity[prep.ident] = prep
        if not by_identity:
            return
        existing = self._lookup(conn, list(by_identity))
        stamp = now()
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
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            self.counts[prep.kind] += 1
        if rows:
            conn.execute(records.insert(), rows)

    def _adopt(self, conn: Connection, record_id: str, prep: PreparedRecord) -> None:
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
                updated_at=now(),
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
                    created_at=now(),
                )
            )
        if "content_ref" in type(record).model_fields:
            return record.model_copy(update={"content_ref": file_id})
        return record

    def apply_updates(self, conn: Connection) -> int:
        """Replace the records that changed at the source; returns how many."""
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
                    updated_at=now(),
                )
            )
        return len(self.updates)
