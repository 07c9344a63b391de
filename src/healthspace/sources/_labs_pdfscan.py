"""A decompression budget for PDFs, checked before any PDF library sees the file.

A PDF stream can be Flate-compressed several times over (``/Filter [/FlateDecode
/FlateDecode]``): a few kilobytes that inflate to gigabytes. Every stream whose
filters start with Flate is inflated here, layer by layer, in small steps, counting
the bytes each layer produces; past the budget the file is refused. Images declare
their size in their dictionary, which is checked against the pixel limit.
"""

from __future__ import annotations

import re
import zlib

__all__ = ["BudgetExceeded", "scan_pdf"]


class BudgetExceeded(Exception):
    """The file would expand beyond a limit; ``reason`` says which, ``place`` where."""

    def __init__(self, reason: str, place: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.place = place


# "12 0 obj << ... >> stream\r\n": the keyword, then the object header before it.
_STREAM = re.compile(rb"\bstream\r?\n")
_HEADER = re.compile(rb"(\d{1,10})\s+\d{1,5}\s+obj\b")
_WINDOW = 8192  # how far back a stream's dictionary may start
_MAX_STREAMS = 200_000
_MAX_LAYERS = 8
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]{0,4096}\]|/[A-Za-z0-9]+)")
_NAME = re.compile(rb"/([A-Za-z0-9]+)")
_FLATE = frozenset((b"FlateDecode", b"Fl"))
_DIMENSION = re.compile(rb"/(Width|Height|W|H)\s+(\d{1,12})\b")
_CHUNK = 1 << 16


def _filters(dictionary: bytes) -> list[bytes]:
    found = _FILTER.search(dictionary)
    return _NAME.findall(found.group(1)) if found is not None else []


def _inflate(data: bytes, layers: int, budget: int, place: str) -> int:
    """Bytes produced by inflating ``data`` through ``layers`` Flate filters."""
    inflaters = [zlib.decompressobj() for _ in range(layers)]
    produced = 0

    def feed(level: int, chunk: bytes) -> None:
        nonlocal produced
        inflater = inflaters[level]
        pending = chunk
        while pending and not inflater.eof:
            try:
                out = inflater.decompress(pending, _CHUNK)
            except zlib.error:
                return  # damaged data: the PDF library will refuse it on its own
            pending = inflater.unconsumed_tail
            produced += len(out)
            if produced > budget:
                raise BudgetExceeded(
                    f"compressed content expands beyond {budget >> 20} MB (a decompression bomb?)",
                    place,
                )
            if out and level + 1 < layers:
                feed(level + 1, out)
            if not out and not pending:
                break

    feed(0, data)
    return produced


def scan_pdf(data: bytes, *, budget: int, max_pixels: int) -> int:
    """Check every stream; returns the total inflated size. Raises BudgetExceeded."""
    total = 0
    for count, match in enumerate(_STREAM.finditer(data)):
        if count >= _MAX_STREAMS:
            raise BudgetExceeded(f"more than {_MAX_STREAMS} streams", "file")
        window_start = max(0, match.start() - _WINDOW)
        header_at = data.rfind(b"obj", window_start, match.start())
        window = data[max(window_start, header_at - 32) : match.start()] if header_at >= 0 else b""
        headers = list(_HEADER.finditer(window))
        number = headers[-1].group(1).decode("ascii") if headers else "?"
        dictionary = window[headers[-1].end() :] if headers else data[window_start : match.start()]
        place = f"object {number}"
        dims = {key: int(value) for key, value in _DIMENSION.findall(dictionary)}
        width = dims.get(b"Width", dims.get(b"W", 0))
        height = dims.get(b"Height", dims.get(b"H", 0))
        if b"/Image" in dictionary and width * height > max_pixels:
            raise BudgetExceeded(
                f"image declares {width}x{height} pixels; the limit is {max_pixels}", place
            )
        filters = _filters(dictionary)
        layers = 0
        for name in filters:
            if name not in _FLATE:
                break
            layers += 1
        if layers == 0:
            continue
        if layers > _MAX_LAYERS:
            raise BudgetExceeded(f"{layers} nested compression layers", place)
        start = match.end()
        end = data.find(b"endstream", start)
        body = data[start : end if end >= 0 else len(data)]
        total += _inflate(body, layers, budget - total, place)
    return total
