"""Apply Alembic migrations programmatically (``healthspace init`` and restore).

Alembic (and its templates) is imported only to migrate: every other command just
compares the database's recorded revision with :data:`HEAD`, which a test keeps
equal to the newest migration script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from healthspace.store.engine import reader

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "current_revision", "head_revision", "script_head", "upgrade"]

HEAD: Final = "0002"  # the newest revision in store/migrations/versions


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "healthspace.store:migrations")
    return cfg


def head_revision() -> str:
    return HEAD


def script_head() -> str:
    """The newest revision as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in the database; None before the first migration."""
    with reader(engine) as conn:
        try:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:  # no such table yet
            rows = []
        conn.rollback()
    return str(rows[0][0]) if rows else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
