"""Records waiting for the person's review before they count (extracted lab values).

An import made with ``hold_for_review=True`` ends in job status "review": its
records exist, encrypted, but no reader sees them. The person then confirms the
job (optionally keeping only some records) or rejects it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from healthspace.errors import UsageError
from healthspace.model import record_from_json
from healthspace.store.records import StoredRecord, delete_job_rows
from healthspace.store.session import SpaceSession
from healthspace.store.tables import import_jobs, records

__all__ = ["PendingJob", "confirm", "pending_jobs", "pending_records", "reject"]


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    source: str
    started_at: datetime
    counts: dict[str, int]


def _job_where(session: SpaceSession, job_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        import_jobs.c.user_id == session.user_id,
        import_jobs.c.space == session.space.value,
        import_jobs.c.job_id == job_id,
        import_jobs.c.status == "review",
    )


def pending_jobs(session: SpaceSession) -> list[PendingJob]:
    with session.begin() as conn:
        rows = conn.execute(
            sa.select(import_jobs)
            .where(
                import_jobs.c.user_id == session.user_id,
                import_jobs.c.space == session.space.value,
                import_jobs.c.status == "review",
            )
            .order_by(import_jobs.c.started_at)
        ).all()
        session.audit(conn, "review.list", target=f"n={len(rows)}")
    return [
        PendingJob(r.job_id, r.source, r.started_at, dict(json.loads(r.counts)["imported"]))
        for r in rows
    ]


def pending_records(session: SpaceSession, job_id: str) -> list[StoredRecord]:
    with session.begin() as conn:
        if (
            conn.execute(sa.select(import_jobs.c.job_id).where(_job_where(session, job_id))).first()
            is None
        ):
            raise UsageError(f"no import {job_id} is waiting for review")
        rows = conn.execute(
            sa.select(
                records.c.record_id,
                records.c.kind,
                records.c.effective_ms,
                records.c.job_id,
                records.c.payload,
            )
            .where(
                records.c.user_id == session.user_id,
                records.c.space == session.space.value,
                records.c.job_id == job_id,
            )
            .order_by(records.c.effective_ms, records.c.record_id)
        ).all()
        session.audit(conn, "review.read", target=f"job:{job_id}")
    out = []
    for record_id, kind, effective_ms, jid, payload in rows:
        plain = session.decrypt(bytes(payload), table="records", row_id=record_id, column="payload")
        out.append(StoredRecord(record_id, kind, effective_ms, jid, record_from_json(plain)))
    return out


def confirm(session: SpaceSession, job_id: str, keep: Iterable[str] | None = None) -> int:
    """Make a reviewed job's records count. ``keep`` limits it to those record ids.

    Returns how many records were kept.
    """
    with session.begin() as conn:
        if (
            conn.execute(sa.select(import_jobs.c.job_id).where(_job_where(session, job_id))).first()
            is None
        ):
            raise UsageError(f"no import {job_id} is waiting for review")
        scope = sa.and_(
            records.c.user_id == session.user_id,
            records.c.space == session.space.value,
            records.c.job_id == job_id,
        )
        if keep is not None:
            kept = set(keep)
            conn.execute(records.delete().where(scope, records.c.record_id.not_in(kept)))
        n = int(conn.execute(sa.select(sa.func.count()).where(scope)).scalar() or 0)
        conn.execute(
            import_jobs.update()
            .where(_job_where(session, job_id))
            .values(status="complete", finished_at=datetime.now(UTC))
        )
        session.audit(conn, "review.confirm", target=f"job:{job_id} kept={n}")
    return n


def reject(session: SpaceSession, job_id: str) -> None:
    """Discard a reviewed job and everything it wrote."""
    with session.begin() as conn:
        if (
            conn.execute(sa.select(import_jobs.c.job_id).where(_job_where(session, job_id))).first()
            is None
        ):
            raise UsageError(f"no import {job_id} is waiting for review")
        delete_job_rows(conn, session, job_id)
        conn.execute(import_jobs.delete().where(_job_where(session, job_id)))
        session.audit(conn, "review.reject", target=f"job:{job_id}")
