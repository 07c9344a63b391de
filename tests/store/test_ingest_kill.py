"""T-REL-1 on the store level: "no data lost" when an import is killed with SIGKILL.

A child process imports a deterministic stream (observations, documents with a file,
samples, sample batches) with small batches, writes an ack line to a side file after
every progress callback (which ingest calls after each batch commit) and SIGKILLs
itself while the iterator is producing item K (hypothesis picks K and the batch
sizes). Afterwards:

- the SQLite file passes ``integrity_check`` and ``foreign_key_check``;
- nothing of the interrupted job is visible, yet every acked item is in the raw tables
  under the job's id, and the job row is "running"/"interrupted" with cursor == last ack;
- re-running the same input resumes from that cursor and ends with exactly the content
  of an oracle import of the same stream into a fresh store; re-running once more adds
  nothing.

An exception from the iterator (not a kill) rolls the whole job back: every table but
the audit log is as it was before.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from healthspace.errors import IngestError, SourceError
from healthspace.model import Document, record_from_json
from healthspace.store import RecordRepository, SeriesRepository, Store, ingest
from healthspace.store.tables import audit_log, files, import_jobs, records, series_chunks
from tests.store import _harness as h

N = 60
STREAM = {"n": N, "tag": "s", "canary": ""}
ITEMS = h.stream(**STREAM)
RECORD_IDS = [h.source_id_of(i) for i in ITEMS if h.is_record(i)]
SHA = "a" * 64


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stream imported in one go, uninterrupted, into a fresh store."""
    root = tmp_path_factory.mktemp("oracle")
    store = h.open_store(
        f"sqlite:///{root / 'o.db'}", f"sqlite:///{root / 'k.db'}", key=os.urandom(32)
    )
    try:
        store.initialize()
        user = store.create_user("oracle@example.org")
        with h.health(store, user.user_id) as s:
            result = ingest(s, iter(ITEMS), source="harness", input_sha256=SHA, batch_records=7)
            content = h.canonical(s)
    finally:
        store.close()
    assert result.items == N
    assert sum(result.imported.values()) == len(RECORD_IDS)
    assert result.samples == h.samples_in(ITEMS)
    return {"content": content, "imported": result.imported, "samples": result.samples}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An initialised SQLite store with one user, copied afresh for every example."""
    root = tmp_path_factory.mktemp("ingest-template")
    key = os.urandom(32)
    store = h.open_store(
        f"sqlite:///{root / 'data.db'}", f"sqlite:///{root / 'keystore.db'}", key=key
    )
    try:
        store.initialize()
        user = store.create_user("kill@example.org")
    finally:
        store.close()
    return {"root": root, "key": key, "user_id": user.user_id}


def _fresh_sqlite(template: dict[str, Any], parent: Path) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(dir=parent))
    for f in template["root"].iterdir():
        shutil.copy2(f, root / f.name)
    return {
        "root": root,
        "data_url": f"sqlite:///{root / 'data.db'}",
        "keystore_url": f"sqlite:///{root / 'keystore.db'}",
        "key": template["key"],
        "user_id": template["user_id"],
        "db": root / "data.db",
    }


# -- the harness ------------------------------------------------------------------------------


def _spec(
    env: dict[str, Any],
    work: Path,
    *,
    kill_at: int | None,
    batch_records: int,
    batch_samples: int,
    stream: dict[str, Any] = STREAM,
    sha: str = SHA,
    name: str = "run",
) -> dict[str, Any]:
    return {
        "data_url": env["data_url"],
        "keystore_url": env["keystore_url"],
        "key": env["key"].hex(),
        "user_id": env["user_id"],
        "stream": stream,
        "sha": sha,
        "kill_at": kill_at,
        "batch_records": batch_records,
        "batch_samples": batch_samples,
        "ack": str(work / f"{name}.ack"),
        "result": str(work / f"{name}.json"),
    }


def _acks(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _open(env: dict[str, Any]) -> Store:
    return h.open_store(env["data_url"], env["keystore_url"], key=env["key"])


def _jobs(store: Store, user_id: str) -> list[Any]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(import_jobs).where(import_jobs.c.user_id == user_id)).all()
        conn.rollback()
    return list(rows)


def _raw_job_content(store: Store, user_id: str, job_id: str) -> tuple[set[str], int, int]:
    """(source ids of the job's raw record rows, decrypted; its file rows; the samples in
    its pending series chunks) - everything the job committed, visible or not."""
    with h.health(store, user_id) as s, store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(records.c.record_id, records.c.payload).where(
                records.c.user_id == user_id, records.c.job_id == job_id
            )
        ).all()
        ids = {
            record_from_json(
                s.decrypt(bytes(r.payload), table="records", row_id=r.record_id, column="payload")
            ).source_id
            for r in rows
        }
        n_files = conn.execute(
            sa.select(sa.func.count())
            .select_from(files)
            .where(files.c.user_id == user_id, files.c.job_id == job_id)
        ).scalar()
        pending = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(series_chunks.c.n), 0)).where(
                series_chunks.c.user_id == user_id, series_chunks.c.job_key == job_id
            )
        ).scalar()
        visible_chunks = conn.execute(
            sa.select(sa.func.count())
            .select_from(series_chunks)
            .where(series_chunks.c.user_id == user_id, series_chunks.c.job_key == "")
        ).scalar()
        conn.rollback()
    assert visible_chunks == 0, "samples of an unfinished job became visible"
    return ids, int(n_files or 0), int(pending or 0)


def _check_after_kill(env: dict[str, Any], acked: int) -> str | None:
    """The state right after the kill; returns the interrupted job's id (None if no
    batch was committed)."""
    if "db" in env:
        integrity, fks = h.sqlite_checks(env["db"])
        assert integrity == [("ok",)]
        assert fks == []
    store = _open(env)
    try:
        uid = env["user_id"]
        with h.health(store, uid) as s:
            # Nothing of an unfinished job is visible.
            assert RecordRepository(s).list() == []
            assert RecordRepository(s).count_by_kind() == {}
            assert all(SeriesRepository(s).daily(m) == [] for m in h.METRICS)
        jobs = _jobs(store, uid)
        if acked == 0:
            assert jobs == [], "a job row without any committed batch"
            with store.engine.connect() as conn:
                n = conn.execute(
                    sa.select(sa.func.count()).select_from(records).where(records.c.user_id == uid)
                ).scalar()
                conn.rollback()
            assert n == 0
            return None
        assert len(jobs) == 1
        job = jobs[0]
        assert job.status in ("running", "interrupted")
        assert job.cursor == acked, "the job cursor must be the last acknowledged item count"
        # Every acknowledged item is durably stored under the job (and nothing later).
        done = ITEMS[:acked]
        ids, n_files, pending = _raw_job_content(store, uid, job.job_id)
        assert ids == {h.source_id_of(i) for i in done if h.is_record(i)}
        assert n_files == sum(1 for i in done if isinstance(getattr(i, "record", None), Document))
        assert pending == h.samples_in(done)
        return str(job.job_id)
    finally:
        store.close()


def _resume_and_compare(
    env: dict[str, Any],
    work: Path,
    oracle: dict[str, Any],
    *,
    acked: int,
    job_id: str | None,
    batch_records: int,
    batch_samples: int,
    fresh: bool,
) -> None:
    spec = _spec(
        env,
        work,
        kill_at=None,
        batch_records=batch_records,
        batch_samples=batch_samples,
        name="resume",
    )
    code = h.run_fresh("ingest", spec).returncode if fresh else h.run_forked("ingest", spec)
    assert code == 0
    result = json.loads(Path(spec["result"]).read_text())
    assert result["resumed_from"] == acked
    if job_id is not None:
        assert result["job_id"] == job_id, "the interrupted job must be resumed, not restarted"
    assert result["items"] == N
    assert result["imported"] == oracle["imported"]
    assert result["samples"] == oracle["samples"]
    assert result["skipped_duplicates"] == 0
    if "db" in env:
        integrity, fks = h.sqlite_checks(env["db"])
        assert integrity == [("ok",)]
        assert fks == []
    store = _open(env)
    try:
        jobs = _jobs(store, env["user_id"])
        assert [(j.status, j.cursor) for j in jobs] == [("complete", N)]
        with h.health(store, env["user_id"]) as s:
            assert h.digest(h.canonical(s)) == h.digest(oracle["content"])
            assert h.canonical(s) == oracle["content"]
            again = ingest(
                s, iter(ITEMS), source="harness", input_sha256=SHA, batch_records=batch_records
            )
            assert again.imported == {}
            assert again.skipped_duplicates == len(RECORD_IDS)
            assert again.samples == 0
            assert again.updated == 0
            assert h.canonical(s) == oracle["content"]
    finally:
        store.close()


def _kill_resume(
    env: dict[str, Any],
    work: Path,
    oracle: dict[str, Any],
    *,
    kill_at: int,
    batch_records: int,
    batch_samples: int,
    fresh: bool = False,
) -> None:
    spec = _spec(
        env,
        work,
        kill_at=kill_at,
        batch_records=batch_records,
        batch_samples=batch_samples,
        name="kill",
    )
    code = h.run_fresh("ingest", spec).returncode if fresh else h.run_forked("ingest", spec)
    assert code == -9, f"the import child should have died by SIGKILL, exit code {code}"
    acks = _acks(Path(spec["ack"]))
    assert acks == sorted(set(acks)), "acks must increase"
    assert all(a < kill_at for a in acks), "an item was acknowledged before it was read"
    acked = acks[-1] if acks else 0
    job_id = _check_after_kill(env, acked)
    _resume_and_compare(
        env,
        work,
        oracle,
        acked=acked,
        job_id=job_id,
        batch_records=batch_records,
        batch_samples=batch_samples,
        fresh=fresh,
    )


BATCH_RECORDS = st.sampled_from([1, 3, 7, 10])
BATCH_SAMPLES = st.sampled_from([4, 12, 1000])


@settings(max_examples=50, deadline=None)
@given(kill_at=st.integers(1, N + 1), batch_records=BATCH_RECORDS, batch_samples=BATCH_SAMPLES)
def test_sigkill_mid_import_loses_nothing_sqlite(
    kill_at: int,
    batch_records: int,
    batch_samples: int,
    template: dict[str, Any],
    oracle: dict[str, Any],
    tmp_path: Path,
) -> None:
    env = _fresh_sqlite(template, tmp_path)
    try:
        _kill_resume(
            env,
            env["root"],
            oracle,
            kill_at=kill_at,
            batch_records=batch_records,
            batch_samples=batch_samples,
        )
    finally:
        shutil.rmtree(env["root"], ignore_errors=True)


def test_sigkill_mid_import_fresh_interpreter(
    template: dict[str, Any], oracle: dict[str, Any], tmp_path: Path
) -> None:
    """The same, with both runs in a fresh ``python -m`` interpreter (no forkserver)."""
    env = _fresh_sqlite(template, tmp_path)
    _kill_resume(
        env, env["root"], oracle, kill_at=33, batch_records=7, batch_samples=1000, fresh=True
    )


@pytest.fixture(scope="module")
def pg_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A PostgreSQL data database (own schema) and an SQLite keystore; one user per example."""
    from tests.conftest import PG_URL, _require_postgres

    _require_postgres()
    from urllib.parse import quote

    schema = "hs_kill_" + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    root = tmp_path_factory.mktemp("pg-ingest")
    sep = "&" if "?" in PG_URL else "?"
    env = {
        "data_url": f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}",
        "keystore_url": f"sqlite:///{root / 'keystore.db'}",
        "key": os.urandom(32),
        "root": root,
    }
    store = _open(env)
    try:
        store.initialize()
    finally:
        store.close()
    try:
        yield env
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.mark.postgres
@settings(max_examples=8, deadline=None)
@given(kill_at=st.integers(1, N + 1), batch_records=BATCH_RECORDS, batch_samples=BATCH_SAMPLES)
def test_sigkill_mid_import_loses_nothing_postgres(
    kill_at: int,
    batch_records: int,
    batch_samples: int,
    pg_env: dict[str, Any],
    oracle: dict[str, Any],
) -> None:
    store = _open(pg_env)
    try:
        user = store.create_user(f"kill-{secrets.token_hex(4)}@example.org")
    finally:
        store.close()
    env = dict(pg_env, user_id=user.user_id)
    work = Path(tempfile.mkdtemp(dir=pg_env["root"]))
    _kill_resume(
        env, work, oracle, kill_at=kill_at, batch_records=batch_records, batch_samples=batch_samples
    )


