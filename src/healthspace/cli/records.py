"""``healthspace records``: list what is stored, decrypted for the operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from healthspace.cli._context import parse_space, user_session
from healthspace.cli._options import JsonOpt, UserOpt
from healthspace.cli._output import emit_json, out_console
from healthspace.hookspecs import hookimpl

if TYPE_CHECKING:
    from healthspace.store import StoredRecord


def record_json(stored: StoredRecord) -> dict[str, Any]:
    """One record in the command line's JSON contract (DESIGN.md)."""
    rec = stored.record
    code = rec.primary_code()
    value, unit = rec.summary_value()
    when = rec.sort_time()
    prov = rec.provenance
    return {
        "id": stored.record_id,
        "kind": stored.kind,
        "code": None if code is None else {"system": code.system, "code": code.code},
        "display": rec.display_text(),
        "value": value,
        "unit": unit,
        "date": None if when is None else when.isoformat(),
        "source": "" if prov is None else (prov.file_name or prov.source),
    }


def records(
    user: UserOpt,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this record kind.")] = None,
    space: Annotated[str, typer.Option("--space", help="health or general.")] = "health",
    json: JsonOpt = False,
) -> None:
    """List a user's records."""
    from healthspace.store import RecordRepository

    with user_session(user, parse_space(space)) as session:
        rows = [record_json(r) for r in RecordRepository(session).iter(kind=kind)]
    if json:
        emit_json({"records": rows})
        return
    if not rows:
        out_console.print("no records")
        return
    table = Table("date", "kind", "display", "value", "unit", "source")
    for r in rows:
        table.add_row(
            (r["date"] or "")[:10],
            r["kind"],
            r["display"],
            "" if r["value"] is None else str(r["value"]),
            r["unit"] or "",
            r["source"],
        )
    out_console.print(table)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("records")(records)
