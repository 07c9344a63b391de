"""T-REL-4 (online backup and restore within budget), restore errors, and the T-DEL-1
interplay of backups with crypto-shredding. SQLite and PostgreSQL where it matters.

- A backup taken while writers keep importing restores into a fresh store as a
  consistent snapshot: whole jobs only, a prefix of the writer's jobs, nothing of a job
  that was mid-flight; a quiet backup restores to exactly equal canonical content.
- The backup file holds no plaintext canary and no key material.
- Restore refuses (BackupError, target untouched) a wrong root key, a foreign keystore,
  a store that has users, and files that are not backups.
- An account deleted after the backup stays deleted when that backup is restored.
- The CLI round trip, and the CLI failure without the key file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from healthspace.errors import BackupError, IntegrityError, KeyNotFoundError, UserNotFoundError
from healthspace.model import SampleBatch
from healthspace.settings import load_settings
from healthspace.store import RecordRepository, Space, Store, User, ingest, open_store, verify_chain
from healthspace.store.backup import backup, restore
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.store.series import DAY_MS
from healthspace.store.tables import import_jobs, metadata
from healthspace.vault import KeyFileSource, MemoryKeySource, SpaceKeys, Vault
from healthspace.vault.vault import _wrap_context
from tests.store import _harness as h

RESTORE_BUDGET_S = 60.0
WRITER_MAX_JOBS = 400


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Makes URLs of new, empty databases on the same engine as ``database_url``."""
    schemas: list[str] = []
    admin: list[sa.Engine] = []

    def make(name: str) -> str:
        if database_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / f'{name}.db'}"
        from tests.conftest import PG_URL

        if not admin:
            admin.append(sa.create_engine(PG_URL))
        schema = "hs_restore_" + secrets.token_hex(6)
        with admin[0].begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        sep = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"

    yield make
    if admin:
        with admin[0].begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin[0].dispose()


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


@contextlib.contextmanager
def _target(url: str, root: Any, keystore: KeyStore) -> Iterator[Store]:
    st = Store(create_engine(url), Vault(root), keystore, actor="restorer")
    try:
        yield st
    finally:
        st.engine.dispose()


def _assert_empty(st: Store) -> None:
    """No table has a row (or the schema was never created)."""
    present = set(sa.inspect(st.engine).get_table_names())
    with st.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in present:
                n = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                assert n == 0, f"restore left {n} rows in {table.name}"
        conn.rollback()


def _populate(st: Store, email: str, *, canary: str, n: int = 40, tag: str = "s") -> User:
    user = st.create_user(email)
    with h.health(st, user.user_id) as s:
        ingest(s, iter(h.stream(n, tag=tag, canary=canary)), source="test", batch_records=7)
    with st.open_session(user.user_id, Space.GENERAL) as s:
        ingest(s, [h.observation(f"{tag}:gen:1", 42.0, note=canary)], source="test")
    return user


def _check_sqlite_file(url: str) -> None:
    path = _sqlite_path(url)
    if path is not None:
        integrity, fks = h.sqlite_checks(path)
        assert integrity == [("ok",)]
        assert fks == []


def _timed_restore(st: Store, path: Path) -> dict[str, int]:
    started = time.monotonic()
    counts = restore(st, path)
    elapsed = time.monotonic() - started
    assert elapsed < RESTORE_BUDGET_S, f"restore took {elapsed:.1f} s"
    return counts


# -- T-REL-4: online backup under a write load ----------------------------------------------


def _writer_job(j: int) -> list[Any]:
    """Writer job j: five records and a sample batch on a day of its own."""
    day_ms = (h.BASE_DAY + 100 + j) * DAY_MS
    return [
        *(h.observation(f"w{j}:{k}", 100.0 + j + k / 10) for k in range(5)),
        SampleBatch(
            "heart_rate",
            "/min",
            [day_ms + 60_000 * k for k in range(3)],
            [0, 0, 0],
            [70.0 + j, 71.0, 72.0],
            "watch",
        ),
    ]


