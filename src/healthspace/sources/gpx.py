"""GPX 1.0/1.1 tracks and routes (GPS watches, Strava, Komoot, Apple workout routes).

Each track (``trk``) and route (``rte``) with points becomes a :class:`Workout`: distance
(2-D, along the points), 3-D distance, climb, bounds and point count as statistics,
and start, end and duration when the points carry times. Garmin's ``hr``/``cad``
extensions become heart-rate and cadence samples. The element itself is kept as the
workout's original.

Times before 1980 (GPS did not exist; 1901-12-13 is a device clock bug) are reported and
ignored. A track with no usable times is dated by the file's own timestamp at day
precision, with a note saying so. One with no date at all cannot be a workout: the
file is kept as a document, with a warning.

The XML is checked and parsed with the hardened parser first (no DTD, no entities);
gpxpy only ever sees the re-serialised, already-parsed tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import gpxpy
import gpxpy.gpx
from lxml import etree

from healthspace.errors import SourceError
from healthspace.hookspecs import hookimpl
from healthspace.model import Attached, Document, PartialDateTime, Quantity, Workout
from healthspace.sources._safety import refuse_entities, xml_parser
from healthspace.sources._wellness import (
    base_name,
    digest,
    provenance,
    read_limited,
    sample_batch,
)
from healthspace.sources.base import ImportContext, InputFile, Item, Source, SourceManifest

__all__ = ["GpxSource", "register_sources"]

SOURCE_ID: Final = "gpx"
_MAX_BYTES: Final = 256 << 20  # parsed in memory; real tracks are a few MB
# GPS time starts on 1980-01-06; anything earlier is a broken clock, not a date.
_GPS_EPOCH: Final = datetime(1980, 1, 6, tzinfo=UTC)
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?gpx[\s>/]")


def _local(element: Any) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _valid(moment: datetime | None) -> bool:
    if moment is None:
        return False
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware >= _GPS_EPOCH


class GpxSource:
    manifest = SourceManifest(
        id=SOURCE_ID,
        name="GPX tracks and routes",
        reads=("workout", "heart_rate"),
        purpose="Your recorded routes: distance, duration, climb, and heart rate if recorded.",
    )

    def sniff(self, file: InputFile, head: bytes) -> bool:
        start = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
        return start.startswith(b"<") and _ROOT.search(head[:4096]) is not None

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        data = read_limited(file, _MAX_BYTES, "the GPX file")
        root, gpx = _load(data, file.name)
        tracks = [e for e in root if _local(e) == "trk"]
        routes = [e for e in root if _local(e) == "rte"]
        if len(tracks) != len(gpx.tracks) or len(routes) != len(gpx.routes):
            raise SourceError("tracks and routes could not be matched up", file=file.name)
        undated: list[str] = []
        parts: list[tuple[str, int, Any, gpxpy.gpx.GPXTrack | gpxpy.gpx.GPXRoute]] = [
            ("track", n, element, track)
            for n, (element, track) in enumerate(zip(tracks, gpx.tracks, strict=True), 1)
        ] + [
            ("route", n, element, route)
            for n, (element, route) in enumerate(zip(routes, gpx.routes, strict=True), 1)
        ]
        fallback = _fallback(gpx, [p[3] for p in parts])
        for kind, number, element, part in parts:
            place = f"{kind} {number} (line {element.sourceline})"
            points = _points(part)
            if not points:
                ctx.warn(place, f"the {kind} has no points; skipped")
                continue
            bogus = sum(1 for p in points if p.time is not None and not _valid(p.time))
            if bogus:
                ctx.warn(
                    place,
                    f"{bogus} point times lie before 1980, before GPS existed (a device clock "
                    "bug); they are ignored, not stored as the activity's time",
                )
            workout = _workout(kind, part, points, element, place, fallback, ctx)
            if workout is None:
                undated.append(place)
                continue
            yield Attached(workout, original=etree.tostring(element, encoding="utf-8"))
            yield from _samples(element, points)
        if not parts or all(not _points(p[3]) for p in parts):
            ctx.warn("file", "no tracks or routes with points (waypoints are not imported)")
        if undated:
            ctx.warn(
                ", ".join(undated),
                "no usable time anywhere in the file; kept as a document, not as a workout",
            )
            yield Attached(_document(data, file, ctx, undated), file=data)


def _load(data: bytes, name: str) -> tuple[Any, gpxpy.gpx.GPX]:
    refuse_entities(name, data)
    # GPX never needs a DTD; refusing one anywhere closes entity tricks past the head.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SourceError("GPX must not declare a DTD; refused for safety", file=name, place="DTD")
    try:
        root = etree.fromstring(data, xml_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else "?"
        raise SourceError("not well-formed XML", file=name, place=f"line {line}") from None
    if _local(root) != "gpx":
        raise SourceError("the root element is not <gpx>", file=name, place="line 1")
    try:
        return root, gpxpy.parse(etree.tostring(root, encoding="unicode"))
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise SourceError(
            f"not a readable GPX document ({type(exc).__name__})", file=name
        ) from None


def _fallback(
    gpx: gpxpy.gpx.GPX, parts: list[gpxpy.gpx.GPXTrack | gpxpy.gpx.GPXRoute]
) -> tuple[datetime, str] | None:
    """A day for parts without times: the other parts' first time, else the file's own."""
    times = [t for part in parts for t in _times(_points(part))]
    if times:
        return min(times), "the first time recorded elsewhere in this file"
    if gpx.time is not None and _valid(gpx.time):
        return gpx.time, "the file's own timestamp (when it was written)"
    return None


def _times(points: list[Any]) -> list[datetime]:
    """The points' usable times (present, and not before GPS existed)."""
    return [p.time for p in points if p.time is not None and _valid(p.time)]


