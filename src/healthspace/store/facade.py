"""The Store: users, spaces, keys, sessions and whole-account operations."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from healthspace.errors import (
    KeyNotFoundError,
    NotInitializedError,
    UsageError,
    UserExistsError,
    UserNotFoundError,
)
from healthspace.store import audit, migrate
from healthspace.store.access import HealthGrant
from healthspace.store.engine import autocommit, is_sqlite, reader
from healthspace.store.keystore import KeyStore
from healthspace.store.session import Space, SpaceSession
from healthspace.store.tables import spaces, users
from healthspace.vault import Vault, hash_password

__all__ = ["RotationReport", "Store", "User"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class RotationReport:
    rewrapped: int
    root_key_id: str


def _now() -> datetime:
    return datetime.now(UTC)


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise UsageError("not a valid email address")
    return email


class Store:
    """The database plus the vault. Hands out space sessions; never plaintext keys."""

    def __init__(
        self, engine: Engine, vault: Vault, keystore: KeyStore, *, actor: str = "system"
    ) -> None:
        self.engine = engine
        self.vault = vault
        self.keystore = keystore
        self.actor = actor

    def __repr__(self) -> str:
        return f"Store({self.engine.dialect.name}, actor={self.actor!r})"

    def close(self) -> None:
        self.engine.dispose()
        self.keystore.close()

    # -- schema ---------------------------------------------------------------

    def initialize(self) -> None:
        """Create or upgrade the schema to the newest migration (idempotent)."""
        self.keystore.initialize()
        migrate.upgrade(self.engine)
        self.resume_deletions()

    def check_initialized(self) -> None:
        if migrate.current_revision(self.engine) != migrate.head_revision():
            raise NotInitializedError(
                "database schema is missing or out of date; run `healthspace init`"
            )
        self.keystore.check_initialized()
        self.resume_deletions()

    # -- users ----------------------------------------------------------------

    def create_user(self, email: str, password: str | None = None) -> User:
        """Create a user with both spaces and a fresh data key for each."""
        email = normalise_email(email)
        user_id = str(uuid.uuid4())
        now = _now()
        pw_hash = hash_password(password) if password else None
        # Keys first: a crash after this leaves only an orphan key, never rows
        # without a key.
        self.keystore.add(self.vault.new_data_key(user_id, space.value) for space in Space)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    users.insert().values(
                        user_id=user_id,
                        email=email,
                        password_hash=pw_hash,
                        status="active",
                        created_at=now,
                    )
                )
                for space in Space:
                    conn.execute(
                        spaces.insert().values(
                            user_id=user_id, space=space.value, status="active", created_at=now
                        )
                    )
                audit.append(conn, user_id=user_id, actor=self.actor, action="user.create")
        except DBIntegrityError:
            self.keystore.destroy(user_id, [s.value for s in Space])
            raise UserExistsError("a user with that email already exists") from None
        return User(user_id, email, "active", now)

    def find_user(self, email: str) -> User:
        email = normalise_email(email)
        with reader(self.engine) as conn:
            row = conn.execute(sa.select(users).where(users.c.email == email)).first()
            conn.rollback()
        if row is None:
            raise UserNotFoundError("no user with that email")
        return User(row.user_id, row.email, row.status, row.created_at)

    def list_users(self) -> list[User]:
        with reader(self.engine) as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.created_at)).all()
            conn.rollback()
        return [User(r.user_id, r.email, r.status, r.created_at) for r in rows]

    # -- sessions ---------------------------------------------------------------

    def open_session(
        self, user_id: str, space: Space, *, grant: HealthGrant | None = None
    ) -> SpaceSession:
        """Open one space of one user. The health space needs a HealthGrant."""
        space = Space(space)
        if space is Space.HEALTH and not isinstance(grant, HealthGrant):
            raise PermissionError("the health space opens only with a HealthGrant")
        actor = grant.actor if grant is not None else self.actor
        with self.engine.begin() as conn:
            state = conn.execute(
                sa.select(spaces.c.status).where(
                    spaces.c.user_id == user_id, spaces.c.space == space.value
                )
            ).scalar()
            if state is None:
                raise UserNotFoundError("no such user")
            if state != "active":
                raise KeyNotFoundError(f"the {space.value} space is being deleted")
            wrapped = self.keystore.get(user_id, space.value)
            if not wrapped:
                raise KeyNotFoundError(
                    f"the keystore has no key for this {space.value} space "
                    "(deleted, or this database is not from this keystore)"
                )
            keys = self.vault.open_space(user_id, space.value, wrapped)
            method = grant.method if grant is not None else "general"
            audit.append(
                conn,
                user_id=user_id,
                actor=actor,
                action="space.open",
                space=space.value,
                target=method,
            )
        return SpaceSession(self.engine, keys, actor=actor)

    def general_session(self, user_id: str) -> SpaceSession:
        return self.open_session(user_id, Space.GENERAL)

    def health_session(self, user_id: str, grant: HealthGrant) -> SpaceSession:
        return self.open_session(user_id, Space.HEALTH, grant=grant)

    # -- deletion (crypto-shredding) ----------------------------------------------

    def delete_space(self, user_id: str, space: Space) -> None:
        """Destroy a space: its data key first, then every row, then compact."""
        self._shred(user_id, (Space(space),), delete_user=False)

    def delete_user(self, user_id: str) -> None:
        """Destroy an account: every data key, every row, then compact the file."""
        self._shred(user_id, tuple(Space), delete_user=True)

    def _shred(self, user_id: str, targets: tuple[Space, ...], *, delete_user: bool) -> None:
        names = [s.value for s in targets]
        with self.engine.begin() as conn:
            if (
                conn.execute(sa.select(users.c.user_id).where(users.c.user_id == user_id)).first()
                is None
            ):
                raise UserNotFoundError("no such user")
            # Step 1, durable intent: if we are killed from here on, the deletion is
            # re-driven on the next open (resume_deletions).
            if delete_user:
                conn.execute(
                    users.update().where(users.c.user_id == user_id).values(status="deleting")
                )
            conn.execute(
                spaces.update()
                .where(spaces.c.user_id == user_id, spaces.c.space.in_(names))
                .values(status="deleting")
            )
        self._finish_deletion(user_id, names, delete_user=delete_user)

    def _finish_deletion(self, user_id: str, names: list[str], *, delete_user: bool) -> None:
        from healthspace.store.tables import (
            connections,
            files,
            import_jobs,
            records,
            series_chunks,
        )

        # Step 2, crypto-shred: from this commit on every copy of the ciphertext,
        # backups included, is unreadable.
        self.keystore.destroy(user_id, names)
        # Step 3, the rows themselves.
        with self.engine.begin() as conn:
            for table in (records, files, series_chunks, import_jobs, connections):
                conn.execute(
                    table.delete().where(table.c.user_id == user_id, table.c.space.in_(names))
                )
            if delete_user:
                conn.execute(spaces.delete().where(spaces.c.user_id == user_id))
                conn.execute(users.delete().where(users.c.user_id == user_id))
            audit.append(
                conn,
                user_id=user_id,
                actor=self.actor,
                action="user.delete" if delete_user else "space.delete",
                space=None if delete_user else names[0],
            )
        if not delete_user:
            # The emptied space gets a fresh key so it can be used again.
            self.keystore.add(self.vault.new_data_key(user_id, name) for name in names)
            with self.engine.begin() as conn:
                conn.execute(
                    spaces.update()
                    .where(spaces.c.user_id == user_id, spaces.c.space.in_(names))
                    .values(status="active")
                )
        self.compact()

    def resume_deletions(self) -> int:
        """Finish deletions a kill interrupted; returns how many were re-driven."""
        with reader(self.engine) as conn:
            rows = conn.execute(
                sa.select(spaces.c.user_id, spaces.c.space, users.c.status)
                .join(users, users.c.user_id == spaces.c.user_id)
                .where(spaces.c.status == "deleting")
            ).all()
            conn.rollback()
        pending: dict[tuple[str, bool], list[str]] = {}
        for r in rows:
            pending.setdefault((str(r.user_id), r.status == "deleting"), []).append(str(r.space))
        for (user_id, whole), names in pending.items():
            self._finish_deletion(user_id, names, delete_user=whole)
        return len(pending)

    def compact(self) -> None:
        """Make deleted bytes physically gone: checkpoint and truncate the WAL, VACUUM."""
        with autocommit(self.engine) as conn:
            if is_sqlite(self.engine):
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                conn.exec_driver_sql("VACUUM")

    # -- root key rotation ----------------------------------------------------------

    def rotate_root_key(self, checkpoint: Callable[[str], None] | None = None) -> RotationReport:
        """Re-wrap every data key under a new root key; safe to kill at any step.

        Steps: (1) the key source adds a new primary root key, keeping the old ones;
        (2) every data key is re-wrapped in one transaction; (3) root keys no data key
        uses any more are dropped. Between any two steps the stored data keys are all
        wrapped by a root key the source still holds, so the database always opens.
        Re-running after a kill completes the rotation.
        """
        step = checkpoint or (lambda _name: None)
        step("begin")
        self.vault.root.begin_rotation()
        step("new-root-key")
        primary = self.vault.root.primary_id
        count = self.keystore.rewrap_all(self.vault, step)
        step("committed")
        self.vault.root.finish_rotation(self.keystore.kek_ids_in_use())
        self.record_event("keys.rotate", target=f"n={count}")
        step("done")
        return RotationReport(rewrapped=count, root_key_id=primary)

    def record_event(
        self, action: str, *, user_id: str = audit.SYSTEM, target: str | None = None
    ) -> None:
        """Write a non-space event (init, backup, restore) to the audit log."""
        with self.engine.begin() as conn:
            audit.append(conn, user_id=user_id, actor=self.actor, action=action, target=target)
