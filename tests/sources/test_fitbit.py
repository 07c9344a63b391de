"""Fitbit account export JSON: every file kind, placeholders, pounds, the whole-export ZIP.

There is no public sample we may ship, so the fixtures below are written here in the
export's documented shape (see docs/sources/wellness.md for where the shapes come from):
JSON lists, ``MM/DD/YY HH:MM:SS`` times without a zone, numbers as strings in steps.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from typing import Any

import pytest

from healthspace.errors import SourceError
from healthspace.model import Observation, SleepSession, Workout
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.fitbit import FitbitSource
from healthspace.sources.pipeline import import_files
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession, Store
from tests.store.test_records import logical_dump

END = 4_000_000_000_000
LB = 0.45359237


def _stamp(moment: datetime) -> str:
    return moment.strftime("%m/%d/%y %H:%M:%S")


def _dump(entries: list[dict[str, Any]]) -> bytes:
    # The export's own spacing: two-space indent and " : " between key and value.
    return json.dumps(entries, indent=2, separators=(",", " : ")).encode()


T0 = datetime(2021, 3, 1, 6, 30, 0)
HEART = [
    {
        "dateTime": _stamp(T0 + timedelta(seconds=5 * i)),
        "value": {"bpm": 60 + i % 7, "confidence": i % 4},
    }
    for i in range(40)
]
STEPS = [
    {"dateTime": _stamp(T0 + timedelta(minutes=i)), "value": str([0, 0, 12, 48, 95, 0][i % 6])}
    for i in range(30)
]
RESTING = [
    {"dateTime": "03/01/21 00:00:00", "value": {"date": None, "value": 0.0, "error": 0.0}},
    {"dateTime": "03/02/21 00:00:00", "value": {"date": "03/02/21", "value": 58.5, "error": 11.2}},
    {"dateTime": "03/03/21 00:00:00", "value": {"date": None, "value": 0.0, "error": 0.0}},
    {"dateTime": "03/04/21 00:00:00", "value": {"date": "03/04/21", "value": 59.25, "error": 7.1}},
]
WEIGHT = [
    {
        "logId": 1614643199000,
        "weight": 185.2,
        "bmi": 26.57,
        "date": "03/01/21",
        "time": "23:59:59",
        "source": "API",
    },
    {
        "logId": 1614787200000,
        "weight": 184.6,
        "bmi": 26.49,
        "fat": 22.3,
        "date": "03/03/21",
        "time": "07:12:40",
        "source": "Aria",
    },
]


def _levels(start: datetime, spans: list[tuple[str, int]]) -> list[dict[str, Any]]:
    out, moment = [], start
    for level, seconds in spans:
        out.append(
            {
                "dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.000"),
                "level": level,
                "seconds": seconds,
            }
        )
        moment += timedelta(seconds=seconds)
    return out


STAGES = [
    ("wake", 600),
    ("light", 1800),
    ("deep", 3600),
    ("rem", 1500),
    ("light", 2400),
    ("wake", 300),
]
CLASSIC = [("restless", 360), ("awake", 60), ("asleep", 4620), ("restless", 60), ("asleep", 3300)]
NIGHT = datetime(2021, 3, 1, 23, 10)
NAP = datetime(2021, 3, 3, 14, 0)
SLEEP = [
    {
        "logId": 31002020301,
        "dateOfSleep": "2021-03-02",
        "startTime": NIGHT.strftime("%Y-%m-%dT%H:%M:%S.000"),
        "endTime": (NIGHT + timedelta(seconds=sum(s for _, s in STAGES))).strftime(
            "%Y-%m-%dT%H:%M:%S.000"
        ),
        "duration": sum(s for _, s in STAGES) * 1000,
        "minutesToFallAsleep": 0,
        "minutesAsleep": 155,
        "minutesAwake": 15,
        "minutesAfterWakeup": 0,
        "timeInBed": 170,
        "efficiency": 94,
        "type": "stages",
        "infoCode": 0,
        "levels": {
            "summary": {"deep": {"count": 1, "minutes": 60, "thirtyDayAvgMinutes": 0}},
            "data": _levels(NIGHT, STAGES),
            "shortData": _levels(NIGHT + timedelta(seconds=4000), [("wake", 60)]),
        },
        "mainSleep": True,
    },
    {
        "logId": 31002020303,
        "dateOfSleep": "2021-03-03",
        "startTime": NAP.strftime("%Y-%m-%dT%H:%M:%S.000"),
        "endTime": (NAP + timedelta(seconds=sum(s for _, s in CLASSIC))).strftime(
            "%Y-%m-%dT%H:%M:%S.000"
        ),
        "duration": sum(s for _, s in CLASSIC) * 1000,
        "minutesAsleep": 132,
        "minutesAwake": 8,
        "timeInBed": 140,
        "efficiency": 95,
        "type": "classic",
        "levels": {"summary": {}, "data": _levels(NAP, CLASSIC)},
        "mainSleep": False,
    },
]
EXERCISE = [
    {
        "logId": 38877100211,
        "activityName": "Walk",
        "activityTypeId": 90013,
        "activityLevel": [{"minutes": 9, "name": "sedentary"}, {"minutes": 31, "name": "very"}],
        "averageHeartRate": 97,
        "calories": 301,
        "distance": 3.10412,
        "distanceUnit": "Kilometer",
        "duration": 2_460_000,
        "activeDuration": 2_400_000,
        "steps": 4210,
        "source": {"type": "tracker", "name": "Charge 4", "id": "12345678"},
        "logType": "auto_detected",
        "heartRateZones": [
            {"name": "Out of Range", "min": 30, "max": 98, "minutes": 22},
            {"name": "Fat Burn", "min": 98, "max": 137, "minutes": 19},
        ],
        "speed": 4.656,
        "pace": 773.2,
        "elevationGain": 12.192,
        "startTime": "03/02/21 17:05:12",
        "hasGps": False,
    },
    {
        "logId": 38877100399,
        "activityName": "Yoga",
        "activityTypeId": 52001,
        "calories": 90,
        "duration": 1_800_000,
        "logType": "manual",
        "startTime": "03/03/21 18:00:00",
    },
]
FILES = {
    "heart_rate-2021-03-01.json": HEART,
    "steps-2021-03-01.json": STEPS,
    "resting_heart_rate-2021-03-01.json": RESTING,
    "weight-2021-03-01.json": WEIGHT,
    "sleep-2021-03-01.json": SLEEP,
    "exercise-0.json": EXERCISE,
}


def _parse(name: str, data: bytes) -> tuple[list[Item], ImportContext]:
    file = InputFile.from_bytes(data, name)
    ctx = ImportContext(file=file, file_sha256=file.sha256())
    source = FitbitSource()
    assert source.sniff(file, data[:65536])
    return list(source.parse(file, ctx)), ctx


def _export_zip(extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, entries in FILES.items():
            folder = name.split("-")[0]
            zf.writestr(f"MyFitbitData/User/user-site-export/{folder}/{name}", _dump(entries))
        for name, data in (extra or {}).items():
            zf.writestr(f"MyFitbitData/User/user-site-export/{name}", data)
    return buf.getvalue()


def _samples(health: SpaceSession, metric: str) -> list[float]:
    return SeriesRepository(health).samples(metric, 0, END).values.tolist()


def test_whole_export_zip_imports_every_kind_and_reimport_adds_nothing(
    health: SpaceSession,
) -> None:
    calories = _dump([{"dateTime": _stamp(T0), "value": "1.2"}])
    data = _export_zip({"calories/calories-2021-03-01.json": calories})
    report = import_files(health, [InputFile.from_bytes(data, "MyFitbitData.zip")])
    assert report.errors == []
    assert {f.source for f in report.files} == {"fitbit"}
    observations = sum(1 for w in WEIGHT for key in ("weight", "bmi", "fat") if key in w)
    assert report.imported == {
        "observation": observations,
        "sleep": len(SLEEP),
        "workout": len(EXERCISE),
    }
    assert len(_samples(health, "heart_rate")) == len(HEART)
    assert _samples(health, "steps") == [float(e["value"]) for e in STEPS]
    assert len(_samples(health, "body_mass")) == len(WEIGHT)
    stage_count = sum(len(log["levels"]["data"]) for log in SLEEP)
    assert len(_samples(health, "sleep")) == stage_count
    unmapped = next(f for f in report.files if f.file.endswith("calories-2021-03-01.json"))
    assert unmapped.unmapped == {"fitbit calories entries": 1}
    assert any("recognised but not imported" in w for w in unmapped.warnings)
    again = import_files(health, [InputFile.from_bytes(data, "MyFitbitData.zip")])
    assert again.errors == []
    assert again.imported == {}
    assert sum(f.result.samples for f in again.files if f.result is not None) == 0


def test_resting_heart_rate_placeholders_are_skipped_not_zero(health: SpaceSession) -> None:
    name = "resting_heart_rate-2021-03-01.json"
    report = import_files(health, [InputFile.from_bytes(_dump(RESTING), name)])
    real = [e["value"]["value"] for e in RESTING if e["value"]["date"] is not None]
    assert _samples(health, "resting_heart_rate") == real
    placeholders = len(RESTING) - len(real)
    assert any(f"{placeholders} days without" in w for w in report.files[0].warnings)


def test_weight_in_pounds_is_kept_as_written_and_converted_for_the_series(
    health: SpaceSession,
) -> None:
    import_files(health, [InputFile.from_bytes(_dump(WEIGHT), "weight-2021-03-01.json")])
    stored = [s.record for s in RecordRepository(health).list(kind="observation")]
    weights = [o for o in stored if isinstance(o, Observation) and o.code.code == "29463-7"]
    assert sorted(
        (o.value.quantity.value, o.value.quantity.unit)
        for o in weights  # type: ignore[union-attr]
    ) == sorted((e["weight"], "[lb_av]") for e in WEIGHT)
    fat = [o for o in stored if isinstance(o, Observation) and o.code.code == "41982-0"]
    assert [o.value.quantity.value for o in fat] == [22.3]  # type: ignore[union-attr]
    assert _samples(health, "body_mass") == pytest.approx([e["weight"] * LB for e in WEIGHT])


def test_weight_only_plausible_in_kg_is_taken_as_kg() -> None:
    metric = [{"logId": 1, "weight": 84.0, "bmi": 26.5, "date": "03/01/21", "time": "07:00:00"}]
    items, ctx = _parse("weight-2021-03-01.json", _dump(metric))
    weight = next(i for i in items if isinstance(i, Observation) and i.code.code == "29463-7")
    assert weight.value.quantity.unit == "kg"  # type: ignore[union-attr]
    assert any("only plausible in kg" in w for w in ctx.warnings)


def test_sleep_stages_and_classic_levels_map_to_one_vocabulary() -> None:
    items, _ = _parse("sleep-2021-03-01.json", _dump(SLEEP))
    night, nap = [i for i in items if isinstance(i, SleepSession)]
    assert [p.stage for p in night.stages] == ["awake", "core", "deep", "rem", "core", "awake"]
    asleep = sum(s for level, s in STAGES if level in ("light", "deep", "rem"))
    assert night.asleep_seconds() == asleep
    assert night.start.original == SLEEP[0]["startTime"]
    assert not night.start.tz_known  # the export gives no zone; kept as written
    assert [p.stage for p in nap.stages] == ["awake", "awake", "asleep", "awake", "asleep"]
    assert nap.asleep_seconds() == sum(s for level, s in CLASSIC if level == "asleep")
    assert nap.note is not None
    assert "nap" in nap.note


def test_exercise_logs_become_workouts() -> None:
    items, _ = _parse("exercise-0.json", _dump(EXERCISE))
    walk, yoga = [i for i in items if isinstance(i, Workout)]
    assert walk.activity_type == "Walk"
    assert walk.distance is not None
    assert (walk.distance.value, walk.distance.unit) == (EXERCISE[0]["distance"], "km")
    assert walk.duration_s == EXERCISE[0]["duration"] / 1000
    assert walk.avg_heart_rate is not None
    assert walk.avg_heart_rate.value == 97
    assert walk.statistics["steps"].value == EXERCISE[0]["steps"]
    assert walk.statistics["hr_zone.fat_burn"].value == 19
    assert walk.device == "Charge 4"
    assert walk.start.original == EXERCISE[0]["startTime"]
    assert yoga.distance is None
    assert yoga.energy is not None
    assert yoga.energy.value == 90


def test_heart_rate_values_and_times_round_trip(health: SpaceSession) -> None:
    import_files(health, [InputFile.from_bytes(_dump(HEART), "heart_rate-2021-03-01.json")])
    stored = SeriesRepository(health).samples("heart_rate", 0, END)
    assert stored.values.tolist() == [float(e["value"]["bpm"]) for e in HEART]
    first = datetime.strptime(HEART[0]["dateTime"], "%m/%d/%y %H:%M:%S")
    # No zone in the export: the wall time is read as UTC, as written.
    assert stored.t_ms[0] == int((first - datetime(1970, 1, 1)).total_seconds() * 1000)


@pytest.mark.parametrize(
    ("data", "place"),
    [
        (b'[{"dateTime" : "03/01/21 06:30:00", "value" : {"bpm" : 61}},\n{"dateTime" :', "line 2"),
        (_dump([*HEART[:3], {"dateTime": "yesterday", "value": {"bpm": 70}}]), "entry 3"),
        (_dump([*HEART[:2], {"dateTime": _stamp(T0), "value": {"beats": 70}}]), "entry 2"),
    ],
    ids=["truncated-json", "bad-time", "missing-bpm"],
)
def test_bad_input_names_file_and_place_and_leaves_store_unchanged(
    store: Store, health: SpaceSession, data: bytes, place: str
) -> None:
    import_files(health, [InputFile.from_bytes(_dump(STEPS), "steps-2021-03-01.json")])
    before = logical_dump(store)
    name = "heart_rate-2021-03-02.json"
    report = import_files(health, [InputFile.from_bytes(data, name)])
    (error,) = report.errors
    assert error.startswith(f"{name}: {place}")
    assert logical_dump(store) == before
    with pytest.raises(SourceError):
        _parse(name, data)


def test_sniff_needs_the_export_file_name_and_a_json_list() -> None:
    source = FitbitSource()
    data = _dump(HEART)
    assert source.sniff(InputFile.from_bytes(data, "export!heart_rate-2021-03-01.json"), data)
    assert not source.sniff(InputFile.from_bytes(data, "heart.json"), data)
    bundle = b'{"resourceType": "Bundle"}'
    assert not source.sniff(InputFile.from_bytes(bundle, "sleep-2021-03-01.json"), bundle)
    assert source.sniff(InputFile.from_bytes(b"[ ]", "weight-2021-03-01.json"), b"[ ]")