# -- failures that are not kills ------------------------------------------------------------


class Boom(Exception):
    pass


def _failing(items: list[Any], at: int, exc: BaseException) -> Iterator[Any]:
    for index, item in enumerate(items, start=1):
        if index == at:
            raise exc
        yield item


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("bad value in the input"), IngestError),
        (SourceError("export.xml: line 12: not a number"), SourceError),
    ],
    ids=["ValueError", "SourceError"],
)
def test_iterator_error_rolls_the_job_back(
    store: Store, exc: Exception, expected: type[Exception]
) -> None:
    """An exception half-way through: it propagates and every table but the audit log
    is exactly as before (the committed batches, pending chunks and the job row are
    gone; records changed by the failed input keep their old version)."""
    user = store.create_user(f"fail-{secrets.token_hex(4)}@example.org")
    with h.health(store, user.user_id) as s:
        ingest(s, iter(ITEMS), source="harness", input_sha256=SHA, batch_records=7)
        before_content = h.canonical(s)
    before = h.table_rows(store.engine, exclude=("audit_log",))
    # Same identities with new values (deferred updates), new records, and samples on
    # days that already have visible chunks: all of it in flight when the error hits.
    changed = h.stream(N, tag="s", value_shift=1000.0) + h.stream(30, tag="new")
    with h.health(store, user.user_id) as s:
        with pytest.raises(expected) as info:
            ingest(
                s,
                _failing(changed, 75, exc),
                source="harness",
                input_sha256="b" * 64,
                batch_records=7,
            )
        if expected is SourceError:
            assert info.value is exc
        else:
            assert isinstance(info.value.__cause__, ValueError)
        assert h.canonical(s) == before_content
    assert h.table_rows(store.engine, exclude=("audit_log",)) == before
    with store.engine.connect() as conn:
        trail = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.outcome).where(
                audit_log.c.user_id == user.user_id
            )
        ).all()
        conn.rollback()
    assert ("import.failed", "failed") in {tuple(r) for r in trail}