class _Writers:
    """W1 imports job after job into B until told to stop; W2 starts one job into A and
    stays parked after its first committed batch until the backup is done."""

    def __init__(self, st: Store, a: User, b: User) -> None:
        self.st, self.a, self.b = st, a, b
        self.completed = 0
        self.errors: list[BaseException] = []
        self.two_done = threading.Event()
        self.parked = threading.Event()
        self.release = threading.Event()
        self.stop = threading.Event()
        self.w2_job: list[str] = []
        self.threads = [threading.Thread(target=self._w1), threading.Thread(target=self._w2)]

    def _w1(self) -> None:
        try:
            with h.health(self.st, self.b.user_id) as s:
                for j in range(WRITER_MAX_JOBS):
                    if self.stop.is_set():
                        break
                    ingest(s, _writer_job(j), source="writer", input_sha256=f"w1-{j}")
                    self.completed = j + 1
                    if j == 1:
                        # Let W2 get its first batch in, then write on during the backup.
                        self.two_done.set()
                        if not self.parked.wait(60):
                            raise TimeoutError("W2 never parked")
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.two_done.set()

    def _w2(self) -> None:
        def park(done: int) -> None:
            if not self.parked.is_set():
                self.parked.set()
                if not self.release.wait(60):
                    raise TimeoutError("the backup never finished")

        try:
            with h.health(self.st, self.a.user_id) as s:
                result = ingest(
                    s,
                    [h.observation(f"inflight:{k}", 1.0 + k) for k in range(9)],
                    source="writer",
                    input_sha256="w2",
                    progress=park,
                    batch_records=3,
                )
                self.w2_job.append(result.job_id)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.parked.set()

    def __enter__(self) -> _Writers:
        self.threads[0].start()
        assert self.two_done.wait(60)
        self.threads[1].start()
        assert self.parked.wait(60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.release.set()
        for t in self.threads:
            t.join(120)
        assert not any(t.is_alive() for t in self.threads)


def test_online_backup_under_write_load_restores_a_consistent_snapshot(
    store: Store,
    root_source: MemoryKeySource,
    keystore: KeyStore,
    fresh_url: Callable[[str], str],
    canary: str,
    tmp_path: Path,
) -> None:
    a = _populate(store, "a@example.org", canary=canary, n=300)
    b = store.create_user("b@example.org")
    with h.health(store, a.user_id) as s:
        a_before = h.canonical(s)
    with _Writers(store, a, b) as writers:
        before_backup = writers.completed
        path = backup(store, tmp_path / "online.hsbak")
        after_backup = writers.completed
    assert writers.errors == []

    url = fresh_url("online")
    with _target(url, root_source, keystore) as target:
        counts = _timed_restore(target, path)
        assert counts["skipped_deleted_users"] == 0
        _check_sqlite_file(url)
        assert verify_chain(target.engine).ok
        # A: the job that was mid-flight during the snapshot is there, unfinished and
        # invisible; A reads exactly as before it started.
        with target.engine.connect() as conn:
            parked = conn.execute(
                sa.select(import_jobs.c.status).where(import_jobs.c.job_id == writers.w2_job[0])
            ).scalar()
            conn.rollback()
        assert parked == "running"
        with h.health(target, a.user_id) as s:
            assert h.canonical(s) == a_before
        # B: whole jobs only, and a prefix of the writer's jobs.
        with h.health(target, b.user_id) as s:
            got = h.canonical(s)
            ids = [r.record.source_id for r in RecordRepository(s).list()]
    jobs: dict[int, int] = {}
    for source_id in ids:
        j = int(source_id.split(":")[0][1:])
        jobs[j] = jobs.get(j, 0) + 1
    m = len(jobs)
    assert sorted(jobs) == list(range(m)), "restored jobs are not a prefix of the writer's jobs"
    assert all(n == 5 for n in jobs.values()), f"a job was restored in part: {jobs}"
    # W1 counts a job once ingest returned: one job may have committed before the
    # snapshot and still be on its way back when the backup returned.
    assert before_backup <= m <= after_backup + 1

    # The restored B equals those m jobs imported on their own into a fresh store.
    oracle_url = f"sqlite:///{tmp_path / 'oracle.db'}"
    oracle = h.open_store(
        oracle_url, f"sqlite:///{tmp_path / 'oracle-keys.db'}", key=os.urandom(32)
    )
    try:
        oracle.initialize()
        ob = oracle.create_user("b@example.org")
        with h.health(oracle, ob.user_id) as s:
            for j in range(m):
                ingest(s, _writer_job(j), source="writer", input_sha256=f"w1-{j}")
            expected = h.canonical(s)
    finally:
        oracle.close()
    assert h.digest(got) == h.digest(expected)


def test_quiet_backup_restores_to_equal_content(
    store: Store,
    root_source: MemoryKeySource,
    keystore: KeyStore,
    fresh_url: Callable[[str], str],
    canary: str,
    tmp_path: Path,
) -> None:
    for n, email in enumerate(("a@example.org", "b@example.org", "c@example.org")):
        _populate(store, email, canary=canary, n=40 + 10 * n, tag=f"u{n}")
    source = h.store_canonical(store)
    path = backup(store, tmp_path / "quiet.hsbak")
    url = fresh_url("quiet")
    with _target(url, root_source, keystore) as target:
        counts = _timed_restore(target, path)
        _check_sqlite_file(url)
        assert verify_chain(target.engine).ok
        assert counts["users"] == 3
        restored = h.store_canonical(target)
    assert h.digest(restored) == h.digest(source)
    assert restored == source


# -- the backup file holds no plaintext and no keys -----------------------------------------------


def test_backup_holds_no_plaintext_and_no_key_material(
    store: Store, root_source: MemoryKeySource, keystore: KeyStore, canary: str, tmp_path: Path
) -> None:
    for n in range(2):
        _populate(store, f"p{n}@example.org", canary=canary, tag=f"p{n}")
    out_dir = tmp_path / "backups"
    path = backup(store, out_dir / "b.hsbak")
    assert [p.name for p in out_dir.iterdir()] == ["b.hsbak"], "a temporary file was left behind"
    raw = path.read_bytes()
    assert raw[:16] == b"SQLite format 3\x00"
    assert canary.encode() not in raw
    assert canary.encode("utf-16-le") not in raw
    needles: dict[str, bytes] = {}
    for i, key in enumerate(h.memory_root_keys(root_source)):
        needles[f"root key {i}"] = key
        needles[f"root key {i} (base64)"] = base64.b64encode(key)
    wrapped = h.wrapped_keys(keystore)
    assert len(wrapped) == 4
    for user_id, space, version, kek_id, blob in wrapped:
        needles[f"wrapped {space} key of {user_id}"] = blob
        dek = root_source.unwrap(kek_id, blob, _wrap_context(user_id, space, version))
        needles[f"{space} data key of {user_id}"] = dek
        needles[f"{space} data key of {user_id} (hex)"] = dek.hex().encode()
    found = [name for name, needle in needles.items() if needle in raw]
    assert found == [], f"key material in the backup: {found}"


# -- restore refuses what it cannot do, and touches nothing --------------------------------------


@pytest.mark.parametrize("wrong", ["memory-key", "key-file", "empty-keystore"])
def test_restore_without_the_right_keys_fails_and_leaves_target_empty(
    wrong: str,
    store: Store,
    root_source: MemoryKeySource,
    keystore: KeyStore,
    fresh_url: Callable[[str], str],
    canary: str,
    tmp_path: Path,
) -> None:
    _populate(store, "k@example.org", canary=canary)
    path = backup(store, tmp_path / "k.hsbak")
    target_keystore = keystore
    root: Any = root_source
    if wrong == "memory-key":
        root = MemoryKeySource()
    elif wrong == "key-file":
        root = KeyFileSource.create(tmp_path / "other" / "root.key")
    else:
        target_keystore = KeyStore(create_engine(f"sqlite:///{tmp_path / 'other-keystore.db'}"))
        target_keystore.initialize()
    before_keys = h.wrapped_keys(keystore)
    url = fresh_url("wrong")
    try:
        with _target(url, root, target_keystore) as target:
            with pytest.raises(BackupError) as info:
                restore(target, path)
            message = str(info.value)
            assert str(path) in message
            assert "root key" in message
            if wrong == "empty-keystore":
                assert "keystore" in message
            _assert_empty(target)
    finally:
        target_keystore.close()
    assert h.wrapped_keys(keystore) == before_keys


def test_restore_into_a_store_with_users_fails_and_changes_nothing(
    store: Store, keystore: KeyStore, canary: str, tmp_path: Path
) -> None:
    _populate(store, "d@example.org", canary=canary)
    path = backup(store, tmp_path / "d.hsbak")
    _populate(store, "e@example.org", canary=canary, tag="e")
    before = h.table_rows(store.engine)
    keys = h.wrapped_keys(keystore)
    with pytest.raises(BackupError, match="already has users"):
        restore(store, path)
    assert h.table_rows(store.engine) == before
    assert h.wrapped_keys(keystore) == keys


def test_restore_into_a_freshly_initialised_home(
    store: Store,
    root_source: MemoryKeySource,
    keystore: KeyStore,
    fresh_url: Callable[[str], str],
    canary: str,
    tmp_path: Path,
) -> None:
    """`healthspace init` records a system event and creates no user; restoring into
    that home either works or fails clearly with nothing changed."""
    _populate(store, "i@example.org", canary=canary)
    store.record_event("store.init")
    source = h.store_canonical(store)
    path = backup(store, tmp_path / "i.hsbak")
    url = fresh_url("inited")
    with _target(url, root_source, keystore) as target:
        target.initialize()
        target.record_event("store.init")  # what `healthspace init` does
        before = h.table_rows(target.engine)
        failure: BackupError | None = None
        try:
            restore(target, path)
        except BackupError as exc:
            failure = exc
        if failure is not None:
            assert str(path) in str(failure)
            assert h.table_rows(target.engine) == before
        else:
            assert h.store_canonical(target) == source
            assert verify_chain(target.engine).ok


def _write_bad(kind: str, tmp_path: Path, good: Path) -> Path:
    p = tmp_path / f"bad-{kind}.hsbak"
    if kind == "missing":
        return p
    if kind == "directory":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "random":
        p.write_bytes(os.urandom(8192))
    elif kind == "sqlite-header-garbage":
        p.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    elif kind == "plain-database":
        data = h.open_store(f"sqlite:///{p}", f"sqlite:///{tmp_path / 'plain-keys.db'}")
        data.initialize()
        data.close()
    elif kind == "truncated":
        raw = good.read_bytes()
        p.write_bytes(raw[: len(raw) // 2])
    elif kind == "corrupted":
        raw = bytearray(good.read_bytes())
        # Scramble pages in the middle of the file (record pages), keep the header and
        # the backup_meta table (written last, at the end) intact.
        for i in range(len(raw) // 3, len(raw) // 3 + 16384):
            raw[i] ^= 0x5A
        p.write_bytes(bytes(raw))
    return p


@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "directory",
        "empty",
        "random",
        "sqlite-header-garbage",
        "plain-database",
        "truncated",
        "corrupted",
    ],
)
def test_restore_of_a_file_that_is_not_a_backup(
    kind: str, root_source: MemoryKeySource, keystore: KeyStore, tmp_path: Path
) -> None:
    keystore.initialize()
    src = Store(create_engine(f"sqlite:///{tmp_path / 'src.db'}"), Vault(root_source), keystore)
    try:
        src.initialize()
        _populate(src, "f@example.org", canary="CANARY-bad-file", n=400)
        good = backup(src, tmp_path / "good.hsbak")
    finally:
        src.engine.dispose()
    path = _write_bad(kind, tmp_path, good)
    with _target(f"sqlite:///{tmp_path / 'target.db'}", root_source, keystore) as target:
        with pytest.raises(BackupError) as info:
            restore(target, path)
        assert str(path) in str(info.value)
        _assert_empty(target)


# -- T-DEL-1: a deleted account stays deleted -------------------------------------------------


def test_restoring_an_old_backup_does_not_bring_back_a_deleted_account(
    store: Store,
    root_source: MemoryKeySource,
    keystore: KeyStore,
    fresh_url: Callable[[str], str],
    canary: str,
    tmp_path: Path,
) -> None:
    kept = [_populate(store, f"keep{n}@example.org", canary=canary, tag=f"k{n}") for n in range(2)]
    gone = _populate(store, "gone@example.org", canary=canary, tag="g")
    path = backup(store, tmp_path / "before-delete.hsbak")
    store.delete_user(gone.user_id)
    expected = h.store_canonical(store)
    assert gone.email not in expected

    url = fresh_url("after-delete")
    with _target(url, root_source, keystore) as target:
        counts = _timed_restore(target, path)
        assert counts["skipped_deleted_users"] == 1
        _check_sqlite_file(url)
        assert h.store_canonical(target) == expected
        assert verify_chain(target.engine).ok
        with target.engine.connect() as conn:
            for table in metadata.sorted_tables:
                if table.name == "audit_log":
                    continue  # the trail of a deleted account outlives it (no contents)
                n = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.user_id == gone.user_id)
                ).scalar()
                assert n == 0, f"{table.name} has rows of the deleted account"
            conn.rollback()
        with pytest.raises(UserNotFoundError):
            h.health(target, gone.user_id)
    assert keystore.get(gone.user_id, "health") == []
    assert keystore.get(gone.user_id, "general") == []

    # The old backup still holds the deleted account's ciphertext; no key that is left
    # opens any of it.
    bak = sa.create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    )
    try:
        with bak.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT user_id, space, record_id, payload FROM records"
            ).all()
            conn.rollback()
    finally:
        bak.dispose()
    gone_rows = [r for r in rows if r.user_id == gone.user_id]
    assert gone_rows, "the backup should still contain the deleted account's rows"
    remaining = {
        (uid, space): root_source.unwrap(kek, blob, _wrap_context(uid, space, version))
        for uid, space, version, kek, blob in h.wrapped_keys(keystore)
    }
    assert len(remaining) == 2 * len(kept)
    # The same decryption opens a kept account's rows of that backup (the check below
    # is not vacuous)...
    kept_row = next(r for r in rows if r.user_id == kept[0].user_id)
    own = SpaceKeys(
        kept_row.user_id, kept_row.space, {1: remaining[(kept_row.user_id, kept_row.space)]}, 1
    )
    own.decrypt(
        bytes(kept_row.payload), table="records", row_id=kept_row.record_id, column="payload"
    )
    # ...and no key that is left opens any row of the deleted one.
    for _uid, space, record_id, payload in gone_rows:
        for dek in remaining.values():
            keys = SpaceKeys(gone.user_id, space, {1: dek}, 1)
            with pytest.raises((IntegrityError, KeyNotFoundError)):
                keys.decrypt(bytes(payload), table="records", row_id=record_id, column="payload")


