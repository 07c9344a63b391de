"""Root key sources (the KEK of DESIGN.md's key hierarchy).

A source wraps and unwraps data keys. It may hold several root keys at once
(during a rotation): every wrapped data key records the id of the root key that
wrapped it, and new wraps always use the primary key.

Sources shipped here: a key file (the default), an environment variable, and
``KmsKeySource`` over any client that implements :class:`KmsClient` (HashiCorp
Vault transit, AWS KMS and friends are small adapters over that protocol).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from healthspace.errors import IntegrityError, RootKeyError
from healthspace.vault._envelope import new_nonce

__all__ = [
    "EnvKeySource",
    "KeyFileSource",
    "KmsClient",
    "KmsKeySource",
    "MemoryKeySource",
    "RootKeySource",
    "generate_key",
]

KEY_BYTES = 32
_WRAP_VERSION = b"\x01"
_KEYFILE_FORMAT = "healthspace-root-key"

# Values that appear in documentation and examples: a root key equal to one of
# these is as good as none. Checked on load (T-ENC-6).
_KNOWN_DEFAULTS = frozenset(
    {
        bytes(32),
        b"\xff" * 32,
        b"changethis".ljust(32, b"\x00"),
        b"0123456789abcdef0123456789abcdef",
        b"00000000000000000000000000000000",
    }
)


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _check_strength(key: bytes, where: str) -> None:
    if len(key) != KEY_BYTES:
        raise RootKeyError(f"{where}: root key must be {KEY_BYTES} bytes, got {len(key)}")
    # A random 256-bit key has ~28 distinct byte values; fewer than 16 means it was
    # typed or derived from something guessable.
    if key in _KNOWN_DEFAULTS or len(set(key)) < 16:
        raise RootKeyError(
            f"{where}: root key is a known or low-entropy value; generate a random one"
        )


def _wrap(kek: bytes, dek: bytes, context: bytes) -> bytes:
    nonce = new_nonce()
    return _WRAP_VERSION + nonce + AESGCM(kek).encrypt(nonce, dek, b"hs-dek-wrap|" + context)


def _unwrap(kek: bytes, wrapped: bytes, context: bytes) -> bytes:
    if wrapped[:1] != _WRAP_VERSION or len(wrapped) < 1 + 12 + 16:
        raise IntegrityError("wrapped data key has an unknown format")
    try:
        return AESGCM(kek).decrypt(wrapped[1:13], wrapped[13:], b"hs-dek-wrap|" + context)
    except InvalidTag:
        raise IntegrityError("wrapped data key failed authentication") from None


def _fingerprint_id(key: bytes, prefix: str) -> str:
    # A one-way, non-secret name for a key that has no stored id (env, memory).
    return prefix + hashlib.sha256(b"healthspace kek id\x00" + key).hexdigest()[:16]


@runtime_checkable
class RootKeySource(Protocol):
    """Wraps data keys under a root key it never reveals."""

    @property
    def primary_id(self) -> str: ...

    def key_ids(self) -> frozenset[str]: ...

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        """Wrap ``dek`` under the primary root key; returns (root key id, wrapped bytes)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes: ...

    def begin_rotation(self) -> None:
        """Make a new primary root key available while keeping the old ones."""
        ...

    def finish_rotation(self, in_use: frozenset[str]) -> None:
        """Forget root keys that no stored data key uses any more."""
        ...


class _KeyringSource:
    """Shared logic for sources that hold raw root keys in memory."""

    _keys: dict[str, bytes]
    _primary: str
    _label: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(primary={self._primary!r}, keys=<hidden>)"

    @property
    def primary_id(self) -> str:
        return self._primary

    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        return self._primary, _wrap(self._keys[self._primary], dek, context)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        kek = self._keys.get(kek_id)
        if kek is None:
            raise RootKeyError(
                f"{self._label}: data key was wrapped by root key {kek_id!r}, which this "
                "source does not hold (wrong key file, or restoring without the root key?)"
            )
        return _unwrap(kek, wrapped, context)


class MemoryKeySource(_KeyringSource):
    """An in-memory root key, for tests and embedding. Rotation works in memory."""

    def __init__(self, key: bytes | None = None) -> None:
        key = key if key is not None else generate_key()
        _check_strength(key, "memory key")
        self._primary = _fingerprint_id(key, "mem-")
        self._keys = {self._primary: key}
        self._label = "memory key"

    def begin_rotation(self) -> None:
        key = generate_key()
        self._primary = _fingerprint_id(key, "mem-")
        self._keys[self._primary] = key

    def finish_rotation(self, in_use: frozenset[str]) -> None:
        self._keys = {k: v for k, v in self._keys.items() if k == self._primary or k in in_use}


