"""Peloton workout CSV: every row imports, values round-trip, zone labels are kept and checked."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from healthspace.errors import SourceError
from healthspace.model import Workout
from healthspace.sources.base import ImportContext, InputFile
from healthspace.sources.peloton import PelotonSource
from healthspace.sources.pipeline import import_files, import_paths
from healthspace.store import RecordRepository, SpaceSession, Store
from tests.conftest import SHARED_DATA
from tests.store.test_records import logical_dump

SAMPLE = SHARED_DATA / "peloton" / "jasonlutterloh_testData.csv"
HEADER = (
    "Workout Timestamp,Live/On-Demand,Instructor Name,Length (minutes),Fitness Discipline,"
    "Type,Title,Class Timestamp,Total Output,Avg. Watts,Avg. Resistance,Avg. Cadence (RPM),"
    "Avg. Speed (mph),Distance (mi),Calories Burned,Avg. Heartrate,Avg. Incline,"
    "Avg. Pace (min/mi)"
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _parse(data: bytes, name: str = "workouts.csv") -> tuple[list[Workout], ImportContext]:
    file = InputFile.from_bytes(data, name)
    ctx = ImportContext(file=file, file_sha256=file.sha256())
    items = list(PelotonSource().parse(file, ctx))
    assert all(isinstance(i, Workout) for i in items)
    return [i for i in items if isinstance(i, Workout)], ctx


def _workouts(health: SpaceSession) -> list[Workout]:
    return [s.record for s in RecordRepository(health).list(kind="workout")]  # type: ignore[misc]


def test_every_row_imports_once_and_reimport_adds_nothing(health: SpaceSession) -> None:
    rows = _rows(SAMPLE)
    report = import_paths(health, [SAMPLE])
    assert report.errors == []
    assert [f.source for f in report.files] == ["peloton"]
    assert report.imported == {"workout": len(rows)}
    again = import_paths(health, [SAMPLE])
    assert again.imported == {}
    assert again.skipped_duplicates == len(rows)
    assert len(_workouts(health)) == len(rows)


def test_values_round_trip(health: SpaceSession) -> None:
    rows = _rows(SAMPLE)
    import_paths(health, [SAMPLE])
    stored = {w.start.original: w for w in _workouts(health)}
    with_hr = next(r for r in rows if r["Avg. Heartrate"])
    for row in (rows[0], with_hr):
        workout = stored[row["Workout Timestamp"]]
        assert workout.activity_type == row["Fitness Discipline"].lower()
        assert workout.statistics["total_output"].value == float(row["Total Output"])
        assert workout.statistics["total_output"].unit == "kJ"
        assert workout.statistics["avg_power"].value == float(row["Avg. Watts"])
        resistance = workout.statistics["avg_resistance"]
        assert (resistance.value, resistance.unit) == (float(row["Avg. Resistance"][:-1]), "%")
        assert workout.distance is not None
        assert (workout.distance.value, workout.distance.unit) == (
            float(row["Distance (mi)"]),
            "[mi_i]",
        )
        assert workout.energy is not None
        assert workout.energy.value == float(row["Calories Burned"])
        assert workout.duration_s == float(row["Length (minutes)"]) * 60
    assert stored[with_hr["Workout Timestamp"]].avg_heart_rate is not None
    heart = stored[with_hr["Workout Timestamp"]].avg_heart_rate
    assert heart is not None
    assert heart.value == float(with_hr["Avg. Heartrate"])
    # Meditation and yoga rows have no output: no statistic is invented for them.
    meditation = next(r for r in rows if r["Fitness Discipline"] == "Meditation")
    assert "total_output" not in stored[meditation["Workout Timestamp"]].statistics


def test_mislabelled_daylight_saving_rows_warn_and_keep_the_time_as_written() -> None:
    rows = _rows(SAMPLE)
    chicago = ZoneInfo("America/Chicago")
    # Independently: rows whose label is CDT on a date when Chicago was on CST.
    wrong = []
    for line, row in enumerate(rows, start=2):
        stamp, _, label = row["Workout Timestamp"].partition(" (")
        wall = datetime.fromisoformat(stamp).replace(tzinfo=chicago)
        if label.rstrip(")") == "CDT" and wall.tzname() != "CDT":
            wrong.append(line)
    assert wrong, "the sample holds winter rows labelled CDT"
    workouts, ctx = _parse(SAMPLE.read_bytes())
    warned = sorted(int(w.split(": line ")[1].split(":")[0]) for w in ctx.warnings)
    assert warned == wrong
    assert all("kept the time as written" in w for w in ctx.warnings)
    first = next(w for w in workouts if w.provenance and w.provenance.original_ref == "line 2")
    # 09:30 as written, at the stated -05:00, not shifted to CST.
    assert first.start.utc_offset_minutes == -300
    assert first.start.local_start().hour == 9
    assert first.note is not None
    assert "CDT" in first.note


def test_pst_in_summer_warns_pdt_in_summer_does_not() -> None:
    body = (
        "\n".join(
            [
                HEADER,
                "2020-07-07 16:39 (PST),On Demand,A,30,Cycling,Music,30 min Ride,,300,167,"
                "50%,80,20.1,10.05,400,,,",
                "2020-07-08 16:39 (PDT),On Demand,A,30,Cycling,Music,30 min Ride,,301,167,"
                "50%,80,20.1,10.05,401,140.5,,",
                "2020-07-09 08:00 (UTC),On Demand,A,20,Running,Run,20 min Run,,,,,,,,150,,",
            ]
        )
        + "\n"
    )
    workouts, ctx = _parse(body.encode())
    assert len(workouts) == 3
    assert len(ctx.warnings) == 1
    assert "line 2" in ctx.warnings[0]
    assert "PST" in ctx.warnings[0]
    assert workouts[0].start.utc_offset_minutes == -480  # as written, not corrected
    assert workouts[1].start.utc_offset_minutes == -420
    assert workouts[2].start.utc_offset_minutes == 0


def test_metric_account_units_come_from_the_header() -> None:
    header = HEADER.replace("Avg. Speed (mph)", "Avg. Speed (kph)").replace(
        "Distance (mi)", "Distance (km)"
    )
    header = header.replace("Avg. Pace (min/mi)", "Avg. Pace (min/km)")
    row = (
        "2021-01-05 07:00 (CET),Live,B,45,Cycling,Climb,45 min Climb,,450,167,55%,75,32.2,"
        "24.1,500,150,,"
    )
    workouts, _ = _parse(f"\ufeff{header}\r\n{row}\r\n".encode())
    (workout,) = workouts
    assert workout.distance is not None
    assert (workout.distance.value, workout.distance.unit) == (24.1, "km")
    assert workout.statistics["avg_speed"].unit == "km/h"
    assert workout.start.utc_offset_minutes == 60


def test_sniff_claims_peloton_and_nothing_else() -> None:
    source = PelotonSource()
    assert source.sniff(InputFile.from_path(SAMPLE), SAMPLE.read_bytes()[:4096])
    mfp = next((SHARED_DATA / "myfitnesspal").glob("*.csv"))
    assert not source.sniff(InputFile.from_path(mfp), mfp.read_bytes()[:4096])


@pytest.mark.parametrize(
    ("cell", "column"),
    [("Total Output", "abc"), ("Workout Timestamp", "yesterday at noon")],
)
def test_bad_cell_names_file_line_and_column_not_the_value(
    store: Store, health: SpaceSession, cell: str, column: str
) -> None:
    import_paths(health, [SAMPLE])
    before = logical_dump(store)
    rows = _rows(SAMPLE)[:5]
    rows[2][cell] = column
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    report = import_files(health, [InputFile.from_bytes(out.getvalue().encode(), "bad.csv")])
    (error,) = report.errors
    assert error.startswith("bad.csv: line 4: ")
    assert cell in error
    assert column not in error
    assert logical_dump(store) == before
    with pytest.raises(SourceError, match="line 4"):
        _parse(out.getvalue().encode(), "bad.csv")
