"""The three MyFitnessPal summary files, one parser each (see ``myfitnesspal.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Final

from healthspace.errors import SourceError
from healthspace.model import (
    LOINC,
    SNOMED,
    Code,
    NutritionDay,
    Observation,
    PartialDateTime,
    Quantity,
    QuantityValue,
    Sample,
    Workout,
    convert,
)
from healthspace.sources._csv import CsvRow, parse_number, read_rows
from healthspace.sources._wellness import base_name, digest, epoch_ms, provenance
from healthspace.sources.base import ImportContext, InputFile, Item

__all__ = ["parse_exercise", "parse_measurement", "parse_nutrition", "weight_unit"]

# Header -> (nutrient key, unit). The export drops the unit from most headers; these are
# MyFitnessPal's own units. The four vitamins/minerals are % of daily value.
_NUTRIENTS: Final[dict[str, tuple[str, str]]] = {
    "Fat (g)": ("fat", "g"),
    "Saturated Fat": ("saturated_fat", "g"),
    "Polyunsaturated Fat": ("polyunsaturated_fat", "g"),
    "Monounsaturated Fat": ("monounsaturated_fat", "g"),
    "Trans Fat": ("trans_fat", "g"),
    "Cholesterol": ("cholesterol", "mg"),
    "Sodium (mg)": ("sodium", "mg"),
    "Potassium": ("potassium", "mg"),
    "Carbohydrates (g)": ("carbohydrate", "g"),
    "Fiber": ("fiber", "g"),
    "Sugar": ("sugar", "g"),
    "Protein (g)": ("protein", "g"),
    "Vitamin A": ("vitamin_a", "%"),
    "Vitamin C": ("vitamin_c", "%"),
    "Calcium": ("calcium", "%"),
    "Iron": ("iron", "%"),
}
_NOT_NUTRIENTS: Final = {"Date", "Meal", "Time", "Note", "Calories"}
_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*\((?P<unit>[^)]*)\)\s*$")
_UNIT_WORDS: Final = {"g": "g", "mg": "mg", "mcg": "ug", "ug": "ug", "%": "%", "kcal": "kcal"}
_LOCAL: Final = "urn:healthspace:myfitnesspal:measurement"


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_")


def _date(row: CsvRow, file: str) -> date:
    text = row.get("Date")
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise SourceError("column 'Date' is not a date", file=file, place=f"line {row.line}")


def _day(day: date) -> PartialDateTime:
    return PartialDateTime.parse(day.isoformat())


def _place(file: InputFile, ctx: ImportContext, line: int) -> str:
    """'line N', prefixed by the member's name when the file came out of an export ZIP."""
    return f"line {line}" if file is ctx.file else f"{base_name(file)} line {line}"


def _number(row: CsvRow, column: str, file: InputFile) -> float | None:
    return parse_number(row.get(column), file=file.name, line=row.line, column=column)


# -- Nutrition ------------------------------------------------------------------------


def _nutrient_columns(header: list[str]) -> dict[str, tuple[str, str]]:
    columns: dict[str, tuple[str, str]] = {}
    for column in header:
        if column in _NOT_NUTRIENTS or not column:
            continue
        known = _NUTRIENTS.get(column)
        if known is None:
            match = _UNIT_SUFFIX.match(column)
            name, unit = (match["name"], match["unit"]) if match else (column, "")
            known = (_key(name), _UNIT_WORDS.get(unit.strip().casefold(), unit.strip()))
        columns[column] = known
    return columns


def parse_nutrition(file: InputFile, ctx: ImportContext, source: str) -> Iterator[Item]:
    header, rows = read_rows(file)
    for required in ("Date", "Meal", "Calories"):
        if required not in header:
            raise SourceError(f"missing column {required!r}", file=file.name, place="line 1")
    columns = _nutrient_columns(header)
    days: dict[date, _Day] = {}
    for row in rows:
        day = _date(row, file.name)
        entry = days.setdefault(day, _Day(first_line=row.line))
        entry.meals.add(row.get("Meal"))
        calories = _number(row, "Calories", file)
        if calories is not None:
            entry.calories = (entry.calories or 0.0) + calories
        for column, (key, _unit) in columns.items():
            value = _number(row, column, file)
            if value is not None:
                entry.totals[key] = entry.totals.get(key, 0.0) + value
        note = row.get("Note")
        if note:
            entry.notes.append(f"{row.get('Meal') or 'Note'}: {note}")
    units = dict(columns.values())
    for day in sorted(days):
        entry = days[day]
        yield NutritionDay(
            source_id=f"myfitnesspal:nutrition:{day.isoformat()}",
            provenance=provenance(source, ctx, _place(file, ctx, entry.first_line)),
            note="\n".join(entry.notes) or None,
            date=_day(day),
            # Sums of one-decimal values: rounding removes float noise, nothing else.
            calories=None
            if entry.calories is None
            else Quantity(value=round(entry.calories, 6), unit="kcal"),
            nutrients={
                key: Quantity(value=round(total, 6), unit=units[key])
                for key, total in entry.totals.items()
            },
            meals=len({meal for meal in entry.meals if meal}),
            source_name="MyFitnessPal",
        )


class _Day:
    def __init__(self, first_line: int) -> None:
        self.first_line = first_line
        self.meals: set[str] = set()
        self.calories: float | None = None
        self.totals: dict[str, float] = {}
        self.notes: list[str] = []


# -- Exercise -------------------------------------------------------------------------


def weight_unit(header: list[str]) -> str | None:
    """The account's weight unit as the Exercise file's weight column names it."""
    if "Kilograms" in header:
        return "kg"
    if "Pounds" in header:
        return "[lb_av]"
    return None


