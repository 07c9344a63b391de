"""The write side of one import job: batches, cursor, completion, rollback.

Private to :mod:`healthspace.store.ingest`, which drives it; the records of each
batch go through ``_job_records.RecordWriter``, samples through the series.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from healthspace.errors import IngestError
from healthspace.model import Sample, SampleBatch
from healthspace.store._job_records import PreparedRecord, RecordWriter, now
from healthspace.store._priority import resolve_job
from healthspace.store.records import delete_job_rows
from healthspace.store.series import SeriesRepository
from healthspace.store.session import SpaceSession
from healthspace.store.tables import import_jobs

ProgressCallback = Callable[[int], None]


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

    records: list[PreparedRecord] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    batches: list[SampleBatch] = field(default_factory=list)
    sample_count: int = 0
    record_bytes: int = 0

    def add_record(self, prepared: PreparedRecord) -> None:
        self.records.append(prepared)
        self.record_bytes += prepared.size

    def clear(self) -> None:
        self.records.clear()
        self.samples.clear()
        self.batches.clear()
        self.sample_count = 0
        self.record_bytes = 0


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
        self.records = RecordWriter(session, self.result, self.counts)
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
                    .values(status="running", host=host, pid=os.getpid(), updated_at=now())
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
            "updated_at": now(),
        }

    def flush(self, conn: Connection, pending: _Pending, done: int) -> None:
        s = self.session
        if not self.row_exists:
            started = now()
            conn.execute(
                import_jobs.insert().values(
                    user_id=s.user_id,
                    job_id=self.result.job_id,
                    space=s.space.value,
                    source=self.source,
                    input_index=self.input_index,
                    started_at=started,
                    **self._job_values("running"),
                )
            )
            self.row_exists = True
        self.records.write(conn, pending.records)
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

    def complete(self, conn: Connection, *, hold_for_review: bool = False) -> None:
        s = self.session
        self.result.updated = self.records.apply_updates(conn)
        # Samples count what became new or changed in the visible data, so a
        # re-import reports 0 however many it re-read.
        for metric, ranks in sorted(self.ranks.items()):
            resolve_job(self.series, conn, self.result.job_id, metric, ranks)
        self.result.samples = self.series.finalize_job(conn, self.result.job_id)
        # Nothing new to look at (a re-import of something already confirmed):
        # don't leave an empty job waiting in the review list.
        held = hold_for_review and (sum(self.counts.values()) > 0 or bool(self.records.updates))
        values = self._job_values("review" if held else "complete")
        conn.execute(
            import_jobs.update()
            .where(import_jobs.c.user_id == s.user_id, import_jobs.c.job_id == self.result.job_id)
            .values(finished_at=now(), **values)
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
                .values(status="interrupted", updated_at=now())
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
