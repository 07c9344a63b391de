"""Apple Health: ``export.zip`` or its ``export.xml`` (whatever the locale named it).

What is mapped, the source-priority rule and the speed design are described in
docs/sources/apple_health.md. In short: quantity and category samples become time
series (cumulative ones also de-duplicated across sources), workouts, correlations,
audiograms and ``Me`` become records, ActivitySummary days become day-long samples,
and the archive's route GPX files, ECG CSVs and FHIR clinical records are read too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from healthspace.hookspecs import hookimpl
from healthspace.sources._apple_build import SOURCE_ID, Builder
from healthspace.sources._apple_dates import DAY_MS, instant
from healthspace.sources._apple_input import (
    PARALLEL_MIN,
    body_blocks,
    looks_like_export,
    open_container,
    read_head,
    scans,
    zip_claims,
)
from healthspace.sources.base import ImportContext, InputFile, Item, Source, SourceManifest

__all__ = ["AppleHealthSource", "register_sources"]

_EXPORT_DATE = re.compile(rb'<ExportDate\s+value="([^"]*)"')


class AppleHealthSource:
    """The Apple Health export source (see the module docstring)."""

    manifest = SourceManifest(
        id=SOURCE_ID,
        name="Apple Health export",
        reads=(
            "samples (heart rate, steps, energy, glucose, sleep, body measurements, ...)",
            "workout",
            "sleep",
            "observation",
            "patient",
        ),
        purpose="Bring in what your iPhone and Apple Watch recorded (Health > Export All "
        "Health Data), including workout routes, ECGs and connected health records.",
    )

    def sniff(self, file: InputFile, head: bytes) -> bool:
        if head.startswith(b"PK\x03\x04"):
            return zip_claims(file)
        return looks_like_export(head)

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        with open_container(file) as container, container.open_xml() as stream:
            _, first = read_head(stream, container.name)
            horizon = self._horizon(first)
            builder = Builder(ctx, container, horizon)
            parallel = container.size >= PARALLEL_MIN
            for scan in scans(body_blocks(stream, first, container.name), parallel):
                yield from builder.block(scan)
            yield from builder.finish()

    @staticmethod
    def _horizon(first: bytes) -> int:
        """Samples starting after this (export date + a day) are flagged, not stored.

        Without an ExportDate the import time stands in.
        """
        found = _EXPORT_DATE.search(first, 0, 1 << 16)
        parsed = instant(found.group(1)) if found else None
        base = parsed[0] if parsed is not None else int(time.time() * 1000)
        return base + DAY_MS


@hookimpl
def register_sources() -> list[Source]:
    return [AppleHealthSource()]
