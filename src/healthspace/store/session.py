"""Space sessions: the only holders of a space's unwrapped keys.

A :class:`SpaceSession` is bound to one (user, space). Repositories take one and
can only decrypt what was written for that exact (user, space): the associated
data of every envelope names both, so even a row fetched by a buggy query from
the other space fails authentication instead of decrypting (T-ISO-2).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from types import TracebackType

from sqlalchemy.engine import Connection, Engine

from healthspace.errors import SpaceAccessError
from healthspace.store import audit
from healthspace.vault import SpaceKeys

__all__ = ["Space", "SpaceSession"]


class Space(StrEnum):
    GENERAL = "general"
    HEALTH = "health"


class SpaceSession:
    """Keys and identity for one (user, space). Close it to forget the keys."""

    __slots__ = ("_engine", "_keys", "actor", "space", "user_id")

    def __init__(self, engine: Engine, keys: SpaceKeys, *, actor: str) -> None:
        self._engine = engine
        self._keys = keys
        self.user_id = keys.user_id
        self.space = Space(keys.space)
        self.actor = actor

    def __repr__(self) -> str:
        return (
            f"SpaceSession(user={self.user_id!r}, space={self.space.value!r}, actor={self.actor!r})"
        )

    def __enter__(self) -> SpaceSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def is_open(self) -> bool:
        return self._keys.is_open

    def close(self) -> None:
        self._keys.forget()

    def require(self, space: Space) -> None:
        if self.space is not space:
            raise SpaceAccessError(
                f"this session holds the {self.space.value} space, not {space.value}"
            )

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction on the store's engine."""
        with self._engine.begin() as conn:
            yield conn

    def encrypt(self, plaintext: bytes, *, table: str, row_id: str, column: str) -> bytes:
        return self._keys.encrypt(plaintext, table=table, row_id=row_id, column=column)

    def decrypt(self, envelope: bytes, *, table: str, row_id: str, column: str) -> bytes:
        return self._keys.decrypt(envelope, table=table, row_id=row_id, column=column)

    def blind(self, value: str, *, domain: str) -> bytes:
        return self._keys.blind(value, domain=domain)

    def audit(
        self,
        conn: Connection,
        action: str,
        *,
        target: str | None = None,
        outcome: str = "ok",
    ) -> None:
        """Record an access to this space inside the caller's transaction."""
        audit.append(
            conn,
            user_id=self.user_id,
            actor=self.actor,
            action=action,
            space=self.space.value,
            target=target,
            outcome=outcome,
        )
