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

import uuid
from collections.abc import Iterable

from healthspace.errors import HealthspaceError, IngestError
from healthspace.model import AnyRecord, Sample, SampleBatch
from healthspace.model.item import Attached
from healthspace.store._job import IngestResult, ProgressCallback, _Job, _Pending
from healthspace.store._job_records import PreparedRecord
from healthspace.store.session import SpaceSession

__all__ = ["IngestResult", "ProgressCallback", "ingest"]


def ingest(
    session: SpaceSession,
    items: Iterable[AnyRecord | Attached | Sample | SampleBatch],
    *,
    source: str,
    input_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    batch_records: int = 5000,
    batch_samples: int = 250_000,
    batch_bytes: int = 4 << 20,
    hold_for_review: bool = False,
) -> IngestResult:
    """Write ``items`` as one import job; see the module docstring for the guarantees.

    ``input_sha256`` identifies the input (the file's hash): a job interrupted while
    importing it is resumed by the next call with the same hash. The iterator must
    yield the same items in the same order for the same input.

    ``hold_for_review`` ends the job in status "review" instead of "complete": its
    records stay invisible until the person confirms them (see ``store.review``).
    Used for values read by extraction (PDF text, OCR), never saved silently.

    A batch commits after ``batch_records`` records, ``batch_samples`` samples or
    ``batch_bytes`` of record JSON, whichever comes first; records are held as their
    JSON only, so memory stays bounded however large the objects were.
    """
    job = _Job(session, source, input_sha256 or uuid.uuid4().hex)
    job.find_resumable()
    pending = _Pending()
    replay: list[PreparedRecord] = []
    done = 0
    try:
        for item in items:
            done += 1
            if isinstance(item, SampleBatch) and item.rank is not None:
                job.note_rank(item)
            if done <= job.cursor:
                # Already committed by the interrupted run; only its pending
                # updates need re-deriving.
                if not isinstance(item, (Sample, SampleBatch)):
                    replay.append(
                        job.records.prepare(item if isinstance(item, Attached) else Attached(item))
                    )
                    if len(replay) >= batch_records or done == job.cursor:
                        with session.begin() as conn:
                            job.records.replay(conn, replay)
                        replay.clear()
                continue
            if isinstance(item, SampleBatch):
                pending.batches.append(item)
                pending.sample_count += len(item.values)
            elif isinstance(item, Sample):
                pending.samples.append(item)
                pending.sample_count += 1
            else:
                pending.add_record(
                    job.records.prepare(item if isinstance(item, Attached) else Attached(item))
                )
            if (
                len(pending.records) >= batch_records
                or pending.sample_count >= batch_samples
                or pending.record_bytes >= batch_bytes
            ):
                with session.begin() as conn:
                    job.flush(conn, pending, done)
                if progress is not None:
                    progress(done)
        if replay:
            with session.begin() as conn:
                job.records.replay(conn, replay)
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
    except BaseException:
        # Interrupted (Ctrl-C, a cancelled task): keep what was committed and
        # mark the job resumable, so this same process can pick it up again.
        if job.row_exists:
            job.mark_interrupted()
        raise
    job.result.items = done
    return job.result
