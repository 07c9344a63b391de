"""Table definitions (SQLAlchemy Core, portable types only).

Every table's key starts with ``user_id`` so the schema can be distributed by user.
Plaintext columns are limited to ids, timestamps, space, record kind and sizes;
everything with clinical meaning is an AES-GCM envelope (``payload``, ``original``,
``stats``) or a keyed blind index (``*_index``, ``identity``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "audit_log",
    "connections",
    "data_keys",
    "files",
    "import_jobs",
    "keystore_meta",
    "keystore_metadata",
    "metadata",
    "records",
    "series_chunks",
    "spaces",
    "users",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(36)
TS = DateTime(timezone=True)

users = Table(
    "users",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("email", String(320), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id"),
    UniqueConstraint("email"),
)

spaces = Table(
    "spaces",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("space", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "space"),
    ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
)

import_jobs = Table(
    "import_jobs",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("job_id", String(32), nullable=False),
    Column("space", String(16), nullable=False),
    Column("source", String(64), nullable=False),
    Column("input_index", LargeBinary(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("counts", Text, nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
    PrimaryKeyConstraint("user_id", "job_id"),
    ForeignKeyConstraint(
        ["user_id", "space"], ["spaces.user_id", "spaces.space"], ondelete="CASCADE"
    ),
    Index(None, "user_id", "space", "input_index"),
)

records = Table(
    "records",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("record_id", String(32), nullable=False),
    Column("space", String(16), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("effective_ms", BigInteger, nullable=True),
    Column("code_index", LargeBinary(16), nullable=True),
    Column("identity", LargeBinary(16), nullable=False),
    Column("content_hash", LargeBinary(16), nullable=False),
    Column("job_id", String(32), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("original", LargeBinary, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "record_id"),
    UniqueConstraint("user_id", "space", "identity"),
    ForeignKeyConstraint(
        ["user_id", "space"], ["spaces.user_id", "spaces.space"], ondelete="CASCADE"
    ),
    Index(None, "user_id", "space", "kind", "effective_ms"),
    Index(None, "user_id", "space", "code_index"),
    Index(None, "user_id", "job_id"),
)

files = Table(
    "files",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("file_id", String(32), nullable=False),
    Column("space", String(16), nullable=False),
    Column("sha_index", LargeBinary(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("job_id", String(32), nullable=True),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "file_id"),
    UniqueConstraint("user_id", "space", "sha_index"),
    ForeignKeyConstraint(
        ["user_id", "space"], ["spaces.user_id", "spaces.space"], ondelete="CASCADE"
    ),
)

# One encrypted, compressed block per (user, space, metric, day). ``job_key`` is ""
# for visible data; a running import writes its own pending blocks under its job id
# and folds them in when it completes, so a half-done import is never visible.
series_chunks = Table(
    "series_chunks",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("space", String(16), nullable=False),
    Column("metric_index", LargeBinary(16), nullable=False),
    Column("day", Integer, nullable=False),
    Column("job_key", String(32), nullable=False),
    Column("n", Integer, nullable=False),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("stats", LargeBinary, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "space", "metric_index", "day", "job_key"),
    ForeignKeyConstraint(
        ["user_id", "space"], ["spaces.user_id", "spaces.space"], ondelete="CASCADE"
    ),
)

# Hash-chained per user (user_id "" holds system events). No foreign key: the trail
# of a deleted account outlives it, and holds no record contents.
audit_log = Table(
    "audit_log",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("seq", BigInteger, nullable=False, autoincrement=False),
    Column("at", TS, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("space", String(16), nullable=True),
    Column("target", String(255), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("user_id", "seq"),
)


# Connections to outside services (SMART on FHIR). Only ids, kind, status and
# timestamps are clear: the provider's address and settings (``config``) and the
# OAuth tokens (``tokens``) are envelopes, bound to this row and column.
connections = Table(
    "connections",
    metadata,
    Column("user_id", ID, nullable=False),
    Column("connection_id", String(32), nullable=False),
    Column("space", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("config", LargeBinary, nullable=False),
    Column("tokens", LargeBinary, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("last_sync_at", TS, nullable=True),
    PrimaryKeyConstraint("user_id", "connection_id"),
    ForeignKeyConstraint(
        ["user_id", "space"], ["spaces.user_id", "spaces.space"], ondelete="CASCADE"
    ),
)


# The keystore is a separate database (by default a file beside the root key, apart
# from HEALTHSPACE_HOME): data backups never contain data keys, not even wrapped, so
# destroying a key in the keystore makes every backup copy of that data unreadable.
keystore_metadata = MetaData(naming_convention=metadata.naming_convention)

data_keys = Table(
    "data_keys",
    keystore_metadata,
    Column("user_id", ID, nullable=False),
    Column("space", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kek_id", String(64), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "space", "version"),
)

keystore_meta = Table(
    "keystore_meta",
    keystore_metadata,
    Column("key", String(64), nullable=False),
    Column("value", String(255), nullable=False),
    PrimaryKeyConstraint("key"),
)
