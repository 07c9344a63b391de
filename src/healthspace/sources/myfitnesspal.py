"""MyFitnessPal's data export: Nutrition, Exercise and Measurement summary CSVs (or their ZIP).

* ``Nutrition-Summary-*.csv``: one row per meal (2023 layout, with a ``Note`` column) or
  per logged food with a ``Time`` column (2018 layout); rows are summed into one
  :class:`NutritionDay` per date. Vitamin A, Vitamin C, Calcium and Iron are % of daily
  value and stay ``%`` quantities, never converted to a mass.
* ``Exercise-Summary-*.csv``: one :class:`Workout` per row (cardio minutes and
  calories, or strength sets x reps x weight; the weight column is ``Kilograms`` or
  ``Pounds`` as the account is set).
* ``Measurement-Summary-*.csv``: ``Date`` plus a column per measurement the person
  logs (Weight, Body Fat %, Neck, Waist, Hips, ...): one :class:`Observation` each. The
  file never states units: weight is taken as kg or lb only when a header says so or,
  in a whole-export ZIP, when the Exercise file's weight column does; then it also
  becomes a ``body_mass`` sample. Otherwise the value is kept as written, unit unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import Final

from healthspace.errors import SourceError
from healthspace.hookspecs import hookimpl
from healthspace.sources import _mfp
from healthspace.sources._csv import header_of
from healthspace.sources._safety import SafeZip
from healthspace.sources._wellness import base_name
from healthspace.sources.base import ImportContext, InputFile, Item, Source, SourceManifest

__all__ = ["MyFitnessPalSource", "register_sources"]

SOURCE_ID: Final = "myfitnesspal"
_KIND_IN_NAME = re.compile(r"(Nutrition|Exercise|Measurement)-Summary", re.IGNORECASE)


def _kind(name: str, header: list[str]) -> str | None:
    """'nutrition', 'exercise' or 'measurement', from the header first, else the name."""
    if header[:2] == ["Date", "Meal"] and "Calories" in header:
        return "nutrition"
    if header[:3] == ["Date", "Exercise", "Type"]:
        return "exercise"
    match = _KIND_IN_NAME.search(name)
    if match and header[:1] == ["Date"] and name.lower().endswith(".csv"):
        return match.group(1).lower()
    return None


class MyFitnessPalSource:
    manifest = SourceManifest(
        id=SOURCE_ID,
        name="MyFitnessPal export (CSV or ZIP)",
        reads=("nutrition", "workout", "observation", "body_mass"),
        purpose="Your daily food totals, logged exercise and body measurements.",
    )

    def sniff(self, file: InputFile, head: bytes) -> bool:
        if head.startswith(b"PK\x03\x04"):
            return bool(self._members(file, quiet=True))
        return _kind(base_name(file), header_of(head)) is not None

    def _members(self, file: InputFile, *, quiet: bool = False) -> dict[str, str]:
        """An export ZIP's summary CSVs by kind; {} when it is not one.

        Only an archive holding nothing but MyFitnessPal summaries is claimed whole;
        any other archive is expanded by the pipeline, member by member, so no file
        in it goes unread.
        """
        found: dict[str, str] = {}
        try:
            with file.open() as fh:
                archive = SafeZip(fh, file.name)
                try:
                    for member in sorted(archive.names()):
                        leaf = member.rsplit("/", 1)[-1]
                        if member.startswith("__MACOSX/") or leaf.startswith("."):
                            continue  # Finder's metadata, not content
                        match = _KIND_IN_NAME.search(leaf)
                        if not (match and leaf.lower().endswith(".csv")):
                            return {}
                        kind = match.group(1).lower()
                        if kind in found:
                            raise SourceError(
                                f"archive holds more than one {kind} summary",
                                file=f"{file.name}!{member}",
                            )
                        found[kind] = member
                finally:
                    archive.close()
        except SourceError:
            if quiet:
                return {}
            raise
        return found

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        if file.head(4) == b"PK\x03\x04":
            yield from self._parse_archive(file, ctx)
            return
        kind = _kind(base_name(file), header_of(file.head(65536)))
        if kind is None:
            raise SourceError("not a MyFitnessPal summary export", file=file.name, place="line 1")
        yield from self._parse_one(kind, file, ctx, weight_unit=None)

    def _parse_archive(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        members = self._members(file)
        if not members:
            raise SourceError("archive holds no MyFitnessPal summary", file=file.name)
        with file.open() as fh:
            archive = SafeZip(fh, file.name)
            try:
                inner = {
                    kind: InputFile(
                        name=f"{file.name}!{member}",
                        size=archive.size(member),
                        opener=partial(archive.open, member),
                    )
                    for kind, member in members.items()
                }
                # The Exercise file's weight column names the account's weight unit.
                unit = None
                if "exercise" in inner:
                    unit = _mfp.weight_unit(header_of(inner["exercise"].head()))
                for kind in ("nutrition", "exercise", "measurement"):
                    if kind in inner:
                        yield from self._parse_one(kind, inner[kind], ctx, weight_unit=unit)
            finally:
                archive.close()

    def _parse_one(
        self, kind: str, file: InputFile, ctx: ImportContext, *, weight_unit: str | None
    ) -> Iterator[Item]:
        if kind == "nutrition":
            yield from _mfp.parse_nutrition(file, ctx, SOURCE_ID)
        elif kind == "exercise":
            yield from _mfp.parse_exercise(file, ctx, SOURCE_ID)
        else:
            yield from _mfp.parse_measurement(file, ctx, SOURCE_ID, weight_unit=weight_unit)


@hookimpl
def register_sources() -> list[Source]:
    return [MyFitnessPalSource()]
