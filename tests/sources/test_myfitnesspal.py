"""MyFitnessPal export: nutrition days in every layout, exercise, measurements, the ZIP."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from healthspace.errors import SourceError
from healthspace.model import NutritionDay, Observation, Sample, Workout
from healthspace.sources.base import ImportContext, InputFile, Item
from healthspace.sources.myfitnesspal import MyFitnessPalSource
from healthspace.sources.pipeline import import_files, import_paths
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession, Store
from tests.conftest import SHARED_DATA
from tests.store.test_records import logical_dump

SAMPLE = next((SHARED_DATA / "myfitnesspal").glob("*Nutrition-Summary*.csv"))
NUTRIENTS_2018 = (
    "Date,Meal,Time,Calories,Fat (g),Saturated Fat,Polyunsaturated Fat,Monounsaturated Fat,"
    "Trans Fat,Cholesterol,Sodium (mg),Potassium,Carbohydrates (g),Fiber,Sugar,Protein (g),"
    "Vitamin A,Vitamin C,Calcium,Iron"
)
# 2018 layout: a row per logged food, a Time column (often blank), no Note; UTF-8 BOM.
LAYOUT_2018 = (
    "\ufeff"
    + NUTRIENTS_2018
    + "\n"
    + "2018-07-01,Breakfast,10:00 AM,40.0,0.6,0.0,0.0,0.0,0.0,0.0,0.0,0.0,5.8,0.0,0.0,1.8,"
    + "0.0,0.0,0.0,0.0\n"
    + "2018-07-01,Breakfast,10:20 AM,310.5,12.1,4.0,1.1,5.0,0.0,35.0,420.0,300.0,38.2,3.1,"
    + "9.0,14.0,10.0,4.0,8.0,12.0\n"
    + '2018-07-01,Dinner,,"1,020.0",40.0,12.0,3.0,20.0,0.5,110.0,1500.0,900.0,100.0,8.0,'
    + "10.0,60.0,20.0,35.0,15.0,30.0\n"
    + "2018-07-02,Post-Workout,7:15 PM,220.0,3.0,1.0,0.5,1.0,0.0,10.0,150.0,400.0,30.0,2.0,"
    + "20.0,20.0,,,,\n"
)
# Time and Note together (an account whose export spans both eras).
LAYOUT_BOTH = (
    NUTRIENTS_2018
    + ",Note\n"
    + "2015-05-19,Breakfast,,547.9,38.1,6.6,6.5,14.0,0.0,0.0,2824.5,732.1,24.2,8.1,11.1,"
    + "25.8,278.8,185.8,5.3,7.8,\n"
    + "2015-05-19,Lunch,,300.0,10.0,3.0,1.0,2.0,0.0,20.0,500.0,200.0,30.0,4.0,5.0,15.0,"
    + "5.0,5.0,5.0,5.0,felt full\n"
)
EXERCISE_METRIC = (
    "Date,Exercise,Type,Exercise Calories,Exercise Minutes,Sets,Reps Per Set,Kilograms,Steps,Note\n"
    "2024-07-02,Health Connect calorie adjustment,Cardio,573.0,1,,,,9840,\n"
    '2024-07-03,"""Walking, 3.5 mph, brisk pace""",Cardio,178.0,18,,,,,\n'
    "2024-07-03,Bench Press,Strength,,,3,10,60.0,,\n"
    "2024-07-03,Bench Press,Strength,,,2,8,65.0,,second round\n"
)
EXERCISE_IMPERIAL = (
    "\ufeffDate,Exercise,Type,Exercise Calories,Exercise Minutes,Sets,Reps Per Set,Pounds,"
    "Steps,Note\n"
    '2013-10-02,"Front Squats, Barbell, Arms Crossed",Strength,,,3,10,20.0,,\n'
    "2013-10-02,Running (jogging),Cardio,350.0,30,,,,,\n"
)
MEASUREMENTS = (
    "Date,Weight,Body Fat %,Neck,Waist,Fitbit steps\n"
    "2024-07-02,180.4,22.5,15.5,34,9001\n"
    "2024-07-04,179.0,,,,\n"
)


def _parse(data: bytes, name: str) -> tuple[list[Item], ImportContext]:
    file = InputFile.from_bytes(data, name)
    ctx = ImportContext(file=file, file_sha256=file.sha256())
    source = MyFitnessPalSource()
    assert source.sniff(file, data[:65536])
    return list(source.parse(file, ctx)), ctx


def _days(items: list[Item]) -> dict[str, NutritionDay]:
    return {i.date.isoformat(): i for i in items if isinstance(i, NutritionDay)}


def _sums(text: str) -> dict[str, dict[str, float]]:
    """Per date, each column's total, computed straight from the CSV."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))):
        for column, cell in row.items():
            if column not in ("Date", "Meal", "Time", "Note") and cell:
                totals[row["Date"]][column] += float(cell.replace(",", ""))
    return totals


