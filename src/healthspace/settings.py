"""Settings, read from ``HEALTHSPACE_*`` environment variables and built by a factory.

No settings object exists at import time: call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "load_settings"]

APP_NAME = "healthspace"


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _default_key_file() -> Path:
    # Apart from the data directory on purpose: a copy of HEALTHSPACE_HOME alone
    # (a backup, a stolen disk image of the data volume) must not carry the key.
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "root.key"


class Settings(BaseSettings):
    """Validated configuration. Secrets are ``SecretStr`` and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="HEALTHSPACE_",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    home: Path = Field(default_factory=_default_home)
    key_file: Path = Field(default_factory=_default_key_file)
    database_url: SecretStr | None = None
    keystore_url: SecretStr | None = None
    root_key: SecretStr | None = None
    root_key_previous: SecretStr | None = None
    log_level: str = "WARNING"

    @field_validator("home", "key_file")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def sqlite_path(self) -> Path:
        return self.home / "healthspace.db"

    @property
    def keystore_path(self) -> Path:
        # Beside the root key, apart from the data: see store/keystore.py.
        return self.key_file.parent / "keystore.db"

    def effective_keystore_url(self) -> str:
        """The keystore URL: ``HEALTHSPACE_KEYSTORE_URL`` or the file beside the root key."""
        if self.keystore_url is not None:
            return self.keystore_url.get_secret_value()
        return f"sqlite:///{self.keystore_path}"

    def effective_database_url(self) -> str:
        """The database URL: ``HEALTHSPACE_DATABASE_URL`` or the SQLite file in the home."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.sqlite_path}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with keyword overrides taking precedence."""
    return Settings(**overrides)
