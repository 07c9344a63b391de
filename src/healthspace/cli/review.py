"""``healthspace review``: confirm or reject extracted values before they count."""

from __future__ import annotations

from typing import Annotated

import typer

from healthspace.cli._context import user_session
from healthspace.cli._options import JsonOpt, UserOpt
from healthspace.cli._output import emit_json, out_console
from healthspace.cli.records import record_json
from healthspace.hookspecs import hookimpl

review_app = typer.Typer(help="Review values extracted from PDFs and photos.", no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(help="The import job id (from `review list`).")]


@review_app.command("list")
def list_pending(user: UserOpt, json: JsonOpt = False) -> None:
    """Imports waiting for your review."""
    from healthspace.store import review

    with user_session(user) as session:
        jobs = review.pending_jobs(session)
    doc = {
        "pending": [
            {
                "job_id": j.job_id,
                "source": j.source,
                "started_at": j.started_at.isoformat(),
                "counts": j.counts,
            }
            for j in jobs
        ]
    }
    if json:
        emit_json(doc)
        return
    if not jobs:
        out_console.print("nothing waiting for review")
    for j in jobs:
        out_console.print(f"{j.job_id}  {j.source}  {sum(j.counts.values())} records")


@review_app.command("show")
def show(job: JobArg, user: UserOpt, json: JsonOpt = False) -> None:
    """The records an import extracted, as they would be saved."""
    from healthspace.store import review

    with user_session(user) as session:
        rows = [record_json(r) for r in review.pending_records(session, job)]
    if json:
        emit_json({"records": rows})
        return
    for r in rows:
        out_console.print(
            f"{r['id']}  {(r['date'] or '')[:10]}  {r['display']}  {r['value']} {r['unit'] or ''}"
        )


@review_app.command("confirm")
def confirm(
    job: JobArg,
    user: UserOpt,
    keep: Annotated[
        list[str] | None, typer.Option("--keep", help="Keep only these record ids (repeat).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Save an import's records (all, or only those given with --keep)."""
    from healthspace.store import review

    with user_session(user) as session:
        kept = review.confirm(session, job, keep)
    if json:
        emit_json({"job_id": job, "kept": kept})
    else:
        out_console.print(f"saved {kept} records from {job}")


@review_app.command("reject")
def reject(job: JobArg, user: UserOpt, json: JsonOpt = False) -> None:
    """Discard an import's extracted records."""
    from healthspace.store import review

    with user_session(user) as session:
        review.reject(session, job)
    if json:
        emit_json({"job_id": job, "rejected": True})
    else:
        out_console.print(f"discarded {job}")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
