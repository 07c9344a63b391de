"""Every error healthspace raises on purpose derives from :class:`HealthspaceError`.

The tree::

    HealthspaceError
     ├─ ConfigError              settings are missing, unsafe or contradictory
     ├─ VaultError               anything about keys and ciphertext
     │   ├─ RootKeyError          the root key is missing, unreadable or a known-insecure value
     │   ├─ KeyNotFoundError      no usable data key (never created, or crypto-shredded)
     │   └─ IntegrityError        a ciphertext failed authentication (tampered, or moved
     │                            to another row, column, user or space)
     ├─ StoreError               the database and what lives in it
     │   ├─ NotInitializedError   `healthspace init` has not been run for this home/database
     │   ├─ UserNotFoundError
     │   ├─ UserExistsError
     │   ├─ SpaceAccessError      a session was asked for a space it does not hold
     │   ├─ IngestError           an import job failed; nothing of it was kept
     │   └─ BackupError           backup or restore could not be completed
     ├─ SourceError              input that a source cannot read; names file and place
     ├─ UnitConversionError      (model.units; also a ValueError) units that cannot convert
     └─ UsageError               a command or API call that cannot be carried out as asked

Messages never contain keys, tokens, passwords or record contents: they name the
file, the place and the reason, nothing more.
"""

from __future__ import annotations

__all__ = [
    "BackupError",
    "ConfigError",
    "HealthspaceError",
    "IngestError",
    "IntegrityError",
    "KeyNotFoundError",
    "NotInitializedError",
    "RootKeyError",
    "SourceError",
    "SpaceAccessError",
    "StoreError",
    "UsageError",
    "UserExistsError",
    "UserNotFoundError",
    "VaultError",
]


class HealthspaceError(Exception):
    """Root of every deliberate healthspace error."""


class ConfigError(HealthspaceError):
    """Settings are missing, unsafe or contradictory."""


class VaultError(HealthspaceError):
    """A problem with keys or ciphertext."""


class RootKeyError(VaultError):
    """The root key is missing, unreadable, or a value known to be insecure."""


class KeyNotFoundError(VaultError):
    """No usable data key: never created, or destroyed by crypto-shredding."""


class IntegrityError(VaultError):
    """A ciphertext failed authentication: tampered with, or moved to another place."""


class StoreError(HealthspaceError):
    """A problem with the database or what it holds."""


class NotInitializedError(StoreError):
    """The home or database has not been initialised with `healthspace init`."""


class UserNotFoundError(StoreError):
    """No such user."""


class UserExistsError(StoreError):
    """A user with that email already exists."""


class SpaceAccessError(StoreError):
    """A session was asked to act on a space it does not hold."""


class IngestError(StoreError):
    """An import job failed; nothing of it was kept."""


class BackupError(StoreError):
    """A backup or restore could not be completed."""


class SourceError(HealthspaceError):
    """Input a source cannot read. Carries the file and the place of the problem."""

    def __init__(self, reason: str, *, file: str | None = None, place: str | None = None) -> None:
        self.reason = reason
        self.file = file
        self.place = place
        parts = [p for p in (file, place) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class UsageError(HealthspaceError):
    """A command or call that cannot be carried out as asked."""
