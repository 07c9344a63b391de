"""FIT activities: sessions (or laps, or bare records) to workouts; records to samples."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

from healthspace.model import Attached, PartialDateTime, Quantity, Workout
from healthspace.model.units import normalize_unit
from healthspace.sources._fit_decode import Message
from healthspace.sources._wellness import in_offset, provenance, sample_batch
from healthspace.sources.base import ImportContext, Item

__all__ = ["items"]

# (message fields tried in order, statistic key, unit)
_SUMMARY: Final[tuple[tuple[tuple[str, ...], str, str], ...]] = (
    (("total_elapsed_time",), "elapsed_time", "s"),
    (("enhanced_avg_speed", "avg_speed"), "avg_speed", "m/s"),
    (("enhanced_max_speed", "max_speed"), "max_speed", "m/s"),
    (("avg_power",), "avg_power", "W"),
    (("max_power",), "max_power", "W"),
    (("normalized_power",), "normalized_power", "W"),
    (("total_work",), "total_work", "J"),
    (("avg_cadence",), "avg_cadence", "/min"),
    (("max_cadence",), "max_cadence", "/min"),
    (("avg_running_cadence",), "avg_running_cadence", "/min"),
    (("total_ascent",), "total_ascent", "m"),
    (("total_descent",), "total_descent", "m"),
    (("enhanced_avg_altitude", "avg_altitude"), "avg_altitude", "m"),
    (("avg_temperature",), "avg_temperature", "Cel"),
    (("total_training_effect",), "training_effect", ""),
    (("training_stress_score",), "training_stress_score", ""),
    (("num_laps",), "laps", "{laps}"),
)
_LAP: Final[tuple[tuple[tuple[str, ...], str, str], ...]] = (
    (("total_distance",), "distance", "m"),
    (("total_timer_time",), "duration", "s"),
    (("avg_heart_rate",), "avg_heart_rate", "/min"),
    (("avg_power",), "avg_power", "W"),
)
# Record field(s) -> sample metric and unit.
_SERIES: Final[tuple[tuple[tuple[str, ...], str, str], ...]] = (
    (("heart_rate",), "heart_rate", "/min"),
    (("enhanced_speed", "speed"), "speed", "m/s"),
    (("cadence",), "cadence", "/min"),
    (("power",), "power", "W"),
)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _span(
    summary: Message | None, records: list[Message], start_field: str = "start_time"
) -> tuple[datetime, datetime] | None:
    start = summary.values.get(start_field) if summary is not None else None
    if not isinstance(start, datetime):
        start = records[0].time if records else None
    if start is None:
        return None
    elapsed = summary.number("total_elapsed_time") if summary is not None else None
    if elapsed is not None:
        return start, start + timedelta(seconds=elapsed)
    end = summary.time if summary is not None else None
    if end is None and records:
        end = records[-1].time
    return start, end if end is not None and end >= start else start


def _stats(
    message: Message, table: tuple[tuple[tuple[str, ...], str, str], ...], prefix: str
) -> dict[str, Quantity]:
    out: dict[str, Quantity] = {}
    for names, key, unit in table:
        value = message.number(*names)
        if value is not None:
            out[prefix + key] = Quantity(value=value, unit=unit)
    return out


def _developer(summary: Message | None, records: list[Message]) -> dict[str, Quantity]:
    """Developer fields: the summary's own value, else the mean over the records."""
    sums: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for record in records:
        for name, (value, unit) in record.developer.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
                sums.setdefault(name, []).append(float(value))
                units[name] = normalize_unit(unit)
    out = {
        f"developer.{name}.mean": Quantity(value=sum(vals) / len(vals), unit=units[name])
        for name, vals in sorted(sums.items())
    }
    if summary is not None:
        for name, (value, unit) in sorted(summary.developer.items()):
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
                out[f"developer.{name}"] = Quantity(value=float(value), unit=normalize_unit(unit))
    return out