class EnvKeySource(_KeyringSource):
    """Root key from an environment variable (base64 of 32 random bytes).

    Rotation is driven by the operator: put the new key in ``HEALTHSPACE_ROOT_KEY`` and
    the old one in ``HEALTHSPACE_ROOT_KEY_PREVIOUS``, then run ``healthspace keys rotate``.
    """

    def __init__(self, key_b64: str, previous_b64: str | None = None) -> None:
        key = self._decode(key_b64, "HEALTHSPACE_ROOT_KEY")
        self._primary = _fingerprint_id(key, "env-")
        self._keys = {self._primary: key}
        if previous_b64:
            old = self._decode(previous_b64, "HEALTHSPACE_ROOT_KEY_PREVIOUS")
            self._keys.setdefault(_fingerprint_id(old, "env-"), old)
        self._label = "HEALTHSPACE_ROOT_KEY"

    @staticmethod
    def _decode(value: str, name: str) -> bytes:
        try:
            key = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            try:
                key = base64.urlsafe_b64decode(value.strip())
            except (binascii.Error, ValueError):
                raise RootKeyError(f"{name}: not valid base64") from None
        _check_strength(key, name)
        return key

    def begin_rotation(self) -> None:
        # The new key is whatever the operator set as primary; nothing to create.
        return None

    def finish_rotation(self, in_use: frozenset[str]) -> None:
        return None


class KeyFileSource(_KeyringSource):
    """Root keys in a JSON key file, mode 0600, written atomically.

    Rotation adds a new primary key to the file (old keys kept), data keys are
    re-wrapped in one database transaction, then unused keys are dropped. A kill
    at any point leaves a file that opens the database as it is.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._label = f"key file {path}"
        self._keys, self._primary = self._load()
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        # A write killed before its rename leaves a temporary copy holding root
        # keys; the real file is complete (renames are atomic), so drop the copy.
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    @classmethod
    def create(cls, path: Path) -> KeyFileSource:
        """Create a new key file with one random key; refuses to overwrite."""
        if path.exists():
            raise RootKeyError(f"key file {path}: already exists")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = generate_key()
        kid = secrets.token_hex(8)
        _atomic_write_json(path, {kid: key}, kid, exclusive=True)
        return cls(path)

    @classmethod
    def open_or_create(cls, path: Path) -> tuple[KeyFileSource, bool]:
        if path.exists():
            return cls(path), False
        return cls.create(path), True

    def _load(self) -> tuple[dict[str, bytes], str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise RootKeyError(f"{self._label}: not found; run `healthspace init`") from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise RootKeyError(f"{self._label}: readable by other users; run chmod 600 on it")
        try:
            doc = json.loads(self.path.read_bytes())
            if doc.get("format") != _KEYFILE_FORMAT:
                raise ValueError("not a healthspace key file")
            keys = {str(k): base64.b64decode(v, validate=True) for k, v in doc["keys"].items()}
            primary = str(doc["primary"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise RootKeyError(f"{self._label}: unreadable or not a healthspace key file") from None
        if primary not in keys:
            raise RootKeyError(f"{self._label}: primary key missing from the file")
        for kid, key in keys.items():
            _check_strength(key, f"{self._label} (key {kid})")
        return keys, primary

    def begin_rotation(self) -> None:
        kid = secrets.token_hex(8)
        keys = dict(self._keys)
        keys[kid] = generate_key()
        _atomic_write_json(self.path, keys, kid)
        self._keys, self._primary = keys, kid

    def finish_rotation(self, in_use: frozenset[str]) -> None:
        keys = {k: v for k, v in self._keys.items() if k == self._primary or k in in_use}
        if keys != self._keys:
            _atomic_write_json(self.path, keys, self._primary)
            self._keys = keys


def _atomic_write_json(
    path: Path, keys: dict[str, bytes], primary: str, *, exclusive: bool = False
) -> None:
    doc = {
        "format": _KEYFILE_FORMAT,
        "version": 1,
        "primary": primary,
        "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()},
    }
    data = json.dumps(doc, indent=1).encode()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if exclusive:
            # link() fails if the target exists: two concurrent inits cannot both win.
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class KmsClient(Protocol):
    """What a KMS adapter implements: encrypt/decrypt small blobs under a named key."""

    def encrypt(self, key_id: str, plaintext: bytes, context: bytes) -> bytes: ...

    def decrypt(self, key_id: str, ciphertext: bytes, context: bytes) -> bytes: ...


class KmsKeySource:
    """Data keys wrapped by an external KMS; the root key never enters this process.

    Rotation belongs to the KMS (it versions keys itself); switching to a new KMS key
    id is a rotation: construct with ``key_id=new`` and ``previous=(old,)``.
    """

    def __init__(self, client: KmsClient, key_id: str, previous: tuple[str, ...] = ()) -> None:
        self._client = client
        self._primary = key_id
        self._ids = frozenset((key_id, *previous))

    def __repr__(self) -> str:
        return f"KmsKeySource(primary={self._primary!r})"

    @property
    def primary_id(self) -> str:
        return self._primary

    def key_ids(self) -> frozenset[str]:
        return self._ids

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        return self._primary, self._client.encrypt(self._primary, dek, context)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        if kek_id not in self._ids:
            raise RootKeyError(f"KMS key {kek_id!r} is not configured")
        return self._client.decrypt(kek_id, wrapped, context)

    def begin_rotation(self) -> None:
        return None

    def finish_rotation(self, in_use: frozenset[str]) -> None:
        return None
