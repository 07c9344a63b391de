"""A workout's route file (``workout-routes/*.gpx`` in an export), summarised.

The route's points are not kept as records: a workout gains its route distance,
point count, bounding box, elevation gain and first/last point time. (A standalone
GPX file is another source's job; this reads only what Apple writes.)
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from lxml import etree

from healthspace.sources._safety import refuse_entities

__all__ = ["RouteSummary", "summarize_route"]

_EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


@dataclass(frozen=True)
class RouteSummary:
    points: int
    distance_m: float
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    elevation_gain_m: float
    first_time: str | None
    last_time: str | None


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1]


def summarize_route(data: bytes, name: str) -> RouteSummary | None:
    """The summary of a GPX track or route; None when it has no usable point.

    Raises SourceError for entity declarations; lxml's XMLSyntaxError for broken XML.
    """
    refuse_entities(name, data)
    points = 0
    distance = gain = 0.0
    lat_min = lon_min = math.inf
    lat_max = lon_max = -math.inf
    previous: tuple[float, float] | None = None
    last_ele: float | None = None
    first_time: str | None = None
    last_time: str | None = None
    # The same hardening as _safety.xml_parser: no entities, no DTD, no network.
    events = etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    for _, elem in events:
        if _local(elem.tag) not in ("trkpt", "rtept"):
            continue
        try:
            lat, lon = float(elem.get("lat", "")), float(elem.get("lon", ""))
        except ValueError:
            elem.clear()
            continue
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            elem.clear()
            continue
        points += 1
        lat_min, lat_max = min(lat_min, lat), max(lat_max, lat)
        lon_min, lon_max = min(lon_min, lon), max(lon_max, lon)
        if previous is not None:
            distance += _haversine(previous[0], previous[1], lat, lon)
        previous = (lat, lon)
        for child in elem:
            local = _local(child.tag)
            if local == "ele" and child.text:
                try:
                    ele = float(child.text)
                except ValueError:
                    continue
                if last_ele is not None and ele > last_ele:
                    gain += ele - last_ele
                last_ele = ele
            elif local == "time" and child.text:
                first_time = first_time or child.text.strip()
                last_time = child.text.strip()
        elem.clear()
    if not points:
        return None
    return RouteSummary(
        points, distance, lat_min, lat_max, lon_min, lon_max, gain, first_time, last_time
    )