def test_sample_imports_one_day_per_date_and_reimport_adds_nothing(health: SpaceSession) -> None:
    text = SAMPLE.read_text(encoding="utf-8-sig")
    dates = {row["Date"] for row in csv.DictReader(io.StringIO(text))}
    report = import_paths(health, [SAMPLE])
    assert report.errors == []
    assert [f.source for f in report.files] == ["myfitnesspal"]
    assert report.imported == {"nutrition": len(dates)}
    again = import_paths(health, [SAMPLE])
    assert again.imported == {}
    assert again.skipped_duplicates == len(dates)


def test_a_days_calories_and_nutrients_round_trip(health: SpaceSession) -> None:
    text = SAMPLE.read_text(encoding="utf-8-sig")
    sums = _sums(text)
    meals = defaultdict(set)
    for row in csv.DictReader(io.StringIO(text)):
        meals[row["Date"]].add(row["Meal"])
    import_paths(health, [SAMPLE])
    stored = {
        s.record.date.isoformat(): s.record  # type: ignore[union-attr]
        for s in RecordRepository(health).list(kind="nutrition")
    }
    for day in sorted(sums)[:3] + sorted(sums)[-1:]:
        record = stored[day]
        assert isinstance(record, NutritionDay)
        assert record.calories is not None
        assert record.calories.value == pytest.approx(sums[day]["Calories"])
        assert record.calories.unit == "kcal"
        assert record.nutrients["protein"].value == pytest.approx(sums[day]["Protein (g)"])
        assert record.nutrients["sodium"].unit == "mg"
        # % of daily value stays a percentage: never turned into a mass.
        vitamin_c = record.nutrients["vitamin_c"]
        assert (vitamin_c.unit, vitamin_c.value) == ("%", pytest.approx(sums[day]["Vitamin C"]))
        assert record.meals == len(meals[day])


def test_2018_layout_with_time_column_and_bom_sums_foods_into_days() -> None:
    items, _ = _parse(LAYOUT_2018.encode(), "Nutrition-Summary-2018-07-01-to-2018-07-02.csv")
    days = _days(items)
    sums = _sums(LAYOUT_2018)
    assert sorted(days) == sorted(sums)
    first = days["2018-07-01"]
    assert first.calories is not None
    assert first.calories.value == pytest.approx(sums["2018-07-01"]["Calories"])  # "1,020.0"
    assert first.meals == 2
    assert first.nutrients["iron"].value == pytest.approx(sums["2018-07-01"]["Iron"])
    second = days["2018-07-02"]
    assert second.meals == 1  # a user-named meal
    assert "vitamin_a" not in second.nutrients  # empty cells are absent, not zero


def test_layout_with_time_and_note_keeps_the_notes() -> None:
    items, _ = _parse(LAYOUT_BOTH.encode(), "Nutrition-Summary.csv")
    (day,) = _days(items).values()
    assert day.note == "Lunch: felt full"
    assert day.calories is not None
    assert day.calories.value == pytest.approx(847.9)


def test_exercise_rows_become_workouts_and_adjustments_are_reported() -> None:
    items, ctx = _parse(EXERCISE_METRIC.encode(), "Exercise-Summary-2024.csv")
    workouts = [i for i in items if isinstance(i, Workout)]
    assert len(workouts) == 3
    assert ctx.unmapped["myfitnesspal calorie adjustment rows"] == 1
    walk = workouts[0]
    assert walk.activity_type == "Walking, 3.5 mph, brisk pace"  # literal quotes stripped
    assert walk.duration_s == 18 * 60
    assert walk.energy is not None
    assert walk.energy.value == 178.0
    bench = workouts[1:]
    assert [w.statistics["weight_per_set"].unit for w in bench] == ["kg", "kg"]
    assert len({w.source_id for w in bench}) == 2  # same exercise twice a day: two records
    assert bench[1].note == "second round"
    imperial, _ = _parse(EXERCISE_IMPERIAL.encode(), "Exercise-Summary.csv")
    squat = next(i for i in imperial if isinstance(i, Workout) and "Squats" in i.activity_type)
    assert squat.statistics["weight_per_set"].unit == "[lb_av]"
    assert squat.statistics["sets"].value == 3


def test_lone_measurement_file_keeps_values_without_inventing_units() -> None:
    items, ctx = _parse(MEASUREMENTS.encode(), "Measurement-Summary-2024-07-02.csv")
    observations = [i for i in items if isinstance(i, Observation)]
    rows = list(csv.DictReader(io.StringIO(MEASUREMENTS)))
    mapped = [c for c in rows[0] if c not in ("Date", "Fitbit steps")]
    assert len(observations) == sum(1 for r in rows for c in mapped if r[c])
    weight = next(o for o in observations if o.code.code == "29463-7")
    assert weight.value is not None
    assert weight.value.quantity.unit == ""
    fat = next(o for o in observations if o.code.code == "41982-0")
    assert fat.value.quantity.unit == "%"  # type: ignore[union-attr]
    assert not [i for i in items if isinstance(i, Sample)]  # unknown unit: no body_mass series
    assert any("does not state units" in w for w in ctx.warnings)
    assert ctx.unmapped["myfitnesspal measurement column Fitbit steps"] == 1


