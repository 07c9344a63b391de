"""Finding the export in its container and streaming its body as blocks.

An export arrives as ``export.zip`` (``apple_health_export/<localised name>.xml`` plus
``workout-routes/``, ``electrocardiograms/``, ``clinical-records/``) or as the bare
XML. Archives open through :class:`SafeZip` (which also refuses overlapped entries),
and a member's read errors (bad CRC, a declared
size that is a lie, truncation) become SourceErrors naming archive and member.

Blocks are scanned by two workers when the body is large (threads with the native
scanner, else processes): a reader thread inflates and cuts, the workers parse,
results come back in order.
"""

from __future__ import annotations

import mmap
import multiprocessing
import re
import threading
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from queue import Empty, Queue
from typing import IO, Any, Final

from healthspace.errors import SourceError
from healthspace.sources._apple_scan import NATIVE, BlockScan, scan_block
from healthspace.sources._apple_xml import MAX_ELEMENT, Prolog, cut_point, read_prolog
from healthspace.sources._safety import SafeZip
from healthspace.sources.base import InputFile

__all__ = [
    "BLOCK",
    "PARALLEL_MIN",
    "Container",
    "body_blocks",
    "looks_like_export",
    "open_container",
    "read_head",
    "scans",
    "zip_claims",
]

BLOCK: Final = 1 << 20  # small blocks keep the heap small: 4 MB ones cost ~40 MB more RSS
PARALLEL_MIN: Final = 16 << 20  # smaller bodies are scanned in-process
WORKERS: Final = 2
_OUTSTANDING: Final = 16  # blocks read but not yet handed back (processes): ~16 MB
_OUTSTANDING_THREADS: Final = 4  # blocks in flight with threads: ~5 MB
_FOLDER: Final = "apple_health_export"
_ROOT_TAG = re.compile(rb"<HealthData[\s>]")
_CONTENT = re.compile(rb"\S")
_MAX_CORRELATION: Final = 1 << 20
_OPEN_CORRELATION: Final = b"<Correlation"


def looks_like_export(head: bytes) -> bool:
    """True when the first bytes are an export document (root ``HealthData``)."""
    return _ROOT_TAG.search(head) is not None


def _candidates(names: list[str]) -> tuple[list[str], list[str]]:
    """(XML members in an ``apple_health_export`` folder, XML members at the top level)."""
    inside, top = [], []
    for name in names:
        lower = name.lower()
        if not lower.endswith(".xml") or lower.rsplit("/", 1)[-1] == "export_cda.xml":
            continue
        parts = name.split("/")
        if len(parts) >= 2 and parts[-2] == _FOLDER:
            inside.append(name)
        elif len(parts) == 1:
            top.append(name)
    return inside, top


