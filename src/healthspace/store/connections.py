"""Connections to outside services (SMART on FHIR): settings and OAuth tokens, encrypted.

A connection row keeps only ids, kind, status and timestamps in clear. Its
``config`` (the provider's address, endpoints, client id, scopes, a pending
authorization) and its ``tokens`` are envelopes bound to (user, space, row,
column): a token copied to another row or user fails to decrypt. The store does
not interpret either; the client that owns the connection does.

Disconnecting deletes the row at once (the tokens are gone, not flagged). Every
access is audited, by connection id only.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from healthspace.errors import IntegrityError, UsageError
from healthspace.store.session import SpaceSession
from healthspace.store.tables import connections

__all__ = ["ConnectionRepository", "StoredConnection", "TokenSlot"]

log = logging.getLogger(__name__)

TABLE = "connections"
STATUSES = ("pending", "active", "reauth")


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoredConnection:
    """One connection with its decrypted config (never its tokens)."""

    connection_id: str
    kind: str
    status: str
    # Never in a repr: it may hold a pending PKCE verifier and the provider's address.
    config: dict[str, Any] = field(repr=False)
    has_tokens: bool
    created_at: datetime
    updated_at: datetime
    last_sync_at: datetime | None


@dataclass
class TokenSlot:
    """The tokens under a row lock: read ``current``, set ``new`` to replace them."""

    current: bytes | None = field(repr=False)
    new: bytes | None = field(default=None, repr=False)
    clear: bool = False  # drop the tokens (they are dead); wins over ``new``
    status: str | None = None


class ConnectionRepository:
    """The connections of one space."""

    def __init__(self, session: SpaceSession) -> None:
        self.session = session

    # -- helpers ---------------------------------------------------------------

    def _where(self, connection_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            connections.c.user_id == self.session.user_id,
            connections.c.space == self.session.space.value,
            connections.c.connection_id == connection_id,
        )

    def _seal(self, connection_id: str, column: str, plain: bytes) -> bytes:
        return self.session.encrypt(plain, table=TABLE, row_id=connection_id, column=column)

    def _open(self, connection_id: str, column: str, envelope: bytes) -> bytes:
        return self.session.decrypt(
            bytes(envelope), table=TABLE, row_id=connection_id, column=column
        )

    def _decode(self, row: Row[Any]) -> StoredConnection:
        config = json.loads(self._open(row.connection_id, "config", row.config))
        return StoredConnection(
            connection_id=row.connection_id,
            kind=row.kind,
            status=row.status,
            config=config,
            has_tokens=row.tokens is not None,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            last_sync_at=None if row.last_sync_at is None else _utc(row.last_sync_at),
        )

    def _fetch(
        self, conn: Connection, connection_id: str, *, lock: bool = False
    ) -> Row[Any] | None:
        query = sa.select(connections).where(self._where(connection_id))
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    def _require(self, conn: Connection, connection_id: str, *, lock: bool = False) -> Row[Any]:
        row = self._fetch(conn, connection_id, lock=lock)
        if row is None:
            raise UsageError(f"no connection {connection_id} in this space")
        return row

    def _read(self, connection_id: str, action: str) -> Row[Any]:
        with self.session.begin() as conn:
            row = self._fetch(conn, connection_id)
            self.session.audit(
                conn,
                action,
                target=f"connection:{connection_id}",
                outcome="ok" if row is not None else "not_found",
            )
        if row is None:
            raise UsageError(f"no connection {connection_id} in this space")
        return row

    # -- API -------------------------------------------------------------------

    def create(self, *, kind: str, config: dict[str, Any], status: str = "pending") -> str:
        """A new connection; returns its id."""
        if status not in STATUSES:
            raise UsageError(f"unknown connection status {status!r}")
        connection_id = uuid.uuid4().hex
        now = _now()
        with self.session.begin() as conn:
            conn.execute(
                connections.insert().values(
                    user_id=self.session.user_id,
                    connection_id=connection_id,
                    space=self.session.space.value,
                    kind=kind,
                    status=status,
                    config=self._seal(connection_id, "config", json.dumps(config).encode()),
                    tokens=None,
                    created_at=now,
                    updated_at=now,
                    last_sync_at=None,
                )
            )
            self.session.audit(conn, "connection.create", target=f"connection:{connection_id}")
        return connection_id

    def get(self, connection_id: str) -> StoredConnection:
        return self._decode(self._read(connection_id, "connection.read"))

    def list(self, *, kind: str | None = None, status: str | None = None) -> list[StoredConnection]:
        query = sa.select(connections).where(
            connections.c.user_id == self.session.user_id,
            connections.c.space == self.session.space.value,
        )
        if kind is not None:
            query = query.where(connections.c.kind == kind)
        if status is not None:
            query = query.where(connections.c.status == status)
        query = query.order_by(connections.c.created_at, connections.c.connection_id)
        with self.session.begin() as conn:
            rows = conn.execute(query).all()
            self.session.audit(conn, "connection.list", target=f"n={len(rows)}")
        found: list[StoredConnection] = []
        for row in rows:
            try:
                found.append(self._decode(row))
            except IntegrityError:
                # Written under a data key this space no longer has (the space was
                # crypto-shredded): nothing in it can be used again.
                log.warning("connection %s cannot be decrypted; skipped", row.connection_id)
        return found

    def tokens(self, connection_id: str) -> bytes | None:
        """The decrypted token document, or None if the connection has none yet."""
        row = self._read(connection_id, "connection.tokens")
        return None if row.tokens is None else self._open(connection_id, "tokens", row.tokens)

    def update(
        self,
        connection_id: str,
        *,
        config: dict[str, Any] | None = None,
        tokens: bytes | None = None,
        status: str | None = None,
        synced_at: datetime | None = None,
    ) -> None:
        """Replace what is given, in one transaction."""
        values: dict[str, object] = {"updated_at": _now()}
        if config is not None:
            values["config"] = self._seal(connection_id, "config", json.dumps(config).encode())
        if tokens is not None:
            values["tokens"] = self._seal(connection_id, "tokens", tokens)
        if status is not None:
            if status not in STATUSES:
                raise UsageError(f"unknown connection status {status!r}")
            values["status"] = status
        if synced_at is not None:
            values["last_sync_at"] = synced_at
        with self.session.begin() as conn:
            self._require(conn, connection_id, lock=True)
            conn.execute(connections.update().where(self._where(connection_id)).values(**values))
            self.session.audit(conn, "connection.update", target=f"connection:{connection_id}")

    @contextmanager
    def token_lock(self, connection_id: str) -> Iterator[TokenSlot]:
        """Hold the row while tokens are refreshed, so two syncs never both spend one.

        A rotating server answers a reused refresh token by revoking the whole
        family; under this lock the second caller sees the first one's new tokens.
        Whatever the block sets on the slot is written when it exits normally.
        """
        with self.session.begin() as conn:
            row = self._require(conn, connection_id, lock=True)
            slot = TokenSlot(
                current=None
                if row.tokens is None
                else self._open(connection_id, "tokens", row.tokens)
            )
            yield slot
            values: dict[str, object] = {"updated_at": _now()}
            if slot.clear:
                values["tokens"] = None
            elif slot.new is not None:
                values["tokens"] = self._seal(connection_id, "tokens", slot.new)
            if slot.status is not None:
                if slot.status not in STATUSES:
                    raise UsageError(f"unknown connection status {slot.status!r}")
                values["status"] = slot.status
            conn.execute(connections.update().where(self._where(connection_id)).values(**values))
            self.session.audit(
                conn,
                "connection.refresh" if slot.new is not None else "connection.tokens",
                target=f"connection:{connection_id}",
            )

    def delete(self, connection_id: str) -> tuple[StoredConnection, bytes | None]:
        """Delete the row, tokens included, now; hand back what it held, to revoke."""
        with self.session.begin() as conn:
            row = self._require(conn, connection_id, lock=True)
            conn.execute(connections.delete().where(self._where(connection_id)))
            self.session.audit(conn, "connection.delete", target=f"connection:{connection_id}")
        tokens = None if row.tokens is None else self._open(connection_id, "tokens", row.tokens)
        return self._decode(row), tokens
