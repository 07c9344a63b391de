"""The keystore: wrapped data keys, kept in their own database apart from the data.

Default: an SQLite file beside the root key (outside HEALTHSPACE_HOME); a
PostgreSQL URL works too for multi-server installs. The data database and its
backups never hold a data key, wrapped or not (T-ENC-4), which is what makes
deleting a key here a real crypto-shred of every copy of the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from healthspace.errors import NotInitializedError
from healthspace.store.engine import autocommit, reader
from healthspace.store.tables import data_keys, keystore_meta, keystore_metadata
from healthspace.vault import Vault, WrappedKey

__all__ = ["KeyStore"]

SCHEMA_VERSION = "1"


def _wk(row: sa.Row[tuple[object, ...]]) -> WrappedKey:
    m = row._mapping
    return WrappedKey(
        str(m["user_id"]), str(m["space"]), int(m["version"]), str(m["kek_id"]), bytes(m["wrapped"])
    )


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __repr__(self) -> str:
        return f"KeyStore({self.engine.dialect.name})"

    def close(self) -> None:
        self.engine.dispose()

    def initialize(self) -> None:
        with self.engine.begin() as conn:
            keystore_metadata.create_all(conn)
            found = conn.execute(
                sa.select(keystore_meta.c.value).where(keystore_meta.c.key == "schema_version")
            ).scalar()
            if found is None:
                conn.execute(
                    keystore_meta.insert().values(key="schema_version", value=SCHEMA_VERSION)
                )

    def check_initialized(self) -> None:
        if not sa.inspect(self.engine).has_table("data_keys"):
            raise NotInitializedError("the keystore is missing or empty; run `healthspace init`")

    def add(self, keys: Iterable[WrappedKey]) -> None:
        now = datetime.now(UTC)
        rows = [
            {
                "user_id": k.user_id,
                "space": k.space,
                "version": k.version,
                "kek_id": k.kek_id,
                "wrapped": k.wrapped,
                "created_at": now,
            }
            for k in keys
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(data_keys.insert(), rows)

    def get(self, user_id: str, space: str) -> list[WrappedKey]:
        with reader(self.engine) as conn:
            rows = conn.execute(
                sa.select(data_keys).where(
                    data_keys.c.user_id == user_id, data_keys.c.space == space
                )
            ).all()
            conn.rollback()
        return [_wk(r) for r in rows]

    def users(self) -> set[str]:
        with reader(self.engine) as conn:
            found = {
                str(u) for u in conn.execute(sa.select(data_keys.c.user_id).distinct()).scalars()
            }
            conn.rollback()
        return found

    def destroy(self, user_id: str, spaces: Iterable[str]) -> int:
        """Delete the data keys of these spaces; returns how many were destroyed."""
        with self.engine.begin() as conn:
            n = conn.execute(
                data_keys.delete().where(
                    data_keys.c.user_id == user_id, data_keys.c.space.in_(list(spaces))
                )
            ).rowcount
        if self.engine.dialect.name == "sqlite":
            # secure_delete zeroed the rows; make sure no copy lingers in the WAL.
            with autocommit(self.engine) as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    def kek_ids_in_use(self) -> frozenset[str]:
        with reader(self.engine) as conn:
            ids = frozenset(
                str(k) for k in conn.execute(sa.select(data_keys.c.kek_id).distinct()).scalars()
            )
            conn.rollback()
        return ids

    def rewrap_all(self, vault: Vault, step: object = None) -> int:
        """Re-wrap every key not under the primary root key, in one transaction."""
        from collections.abc import Callable

        checkpoint: Callable[[str], None] = step if callable(step) else (lambda _n: None)
        primary = vault.root.primary_id
        count = 0
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(data_keys).where(data_keys.c.kek_id != primary)).all()
            for r in rows:
                wk = vault.rewrap(_wk(r))
                conn.execute(
                    data_keys.update()
                    .where(
                        data_keys.c.user_id == wk.user_id,
                        data_keys.c.space == wk.space,
                        data_keys.c.version == wk.version,
                    )
                    .values(kek_id=wk.kek_id, wrapped=wk.wrapped)
                )
                count += 1
                checkpoint("rewrap-one")
            checkpoint("before-commit")
        return count