# -- interrupted jobs and the jobs that come after them ---------------------------------------


def _kill_job(
    env: dict[str, Any],
    work: Path,
    *,
    stream: dict[str, Any],
    sha: str,
    kill_at: int,
    batch_records: int = 7,
) -> int:
    spec = _spec(
        env,
        work,
        kill_at=kill_at,
        batch_records=batch_records,
        batch_samples=1000,
        stream=stream,
        sha=sha,
        name=f"kill-{sha[:4]}",
    )
    assert h.run_forked("ingest", spec) == -9
    acks = _acks(Path(spec["ack"]))
    assert acks, "the test needs at least one committed batch before the kill"
    return acks[-1]


def test_resume_keeps_updates_committed_before_the_kill(
    template: dict[str, Any], tmp_path: Path
) -> None:
    """Re-importing a changed export (same identities, new values) is killed after a
    few batches and resumed: the result must equal an uninterrupted import of it."""
    env = _fresh_sqlite(template, tmp_path)
    v1 = {"n": N, "tag": "s", "canary": ""}
    v2 = {"n": N, "tag": "s", "canary": "", "value_shift": 1000.0}
    store = _open(env)
    try:
        with h.health(store, env["user_id"]) as s:
            ingest(s, iter(h.stream(**v1)), source="harness", input_sha256="1" * 64)
    finally:
        store.close()
    acked = _kill_job(env, env["root"], stream=v2, sha="2" * 64, kill_at=40)
    store = _open(env)
    try:
        with h.health(store, env["user_id"]) as s:
            result = ingest(
                s, iter(h.stream(**v2)), source="harness", input_sha256="2" * 64, batch_records=7
            )
            assert result.resumed_from == acked
            got = h.canonical(s)
    finally:
        store.close()

    oracle = _fresh_sqlite(template, tmp_path)
    store = _open(oracle)
    try:
        with h.health(store, oracle["user_id"]) as s:
            ingest(s, iter(h.stream(**v1)), source="harness", input_sha256="1" * 64)
            ingest(s, iter(h.stream(**v2)), source="harness", input_sha256="2" * 64)
            expected = h.canonical(s)
    finally:
        store.close()
    stale = [r for r in got["records"] if r not in expected["records"]]
    assert got == expected, f"{len(stale)} records kept their old version after the resume"


