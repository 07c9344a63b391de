"""Trends of one analyte: direction with a stated tolerance, changes, a least-squares rate
per year, and the chart-ready series with its reference band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from healthspace.insights._labs_results import LabResult
from healthspace.insights.facts import (
    Band,
    Fact,
    Point,
    Series,
    Severity,
    format_number,
    unique_citations,
    with_unit,
)

__all__ = ["Direction", "LabTrend", "build_trend", "least_squares_slope"]

Direction = Literal["up", "down", "stable"]
_YEAR_SECONDS = 365.25 * 86_400


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The ordinary least-squares slope of ys on xs; None when xs do not vary."""
    n = len(xs)
    if n < 2:
        return None
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def _signed(value: float, unit: str) -> str:
    sign = "+" if value > 0 else ""
    return with_unit(f"{sign}{format_number(value)}", unit)


@dataclass(frozen=True, slots=True)
class LabTrend:
    """How one analyte moved over time, in its canonical unit, oldest result first.

    ``direction`` compares the least-squares change over the whole span with the stated
    tolerance (``tolerance_fraction`` of the mean value, ``tolerance`` in the unit):
    within it the analyte is "stable". It is None with fewer than two dated results.
    """

    analyte_id: str
    name: str
    unit: str
    results: tuple[LabResult, ...]
    series: Series
    tolerance_fraction: float
    tolerance: float | None
    direction: Direction | None
    change_since_previous: float | None
    change_over_span: float | None
    fitted_change: float | None
    rate_per_year: float | None

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def first(self) -> LabResult:
        return self.results[0]

    @property
    def last(self) -> LabResult:
        return self.results[-1]

    @property
    def previous(self) -> LabResult | None:
        return self.results[-2] if len(self.results) > 1 else None

    def _value(self, result: LabResult) -> str:
        assert result.canonical_value is not None
        return with_unit(format_number(result.canonical_value), self.unit)

    def statement(self) -> str:
        last = self.last
        text = f"{self.name}: {self.n} result{'s' if self.n != 1 else ''}"
        if self.n == 1:
            return f"{text}, {self._value(last)} on {last.day_text}."
        text += f" from {self.first.day_text} to {last.day_text}; latest {self._value(last)}"
        previous = self.previous
        if previous is not None and self.change_since_previous is not None:
            text += (
                f", {_signed(self.change_since_previous, self.unit)} since the previous "
                f"result ({self._value(previous)} on {previous.day_text})"
            )
        if self.change_over_span is not None:
            text += f"; {_signed(self.change_over_span, self.unit)} since the first result"
        if self.rate_per_year is not None:
            text += f"; least-squares rate {_signed(self.rate_per_year, self.unit)} per year"
        if self.direction is not None and self.tolerance is not None:
            percent = format_number(self.tolerance_fraction * 100)
            text += (
                f"; overall {self.direction} (changes within {percent}% of the average, "
                f"{with_unit(format_number(self.tolerance), self.unit)}, count as stable)"
            )
        return text + "."

    def fact(self) -> Fact:
        values: dict[str, float | int | str | bool | None] = {
            "analyte": self.analyte_id,
            "unit": self.unit,
            "n": self.n,
            "first_date": self.first.date_text,
            "last_date": self.last.date_text,
            "first_value": self.first.canonical_value,
            "last_value": self.last.canonical_value,
            "previous_value": self.previous.canonical_value if self.previous else None,
            "change_since_previous": self.change_since_previous,
            "change_over_span": self.change_over_span,
            "rate_per_year": self.rate_per_year,
            "direction": self.direction,
            "tolerance": self.tolerance,
            "tolerance_fraction": self.tolerance_fraction,
        }
        severity: Severity = "notice" if self.direction in ("up", "down") else "info"
        return Fact(
            "lab.trend",
            self.statement(),
            unique_citations(r.citation for r in self.results),
            (),
            values,
            severity,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "analyte": self.analyte_id,
            "name": self.name,
            "unit": self.unit,
            "n": self.n,
            "first_date": self.first.date_text,
            "last_date": self.last.date_text,
            "direction": self.direction,
            "tolerance": self.tolerance,
            "tolerance_fraction": self.tolerance_fraction,
            "change_since_previous": self.change_since_previous,
            "change_over_span": self.change_over_span,
            "rate_per_year": self.rate_per_year,
            "series": self.series.to_dict(),
            "results": [r.to_dict() for r in self.results],
        }


def _band(results: Sequence[LabResult]) -> Band | None:
    for result in reversed(results):
        rng = result.canonical_range
        if rng is not None:
            return Band(rng.low, rng.high, rng.source, rng.reference)
    return None


def build_trend(
    analyte_id: str, name: str, unit: str, results: Sequence[LabResult], tolerance_fraction: float
) -> LabTrend | None:
    """The trend of results already grouped under one analyte; None if none are numeric."""
    dated = sorted(
        (r for r in results if r.canonical_value is not None and r.when is not None),
        key=lambda r: (r.when, r.source_id),
    )
    if not dated:
        return None
    points: list[Point] = [p for p in (r.point() for r in dated) if p is not None]
    series = Series(key=analyte_id, label=name, unit=unit, points=tuple(points), band=_band(dated))
    values = [r.canonical_value for r in dated if r.canonical_value is not None]
    start = dated[0].when
    assert start is not None
    years = [((r.when or start) - start).total_seconds() / _YEAR_SECONDS for r in dated]
    slope = least_squares_slope(years, values)
    mean = sum(values) / len(values)
    tolerance = abs(mean) * tolerance_fraction
    fitted = None if slope is None else slope * (years[-1] - years[0])
    direction: Direction | None = None
    if fitted is not None:
        direction = "stable" if abs(fitted) <= tolerance else ("up" if fitted > 0 else "down")
    return LabTrend(
        analyte_id=analyte_id,
        name=name,
        unit=unit,
        results=tuple(dated),
        series=series,
        tolerance_fraction=tolerance_fraction,
        tolerance=tolerance if len(values) > 1 else None,
        direction=direction,
        change_since_previous=values[-1] - values[-2] if len(values) > 1 else None,
        change_over_span=values[-1] - values[0] if len(values) > 1 else None,
        fitted_change=fitted,
        rate_per_year=slope,
    )
