"""What every command needs: settings and the store, built on demand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from healthspace.errors import ConfigError, UsageError
from healthspace.settings import Settings, load_settings
from healthspace.store import HealthGrant, Space, SpaceSession, Store, open_store

__all__ = ["ACTOR", "cli_settings", "cli_store", "parse_space", "user_session"]

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


def parse_space(value: str) -> Space:
    """The ``--space`` option: health or general."""
    try:
        return Space(value)
    except ValueError:
        raise UsageError(f"--space: expected health or general, got {value!r}") from None


@contextmanager
def user_session(email: str, space: Space = Space.HEALTH) -> Iterator[SpaceSession]:
    """One space of one user, opened as the operator; store and keys closed after."""
    store = cli_store()
    try:
        found = store.find_user(email)
        grant = HealthGrant.operator(ACTOR) if space is Space.HEALTH else None
        with store.open_session(found.user_id, space, grant=grant) as session:
            yield session
    finally:
        store.close()
