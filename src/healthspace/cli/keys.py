"""``healthspace keys rotate``."""

from __future__ import annotations

import typer

from healthspace.cli._context import cli_store
from healthspace.cli._options import JsonOpt
from healthspace.cli._output import emit_json, out_console
from healthspace.hookspecs import hookimpl

keys_app = typer.Typer(help="Manage the root key.", no_args_is_help=True)


@keys_app.command("rotate")
def rotate(json: JsonOpt = False) -> None:
    """Re-wrap every data key under a new root key (safe to interrupt and re-run)."""
    store = cli_store()
    try:
        report = store.rotate_root_key()
    finally:
        store.close()
    doc = {"rewrapped": report.rewrapped, "root_key_id": report.root_key_id}
    if json:
        emit_json(doc)
    else:
        out_console.print(
            f"re-wrapped {report.rewrapped} data keys under root key {report.root_key_id}"
        )


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
