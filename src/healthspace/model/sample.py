"""High-volume time series: heart rate, steps, glucose, sleep stages.

These are not Records: an Apple Health export holds millions of them, so they are plain
slotted dataclasses (one sample) or numpy columns (a batch), with no validation on the
hot path. The store writes them as per-day compressed chunks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "METRICS",
    "OVERLAP_SUFFIX",
    "SLEEP_STAGE_VALUES",
    "Aggregation",
    "MetricInfo",
    "Sample",
    "SampleBatch",
    "metric_for_healthkit",
]

Aggregation = Literal["mean", "sum"]


class MetricInfo(NamedTuple):
    """What a metric is measured in, its HealthKit type, and how a day is summarised."""

    unit: str
    healthkit: str | None
    aggregation: Aggregation


METRICS: Final[dict[str, MetricInfo]] = {
    "heart_rate": MetricInfo("/min", "HKQuantityTypeIdentifierHeartRate", "mean"),
    "resting_heart_rate": MetricInfo("/min", "HKQuantityTypeIdentifierRestingHeartRate", "mean"),
    "hrv_sdnn": MetricInfo("ms", "HKQuantityTypeIdentifierHeartRateVariabilitySDNN", "mean"),
    "steps": MetricInfo("{steps}", "HKQuantityTypeIdentifierStepCount", "sum"),
    "active_energy": MetricInfo("kcal", "HKQuantityTypeIdentifierActiveEnergyBurned", "sum"),
    "distance": MetricInfo("m", "HKQuantityTypeIdentifierDistanceWalkingRunning", "sum"),
    "blood_glucose": MetricInfo("mg/dL", "HKQuantityTypeIdentifierBloodGlucose", "mean"),
    "body_mass": MetricInfo("kg", "HKQuantityTypeIdentifierBodyMass", "mean"),
    "respiratory_rate": MetricInfo("/min", "HKQuantityTypeIdentifierRespiratoryRate", "mean"),
    # Stored as a percentage (97), although Apple exports the fraction (0.97).
    "oxygen_saturation": MetricInfo("%", "HKQuantityTypeIdentifierOxygenSaturation", "mean"),
    # A category series: value is a SLEEP_STAGE_VALUES code, duration_ms the stretch;
    # a day's "sum" is the summed duration.
    "sleep": MetricInfo("", "HKCategoryTypeIdentifierSleepAnalysis", "sum"),
    # Device streams (FIT, GPX extensions); no single HealthKit type matches each.
    "speed": MetricInfo("m/s", None, "mean"),
    "cadence": MetricInfo("/min", None, "mean"),
    "power": MetricInfo("W", None, "mean"),
}

# HKCategoryValueSleepAnalysis codes, named as in wellness.SleepStage.
SLEEP_STAGE_VALUES: Final[dict[int, str]] = {
    0: "in_bed",
    1: "asleep",
    2: "awake",
    3: "core",
    4: "deep",
    5: "rem",
}

_BY_HEALTHKIT: Final = {info.healthkit: name for name, info in METRICS.items() if info.healthkit}


def metric_for_healthkit(identifier: str) -> str | None:
    """The metric name for a HealthKit type identifier, or None if it is not a metric."""
    return _BY_HEALTHKIT.get(identifier)


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading: ``value`` of ``metric`` starting at ``t_ms`` (UTC epoch milliseconds)."""

    metric: str
    t_ms: int
    value: float
    duration_ms: int = 0
    source: str = ""


Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

# Where the store puts what a ranked source lost to better ones: "steps.overlap".
OVERLAP_SUFFIX = ".overlap"


@dataclass(frozen=True, slots=True, eq=False)
class SampleBatch:
    """Many readings of one metric from one source, as parallel columns.

    Arrays are converted to int64 / float64 on construction; treat them as read-only.

    ``rank`` marks a cumulative metric recorded by several sources of one import
    (steps from a watch and a phone): when the import completes, each sample counts
    only what better-ranked sources (lower rank, then name) did not record, and the
    rest goes to ``metric + OVERLAP_SUFFIX`` (rule: store/_priority.py).
    """

    metric: str
    unit: str
    t_ms: Int64Array
    duration_ms: Int64Array
    values: Float64Array
    source: str = ""
    rank: int | None = None

    def __post_init__(self) -> None:
        # Frozen: coerce dtypes through object.__setattr__ (no copy when already right).
        object.__setattr__(self, "t_ms", np.asarray(self.t_ms, dtype=np.int64))
        object.__setattr__(self, "duration_ms", np.asarray(self.duration_ms, dtype=np.int64))
        object.__setattr__(self, "values", np.asarray(self.values, dtype=np.float64))
        shapes = {self.t_ms.shape, self.duration_ms.shape, self.values.shape}
        if len(shapes) != 1 or self.t_ms.ndim != 1:
            raise ValueError(
                f"SampleBatch columns must be 1-D and of equal length, got {sorted(shapes)}"
            )

    @classmethod
    def from_samples(
        cls, metric: str, unit: str, samples: Iterable[Sample], source: str = ""
    ) -> SampleBatch:
        """Gather samples into columns; ``metric`` and ``source`` come from the arguments."""
        rows = list(samples)
        return cls(
            metric=metric,
            unit=unit,
            t_ms=np.fromiter((s.t_ms for s in rows), dtype=np.int64, count=len(rows)),
            duration_ms=np.fromiter((s.duration_ms for s in rows), dtype=np.int64, count=len(rows)),
            values=np.fromiter((s.value for s in rows), dtype=np.float64, count=len(rows)),
            source=source,
        )

    def __len__(self) -> int:
        return int(self.t_ms.shape[0])

    def __iter__(self) -> Iterator[Sample]:
        for t_ms, duration_ms, value in zip(
            self.t_ms.tolist(), self.duration_ms.tolist(), self.values.tolist(), strict=True
        ):
            yield Sample(self.metric, t_ms, value, duration_ms, self.source)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleBatch):
            return NotImplemented
        return (
            (self.metric, self.unit, self.source) == (other.metric, other.unit, other.source)
            and np.array_equal(self.t_ms, other.t_ms)
            and np.array_equal(self.duration_ms, other.duration_ms)
            and np.array_equal(self.values, other.values, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]  # arrays are mutable, so no hash
