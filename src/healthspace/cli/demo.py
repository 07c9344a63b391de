"""``healthspace demo``: a working space in one command."""

from __future__ import annotations

import typer

from healthspace.cli._context import ACTOR, cli_settings, cli_store
from healthspace.cli._options import JsonOpt
from healthspace.cli._output import emit_json, out_console
from healthspace.errors import UserNotFoundError
from healthspace.hookspecs import hookimpl
from healthspace.store import HealthGrant, RecordRepository

DEMO_EMAIL = "demo@example.org"


def demo(json: JsonOpt = False) -> None:
    """Initialise, create the demo user and show what its health space holds."""
    settings = cli_settings()
    store = cli_store(settings, initialize=True)
    try:
        try:
            user = store.find_user(DEMO_EMAIL)
            created = False
        except UserNotFoundError:
            user = store.create_user(DEMO_EMAIL)
            created = True
        with store.health_session(user.user_id, HealthGrant.operator(ACTOR)) as session:
            counts = RecordRepository(session).count_by_kind()
    finally:
        store.close()
    doc = {
        "home": str(settings.home),
        "user": DEMO_EMAIL,
        "user_created": created,
        "records": counts,
    }
    if json:
        emit_json(doc)
        return
    out_console.print(f"healthspace demo is ready in {settings.home}")
    out_console.print(f"user {DEMO_EMAIL}: {sum(counts.values())} records in the health space")
    out_console.print(f"try: healthspace records --user {DEMO_EMAIL}")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("demo")(demo)
