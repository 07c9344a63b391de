"""What every command needs: settings and the store, built on demand."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from healthspace.errors import ConfigError
from healthspace.settings import Settings, load_settings
from healthspace.store import Store, open_store

__all__ = ["ACTOR", "cli_settings", "cli_store"]

ACTOR = "operator:cli"


def cli_settings() -> Settings:
    try:
        settings = load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise ConfigError(f"HEALTHSPACE_{where.upper()}: {first.get('msg', 'invalid')}") from None
    logging.basicConfig(level=settings.log_level.upper())
    return settings


def cli_store(settings: Settings | None = None, *, initialize: bool = False) -> Store:
    return open_store(settings or cli_settings(), actor=ACTOR, initialize=initialize)
