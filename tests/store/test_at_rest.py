"""T-ENC-1 (no plaintext PHI at rest) and T-ENC-4 (keys apart from data)."""

from __future__ import annotations

import base64
import logging
import shutil
import struct
from pathlib import Path

import pytest
import sqlalchemy as sa

from healthspace.errors import KeyNotFoundError, RootKeyError
from healthspace.model import Attached, Sample
from healthspace.store import HealthGrant, RecordRepository, Space, Store, User, ingest
from healthspace.store.backup import backup
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.store.tables import metadata
from healthspace.vault import KeyFileSource, MemoryKeySource, Vault
from tests.conftest import files_containing
from tests.store._records import document, lab


def _canary_everywhere(store: Store, user: User, canary: str) -> None:
    pdf = f"%PDF-1.7 upload {canary}".encode()
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as s:
        ingest(
            s,
            [
                Attached(
                    lab(1, note=f"lab note {canary}"), original=f'{{"note":"{canary}"}}'.encode()
                ),
                Attached(document(pdf, title=f"scan {canary}"), file=pdf),
                Sample(metric=f"custom-{canary}", t_ms=1_700_000_000_000, value=1.0),
            ],
            source="test",
        )
        assert len(RecordRepository(s).list()) == 2  # it really is stored and readable


def test_no_plaintext_phi_in_db_wal_backup_logs_or_tmp(
    tmp_path: Path, canary: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    home, keys, out = tmp_path / "home", tmp_path / "keys", tmp_path / "out"
    for d in (home, keys, out):
        d.mkdir()
    log_file = home / "healthspace.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    try:
        store = Store(
            create_engine(f"sqlite:///{home / 'hs.db'}"),
            Vault(KeyFileSource.create(keys / "root.key")),
            KeyStore(create_engine(f"sqlite:///{keys / 'keystore.db'}")),
            actor="t",
        )
        store.initialize()
        user = store.create_user("canary@example.org")
        _canary_everywhere(store, user, canary)
        # The WAL before any checkpoint, where fresh pages live.
        assert Path(f"{home / 'hs.db'}-wal").exists()
        assert files_containing(canary.encode(), home) == []
        backup(store, out / "backup.db")
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    needle = canary.encode()
    assert files_containing(needle, home, keys, out, tmp_path) == []
    # UTF-16 and base64 spellings would hide from a plain grep.
    assert files_containing(canary.encode("utf-16-le"), home, out) == []
    assert canary not in caplog.text
    assert canary not in log_file.read_text()


@pytest.mark.postgres
def test_no_plaintext_phi_in_postgres_columns(
    pg_schema_url: str, tmp_path: Path, canary: str
) -> None:
    store = Store(
        create_engine(pg_schema_url),
        Vault(MemoryKeySource()),
        KeyStore(create_engine(f"sqlite:///{tmp_path / 'keystore.db'}")),
        actor="t",
    )
    store.initialize()
    user = store.create_user("canary@example.org")
    _canary_everywhere(store, user, canary)
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)).all():
                for value in row:
                    raw = (
                        bytes(value)
                        if isinstance(value, (bytes, memoryview))
                        else str(value).encode()
                    )
                    assert canary.encode() not in raw, table.name
    store.close()


def test_keys_are_apart_from_data(tmp_path: Path, canary: str) -> None:
    home, keys, out = tmp_path / "home", tmp_path / "keys", tmp_path / "out"
    for d in (home, keys, out):
        d.mkdir()
    source = KeyFileSource.create(keys / "root.key")
    keystore = KeyStore(create_engine(f"sqlite:///{keys / 'keystore.db'}"))
    store = Store(create_engine(f"sqlite:///{home / 'hs.db'}"), Vault(source), keystore, actor="t")
    store.initialize()
    user = store.create_user("keys@example.org")
    _canary_everywhere(store, user, canary)
    backup(store, out / "backup.db")

    # Every piece of key material: root keys, wrapped and unwrapped data keys.
    material: list[bytes] = list(source._keys.values())
    for space in ("general", "health"):
        for wk in keystore.get(user.user_id, space):
            material.append(wk.wrapped)
            ctx = (
                struct.pack(">I", len(user.user_id))
                + user.user_id.encode()
                + struct.pack(">I", len(space))
                + space.encode()
                + struct.pack(">I", wk.version)
            )
            material.append(source.unwrap(wk.kek_id, wk.wrapped, ctx))
    assert len(material) == 1 + 4
    for key in material:
        for spelling in (key, base64.b64encode(key), key.hex().encode()):
            assert files_containing(spelling, home, out) == []
    assert files_containing(b"healthspace-root-key", home, out) == []
    store.close()

    # A copy of the data directory alone opens nothing.
    stolen = tmp_path / "stolen"
    shutil.copytree(home, stolen)
    empty_keystore = KeyStore(create_engine(f"sqlite:///{tmp_path / 'other-keystore.db'}"))
    thief = Store(
        create_engine(f"sqlite:///{stolen / 'hs.db'}"), Vault(source), empty_keystore, actor="x"
    )
    thief.initialize()
    with pytest.raises(KeyNotFoundError):
        thief.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("x"))
    thief.close()
    # With the keystore but another root key: still nothing.
    wrong_root = Store(
        create_engine(f"sqlite:///{stolen / 'hs.db'}"),
        Vault(MemoryKeySource()),
        KeyStore(create_engine(f"sqlite:///{keys / 'keystore.db'}")),
        actor="x",
    )
    with pytest.raises(RootKeyError):
        wrong_root.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("x"))
    wrong_root.close()
