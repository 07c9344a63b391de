"""One block of an export body in, columns of samples and a few element trees out.

This is the hot path: pure (``re`` and numpy), no model objects. A block is whole
top-level elements. Plain ``<Record>``s (only ``MetadataEntry`` children) are read
by the native scanner (``_apple_fast.c``, built when a C compiler is present; it
releases the GIL, so blocks are scanned by threads) or, without it, matched by one
compiled regex over the bytes (attributes in Apple's order) in worker processes;
either way they become numpy columns. Everything else (workouts, correlations, HRV
beat lists, iOS 8 records with metadata as attributes) is read by the tolerant
element reader. The pure-Python path is the reference: both give the same scan.
"""

from __future__ import annotations

import gc
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from healthspace.sources._apple_dates import instant, instants, time_of_day_ms
from healthspace.sources._apple_metrics import CATEGORY_CODES, HRV_BEATS_TYPE
from healthspace.sources._apple_xml import (
    Elem,
    read_elements,
    segments,
    special_span,
    unescape,
)

__all__ = ["NATIVE", "BlockScan", "Key", "scan_block", "scan_block_python"]

Key = tuple[str, str, str, str]  # (type, source name, device name, unit)
_BKey = tuple[bytes, bytes, bytes, bytes]
_Text = tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
F64 = npt.NDArray[np.float64]

# The device string is taken whole (cheaper for the engine than looking inside it);
# its name is read once per key, from the first record that has the key.
_FAST = re.compile(
    rb'<Record\s+type="([^"]*)"\s+sourceName="([^"]*)"(?:\s+sourceVersion="[^"]*")?'
    rb'(?:\s+device="([^"]*)")?(?:\s+unit="([^"]*)")?(?:\s+creationDate="[^"]*")?'
    rb'\s+startDate="([^"]*)"\s+endDate="([^"]*)"(?:\s+value="([^"]*)")?\s*/?>'
)
_CATEGORY: Final = b"HKCategoryTypeIdentifier"

try:
    from healthspace.sources._apple_fast import scan as _native_scan
except ImportError:  # built without a C compiler: the pure-Python scanner does it all
    _native_scan = None  # type: ignore[assignment]

NATIVE: Final = _native_scan is not None


@dataclass
class BlockScan:
    """What one block held: sample rows (numpy columns), other elements, problems."""

    keys: list[Key] = field(default_factory=list)
    key_idx: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    start_ms: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    end_ms: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    offset_min: I16 = field(default_factory=lambda: np.zeros(0, np.int16))
    values: F64 = field(default_factory=lambda: np.zeros(0, np.float64))
    ordinal: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    records: int = 0  # top-level <Record>s in the block
    # (top-level Records before it, the element, its bytes)
    elements: list[tuple[int, Elem, bytes]] = field(default_factory=list)
    # (Record ordinal in the block, its type, the reason: never a value)
    problems: list[tuple[int, str, str]] = field(default_factory=list)


