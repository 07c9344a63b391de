"""``healthspace connect | sync | disconnect | connections``: SMART on FHIR patient portals.

``connect smart`` prints the URL to open in a browser; after signing in at the
portal, the browser lands on the redirect URI, and ``connect callback`` takes
that full URL to finish. Tokens never appear in any output.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from healthspace.cli._context import user_session
from healthspace.cli._options import JsonOpt, UserOpt
from healthspace.cli._output import emit_json, err_console, fail_line, out_console
from healthspace.hookspecs import hookimpl

if TYPE_CHECKING:
    from healthspace.sources.smart import SmartClient

connect_app = typer.Typer(
    help="Connect a patient portal (SMART on FHIR) to your health space.", no_args_is_help=True
)

ConnectionOpt = Annotated[
    str | None, typer.Option("--connection", help="Only this connection id.", show_default=False)
]


@contextmanager
def _client(user: str) -> Iterator[SmartClient]:
    # Imported here: the HTTP and OAuth stack loads only for these commands.
    from healthspace.sources.smart import SmartClient

    with user_session(user) as session:
        yield SmartClient(session)


@connect_app.command("smart")
def connect_smart(
    base_url: Annotated[str, typer.Argument(help="The portal's FHIR base URL (https).")],
    user: UserOpt,
    client_id: Annotated[
        str, typer.Option("--client-id", help="This app's client id at the portal.")
    ],
    redirect_uri: Annotated[
        str, typer.Option("--redirect-uri", help="The redirect URI registered for the client.")
    ],
    connection: Annotated[
        str | None,
        typer.Option("--connection", help="Re-authorise this existing connection instead."),
    ] = None,
    allow_insecure_loopback: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-loopback",
            hidden=True,
            help="Testing only: allow plain http to 127.0.0.1.",
        ),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Begin connecting a portal: prints the URL to open in your browser."""
    if allow_insecure_loopback:
        err_console.print("warning: --allow-insecure-loopback is for local testing only")
    with _client(user) as client:
        started = client.start(
            base_url,
            client_id=client_id,
            redirect_uri=redirect_uri,
            allow_insecure_loopback=allow_insecure_loopback,
            reconnect=connection,
        )
    if json:
        emit_json({"connection_id": started.connection_id, "authorize_url": started.authorize_url})
        return
    from healthspace.sources.smart import MANIFEST

    err_console.print(
        f"{MANIFEST.name}: healthspace will read your records (read-only) and keep them in "
        "your health space; nothing leaves this server."
    )
    err_console.print("Open this URL in your browser, sign in, then run")
    err_console.print("  healthspace connect callback 'URL-YOU-WERE-SENT-TO' --user ...")
    # Plain write: the URL must come out byte for byte, never wrapped or styled.
    sys.stdout.write(started.authorize_url + "\n")


@connect_app.command("callback")
def connect_callback(
    url: Annotated[str, typer.Argument(help="The full URL the portal redirected you to.")],
    user: UserOpt,
    json: JsonOpt = False,
) -> None:
    """Finish connecting: exchange the code in the redirect URL for tokens."""
    with _client(user) as client:
        connection_id = client.finish(url)
    if json:
        emit_json({"connection_id": connection_id, "status": "active"})
    else:
        out_console.print(f"connected {connection_id}; run `healthspace sync --user {user}`")


@contextmanager
def _progress() -> Iterator[Callable[[str, int], None] | None]:
    """A spinner with item counts on a terminal; nothing when stderr is not one."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console) as bar:
        task = bar.add_task("syncing")

        def show(connection_id: str, done: int) -> None:
            bar.update(task, description=f"{connection_id}: {done:,} items")

        yield show


def sync_command(user: UserOpt, connection: ConnectionOpt = None, json: JsonOpt = False) -> None:
    """Bring in what changed at each connected portal since the last sync."""
    from healthspace.sources.smart import SyncResult

    with _client(user) as client, _progress() as progress:
        if connection is not None:
            outcomes = [(connection, client.sync_one(connection, progress=progress))]
        else:
            outcomes = client.sync_all(progress=progress)
    docs: list[dict[str, object]] = []
    imported: Counter[str] = Counter()
    errors: list[str] = []
    for connection_id, outcome in outcomes:
        if isinstance(outcome, SyncResult):
            imported.update(outcome.imported)
            docs.append({"connection_id": connection_id, "error": None, **asdict(outcome)})
            if not json:
                counts = ", ".join(f"{n} {k}" for k, n in sorted(outcome.imported.items()))
                out_console.print(
                    f"{connection_id}: {counts or 'nothing new'}; "
                    f"{outcome.skipped_duplicates} unchanged, {outcome.updated} updated",
                    highlight=False,
                )
        else:
            errors.append(f"connection {connection_id}: {outcome}")
            docs.append({"connection_id": connection_id, "error": str(outcome)})
    if json:
        emit_json({"connections": docs, "imported": dict(imported), "errors": errors})
    for line in errors:
        fail_line(line)
    if errors:
        raise typer.Exit(1)


def disconnect_command(
    connection_id: Annotated[str, typer.Argument(help="The connection id.")],
    user: UserOpt,
    json: JsonOpt = False,
) -> None:
    """Disconnect a portal: its tokens are deleted now and revoked at the portal."""
    with _client(user) as client:
        result = client.disconnect(connection_id)
    if json:
        emit_json(
            {
                "connection_id": result.connection_id,
                "deleted": True,
                "revoked": result.revoked,
                "revocation_error": result.revocation_error,
            }
        )
        return
    out_console.print(f"disconnected {connection_id}; its tokens are deleted")
    if result.revocation_error:
        err_console.print(
            f"warning: the portal did not confirm revocation: {result.revocation_error}"
        )


def connections_command(user: UserOpt, json: JsonOpt = False) -> None:
    """List connected portals: status, granted scopes, last sync."""
    with _client(user) as client:
        infos = client.connections()
    docs = [
        {
            "connection_id": c.connection_id,
            "kind": "smart",
            "status": c.status,
            "fhir_base": c.fhir_base,
            "scope": c.scope,
            "created_at": c.created_at.isoformat(),
            "last_sync_at": c.last_sync_at.isoformat() if c.last_sync_at else None,
        }
        for c in infos
    ]
    if json:
        emit_json({"connections": docs})
        return
    if not docs:
        out_console.print("no connections")
    for d in docs:
        out_console.print(
            f"{d['connection_id']}  {d['status']}  {d['fhir_base']}  "
            f"last sync: {d['last_sync_at'] or 'never'}",
            highlight=False,
        )


_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("sync", sync_command),
    ("disconnect", disconnect_command),
    ("connections", connections_command),
)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.add_typer(connect_app, name="connect")
    for name, command in _COMMANDS:
        app.command(name)(command)
