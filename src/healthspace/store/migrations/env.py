"""Alembic environment: always run programmatically with a connection handed in."""

from __future__ import annotations

from alembic import context

from healthspace.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("healthspace migrations run through healthspace.store.migrate only")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