def _utc(at: datetime) -> datetime:
    # SQLite hands back the naive UTC value it stored; PostgreSQL an aware one.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# -- PostgreSQL: timestamps survive whatever the session time zone ------------------------------


@pytest.mark.postgres
def test_postgres_backup_keeps_timestamps_across_time_zones(
    root_source: MemoryKeySource, keystore: KeyStore, canary: str, tmp_path: Path
) -> None:
    """A PostgreSQL server whose time zone is not UTC (initdb takes the OS zone) backs
    up; the restore on a UTC server or into SQLite must keep every instant, or the
    audit hash chain no longer verifies."""
    from tests.conftest import PG_URL, _require_postgres

    _require_postgres()
    keystore.initialize()
    admin = sa.create_engine(PG_URL)
    schemas = ["hs_tz_" + secrets.token_hex(6) for _ in range(2)]
    with admin.begin() as conn:
        for schema in schemas:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"

    def url(schema: str, tz: str) -> str:
        return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema} -ctimezone={tz}')}"

    try:
        with _target(url(schemas[0], "America/New_York"), root_source, keystore) as src:
            src.initialize()
            _populate(src, "tz@example.org", canary=canary)
            created = {u.email: u.created_at for u in src.list_users()}
            path = backup(src, tmp_path / "tz.hsbak")
        for name, target_url in [
            ("postgres-utc", url(schemas[1], "UTC")),
            ("sqlite", f"sqlite:///{tmp_path / 'tz.db'}"),
        ]:
            with _target(target_url, root_source, keystore) as target:
                restore(target, path)
                got = {u.email: u.created_at for u in target.list_users()}
                chain = verify_chain(target.engine)
            for email, at in created.items():
                assert _utc(got[email]) == _utc(at), (
                    f"{name}: created_at moved from {at} to {got[email]}"
                )
            assert chain.ok, f"{name}: audit chain broken after restore: {chain.breaks[:1]}"
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