def zip_claims(file: InputFile) -> bool:
    """True when an archive holds an ``apple_health_export`` XML (read from its directory)."""
    try:
        with file.open() as fh, zipfile.ZipFile(fh) as archive:
            inside, _ = _candidates(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False
    return bool(inside)


class _Guarded:
    """A member stream whose zip/zlib errors become SourceErrors naming the member.

    Only ``read`` (and ``close``): no extra buffer layer, the bytes are copied enough.
    """

    def __init__(self, inner: IO[bytes], where: str) -> None:
        self._inner = inner
        self._where = where

    def read(self, size: int = -1) -> bytes:
        try:
            return self._inner.read(size)
        except SourceError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            reason = "damaged, truncated or larger than its declared size"
            raise SourceError(
                f"archive member is {reason} ({type(exc).__name__})", file=self._where
            ) from None

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _Guarded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Container:
    """The export document and, for an archive, the files beside it."""

    name: str  # the XML as errors name it: "export.zip!apple_health_export/export.xml"
    size: int
    archive: SafeZip | None = None
    prefix: str = ""  # the export folder inside the archive, with a trailing slash
    _path: InputFile | None = None
    _names: set[str] = field(default_factory=set)

    def open_xml(self) -> IO[bytes] | _Guarded:
        if self.archive is None:
            assert self._path is not None
            return self._path.open()
        member = self.name.split("!", 1)[1]
        return _Guarded(self.archive.open(member), self.name)

    def has(self, member: str) -> bool:
        return member in self._names

    def members(self, folder: str, suffix: str) -> list[str]:
        """Archive members under ``<prefix><folder>/`` ending with ``suffix``, sorted."""
        start = self.prefix + folder + "/"
        return sorted(n for n in self._names if n.startswith(start) and n.lower().endswith(suffix))

    def read(self, member: str) -> bytes:
        assert self.archive is not None
        where = f"{self.name.split('!', 1)[0]}!{member}"
        with _Guarded(self.archive.open(member), where) as fh:
            return fh.read()


def _head(archive: SafeZip, member: str, where: str) -> bytes:
    with _Guarded(archive.open(member), where) as fh:
        return fh.read(1 << 16)


@contextmanager
def open_container(file: InputFile) -> Iterator[Container]:
    """The export in ``file`` (an archive or the bare XML); SourceError if there is none."""
    if not file.head(4).startswith(b"PK\x03\x04"):
        yield Container(name=file.name, size=file.size, _path=file)
        return
    with file.open() as fh:
        archive = SafeZip(fh, file.name)
        try:
            inside, top = _candidates(archive.names())
            chosen = None
            for group in (inside, top):
                for member in sorted(group, key=lambda m: (-archive.size(m), m)):
                    if looks_like_export(_head(archive, member, f"{file.name}!{member}")):
                        chosen = member
                        break
                if chosen is not None:
                    break
            if chosen is None:
                raise SourceError("no Apple Health export document in the archive", file=file.name)
            folder = chosen.rsplit("/", 1)[0] + "/" if "/" in chosen else ""
            yield Container(
                name=f"{file.name}!{chosen}",
                size=archive.size(chosen),
                archive=archive,
                prefix=folder,
                _names=set(archive.names()),
            )
        finally:
            archive.close()


def read_head(stream: IO[bytes] | _Guarded, name: str) -> tuple[Prolog, bytes]:
    """The prolog, and the body bytes read past it so far."""
    head = b""
    while True:
        chunk = stream.read(1 << 16)
        head += chunk
        prolog = read_prolog(head, name)
        if prolog is not None:
            return prolog, head[prolog.body_start :]
        if not chunk:
            raise SourceError("not an Apple Health export (no HealthData element)", file=name)


def body_blocks(stream: IO[bytes] | _Guarded, first: bytes, name: str) -> Iterator[bytes]:
    """The body as blocks of whole top-level elements, up to ``</HealthData>``."""
    rest = first  # the start of an element whose end has not been read yet
    while True:
        chunk = stream.read(BLOCK)
        if not chunk:
            break
        cut = cut_point(chunk, len(chunk))
        block = rest + chunk[:cut] if cut > 0 else b""
        if block:
            # A correlation that began before this chunk (in ``rest``, its tag perhaps cut
            # in two by the read) must end inside the block: cut_point saw only the
            # chunk, and checked the chunk's own.
            opened = block.rfind(
                _OPEN_CORRELATION,
                max(0, len(rest) - _MAX_CORRELATION),
                len(rest) + len(_OPEN_CORRELATION),
            )
            if opened != -1 and block.find(b"</Correlation>", opened) == -1:
                cut, block = -1, b""
        if cut <= 0:
            # No element starts in this chunk: it continues the pending one.
            rest += chunk
            if len(rest) > MAX_ELEMENT:
                raise SourceError("an element is larger than 64 MB", file=name)
            continue
        rest = chunk[cut:]
        if _CONTENT.search(block):
            yield block
    end = rest.rfind(b"</HealthData>")
    if end == -1:
        raise SourceError(
            "the document ends before </HealthData> (a truncated export?)",
            file=name,
            place="end of file",
        )
    if _CONTENT.search(rest, 0, end):
        yield rest[:end]


# Blocks reach forked workers through an anonymous shared mapping made before the
# fork (no pickling, no pipe): slot i holds one block while a worker scans it.
_SLOT: Final = 16 << 20
_RING: mmap.mmap | None = None


def scan_slot(slot: int, length: int) -> BlockScan:
    """Scan the block in shared slot ``slot`` (runs in a forked worker)."""
    assert _RING is not None
    start = slot * _SLOT
    return scan_block(_RING[start : start + length])


def scans(blocks: Iterator[bytes], parallel: bool) -> Iterator[BlockScan]:
    """Each block scanned, in order; by a pool of workers when ``parallel``.

    Threads when the native scanner is built (it releases the GIL), else worker
    processes. A dispatcher thread reads (inflating: zlib drops the GIL) and hands
    blocks to the workers while the caller is busy writing what came back, so the
    workers never wait for the store. At most ``_OUTSTANDING`` blocks are between the
    reader and the caller; errors surface in order, as if read directly.
    """
    global _RING
    if not parallel:
        for block in blocks:
            yield scan_block(block)
        return
    ring: mmap.mmap | None = None
    pool: Any
    if NATIVE:
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="apple-health-scan")
        outstanding = _OUTSTANDING_THREADS
    else:
        # Fork is cheap and needs nothing importable; with other threads running,
        # a forkserver avoids forking a process whose locks another thread may hold.
        method = "fork" if threading.active_count() == 1 else "forkserver"
        if method not in multiprocessing.get_all_start_methods():
            method = "spawn"
        ring = mmap.mmap(-1, _OUTSTANDING * _SLOT) if method == "fork" else None
        _RING = ring
        try:
            pool = multiprocessing.get_context(method).Pool(WORKERS)  # before the thread
        finally:
            _RING = None  # the workers have their copy; this process writes through ``ring``
        outstanding = _OUTSTANDING
    results: Queue[Any] = Queue()
    free: Queue[int] = Queue()
    for slot in range(outstanding):
        free.put(slot)
    stop = threading.Event()

    def submit(slot: int, block: bytes) -> Any:
        if NATIVE:
            return pool.submit(scan_block, block)
        if ring is not None and len(block) <= _SLOT:
            ring[slot * _SLOT : slot * _SLOT + len(block)] = block
            return pool.apply_async(scan_slot, (slot, len(block)))
        return pool.apply_async(scan_block, (block,))

    def dispatch() -> None:
        try:
            for block in blocks:
                while True:
                    if stop.is_set():
                        return
                    try:
                        slot = free.get(timeout=0.1)
                        break
                    except Empty:
                        continue
                results.put((slot, submit(slot, block)))
            results.put(None)
        except BaseException as exc:  # handed to the caller, raised there
            results.put(exc)

    thread = threading.Thread(target=dispatch, name="apple-health-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = results.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            slot, task = item
            scan = task.result() if NATIVE else task.get()
            free.put(slot)
            yield scan
    finally:
        stop.set()
        thread.join()
        if NATIVE:
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            pool.terminate()
            pool.join()
        if ring is not None:
            ring.close()
