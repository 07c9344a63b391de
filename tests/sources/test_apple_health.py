"""Apple Health exports: every sample file, zipped under localised names, generated
exports round-tripped through the chunks, the source-priority rule, locale values,
impossible dates, iOS 8 layout, entities, ECGs, clinical records and hostile archives.

Expected figures are read from the XML by the standard library (ElementTree and
``strptime``); only the name of the series a type goes to comes from the importer.
"""

from __future__ import annotations

import itertools
import math
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest

from healthspace.errors import SourceError
from healthspace.model import (
    Observation,
    Patient,
    Quantity,
    QuantityValue,
    SleepSession,
    StringValue,
    Workout,
    convert,
)
from healthspace.sources import _apple_input, _apple_scan
from healthspace.sources._apple_metrics import HRV_BEATS, plan_for
from healthspace.sources._apple_scan import scan_block
from healthspace.sources.apple_health import AppleHealthSource
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.fhir import FhirSource
from healthspace.sources.pipeline import ImportReport, import_paths
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession
from tests.conftest import SHARED_DATA
from tests.store.test_records import logical_dump

APPLE = SHARED_DATA / "apple-health"
SAMPLES = sorted(APPLE.rglob("*.xml"))
ROUTE = APPLE / "healthkit-to-sqlite" / "workout-routes" / "route_2019-06-11_3.00pm.gpx"
GENERATOR = SHARED_DATA.parent / "bench" / "gen_apple_export.py"
LOCALISED = ("export.xml", "exportar.xml", "导出.xml")
END_MS = 4_102_444_800_000  # 2100-01-01: samples(0, END_MS) is all of them

# HealthKit's raw category values, as Apple documents them.
CATEGORY = {
    "HKCategoryValueSleepAnalysisInBed": 0.0,
    "HKCategoryValueSleepAnalysisAsleepUnspecified": 1.0,
    "HKCategoryValueSleepAnalysisAwake": 2.0,
    "HKCategoryValueSleepAnalysisAsleepCore": 3.0,
    "HKCategoryValueSleepAnalysisAsleepDeep": 4.0,
    "HKCategoryValueSleepAnalysisAsleepREM": 5.0,
    "HKCategoryValueAppleStandHourStood": 0.0,
    "HKCategoryValueAppleStandHourIdle": 1.0,
}
Key = tuple[int, int, str]  # a sample's identity: start ms, duration ms, source


# -- reading the XML independently -------------------------------------------------------


