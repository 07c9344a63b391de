"""``healthspace user add`` and ``healthspace delete``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from healthspace.cli._context import cli_store, parse_space
from healthspace.cli._options import JsonOpt, UserOpt
from healthspace.cli._output import emit_json, out_console
from healthspace.errors import UsageError
from healthspace.hookspecs import hookimpl

user_app = typer.Typer(help="Manage users.", no_args_is_help=True)


@user_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The new user's email.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Create a user with a general and a health space, each with its own key."""
    from healthspace.store import Space

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on standard input")
    store = cli_store()
    try:
        user = store.create_user(email, password)
    finally:
        store.close()
    doc = {"user_id": user.user_id, "email": user.email, "spaces": [s.value for s in Space]}
    if json:
        emit_json(doc)
    else:
        out_console.print(f"created {user.email} ({user.user_id}) with spaces general, health")


def delete(
    user: UserOpt,
    space: Annotated[
        str | None,
        typer.Option("--space", help="Delete only this space (health or general)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    json: JsonOpt = False,
) -> None:
    """Delete an account or one space for good: keys destroyed first, then rows."""
    if not yes:
        raise UsageError("delete destroys data for good; add --yes to confirm")
    target = None
    if space is not None:
        target = parse_space(space)
    store = cli_store()
    try:
        found = store.find_user(user)
        if target is None:
            store.delete_user(found.user_id)
        else:
            store.delete_space(found.user_id, target)
    finally:
        store.close()
    doc = {"deleted": {"user": found.email, "space": target.value if target else "all"}}
    if json:
        emit_json(doc)
    else:
        what = f"the {target.value} space of" if target else "the account"
        out_console.print(f"deleted {what} {found.email}; its keys are destroyed")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.command("delete")(delete)