def items(
    messages: list[Message],
    data: bytes,
    ctx: ImportContext,
    source: str,
    device: str,
    offset: int | None,
) -> Iterator[Item]:
    records = [m for m in messages if m.name == "record" and m.time is not None]
    records.sort(key=lambda m: (m.time, m.index))
    sessions = [m for m in messages if m.name == "session"]
    laps = [m for m in messages if m.name == "lap"]
    serial = next((m.values.get("serial_number") for m in messages if m.name == "file_id"), None)
    summaries: list[Message | None] = list(sessions)
    if not summaries and (laps or records):
        # No session message (some exporters): the laps, or the records, are the workout.
        summaries = [None]
    for number, summary in enumerate(summaries):
        span = _span(summary, records)
        if span is None and laps:
            span = _span(laps[0], records)
        if span is None:
            ctx.warn(f"session {number}", "no start time; the session was not imported")
            continue
        start, end = span
        inside = [r for r in records if r.time is not None and start <= r.time <= end]
        my_laps = [
            lap
            for lap in laps
            if not isinstance(lap.values.get("start_time"), datetime)
            or start <= lap.values["start_time"] <= end
        ]
        yield Attached(
            _workout(summary, my_laps, inside, span, ctx, source, device, offset, serial),
            original=data,
        )
    for names, metric, unit in _SERIES:
        rows: list[tuple[int, int, float]] = []
        for record in records:
            value = record.number(*names)
            if value is None or record.time is None:
                continue
            if metric == "cadence":
                value += record.number("fractional_cadence") or 0.0
            rows.append((_ms(record.time), 0, value))
        if rows:
            yield sample_batch(metric, unit, rows, device)


def _workout(
    summary: Message | None,
    laps: list[Message],
    records: list[Message],
    span: tuple[datetime, datetime],
    ctx: ImportContext,
    source: str,
    device: str,
    offset: int | None,
    serial: object,
) -> Workout:
    start, end = span
    basis = summary if summary is not None else (laps[0] if len(laps) == 1 else None)
    stats: dict[str, Quantity] = {} if basis is None else _stats(basis, _SUMMARY, "")
    for number, lap in enumerate(laps, start=1):
        stats.update(_stats(lap, _LAP, f"lap.{number}."))
    stats.update(_developer(summary, records))
    distance = basis.number("total_distance") if basis is not None else None
    if distance is None and laps:
        lap_distances = [lap.number("total_distance") for lap in laps]
        distance = sum(d for d in lap_distances if d is not None) or None
    calories = basis.number("total_calories") if basis is not None else None
    timer = basis.number("total_timer_time") if basis is not None else None
    sport = (basis.text("sport") if basis is not None else None) or "workout"
    sub_sport = basis.text("sub_sport") if basis is not None else None
    place = f"message {summary.index} (session)" if summary is not None else "records"

    def rate(name: str) -> Quantity | None:
        value = basis.number(name) if basis is not None else None
        return None if value is None else Quantity(value=value, unit="/min")

    return Workout(
        source_id=f"fit:workout:{serial if serial is not None else '-'}:{start.isoformat()}",
        provenance=provenance(source, ctx, place),
        note=f"Sub-sport: {sub_sport}" if sub_sport and sub_sport != "generic" else None,
        activity_type=sport,
        start=in_offset(PartialDateTime.from_datetime(start), offset),
        end=in_offset(PartialDateTime.from_datetime(end), offset),
        duration_s=timer if timer is not None else (end - start).total_seconds(),
        # A zero total means "not measured" (indoor rides, a device without the sensor).
        distance=Quantity(value=distance, unit="m") if distance else None,
        energy=Quantity(value=calories, unit="kcal") if calories else None,
        avg_heart_rate=rate("avg_heart_rate"),
        max_heart_rate=rate("max_heart_rate"),
        statistics=stats,
        source_name="FIT file",
        device=device,
    )
