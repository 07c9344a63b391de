"""Wearable summaries: activity, heart, body and sleep metrics against personal baselines.

Every figure is computed from the person's own data and cites where it came from:
time-series days as :class:`~healthspace.insights.facts.SampleWindow` (series are kept
per UTC day, see :mod:`healthspace.store.series`), records (weight observations,
workouts, sleep sessions) by id.

Daily value: the day's sum for cumulative metrics (steps, active energy, exercise
minutes) and the day's mean for the others (resting heart rate, HRV, VO2 max,
weight), as ``healthspace.model.METRICS`` declares. Weekly value: ISO weeks from
Monday; the week's total for cumulative metrics, the mean of its days otherwise.

Baselines and deviations: for a summary ending on day E, the recent window is the 7
days E-6..E and the 28- and 90-day baselines are the days just before it (E-34..E-7
and E-96..E-7), so a change does not dilute its own baseline. A baseline is the mean
and sample SD (ddof=1) of the daily values of days with data and needs at least 7 of
them. A deviation is notable when the recent mean (at least 3 days) lies more than
2 SD from the 28-day baseline mean; it is stated with both numbers and the dates.
Daily series carry the 28-day baseline as their band (mean ± 2 SD, "personal").

Sleep and workouts: see :mod:`healthspace.insights._wearables_sleep` and
:mod:`healthspace.insights._wearables_workouts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from healthspace.insights._wearables_common import (
    Stats,
    day_start,
    fmt,
    rounded,
    stats_of,
)
from healthspace.insights._wearables_series import (
    SPECS,
    DailyValue,
    MetricSpec,
    WeeklyValue,
    daily_values,
    weekly_values,
)
from healthspace.insights._wearables_sleep import SleepNight, SleepSummary, sleep_summary
from healthspace.insights._wearables_workouts import (
    WorkoutSummary,
    WorkoutTypeSummary,
    WorkoutWeek,
    activity_name,
    workout_summary,
)
from healthspace.insights.facts import (
    Band,
    Fact,
    Point,
    SampleWindow,
    Series,
    unique_citations,
)
from healthspace.model import SleepSession, Workout
from healthspace.store import RecordRepository, SpaceSession

__all__ = [
    "BASELINE_MIN_DAYS",
    "DEVIATION_SD",
    "RECENT_DAYS",
    "SPECS",
    "Baseline",
    "DailyValue",
    "MetricSpec",
    "MetricSummary",
    "SleepNight",
    "SleepSummary",
    "WearableSummary",
    "WeeklyValue",
    "WorkoutSummary",
    "WorkoutTypeSummary",
    "WorkoutWeek",
    "activity_name",
    "daily_values",
    "metric_summary",
    "sleep_summary",
    "wearable_summary",
    "weekly_values",
    "workout_summary",
]

RECENT_DAYS: Final = 7
BASELINE_MIN_DAYS: Final = 7
RECENT_MIN_DAYS: Final = 3
DEVIATION_SD: Final = 2.0
PROBE_DAYS: Final = 400


@dataclass(frozen=True, slots=True)
class Baseline:
    """Mean and SD of the daily values from ``start`` to ``end`` (inclusive)."""

    length: int  # days in the window: 7, 28, 90
    start: date
    end: date
    stats: Stats

    @property
    def usable(self) -> bool:
        need = RECENT_MIN_DAYS if self.length <= RECENT_DAYS else BASELINE_MIN_DAYS
        return self.stats.n >= need and self.stats.mean is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.length,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            **self.stats.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One metric over a window ending on ``end``: days, weeks, baselines, deviation."""

    spec: MetricSpec
    metric: str | None  # the series name the data came from
    end: date
    daily: tuple[DailyValue, ...]
    weekly: tuple[WeeklyValue, ...]
    recent: Baseline
    baseline_28: Baseline
    baseline_90: Baseline
    deviation_sd: float | None  # (recent mean - 28-day mean) / 28-day SD
    daily_series: Series
    weekly_series: Series
    facts: tuple[Fact, ...]

    @property
    def notable(self) -> bool:
        return self.deviation_sd is not None and abs(self.deviation_sd) > DEVIATION_SD

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.spec.key,
            "label": self.spec.label,
            "unit": self.spec.unit,
            "metric": self.metric,
            "end": self.end.isoformat(),
            "daily": [d.to_dict() for d in self.daily],
            "weekly": [w.to_dict() for w in self.weekly],
            "recent": self.recent.to_dict(),
            "baseline_28": self.baseline_28.to_dict(),
            "baseline_90": self.baseline_90.to_dict(),
            "deviation_sd": self.deviation_sd,
            "notable": self.notable,
            "daily_series": self.daily_series.to_dict(),
            "weekly_series": self.weekly_series.to_dict(),
            "facts": [f.to_dict() for f in self.facts],
        }


