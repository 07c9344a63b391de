"""The envelope format: round trips, integrity and binding (T-ENC-2), nonces (T-ENC-3)."""

from __future__ import annotations

import ast
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import healthspace
from healthspace.errors import IntegrityError
from healthspace.vault import MemoryKeySource, SpaceKeys, Vault
from healthspace.vault._envelope import (
    OVERHEAD,
    DataCipher,
    Place,
    envelope_nonce,
    envelope_version,
    place_aad,
    place_prefix,
)

VAULT = Vault(MemoryKeySource())
ALICE_H = VAULT.open_space("alice", "health", [VAULT.new_data_key("alice", "health")])
ALICE_G = VAULT.open_space("alice", "general", [VAULT.new_data_key("alice", "general")])
BOB_H = VAULT.open_space("bob", "health", [VAULT.new_data_key("bob", "health")])

names = st.text(min_size=0, max_size=40)


@given(plaintext=st.binary(max_size=4096), table=names, row=names, column=names)
def test_round_trip(plaintext: bytes, table: str, row: str, column: str) -> None:
    env = ALICE_H.encrypt(plaintext, table=table, row_id=row, column=column)
    assert len(env) == len(plaintext) + OVERHEAD
    assert envelope_version(env) == 1
    assert ALICE_H.decrypt(env, table=table, row_id=row, column=column) == plaintext


@given(plaintext=st.binary(min_size=1, max_size=512), position=st.integers(min_value=0))
def test_any_flipped_byte_is_an_integrity_error(plaintext: bytes, position: int) -> None:
    env = bytearray(ALICE_H.encrypt(plaintext, table="records", row_id="r1", column="payload"))
    env[position % len(env)] ^= 0x01
    with pytest.raises(IntegrityError):
        ALICE_H.decrypt(bytes(env), table="records", row_id="r1", column="payload")


@pytest.mark.parametrize(
    ("keys", "place"),
    [
        (ALICE_H, ("records", "r2", "payload")),  # swapped between two rows
        (ALICE_H, ("records", "r1", "original")),  # moved to another column
        (ALICE_H, ("files", "r1", "payload")),  # moved to another table
        (BOB_H, ("records", "r1", "payload")),  # another user
        (ALICE_G, ("records", "r1", "payload")),  # the general space
    ],
)
def test_ciphertext_is_bound_to_its_place(keys: object, place: tuple[str, str, str]) -> None:
    env = ALICE_H.encrypt(b"LDL 162 mg/dL", table="records", row_id="r1", column="payload")
    table, row, column = place
    with pytest.raises(IntegrityError):
        keys.decrypt(env, table=table, row_id=row, column=column)  # type: ignore[attr-defined]


def test_truncated_envelope_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        ALICE_H.decrypt(b"\x01\x00", table="t", row_id="r", column="c")


def test_nonces_are_unique_over_100k_envelopes() -> None:
    """T-ENC-3: (key version, nonce) pairs never repeat."""
    seen = set()
    for i in range(100_000):
        env = ALICE_H.encrypt(b"x", table="records", row_id=str(i), column="payload")
        seen.add((envelope_version(env), envelope_nonce(env)))
    assert len(seen) == 100_000


def test_nonces_come_only_from_os_urandom() -> None:
    """T-ENC-3 static check: every AEAD encrypt(nonce, data, aad) call in the package
    takes a nonce assigned from new_nonce() in the same function, and new_nonce()
    is os.urandom."""
    src = Path(healthspace.__file__).parent
    offenders = []
    aead_calls = 0
    for path in src.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            fresh = {
                t.id
                for node in ast.walk(func)
                if isinstance(node, ast.Assign) and ast.unparse(node.value) == "new_nonce()"
                for t in node.targets
                if isinstance(t, ast.Name)
            }
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "encrypt"
                    and len(node.args) == 3
                    and any(k in ast.unparse(node.func.value) for k in ("AESGCM", "_aead"))
                ):
                    aead_calls += 1
                    nonce = node.args[0]
                    if not (isinstance(nonce, ast.Name) and nonce.id in fresh):
                        offenders.append(f"{path.name}:{node.lineno}")
            if func.name == "new_nonce":
                assert "os.urandom(NONCE_BYTES)" in ast.unparse(func)
    assert aead_calls >= 2  # the data cipher and the key wrap
    assert offenders == []


def test_forgotten_keys_cannot_decrypt() -> None:
    keys = VAULT.open_space("carol", "health", [VAULT.new_data_key("carol", "health")])
    env = keys.encrypt(b"x", table="t", row_id="r", column="c")
    keys.forget()
    assert not keys.is_open
    with pytest.raises(Exception, match="forgotten"):
        keys.decrypt(env, table="t", row_id="r", column="c")
    assert "key=" not in repr(keys) or "hidden" in repr(keys)


def reference_aad(user_id: str, space: str, table: str, row_id: str, column: str) -> bytes:
    """The associated data as first written: every envelope at rest is bound to this."""
    out = bytearray(b"hs-aad-v1")
    for part in (user_id, space, table, row_id, column):
        raw = part.encode()
        out += struct.pack(">I", len(raw))
        out += raw
    return bytes(out)


@given(user=names, space=names, table=names, row=names, column=names)
def test_associated_data_is_unchanged(
    user: str, space: str, table: str, row: str, column: str
) -> None:
    want = reference_aad(user, space, table, row, column)
    assert Place(user, space, table, row, column).encode() == want
    assert place_aad(place_prefix(user, space, table), row, column) == want


@given(plaintext=st.binary(max_size=64), table=names, row=names, column=names)
def test_envelopes_bound_the_first_way_still_open(
    plaintext: bytes, table: str, row: str, column: str
) -> None:
    """SpaceKeys builds the associated data from a cached prefix; what it opens and
    what it seals are bound exactly as before."""
    key = os.urandom(32)
    keys = SpaceKeys("alice", "health", {1: key}, 1)
    cipher = DataCipher(key, 1)
    old = cipher.encrypt(plaintext, reference_aad("alice", "health", table, row, column))
    assert keys.decrypt(old, table=table, row_id=row, column=column) == plaintext
    new = keys.encrypt(plaintext, table=table, row_id=row, column=column)
    assert cipher.decrypt(new, reference_aad("alice", "health", table, row, column)) == plaintext