def test_a_new_import_does_not_hide_records_behind_an_unfinished_job(
    template: dict[str, Any], tmp_path: Path
) -> None:
    """Export A is killed half-way; the person exports again (a new file, same records
    plus more) and imports that. Every record of the completed import must be visible,
    whether or not A is ever resumed."""
    env = _fresh_sqlite(template, tmp_path)
    a = {"n": N, "tag": "s", "canary": ""}
    _kill_job(env, env["root"], stream=a, sha="a1" * 32, kill_at=40)
    b_items = h.stream(N + 20, tag="s")
    store = _open(env)
    try:
        with h.health(store, env["user_id"]) as s:
            result = ingest(s, iter(b_items), source="harness", input_sha256="b1" * 32)
            visible = {r.record.source_id for r in RecordRepository(s).list()}
    finally:
        store.close()
    expected = {h.source_id_of(i) for i in b_items if h.is_record(i)}
    assert result.items == len(b_items)
    assert visible == expected, (
        f"{len(expected - visible)} records of a completed import are invisible "
        f"(counted as duplicates of the unfinished job: skipped={result.skipped_duplicates})"
    )


def test_discarding_an_interrupted_job_keeps_files_that_others_use(
    template: dict[str, Any], tmp_path: Path
) -> None:
    """A document's file is stored once per content. Job A is killed after storing a
    file; job B (another input) imports a document with the same file and completes;
    A is then re-run and fails. B's document must still open its file."""
    env = _fresh_sqlite(template, tmp_path)
    a = {"n": 30, "tag": "s", "canary": ""}  # item 14 is a document (index 13)
    _kill_job(env, env["root"], stream=a, sha="a2" * 32, kill_at=25)
    a_items = h.stream(**a)
    shared = next(i for i in a_items if isinstance(getattr(i, "record", None), Document))
    twin = h.document("other:doc", shared.file)
    store = _open(env)
    try:
        with h.health(store, env["user_id"]) as s:
            ingest(s, [twin], source="other", input_sha256="b2" * 32)
            before = h.canonical(s)
            with pytest.raises(IngestError):
                ingest(
                    s,
                    _failing(a_items, 28, ValueError("bad")),
                    source="harness",
                    input_sha256="a2" * 32,
                    batch_records=7,
                )
            # canonical() reads every document's file through FileRepository.
            assert h.canonical(s) == before
    finally:
        store.close()


