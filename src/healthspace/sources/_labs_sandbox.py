"""Run the lab-report worker in a separate, limited process and read its answer.

The worker (``_labs_worker``) gets the file on stdin, limits its own memory and CPU
before reading it, and is killed when it overruns the wall-clock timeout. Its
environment carries nothing secret (no ``HEALTHSPACE_*``: the root key may be
there). Whatever way it fails, the importer sees one SourceError naming the file
and the reason, and nothing has been yielded yet, so no partial records remain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

from healthspace.errors import SourceError

__all__ = ["DEFAULT_LIMITS", "Extraction", "LabLimits", "Page", "run_worker"]


@dataclass(frozen=True)
class LabLimits:
    """Bounds on reading one lab report (T-UP-4)."""

    max_bytes: int = 64 << 20  # the file itself
    max_pages: int = 50
    max_pixels: int = 50_000_000  # per image or page (Pillow's MAX_IMAGE_PIXELS)
    decompressed_bytes: int = 256 << 20  # all PDF streams together, inflated
    memory_bytes: int = 3 << 30  # the worker's address space (OCR needs ~1.5 GB)
    cpu_seconds: int = 900
    wall_seconds: float = 600.0


DEFAULT_LIMITS = LabLimits()


@dataclass(frozen=True)
class Page:
    number: int
    method: str  # "pdf-text", "ocr", "ocr-unavailable"
    lines: list[tuple[str, float]]  # text, confidence
    tables: list[list[list[str | None]]]


@dataclass(frozen=True)
class Extraction:
    media_type: str
    pages: list[Page]


_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "TMPDIR", "HOME")
_ENV_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_")
_MAX_OUTPUT = 64 << 20


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith(_ENV_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _signal_reason(code: int, limits: LabLimits) -> str:
    number = -code
    if number == signal.SIGXCPU:
        return f"reading used more than {limits.cpu_seconds} s of CPU and was stopped"
    if number in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
        return (
            f"the reader was stopped (signal {number}), most likely by its "
            f"{limits.memory_bytes >> 20} MB memory limit"
        )
    return f"the reader was stopped by signal {number}"


def run_worker(data: bytes, name: str, limits: LabLimits = DEFAULT_LIMITS) -> Extraction:
    """Extract text lines from a PDF or image in a limited subprocess."""
    if len(data) > limits.max_bytes:
        raise SourceError(
            f"file is {len(data)} bytes; the limit for lab reports is {limits.max_bytes}", file=name
        )
    config = {k: int(v) for k, v in asdict(limits).items() if k != "wall_seconds"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "healthspace.sources._labs_worker", json.dumps(config)],
            input=data,
            capture_output=True,
            timeout=limits.wall_seconds,
            env=_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SourceError(
            f"reading took longer than {limits.wall_seconds:g} s and was stopped", file=name
        ) from None
    if proc.returncode < 0:
        raise SourceError(_signal_reason(proc.returncode, limits), file=name)
    if proc.returncode != 0 or len(proc.stdout) > _MAX_OUTPUT:
        raise SourceError(f"the reader failed (exit status {proc.returncode})", file=name)
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        raise SourceError("the reader gave no readable answer", file=name) from None
    if not answer.get("ok"):
        raise SourceError(str(answer.get("reason")), file=name, place=answer.get("place"))
    return Extraction(str(answer["media_type"]), [_page(p) for p in answer["pages"]])


def _page(raw: dict[str, Any]) -> Page:
    lines = [(str(text), float(conf)) for text, conf in raw["lines"]]
    tables = [
        [[None if cell is None else str(cell) for cell in row] for row in table]
        for table in raw.get("tables", [])
    ]
    return Page(int(raw["page"]), str(raw["method"]), lines, tables)