def utc_ms(text: str) -> int:
    return int(datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S %z").timestamp() * 1000)


def top_level(xml: bytes) -> list[ElementTree.Element]:
    return list(ElementTree.fromstring(xml))


def count_tags(xml: bytes) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for element in top_level(xml):
        counts[element.tag] += 1
    return dict(counts)


def xml_series(xml: bytes) -> dict[str, dict[Key, float]]:
    """Per metric, every Record's identity and value (last one wins, as in a chunk)."""
    out: dict[str, dict[Key, float]] = defaultdict(dict)
    for element in top_level(xml):
        if element.tag != "Record":
            continue
        kind = element.get("type", "")
        plan = plan_for(kind, element.get("unit", ""))
        start = utc_ms(element.get("startDate", ""))
        end = utc_ms(element.get("endDate", ""))
        text = element.get("value", "")
        value = CATEGORY[text] if text in CATEGORY else float(text.replace(",", "."))
        key = (start, end - start, element.get("sourceName", ""))
        out[plan.metric][key] = value * plan.scale + plan.shift
    return dict(out)


def expected_counts(xml: bytes) -> dict[str, int]:
    counts = {metric: len(samples) for metric, samples in xml_series(xml).items()}
    beats = sum(1 for e in top_level(xml) for _ in e.iter("InstantaneousBeatsPerMinute"))
    if beats:
        counts[HRV_BEATS] = beats
    return counts


def stored(session: SpaceSession, metric: str) -> dict[Key, float]:
    data = SeriesRepository(session).samples(metric, 0, END_MS)
    return dict(
        zip(
            zip(data.t_ms.tolist(), data.duration_ms.tolist(), data.source_names(), strict=True),
            data.values.tolist(),
            strict=True,
        )
    )


def stored_count(session: SpaceSession, metric: str) -> int:
    return sum(day.n for day in SeriesRepository(session).daily(metric))


def zip_export(
    path: Path, xml: bytes, name: str = "export.xml", extra: dict[str, bytes] | None = None
) -> Path:
    """An export.zip as the iPhone writes it: everything under apple_health_export/."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"apple_health_export/{name}", xml)
        for member, data in (extra or {}).items():
            archive.writestr(f"apple_health_export/{member}", data)
    return path


def parse(data: bytes, name: str = "export.xml") -> tuple[list[Item], ImportContext]:
    file = InputFile.from_bytes(data, name)
    ctx = ImportContext(file=file, file_sha256="0" * 64)
    return list(AppleHealthSource().parse(file, ctx)), ctx


def one(report: ImportReport) -> Any:
    assert report.errors == [], report.errors
    assert len(report.files) == 1
    return report.files[0]


def haversine_m(points: list[tuple[float, float]]) -> float:
    total = 0.0
    for (lat1, lon1), (lat2, lon2) in itertools.pairwise(points):
        p1, p2 = math.radians(lat1), math.radians(lat2)
        a = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
        )
        total += 2 * 6_371_008.8 * math.asin(math.sqrt(a))
    return total


# -- detection ---------------------------------------------------------------------------


def test_sniff_claims_exports_and_nothing_else(tmp_path: Path) -> None:
    source = AppleHealthSource()
    for sample in SAMPLES:
        file = InputFile.from_path(sample)
        assert source.sniff(file, file.head(65536))
    exported = zip_export(tmp_path / "export.zip", SAMPLES[0].read_bytes(), "导出.xml")
    assert source.sniff(InputFile.from_path(exported), exported.read_bytes()[:65536])
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("notes/export.xml", b"<HealthData/>")
    assert not source.sniff(InputFile.from_path(other), other.read_bytes()[:65536])
    ccda = next((SHARED_DATA / "ccda").glob("*.xml"))
    assert not source.sniff(InputFile.from_path(ccda), ccda.read_bytes()[:65536])


# -- every sample file, bare and zipped --------------------------------------------------


def _check_sample(session: SpaceSession, xml: bytes, report: ImportReport) -> None:
    outcome = one(report)
    tags = count_tags(xml)
    observations = sum(tags.get(t, 0) for t in ("Correlation", "Audiogram", "ActivitySummary"))
    expected_records = {
        "workout": tags.get("Workout", 0),
        "observation": observations,
        "patient": tags.get("Me", 0),
    }
    assert outcome.result.imported == {k: v for k, v in expected_records.items() if v}
    repo = RecordRepository(session)
    for kind, n in expected_records.items():
        assert len(repo.list(kind=kind)) == n
    for metric, n in expected_counts(xml).items():
        assert stored_count(session, metric) == n, metric


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_sample_file_imports_bare(sample: Path, health: SpaceSession) -> None:
    xml = sample.read_bytes()
    _check_sample(health, xml, import_paths(health, [sample]))
    again = one(import_paths(health, [sample]))
    assert again.result.imported == {}
    assert again.result.samples == 0
    assert again.result.updated == 0


@pytest.mark.parametrize("name", LOCALISED)
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_sample_file_imports_zipped(
    sample: Path, name: str, health: SpaceSession, tmp_path: Path
) -> None:
    xml = sample.read_bytes()
    route = {"workout-routes/" + ROUTE.name: ROUTE.read_bytes()}
    archive = zip_export(tmp_path / "export.zip", xml, name, route)
    _check_sample(health, xml, import_paths(health, [archive]))
    again = one(import_paths(health, [archive]))
    assert (again.result.imported, again.result.samples) == ({}, 0)


def test_workout_route_is_summarised(health: SpaceSession, tmp_path: Path) -> None:
    xml = (APPLE / "healthkit-to-sqlite" / "export.xml").read_bytes()
    archive = zip_export(
        tmp_path / "export.zip", xml, extra={"workout-routes/" + ROUTE.name: ROUTE.read_bytes()}
    )
    one(import_paths(health, [archive]))
    (stored_workout,) = RecordRepository(health).list(kind="workout")
    workout = stored_workout.record
    assert isinstance(workout, Workout)
    root = ElementTree.fromstring(ROUTE.read_bytes())
    points = [
        (float(p.get("lat", "nan")), float(p.get("lon", "nan")))
        for p in root.iter()
        if p.tag.endswith("trkpt")
    ]
    assert workout.statistics["route.points"].value == len(points)
    assert workout.statistics["route.distance"].value == pytest.approx(haversine_m(points), 1e-3)
    assert workout.statistics["route.lat_min"].value == min(p[0] for p in points)
    element = next(e for e in top_level(xml) if e.tag == "Workout")
    assert workout.distance is not None
    assert workout.distance.value == pytest.approx(float(element.get("totalDistance", "")))
    assert workout.device is None or "HKDevice" not in workout.device
    original = RecordRepository(health).original(stored_workout.record_id)
    assert original is not None
    assert original.startswith(b"<Workout")


def test_unit_conversions_of_sample_file(health: SpaceSession) -> None:
    one(import_paths(health, [APPLE / "opendroid-hk" / "sampleexport-2.xml"]))
    mass = sorted(stored(health, "body_mass").values())
    assert mass[0] == pytest.approx(convert(138.0, "[lb_av]", "kg"))
    height = stored(health, "HKQuantityTypeIdentifierHeight")
    assert list(height.values()) == [pytest.approx(convert(5.75, "[ft_i]", "cm"))]
    fat = sorted(stored(health, "HKQuantityTypeIdentifierBodyFatPercentage").values())
    assert fat == [pytest.approx(16.1), pytest.approx(16.3)]  # HealthKit writes fractions
    vo2 = stored(health, "HKQuantityTypeIdentifierVO2Max")
    assert list(vo2.values()) == [pytest.approx(33.09)]


# -- generated exports through the chunks --------------------------------------------------


SMALL_EXPORT = ("--records", "20000", "--workouts", "20", "--days", "30")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("generated")
    subprocess.run(
        [sys.executable, str(GENERATOR), *SMALL_EXPORT, "--out-dir", str(out)],
        check=True,
        capture_output=True,
    )
    xml = (out / "apple_health_export" / "export.xml").read_bytes()
    return {"zip": out / "export.zip", "xml": xml, "series": xml_series(xml)}


def test_generated_export_round_trips(health: SpaceSession, generated: dict[str, Any]) -> None:
    outcome = one(import_paths(health, [generated["zip"]]))
    assert outcome.warnings == []
    xml, series = generated["xml"], generated["series"]
    tags = count_tags(xml)
    repo = RecordRepository(health)
    assert len(repo.list(kind="workout")) == tags["Workout"] == 20
    assert len(repo.list(kind="observation")) == tags["ActivitySummary"] == 30
    assert len(repo.list(kind="patient")) == 1
    for metric, expected in series.items():
        assert stored_count(health, metric) == len(expected), metric
    # Not cumulative: stored exactly as recorded, sample by sample, and by day.
    for metric in ("heart_rate", "blood_glucose", "body_mass", "sleep"):
        assert stored(health, metric) == series[metric], metric
    by_day: dict[str, list[float]] = defaultdict(list)
    for (t, _, _), value in series["heart_rate"].items():
        by_day[datetime.fromtimestamp(t / 1000).astimezone().date().isoformat()].append(value)
    daily = SeriesRepository(health).daily("heart_rate")
    sums = defaultdict(float)
    for (t, _, _), value in series["heart_rate"].items():
        sums[str(np.datetime64(t, "ms").astype("datetime64[D]"))] += value
    assert {a.day.isoformat(): round(a.sum, 6) for a in daily} == {
        day: round(total, 6) for day, total in sums.items()
    }
    # Cumulative: counted value + overlap is what each source recorded.
    for metric in ("steps", "active_energy"):
        counted, lost = stored(health, metric), stored(health, metric + ".overlap")
        assert set(counted) == set(series[metric])
        assert set(lost) <= set(counted)
        for key, value in series[metric].items():
            assert counted[key] + lost.get(key, 0.0) == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_generated_workouts_take_statistics(
    health: SpaceSession, generated: dict[str, Any]
) -> None:
    one(import_paths(health, [generated["zip"]]))
    workouts = {
        w.record.start.original: w.record for w in RecordRepository(health).list(kind="workout")
    }
    for element in top_level(generated["xml"]):
        if element.tag != "Workout":
            continue
        workout = workouts[element.get("startDate", "")]
        assert isinstance(workout, Workout)
        stats = {s.get("type"): s for s in element.iter("WorkoutStatistics")}
        energy = stats["HKQuantityTypeIdentifierActiveEnergyBurned"]
        assert workout.energy is not None
        assert workout.energy.value == pytest.approx(float(energy.get("sum", "")))
        hr = stats["HKQuantityTypeIdentifierHeartRate"]
        assert workout.avg_heart_rate is not None
        assert workout.max_heart_rate is not None
        assert workout.avg_heart_rate.value == pytest.approx(float(hr.get("average", "")))
        assert workout.max_heart_rate.value == pytest.approx(float(hr.get("maximum", "")))
        distance = stats.get("HKQuantityTypeIdentifierDistanceWalkingRunning")
        if distance is not None:
            assert workout.distance is not None
            assert workout.distance.value == pytest.approx(float(distance.get("sum", "")))
        pauses = list(element.iter("WorkoutEvent"))
        if pauses:
            paused = utc_ms(pauses[1].get("date", "")) - utc_ms(pauses[0].get("date", ""))
            assert workout.statistics["paused"].value == pytest.approx(paused / 1000)


def test_generated_sleep_becomes_sessions(health: SpaceSession, generated: dict[str, Any]) -> None:
    one(import_paths(health, [generated["zip"]]))
    sessions = [s.record for s in RecordRepository(health).list(kind="sleep")]
    assert sessions
    assert all(isinstance(s, SleepSession) for s in sessions)
    stages = sum(len(s.stages) for s in sessions if isinstance(s, SleepSession))
    assert stages == len(generated["series"]["sleep"])
    for session in sessions:
        assert isinstance(session, SleepSession)
        assert session.start.start <= session.stages[0].start.start
        assert session.end.start >= max(p.end.start for p in session.stages)


# -- the source-priority rule --------------------------------------------------------------

WATCH_DEVICE = (
    "&lt;&lt;HKDevice: 0x280a1&gt;, name:Apple Watch, manufacturer:Apple Inc., "
    "model:Watch, hardware:Watch6,2, software:10.1&gt;"
)
PHONE_DEVICE = (
    "&lt;&lt;HKDevice: 0x280b2&gt;, name:iPhone, manufacturer:Apple Inc., "
    "model:iPhone, hardware:iPhone14,2, software:17.1&gt;"
)


def _steps(source: str, device: str | None, start: str, end: str, value: float) -> str:
    dev = f' device="{device}"' if device else ""
    return (
        f'<Record type="HKQuantityTypeIdentifierStepCount" sourceName="{source}" '
        f'sourceVersion="1"{dev} unit="count" creationDate="{end}" startDate="{start}" '
        f'endDate="{end}" value="{value:g}"/>\n'
    )


def _export(body: str, export_date: str = "2024-03-02 09:00:00 -0700") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'
        f' <ExportDate value="{export_date}"/>\n{body}</HealthData>\n'
    ).encode()


def _at(minute: int) -> str:
    return f"2024-03-01 {10 + minute // 60:02d}:{minute % 60:02d}:00 -0700"


def test_overlapping_watch_and_phone_steps_count_once(health: SpaceSession, tmp_path: Path) -> None:
    # The watch (named by its owner; its device says what it is) covers 10:00-11:00;
    # the phone counted the same walk in 5-minute pieces, and an app a stretch of it.
    watch = [
        _steps("🕛🕐🕑🕒", WATCH_DEVICE, _at(m), _at(m + 10), 100 + m) for m in range(0, 60, 10)
    ]
    phone = [_steps("Alex’s iPhone", PHONE_DEVICE, _at(m), _at(m + 5), 47) for m in range(0, 60, 5)]
    app = [_steps("Pedometer++", None, _at(20), _at(40), 333)]
    path = tmp_path / "export.xml"
    path.write_bytes(_export("".join(watch + phone + app)))
    one(import_paths(health, [path]))
    (day,) = SeriesRepository(health).daily("steps")
    watch_alone = sum(100 + m for m in range(0, 60, 10))
    assert day.sum == watch_alone
    raw = xml_series(path.read_bytes())["steps"]
    counted, lost = stored(health, "steps"), stored(health, "steps.overlap")
    assert set(counted) == set(raw)
    for key, value in raw.items():
        assert counted[key] + lost.get(key, 0.0) == pytest.approx(value)


def test_partly_covered_samples_count_their_uncovered_share(
    health: SpaceSession, tmp_path: Path
) -> None:
    body = (
        _steps("Alex’s iPhone", PHONE_DEVICE, _at(0), _at(20), 200)  # half under the watch
        + _steps("Alex’s iPhone", PHONE_DEVICE, _at(30), _at(40), 90)  # no watch then
        + _steps("My Watch", WATCH_DEVICE, _at(10), _at(25), 150)
        + _steps("Pedometer++", None, _at(15), _at(45), 300)  # 10 of 30 min uncovered
    )
    path = tmp_path / "export.xml"
    path.write_bytes(_export(body))
    one(import_paths(health, [path]))
    (day,) = SeriesRepository(health).daily("steps")
    # Watch 10-25; phone 0-20 keeps 0-10 and 30-40 all; the app keeps 25-30 and 40-45.
    assert day.sum == pytest.approx(150 + 200 * 10 / 20 + 90 + 300 * 10 / 30)


# -- locale, impossible dates, old layouts ---------------------------------------------------


def _hrv(start: str, times: list[str]) -> str:
    beats = "".join(
        f'<InstantaneousBeatsPerMinute bpm="{60 + i}" time="{t}"/>' for i, t in enumerate(times)
    )
    return (
        '<Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="Montre" '
        f'device="{WATCH_DEVICE}" unit="ms" creationDate="{start}" startDate="{start}" '
        f'endDate="{start}" value="41,5"><HeartRateVariabilityMetadataList>{beats}'
        "</HeartRateVariabilityMetadataList></Record>\n"
    )


def test_locale_formatted_values_and_beat_times(health: SpaceSession, tmp_path: Path) -> None:
    body = (
        _hrv("2020-12-06 00:20:30 +0100", ["00:20:37,80", "00:20:38,91"])  # en_FR
        + _hrv("2020-12-06 11:26:00 -0800", ["11:26:02.34 AM", "11:26:03.37 AM"])  # en_US
        + _hrv("2020-12-06 23:59:58 +0100", ["23:59:59,50", "00:00:00,40"])  # past midnight
        + '<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Montre" unit="count/min" '
        'startDate="2020-12-06 08:00:00 +0100" endDate="2020-12-06 08:00:00 +0100" value="72,5"/>\n'
    )
    path = tmp_path / "export.xml"
    path.write_bytes(_export(body, "2020-12-07 09:00:00 +0100"))
    assert one(import_paths(health, [path])).warnings == []
    assert sorted(stored(health, "hrv_sdnn").values()) == [41.5, 41.5, 41.5]
    assert list(stored(health, "heart_rate").values()) == [72.5]
    beats = sorted(stored(health, HRV_BEATS))
    expected = [
        utc_ms("2020-12-06 00:20:37 +0100") + 800,
        utc_ms("2020-12-06 00:20:38 +0100") + 910,
        utc_ms("2020-12-06 11:26:02 -0800") + 340,
        utc_ms("2020-12-06 11:26:03 -0800") + 370,
        utc_ms("2020-12-06 23:59:59 +0100") + 500,
        utc_ms("2020-12-07 00:00:00 +0100") + 400,
    ]
    assert [t for t, _, _ in beats] == expected


def test_future_dates_are_flagged_not_stored(health: SpaceSession, tmp_path: Path) -> None:
    body = (
        _steps("Alex’s iPhone", PHONE_DEVICE, _at(0), _at(5), 10)
        + _steps(
            "Alex’s iPhone",
            PHONE_DEVICE,
            "2099-03-01 10:00:00 -0700",
            "2099-03-01 10:05:00 -0700",
            20,
        )
        + _steps(
            "Alex’s iPhone",
            PHONE_DEVICE,
            "2091-03-01 10:00:00 -0700",
            "2091-03-01 10:05:00 -0700",
            30,
        )
        + '<Workout workoutActivityType="HKWorkoutActivityTypeRunning" sourceName="W" '
        'startDate="2098-01-01 10:00:00 -0700" endDate="2098-01-01 11:00:00 -0700"/>\n'
    )
    path = tmp_path / "export.xml"
    path.write_bytes(_export(body))
    outcome = one(import_paths(health, [path]))
    assert list(stored(health, "steps").values()) == [10]
    assert RecordRepository(health).list(kind="workout") == []
    text = "\n".join(outcome.warnings)
    assert "Record 2 (HKQuantityTypeIdentifierStepCount)" in text
    assert "after the export date" in text
    assert "1 more like it" in text
    assert "Workout 1" in text
    assert "2099" not in text
    assert "20" not in text.split("Record 2")[1].split(")")[0]


IOS8 = b"""<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="en_US">
 <ExportDate value="20150616081916-0700"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="19800101" \
HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" \
HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet"/>
 <Record type="HKQuantityTypeIdentifierBodyFatPercentage" source="Withings" unit="%" \
creationDate="20150616071916-0700" startDate="20150616071820-0700" \
endDate="20150616071820-0700" Health Mate App Version="2.6.0" HKDeviceSerialNumber="00000" \
Withings User Identifier="1" Modified Date="2015-06-16 14:19:08 +0000" \
Withings Link="withings-bd2://timeline/measure?userid=1&amp;date=2&amp;type=1" \
HKWasUserEntered="0" value="0.213"/>
 <Record type="HKQuantityTypeIdentifierStepCount" source="Health" unit="count" \
creationDate="20150615090000-0700" startDate="20150615080000-0700" \
endDate="20150615081000-0700" value="512"/>
</HealthData>
"""


def test_ios8_layout_with_compact_dates_and_source(health: SpaceSession, tmp_path: Path) -> None:
    path = tmp_path / "Export.xml"
    path.write_bytes(IOS8)
    outcome = one(import_paths(health, [path]))
    assert outcome.warnings == []
    assert stored(health, "HKQuantityTypeIdentifierBodyFatPercentage") == {
        (utc_ms("2015-06-16 07:18:20 -0700"), 0, "Withings"): pytest.approx(21.3)
    }
    assert stored(health, "steps") == {
        (utc_ms("2015-06-15 08:00:00 -0700"), 600_000, "Health"): 512
    }
    (person,) = RecordRepository(health).list(kind="patient")
    assert isinstance(person.record, Patient)
    assert person.record.birth_date is not None
    assert person.record.birth_date.isoformat() == "1980-01-01"
    assert person.record.sex == "female"


# -- correlations, ECGs, clinical records ---------------------------------------------------

BLOOD_PRESSURE = """ <Correlation type="HKCorrelationTypeIdentifierBloodPressure" \
sourceName="Omron" sourceVersion="2" creationDate="2024-03-01 08:01:00 -0700" \
startDate="2024-03-01 08:00:00 -0700" endDate="2024-03-01 08:00:00 -0700">
  <MetadataEntry key="HKWasUserEntered" value="0"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Omron" unit="mmHg" \
startDate="2024-03-01 08:00:00 -0700" endDate="2024-03-01 08:00:00 -0700" value="79"/>
  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Omron" unit="mmHg" \
startDate="2024-03-01 08:00:00 -0700" endDate="2024-03-01 08:00:00 -0700" value="121"/>
 </Correlation>
 <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" sourceName="Omron" unit="mmHg" \
startDate="2024-03-01 08:00:00 -0700" endDate="2024-03-01 08:00:00 -0700" value="79"/>
 <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Omron" unit="mmHg" \
startDate="2024-03-01 08:00:00 -0700" endDate="2024-03-01 08:00:00 -0700" value="121"/>
"""


def test_blood_pressure_correlation_is_one_observation(
    health: SpaceSession, tmp_path: Path
) -> None:
    path = tmp_path / "export.xml"
    path.write_bytes(_export(BLOOD_PRESSURE))
    outcome = one(import_paths(health, [path]))
    assert outcome.result.imported == {"observation": 1}
    (stored_bp,) = RecordRepository(health).list(kind="observation")
    bp = stored_bp.record
    assert isinstance(bp, Observation)
    assert (bp.code.system, bp.code.code) == ("http://loinc.org", "85354-9")
    assert [c.code.code for c in bp.components] == ["8480-6", "8462-4"]
    assert bp.summary_value() == ("121/79", "mm[Hg]")
    # The records inside the correlation are the top-level ones: counted once.
    assert stored_count(health, "HKQuantityTypeIdentifierBloodPressureSystolic") == 1


ECG_CSV = (
    'Name,Test Person\nDate of Birth,"Jan 1, 1980"\nRecorded Date,2020-03-21 15:27:22 +0100\n'
    'Classification,Sinus Rhythm\nSymptoms,\nSoftware Version,1.70\nDevice,"Watch5,4"\n'
    "Sample Rate,512 hertz\nLead,Lead I\nUnit,µV\n\n"
    + "".join(f"{math.sin(i / 10) * 100:.3f}\n" for i in range(1024))
).encode()


def test_ecg_and_clinical_records_from_the_archive(health: SpaceSession, tmp_path: Path) -> None:
    fhir_file = SHARED_DATA / "fhir" / "hl7-r4-examples" / "Observation-f001.json"
    sample = (APPLE / "opendroid-hk" / "sampleexport.xml").read_bytes()
    archive = zip_export(
        tmp_path / "export.zip",
        sample,
        extra={
            "electrocardiograms/ecg_2020-03-21.csv": ECG_CSV,
            "clinical-records/Observation-F001.json": fhir_file.read_bytes(),
        },
    )
    outcome = one(import_paths(health, [archive]))
    repo = RecordRepository(health)
    ecgs = [
        s
        for s in repo.list(kind="observation")
        if isinstance(s.record, Observation) and s.record.code.code == "HKElectrocardiogramType"
    ]
    (ecg,) = ecgs
    assert isinstance(ecg.record, Observation)
    assert ecg.record.value == StringValue(text="Sinus Rhythm")
    voltages = [line for line in ECG_CSV.split(b"\n\n", 1)[1].splitlines() if line.strip()]
    counted = {c.code.code: c.value for c in ecg.record.components}
    assert counted["voltageSamples"] == QuantityValue(
        quantity=Quantity(value=len(voltages), unit="{count}")
    )
    assert counted["samplingFrequency"] == QuantityValue(quantity=Quantity(value=512, unit="Hz"))
    assert repo.original(ecg.record_id) == ECG_CSV
    # The clinical record went through the FHIR reader, with its own identity.
    file = InputFile.from_path(fhir_file)
    expected = {
        getattr(i, "record", i).source_id
        for i in FhirSource().parse(file, ImportContext(file=file, file_sha256="0" * 64))
    }
    assert expected
    assert expected <= {s.record.source_id for s in repo.list()}
    assert outcome.unmapped.get("clinical record file not in the input") is None


# -- entities, truncation, block boundaries, workers ------------------------------------------

ENTITY_DTD = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record)*)>
<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<HealthData locale="en_US"><Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&lol2;" \
unit="count/min" startDate="2024-03-01 08:00:00 -0700" endDate="2024-03-01 08:00:00 -0700" \
value="60"/></HealthData>
"""


@pytest.mark.parametrize("padding", [0, 70_000])
def test_entity_declarations_are_refused(
    padding: int, health: SpaceSession, store: Any, tmp_path: Path
) -> None:
    xml = ENTITY_DTD.replace(b"<!DOCTYPE", b"<!--" + b"x" * padding + b"-->\n<!DOCTYPE")
    with pytest.raises(SourceError, match="entities"):
        parse(xml)
    path = tmp_path / "export.xml"
    path.write_bytes(xml)
    before = logical_dump(store)
    report = import_paths(health, [path])
    assert len(report.errors) == 1
    assert str(path) in report.errors[0]
    assert logical_dump(store) == before


def test_truncated_document_is_an_error(health: SpaceSession, store: Any, tmp_path: Path) -> None:
    xml = (APPLE / "opendroid-hk" / "sampleexport.xml").read_bytes()
    path = tmp_path / "export.xml"
    path.write_bytes(xml[: len(xml) * 2 // 3])
    with pytest.raises(SourceError, match="ends before </HealthData>") as caught:
        parse(path.read_bytes(), str(path))
    assert caught.value.place == "end of file"
    before = logical_dump(store)
    assert len(import_paths(health, [path]).errors) == 1
    assert logical_dump(store) == before


def _padded_export() -> bytes:
    body = "".join(
        _steps("Alex’s iPhone", PHONE_DEVICE, _at(m % 600), _at(m % 600 + 1), m) for m in range(300)
    )
    sample = (APPLE / "opendroid-hk" / "sampleexport-2.xml").read_bytes()
    middle = sample[sample.index(b"<Workout") : sample.rindex(b"</HealthData>")].decode()
    return _export(body + BLOOD_PRESSURE * 5 + middle + body + BLOOD_PRESSURE)


@pytest.mark.parametrize("block", [512, 3000, 65_536])
def test_block_boundaries_do_not_change_the_items(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    xml = _padded_export()
    expected, _ = parse(xml)
    monkeypatch.setattr(_apple_input, "BLOCK", block)
    items, ctx = parse(xml)
    assert items == expected
    assert ctx.warnings == []


@pytest.mark.parametrize("native", [True, False], ids=["threads", "processes"])
def test_workers_scan_like_the_main_process(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # Threads with the native scanner; worker processes with the pure-Python one
    # (what an install without a C compiler runs).
    if native and not _apple_scan.NATIVE:
        pytest.skip("native scanner not built")
    if not native:
        monkeypatch.setattr(_apple_input, "NATIVE", False)
        monkeypatch.setattr(_apple_scan, "_native_scan", None)
    xml = _padded_export()
    monkeypatch.setattr(_apple_input, "BLOCK", 4096)
    stream = InputFile.from_bytes(xml, "x").open()
    _, first = _apple_input.read_head(stream, "x")
    blocks = list(_apple_input.body_blocks(stream, first, "x"))
    assert len(blocks) > 5
    serial = list(_apple_input.scans(iter(blocks), parallel=False))
    parallel = list(_apple_input.scans(iter(blocks), parallel=True))
    assert len(serial) == len(parallel)
    for a, b in zip(serial, parallel, strict=True):
        assert a.keys == b.keys
        assert a.records == b.records
        assert a.problems == b.problems
        for column in ("key_idx", "start_ms", "end_ms", "offset_min", "values", "ordinal"):
            assert np.array_equal(getattr(a, column), getattr(b, column)), column
        assert [(n, e.tag, raw) for n, e, raw in a.elements] == [
            (n, e.tag, raw) for n, e, raw in b.elements
        ]
    assert scan_block(blocks[0]).records == serial[0].records


# -- T-UP-2: hostile archives ------------------------------------------------------------------

SMALL = (APPLE / "healthkit-to-sqlite" / "export.xml").read_bytes()
MEMBER = "apple_health_export/export.xml"


def _forged_size(path: Path) -> str:
    """A member whose header declares 1000 bytes but expands to 20 MB."""
    payload = SMALL.replace(b"</HealthData>", b" " * (20 << 20) + b"</HealthData>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MEMBER, payload)
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 1000)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1000)
    path.write_bytes(bytes(data))
    return MEMBER


def _high_ratio(path: Path) -> str:
    payload = SMALL.replace(b"</HealthData>", b" " * (20 << 20) + b"</HealthData>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MEMBER, payload)
    return MEMBER


def _with_member(path: Path, name: str, attr: int | None = None) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MEMBER, SMALL)
        info = zipfile.ZipInfo(name)
        if attr is not None:
            info.external_attr = attr
        archive.writestr(info, b"<HealthData/>" if attr is None else b"/etc/passwd")
    return name


def _overlapped(path: Path) -> str:
    """Two directory entries sharing one member's bytes (a non-recursive zip bomb's trick)."""
    data = zlib.compress(SMALL)[2:-4]
    name = MEMBER.encode()
    crc = zlib.crc32(SMALL)
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), len(SMALL), len(name), 0
    )
    body = local + name + data
    entries = b""
    for entry_name in (name, b"apple_health_export/copy.xml"):
        entries += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(data),
                len(SMALL),
                len(entry_name),
                0,
                0,
                0,
                0,
                0,
                0,
            )
            + entry_name
        )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(entries), len(body), 0)
    path.write_bytes(body + entries + end)
    return "apple_health_export/copy.xml"


