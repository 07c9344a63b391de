"""T-ISO-2: the general space cannot read health data, even when handed its ids."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from healthspace.errors import IntegrityError, UsageError
from healthspace.store import (
    HealthGrant,
    RecordRepository,
    Space,
    SpaceSession,
    Store,
    User,
    ingest,
)
from healthspace.store.tables import records
from tests.store._records import lab


def test_general_session_cannot_decrypt_a_health_row(
    store: Store, health: SpaceSession, general: SpaceSession
) -> None:
    ingest(health, [lab(1, note="CANARY-iso")], source="test")
    health_id = RecordRepository(health).list()[0].record_id
    # Through the repository: the row is simply not in the general space.
    with pytest.raises(UsageError):
        RecordRepository(general).get(health_id)
    # Even a buggy query that fetches the health row cannot decrypt it: the key
    # differs and the associated data names the health space.
    with store.engine.connect() as conn:
        payload = conn.execute(
            sa.select(records.c.payload).where(records.c.record_id == health_id)
        ).scalar()
    assert payload is not None
    with pytest.raises(IntegrityError):
        general.decrypt(bytes(payload), table="records", row_id=health_id, column="payload")


def test_health_space_needs_a_grant(store: Store, user: User) -> None:
    with pytest.raises(PermissionError):
        store.open_session(user.user_id, Space.HEALTH)
    with pytest.raises(PermissionError):
        store.open_session(user.user_id, Space.HEALTH, grant="operator")  # type: ignore[arg-type]
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
        assert s.space is Space.HEALTH


def test_another_users_session_cannot_decrypt(store: Store, health: SpaceSession) -> None:
    ingest(health, [lab(1)], source="test")
    rid = RecordRepository(health).list()[0].record_id
    other = store.create_user("other@example.org")
    with store.open_session(other.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as theirs:
        with pytest.raises(UsageError):
            RecordRepository(theirs).get(rid)
        with store.engine.connect() as conn:
            payload = conn.execute(
                sa.select(records.c.payload).where(records.c.record_id == rid)
            ).scalar()
        with pytest.raises(IntegrityError):
            theirs.decrypt(bytes(payload), table="records", row_id=rid, column="payload")


def test_closed_session_holds_no_keys(store: Store, user: User) -> None:
    s = store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t"))
    s.close()
    assert not s.is_open
    with pytest.raises(Exception, match="forgotten"):
        s.encrypt(b"x", table="t", row_id="r", column="c")


def test_general_layers_never_reach_health_keys_statically() -> None:
    """Only the store facade and the CLI's operator path mint health grants."""
    import pathlib

    import healthspace

    root = pathlib.Path(healthspace.__file__).parent
    minting = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "HealthGrant.operator(" in p.read_text() or "HealthGrant.authenticated(" in p.read_text()
    )
    assert all(m.startswith("cli/") for m in minting), minting