class _Rows:
    """Rows gathered from the runs and elements of a block, before they become arrays."""

    def __init__(self) -> None:
        self.key_ids: dict[_BKey, int] = {}
        self.counter = itertools.count()
        self.parts: list[tuple[I32, I64, I64, I16, F64, I32]] = []
        self.problems: list[tuple[int, str, str]] = []
        # Records read from elements, as escaped text, parsed together at the end.
        self.text: list[_Text] = []
        self.text_ordinals: list[int] = []
        # Rows already parsed (HRV beats): key, start, offset, value, ordinal.
        self.parsed: list[tuple[_BKey, int, int, float, int]] = []

    def key_of(self, key: _BKey) -> int:
        return self.key_ids.setdefault(key, next(self.counter))

    def add_columns(
        self, cols: Sequence[Sequence[bytes]], ordinal: I32, raw_devices: bool = True
    ) -> None:
        """Rows as columns of bytes; ``raw_devices``: whole device strings, not names."""
        types, sources, devices, units, starts, ends, values = cols
        # Key rows by (type, source, unit) at C speed, then name each key's device once
        # (from its first record). Names already read (element rows) key each row.
        local: dict[tuple[bytes, ...], int] = {}
        groups = (
            zip(types, sources, units, strict=True)
            if raw_devices
            else zip(types, sources, devices, units, strict=True)
        )
        first_ids = list(map(local.setdefault, groups, itertools.count()))
        _, first, inverse = np.unique(
            np.asarray(first_ids, dtype=np.int64), return_index=True, return_inverse=True
        )
        names = [
            _device_name_bytes(devices[r]) if raw_devices else devices[r] for r in first.tolist()
        ]
        key_ids = np.asarray(
            [
                self.key_of((types[r], sources[r], names[j], units[r]))
                for j, r in enumerate(first.tolist())
            ],
            dtype=np.int32,
        )
        inverse = inverse.ravel()
        ids = key_ids[inverse]
        start, offset, ok_start = instants(list(starts))
        end, _, ok_end = instants(list(ends))
        vals, ok_value = self._values(ids, types, sources, lambda i: names[inverse[i]], values)
        ok = ok_start & ok_end & ok_value
        if not bool(ok.all()):
            for i in np.flatnonzero(~ok).tolist():
                reason = (
                    "unreadable start date"
                    if not ok_start[i]
                    else "unreadable end date"
                    if not ok_end[i]
                    else "value is not a number"
                )
                self.problems.append((int(ordinal[i]), _text(types[i]), reason))
        self.parts.append(
            (
                ids[ok],
                start[ok],
                end[ok],
                offset[ok],
                vals[ok],
                ordinal[ok],
            )
        )

    def add_native(
        self,
        keys: list[_BKey],
        columns: tuple[bytes, bytes, bytes, bytes, bytes, bytes],
        base: int,
    ) -> None:
        """Plain rows from the native scanner: its keys, and columns as raw arrays."""
        idx, ordinal, start, end, offset, values = columns
        key_ids = np.asarray([self.key_of(key) for key in keys], dtype=np.int32)
        self.parts.append(
            (
                key_ids[np.frombuffer(idx, dtype=np.int32)],
                np.frombuffer(start, dtype=np.int64),
                np.frombuffer(end, dtype=np.int64),
                np.frombuffer(offset, dtype=np.int16),
                np.frombuffer(values, dtype=np.float64),
                np.frombuffer(ordinal, dtype=np.int32) + np.int32(base),
            )
        )

    def _values(
        self,
        ids: I32,
        types: Sequence[bytes],
        sources: Sequence[bytes],
        device_of: Callable[[int], bytes],
        values: Sequence[bytes],
    ) -> tuple[F64, npt.NDArray[np.bool_]]:
        n = len(values)
        try:
            parsed = np.array(values, dtype=np.bytes_).astype(np.float64)
            if not any(t.startswith(_CATEGORY) for t in set(types)):
                return parsed, np.ones(n, dtype=bool)
        except ValueError:
            pass
        out = np.zeros(n, dtype=np.float64)
        ok = np.ones(n, dtype=bool)
        for i in range(n):
            raw, kind = values[i], types[i]
            if kind.startswith(_CATEGORY):
                code = CATEGORY_CODES.get(raw)
                if code is not None:
                    out[i] = code
                    continue
                number = _number(raw)
                if number is not None or not raw:
                    out[i] = 0.0 if number is None else number
                    continue
                # An unknown category value: a series of its own, so it is kept.
                ids[i] = self.key_of((kind + b":" + raw, sources[i], device_of(i), b""))
                out[i] = 1.0
                continue
            number = _number(raw)
            if number is None:
                ok[i] = False
            else:
                out[i] = number
        return out, ok

    def arrays(self, scan: BlockScan) -> None:
        if self.text:
            cols = list(zip(*self.text, strict=True))
            ordinals = np.asarray(self.text_ordinals, dtype=np.int32)
            self.add_columns(cols, ordinals, raw_devices=False)
        if self.parsed:
            ids = np.asarray([self.key_of(p[0]) for p in self.parsed], dtype=np.int32)
            t = np.asarray([p[1] for p in self.parsed], dtype=np.int64)
            off = np.asarray([p[2] for p in self.parsed], dtype=np.int16)
            v = np.asarray([p[3] for p in self.parsed], dtype=np.float64)
            ordinal = np.asarray([p[4] for p in self.parsed], dtype=np.int32)
            self.parts.append((ids, t, t, off, v, ordinal))
        if not self.parts:
            return
        ids = np.concatenate([p[0] for p in self.parts])
        used, dense = np.unique(ids, return_inverse=True)
        by_id = {v: k for k, v in self.key_ids.items()}
        scan.keys = [_decode_key(by_id[int(i)]) for i in used.tolist()]
        scan.key_idx = dense.astype(np.int32)
        scan.start_ms = np.concatenate([p[1] for p in self.parts])
        scan.end_ms = np.concatenate([p[2] for p in self.parts])
        scan.offset_min = np.concatenate([p[3] for p in self.parts])
        scan.values = np.concatenate([p[4] for p in self.parts])
        scan.ordinal = np.concatenate([p[5] for p in self.parts])


def _number(raw: bytes) -> float | None:
    """A decimal number, also with a decimal comma (``0,5``); None if it is not one."""
    text = raw.strip()
    if b"," in text and b"." not in text:
        text = text.replace(b",", b".")
    try:
        return float(text)
    except ValueError:
        return None


def _text(raw: bytes) -> str:
    return unescape(raw.decode("utf-8", "replace"))


def _decode_key(key: _BKey) -> Key:
    kind, source, device, unit = key
    return (_text(kind), _text(source), _text(device).strip(), _text(unit))


_NAME_END = re.compile(rb",|>|&gt;")