# -- the command line ---------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHSPACE_")}
    return subprocess.run(
        [sys.executable, "-m", "healthspace", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cli_backup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home with data, backed up with `healthspace backup --out F --json`."""
    tmp = tmp_path_factory.mktemp("cli")
    canary = "CANARY-" + secrets.token_hex(12)
    key_file = tmp / "config" / "root.key"
    home = tmp / "home"
    src = open_store(load_settings(home=home, key_file=key_file), actor="test", initialize=True)
    try:
        _populate(src, "cli@example.org", canary=canary)
        expected = h.store_canonical(src)
    finally:
        src.close()
    out = tmp / "out" / "cli.hsbak"
    made = _cli(
        ["backup", "--out", str(out), "--json"],
        {"HEALTHSPACE_HOME": str(home), "HEALTHSPACE_KEY_FILE": str(key_file)},
    )
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert Path(doc["backup"]) == out.resolve()
    assert doc["bytes"] == out.stat().st_size
    return {"tmp": tmp, "key_file": key_file, "out": out, "expected": expected, "canary": canary}


def test_cli_backup_holds_no_canary_and_no_key(cli_backup: dict[str, Any]) -> None:
    raw = cli_backup["out"].read_bytes()
    assert cli_backup["canary"].encode() not in raw
    key_doc = json.loads(cli_backup["key_file"].read_text())
    assert key_doc["keys"]
    for value in key_doc["keys"].values():
        assert value.encode() not in raw
        assert base64.b64decode(value) not in raw


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_cli_restore_into_a_new_home(as_json: bool, cli_backup: dict[str, Any]) -> None:
    home = cli_backup["tmp"] / f"restored-{'json' if as_json else 'text'}"
    key_file = cli_backup["key_file"]
    args = ["restore", str(cli_backup["out"])] + (["--json"] if as_json else [])
    done = _cli(args, {"HEALTHSPACE_HOME": str(home), "HEALTHSPACE_KEY_FILE": str(key_file)})
    assert done.returncode == 0, done.stderr
    if as_json:
        doc = json.loads(done.stdout)
        assert doc["rows"]["users"] == 1
        assert doc["rows"]["skipped_deleted_users"] == 0
    restored = open_store(load_settings(home=home, key_file=key_file), actor="test")
    try:
        assert h.store_canonical(restored) == cli_backup["expected"]
        assert verify_chain(restored.engine).ok
    finally:
        restored.close()
    integrity, fks = h.sqlite_checks(home / "healthspace.db")
    assert (integrity, fks) == ([("ok",)], [])


def test_cli_restore_without_the_key_file_fails_in_one_line(cli_backup: dict[str, Any]) -> None:
    home = cli_backup["tmp"] / "no-key-home"
    missing = cli_backup["tmp"] / "nowhere" / "root.key"
    failed = _cli(
        ["restore", str(cli_backup["out"])],
        {"HEALTHSPACE_HOME": str(home), "HEALTHSPACE_KEY_FILE": str(missing)},
    )
    assert failed.returncode != 0
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1, failed.stderr
    assert str(missing) in lines[0]
    assert "key file" in lines[0]
    assert failed.stdout == ""
    assert not (home / "healthspace.db").exists()
    assert not missing.exists(), "restore must never create a root key"
