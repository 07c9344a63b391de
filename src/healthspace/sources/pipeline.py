"""Bring files in: detect each file's source, parse it, write it as one import job.

The one module of ``sources`` that writes (through ``store.ingest``); parsers stay
pure. Each file is its own atomic, idempotent job: a bad file is reported with its
reason and leaves the store as it was, the others still import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from healthspace.errors import HealthspaceError, SourceError
from healthspace.sources._safety import SafeZip, check_size
from healthspace.sources.base import ImportContext, InputFile, Source
from healthspace.sources.registry import all_sources, detect
from healthspace.store import IngestResult, SpaceSession, ingest

__all__ = ["FileOutcome", "ImportReport", "expand", "import_files", "import_paths"]


@dataclass
class FileOutcome:
    file: str
    source: str | None
    job_id: str | None = None
    error: str | None = None
    held_for_review: bool = False
    result: IngestResult | None = None
    warnings: list[str] = field(default_factory=list)
    unmapped: dict[str, int] = field(default_factory=dict)


@dataclass
class ImportReport:
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def imported(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for f in self.files:
            if f.result is not None:
                total.update(f.result.imported)
        return dict(total)

    @property
    def skipped_duplicates(self) -> int:
        return sum(f.result.skipped_duplicates for f in self.files if f.result is not None)

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.error is not None]

    def as_json(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "skipped_duplicates": self.skipped_duplicates,
            "updated": sum(f.result.updated for f in self.files if f.result is not None),
            "samples": sum(f.result.samples for f in self.files if f.result is not None),
            "errors": self.errors,
            "held_for_review": [f.job_id for f in self.files if f.held_for_review],
            "files": [
                {
                    "file": f.file,
                    "source": f.source,
                    "job_id": f.job_id,
                    "imported": f.result.imported if f.result is not None else {},
                    "skipped_duplicates": f.result.skipped_duplicates if f.result else 0,
                    "error": f.error,
                    "warnings": f.warnings,
                    "unmapped": f.unmapped,
                }
                for f in self.files
            ],
        }


@contextmanager
def expand(file: InputFile, sources: list[Source]) -> Iterator[list[InputFile]]:
    """``[file]`` if a source claims it; else, for a ZIP, its members (one level).

    The members can be read while the context is open.
    """
    check_size(file.name, file.size)
    head = file.head(65536)
    if any(s.sniff(file, head) for s in sources) or not head.startswith(b"PK\x03\x04"):
        yield [file]
        return
    with file.open() as fh:
        archive = SafeZip(fh, file.name)
        try:
            members = []
            for member in archive.names():
                if archive.is_nested_archive(member):
                    raise SourceError(
                        "nested archives are not accepted", file=f"{file.name}!{member}"
                    )
                members.append(
                    InputFile(
                        name=f"{file.name}!{member}",
                        size=archive.size(member),
                        opener=partial(archive.open, member),
                    )
                )
            yield members
        finally:
            archive.close()


def import_files(
    session: SpaceSession,
    files: list[InputFile],
    *,
    sources: list[Source] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    """Import each file as its own job; errors are collected, not raised."""
    sources = sources if sources is not None else all_sources()
    report = ImportReport()
    for top in files:
        try:
            with expand(top, sources) as members:
                for file in members:
                    report.files.append(_import_one(session, file, sources, progress))
        except HealthspaceError as exc:
            report.files.append(FileOutcome(top.name, None, error=str(exc)))
    return report


def _import_one(
    session: SpaceSession,
    file: InputFile,
    sources: list[Source],
    progress: Callable[[str, int], None] | None,
) -> FileOutcome:
    source = detect(file, sources)
    if source is None:
        return FileOutcome(file.name, None, error=f"{file.name}: not a format healthspace reads")
    outcome = FileOutcome(file.name, source.manifest.id)
    try:
        sha = file.sha256()
        ctx = ImportContext(file=file, file_sha256=sha)
        result = ingest(
            session,
            source.parse(file, ctx),
            source=source.manifest.id,
            input_sha256=sha,
            progress=None if progress is None else (lambda n: progress(file.name, n)),
            hold_for_review=source.manifest.needs_review,
        )
    except HealthspaceError as exc:
        message = str(exc)
        outcome.error = message if file.name in message else f"{file.name}: {message}"
        return outcome
    outcome.job_id = result.job_id
    outcome.result = result
    outcome.held_for_review = source.manifest.needs_review and bool(
        result.imported or result.updated
    )
    outcome.warnings = ctx.warnings
    outcome.unmapped = dict(ctx.unmapped)
    return outcome


def import_paths(
    session: SpaceSession,
    paths: list[Path],
    *,
    sources: list[Source] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    files: list[InputFile] = []
    missing: list[FileOutcome] = []
    for path in paths:
        if not path.is_file():
            missing.append(FileOutcome(str(path), None, error=f"{path}: no such file"))
            continue
        files.append(InputFile.from_path(path))
    report = import_files(session, files, sources=sources, progress=progress)
    report.files[:0] = missing
    return report