def _strip_quotes(name: str) -> str:
    # Newer exports wrap names in literal quotes inside the field ("""Walking, brisk""").
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].strip()
    return name


def parse_exercise(file: InputFile, ctx: ImportContext, source: str) -> Iterator[Item]:
    header, rows = read_rows(file)
    for required in ("Date", "Exercise"):
        if required not in header:
            raise SourceError(f"missing column {required!r}", file=file.name, place="line 1")
    unit = weight_unit(header)
    weight_column = "Kilograms" if unit == "kg" else "Pounds"
    seen: dict[tuple[date, str], int] = {}
    skipped = 0
    for row in rows:
        day = _date(row, file.name)
        name = _strip_quotes(row.get("Exercise"))
        if "calorie adjustment" in name.casefold():
            # A tracker's calorie adjustment, not an exercise: the tracker's own data
            # (steps, energy) is imported from the tracker, so it is not double counted.
            skipped += 1
            continue
        occurrence = seen.get((day, name), 0)
        seen[(day, name)] = occurrence + 1
        minutes = _number(row, "Exercise Minutes", file)
        calories = _number(row, "Exercise Calories", file)
        stats: dict[str, Quantity] = {}
        for column, key, stat_unit in (
            ("Sets", "sets", "{sets}"),
            ("Reps Per Set", "reps_per_set", "{reps}"),
            (weight_column, "weight_per_set", unit or ""),
            ("Steps", "steps", "{steps}"),
        ):
            value = _number(row, column, file) if column in header else None
            if value is not None:
                stats[key] = Quantity(value=value, unit=stat_unit)
        kind = row.get("Type").casefold()
        yield Workout(
            source_id=f"myfitnesspal:exercise:{day.isoformat()}:{digest(name)}:{occurrence}",
            provenance=provenance(source, ctx, _place(file, ctx, row.line)),
            note=row.get("Note") or None,
            activity_type=name or kind or "exercise",
            start=_day(day),
            duration_s=None if minutes is None else minutes * 60,
            energy=None if calories is None else Quantity(value=calories, unit="kcal"),
            statistics=stats,
            source_name="MyFitnessPal",
        )
    if skipped:
        ctx.unmapped["myfitnesspal calorie adjustment rows"] += skipped
        ctx.warn(base_name(file), f"{skipped} tracker calorie-adjustment rows were not imported")


# -- Measurements ---------------------------------------------------------------------

_MEASURES: Final[dict[str, tuple[Code, str | None]]] = {
    "weight": (Code(system=LOINC, code="29463-7", display="Body weight"), None),
    "body fat": (Code(system=LOINC, code="41982-0", display="Percentage of body fat"), "%"),
    "body fat %": (Code(system=LOINC, code="41982-0", display="Percentage of body fat"), "%"),
    "waist": (Code(system=LOINC, code="8280-0", display="Waist circumference"), None),
    "hips": (Code(system=SNOMED, code="284472007", display="Hip circumference"), None),
    "hip": (Code(system=SNOMED, code="284472007", display="Hip circumference"), None),
}


def parse_measurement(
    file: InputFile, ctx: ImportContext, source: str, *, weight_unit: str | None
) -> Iterator[Item]:
    header, rows = read_rows(file)
    if "Date" not in header:
        raise SourceError("missing column 'Date'", file=file.name, place="line 1")
    plan = _measure_plan(header, file, ctx, weight_unit)
    unit_unknown = False
    for row in rows:
        day = _date(row, file.name)
        when = _day(day)
        for column, (code, unit) in plan.items():
            value = _number(row, column, file)
            if value is None:
                continue
            unit_unknown = unit_unknown or unit == ""
            yield Observation(
                source_id=f"myfitnesspal:measurement:{day.isoformat()}:{_key(column)}",
                provenance=provenance(source, ctx, _place(file, ctx, row.line)),
                note=None if unit else "The export does not state this value's unit.",
                code=code,
                codes=(code,),
                text=column,
                category="vital-signs" if code.system != _LOCAL else None,
                value=QuantityValue(quantity=Quantity(value=value, unit=unit or "")),
                effective=when,
            )
            if code.code == "29463-7" and unit:
                yield Sample(
                    metric="body_mass",
                    t_ms=epoch_ms(when),
                    value=convert(value, unit, "kg"),
                    source="MyFitnessPal",
                )
    if unit_unknown:
        ctx.warn(
            base_name(file),
            "the file does not state units; values without a unit in their header are kept "
            "as written with no unit (import the whole export ZIP to take the weight unit "
            "from the Exercise file)",
        )


def _measure_plan(
    header: list[str], file: InputFile, ctx: ImportContext, weight_unit: str | None
) -> dict[str, tuple[Code, str]]:
    """Each measurement column's code and unit ("" when the export does not say)."""
    plan: dict[str, tuple[Code, str]] = {}
    for column in header:
        if column == "Date" or not column:
            continue
        match = _UNIT_SUFFIX.match(column)
        name = (match["name"] if match else column).strip()
        stated = _header_unit(match["unit"]) if match else None
        if "steps" in name.casefold():
            # Integration columns ("Fitbit steps") repeat a tracker's data.
            ctx.unmapped[f"myfitnesspal measurement column {column}"] += 1
            continue
        code, fixed = _MEASURES.get(name.casefold(), (None, None))
        if code is None:
            code = Code(system=_LOCAL, code=_key(name) or "measurement", display=name)
        unit = fixed or stated
        if unit is None and code.code == "29463-7":
            unit = weight_unit
        plan[column] = (code, unit or "")
    return plan


def _header_unit(text: str) -> str | None:
    words = {"kg": "kg", "lb": "[lb_av]", "lbs": "[lb_av]", "in": "[in_i]", "cm": "cm"}
    return words.get(text.strip().casefold(), "%" if text.strip() == "%" else None)
