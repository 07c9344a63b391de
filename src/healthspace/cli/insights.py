"""``healthspace labs`` and ``healthspace brief``: the insights layer from the command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from healthspace.cli._context import user_session
from healthspace.cli._options import JsonOpt, UserOpt
from healthspace.cli._output import emit_json, out_console
from healthspace.errors import UsageError
from healthspace.hookspecs import hookimpl


def labs(
    user: UserOpt,
    analyte: Annotated[
        str | None, typer.Option("--analyte", help="A LOINC code or catalogue name, e.g. ldl.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Lab trends (every analyte with two or more results, or one analyte)."""
    from healthspace.insights.labs import Labs

    with user_session(user) as session:
        results = Labs.load(session)
        if analyte is not None:
            one = results.trend(analyte)
            if one is None:
                raise UsageError(f"--analyte {analyte}: fewer than two results to trend")
            trends = [one]
        else:
            trends = results.trends()
    if json:
        emit_json({"trends": [t.to_dict() for t in trends]})
        return
    if not trends:
        out_console.print("no lab results to trend")
    for t in trends:
        out_console.print(t.statement())


def brief(
    user: UserOpt,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Last visit date (YYYY-MM-DD); default: the last encounter."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a printable HTML page here.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Prepare for an appointment: changes, results, medications, questions; every line cited."""
    from healthspace.insights.visit_brief import visit_brief

    try:
        since_date = date.fromisoformat(since) if since else None
    except ValueError:
        raise UsageError(f"--since: not a date (YYYY-MM-DD): {since!r}") from None
    with user_session(user) as session:
        result = visit_brief(session, since=since_date)
    if html is not None:
        html.write_text(result.to_html(), encoding="utf-8")
        html.chmod(0o600)  # it is health data
    if json:
        emit_json(result.to_dict())
    else:
        out_console.print(result.to_markdown(), markup=False, highlight=False)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("labs")(labs)
    app.command("brief")(brief)
