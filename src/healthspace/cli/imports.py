"""``healthspace import``: bring files in, each as one atomic, idempotent job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from healthspace.cli._context import parse_space, user_session
from healthspace.cli._options import JsonOpt, UserOpt
from healthspace.cli._output import emit_json, err_console, fail_line, out_console
from healthspace.hookspecs import hookimpl


def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or ZIP archives to import.")],
    user: UserOpt,
    space: Annotated[str, typer.Option("--space", help="health or general.")] = "health",
    json: JsonOpt = False,
) -> None:
    """Import files; each is sniffed, parsed and written atomically (re-import adds 0)."""
    from healthspace.sources.pipeline import import_paths

    with user_session(user, parse_space(space)) as session:
        if sys.stderr.isatty():
            from rich.progress import Progress, SpinnerColumn, TextColumn

            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), console=err_console
            ) as bar:
                task = bar.add_task("importing")

                def show(name: str, done: int) -> None:
                    bar.update(task, description=f"{Path(name).name}: {done:,} items")

                report = import_paths(session, paths, progress=show)
        else:
            report = import_paths(session, paths)
    if json:
        emit_json(report.as_json())
    else:
        for f in report.files:
            if f.error:
                continue
            counts = ", ".join(
                f"{n} {k}" for k, n in sorted((f.result.imported if f.result else {}).items())
            )
            skipped = f.result.skipped_duplicates if f.result else 0
            held = " (held for your review: healthspace review list)" if f.held_for_review else ""
            out_console.print(
                f"{f.file}: {counts or 'nothing new'}; {skipped} duplicates skipped{held}"
            )
            for w in f.warnings:
                err_console.print(f"warning: {w}")
    for error in report.errors:
        fail_line(error)
    if report.errors:
        raise typer.Exit(1)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("import")(import_command)
