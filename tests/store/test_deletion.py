"""T-DEL-1 (account deletion completeness) and T-DEL-2 (secure_delete)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from healthspace.errors import IntegrityError, KeyNotFoundError, UserNotFoundError
from healthspace.model import Attached, Sample
from healthspace.store import (
    HealthGrant,
    RecordRepository,
    Space,
    SpaceSession,
    Store,
    User,
    ingest,
)
from healthspace.store.tables import metadata
from tests.conftest import files_containing
from tests.store._records import document, lab


def _fill(health: SpaceSession, canary: str) -> None:
    pdf = f"%PDF-1.7 {canary}".encode()
    ingest(
        health,
        [
            Attached(lab(1, note=canary), original=f'{{"note": "{canary}"}}'.encode()),
            Attached(document(pdf), file=pdf),
            Sample(metric="heart_rate", t_ms=1_700_000_000_000, value=70.0),
        ],
        source="test",
    )


def _rows_of(store: Store, user_id: str) -> dict[str, int]:
    out = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "audit_log":
                continue
            n = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.user_id == user_id)
            ).scalar()
            out[table.name] = int(n or 0)
    return out


def test_account_deletion_is_complete(
    store: Store, user: User, health: SpaceSession, canary: str, tmp_path: Path
) -> None:
    _fill(health, canary)
    # Capture a ciphertext as an attacker holding an old backup would.
    with store.engine.connect() as conn:
        rid, payload = conn.execute(sa.text("SELECT record_id, payload FROM records")).first()  # type: ignore[misc]
    store.delete_user(user.user_id)
    assert all(n == 0 for n in _rows_of(store, user.user_id).values())
    assert store.keystore.get(user.user_id, "health") == []
    assert store.keystore.get(user.user_id, "general") == []
    with pytest.raises(UserNotFoundError):
        store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t"))
    if store.engine.dialect.name == "sqlite":
        db = Path(store.engine.url.database or "")
        assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
        assert files_containing(canary.encode(), db.parent) == []
    # The key is gone, so the old ciphertext is unreadable with whatever remains:
    # no key left in the keystore opens it.
    with pytest.raises(KeyNotFoundError):
        store.vault.open_space(user.user_id, "health", store.keystore.get(user.user_id, "health"))
    other = store.create_user("survivor@example.org")
    for uid in store.keystore.users():
        assert uid == other.user_id
        for space in ("general", "health"):
            keys = store.vault.open_space(uid, space, store.keystore.get(uid, space))
            with pytest.raises(IntegrityError):
                keys.decrypt(bytes(payload), table="records", row_id=rid, column="payload")


def test_old_backup_ciphertext_is_dead_after_deletion(
    store: Store, user: User, canary: str
) -> None:
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
        _fill(s, canary)
    wrapped = store.keystore.get(user.user_id, "health")
    store.delete_user(user.user_id)
    # Remaining keys: the other spaces' keys and the root key. None opens this user.
    remaining = [store.keystore.get(u, "health") for u in store.keystore.users()]
    assert all(w[0].wrapped != wrapped[0].wrapped for w in remaining)
    with pytest.raises(KeyNotFoundError):
        store.vault.open_space(user.user_id, "health", store.keystore.get(user.user_id, "health"))


def test_deleting_one_space_keeps_the_other(store: Store, user: User, canary: str) -> None:
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
        _fill(s, canary)
    with store.open_session(user.user_id, Space.GENERAL) as g:
        ingest(g, [lab(9)], source="test")
    store.delete_space(user.user_id, Space.HEALTH)
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
        assert RecordRepository(s).list() == []  # empty, with a fresh key
    with store.open_session(user.user_id, Space.GENERAL) as g:
        assert len(RecordRepository(g).list()) == 1


def test_interrupted_deletion_is_redriven(store: Store, user: User, canary: str) -> None:
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
        _fill(s, canary)
    # Simulate a kill right after the durable "deleting" mark, before the shred.
    from healthspace.store.tables import spaces, users

    with store.engine.begin() as conn:
        conn.execute(
            users.update().where(users.c.user_id == user.user_id).values(status="deleting")
        )
        conn.execute(
            spaces.update().where(spaces.c.user_id == user.user_id).values(status="deleting")
        )
    with pytest.raises(KeyNotFoundError, match="being deleted"):
        store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t"))
    assert store.resume_deletions() == 1
    assert all(n == 0 for n in _rows_of(store, user.user_id).values())
    assert store.keystore.get(user.user_id, "health") == []


def test_secure_delete_on_every_connection_and_canary_gone(
    tmp_path: Path, canary: str, root_source: object, keystore: object
) -> None:
    """T-DEL-2 on SQLite specifically."""
    from healthspace.store.engine import create_engine
    from healthspace.vault import Vault

    db = tmp_path / "data" / "hs.db"
    db.parent.mkdir()
    store = Store(create_engine(f"sqlite:///{db}"), Vault(root_source), keystore, actor="t")  # type: ignore[arg-type]
    store.initialize()
    user = store.create_user("del@example.org")
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
        _fill(s, canary)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    store.delete_user(user.user_id)
    store.close()
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    raw.close()
    assert files_containing(canary.encode(), db.parent) == []
    assert files_containing(b"del@example.org", db.parent) == []
