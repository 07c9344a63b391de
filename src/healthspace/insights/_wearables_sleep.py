"""Sleep per night: time asleep, time in bed, bedtime and wake time, and their regularity.

A night is filed under the local day it ended (the wake-up day). Sources:

- ``SleepSession`` records (preferred): times in the zone the source wrote. When
  several sessions of one night overlap (a watch and a phone both recorded it), the
  one with the most time asleep is kept and the overlapping others are dropped.
- the ``sleep`` time series (stage samples), for nights that have no record: samples
  less than 3 hours apart form one sleep period; time asleep is the union of the
  asleep stages (asleep, core, deep, rem), so overlapping sources are not added
  twice. Samples carry UTC times only, so their local day uses ``utc_offset_minutes``.

The night's main sleep (its longest period) gives the bedtime and wake time; naps
ending the same day add to the time asleep. Regularity is the standard deviation of
bedtimes and of wake times in minutes, measured on a clock that starts at noon so
that 23:30 and 00:30 are an hour apart, not 23.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final, Literal

import numpy as np

from healthspace.insights._wearables_common import (
    DAY_MS,
    Stats,
    day_ms,
    day_start,
    fmt,
    rounded,
    stats_of,
)
from healthspace.insights.facts import (
    Band,
    Citation,
    Fact,
    Point,
    SampleWindow,
    Series,
    citation_of,
    unique_citations,
)
from healthspace.model import SLEEP_STAGE_VALUES, SleepSession
from healthspace.store import RecordRepository, SeriesRepository, SpaceSession

__all__ = ["SleepNight", "SleepSummary", "sleep_nights", "sleep_summary"]

_GAP_MS: Final = 3 * 3_600_000
_ASLEEP_CODES: Final = frozenset(
    code for code, name in SLEEP_STAGE_VALUES.items() if name in {"asleep", "core", "deep", "rem"}
)
# Watson et al. 2015, joint consensus statement of the AASM and the Sleep Research Society.
_SLEEP_REFERENCE: Final = (
    "AASM/SRS consensus (Watson et al., 2015): adults should sleep 7 or more hours a night; "
    "9 or more may be appropriate for some"
)


@dataclass(frozen=True, slots=True)
class SleepNight:
    """One night, filed under the local day it ended."""

    night: date
    asleep_h: float
    in_bed_h: float
    bedtime: datetime  # local (aware) start of the main sleep
    wake: datetime  # local (aware) end of the main sleep
    source: Literal["record", "samples"]
    citations: tuple[Citation, ...] = ()
    samples: int = 0  # stage samples behind a night read from the series

    def to_dict(self) -> dict[str, Any]:
        return {
            "night": self.night.isoformat(),
            "asleep_h": self.asleep_h,
            "in_bed_h": self.in_bed_h,
            "bedtime": self.bedtime.isoformat(),
            "wake": self.wake.isoformat(),
            "source": self.source,
            "citations": [c.to_dict() for c in self.citations],
            "samples": self.samples,
        }


@dataclass(frozen=True, slots=True)
class SleepSummary:
    """Nights from ``start`` to ``end`` with their averages and regularity."""

    start: date
    end: date
    nights: tuple[SleepNight, ...]
    asleep: Stats  # hours per night
    bedtime_sd_min: float | None
    wake_sd_min: float | None
    mean_bedtime: str | None  # "HH:MM", local
    mean_wake: str | None
    series: Series  # hours asleep per night, 7-9 h guideline band
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "nights": [n.to_dict() for n in self.nights],
            "asleep_h": self.asleep.to_dict(),
            "bedtime_sd_min": self.bedtime_sd_min,
            "wake_sd_min": self.wake_sd_min,
            "mean_bedtime": self.mean_bedtime,
            "mean_wake": self.mean_wake,
            "series": self.series.to_dict(),
            "facts": [f.to_dict() for f in self.facts],
        }


@dataclass(frozen=True, slots=True)
class _Period:
    start: datetime  # local, aware
    end: datetime
    asleep_s: float
    citation: Citation | None = None
    samples: int = 0


def _nights_of(
    periods: Iterable[_Period], source: Literal["record", "samples"]
) -> list[SleepNight]:
    by_night: dict[date, list[_Period]] = defaultdict(list)
    for period in periods:
        by_night[period.end.date()].append(period)
    nights = []
    for night, candidates in sorted(by_night.items()):
        kept: list[_Period] = []
        # Most sleep first: of overlapping duplicates, the richest recording wins.
        for period in sorted(candidates, key=lambda p: (-p.asleep_s, p.start)):
            if all(period.end <= k.start or period.start >= k.end for k in kept):
                kept.append(period)
        main = max(kept, key=lambda p: (p.end - p.start, p.asleep_s))
        nights.append(
            SleepNight(
                night=night,
                asleep_h=sum(p.asleep_s for p in kept) / 3600,
                in_bed_h=sum((p.end - p.start).total_seconds() for p in kept) / 3600,
                bedtime=main.start,
                wake=main.end,
                source=source,
                citations=tuple(p.citation for p in kept if p.citation is not None),
                samples=sum(p.samples for p in kept),
            )
        )
    return nights


def _record_periods(session: SpaceSession, start: date, end: date) -> list[_Period]:
    stored = RecordRepository(session).list(
        kind="sleep", since_ms=day_ms(start) - 2 * DAY_MS, until_ms=day_ms(end) + 2 * DAY_MS
    )
    periods = []
    for item in stored:
        record = item.record
        if not isinstance(record, SleepSession):
            continue
        zone = record.end.local_start().tzinfo or UTC
        periods.append(
            _Period(
                start=record.start.start.astimezone(zone),
                end=record.end.start.astimezone(zone),
                asleep_s=record.asleep_seconds(),
                citation=citation_of(item),
            )
        )
    return periods


def _union_ms(starts: np.ndarray[Any, Any], ends: np.ndarray[Any, Any]) -> float:
    """Length of the union of intervals (sorted by start)."""
    total = 0
    current_start: int | None = None
    current_end = 0
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if current_start is None or s > current_end:
            if current_start is not None:
                total += current_end - current_start
            current_start, current_end = s, e
        else:
            current_end = max(current_end, e)
    if current_start is not None:
        total += current_end - current_start
    return float(total)


def _sample_periods(
    session: SpaceSession, start: date, end: date, utc_offset_minutes: int
) -> list[_Period]:
    chunk = SeriesRepository(session).samples(
        "sleep", day_ms(start) - 2 * DAY_MS, day_ms(end) + 2 * DAY_MS
    )
    if len(chunk.t_ms) == 0:
        return []
    zone = timezone(timedelta(minutes=utc_offset_minutes))
    order = np.argsort(chunk.t_ms, kind="stable")
    t = chunk.t_ms[order]
    e = t + chunk.duration_ms[order]
    codes = chunk.values[order]
    # A new sleep period starts where a sample begins > 3 h after everything before it.
    running_end = np.maximum.accumulate(e)
    breaks = np.flatnonzero(t[1:] > running_end[:-1] + _GAP_MS) + 1
    periods = []
    for idx in np.split(np.arange(len(t)), breaks):
        asleep = idx[np.isin(codes[idx], list(_ASLEEP_CODES))]
        periods.append(
            _Period(
                start=datetime.fromtimestamp(int(t[idx].min()) / 1000, zone),
                end=datetime.fromtimestamp(int(e[idx].max()) / 1000, zone),
                asleep_s=_union_ms(t[asleep], e[asleep]) / 1000,
                samples=len(idx),
            )
        )
    return periods


def sleep_nights(
    session: SpaceSession, start: date, end: date, *, utc_offset_minutes: int = 0
) -> list[SleepNight]:
    """Nights ending from ``start`` to ``end`` (inclusive), records first, then samples."""
    nights = {n.night: n for n in _nights_of(_record_periods(session, start, end), "record")}
    for night in _nights_of(_sample_periods(session, start, end, utc_offset_minutes), "samples"):
        nights.setdefault(night.night, night)
    return [nights[d] for d in sorted(nights) if start <= d <= end]


def _clock_minutes(moment: datetime) -> float:
    """Minutes since the previous noon, so times around midnight stay close together."""
    minutes = moment.hour * 60 + moment.minute + moment.second / 60
    return (minutes - 12 * 60) % (24 * 60)


def _clock_text(minutes_since_noon: float) -> str:
    total = round(minutes_since_noon + 12 * 60) % (24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}"


def sleep_summary(
    session: SpaceSession, start: date, end: date, *, utc_offset_minutes: int = 0
) -> SleepSummary:
    """Sleep per night from ``start`` to ``end``: averages, regularity, a chart series."""
    nights = sleep_nights(session, start, end, utc_offset_minutes=utc_offset_minutes)
    asleep = stats_of([n.asleep_h for n in nights])
    bed = stats_of([_clock_minutes(n.bedtime) for n in nights])
    wake = stats_of([_clock_minutes(n.wake) for n in nights])
    band = Band(low=7.0, high=9.0, source="typical", reference=_SLEEP_REFERENCE)
    points = tuple(
        Point(
            when=day_start(n.night),
            date=n.night.isoformat(),
            value=round(n.asleep_h, 2),
            flag="low" if n.asleep_h < 7 else "high" if n.asleep_h > 9 else "normal",
            record_id=n.citations[0].record_id if len(n.citations) == 1 else None,
        )
        for n in nights
    )
    series = Series("sleep.asleep", "Time asleep per night", "h", points, band)
    facts = _facts(nights, asleep, bed, wake, start, end) if nights else ()
    return SleepSummary(
        start=start,
        end=end,
        nights=tuple(nights),
        asleep=asleep,
        bedtime_sd_min=rounded(bed.sd, 0),
        wake_sd_min=rounded(wake.sd, 0),
        mean_bedtime=_clock_text(bed.mean) if bed.mean is not None else None,
        mean_wake=_clock_text(wake.mean) if wake.mean is not None else None,
        series=series,
        facts=facts,
    )


def _facts(
    nights: list[SleepNight], asleep: Stats, bed: Stats, wake: Stats, start: date, end: date
) -> tuple[Fact, ...]:
    citations = unique_citations(c for n in nights for c in n.citations)
    sample_nights = [n for n in nights if n.source == "samples"]
    windows: tuple[SampleWindow, ...] = ()
    if sample_nights:
        windows = (
            SampleWindow(
                metric="sleep",
                start=sample_nights[0].night,
                end=sample_nights[-1].night,
                days_with_data=len(sample_nights),
                samples=sum(n.samples for n in sample_nights),
            ),
        )
    assert asleep.mean is not None
    under = sum(1 for n in nights if n.asleep_h < 7)
    statement = (
        f"You slept {fmt(asleep.mean, 1)} hours a night on average over {len(nights)} nights "
        f"from {start} to {end}"
    )
    values: dict[str, float | int | str | bool | None] = {
        "nights": len(nights),
        "mean_asleep_h": rounded(asleep.mean, 1),
        "nights_under_7h": under,
    }
    if asleep.sd is not None:
        statement += f" (SD {fmt(asleep.sd, 1)} h)"
        values["sd_asleep_h"] = rounded(asleep.sd, 1)
    statement += f"; {under} of them were under 7 hours."
    facts = [Fact("wearable.sleep", statement, citations, windows, values)]
    if bed.n > 1 and wake.n > 1:
        facts.append(_regularity(bed, wake, len(nights), citations, windows))
    return tuple(facts)


def _regularity(
    bed: Stats,
    wake: Stats,
    nights: int,
    citations: tuple[Citation, ...],
    windows: tuple[SampleWindow, ...],
) -> Fact:
    bed_mean, bed_sd = bed.mean or 0.0, bed.sd or 0.0
    wake_mean, wake_sd = wake.mean or 0.0, wake.sd or 0.0
    return Fact(
        "wearable.sleep_regularity",
        f"Bedtime averaged {_clock_text(bed_mean)} (SD {fmt(bed_sd, 0)} minutes) and "
        f"wake time {_clock_text(wake_mean)} (SD {fmt(wake_sd, 0)} minutes) over "
        f"{nights} nights.",
        citations,
        windows,
        {
            "mean_bedtime": _clock_text(bed_mean),
            "bedtime_sd_min": rounded(bed_sd, 0),
            "mean_wake": _clock_text(wake_mean),
            "wake_sd_min": rounded(wake_sd, 0),
        },
    )
