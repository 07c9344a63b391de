"""T-ENC-9: a root key rotation is crash-safe.

A real key file, a file SQLite data database and a file SQLite keystore. The rotation
runs in a fresh interpreter that SIGKILLs itself at a checkpoint step of
``Store.rotate_root_key`` (every step it emits; the re-wrap step at its first, a middle
and its last occurrence), or just before an atomic key-file replace. Afterwards the
store opens from the files with a fresh key source, the data decrypts to what was
stored, both databases pass ``integrity_check``, the keystore never holds a mix of old
and new wraps, and re-running the rotation completes with exactly one key left. The key
file is mode 0600 at every step.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from healthspace.store import Space, Store, ingest
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.vault import KeyFileSource, Vault
from tests.store import _harness as h

USERS = ("ada@example.org", "grace@example.org", "alan@example.org")
EXPECTED_STEPS = ("begin", "new-root-key", "rewrap-one", "before-commit", "committed", "done")

# (step, which occurrence): "middle"/"last" resolve against the discovered run.
KILL_POINTS: list[tuple[str, int | str]] = [
    ("begin", 1),
    ("new-root-key", 1),
    ("rewrap-one", 1),
    ("rewrap-one", "middle"),
    ("rewrap-one", "last"),
    ("before-commit", 1),
    ("committed", 1),
    ("done", 1),
]


def _urls(root: Path) -> tuple[str, str, Path]:
    return (
        f"sqlite:///{root / 'data.db'}",
        f"sqlite:///{root / 'keys' / 'keystore.db'}",
        root / "keys" / "root.key",
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three users, each with records (one per space at least) stored through ingest."""
    root = tmp_path_factory.mktemp("rotation-template")
    (root / "keys").mkdir(mode=0o700)
    data_url, ks_url, key_file = _urls(root)
    KeyFileSource.create(key_file)
    store = Store(
        create_engine(data_url), Vault(KeyFileSource(key_file)), KeyStore(create_engine(ks_url))
    )
    store.initialize()
    expected: dict[str, Any] = {}
    try:
        for n, email in enumerate(USERS):
            user = store.create_user(email)
            canary = f"CANARY-rot-{n}-9f1c"
            with h.health(store, user.user_id) as s:
                ingest(
                    s,
                    [
                        h.observation(f"lab:{n}:1", 190.0 + n, note=canary),
                        h.observation(f"lab:{n}:2", 120.5 + n),
                        h.document(f"doc:{n}", f"%PDF-1.4 {canary}".encode()),
                    ],
                    source="test",
                )
            with store.open_session(user.user_id, Space.GENERAL) as s:
                ingest(s, [h.observation(f"gen:{n}", 1.0 + n)], source="test")
        expected = h.store_canonical(store)
        data_keys = len(h.wrapped_keys(store.keystore))
    finally:
        store.close()
    assert data_keys == 2 * len(USERS)
    return {"root": root, "expected": expected, "data_keys": data_keys}


def _copy(template: dict[str, Any], dest: Path) -> tuple[str, str, Path]:
    shutil.copytree(template["root"], dest)  # copy2 keeps the 0600 mode of the key file
    return _urls(dest)


