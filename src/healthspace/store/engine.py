"""Engines for SQLite (the default file) and PostgreSQL, with durable settings.

SQLite connections run in WAL mode with ``synchronous=FULL`` (a commit we reported
is on disk), foreign keys on, ``secure_delete`` on (deleted rows are zeroed, not
left in free pages), and ``BEGIN IMMEDIATE`` so a writer never fails half-way
upgrading a read lock.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = [
    "SQLITE_PRAGMAS",
    "autocommit",
    "create_engine",
    "is_sqlite",
    "reader",
    "sqlite_pragmas",
]

SQLITE_PRAGMAS: dict[str, str] = {
    "journal_mode": "WAL",
    "synchronous": "FULL",
    "foreign_keys": "ON",
    "secure_delete": "ON",
    "busy_timeout": "60000",
}


def _normalise_url(url: str) -> str:
    # Plain postgresql:// means psycopg 3 here, never the legacy psycopg2 default.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module; SQLAlchemy's "begin"
    # event below emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    for name, value in SQLITE_PRAGMAS.items():
        cur.execute(f"PRAGMA {name}={value}")
    cur.close()


def _on_postgres_connect(dbapi_connection: Any, _record: Any) -> None:
    # Timestamps travel as UTC whatever the server's or role's default zone, so a
    # copy to SQLite (backups) never shifts an instant.
    with dbapi_connection.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # checkpoints and VACUUM must run outside a transaction
    # Readers take no lock in WAL mode; everything else (and every health read
    # writes an audit row) takes the write lock up front.
    conn.exec_driver_sql("BEGIN" if options.get("healthspace_readonly") else "BEGIN IMMEDIATE")


def _prepare_sqlite_file(url: str) -> None:
    # Create the file owner-only before SQLite does: its -wal and -shm files
    # inherit these permissions.
    path = sa.engine.make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    if not file.exists() and file.parent.is_dir():
        os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))


def reader(engine: Engine) -> sa.Connection:
    """A connection for reads only: never blocks, nor is blocked by, a writer."""
    return engine.connect().execution_options(healthspace_readonly=True)


def autocommit(engine: Engine) -> sa.Connection:
    """A connection outside any transaction (checkpoints, VACUUM)."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with healthspace's connection settings applied."""
    url = _normalise_url(url)
    # Bound parameters are ciphertext or ids, but never let them reach an error
    # message or a log line anyway.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **kwargs)
    event.listen(engine, "connect", _on_postgres_connect)
    return engine


def sqlite_pragmas(engine: Engine) -> dict[str, str]:
    """The durability pragmas as a fresh connection reports them (for checks and tests)."""
    out: dict[str, str] = {}
    with reader(engine) as conn:
        for name in ("journal_mode", "synchronous", "foreign_keys", "secure_delete"):
            out[name] = str(conn.exec_driver_sql(f"PRAGMA {name}").scalar())
        conn.rollback()
    return out
