"""Scanned blocks in, model items out: samples by plan, records from elements, and what
comes at the end (nights of sleep, ECGs, clinical records).

Everything here is deterministic in the input, block by block: the store resumes an
interrupted import by skipping the items it already holds, so the same file must
give the same items in the same order.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

import numpy as np
from lxml import etree

from healthspace.errors import SourceError
from healthspace.model import SLEEP_STAGE_VALUES, Attached, Provenance
from healthspace.sources._apple_input import Container
from healthspace.sources._apple_metrics import Plan, plan_for, priority_class
from healthspace.sources._apple_observations import (
    activity_day,
    audiogram,
    correlation,
    ecg,
    generic,
)
from healthspace.sources._apple_records import moment, patient, sleep_session, workout
from healthspace.sources._apple_route import RouteSummary, summarize_route
from healthspace.sources._apple_scan import BlockScan, Key
from healthspace.sources._apple_series import SeriesSink, sleep_nights
from healthspace.sources._apple_xml import Elem
from healthspace.sources.base import ImportContext, InputFile, Item

__all__ = ["SOURCE_ID", "Builder"]

SOURCE_ID: Final = "apple_health"

_SleepColumns = tuple[list[Any], list[Any], list[Any], list[Any]]


def _stage(code: float) -> str | None:
    return SLEEP_STAGE_VALUES.get(int(code)) if code == int(code) else None


class Builder:
    """Turns the scans of one export into items; see the module docstring."""

    def __init__(self, ctx: ImportContext, container: Container, horizon_ms: int) -> None:
        self.ctx = ctx
        self.container = container
        self.horizon_ms = horizon_ms
        self.sink = SeriesSink()
        self.sleep: dict[tuple[str, str], _SleepColumns] = {}
        self.sleep_device: dict[str, str] = {}
        self.problems: dict[tuple[str, str], list[Any]] = {}
        self.records_before = 0
        self.tags: Counter[str] = Counter()
        self.plans: dict[Key, tuple[Plan, int]] = {}
        self.clinical_refs = 0
        self.routes_missing = 0

    # -- helpers ------------------------------------------------------------------------

    def prov(self, place: str) -> Provenance:
        return Provenance(
            source=SOURCE_ID,
            file_name=self.ctx.file.name,
            file_sha256=self.ctx.file_sha256,
            original_ref=place,
        )

    def problem(self, kind: str, reason: str, place: str, count: int = 1) -> None:
        entry = self.problems.setdefault((kind, reason), [0, place])
        entry[0] += count

    def _plan(self, key: Key) -> tuple[Plan, int]:
        found = self.plans.get(key)
        if found is None:
            kind, source, device, unit = key
            found = (plan_for(kind, unit), priority_class(source, {device} if device else set()))
            self.plans[key] = found
        return found

    # -- blocks -------------------------------------------------------------------------

    def block(self, scan: BlockScan) -> Iterator[Item]:
        for ordinal, kind, reason in scan.problems:
            self.problem(kind, reason, f"Record {self.records_before + ordinal + 1}")
        yield from self._rows(scan)
        for before, elem, raw in scan.elements:
            yield from self._element(elem, raw, self.records_before + before)
        self.records_before += scan.records

    def _rows(self, scan: BlockScan) -> Iterator[Item]:
        n_keys = len(scan.keys)
        if not n_keys:
            return
        if n_keys == 1:
            groups: list[Any] = [slice(None)]
        else:
            order = np.argsort(scan.key_idx, kind="stable")
            bounds = np.concatenate(([0], np.cumsum(np.bincount(scan.key_idx, minlength=n_keys))))
            groups = [order[bounds[k] : bounds[k + 1]] for k in range(n_keys)]
        for key, rows in zip(scan.keys, groups, strict=True):
            t = scan.start_ms[rows]
            if not len(t):
                continue
            d = scan.end_ms[rows] - t
            plan, klass = self._plan(key)
            v = scan.values[rows]
            if plan.scale != 1.0 or plan.shift != 0.0:
                v = v * plan.scale + plan.shift
            bad = (d < 0) | (t + d > self.horizon_ms) | ~np.isfinite(v)
            if bool(bad.any()):
                self._report(key[0], scan, rows, d, t, v)
                keep = ~bad
                t, d, v = t[keep], d[keep], v[keep]
                offsets = scan.offset_min[rows][keep]
            else:
                offsets = scan.offset_min[rows]
            source = key[1]
            if plan.sleep:
                columns = self.sleep.setdefault((source, ""), ([], [], [], []))
                for column, values in zip(
                    columns, (t, d, v, offsets.astype(np.int64)), strict=True
                ):
                    column.append(values)
                if key[2]:
                    self.sleep_device.setdefault(source, key[2])
                yield from self.sink.add(plan.metric, plan.unit, source, t, d, v)
            elif plan.cumulative:
                yield from self.sink.add(plan.metric, plan.unit, source, t, d, v, rank=klass)
            else:
                yield from self.sink.add(plan.metric, plan.unit, source, t, d, v)

    def _report(self, kind: str, scan: BlockScan, rows: Any, d: Any, t: Any, v: Any) -> None:
        ordinals = scan.ordinal[rows]
        for mask, reason in (
            (d < 0, "ends before it starts"),
            (t > self.horizon_ms, "dated after the export date; not stored"),
            ((t <= self.horizon_ms) & (t + d > self.horizon_ms), "ends after the export date"),
            (~np.isfinite(v), "value is not a finite number"),
        ):
            hits = np.flatnonzero(mask)
            if len(hits):
                first = self.records_before + int(ordinals[hits[0]]) + 1
                self.problem(kind, reason, f"Record {first}", len(hits))

    # -- elements -----------------------------------------------------------------------

    def _future(self, elem: Elem, place: str, attr: str = "startDate") -> bool:
        when = moment(elem.attrs.get(attr))
        if when is not None and when.start.timestamp() * 1000 > self.horizon_ms:
            self.problem(elem.tag, "dated after the export date; not stored", place)
            return True
        return False

    def _element(self, elem: Elem, raw: bytes, records_before: int) -> Iterator[Item]:
        tag = elem.tag
        self.tags[tag] += 1
        place = f"{tag} {self.tags[tag]}"
        if tag == "ExportDate":
            return
        if tag == "ClinicalRecord":
            self.clinical_refs += 1
            return
        if tag == "Me":
            person = patient(elem, self.prov(place))
            if person is not None:
                yield Attached(person, original=raw)
            return
        date_attr = "dateComponents" if tag == "ActivitySummary" else "startDate"
        if self._future(elem, place, date_attr):
            return
        item: Attached | None
        if tag == "Workout":
            item = workout(elem, raw, self.prov(place), self._route)
        elif tag == "Correlation":
            item = correlation(elem, raw, self.prov(place))
        elif tag == "Audiogram":
            item = audiogram(elem, raw, self.prov(place))
        elif tag == "ActivitySummary":
            item = activity_day(elem, raw, self.prov(place))
        else:
            item = generic(elem, raw, self.prov(place))
            self.ctx.unmapped[f"element {tag}"] += 1
        if item is None:
            self.problem(tag, "no readable date; skipped", place)
        else:
            yield item

    def _route(self, path: str) -> RouteSummary | None:
        member = self.container.prefix + path.lstrip("/")
        if self.container.archive is None or not self.container.has(member):
            self.routes_missing += 1
            return None
        try:
            return summarize_route(self.container.read(member), member)
        except (etree.XMLSyntaxError, SourceError) as exc:
            reason = exc.reason if isinstance(exc, SourceError) else "not readable GPX"
            self.ctx.warn(member, f"workout route skipped: {reason}")
            return None

    # -- the end ------------------------------------------------------------------------

    def finish(self) -> Iterator[Item]:
        yield from self.sink.drain()
        for n, night in enumerate(sleep_nights(self.sleep, _stage), start=1):
            device = self.sleep_device.get(night.source, "")
            if device and not night.device:
                night = type(night)(
                    night.source, device, night.offset_min, night.t, night.d, night.codes
                )
            yield sleep_session(night, self.prov(f"sleep session {n}"))
        self.sleep.clear()
        yield from self._ecgs()
        yield from self._clinical()
        self._warnings()

    def _ecgs(self) -> Iterator[Item]:
        for member in self.container.members("electrocardiograms", ".csv"):
            found = ecg(self.container.read(member), self.prov(member))
            if found is None:
                self.ctx.warn(member, "ECG recording without a readable date; skipped")
            else:
                yield found

    def _clinical(self) -> Iterator[Item]:
        members = self.container.members("clinical-records", ".json")
        if not members:
            if self.clinical_refs:
                self.ctx.unmapped["clinical record file not in the input"] += self.clinical_refs
            return
        try:
            fhir: Any = importlib.import_module("healthspace.sources.fhir")
        except ImportError:
            self.ctx.warn("clinical-records", "no FHIR reader installed; clinical records kept out")
            self.ctx.unmapped["clinical record (no FHIR reader)"] += len(members)
            return
        reader = fhir.FhirSource()
        archive_name = self.container.name.split("!", 1)[0]
        for member in members:
            data = self.container.read(member)
            items = reader.parse(InputFile.from_bytes(data, f"{archive_name}!{member}"), self.ctx)
            while True:
                try:
                    item = next(items)
                except StopIteration:
                    break
                except SourceError as exc:
                    self.ctx.warn(member, f"clinical record skipped: {exc.reason}")
                    break
                yield item

    def _warnings(self) -> None:
        for (kind, reason), (count, place) in self.problems.items():  # first seen, first
            more = f" (and {count - 1} more like it)" if count > 1 else ""
            self.ctx.warn(f"{place} ({kind})", f"{reason}{more}")
        if self.routes_missing:
            self.ctx.unmapped["workout route file not in the input"] += self.routes_missing
