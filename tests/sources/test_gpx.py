"""GPX: tracks and routes import with distance and times; bogus and missing times are handled."""

from __future__ import annotations

import itertools
import math
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest

from healthspace.errors import SourceError
from healthspace.model import Attached, Document, Workout
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.gpx import GpxSource
from healthspace.sources.pipeline import import_files, import_paths
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession, Store
from tests.conftest import SHARED_DATA
from tests.store.test_records import logical_dump

GPX_DIR = SHARED_DATA / "gpx"
SAMPLES = sorted(GPX_DIR.glob("*.gpx"))
GARMIN_11 = """\ufeff<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Garmin Connect" xmlns="http://www.topografix.com/GPX/1/1"
 xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
 <metadata><time>2021-05-02T07:00:00Z</time></metadata>
 <trk><name>Morning Run</name><type>running</type><trkseg>
  <trkpt lat="46.0500" lon="14.5000"><ele>300.0</ele><time>2021-05-02T07:00:00Z</time>
   <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>101</gpxtpx:hr><gpxtpx:cad>80</gpxtpx:cad>
   </gpxtpx:TrackPointExtension></extensions></trkpt>
  <trkpt lat="46.0510" lon="14.5010"><ele>302.0</ele><time>2021-05-02T07:00:30Z</time>
   <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>122</gpxtpx:hr><gpxtpx:cad>84</gpxtpx:cad>
   </gpxtpx:TrackPointExtension></extensions></trkpt>
  <trkpt lat="46.0520" lon="14.5025"><ele>301.0</ele><time>2021-05-02T07:01:00Z</time>
   <extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>131</gpxtpx:hr><gpxtpx:cad>85</gpxtpx:cad>
   </gpxtpx:TrackPointExtension></extensions></trkpt>
 </trkseg></trk>
</gpx>
"""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parts(path: Path) -> list[tuple[str, list[ElementTree.Element]]]:
    """(kind, points) of every trk/rte with points, read with ElementTree directly."""
    root = ElementTree.parse(path).getroot()
    out = []
    for child in root:
        kind = _local(child.tag)
        if kind in ("trk", "rte"):
            points = [e for e in child.iter() if _local(e.tag) in ("trkpt", "rtept")]
            if points:
                out.append((kind, points))
    return out


def _has_time(path: Path) -> bool:
    root = ElementTree.parse(path).getroot()
    return any(_local(e.tag) == "time" for e in root.iter())


def _haversine(points: list[ElementTree.Element]) -> float:
    total = 0.0
    for a, b in itertools.pairwise(points):
        lat1, lon1 = math.radians(float(a.get("lat", 0))), math.radians(float(a.get("lon", 0)))
        lat2, lon2 = math.radians(float(b.get("lat", 0))), math.radians(float(b.get("lon", 0)))
        h = (
            math.sin((lat2 - lat1) / 2) ** 2
            + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        )
        total += 2 * 6_371_000 * math.asin(math.sqrt(h))
    return total


def _parse(data: bytes, name: str = "track.gpx") -> tuple[list[Item], ImportContext]:
    file = InputFile.from_bytes(data, name)
    ctx = ImportContext(file=file, file_sha256=file.sha256())
    return list(GpxSource().parse(file, ctx)), ctx


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_imports_and_reimport_adds_nothing(health: SpaceSession, path: Path) -> None:
    parts = _parts(path)
    report = import_paths(health, [path])
    assert report.errors == []
    assert [f.source for f in report.files] == ["gpx"]
    if not parts:
        expected: dict[str, int] = {}
    elif _has_time(path):
        expected = {"workout": len(parts)}
    else:
        expected = {"document": 1}  # nothing dates it: kept as the file, not a workout
    assert report.imported == expected
    if "workout" in expected:
        workouts = [s.record for s in RecordRepository(health).list(kind="workout")]
        counts = [w.statistics["points"].value for w in workouts if isinstance(w, Workout)]
        assert sorted(counts) == sorted(len(points) for _, points in parts)
    again = import_paths(health, [path])
    assert again.imported == {}


def test_distance_is_within_one_percent_of_the_points() -> None:
    path = GPX_DIR / "gpxpy_cerknicko-jezero.gpx"
    items, _ = _parse(path.read_bytes())
    workouts = [i.record for i in items if isinstance(i, Attached)]
    assert len(workouts) == len(_parts(path))
    for workout, (_, points) in zip(workouts, _parts(path), strict=True):
        assert isinstance(workout, Workout)
        assert workout.distance is not None
        assert workout.distance.unit == "m"
        assert workout.distance.value == pytest.approx(_haversine(points), rel=0.01)
        assert workout.statistics["points"].value == len(points)
        latitudes = [float(p.get("lat", "nan")) for p in points]
        assert workout.statistics["min_latitude"].value == min(latitudes)
        assert workout.statistics["max_latitude"].value == max(latitudes)
        assert workout.duration_s is not None  # times exist
        times = [
            datetime.fromisoformat(t.text.replace("Z", "+00:00"))
            for p in points
            for t in p
            if _local(t.tag) == "time" and t.text
        ]
        assert workout.start.start == min(times)