def _truncated(path: Path) -> str:
    zip_export(path, SMALL * 1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return ""


ATTACKS = {
    "forged-size": _forged_size,
    "high-ratio": _high_ratio,
    "traversal": lambda p: _with_member(p, "../x.xml"),
    "absolute": lambda p: _with_member(p, "/etc/x.xml"),
    "symlink": lambda p: _with_member(
        p, "apple_health_export/link.xml", (stat.S_IFLNK | 0o777) << 16
    ),
    "truncated": _truncated,
    "overlapped": _overlapped,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_hostile_archives_are_refused_naming_archive_and_member(
    attack: str, health: SpaceSession, store: Any, tmp_path: Path
) -> None:
    path = tmp_path / "export.zip"
    member = ATTACKS[attack](path)
    before = logical_dump(store)
    report = import_paths(health, [path])
    (error,) = report.errors
    assert str(path) in error
    assert member in error
    assert logical_dump(store) == before
    with pytest.raises(SourceError):
        AppleHealthSource().parse(
            InputFile.from_path(path),
            ImportContext(file=InputFile.from_path(path), file_sha256="0" * 64),
        ).__next__()


def test_a_sample_ending_after_the_export_date_is_flagged(
    health: SpaceSession, tmp_path: Path
) -> None:
    # A night of sleep that "ends" in the year 9999 would overflow dates further on.
    body = _steps("Alex’s iPhone", PHONE_DEVICE, _at(0), _at(5), 10) + (
        '<Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="W" '
        f'startDate="{_at(10)}" endDate="9999-12-31 23:59:00 -1400" '
        'value="HKCategoryValueSleepAnalysisAsleepCore"/>\n'
    )
    path = tmp_path / "export.xml"
    path.write_bytes(_export(body))
    outcome = one(import_paths(health, [path]))
    assert outcome.error is None
    assert list(stored(health, "steps").values()) == [10]
    assert stored(health, "sleep") == {}
    assert "Record 2 (HKCategoryTypeIdentifierSleepAnalysis): ends after the export date" in (
        "\n".join(outcome.warnings)
    )
