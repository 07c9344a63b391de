"""``healthspace demo``: a working space with a synthetic person, in one command."""

from __future__ import annotations

import orjson
import typer

from healthspace.cli._context import ACTOR, cli_settings, cli_store
from healthspace.cli._options import JsonOpt
from healthspace.cli._output import emit_json, err_console, out_console
from healthspace.errors import IngestError, UserNotFoundError
from healthspace.hookspecs import hookimpl

DEMO_EMAIL = "demo@example.org"


def demo(json: JsonOpt = False) -> None:
    """Initialise, create the demo user with synthetic records, and show what it holds.

    Safe to run again: the data is imported idempotently (nothing is duplicated).
    """
    from healthspace.cli._demo_data import demo_bundle, demo_samples
    from healthspace.sources.base import InputFile
    from healthspace.sources.pipeline import import_files
    from healthspace.store import HealthGrant, RecordRepository, ingest

    settings = cli_settings()
    key_existed = settings.root_key is not None or settings.key_file.exists()
    store = cli_store(settings, initialize=True)
    try:
        try:
            user = store.find_user(DEMO_EMAIL)
            created = False
        except UserNotFoundError:
            user = store.create_user(DEMO_EMAIL)
            created = True
        with store.health_session(user.user_id, HealthGrant.operator(ACTOR)) as session:
            bundle = InputFile.from_bytes(orjson.dumps(demo_bundle()), "demo-patient.fhir.json")
            report = import_files(session, [bundle])
            if report.errors:
                raise IngestError(f"demo data did not import: {report.errors[0]}")
            ingest(session, demo_samples(), source="demo", input_sha256="demo-wearables-v1")
            counts = RecordRepository(session).count_by_kind()
    finally:
        store.close()
    doc = {
        "home": str(settings.home),
        "user": DEMO_EMAIL,
        "user_created": created,
        "records": counts,
    }
    if not key_existed and settings.root_key is None:
        err_console.print(
            f"Created a new root key at {settings.key_file}; keep a copy apart from backups."
        )
    if json:
        emit_json(doc)
        return
    out_console.print(f"healthspace demo is ready in {settings.home}")
    total = sum(counts.values())
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    out_console.print(f"user {DEMO_EMAIL}: {total} records in the health space ({kinds})")
    out_console.print(f"try: healthspace records --user {DEMO_EMAIL} --kind observation")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    app.command("demo")(demo)
