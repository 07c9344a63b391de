"""T-REL-2 (durable commit mode on every connection) and migrations on both engines."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from healthspace.store import Store, migrate
from healthspace.store.engine import create_engine, reader, sqlite_pragmas
from healthspace.store.tables import metadata


def test_every_sqlite_connection_is_durable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", pool_size=3)
    conns = [reader(engine) for _ in range(3)]  # three distinct pooled connections
    try:
        for conn in conns:
            got = {
                name: str(conn.exec_driver_sql(f"PRAGMA {name}").scalar())
                for name in ("journal_mode", "synchronous", "foreign_keys", "secure_delete")
            }
            assert got == {
                "journal_mode": "wal",
                "synchronous": "2",
                "foreign_keys": "1",
                "secure_delete": "1",
            }
    finally:
        for conn in conns:
            conn.close()
    assert sqlite_pragmas(engine)["synchronous"] == "2"
    engine.dispose()


def test_sqlite_file_is_owner_only(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'y.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x)")
    for f in tmp_path.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f
    engine.dispose()


def test_head_constant_is_the_newest_migration_script() -> None:
    # Commands compare against HEAD without loading Alembic; it must follow the scripts.
    assert migrate.script_head() == migrate.HEAD


def test_migrations_reach_head_and_match_the_tables(store: Store) -> None:
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    inspector = sa.inspect(store.engine)
    assert set(inspector.get_table_names()) >= {t.name for t in metadata.sorted_tables}
    for table in metadata.sorted_tables:
        cols = {c["name"] for c in inspector.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert pk[0] == "user_id", f"{table.name} is not keyed first by user_id"
    store.initialize()  # idempotent
    assert migrate.current_revision(store.engine) == migrate.head_revision()


def test_uninitialised_store_says_run_init(database_url: str, keystore: object) -> None:
    import pytest

    from healthspace.errors import NotInitializedError
    from healthspace.vault import MemoryKeySource, Vault

    st = Store(create_engine(database_url), Vault(MemoryKeySource()), keystore, actor="t")  # type: ignore[arg-type]
    with pytest.raises(NotInitializedError, match="healthspace init"):
        st.check_initialized()
    st.close()
