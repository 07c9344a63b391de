"""Clinical records of one space: read side.

Rows hold an encrypted canonical record (``payload``), optionally the encrypted
original the source gave us (``original``), and only non-clinical plaintext: ids,
kind, a timestamp, and blind indexes for the code and the source identity.
Records of an import job become visible only when the job completes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from healthspace.errors import UsageError
from healthspace.model import AnyRecord, Code, record_from_json
from healthspace.store.session import SpaceSession
from healthspace.store.tables import files, import_jobs, records

__all__ = ["FileRepository", "RecordRepository", "StoredRecord", "code_index"]

TABLE = "records"


def code_index(session: SpaceSession, code: Code) -> bytes:
    return session.blind(f"{code.system}|{code.code}", domain="code")


@dataclass(frozen=True)
class StoredRecord:
    record_id: str
    kind: str
    effective_ms: int | None
    job_id: str
    record: AnyRecord


def _visible(session: SpaceSession) -> sa.ColumnElement[bool]:
    complete_jobs = sa.select(import_jobs.c.job_id).where(
        import_jobs.c.user_id == session.user_id,
        import_jobs.c.status == "complete",
    )
    return sa.and_(
        records.c.user_id == session.user_id,
        records.c.space == session.space.value,
        records.c.job_id.in_(complete_jobs),
    )


class RecordRepository:
    """Reads the records of one space. Every call is audited (ids only)."""

    def __init__(self, session: SpaceSession) -> None:
        self.session = session

    def _decode(self, row: Any) -> StoredRecord:
        record_id, kind, effective_ms, job_id, payload = tuple(row)
        plain = self.session.decrypt(
            bytes(payload), table=TABLE, row_id=record_id, column="payload"
        )
        return StoredRecord(record_id, kind, effective_ms, job_id, record_from_json(plain))

    def _columns(self) -> Sequence[sa.ColumnElement[object]]:
        c = records.c
        return (c.record_id, c.kind, c.effective_ms, c.job_id, c.payload)

    def get(self, record_id: str) -> StoredRecord:
        with self.session.begin() as conn:
            row = conn.execute(
                sa.select(*self._columns()).where(
                    _visible(self.session), records.c.record_id == record_id
                )
            ).first()
            self.session.audit(
                conn,
                "record.read",
                target=f"record:{record_id}",
                outcome="ok" if row is not None else "not_found",
            )
        if row is None:
            raise UsageError(f"no record {record_id} in this space")
        return self._decode(row)

    def list(
        self,
        *,
        kind: str | None = None,
        code: Code | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[StoredRecord]:
        return list(
            self.iter(kind=kind, code=code, since_ms=since_ms, until_ms=until_ms, limit=limit)
        )

    def iter(
        self,
        *,
        kind: str | None = None,
        code: Code | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> Iterator[StoredRecord]:
        query = sa.select(*self._columns()).where(_visible(self.session))
        if kind is not None:
            query = query.where(records.c.kind == kind)
        if code is not None:
            query = query.where(records.c.code_index == code_index(self.session, code))
        if since_ms is not None:
            query = query.where(records.c.effective_ms >= since_ms)
        if until_ms is not None:
            query = query.where(records.c.effective_ms < until_ms)
        query = query.order_by(records.c.effective_ms, records.c.record_id)
        if limit is not None:
            query = query.limit(limit)
        with self.session.begin() as conn:
            rows = conn.execute(query).all()
            self.session.audit(conn, "record.list", target=f"kind={kind or '*'} n={len(rows)}")
        for row in rows:
            yield self._decode(row)

    def original(self, record_id: str) -> bytes | None:
        """The source's own bytes for a record (e.g. the FHIR resource), if kept."""
        with self.session.begin() as conn:
            row = conn.execute(
                sa.select(records.c.original).where(
                    _visible(self.session), records.c.record_id == record_id
                )
            ).first()
            self.session.audit(conn, "record.read_original", target=f"record:{record_id}")
        if row is None or row.original is None:
            return None
        return self.session.decrypt(
            bytes(row.original), table=TABLE, row_id=record_id, column="original"
        )

    def count_by_kind(self) -> dict[str, int]:
        query = (
            sa.select(records.c.kind, sa.func.count())
            .where(_visible(self.session))
            .group_by(records.c.kind)
        )
        with self.session.begin() as conn:
            counts = {str(k): int(n) for k, n in conn.execute(query).all()}
            self.session.audit(conn, "record.count")
        return counts


class FileRepository:
    """Encrypted file blobs (documents, uploads) of one space."""

    def __init__(self, session: SpaceSession) -> None:
        self.session = session

    def read(self, file_id: str) -> bytes:
        with self.session.begin() as conn:
            row = conn.execute(
                sa.select(files.c.payload).where(
                    files.c.user_id == self.session.user_id,
                    files.c.space == self.session.space.value,
                    files.c.file_id == file_id,
                )
            ).first()
            self.session.audit(conn, "file.read", target=f"file:{file_id}")
        if row is None:
            raise UsageError(f"no file {file_id} in this space")
        return self.session.decrypt(
            bytes(row.payload), table="files", row_id=file_id, column="payload"
        )


def delete_job_rows(conn: Connection, session: SpaceSession, job_id: str) -> None:
    """Remove everything a failed job wrote (its records and files)."""
    for table in (records, files):
        conn.execute(
            table.delete().where(table.c.user_id == session.user_id, table.c.job_id == job_id)
        )