def test_same_process_can_resume_after_an_interrupt(store: Store) -> None:
    """KeyboardInterrupt (or any BaseException, e.g. a cancelled task) half-way leaves
    the job interrupted; importing the same input again in the same process resumes it
    instead of reporting that another process is importing it."""
    user = store.create_user(f"ki-{secrets.token_hex(4)}@example.org")
    with h.health(store, user.user_id) as s:
        with pytest.raises(KeyboardInterrupt):
            ingest(
                s,
                _failing(ITEMS, 40, KeyboardInterrupt()),
                source="harness",
                input_sha256=SHA,
                batch_records=7,
            )
        assert RecordRepository(s).list() == []
        result = ingest(s, iter(ITEMS), source="harness", input_sha256=SHA, batch_records=7)
        assert result.items == N
        assert sum(result.imported.values()) == len(RECORD_IDS)
        assert len(RecordRepository(s).list()) == len(RECORD_IDS)


def test_ack_matches_batches(template: dict[str, Any], tmp_path: Path) -> None:
    """The progress callback runs after every batch commit with the items done, and
    once more at completion with the total."""
    env = _fresh_sqlite(template, tmp_path)
    store = _open(env)
    calls: list[int] = []
    try:
        with h.health(store, env["user_id"]) as s:
            ingest(
                s,
                iter(ITEMS),
                source="harness",
                input_sha256=SHA,
                progress=calls.append,
                batch_records=7,
                batch_samples=10**6,
            )
    finally:
        store.close()
    seen, expected = 0, []
    for index, item in enumerate(ITEMS, start=1):
        if h.is_record(item):
            seen += 1
            if seen % 7 == 0:
                expected.append(index)
    assert calls == [*expected, N]
