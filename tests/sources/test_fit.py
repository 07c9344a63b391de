"""FIT files: activities, monitoring and weight scales import; a truncated file fails cleanly."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import fitdecode
import pytest

from healthspace.errors import SourceError
from healthspace.model import Attached, Observation, Sample, SampleBatch, Workout
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.fit import FitSource
from healthspace.sources.pipeline import import_files, import_paths
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession, Store
from tests.conftest import SHARED_DATA
from tests.store.test_records import logical_dump

FIT_DIR = SHARED_DATA / "fit"
TRUNCATED = FIT_DIR / "fitparse_activity-unexpected-eof.fit"
GOOD = sorted(p for p in FIT_DIR.glob("*.fit") if p != TRUNCATED)
DAY = 86_400_000


@cache
def _messages(path: Path) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, values, raw values) of every data message, read with fitdecode directly."""
    out = []
    with fitdecode.FitReader(str(path)) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage):
                values = {f.name: f.value for f in frame.fields}
                raws = {f.name: f.raw_value for f in frame.fields}
                out.append((frame.name, values, raws))
    return out


def _parse(path: Path) -> tuple[list[Item], ImportContext]:
    file = InputFile.from_path(path)
    ctx = ImportContext(file=file, file_sha256=file.sha256())
    return list(FitSource().parse(file, ctx)), ctx


def _distinct_times(path: Path, field: str) -> int:
    return len(
        {
            v["timestamp"]
            for name, v, _ in _messages(path)
            if name == "record"
            and v.get(field) is not None
            and isinstance(v.get("timestamp"), datetime)
        }
    )


def _stored_samples(health: SpaceSession, metric: str) -> int:
    return len(SeriesRepository(health).samples(metric, 0, 4_000_000_000_000).t_ms)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_sample_file_imports_and_reimport_adds_nothing(
    health: SpaceSession, path: Path
) -> None:
    messages = _messages(path)
    sessions = sum(1 for name, _, _ in messages if name == "session")
    scale = [v for name, v, _ in messages if name == "weight_scale"]
    report = import_paths(health, [path])
    assert report.errors == []
    assert [f.source for f in report.files] == ["fit"]
    expected: dict[str, int] = {}
    if sessions:
        expected["workout"] = sessions
    if scale:
        # One observation per body-composition value the scale wrote.
        expected["observation"] = sum(
            1
            for v in scale
            for key in ("weight", "percent_fat", "bmi", "percent_hydration", "bone_mass")
            if v.get(key) is not None
        )
    assert report.imported == expected
    assert _stored_samples(health, "heart_rate") == _distinct_times(path, "heart_rate")
    assert _stored_samples(health, "power") == _distinct_times(path, "power")
    again = import_paths(health, [path])
    assert again.imported == {}
    assert again.files[0].result is not None
    assert again.files[0].result.samples == 0


def test_session_totals_round_trip(health: SpaceSession) -> None:
    path = FIT_DIR / "fitparse_garmin-fenix-5-walk.fit"
    (session,) = [v for name, v, _ in _messages(path) if name == "session"]
    import_paths(health, [path])
    (stored,) = RecordRepository(health).list(kind="workout")
    workout = stored.record
    assert isinstance(workout, Workout)
    assert workout.activity_type == session["sport"]
    assert workout.distance is not None
    assert (workout.distance.value, workout.distance.unit) == (session["total_distance"], "m")
    assert workout.avg_heart_rate is not None
    assert workout.avg_heart_rate.value == session["avg_heart_rate"]
    assert workout.energy is not None
    assert workout.energy.value == session["total_calories"]
    assert workout.start.start == session["start_time"]
    assert workout.duration_s == session["total_timer_time"]
    laps = [v for name, v, _ in _messages(path) if name == "lap"]
    assert workout.statistics["lap.1.distance"].value == laps[0]["total_distance"]
    # The FIT file is kept whole as the workout's original.
    assert RecordRepository(health).original(stored.record_id) == path.read_bytes()


def test_heart_rate_samples_match_the_records(health: SpaceSession) -> None:
    path = FIT_DIR / "fitparse_garmin-fenix-5-run.fit"
    records = [v for name, v, _ in _messages(path) if name == "record" and v.get("heart_rate")]
    import_paths(health, [path])
    stored = SeriesRepository(health).samples("heart_rate", 0, 4_000_000_000_000)
    assert stored.values.tolist() == [float(v["heart_rate"]) for v in records]
    assert stored.t_ms.tolist() == [int(v["timestamp"].timestamp() * 1000) for v in records]