def _device_name_bytes(device: bytes) -> bytes:
    """``&lt;&lt;HKDevice: 0x..&gt;, name:Apple Watch, ...`` -> ``Apple Watch``.

    From ``name:`` to the next ``,`` or ``>`` (escaped or not), as the native scanner.
    """
    at = device.find(b"name:")
    if at == -1:
        return b""
    end = _NAME_END.search(device, at + 5)
    return device[at + 5 : end.start() if end is not None else len(device)].strip()


def _escaped(text: str) -> bytes:
    """Attribute text back in escaped form: every row's key is unescaped exactly once."""
    return text.replace("&", "&amp;").encode()


def _record_element(elem: Elem, ordinal: int, rows: _Rows) -> None:
    """A Record read as an element (iOS 8 layout, HRV beats, odd attribute order)."""
    a = elem.attrs
    kind = a.get("type", "")
    source = a.get("sourceName") or a.get("source") or ""
    device = _device_name_bytes(_escaped(a.get("device", "")))  # one rule for both paths
    start = a.get("startDate", "")
    rows.text.append(
        (
            _escaped(kind),
            _escaped(source),
            device,
            _escaped(a.get("unit", "")),
            start.encode(),
            a.get("endDate", start).encode(),
            a.get("value", "").encode(),
        )
    )
    rows.text_ordinals.append(ordinal)
    beats = elem.iter("InstantaneousBeatsPerMinute")
    if not beats:
        return
    anchor = instant(start.encode())
    if anchor is None:
        return  # the record itself is reported as undated
    key = (HRV_BEATS_TYPE.encode(), _escaped(source), device, b"count/min")
    for beat in beats:
        bpm = _number(beat.attrs.get("bpm", "").encode())
        moment = time_of_day_ms(beat.attrs.get("time", ""), anchor[0], anchor[1])
        if bpm is None or moment is None:
            rows.problems.append((ordinal, HRV_BEATS_TYPE, "unreadable beat time or value"))
            continue
        rows.parsed.append((key, moment, anchor[1], bpm, ordinal))


def scan_block(data: bytes) -> BlockScan:
    """Scan one block of whole top-level elements (see the module docstring)."""
    return _without_gc(_scan_native if _native_scan is not None else _scan_python, data)


def scan_block_python(data: bytes) -> BlockScan:
    """The same scan by the pure-Python reference path (regex and element reader)."""
    return _without_gc(_scan_python, data)


def _without_gc(scan: Callable[[bytes], BlockScan], data: bytes) -> BlockScan:
    # Tens of thousands of small tuples and no reference cycles: the cyclic collector
    # would run hundreds of times per block for nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return scan(data)
    finally:
        if was_enabled:
            gc.enable()


def _read_piece(data: bytes, lo: int, hi: int, ordinal: int, rows: _Rows, scan: BlockScan) -> int:
    """Elements of ``data[lo:hi]`` by the element reader; returns the next ordinal."""
    try:
        elements = read_elements(data, lo, hi)
    except ValueError as exc:
        rows.problems.append((ordinal, "element", f"unreadable XML ({exc}); skipped"))
        return ordinal
    for elem in elements:
        if elem.tag == "Record":
            _record_element(elem, ordinal, rows)
            ordinal += 1
        else:
            scan.elements.append((ordinal, elem, data[elem.start : elem.end]))
    return ordinal


def _finish(scan: BlockScan, rows: _Rows, ordinal: int) -> BlockScan:
    rows.arrays(scan)
    scan.records = ordinal
    scan.problems = rows.problems
    return scan


def _scan_native(data: bytes) -> BlockScan:
    assert _native_scan is not None
    scan = BlockScan()
    rows = _Rows()
    ordinal = pos = 0
    while True:
        stop, count, keys, *columns, odd = _native_scan(data, pos)
        if len(columns[0]):
            rows.add_native(keys, tuple(columns), ordinal)  # type: ignore[arg-type]
        for at, *text in odd:
            rows.text.append(tuple(text))  # type: ignore[arg-type]
            rows.text_ordinals.append(ordinal + at)
        ordinal += count
        if stop >= len(data):
            return _finish(scan, rows, ordinal)
        lo, pos = special_span(data, stop)
        ordinal = _read_piece(data, lo, pos, ordinal, rows, scan)


def _scan_python(data: bytes) -> BlockScan:
    scan = BlockScan()
    rows = _Rows()
    pieces = segments(data)
    ordinal = 0
    for fast, lo, hi in pieces:
        if fast:
            found = _FAST.findall(data, lo, hi)
            if len(found) == data.count(b"<Record", lo, hi):
                if found:
                    cols = list(zip(*found, strict=True))
                    n = len(found)
                    rows.add_columns(cols, np.arange(ordinal, ordinal + n, dtype=np.int32))
                    ordinal += n
                continue
        ordinal = _read_piece(data, lo, hi, ordinal, rows, scan)
    return _finish(scan, rows, ordinal)