def test_measurement_header_with_unit_gives_body_mass_samples() -> None:
    text = "Date,Weight (kg)\n2024-07-02,81.5\n2024-07-03,81.1\n"
    items, ctx = _parse(text.encode(), "Measurement-Summary.csv")
    samples = [i for i in items if isinstance(i, Sample)]
    assert [(s.metric, s.value) for s in samples] == [("body_mass", 81.5), ("body_mass", 81.1)]
    assert ctx.warnings == []


def _export_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        folder = "File-Export-2024-07-02-to-2024-07-04/"
        zf.writestr(folder + "Nutrition-Summary-2024-07-02-to-2024-07-04.csv", LAYOUT_BOTH)
        zf.writestr(folder + "Exercise-Summary-2024-07-02-to-2024-07-04.csv", EXERCISE_IMPERIAL)
        zf.writestr(folder + "Measurement-Summary-2024-07-02-to-2024-07-04.csv", MEASUREMENTS)
    return buf.getvalue()


def test_whole_export_zip_is_one_job_and_takes_the_weight_unit_from_exercise(
    health: SpaceSession,
) -> None:
    data = _export_zip()
    report = import_files(health, [InputFile.from_bytes(data, "mfp-export.zip")])
    assert report.errors == []
    (outcome,) = report.files
    assert outcome.source == "myfitnesspal"
    rows = list(csv.DictReader(io.StringIO(MEASUREMENTS)))
    assert report.imported["nutrition"] == 1
    assert report.imported["workout"] == 2
    weights = [o.record for o in RecordRepository(health).list(kind="observation")]
    pounds = [o for o in weights if isinstance(o, Observation) and o.code.code == "29463-7"]
    assert sorted(o.value.quantity.value for o in pounds) == sorted(  # type: ignore[union-attr]
        float(r["Weight"]) for r in rows
    )
    assert {o.value.quantity.unit for o in pounds} == {"[lb_av]"}  # type: ignore[union-attr]
    daily = SeriesRepository(health).daily("body_mass")
    assert [round(d.mean, 3) for d in daily] == [
        round(float(r["Weight"]) * 0.45359237, 3) for r in rows
    ]
    again = import_files(health, [InputFile.from_bytes(data, "mfp-export.zip")])
    assert again.imported == {}
    assert again.files[0].result is not None
    assert again.files[0].result.samples == 0


def test_bad_number_names_file_line_and_column_and_leaves_store_unchanged(
    store: Store, health: SpaceSession
) -> None:
    import_paths(health, [SAMPLE])
    before = logical_dump(store)
    lines = SAMPLE.read_text(encoding="utf-8-sig").splitlines()
    cells = lines[5].split(",")
    cells[3] = "twelve"  # Fat (g)
    lines[5] = ",".join(cells)
    bad = InputFile.from_bytes("\n".join(lines).encode(), "Nutrition-Summary-bad.csv")
    report = import_files(health, [bad])
    (error,) = report.errors
    assert error == "Nutrition-Summary-bad.csv: line 6: column 'Fat (g)' is not a number"
    assert logical_dump(store) == before


def test_unreadable_encoding_is_a_clear_error() -> None:
    data = b"Date,Meal,Calories\n2024-01-01,Lunch,5\n" + b"\xff\xfe\n"
    with pytest.raises(SourceError, match=r"Nutrition-Summary.csv: byte 38: file is not UTF-8"):
        _parse(data, "Nutrition-Summary.csv")


def test_sniff_ignores_other_csvs(tmp_path: Path) -> None:
    source = MyFitnessPalSource()
    other = b"Date,Value\n2024-01-01,3\n"
    assert not source.sniff(InputFile.from_bytes(other, "values.csv"), other)
    peloton = (SHARED_DATA / "peloton" / "jasonlutterloh_testData.csv").read_bytes()
    assert not source.sniff(InputFile.from_bytes(peloton, "workouts.csv"), peloton[:4096])


def test_a_zip_with_other_files_is_expanded_not_claimed(health: SpaceSession) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Nutrition-Summary-2015.csv", LAYOUT_BOTH)
        zf.writestr(
            "peloton.csv", (SHARED_DATA / "peloton" / "jasonlutterloh_testData.csv").read_bytes()
        )
    report = import_files(health, [InputFile.from_bytes(buf.getvalue(), "mixed.zip")])
    assert report.errors == []
    assert sorted(f.source or "" for f in report.files) == ["myfitnesspal", "peloton"]
