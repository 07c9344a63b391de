"""Time-series samples: cheap single readings and columnar batches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from healthspace.model import (
    METRICS,
    SLEEP_STAGE_VALUES,
    Sample,
    SampleBatch,
    is_healthkit_identifier,
    is_ucum,
    metric_for_healthkit,
)


def test_sample_is_small_and_frozen() -> None:
    s = Sample("heart_rate", 1_700_000_000_000, 61.0)
    assert s.duration_ms == 0
    assert s.source == ""
    assert not hasattr(s, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.value = 1.0  # type: ignore[misc]
    assert s == Sample("heart_rate", 1_700_000_000_000, 61.0)


def test_batch_from_samples_and_back() -> None:
    samples = [Sample("steps", 1000 * i, float(i * 10), 60_000, "watch") for i in range(5)]
    batch = SampleBatch.from_samples("steps", "{steps}", samples, source="watch")
    assert len(batch) == 5
    assert batch.t_ms.dtype == np.int64
    assert batch.values.dtype == np.float64
    assert list(batch) == samples
    assert batch == SampleBatch.from_samples("steps", "{steps}", samples, source="watch")
    assert batch != SampleBatch.from_samples("steps", "{steps}", samples[:4], source="watch")


def test_batch_coerces_dtypes_and_checks_lengths() -> None:
    batch = SampleBatch("heart_rate", "/min", [1, 2], np.zeros(2, dtype=np.int32), [60, 61], "x")  # type: ignore[arg-type]
    assert batch.duration_ms.dtype == np.int64
    assert batch.values.tolist() == [60.0, 61.0]
    with pytest.raises(ValueError, match="equal length"):
        SampleBatch("heart_rate", "/min", np.arange(3), np.zeros(2), np.zeros(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(batch)


def test_metric_registry() -> None:
    expected = {
        "heart_rate",
        "steps",
        "active_energy",
        "distance",
        "blood_glucose",
        "body_mass",
        "hrv_sdnn",
        "resting_heart_rate",
        "respiratory_rate",
        "oxygen_saturation",
        "sleep",
        "speed",
        "cadence",
        "power",
    }
    assert set(METRICS) == expected
    for name, (unit, healthkit, aggregation) in METRICS.items():
        assert is_ucum(unit), name
        assert healthkit is None or is_healthkit_identifier(healthkit), name
        assert aggregation in ("mean", "sum")
        if healthkit:
            assert metric_for_healthkit(healthkit) == name
    assert METRICS["steps"].aggregation == "sum"
    assert METRICS["heart_rate"].aggregation == "mean"
    assert metric_for_healthkit("HKQuantityTypeIdentifierNope") is None
    assert SLEEP_STAGE_VALUES[4] == "deep"
