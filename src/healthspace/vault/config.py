"""Choose the root key source from settings."""

from __future__ import annotations

from healthspace.errors import RootKeyError
from healthspace.settings import Settings
from healthspace.vault.keys import EnvKeySource, KeyFileSource, RootKeySource

__all__ = ["root_key_source"]


def root_key_source(settings: Settings, *, create: bool = False) -> tuple[RootKeySource, bool]:
    """The configured root key source, and whether a new key was created just now.

    ``HEALTHSPACE_ROOT_KEY`` wins over the key file. Only ``create=True`` (``init``)
    may create a key file; every other command refuses to run without one.
    """
    if settings.root_key is not None:
        previous = settings.root_key_previous
        return (
            EnvKeySource(
                settings.root_key.get_secret_value(),
                previous.get_secret_value() if previous is not None else None,
            ),
            False,
        )
    path = settings.key_file
    if create:
        return KeyFileSource.open_or_create(path)
    if not path.exists():
        raise RootKeyError(f"key file {path}: not found; run `healthspace init`")
    return KeyFileSource(path), False