@dataclass(frozen=True, slots=True)
class WearableSummary:
    """Everything wearable for one window: metrics, sleep, workouts, and their facts."""

    end: date
    days: int
    metrics: dict[str, MetricSummary]
    sleep: SleepSummary | None
    workouts: WorkoutSummary | None
    facts: tuple[Fact, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "end": self.end.isoformat(),
            "days": self.days,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "sleep": self.sleep.to_dict() if self.sleep is not None else None,
            "workouts": self.workouts.to_dict() if self.workouts is not None else None,
            "facts": [f.to_dict() for f in self.facts],
        }


# -- summarising --------------------------------------------------------------------------


def _baseline(daily: Sequence[DailyValue], length: int, end: date) -> Baseline:
    start = end - timedelta(days=length - 1)
    values = [d.value for d in daily if start <= d.day <= end]
    return Baseline(length, start, end, stats_of(values))


def _window(metric: str | None, baseline: Baseline, daily: Sequence[DailyValue]) -> SampleWindow:
    inside = [d for d in daily if baseline.start <= d.day <= baseline.end]
    return SampleWindow(
        metric=metric or "records",
        start=baseline.start,
        end=baseline.end,
        days_with_data=len(inside),
        samples=sum(d.n for d in inside),
    )


def _points(daily: Sequence[DailyValue], band: Band | None, decimals: int) -> tuple[Point, ...]:
    points = []
    for d in daily:
        flag: Literal["normal", "high", "low"] | None = None
        if band is not None and band.low is not None and band.high is not None:
            flag = "high" if d.value > band.high else "low" if d.value < band.low else "normal"
        single = d.citations[0].record_id if len(d.citations) == 1 and d.n == 1 else None
        points.append(
            Point(
                when=day_start(d.day),
                date=d.day.isoformat(),
                value=round(d.value, decimals + 1),
                flag=flag,
                record_id=single,
            )
        )
    return tuple(points)


def metric_summary(
    session: SpaceSession, key: str, *, end: date | None = None, days: int = 90
) -> MetricSummary | None:
    """One metric (a key of :data:`SPECS`) over ``days`` days ending on ``end``.

    ``end`` defaults to the last day with data. None when there is no data at all.
    """
    spec = SPECS[key]
    if end is None:
        end = _last_day(session, (key,))
        if end is None:
            return None
    recent_end = end
    first = min(end - timedelta(days=days - 1), end - timedelta(days=RECENT_DAYS + 90 - 1))
    metric, daily = daily_values(session, key, first, end)
    if not daily:
        return None
    before = recent_end - timedelta(days=RECENT_DAYS)
    recent = _baseline(daily, RECENT_DAYS, recent_end)
    base28 = _baseline(daily, 28, before)
    base90 = _baseline(daily, 90, before)
    deviation = None
    r_mean, b_mean, b_sd = recent.stats.mean, base28.stats.mean, base28.stats.sd
    if recent.usable and base28.usable and r_mean is not None and b_mean is not None and b_sd:
        deviation = (r_mean - b_mean) / b_sd
    band = None
    if base28.usable and base28.stats.sd is not None and base28.stats.mean is not None:
        m, sd = base28.stats.mean, base28.stats.sd
        band = Band(
            low=round(m - DEVIATION_SD * sd, spec.decimals + 1),
            high=round(m + DEVIATION_SD * sd, spec.decimals + 1),
            source="personal",
            reference=f"28-day personal baseline {base28.start} to {base28.end} (mean ± 2 SD)",
        )
    shown = [d for d in daily if d.day > end - timedelta(days=days)]
    weekly = weekly_values(shown)
    weekly_points = tuple(
        Point(
            when=day_start(w.week_start),
            date=w.week_start.isoformat(),
            value=round(w.total if spec.aggregation == "sum" else w.mean, spec.decimals + 1),
        )
        for w in weekly
    )
    summary = MetricSummary(
        spec=spec,
        metric=metric,
        end=end,
        daily=tuple(shown),
        weekly=tuple(weekly),
        recent=recent,
        baseline_28=base28,
        baseline_90=base90,
        deviation_sd=deviation,
        daily_series=Series(
            f"{key}.daily", spec.label, spec.unit, _points(shown, band, spec.decimals), band
        ),
        weekly_series=Series(f"{key}.weekly", f"{spec.label} per week", spec.unit, weekly_points),
        facts=(),
    )
    return replace(summary, facts=_metric_facts(summary, daily))


