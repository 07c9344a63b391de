"""Consistent online backups that hold only ciphertext, and restore into an empty store.

A backup is one SQLite file with the store's schema plus a ``backup_meta`` table.
From SQLite it is taken with the online backup API (a consistent snapshot while
writers go on); from PostgreSQL, every table is copied inside one REPEATABLE READ
transaction. Data keys travel wrapped by the root key, which is never in a backup:
restoring needs the same root key, and says so clearly when it is absent.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from healthspace.errors import BackupError, HealthspaceError
from healthspace.store import audit, migrate
from healthspace.store.facade import Store
from healthspace.store.tables import audit_log, metadata, users

__all__ = ["BACKUP_FORMAT", "backup", "restore"]

BACKUP_FORMAT = "healthspace-backup-1"
_COPY_BATCH = 2000


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_meta(conn: sqlite3.Connection, store: Store, revision: str) -> None:
    conn.execute("CREATE TABLE backup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany(
        "INSERT INTO backup_meta VALUES (?, ?)",
        [
            ("format", BACKUP_FORMAT),
            ("created_at", datetime.now(UTC).isoformat()),
            ("revision", revision),
            ("engine", store.engine.dialect.name),
        ],
    )
    conn.commit()


def backup(store: Store, out: Path) -> Path:
    """Write a consistent backup of the whole store to ``out`` (atomically)."""
    out = out.expanduser().resolve()
    if out.exists():
        raise BackupError(f"{out}: already exists; choose a new file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    revision = migrate.current_revision(store.engine)
    if revision is None:
        raise BackupError("the store has no schema; nothing to back up")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        dst = sqlite3.connect(tmp)
        try:
            if store.engine.dialect.name == "sqlite":
                raw = store.engine.raw_connection()
                try:
                    src = raw.driver_connection
                    assert isinstance(src, sqlite3.Connection)
                    src.backup(dst)
                finally:
                    raw.close()
            else:
                _copy_postgres(store.engine, dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            _write_meta(dst, store, revision)
            if dst.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                raise BackupError(f"{out}: backup copy failed its integrity check")
        finally:
            dst.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    store.record_event("backup.create")
    return out


def _copy_postgres(engine: Engine, dst: sqlite3.Connection) -> None:
    target = sa.create_engine("sqlite://", creator=lambda: dst)
    with target.begin() as tconn:
        metadata.create_all(tconn)
        tconn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    with (
        engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
        target.begin() as tconn,
    ):
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        tconn.exec_driver_sql("INSERT INTO alembic_version VALUES (?)", (version,))
        for table in metadata.sorted_tables:
            result = conn.execution_options(yield_per=_COPY_BATCH).execute(sa.select(table))
            for part in result.mappings().partitions():
                tconn.execute(table.insert(), [dict(r) for r in part])
        conn.rollback()


def _open_backup(path: Path) -> sa.Engine:
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    with open(path, "rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path}: not a healthspace backup (not an SQLite file)")
    uri = f"file:{path}?mode=ro&immutable=1"
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        with engine.connect() as conn:
            meta: dict[str, str] = dict(
                conn.exec_driver_sql("SELECT key, value FROM backup_meta").all()
            )
    except sa.exc.DBAPIError:
        engine.dispose()
        raise BackupError(
            f"{path}: not a healthspace backup (no backup_meta table, or damaged)"
        ) from None
    if meta.get("format") != BACKUP_FORMAT:
        engine.dispose()
        raise BackupError(f"{path}: unknown backup format {meta.get('format')!r}")
    try:
        with engine.connect() as conn:
            check = conn.exec_driver_sql("PRAGMA quick_check").scalar()
    except sa.exc.DBAPIError:
        check = "unreadable"
    if check != "ok":
        engine.dispose()
        raise BackupError(f"{path}: backup file is damaged (integrity check failed)")
    return engine


def restore(store: Store, path: Path) -> dict[str, int]:
    """Restore ``path`` into ``store``, which must be empty. Returns rows per table."""
    path = path.expanduser().resolve()
    source = _open_backup(path)
    try:
        with source.connect() as sconn:
            revision = sconn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if revision is None:
                raise BackupError(f"{path}: backup has no schema revision")
            shredded = _check_keys(store, sconn, path)
            current = migrate.current_revision(store.engine)
            if current is not None and current != revision:
                raise BackupError(
                    f"{path}: backup is at schema {revision}, the target at {current}; "
                    "restore into a new, empty home"
                )
            migrate.upgrade(store.engine, str(revision))
            with store.engine.begin() as tconn:
                earlier = _take_empty_target(tconn)
                counts: dict[str, int] = {}
                for table in metadata.sorted_tables:
                    n = 0
                    query = sa.select(table)
                    if shredded and table is not audit_log:
                        # Accounts deleted since the backup stay deleted: their keys
                        # are gone, so their rows could never be read again anyway.
                        query = query.where(table.c.user_id.not_in(shredded))
                    try:
                        result = sconn.execution_options(yield_per=_COPY_BATCH).execute(query)
                        for part in result.mappings().partitions():
                            tconn.execute(table.insert(), [dict(r) for r in part])
                            n += len(part)
                    except sa.exc.DBAPIError as exc:
                        raise BackupError(
                            f"{path}: table {table.name} could not be restored "
                            f"({type(exc.orig).__name__}); nothing was restored"
                        ) from None
                    counts[str(table.name)] = n
                # The target's own system events (init) follow the restored trail.
                for actor, action, space, target, outcome in earlier:
                    audit.append(
                        tconn,
                        user_id=audit.SYSTEM,
                        actor=actor,
                        action=action,
                        space=space,
                        target=target,
                        outcome=outcome,
                    )
            sconn.rollback()
    finally:
        source.dispose()
    migrate.upgrade(store.engine)
    store.record_event("backup.restore", target=f"skipped_deleted_users={len(shredded)}")
    counts["skipped_deleted_users"] = len(shredded)
    return counts


def _take_empty_target(
    conn: sa.Connection,
) -> list[tuple[str, str, str | None, str | None, str]]:
    """Refuse a target holding any data; lift out its system audit events (init).

    A home made by ``healthspace init`` has nothing but those; they are re-appended
    after the restored trail so the chain stays whole.
    """
    if conn.execute(sa.select(sa.func.count()).select_from(users)).scalar():
        raise BackupError("restore needs an empty store; this one already has users")
    for table in metadata.sorted_tables:
        query = sa.select(sa.func.count()).select_from(table)
        if table is audit_log:
            query = query.where(audit_log.c.user_id != audit.SYSTEM)
        if conn.execute(query).scalar():
            raise BackupError(f"restore needs an empty store; this one has data ({table.name})")
    rows = conn.execute(
        sa.select(
            audit_log.c.actor,
            audit_log.c.action,
            audit_log.c.space,
            audit_log.c.target,
            audit_log.c.outcome,
        )
        .where(audit_log.c.user_id == audit.SYSTEM)
        .order_by(audit_log.c.seq)
    ).all()
    conn.execute(audit_log.delete().where(audit_log.c.user_id == audit.SYSTEM))
    return [(r.actor, r.action, r.space, r.target, r.outcome) for r in rows]


def _check_keys(store: Store, sconn: sa.Connection, path: Path) -> list[str]:
    """Prove the keystore and root key open this backup before anything is written.

    Returns the users whose keys no longer exist (deleted since the backup).
    """
    store.keystore.check_initialized()
    shredded: list[str] = []
    user_ids = [str(u) for u in sconn.execute(sa.select(users.c.user_id)).scalars()]
    for user_id in user_ids:
        for space in ("general", "health"):
            wrapped = store.keystore.get(user_id, space)
            if not wrapped:
                shredded.append(user_id)
                break
            try:
                store.vault.open_space(user_id, space, wrapped).forget()
            except HealthspaceError:
                raise BackupError(
                    f"{path}: the configured root key cannot open the keystore's data keys "
                    f"(wrapped by root key {wrapped[0].kek_id!r}); restore needs that root key "
                    "(HEALTHSPACE_KEY_FILE or HEALTHSPACE_ROOT_KEY)"
                ) from None
    if user_ids and len(shredded) == len(user_ids):
        raise BackupError(
            f"{path}: the keystore holds no key for any user in this backup; restore needs "
            "the keystore and root key the backup was made with (HEALTHSPACE_KEY_FILE)"
        )
    return sorted(set(shredded))
