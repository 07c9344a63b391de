"""Keyed blind indexes: equality lookups on values we never store in clear.

An index is HMAC-SHA256 under a per-space key, truncated to 16 bytes: enough
to make collisions irrelevant at any realistic record count, and useless to
anyone without the space's key (no dictionary attack over LOINC codes).
"""

from __future__ import annotations

import hashlib
import hmac

from healthspace.vault._envelope import derive_subkey

INDEX_BYTES = 16


class BlindIndexer:
    __slots__ = ("_key",)

    def __init__(self, data_key: bytes) -> None:
        self._key = derive_subkey(data_key, b"blind-index")

    def __repr__(self) -> str:
        return "BlindIndexer(key=<hidden>)"

    def index(self, value: str, *, domain: str) -> bytes:
        """The blind index of ``value`` within ``domain`` (e.g. "code", "identity", "metric")."""
        msg = domain.encode() + b"\x00" + value.encode()
        return hmac.new(self._key, msg, hashlib.sha256).digest()[:INDEX_BYTES]
