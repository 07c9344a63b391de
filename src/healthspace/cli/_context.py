"""What every command needs: settings and the store, built on demand.

Nothing heavy at import time: settings (pydantic), the store (SQLAlchemy, Alembic,
the vault) are imported by the helpers below when a command calls them, so that
building the command line, ``--help`` and usage errors stay cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from healthspace.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from healthspace.settings import Settings
    from healthspace.store import Space, SpaceSession, Store

__all__ = ["ACTOR", "cli_settings", "cli_store", "parse_space", "user_session"]

ACTOR = "operator:cli"


def cli_settings() -> Settings:
    from pydantic import ValidationError

    from healthspace.settings import load_settings

    try:
        settings = load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        raise ConfigError(f"HEALTHSPACE_{where.upper()}: {first.get('msg', 'invalid')}") from None
    logging.basicConfig(level=settings.log_level.upper())
    return settings


def cli_store(settings: Settings | None = None, *, initialize: bool = False) -> Store:
    from healthspace.store import open_store

    return open_store(settings or cli_settings(), actor=ACTOR, initialize=initialize)


def parse_space(value: str) -> Space:
    """The ``--space`` option: health or general."""
    from healthspace.store import Space

    try:
        return Space(value)
    except ValueError:
        raise UsageError(f"--space: expected health or general, got {value!r}") from None


@contextmanager
def user_session(email: str, space: Space | None = None) -> Iterator[SpaceSession]:
    """One space of one user (health by default), opened as the operator.

    The store and its keys are closed after.
    """
    from healthspace.store import HealthGrant, Space

    if space is None:
        space = Space.HEALTH
    store = cli_store()
    try:
        found = store.find_user(email)
        grant = HealthGrant.operator(ACTOR) if space is Space.HEALTH else None
        with store.open_session(found.user_id, space, grant=grant) as session:
            yield session
    finally:
        store.close()
