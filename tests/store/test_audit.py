"""T-AUD-2 (tamper evidence) and T-AUD-3 (no PHI in the audit log or app logs)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from healthspace.store import RecordRepository, SpaceSession, Store, ingest, verify_chain
from healthspace.store.tables import audit_log
from tests.store._records import lab


def _populate(health: SpaceSession) -> None:
    ingest(health, [lab(i) for i in range(5)], source="test")
    repo = RecordRepository(health)
    for r in repo.list():
        repo.get(r.record_id)


def test_chain_verifies_and_counts_every_access(store: Store, health: SpaceSession) -> None:
    _populate(health)
    report = verify_chain(store.engine)
    assert report.ok
    with store.engine.connect() as conn:
        actions = (
            conn.execute(sa.select(audit_log.c.action).where(audit_log.c.user_id == health.user_id))
            .scalars()
            .all()
        )
    assert actions.count("record.read") == 5
    assert "import.complete" in actions
    assert "space.open" in actions


@pytest.mark.parametrize("index", [0, 3, 7])
def test_edited_row_breaks_chain_at_that_index(
    store: Store, health: SpaceSession, index: int
) -> None:
    _populate(health)
    with store.engine.begin() as conn:
        conn.execute(
            audit_log.update()
            .where(audit_log.c.user_id == health.user_id, audit_log.c.seq == index)
            .values(actor="mallory")
        )
    report = verify_chain(store.engine)
    assert not report.ok
    assert [(b.user_id, b.index) for b in report.breaks] == [(health.user_id, index)]


@pytest.mark.parametrize("index", [1, 4])
def test_deleted_row_breaks_chain_at_that_index(
    store: Store, health: SpaceSession, index: int
) -> None:
    _populate(health)
    with store.engine.begin() as conn:
        conn.execute(
            audit_log.delete().where(
                audit_log.c.user_id == health.user_id, audit_log.c.seq == index
            )
        )
    report = verify_chain(store.engine)
    assert [(b.user_id, b.index) for b in report.breaks] == [(health.user_id, index)]


def test_no_phi_in_audit_or_logs(
    store: Store, health: SpaceSession, canary: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        ingest(health, [lab(1, note=canary)], source="test")
        repo = RecordRepository(health)
        repo.get(repo.list()[0].record_id)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log)).all()
    assert rows
    dumped = repr(rows)
    assert canary not in dumped
    assert "2093-3" not in dumped  # not even the code
    assert canary not in caplog.text


def test_control_characters_are_escaped(store: Store) -> None:
    user = store.create_user("x@example.org")
    store.actor = "evil\nactor\x1b[31m"
    store.record_event("store.init", user_id=user.user_id)
    with store.engine.connect() as conn:
        actor = conn.execute(
            sa.select(audit_log.c.actor).where(audit_log.c.action == "store.init")
        ).scalar()
    assert actor == "evil\\x0aactor\\x1b[31m"
    assert verify_chain(store.engine).ok
