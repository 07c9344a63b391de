"""Wearable summaries on data built here: every figure re-computed with numpy in the test."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from healthspace.insights.wearables import (
    DEVIATION_SD,
    activity_name,
    daily_values,
    metric_summary,
    sleep_summary,
    wearable_summary,
    weekly_values,
    workout_summary,
)
from healthspace.model import (
    LOINC,
    Code,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
    Sample,
    SleepSession,
    SleepStagePeriod,
    Workout,
)
from healthspace.store import RecordRepository, SpaceSession, ingest

END = date(2024, 3, 31)
DAYS = 120
FIRST = END - timedelta(days=DAYS - 1)
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
PROV = Provenance(source="test")


def ms(day: date, hour: float = 0.0) -> int:
    return (day - EPOCH).days * DAY_MS + int(hour * 3_600_000)


def pdt(text: str) -> PartialDateTime:
    return PartialDateTime.parse(text)


def build_samples(
    rng: np.random.Generator,
) -> tuple[list[Sample], dict[str, dict[date, list[float]]]]:
    """Steps in 24 hourly samples a day; one resting heart rate a day, raised in the last week."""
    samples: list[Sample] = []
    truth: dict[str, dict[date, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i in range(DAYS):
        day = FIRST + timedelta(days=i)
        if i % 17 == 5:
            continue  # a day without the watch
        for hour in range(24):
            value = float(rng.integers(0, 900))
            samples.append(Sample("steps", ms(day, hour), value, 3_600_000, "watch"))
            truth["steps"][day].append(value)
        rhr = float(rng.normal(58, 1.5)) + (9.0 if day > END - timedelta(days=7) else 0.0)
        samples.append(Sample("resting_heart_rate", ms(day, 7), round(rhr, 1), 0, "watch"))
        truth["resting_heart_rate"][day].append(round(rhr, 1))
    return samples, truth


@pytest.fixture
def wearable_data(health: SpaceSession) -> dict[str, dict[date, list[float]]]:
    samples, truth = build_samples(np.random.default_rng(7))
    ingest(health, samples, source="test", input_sha256="1" * 64)
    return truth


def test_daily_and_weekly_values_match_numpy(
    health: SpaceSession, wearable_data: dict[str, dict[date, list[float]]]
) -> None:
    metric, days = daily_values(health, "steps", FIRST, END)
    assert metric == "steps"
    expected = {day: float(np.sum(v)) for day, v in wearable_data["steps"].items()}
    assert {d.day: d.value for d in days} == expected
    assert all(d.n == 24 for d in days)
    _, rhr = daily_values(health, "resting_heart_rate", FIRST, END)
    assert {d.day: d.value for d in rhr} == pytest.approx(
        {day: float(np.mean(v)) for day, v in wearable_data["resting_heart_rate"].items()}
    )
    # Weekly totals: group the test's own daily sums by Monday.
    weeks: dict[date, list[float]] = defaultdict(list)
    for day, total in expected.items():
        weeks[day - timedelta(days=day.weekday())].append(total)
    got = {w.week_start: (w.days, w.total) for w in weekly_values(days)}
    assert got == {w: (len(v), sum(v)) for w, v in weeks.items()}


def _window(truth: dict[date, list[float]], first: date, last: date, agg: str) -> list[float]:
    fn = np.sum if agg == "sum" else np.mean
    return [float(fn(v)) for day, v in truth.items() if first <= day <= last]


def test_baselines_and_deviation(
    health: SpaceSession, wearable_data: dict[str, dict[date, list[float]]]
) -> None:
    summary = metric_summary(health, "resting_heart_rate", end=END, days=90)
    assert summary is not None
    truth = wearable_data["resting_heart_rate"]
    recent = _window(truth, END - timedelta(days=6), END, "mean")
    base28 = _window(truth, END - timedelta(days=34), END - timedelta(days=7), "mean")
    base90 = _window(truth, END - timedelta(days=96), END - timedelta(days=7), "mean")
    assert summary.recent.stats.mean == pytest.approx(np.mean(recent))
    assert summary.baseline_28.stats.n == len(base28)
    assert summary.baseline_28.stats.mean == pytest.approx(np.mean(base28))
    assert summary.baseline_28.stats.sd == pytest.approx(np.std(base28, ddof=1))
    assert summary.baseline_90.stats.mean == pytest.approx(np.mean(base90))
    assert summary.baseline_90.stats.sd == pytest.approx(np.std(base90, ddof=1))
    z = (np.mean(recent) - np.mean(base28)) / np.std(base28, ddof=1)
    assert summary.deviation_sd == pytest.approx(z)
    assert z > DEVIATION_SD  # the raised last week is notable
    deviation = [f for f in summary.facts if f.topic == "wearable.deviation"]
    assert len(deviation) == 1
    fact = deviation[0]
    assert fact.values["direction"] == "above"
    assert f"{np.mean(recent):.1f}" in fact.statement
    assert f"{np.mean(base28):.1f}" in fact.statement
    assert str(END) in fact.statement
    assert {w.metric for w in fact.windows} == {"resting_heart_rate"}
    assert fact.windows[0].days_with_data == len(recent)
    # The daily series carries the 28-day baseline as its band.
    band = summary.daily_series.band
    assert band is not None
    assert band.source == "personal"
    m, sd = np.mean(base28), np.std(base28, ddof=1)
    assert band.low == pytest.approx(m - 2 * sd, abs=0.01)
    assert band.high == pytest.approx(m + 2 * sd, abs=0.01)
    assert all(p.flag == "high" for p in summary.daily_series.points[-len(recent) :])


def test_steps_deviation_is_stated_only_when_beyond_two_sd(
    health: SpaceSession, wearable_data: dict[str, dict[date, list[float]]]
) -> None:
    summary = metric_summary(health, "steps", end=END, days=28)
    assert summary is not None
    truth = wearable_data["steps"]
    recent = _window(truth, END - timedelta(days=6), END, "sum")
    base28 = _window(truth, END - timedelta(days=34), END - timedelta(days=7), "sum")
    z = (np.mean(recent) - np.mean(base28)) / np.std(base28, ddof=1)
    assert summary.deviation_sd == pytest.approx(z)
    stated = any(f.topic == "wearable.deviation" for f in summary.facts)
    assert stated == (abs(z) > 2)
    assert len(summary.daily) == len(_window(truth, END - timedelta(days=27), END, "sum"))
    headline = next(f for f in summary.facts if f.topic == "wearable.summary")
    assert headline.values["recent_mean"] == round(float(np.mean(recent)))
    assert f"{round(float(np.mean(recent)))} steps per day" in headline.statement


def test_default_end_is_the_last_day_with_data(
    health: SpaceSession, wearable_data: dict[str, dict[date, list[float]]]
) -> None:
    summary = metric_summary(health, "steps")
    assert summary is not None
    assert summary.end == max(wearable_data["steps"])
    assert metric_summary(health, "vo2_max") is None
    # A window past the data states the latest day instead of an empty average.
    later = metric_summary(health, "steps", end=END + timedelta(days=30), days=90)
    assert later is not None
    assert [f.topic for f in later.facts] == ["wearable.latest"]
    last = max(wearable_data["steps"])
    assert later.facts[0].values["day"] == last.isoformat()
    assert later.facts[0].values["value"] == sum(wearable_data["steps"][last])


def test_weight_merges_samples_and_observations(health: SpaceSession) -> None:
    day = date(2024, 2, 10)
    samples = [
        Sample("body_mass", ms(day, 7), 80.0, 0, "scale"),
        Sample("body_mass", ms(day, 8), 80.4, 0, "scale"),
    ]
    obs = Observation(
        source_id="weight:1",
        code=Code(system=LOINC, code="29463-7", display="Body weight"),
        value=QuantityValue(quantity=Quantity(value=180.0, unit="[lb_av]")),
        effective=pdt("2024-02-10T15:00:00Z"),
        provenance=PROV,
    )
    ingest(health, [*samples, obs], source="test", input_sha256="2" * 64)
    _, days = daily_values(health, "body_mass", day, day)
    assert len(days) == 1
    kg = 180.0 * 0.45359237
    assert days[0].value == pytest.approx((80.0 + 80.4 + kg) / 3)
    assert days[0].n == 3
    stored = RecordRepository(health).list(kind="observation")
    assert [c.record_id for c in days[0].citations] == [stored[0].record_id]


def _workout(
    n: int, kind: str, start: str, minutes: float, km: float | None, kcal: float
) -> Workout:
    return Workout(
        source_id=f"workout:{n}",
        activity_type=kind,
        start=pdt(start),
        duration_s=minutes * 60,
        distance=Quantity(value=km * 1000, unit="m") if km is not None else None,
        energy=Quantity(value=kcal * 4.184, unit="kJ"),
        provenance=PROV,
    )


WORKOUTS = [
    # (type, local start, minutes, km, kcal)
    ("HKWorkoutActivityTypeRunning", "2024-03-04T07:00:00-07:00", 30.0, 5.0, 300.0),
    ("HKWorkoutActivityTypeRunning", "2024-03-06T07:00:00-07:00", 45.0, 7.5, 450.0),
    ("HKWorkoutActivityTypeRunning", "2024-03-12T18:00:00-07:00", 60.0, 10.0, 610.0),
    (
        "HKWorkoutActivityTypeTraditionalStrengthTraining",
        "2024-03-05T12:00:00-07:00",
        40.0,
        None,
        200.0,
    ),
    (
        "HKWorkoutActivityTypeTraditionalStrengthTraining",
        "2024-03-13T12:00:00-07:00",
        35.0,
        None,
        180.0,
    ),
    # Late on Sunday local time, Monday in UTC: counted in the local week.
    ("cycling", "2024-03-10T23:30:00-07:00", 20.0, 8.0, 150.0),
]


def test_workouts_by_type_and_week(health: SpaceSession) -> None:
    items = [_workout(i, *w) for i, w in enumerate(WORKOUTS)]
    ingest(health, items, source="test", input_sha256="3" * 64)
    summary = workout_summary(health, date(2024, 3, 1), date(2024, 3, 14))
    by_type = {t.activity: t for t in summary.types}
    assert set(by_type) == {activity_name(w[0]) for w in WORKOUTS}
    assert "traditional strength training" in by_type
    for activity, t in by_type.items():
        mine = [w for w in WORKOUTS if activity_name(w[0]) == activity]
        assert t.count == len(mine)
        assert t.duration_min == pytest.approx(sum(w[2] for w in mine))
        km = [w[3] for w in mine if w[3] is not None]
        assert t.distance_km == (pytest.approx(sum(km)) if km else None)
        assert t.energy_kcal == pytest.approx(sum(w[4] for w in mine), abs=0.01)
        assert t.per_week == pytest.approx(len(mine) / 2)
        assert len(t.citations) == len(mine)
        weeks: dict[date, list[float]] = defaultdict(list)
        for w in mine:
            local = date.fromisoformat(w[1][:10])
            weeks[local - timedelta(days=local.weekday())].append(w[2])
        assert {wk.week_start: (wk.count, wk.duration_min) for wk in t.weeks} == {
            k: (len(v), pytest.approx(sum(v))) for k, v in weeks.items()
        }
    assert by_type["cycling"].weeks[0].week_start == date(2024, 3, 4)
    # Weekly minutes of all workouts, with the WHO band.
    weekly = {p.date: p.value for p in summary.weekly_minutes.points}
    assert weekly == {"2024-02-26": 0.0, "2024-03-04": 135.0, "2024-03-11": 95.0}
    assert summary.weekly_minutes.band is not None
    assert summary.weekly_minutes.band.low == 150.0
    ids = {s.record_id for s in RecordRepository(health).list(kind="workout")}
    assert {c.record_id for f in summary.facts for c in f.citations} <= ids
    running = next(f for f in summary.facts if f.values["activity"] == "running")
    assert "3 workouts" in running.statement
    assert "22.5 km" in running.statement
    # Without an exercise-time series, exercise minutes come from workouts.
    metric, days = daily_values(health, "exercise_minutes", date(2024, 3, 1), date(2024, 3, 14))
    assert metric is None
    assert {d.day: d.value for d in days}[date(2024, 3, 4)] == pytest.approx(30.0)
    assert all(len(d.citations) == d.n for d in days)


def _night(
    n: int, start: str, end: str, stages: list[tuple[str, str, str]], src: str
) -> SleepSession:
    return SleepSession(
        source_id=f"sleep:{n}",
        start=pdt(start),
        end=pdt(end),
        stages=tuple(SleepStagePeriod(stage=s, start=pdt(a), end=pdt(b)) for s, a, b in stages),
        source_name=src,
        provenance=PROV,
    )


def test_sleep_nights_regularity_and_duplicates(health: SpaceSession) -> None:
    z = "-05:00"
    records = [
        _night(
            1,
            f"2024-03-01T23:00:00{z}",
            f"2024-03-02T07:00:00{z}",
            [
                ("awake", f"2024-03-01T23:00:00{z}", f"2024-03-01T23:30:00{z}"),
                ("core", f"2024-03-01T23:30:00{z}", f"2024-03-02T03:00:00{z}"),
                ("deep", f"2024-03-02T03:00:00{z}", f"2024-03-02T04:00:00{z}"),
                ("rem", f"2024-03-02T04:00:00{z}", f"2024-03-02T06:30:00{z}"),
            ],
            "watch",
        ),
        # The phone recorded the same night with less detail: dropped as a duplicate.
        _night(
            2,
            f"2024-03-01T23:10:00{z}",
            f"2024-03-02T06:50:00{z}",
            [
                ("in_bed", f"2024-03-01T23:10:00{z}", f"2024-03-02T06:50:00{z}"),
            ],
            "phone",
        ),
        _night(3, f"2024-03-03T00:30:00{z}", f"2024-03-03T07:30:00{z}", [], "watch"),
        # A nap the same day adds to the time asleep but not to the bedtime.
        _night(4, f"2024-03-03T14:00:00{z}", f"2024-03-03T14:30:00{z}", [], "watch"),
    ]
    # One more night only as stage samples (UTC), 2024-03-04 local: 22:45 to 06:15.
    t0 = datetime(2024, 3, 4, 3, 45, tzinfo=UTC)  # 22:45 local (-05:00)
    t0_ms = int(t0.timestamp() * 1000)
    h = 3_600_000
    samples = [
        Sample("sleep", t0_ms, 0.0, int(7.5 * h), "watch"),  # in bed all along
        Sample("sleep", t0_ms + h // 2, 3.0, 3 * h, "watch"),  # core
        Sample("sleep", t0_ms + 2 * h, 4.0, h, "other"),  # deep, overlapping the core
        Sample("sleep", t0_ms + int(3.5 * h), 5.0, 3 * h, "watch"),  # rem
    ]
    ingest(health, [*records, *samples], source="test", input_sha256="4" * 64)
    summary = sleep_summary(health, date(2024, 3, 1), date(2024, 3, 5), utc_offset_minutes=-300)
    nights = {n.night: n for n in summary.nights}
    assert sorted(nights) == [date(2024, 3, 2), date(2024, 3, 3), date(2024, 3, 4)]
    # Night 1: core 3.5 h + deep 1 h + rem 2.5 h = 7.0 h asleep; the phone copy is dropped.
    assert nights[date(2024, 3, 2)].asleep_h == pytest.approx(7.0)
    assert nights[date(2024, 3, 2)].in_bed_h == pytest.approx(8.0)
    assert len(nights[date(2024, 3, 2)].citations) == 1
    # Night 2: 7 h without stages + the 0.5 h nap.
    assert nights[date(2024, 3, 3)].asleep_h == pytest.approx(7.5)
    assert nights[date(2024, 3, 3)].bedtime.strftime("%H:%M") == "00:30"
    # Night 3 from samples: asleep = union(core 0.5-3.5 h, deep 2-3 h, rem 3.5-6.5 h) = 6 h.
    sampled = nights[date(2024, 3, 4)]
    assert sampled.source == "samples"
    assert sampled.asleep_h == pytest.approx(6.0)
    assert sampled.bedtime.strftime("%H:%M") == "22:45"
    hours = [7.0, 7.5, 6.0]
    assert summary.asleep.mean == pytest.approx(np.mean(hours))
    assert summary.asleep.sd == pytest.approx(np.std(hours, ddof=1))
    # Bedtimes 23:00, 00:30, 22:45 -> minutes after noon 660, 750, 645.
    assert summary.bedtime_sd_min == round(float(np.std([660, 750, 645], ddof=1)))
    assert summary.mean_bedtime == "23:25"
    # Wake 07:00, 07:30, 06:15 -> 1140, 1170, 1095 minutes after noon.
    assert summary.wake_sd_min == round(float(np.std([1140, 1170, 1095], ddof=1)))
    assert [p.value for p in summary.series.points] == hours
    assert summary.series.band is not None
    assert (summary.series.band.low, summary.series.band.high) == (7.0, 9.0)
    fact = next(f for f in summary.facts if f.topic == "wearable.sleep")
    assert "6.8 hours" in fact.statement
    assert fact.values["nights_under_7h"] == 1
    assert fact.windows[0].samples == 4


def test_full_summary_cites_existing_records(
    health: SpaceSession, wearable_data: dict[str, dict[date, list[float]]]
) -> None:
    items = [_workout(i, *w) for i, w in enumerate(WORKOUTS)]
    ingest(health, items, source="test", input_sha256="5" * 64)
    summary = wearable_summary(health, end=END, days=90)
    assert set(summary.metrics) == {"steps", "resting_heart_rate", "exercise_minutes"}
    assert summary.workouts is not None
    assert summary.sleep is None
    repo = RecordRepository(health)
    for fact in summary.facts:
        for citation in fact.citations:
            assert repo.get(citation.record_id).kind == citation.kind
    doc = summary.to_dict()
    assert doc["metrics"]["steps"]["daily_series"]["band"]["source"] == "personal"
