"""``healthspace init``."""

from __future__ import annotations

import typer

from healthspace.cli._context import cli_settings, cli_store
from healthspace.cli._options import JsonOpt
from healthspace.cli._output import emit_json, err_console, out_console
from healthspace.hookspecs import hookimpl


def init(json: JsonOpt = False) -> None:
    """Create the home, the root key and the schema (idempotent)."""
    settings = cli_settings()
    key_existed = settings.root_key is not None or settings.key_file.exists()
    store = cli_store(settings, initialize=True)
    try:
        store.record_event("store.init")
        key_file = None if settings.root_key is not None else str(settings.key_file)
        doc = {
            "home": str(settings.home),
            "database": store.engine.dialect.name,
            "key_file": key_file,
            "key_created": not key_existed,
        }
    finally:
        store.close()
    if key_file is not None and settings.key_file.resolve().is_relative_to(settings.home.resolve()):
        err_console.print(
            "warning: the root key is inside HEALTHSPACE_HOME, so a copy of the data "
            "directory carries its key; set HEALTHSPACE_KEY_FILE to a path outside it"
        )
    if json:
        emit_json(doc)
        return
    out_console.print(f"healthspace home: {doc['home']} ({doc['database']})")
    if doc["key_created"]:
        err_console.print(
            f"Created a new root key at {key_file}. Keep a copy somewhere safe and apart "
            "from your backups: without it nothing can be decrypted."
        )


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("init")(init)
