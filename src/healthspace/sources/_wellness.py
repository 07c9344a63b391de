"""Small helpers the wellness sources share: provenance, stable ids, times, names."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from healthspace.errors import SourceError
from healthspace.model import PartialDateTime, Precision, Provenance, SampleBatch
from healthspace.sources.base import ImportContext, InputFile

__all__ = [
    "base_name",
    "digest",
    "epoch_ms",
    "in_offset",
    "provenance",
    "read_limited",
    "sample_batch",
    "shifted",
    "wall_time",
    "zoned_time",
]


def base_name(file: InputFile) -> str:
    """The file's own name, without directories or the archive it came from."""
    return file.name.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1]


def digest(*parts: object, size: int = 24) -> str:
    """A short stable hash of ``parts``: record identities without record contents."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:size]


def provenance(source: str, ctx: ImportContext, place: str | None = None) -> Provenance:
    return Provenance(
        source=source,
        file_name=ctx.file.name,
        file_sha256=ctx.file_sha256,
        original_ref=place,
    )


def _precision(moment: datetime, precision: Precision | None) -> Precision:
    if precision is not None:
        return precision
    return Precision.millisecond if moment.microsecond else Precision.second


def wall_time(
    moment: datetime, original: str, precision: Precision | None = None
) -> PartialDateTime:
    """A local time written without a zone: kept as written, read as UTC (tz unknown)."""
    return PartialDateTime(
        original=original,
        precision=_precision(moment, precision),
        start=moment.replace(tzinfo=UTC),
        tz_known=False,
    )


def zoned_time(
    moment: datetime, offset_minutes: int, original: str, precision: Precision | None = None
) -> PartialDateTime:
    """A local wall time with the UTC offset its source stated."""
    local = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    return PartialDateTime(
        original=original,
        precision=_precision(moment, precision),
        start=local.astimezone(UTC),
        tz_known=True,
        utc_offset_minutes=offset_minutes,
    )


def epoch_ms(moment: PartialDateTime | datetime) -> int:
    """UTC epoch milliseconds of a moment (a PartialDateTime's start)."""
    start = moment.start if isinstance(moment, PartialDateTime) else moment
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return int(start.timestamp() * 1000)


def shifted(moment: PartialDateTime, delta: timedelta) -> PartialDateTime:
    """``moment`` moved by ``delta``, in the same zone and precision (an end from a start)."""
    moved = PartialDateTime(
        original="",
        precision=moment.precision,
        start=moment.start + delta,
        tz_known=moment.tz_known,
        utc_offset_minutes=moment.utc_offset_minutes,
    )
    return moved.model_copy(update={"original": moved.isoformat()})


def in_offset(moment: PartialDateTime, offset_minutes: int | None) -> PartialDateTime:
    """A UTC moment shown at a known UTC offset (the same instant); unchanged if None."""
    if offset_minutes is None:
        return moment
    shown = PartialDateTime(
        original="",
        precision=moment.precision,
        start=moment.start,
        tz_known=True,
        utc_offset_minutes=offset_minutes,
    )
    return shown.model_copy(update={"original": shown.isoformat()})


def sample_batch(
    metric: str, unit: str, rows: Sequence[tuple[int, int, float]], source: str
) -> SampleBatch:
    """Rows of (t_ms, duration_ms, value) as one batch of columns."""
    return SampleBatch(
        metric=metric,
        unit=unit,
        t_ms=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        duration_ms=np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)),
        values=np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows)),
        source=source,
    )


def read_limited(file: InputFile, limit: int, what: str) -> bytes:
    """The whole file, refused beyond ``limit`` bytes (these formats are read in memory)."""
    with file.open() as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise SourceError(
            f"{what} is larger than {limit >> 20} MiB, more than any real one; refused",
            file=file.name,
        )
    return data
