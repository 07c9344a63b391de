"""Small helpers shared by the wearable summaries: days, weeks, statistics, numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np

from healthspace.model import Quantity, UnitConversionError

__all__ = [
    "DAY_MS",
    "Stats",
    "day_ms",
    "day_start",
    "fmt",
    "in_unit",
    "rounded",
    "stats_of",
    "week_start",
]

DAY_MS: Final = 86_400_000
_EPOCH: Final = date(1970, 1, 1)


def day_ms(day: date) -> int:
    """UTC epoch milliseconds at the start of ``day`` (a UTC day)."""
    return (day - _EPOCH).days * DAY_MS


def day_start(day: date) -> datetime:
    """The UTC instant a day starts, for chart points."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def week_start(day: date) -> date:
    """The Monday of the ISO week ``day`` falls in."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class Stats:
    """Mean and sample standard deviation (ddof=1) of some daily values."""

    n: int
    mean: float | None
    sd: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "sd": self.sd}


def stats_of(values: Sequence[float]) -> Stats:
    """Mean and sample SD; the SD needs at least two values."""
    if not values:
        return Stats(0, None, None)
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    sd = float(array.std(ddof=1)) if len(values) > 1 else None
    return Stats(len(values), mean, sd)


def fmt(value: float, decimals: int) -> str:
    """A number as stated in a fact: fixed decimals, no thousands separator.

    Plain digits keep the grounding check simple: the stated text parses back to the
    value kept in the fact's ``values``.
    """
    if decimals == 0:
        return str(round(value))
    return f"{value:.{decimals}f}"


def rounded(value: float | None, decimals: int) -> float | None:
    """``value`` rounded as :func:`fmt` states it (None stays None)."""
    if value is None or not math.isfinite(value):
        return None
    return float(round(value, decimals))


def in_unit(quantity: Quantity | None, unit: str) -> float | None:
    """The quantity's value in ``unit``; None when absent or not convertible."""
    if quantity is None:
        return None
    try:
        return quantity.converted(unit).value
    except UnitConversionError:
        return None
