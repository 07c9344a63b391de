"""``healthspace backup`` and ``healthspace restore``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthspace.cli._context import ACTOR, cli_settings
from healthspace.cli._options import JsonOpt
from healthspace.cli._output import emit_json, out_console
from healthspace.hookspecs import hookimpl


def backup(
    out: Annotated[Path, typer.Option("--out", help="Backup file to write (must not exist).")],
    json: JsonOpt = False,
) -> None:
    """Take a consistent online backup: ciphertext only, no keys."""
    from healthspace.store import open_store
    from healthspace.store.backup import backup as take_backup

    store = open_store(cli_settings(), actor=ACTOR)
    try:
        path = take_backup(store, out)
    finally:
        store.close()
    doc = {"backup": str(path), "bytes": path.stat().st_size}
    if json:
        emit_json(doc)
    else:
        out_console.print(f"backup written to {path} ({doc['bytes']} bytes); it holds no keys")


def restore(
    file: Annotated[Path, typer.Argument(help="Backup file made by `healthspace backup`.")],
    json: JsonOpt = False,
) -> None:
    """Restore a backup into an empty home. Needs the root key the backup was made under."""
    from healthspace.store.backup import restore as do_restore
    from healthspace.store.engine import create_engine
    from healthspace.store.facade import Store
    from healthspace.store.keystore import KeyStore
    from healthspace.vault import Vault
    from healthspace.vault.config import root_key_source

    settings = cli_settings()
    # Never create a key here: a new key could not open the backup anyway.
    source, _ = root_key_source(settings, create=False)
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    keystore = KeyStore(create_engine(settings.effective_keystore_url()))
    store = Store(
        create_engine(settings.effective_database_url()), Vault(source), keystore, actor=ACTOR
    )
    try:
        counts = do_restore(store, file)
    finally:
        store.close()
    doc = {"restored": str(file), "rows": counts}
    if json:
        emit_json(doc)
    else:
        out_console.print(f"restored {sum(counts.values())} rows from {file}")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
