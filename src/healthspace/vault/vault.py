"""The vault facade: data keys per (user, space), wrapped by the root key source."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from healthspace.errors import IntegrityError, KeyNotFoundError
from healthspace.vault._envelope import DataCipher, envelope_version, place_aad, place_prefix
from healthspace.vault.blind import BlindIndexer
from healthspace.vault.keys import RootKeySource, generate_key

__all__ = ["SpaceKeys", "Vault", "WrappedKey"]


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key as stored: wrapped by root key ``kek_id``; safe to persist."""

    user_id: str
    space: str
    version: int
    kek_id: str
    wrapped: bytes

    def __repr__(self) -> str:
        return f"WrappedKey({self.user_id!r}, {self.space!r}, v{self.version}, kek={self.kek_id!r})"


def _wrap_context(user_id: str, space: str, version: int) -> bytes:
    u, s = user_id.encode(), space.encode()
    return (
        struct.pack(">I", len(u)) + u + struct.pack(">I", len(s)) + s + struct.pack(">I", version)
    )


class SpaceKeys:
    """The unwrapped keys of one (user, space): encrypt, decrypt, blind-index.

    Only a store session for that space ever holds one. ``forget()`` drops the key
    objects so that a locked session cannot decrypt any more.
    """

    __slots__ = ("_ciphers", "_current", "_indexer", "_prefixes", "space", "user_id")

    def __init__(
        self, user_id: str, space: str, keys: dict[int, bytes], index_version: int
    ) -> None:
        if not keys:
            raise KeyNotFoundError(f"no data key for space {space!r}")
        self.user_id = user_id
        self.space = space
        self._ciphers: dict[int, DataCipher] | None = {v: DataCipher(k, v) for v, k in keys.items()}
        self._current: DataCipher | None = self._ciphers[max(keys)]
        # The index key stays tied to the first data key so blind indexes survive
        # a data-key rotation.
        self._indexer: BlindIndexer | None = BlindIndexer(keys[index_version])
        # The associated data's (user, space, table) part, built once per table.
        self._prefixes: dict[str, bytes] = {}

    def __repr__(self) -> str:
        state = "open" if self._current is not None else "forgotten"
        return f"SpaceKeys({self.user_id!r}, {self.space!r}, {state})"

    @property
    def is_open(self) -> bool:
        return self._current is not None

    def _place(self, table: str, row_id: str, column: str) -> bytes:
        """``Place(user_id, space, table, row_id, column).encode()``, the same bytes."""
        prefix = self._prefixes.get(table)
        if prefix is None:
            prefix = self._prefixes[table] = place_prefix(self.user_id, self.space, table)
        return place_aad(prefix, row_id, column)

    def encrypt(self, plaintext: bytes, *, table: str, row_id: str, column: str) -> bytes:
        if self._current is None:
            raise KeyNotFoundError("space keys were forgotten (locked)")
        return self._current.encrypt(plaintext, self._place(table, row_id, column))

    def decrypt(self, envelope: bytes, *, table: str, row_id: str, column: str) -> bytes:
        if self._ciphers is None:
            raise KeyNotFoundError("space keys were forgotten (locked)")
        cipher = self._ciphers.get(envelope_version(envelope))
        if cipher is None:
            raise IntegrityError("ciphertext was written with a data key this space does not have")
        return cipher.decrypt(envelope, self._place(table, row_id, column))

    def blind(self, value: str, *, domain: str) -> bytes:
        if self._indexer is None:
            raise KeyNotFoundError("space keys were forgotten (locked)")
        return self._indexer.index(value, domain=domain)

    def forget(self) -> None:
        self._ciphers = None
        self._current = None
        self._indexer = None


class Vault:
    """Creates, unwraps and re-wraps data keys under a root key source."""

    def __init__(self, root: RootKeySource) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Vault({self.root!r})"

    def new_data_key(self, user_id: str, space: str, version: int = 1) -> WrappedKey:
        dek = generate_key()
        kek_id, wrapped = self.root.wrap(dek, _wrap_context(user_id, space, version))
        return WrappedKey(user_id, space, version, kek_id, wrapped)

    def open_space(self, user_id: str, space: str, wrapped: Iterable[WrappedKey]) -> SpaceKeys:
        keys: dict[int, bytes] = {}
        for wk in wrapped:
            if wk.user_id != user_id or wk.space != space:
                raise IntegrityError("a data key of another user or space was offered")
            keys[wk.version] = self.root.unwrap(
                wk.kek_id, wk.wrapped, _wrap_context(user_id, space, wk.version)
            )
        if not keys:
            raise KeyNotFoundError(
                f"no data key for space {space!r} (never created, or crypto-shredded)"
            )
        return SpaceKeys(user_id, space, keys, min(keys))

    def rewrap(self, wk: WrappedKey) -> WrappedKey:
        """Unwrap with whatever root key wrapped it, wrap again under the primary."""
        context = _wrap_context(wk.user_id, wk.space, wk.version)
        dek = self.root.unwrap(wk.kek_id, wk.wrapped, context)
        kek_id, wrapped = self.root.wrap(dek, context)
        return WrappedKey(wk.user_id, wk.space, wk.version, kek_id, wrapped)
