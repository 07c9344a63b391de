"""Root key sources: files (0600, atomic), env, insecure defaults (T-ENC-6), rotation."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from healthspace.errors import IntegrityError, RootKeyError
from healthspace.vault import EnvKeySource, KeyFileSource, MemoryKeySource, Vault, generate_key
from healthspace.vault.blind import BlindIndexer


def test_key_file_is_created_0600_and_differs_across_installs(tmp_path: Path) -> None:
    a = KeyFileSource.create(tmp_path / "a" / "root.key")
    b = KeyFileSource.create(tmp_path / "b" / "root.key")
    for src in (a, b):
        assert stat.S_IMODE(src.path.stat().st_mode) == 0o600
    assert a.path.read_bytes() != b.path.read_bytes()
    assert "hidden" in repr(a)


def test_key_file_refuses_to_overwrite(tmp_path: Path) -> None:
    KeyFileSource.create(tmp_path / "root.key")
    with pytest.raises(RootKeyError, match="already exists"):
        KeyFileSource.create(tmp_path / "root.key")


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    src = KeyFileSource.create(tmp_path / "root.key")
    os.chmod(src.path, 0o644)
    with pytest.raises(RootKeyError, match="chmod 600"):
        KeyFileSource(src.path)


def test_garbage_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.write_text("not json")
    path.chmod(0o600)
    with pytest.raises(RootKeyError, match="unreadable"):
        KeyFileSource(path)


@pytest.mark.parametrize(
    "value",
    [
        base64.b64encode(bytes(32)).decode(),
        base64.b64encode(b"changethis".ljust(32, b"\x00")).decode(),
        base64.b64encode(b"0123456789abcdef0123456789abcdef").decode(),
        base64.b64encode(b"short").decode(),
        "not base64 at all!",
    ],
)
def test_known_default_or_weak_env_key_fails(value: str) -> None:
    """T-ENC-6: a known-default or low-entropy root key is refused at startup."""
    with pytest.raises(RootKeyError):
        EnvKeySource(value)


def test_env_key_wraps_and_unwraps() -> None:
    key = base64.b64encode(generate_key()).decode()
    vault = Vault(EnvKeySource(key))
    wk = vault.new_data_key("u", "health")
    again = Vault(EnvKeySource(key)).open_space("u", "health", [wk])
    assert again.is_open


def test_env_rotation_reads_previous_key() -> None:
    old, new = (base64.b64encode(generate_key()).decode() for _ in range(2))
    wk = Vault(EnvKeySource(old)).new_data_key("u", "health")
    rotated = Vault(EnvKeySource(new, previous_b64=old))
    re = rotated.rewrap(wk)
    assert re.kek_id == rotated.root.primary_id != wk.kek_id
    assert Vault(EnvKeySource(new)).open_space("u", "health", [re]).is_open
    with pytest.raises(RootKeyError, match="does not hold"):
        Vault(EnvKeySource(new)).open_space("u", "health", [wk])


def test_key_file_rotation_keeps_old_keys_until_finished(tmp_path: Path) -> None:
    src = KeyFileSource.create(tmp_path / "root.key")
    vault = Vault(src)
    wk = vault.new_data_key("u", "health")
    src.begin_rotation()
    # A fresh reader of the file (another process) can open old and new wraps.
    assert Vault(KeyFileSource(src.path)).open_space("u", "health", [wk]).is_open
    re = vault.rewrap(wk)
    src.finish_rotation(frozenset({re.kek_id}))
    reread = Vault(KeyFileSource(src.path))
    assert reread.root.key_ids() == frozenset({re.kek_id})
    assert reread.open_space("u", "health", [re]).is_open
    with pytest.raises(RootKeyError):
        reread.open_space("u", "health", [wk])


def test_wrapped_key_bound_to_user_and_space() -> None:
    vault = Vault(MemoryKeySource())
    wk = vault.new_data_key("alice", "health")
    forged = type(wk)("bob", "health", wk.version, wk.kek_id, wk.wrapped)
    with pytest.raises(IntegrityError):
        vault.open_space("bob", "health", [forged])


def test_blind_index_is_keyed_and_domain_separated() -> None:
    k1, k2 = BlindIndexer(generate_key()), BlindIndexer(generate_key())
    assert k1.index("http://loinc.org|2093-3", domain="code") == k1.index(
        "http://loinc.org|2093-3", domain="code"
    )
    assert k1.index("http://loinc.org|2093-3", domain="code") != k2.index(
        "http://loinc.org|2093-3", domain="code"
    )
    assert k1.index("x", domain="code") != k1.index("x", domain="identity")
    assert len(k1.index("x", domain="code")) == 16


def test_stale_temporary_key_copies_are_removed(tmp_path: Path) -> None:
    src = KeyFileSource.create(tmp_path / "root.key")
    stale = tmp_path / ".root.key.deadbeef.tmp"
    stale.write_bytes(src.path.read_bytes())
    KeyFileSource(src.path)
    assert not stale.exists()
