"""The vault: the only place that imports cryptography.

Key hierarchy (DESIGN.md): a root key source wraps one data key per (user, space);
data keys encrypt every sensitive value with AES-256-GCM bound to its place.
"""

from healthspace.vault.keys import (
    EnvKeySource,
    KeyFileSource,
    KmsClient,
    KmsKeySource,
    MemoryKeySource,
    RootKeySource,
    generate_key,
)
from healthspace.vault.passwords import hash_password, verify_password
from healthspace.vault.vault import SpaceKeys, Vault, WrappedKey

__all__ = [
    "EnvKeySource",
    "KeyFileSource",
    "KmsClient",
    "KmsKeySource",
    "MemoryKeySource",
    "RootKeySource",
    "SpaceKeys",
    "Vault",
    "WrappedKey",
    "generate_key",
    "hash_password",
    "verify_password",
]