def _points(part: gpxpy.gpx.GPXTrack | gpxpy.gpx.GPXRoute) -> list[Any]:
    if isinstance(part, gpxpy.gpx.GPXRoute):
        return list(part.points)
    return [point for segment in part.segments for point in segment.points]


def _when(moment: datetime) -> PartialDateTime:
    return PartialDateTime.from_datetime(moment)


def _workout(
    kind: str,
    part: gpxpy.gpx.GPXTrack | gpxpy.gpx.GPXRoute,
    points: list[Any],
    element: Any,
    place: str,
    fallback: tuple[datetime, str] | None,
    ctx: ImportContext,
) -> Workout | None:
    times = _times(points)
    notes = [f"{label}: {text}" for label, text in _texts(part) if text]
    duration = None
    if times:
        start, end = _when(min(times)), _when(max(times))
        duration = _moving_span(part).total_seconds()
    elif fallback is not None:
        # Only the day: the file's own timestamp says when it was written, not walked.
        moment, why = fallback
        start = PartialDateTime.parse(moment.date().isoformat())
        end = None
        notes.append(f"No usable point times: dated by {why}, day only")
        ctx.warn(place, f"no usable point times; dated by {why}, day only")
    else:
        return None
    if isinstance(part, gpxpy.gpx.GPXRoute):
        distance_2d = part.length()
        distance_3d = None
        climb = None
    else:
        distance_2d = part.length_2d()
        distance_3d = part.length_3d()
        climb = part.get_uphill_downhill()
    stats: dict[str, Quantity] = {"points": Quantity(value=len(points), unit="{points}")}
    if distance_3d is not None:
        stats["distance_3d"] = Quantity(value=distance_3d, unit="m")
    if climb is not None and any(p.elevation is not None for p in points):
        stats["elevation_gain"] = Quantity(value=climb.uphill, unit="m")
        stats["elevation_loss"] = Quantity(value=climb.downhill, unit="m")
    latitudes = [float(p.latitude) for p in points]
    longitudes = [float(p.longitude) for p in points]
    for key, value in (
        ("min_latitude", min(latitudes)),
        ("max_latitude", max(latitudes)),
        ("min_longitude", min(longitudes)),
        ("max_longitude", max(longitudes)),
    ):
        stats[key] = Quantity(value=value, unit="deg")
    identity = digest(kind, *(f"{p.latitude:.6f},{p.longitude:.6f}" for p in points), *times[:1])
    return Workout(
        source_id=f"gpx:{kind}:{identity}",
        provenance=provenance(SOURCE_ID, ctx, place),
        note="; ".join(notes) or None,
        activity_type=(getattr(part, "type", None) or kind).strip() or kind,
        start=start,
        end=end,
        duration_s=duration,
        distance=Quantity(value=distance_2d, unit="m"),
        statistics=stats,
        source_name="GPX file",
        device=None,
    )


def _texts(part: gpxpy.gpx.GPXTrack | gpxpy.gpx.GPXRoute) -> list[tuple[str, str | None]]:
    return [("Name", part.name), ("Description", part.description), ("Comment", part.comment)]


def _moving_span(part: gpxpy.gpx.GPXTrack | gpxpy.gpx.GPXRoute) -> timedelta:
    """Time covered by each segment's valid times, summed (gaps between segments excluded)."""
    segments = (
        [list(part.points)]
        if isinstance(part, gpxpy.gpx.GPXRoute)
        else [list(s.points) for s in part.segments]
    )
    total = timedelta(0)
    for segment in segments:
        times = _times(segment)
        if times:
            total += max(times) - min(times)
    return total


def _samples(element: Any, points: list[Any]) -> Iterator[Item]:
    """Heart rate and cadence from Garmin TrackPointExtension (``hr``, ``cad``)."""
    nodes = [e for e in element.iter() if _local(e) in ("trkpt", "rtept")]
    series: dict[str, list[tuple[int, int, float]]] = {}
    for node, point in zip(nodes, points, strict=False):
        if not _valid(point.time):
            continue
        t = point.time if point.time.tzinfo is not None else point.time.replace(tzinfo=UTC)
        for child in node.iter():
            name = _local(child)
            metric = {"hr": "heart_rate", "cad": "cadence"}.get(name)
            if metric is None or child is node:
                continue
            try:
                value = float((child.text or "").strip())
            except ValueError:
                continue
            if value == value and value >= 0:
                series.setdefault(metric, []).append((int(t.timestamp() * 1000), 0, value))
    for metric, rows in sorted(series.items()):
        yield sample_batch(metric, "/min", rows, "GPX file")


def _document(data: bytes, file: InputFile, ctx: ImportContext, places: list[str]) -> Document:
    return Document(
        source_id=f"gpx:file:{ctx.file_sha256}",
        provenance=provenance(SOURCE_ID, ctx, None),
        title=base_name(file),
        media_type="application/gpx+xml",
        sha256=ctx.file_sha256,
        size=len(data),
        category="route",
        description=f"GPX with {len(places)} undated track(s) or route(s)",
        file_name=base_name(file),
    )


@hookimpl
def register_sources() -> list[Source]:
    return [GpxSource()]
