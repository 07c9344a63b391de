"""Shared pieces of the crash, backup and rotation tests (T-ENC-9, T-REL-1, T-REL-4).

- Deterministic input streams (observations, documents with files, samples, batches).
- Canonical content of a space: decrypted records (with file and original bytes
  replaced by their hashes), series day aggregates and samples; hashed for comparison.
- Raw-table snapshots and SQLite integrity checks.
- Child processes that SIGKILL themselves at a chosen point:

  * ``python -m tests.store._harness rotate SPEC_JSON`` (a fresh interpreter) runs a
    root key rotation and kills itself at a checkpoint step;
  * :func:`ingest_child` runs one import job and kills itself at input item K. It runs
    either in a fresh interpreter (``python -m tests.store._harness ingest SPEC_JSON``)
    or, to keep hypothesis examples cheap, in a process forked from a multiprocessing
    forkserver that has the modules preloaded (:func:`run_forked`). Either way it is a
    separate process that dies by a real SIGKILL, with no chance to clean up.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from healthspace.model import (
    LOINC,
    Code,
    Document,
    Observation,
    PartialDateTime,
    Quantity,
    QuantityValue,
    Sample,
    SampleBatch,
    record_to_json,
)
from healthspace.model.item import Attached
from healthspace.store import (
    FileRepository,
    HealthGrant,
    RecordRepository,
    SeriesRepository,
    Space,
    SpaceSession,
    Store,
    ingest,
)
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.store.series import DAY_MS
from healthspace.store.tables import data_keys, metadata
from healthspace.vault import KeyFileSource, MemoryKeySource, Vault

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("heart_rate", "steps")
BASE_DAY = 19_723  # 2024-01-01
T0 = BASE_DAY * DAY_MS
END_MS = 4_102_444_800_000  # 2100-01-01: samples(0, END_MS) is "all of them"
GRANT = HealthGrant.operator("test")

Item = Observation | Attached | Sample | SampleBatch


# -- input streams ---------------------------------------------------------------------


def observation(
    source_id: str, value: float, *, day: int = 2, note: str | None = None
) -> Observation:
    return Observation(
        source_id=source_id,
        code=Code(system=LOINC, code="2093-3", display="Cholesterol"),
        value=QuantityValue(quantity=Quantity(value=value, unit="mg/dL")),
        effective=PartialDateTime.parse(f"2024-01-{day:02d}"),
        note=note,
    )


def document(source_id: str, data: bytes, *, note: str | None = None) -> Attached:
    doc = Document(
        source_id=source_id,
        title=f"report {source_id}",
        media_type="application/pdf",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        date=PartialDateTime.parse("2024-01-05"),
        note=note,
    )
    return Attached(
        doc,
        original=b'{"resourceType":"DocumentReference","id":"' + source_id.encode() + b'"}',
        file=data,
    )


def stream(
    n: int = 60, *, tag: str = "s", value_shift: float = 0.0, canary: str = ""
) -> list[Item]:
    """A deterministic input of ``n`` items: mostly observations, some documents with a
    file, single samples and small sample batches, spread over several days."""
    items: list[Item] = []
    for i in range(n):
        if i % 10 == 4:
            items.append(Sample("heart_rate", T0 + i * 3_600_000, 60.0 + i, 0, "watch"))
        elif i % 15 == 9:
            t = T0 + i * 3_600_000 + np.arange(5, dtype=np.int64) * 60_000
            items.append(
                SampleBatch(
                    "steps", "{steps}", t, np.full(5, 60_000), np.arange(5) + i * 10.0, "phone"
                )
            )
        elif i % 20 == 13:
            items.append(
                document(
                    f"{tag}:doc:{i}", f"%PDF-1.4 {tag} {i} {canary}".encode(), note=canary or None
                )
            )
        else:
            items.append(
                observation(
                    f"{tag}:lab:{i}", 150.0 + i + value_shift, day=1 + i % 20, note=canary or None
                )
            )
    return items


def is_record(item: Item) -> bool:
    return isinstance(item, Observation | Attached)


def source_id_of(item: Item) -> str:
    return item.record.source_id if isinstance(item, Attached) else item.source_id  # type: ignore[union-attr]


def samples_in(items: Sequence[Item]) -> int:
    return sum(
        len(i) if isinstance(i, SampleBatch) else 1
        for i in items
        if isinstance(i, Sample | SampleBatch)
    )


# -- stores ----------------------------------------------------------------------------


def open_store(
    data_url: str,
    keystore_url: str,
    *,
    key: bytes | None = None,
    key_file: Path | None = None,
    actor: str = "test",
) -> Store:
    """A store over existing databases, with a fresh root key source object."""
    source = KeyFileSource(key_file) if key_file is not None else MemoryKeySource(key)
    return Store(
        create_engine(data_url), Vault(source), KeyStore(create_engine(keystore_url)), actor=actor
    )


def health(store: Store, user_id: str) -> SpaceSession:
    return store.open_session(user_id, Space.HEALTH, grant=GRANT)


def memory_root_keys(source: MemoryKeySource) -> list[bytes]:
    """The raw root keys a MemoryKeySource holds (test-only introspection)."""
    return list(source._keys.values())


def wrapped_keys(keystore: KeyStore) -> list[tuple[str, str, int, str, bytes]]:
    with keystore.engine.connect() as conn:
        rows = conn.execute(sa.select(data_keys)).all()
        conn.rollback()
    return sorted((r.user_id, r.space, r.version, r.kek_id, bytes(r.wrapped)) for r in rows)


# -- canonical content -----------------------------------------------------------------


def canonical(session: SpaceSession, *, with_samples: bool = True) -> dict[str, Any]:
    """What a person sees in one space, independent of row ids and keys.

    Records sorted by (kind, JSON); a document's ``content_ref`` (a random file id) is
    replaced by the hash of the file it points to, which must exist and decrypt; the
    original bytes are kept as a hash too. Series as day aggregates and samples.
    """
    repo = RecordRepository(session)
    files = FileRepository(session)
    recs: list[tuple[str, str, str | None]] = []
    for stored in repo.list():
        record = stored.record
        if isinstance(record, Document) and record.content_ref is not None:
            blob = files.read(record.content_ref)
            record = record.model_copy(
                update={"content_ref": "sha256:" + hashlib.sha256(blob).hexdigest()}
            )
        original = repo.original(stored.record_id)
        recs.append(
            (
                stored.kind,
                record_to_json(record).decode(),
                None if original is None else hashlib.sha256(original).hexdigest(),
            )
        )
    recs.sort()
    series = SeriesRepository(session)
    out: dict[str, Any] = {"records": recs, "daily": {}, "samples": {}}
    for metric in METRICS:
        out["daily"][metric] = [
            (a.day.isoformat(), a.n, round(a.sum, 6), a.min, a.max) for a in series.daily(metric)
        ]
        if with_samples:
            data = series.samples(metric, 0, END_MS)
            out["samples"][metric] = [
                data.t_ms.tolist(),
                data.duration_ms.tolist(),
                data.values.tolist(),
            ]
    return out


def digest(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def store_canonical(store: Store, user_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """Canonical content of every user's health and general space, keyed by email."""
    out: dict[str, Any] = {}
    for user in store.list_users():
        if user_ids is not None and user.user_id not in user_ids:
            continue
        spaces = {}
        for space in Space:
            with store.open_session(
                user.user_id, space, grant=GRANT if space is Space.HEALTH else None
            ) as s:
                spaces[space.value] = canonical(s)
        out[user.email] = spaces
    return out