def _metric_facts(summary: MetricSummary, daily: Sequence[DailyValue]) -> tuple[Fact, ...]:
    spec = summary.spec
    dec = spec.decimals
    unit = f" {spec.unit}{spec.per}"
    recent, base28, base90 = summary.recent, summary.baseline_28, summary.baseline_90
    cites = unique_citations(c for d in daily for c in d.citations)
    facts: list[Fact] = []
    if recent.stats.n and recent.stats.mean is not None:
        windows = [_window(summary.metric, recent, daily)]
        statement = (
            f"{spec.label} averaged {fmt(recent.stats.mean, dec)}{unit} over the last "
            f"{RECENT_DAYS} days ({recent.start} to {recent.end}, "
            f"{_days(recent.stats.n)} with data)"
        )
        values: dict[str, float | int | str | bool | None] = {
            "metric": spec.key,
            "recent_mean": rounded(recent.stats.mean, dec),
            "recent_days": recent.stats.n,
        }
        for name, base in (("baseline_28", base28), ("baseline_90", base90)):
            if base.usable and base.stats.mean is not None:
                sd = base.stats.sd or 0.0
                statement += (
                    f"; {base.length}-day baseline {fmt(base.stats.mean, dec)} ± {fmt(sd, dec)}"
                )
                values[f"{name}_mean"] = rounded(base.stats.mean, dec)
                values[f"{name}_sd"] = rounded(sd, dec)
                windows.append(_window(summary.metric, base, daily))
        facts.append(Fact("wearable.summary", statement + ".", cites, tuple(windows), values))
    elif daily:
        last = daily[-1]
        one_day = Baseline(1, last.day, last.day, stats_of([last.value]))
        facts.append(
            Fact(
                "wearable.latest",
                f"{spec.label}: nothing in the last {RECENT_DAYS} days ({recent.start} to "
                f"{recent.end}); the latest day with data, {last.day}, had "
                f"{fmt(last.value, dec)}{unit.removesuffix(' per day')}.",
                last.citations,
                (_window(summary.metric, one_day, daily),),
                {
                    "metric": spec.key,
                    "day": last.day.isoformat(),
                    "value": rounded(last.value, dec),
                },
            )
        )
    r_mean, b_mean = recent.stats.mean, base28.stats.mean
    notable = summary.notable and summary.deviation_sd is not None
    if notable and summary.deviation_sd is not None and r_mean is not None and b_mean is not None:
        sd = base28.stats.sd or 0.0
        direction = "above" if summary.deviation_sd > 0 else "below"
        facts.append(
            Fact(
                "wearable.deviation",
                f"{spec.label} over the last {RECENT_DAYS} days ({recent.start} to {recent.end}) "
                f"averaged {fmt(r_mean, dec)}{unit}, "
                f"{fmt(abs(summary.deviation_sd), 1)} SD {direction} your 28-day baseline of "
                f"{fmt(b_mean, dec)} ± {fmt(sd, dec)} ({base28.start} to {base28.end}).",
                cites,
                (_window(summary.metric, recent, daily), _window(summary.metric, base28, daily)),
                {
                    "metric": spec.key,
                    "recent_mean": rounded(r_mean, dec),
                    "baseline_mean": rounded(b_mean, dec),
                    "baseline_sd": rounded(sd, dec),
                    "deviation_sd": rounded(summary.deviation_sd, 1),
                    "direction": direction,
                },
                severity="notice",
            )
        )
    return tuple(facts)


def wearable_summary(
    session: SpaceSession,
    *,
    end: date | None = None,
    days: int = 90,
    utc_offset_minutes: int = 0,
) -> WearableSummary:
    """Every wearable metric, sleep and workouts over ``days`` days ending on ``end``.

    ``end`` defaults to the last day any metric has data (today when none has);
    ``utc_offset_minutes`` places sleep samples, which carry UTC times only, in local days.
    """
    if end is None:
        days_found = [d for d in (_last_day(session, tuple(SPECS)),) if d is not None]
        days_found += _latest_record_days(session)
        end = max(days_found) if days_found else datetime.now(UTC).date()
    metrics: dict[str, MetricSummary] = {}
    for key in SPECS:
        summary = metric_summary(session, key, end=end, days=days)
        if summary is not None:
            metrics[key] = summary
    start = end - timedelta(days=days - 1)
    sleep = sleep_summary(session, start, end, utc_offset_minutes=utc_offset_minutes)
    workouts = workout_summary(session, start, end)
    facts = [f for m in metrics.values() for f in m.facts]
    facts += [*sleep.facts, *workouts.facts]
    return WearableSummary(
        end=end,
        days=days,
        metrics=metrics,
        sleep=sleep if sleep.nights else None,
        workouts=workouts if workouts.types else None,
        facts=tuple(facts),
    )


def _last_day(session: SpaceSession, keys: tuple[str, ...]) -> date | None:
    """The last day any of the metrics has data.

    Looks at the last :data:`PROBE_DAYS` days (and any later ones) first and reads the
    whole history only when they hold nothing, so current data costs a short read.
    """
    probe = datetime.now(UTC).date() - timedelta(days=PROBE_DAYS)
    for start in (probe, None):
        lasts = [found[-1].day for key in keys if (found := daily_values(session, key, start)[1])]
        if lasts:
            return max(lasts)
    return None


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _latest_record_days(session: SpaceSession) -> list[date]:
    """The local day of the latest workout and of the latest night of sleep, if any."""
    repo = RecordRepository(session)
    days = []
    for kind in ("workout", "sleep"):
        stored = repo.list(kind=kind)
        if not stored:
            continue
        record = stored[-1].record  # listed by start time
        if isinstance(record, Workout):
            days.append(record.start.local_start().date())
        elif isinstance(record, SleepSession):
            days.append(record.end.local_start().date())
    return days