@pytest.fixture(scope="module")
def discovered(template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The checkpoint steps one uninterrupted rotation emits, in order."""
    data_url, ks_url, key_file = _copy(template, tmp_path_factory.mktemp("discover") / "store")
    steps: list[str] = []
    store = h.open_store(data_url, ks_url, key_file=key_file)
    try:
        report = store.rotate_root_key(checkpoint=steps.append)
    finally:
        store.close()
    assert report.rewrapped == template["data_keys"]
    return steps


def test_kill_points_cover_every_step(discovered: list[str], template: dict[str, Any]) -> None:
    assert set(discovered) == set(EXPECTED_STEPS) == {step for step, _ in KILL_POINTS}, (
        f"rotate_root_key emits {discovered}; add the new steps to KILL_POINTS"
    )
    assert discovered.count("rewrap-one") == template["data_keys"]
    assert discovered[0] == "begin"
    assert discovered[-1] == "done"
    assert discovered.index("committed") > discovered.index("before-commit")


def _occurrence(discovered: list[str], step: str, which: int | str) -> int:
    total = discovered.count(step)
    if which == "middle":
        return (total + 1) // 2
    if which == "last":
        return total
    assert isinstance(which, int)
    return which


def _trace(path: Path) -> list[tuple[str, int]]:
    out = []
    for line in path.read_text().splitlines():
        step, mode = line.split()
        out.append((step, int(mode, 8)))
    return out


def _check_recovered(
    template: dict[str, Any], root: Path, *, expect_kek: str | None = None
) -> tuple[str, frozenset[str]]:
    """Open the store from the files with a fresh key source; every user's spaces open
    and hold exactly what was stored. Returns (kek id in use, key ids in the file)."""
    data_url, ks_url, key_file = _urls(root)
    assert h.mode_of(key_file) == 0o600
    for db in (root / "data.db", root / "keys" / "keystore.db"):
        integrity, fks = h.sqlite_checks(db)
        assert integrity == [("ok",)], f"{db.name}: {integrity}"
        assert fks == [], f"{db.name}: {fks}"
    source = KeyFileSource(key_file)
    store = Store(create_engine(data_url), Vault(source), KeyStore(create_engine(ks_url)))
    try:
        store.check_initialized()
        keks = {row[3] for row in h.wrapped_keys(store.keystore)}
        # One transaction re-wraps every key: never a mix of old and new wraps.
        assert len(keks) == 1, f"keystore holds keys wrapped by {keks}"
        (kek,) = keks
        assert kek in source.key_ids()
        if expect_kek is not None:
            assert kek == expect_kek
        assert len(h.wrapped_keys(store.keystore)) == template["data_keys"]
        # Old key or new key, never neither: every space opens and decrypts.
        assert h.store_canonical(store) == template["expected"]
        return kek, source.key_ids()
    finally:
        store.close()


def _rotate_again(template: dict[str, Any], root: Path) -> None:
    data_url, ks_url, key_file = _urls(root)
    store = h.open_store(data_url, ks_url, key_file=key_file)
    try:
        report = store.rotate_root_key()
    finally:
        store.close()
    assert report.rewrapped == template["data_keys"]
    kek, ids = _check_recovered(template, root, expect_kek=report.root_key_id)
    assert ids == {report.root_key_id}, "the key file must hold exactly one key after a rotation"
    assert KeyFileSource(key_file).primary_id == report.root_key_id == kek


def _run_kill(spec: dict[str, Any]) -> None:
    proc = h.run_fresh("rotate", spec)
    assert proc.returncode == -9, (
        f"the rotation child should have died by SIGKILL, got {proc.returncode}: "
        f"{proc.stderr[-2000:]}"
    )


@pytest.mark.parametrize(("step", "which"), KILL_POINTS, ids=[f"{s}-{w}" for s, w in KILL_POINTS])
def test_sigkill_during_rotation_leaves_a_store_that_opens(
    step: str, which: int | str, template: dict[str, Any], discovered: list[str], tmp_path: Path
) -> None:
    root = tmp_path / "store"
    data_url, ks_url, key_file = _copy(template, root)
    old = KeyFileSource(key_file)
    (old_kek,) = old.key_ids()
    occurrence = _occurrence(discovered, step, which)
    trace = tmp_path / "trace"
    _run_kill(
        {
            "data_url": data_url,
            "keystore_url": ks_url,
            "key_file": str(key_file),
            "kill_step": step,
            "kill_occurrence": occurrence,
            "trace": str(trace),
        }
    )
    # The child reached exactly the steps before the kill, in the discovered order.
    seen = _trace(trace)
    position = [i for i, s in enumerate(discovered) if s == step][occurrence - 1]
    assert [s for s, _ in seen] == discovered[: position + 1]
    assert all(mode == 0o600 for _, mode in seen), f"key file mode changed during rotation: {seen}"

    after = KeyFileSource(key_file)
    committed = position >= discovered.index("committed")
    if position < discovered.index("new-root-key"):
        assert after.key_ids() == {old_kek}
    else:
        assert old_kek in after.key_ids() or committed
        assert after.primary_id != old_kek
    kek, _ = _check_recovered(template, root)
    if committed:
        assert kek == after.primary_id, "after the commit every data key is under the new key"
    else:
        assert kek == old_kek, "before the commit every data key is under the old key"
    _rotate_again(template, root)
    assert h.mode_of(key_file) == 0o600


@pytest.mark.parametrize(
    "replace_call", [1, 2], ids=["begin_rotation-write", "finish_rotation-write"]
)
def test_sigkill_while_the_key_file_is_replaced(
    replace_call: int, template: dict[str, Any], tmp_path: Path
) -> None:
    """Die between writing the new key file and renaming it over the old one."""
    root = tmp_path / "store"
    data_url, ks_url, key_file = _copy(template, root)
    (old_kek,) = KeyFileSource(key_file).key_ids()
    trace = tmp_path / "trace"
    _run_kill(
        {
            "data_url": data_url,
            "keystore_url": ks_url,
            "key_file": str(key_file),
            "kill_replace": replace_call,
            "trace": str(trace),
        }
    )
    assert _trace(trace)[-1][0] == f"replace#{replace_call}"
    kek, ids = _check_recovered(template, root)
    if replace_call == 1:
        # The new key never reached the key file, so nothing was re-wrapped.
        assert ids == {old_kek}
        assert kek == old_kek
    else:
        # Re-wrapped and committed; the file still holds the old key as well.
        assert kek != old_kek
        assert old_kek in ids
    # Whatever the leftover temporary file holds, it is owner-only.
    for leftover in (root / "keys").iterdir():
        assert h.mode_of(leftover) & 0o077 == 0, f"{leftover.name} is readable by others"
    _rotate_again(template, root)