# -- raw tables and SQLite checks ------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def table_rows(
    engine: sa.Engine, *, exclude: Sequence[str] = ()
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every store table (sorted, bytes as bytes), for before/after equality."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    names = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in exclude:
                continue
            if table.name not in names:
                out[table.name] = []
                continue
            rows = conn.execute(sa.select(table)).all()
            out[table.name] = sorted((tuple(_plain(v) for v in r) for r in rows), key=repr)
        conn.rollback()
    return out


def sqlite_checks(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(``PRAGMA integrity_check`` rows, ``PRAGMA foreign_key_check`` rows) of a file."""
    conn = sqlite3.connect(path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        fks = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    return integrity, fks


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- child processes ----------------------------------------------------------------------


def _append_line(path: str, line: str) -> None:
    # The ack is durable before the child goes on: SIGKILL cannot take it back.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def rotate_child(spec: dict[str, Any]) -> None:
    """Rotate the root key; SIGKILL at occurrence ``kill_occurrence`` of ``kill_step``.

    Each checkpoint first appends "<step> <key file mode>" to the trace file. With
    ``kill_replace`` = n, the child dies just before the n-th atomic key-file replace.
    """
    key_file = Path(spec["key_file"])
    trace = spec["trace"]
    seen: dict[str, int] = {}
    replace_calls = [0]
    kill_replace = spec.get("kill_replace")
    if kill_replace:
        real_replace = os.replace

        def replace(src: Any, dst: Any) -> None:
            replace_calls[0] += 1
            if replace_calls[0] == kill_replace:
                _append_line(trace, f"replace#{kill_replace} {mode_of(key_file):o}")
                _die()
            real_replace(src, dst)

        os.replace = replace  # type: ignore[assignment]

    def checkpoint(step: str) -> None:
        seen[step] = seen.get(step, 0) + 1
        _append_line(trace, f"{step} {mode_of(key_file):o}")
        if step == spec.get("kill_step") and seen[step] == spec.get("kill_occurrence", 1):
            _die()

    store = open_store(spec["data_url"], spec["keystore_url"], key_file=key_file, actor="rotator")
    try:
        store.rotate_root_key(checkpoint=checkpoint)
    finally:
        store.close()


def ingest_child(spec: dict[str, Any]) -> None:
    """Import ``stream(**spec['stream'])`` as one job; SIGKILL when about to yield item
    ``kill_at`` (1-based; len+1 = after the last item, before completion). Acks every
    progress callback (called after each batch commit) to ``ack`` before going on, and
    writes the IngestResult as JSON to ``result`` when the job completes."""
    items = stream(**spec["stream"])
    kill_at = spec.get("kill_at")

    def source() -> Iterator[Item]:
        for index, item in enumerate(items, start=1):
            if index == kill_at:
                _die()
            yield item
        if kill_at == len(items) + 1:
            _die()

    def progress(done: int) -> None:
        _append_line(spec["ack"], str(done))

    store = open_store(spec["data_url"], spec["keystore_url"], key=bytes.fromhex(spec["key"]))
    try:
        with health(store, spec["user_id"]) as session:
            result = ingest(
                session,
                source(),
                source="harness",
                input_sha256=spec["sha"],
                progress=progress,
                batch_records=spec["batch_records"],
                batch_samples=spec["batch_samples"],
            )
    finally:
        store.close()
    Path(spec["result"]).write_text(
        json.dumps(
            {
                "job_id": result.job_id,
                "imported": result.imported,
                "updated": result.updated,
                "skipped_duplicates": result.skipped_duplicates,
                "samples": result.samples,
                "items": result.items,
                "resumed_from": result.resumed_from,
            }
        )
    )


_CHILDREN: dict[str, Callable[[dict[str, Any]], None]] = {
    "rotate": rotate_child,
    "ingest": ingest_child,
}


def run_fresh(
    name: str, spec: dict[str, Any], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a child in a fresh interpreter: ``python -m tests.store._harness NAME SPEC``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHSPACE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "tests.store._harness", name, json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


_FORKSERVER: list[Any] = []


def run_forked(name: str, spec: dict[str, Any], *, timeout: float = 120) -> int:
    """Run a child forked from a forkserver with this module preloaded; its exit code
    (negative: killed by that signal)."""
    if not _FORKSERVER:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["tests.store._harness"])
        _FORKSERVER.append(ctx)
    proc = _FORKSERVER[0].Process(target=_CHILDREN[name], args=(spec,))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise AssertionError(f"child {name} did not finish within {timeout} s")
    code = int(proc.exitcode)
    proc.close()
    return code


def main(argv: list[str]) -> int:
    name, spec = argv[0], json.loads(argv[1])
    _CHILDREN[name](spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