def test_route_distance_is_within_one_percent() -> None:
    path = GPX_DIR / "gpxpy_route.gpx"
    items, ctx = _parse(path.read_bytes(), path.name)
    (document,) = [i for i in items if isinstance(i, Attached)]
    assert isinstance(document.record, Document)
    assert document.file == path.read_bytes()
    assert any("no usable time" in w for w in ctx.warnings)
    # Given a date, the same route is a workout with its distance.
    dated = path.read_text().replace("<rte>", "<time>2012-01-01T00:00:00Z</time><rte>", 1)
    items, _ = _parse(dated.encode(), path.name)
    (route,) = [i.record for i in items if isinstance(i, Attached)]
    assert isinstance(route, Workout)
    assert route.distance is not None
    ((_, points),) = _parts(path)
    assert route.distance.value == pytest.approx(_haversine(points), rel=0.01)


def test_bogus_1901_times_are_flagged_and_not_stored_as_fact() -> None:
    path = GPX_DIR / "gpxpy_Mojstrovka.gpx"
    times = {
        e.text[:4]
        for e in ElementTree.parse(path).getroot().iter()
        if _local(e.tag) == "time" and e.text
    }
    assert "1901" in times
    items, ctx = _parse(path.read_bytes(), path.name)
    (workout,) = [i.record for i in items if isinstance(i, Attached)]
    assert isinstance(workout, Workout)
    assert workout.start.start.year != 1901
    assert workout.start.precision == "day"  # only the file's own date is known
    assert workout.duration_s is None
    assert workout.end is None
    assert any("before 1980" in w for w in ctx.warnings)
    assert workout.note is not None
    assert "No usable point times" in workout.note


def test_tracks_without_times_still_import_dated_by_the_file() -> None:
    path = GPX_DIR / "gpxpy_cerknicko-without-times.gpx"
    items, ctx = _parse(path.read_bytes(), path.name)
    workouts = [i.record for i in items if isinstance(i, Attached)]
    assert len(workouts) == len(_parts(path))
    undated = [w for w in workouts if isinstance(w, Workout) and w.duration_s is None]
    assert undated
    assert all(w.start.precision == "day" for w in undated)
    assert all(w.distance is not None and w.distance.value > 0 for w in undated)
    assert any("no usable point times" in w for w in ctx.warnings)


def test_heart_rate_extension_and_bom(health: SpaceSession) -> None:
    report = import_files(health, [InputFile.from_bytes(GARMIN_11.encode(), "run.gpx")])
    assert report.errors == []
    assert report.imported == {"workout": 1}
    (stored,) = RecordRepository(health).list(kind="workout")
    workout = stored.record
    assert isinstance(workout, Workout)
    assert workout.activity_type == "running"
    assert workout.duration_s == 60
    assert workout.note == "Name: Morning Run"
    rates = SeriesRepository(health).samples("heart_rate", 0, 4_000_000_000_000)
    assert rates.values.tolist() == [101.0, 122.0, 131.0]
    original = RecordRepository(health).original(stored.record_id)
    assert original is not None
    assert b"TrackPointExtension" in original


def test_no_namespace_and_waypoints_only_imports_nothing() -> None:
    items, ctx = _parse((GPX_DIR / "gpxpy_unicode_with_bom.gpx").read_bytes())
    assert items == []
    assert any("waypoints are not imported" in w for w in ctx.warnings)


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx>&a;</gpx>',
        b'<?xml version="1.0"?><!DOCTYPE gpx SYSTEM "http://127.0.0.1:9/gpx.dtd"><gpx/>',
        b'<?xml version="1.0"?><!--' + b"x" * 70_000 + b'--><!DOCTYPE gpx [<!ENTITY a "b">]><gpx/>',
    ],
    ids=["entity", "external-dtd", "dtd-after-head"],
)
def test_dtds_and_entities_are_refused(store: Store, health: SpaceSession, payload: bytes) -> None:
    with pytest.raises(SourceError) as info:
        _parse(payload, "evil.gpx")
    assert (info.value.file, info.value.place) == ("evil.gpx", "DTD")
    before = logical_dump(store)
    report = import_files(health, [InputFile.from_bytes(payload, "evil.gpx")])
    (error,) = report.errors
    assert error.startswith("evil.gpx: ")
    assert logical_dump(store) == before


def test_malformed_xml_names_the_line() -> None:
    broken = GARMIN_11.replace("</trkseg>", "</trksg>")
    with pytest.raises(SourceError) as info:
        _parse(broken.encode(), "broken.gpx")
    assert info.value.file == "broken.gpx"
    assert info.value.place is not None
    assert info.value.place.startswith("line ")


def test_sniff_wants_a_gpx_root() -> None:
    source = GpxSource()
    for path in SAMPLES:
        assert source.sniff(InputFile.from_path(path), path.read_bytes()[:4096])
    ccda = b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'
    assert not source.sniff(InputFile.from_bytes(ccda, "x.xml"), ccda)
