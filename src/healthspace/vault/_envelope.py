"""AES-256-GCM envelopes bound to their place by associated data.

Layout of one envelope (all integers big-endian)::

    0      1 byte   format version (1)
    1..4   4 bytes  data-key version
    5..16  12 bytes random nonce (os.urandom via the library's key-size-checked API)
    17..   ciphertext || 16-byte GCM tag

The associated data is the header plus a length-prefixed encoding of
(user_id, space, table, row_id, column), so a ciphertext copied to another
row, column, user or space fails authentication.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from healthspace.errors import IntegrityError

FORMAT_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER = struct.Struct(">BI")
HEADER_BYTES = _HEADER.size
OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES


@dataclass(frozen=True, slots=True)
class Place:
    """Where a ciphertext lives; becomes the associated data."""

    user_id: str
    space: str
    table: str
    row_id: str
    column: str

    def encode(self) -> bytes:
        return place_aad(
            place_prefix(self.user_id, self.space, self.table), self.row_id, self.column
        )


_LEN = struct.Struct(">I")


def _part(value: str) -> bytes:
    raw = value.encode()
    return _LEN.pack(len(raw)) + raw


@lru_cache(maxsize=256)
def _column_part(column: str) -> bytes:
    return _part(column)  # column names are few and fixed: encode each once


def place_prefix(user_id: str, space: str, table: str) -> bytes:
    """The leading, per-table constant part of a :class:`Place`'s associated data."""
    return b"hs-aad-v1" + _part(user_id) + _part(space) + _part(table)


def place_aad(prefix: bytes, row_id: str, column: str) -> bytes:
    """``Place(...).encode()`` from its :func:`place_prefix`: the same bytes, cheaper."""
    return prefix + _part(row_id) + _column_part(column)


def new_nonce() -> bytes:
    """The one place nonces come from: the OS CSPRNG, 96 bits, never a counter we keep."""
    return os.urandom(NONCE_BYTES)


def derive_subkey(key: bytes, purpose: bytes) -> bytes:
    """Separate keys per purpose (encryption, blind index) from one data key."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"healthspace/" + purpose
    ).derive(key)


class DataCipher:
    """Encrypts and decrypts with one data-key version. Holds no key in its repr."""

    __slots__ = ("_aead", "_header", "version")

    def __init__(self, key: bytes, version: int) -> None:
        if len(key) != 32:
            raise ValueError("data keys are 32 bytes")
        self._aead = AESGCM(derive_subkey(key, b"enc"))
        self.version = version
        self._header = _HEADER.pack(FORMAT_VERSION, version)

    def __repr__(self) -> str:
        return f"DataCipher(version={self.version}, key=<hidden>)"

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        header = self._header
        nonce = new_nonce()
        return header + nonce + self._aead.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, envelope: bytes, aad: bytes) -> bytes:
        if len(envelope) < OVERHEAD:
            raise IntegrityError("ciphertext is truncated")
        header = envelope[:HEADER_BYTES]
        nonce = envelope[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, envelope[HEADER_BYTES + NONCE_BYTES :], header + aad)
        except InvalidTag:
            raise IntegrityError(
                "ciphertext failed authentication (tampered, or not from this place)"
            ) from None


def envelope_version(envelope: bytes) -> int:
    """The data-key version an envelope was written with."""
    if len(envelope) < OVERHEAD:
        raise IntegrityError("ciphertext is truncated")
    fmt, version = _HEADER.unpack_from(envelope)
    if fmt != FORMAT_VERSION:
        raise IntegrityError(f"unknown envelope format {fmt}")
    return int(version)


def envelope_nonce(envelope: bytes) -> bytes:
    return envelope[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