def test_developer_fields_are_kept() -> None:
    path = FIT_DIR / "fitparse_developer-types-sample.fit"
    names = {v["field_name"] for name, v, _ in _messages(path) if name == "field_description"}
    items, _ = _parse(path)
    (attached,) = [i for i in items if isinstance(i, Attached)]
    assert isinstance(attached.record, Workout)
    kept = {k.split(".")[1] for k in attached.record.statistics if k.startswith("developer.")}
    assert kept == names
    assert attached.original == path.read_bytes()
    power = next(i for i in items if isinstance(i, SampleBatch) and i.metric == "power")
    assert len(power) == _distinct_times(path, "power")


def test_indoor_ride_without_gps_has_no_invented_distance() -> None:
    items, _ = _parse(FIT_DIR / "fitparse_sample-activity-indoor-trainer.fit")
    (workout,) = [i.record for i in items if isinstance(i, Attached)]
    assert isinstance(workout, Workout)
    assert workout.distance is None
    assert workout.statistics["avg_power"].value > 0


def test_monitoring_steps_add_up_to_the_devices_daily_totals() -> None:
    path = FIT_DIR / "fitparse_MonitoringFile.fit"
    # Independently: the device's cumulative count per activity type peaks at the day's
    # total; steps are the walking and running counts.
    peak: dict[str, float] = defaultdict(float)
    for name, values, raws in _messages(path):
        if name == "monitoring" and values.get("activity_type") in ("walking", "running"):
            count = raws.get("steps", raws.get("cycles"))
            if count is not None:
                peak[values["activity_type"]] = max(peak[values["activity_type"]], count)
    items, _ = _parse(path)
    steps = [i for i in items if isinstance(i, Sample) and i.metric == "steps"]
    assert steps
    assert sum(s.value for s in steps) == sum(peak.values())
    assert all(s.duration_ms >= 0 for s in steps)


def test_single_user_scale_gives_body_mass_samples(health: SpaceSession) -> None:
    path = FIT_DIR / "fitparse_WeightScaleSingleUser.fit"
    weights = [v["weight"] for name, v, _ in _messages(path) if name == "weight_scale"]
    import_paths(health, [path])
    stored = SeriesRepository(health).samples("body_mass", 0, 4_000_000_000_000)
    assert sorted(stored.values.tolist()) == sorted(weights)


def test_shared_scale_keeps_people_apart() -> None:
    path = FIT_DIR / "fitparse_WeightScaleMultiUser.fit"
    users = {v["user_profile_index"] for name, v, _ in _messages(path) if name == "weight_scale"}
    items, ctx = _parse(path)
    assert not [i for i in items if isinstance(i, Sample)]
    observations = [i for i in items if isinstance(i, Observation)]
    assert {o.note for o in observations} == {f"Scale user {u}" for u in users}
    assert any("scale users" in w for w in ctx.warnings)


def test_truncated_file_fails_clearly_and_leaves_store_unchanged(
    store: Store, health: SpaceSession
) -> None:
    import_paths(health, [FIT_DIR / "fitparse_Activity.fit"])
    before = logical_dump(store)
    report = import_paths(health, [TRUNCATED])
    (error,) = report.errors
    assert str(TRUNCATED) in error
    assert f"byte {TRUNCATED.stat().st_size}" in error
    assert "truncated" in error
    assert logical_dump(store) == before
    with pytest.raises(SourceError) as info:
        _parse(TRUNCATED)
    assert info.value.place == f"byte {TRUNCATED.stat().st_size}"


def test_corrupted_checksum_is_an_error_not_silent_data(store: Store, health: SpaceSession) -> None:
    data = bytearray((FIT_DIR / "fitparse_Activity.fit").read_bytes())
    data[-1] ^= 0xFF  # the file CRC
    before = logical_dump(store)
    report = import_files(health, [InputFile.from_bytes(bytes(data), "broken.fit")])
    (error,) = report.errors
    assert error.startswith("broken.fit: byte ")
    assert "checksum" in error
    assert logical_dump(store) == before


def test_sniff_reads_the_fit_signature() -> None:
    source = FitSource()
    for path in GOOD:
        assert source.sniff(InputFile.from_path(path), path.read_bytes()[:64])
    csv_file = FIT_DIR / "fitparse_garmin-fenix-5-run-records.csv"
    assert not source.sniff(InputFile.from_path(csv_file), csv_file.read_bytes()[:64])


def test_oversized_file_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    import healthspace.sources.fit as fit_module

    path = FIT_DIR / "fitparse_Activity.fit"
    monkeypatch.setattr(fit_module, "_MAX_BYTES", path.stat().st_size - 1)
    with pytest.raises(SourceError, match="refused"):
        _parse(path)
