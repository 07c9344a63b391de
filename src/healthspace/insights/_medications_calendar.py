"""Medication reminders as an iCalendar file (RFC 5545).

One VEVENT per medication per time of day, repeating by an RRULE made from the
schedule, each with a display alarm at the event time:

- ``period_unit`` "d": ``FREQ=DAILY;INTERVAL=period`` at each time of day.
- "h": every ``period / frequency`` hours; when that divides 24 the doses become daily
  events at fixed times from 08:00, otherwise one ``FREQ=HOURLY`` event.
- "wk": ``FREQ=WEEKLY``; several doses a week are spread over the week with BYDAY.
- "mo" / "a": ``FREQ=MONTHLY`` / ``FREQ=YEARLY`` (one dose per period only).
- Times of day come from the schedule; when it gives none, doses are spread over
  08:00-20:00 (1 a day: 08:00; 2: 08:00 and 20:00; 3: 08:00, 14:00, 20:00; ...).
- As-needed medications, and ones without a usable schedule, get no event; they are
  listed in ``skipped`` with the reason.

Privacy: the calendar holds only what the person asked to export: the medication
name (or a generic title), optionally the dose and the schedule in words. Never
notes, reasons, prescribers or anything about the person. UIDs are hashes of opaque
record ids, stable across exports so a calendar app updates instead of duplicating.
Times are floating (local wherever the person is) unless a time zone is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event

from healthspace.errors import UsageError
from healthspace.model import Schedule

if TYPE_CHECKING:
    from healthspace.insights.medications import MedicationEntry

__all__ = ["DosePlan", "ReminderExport", "dose_times", "reminder_calendar"]

PRODID: Final = "-//healthspace//medication reminders//EN"
_WEEKDAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FREQ: Final = {"d": "DAILY", "wk": "WEEKLY", "mo": "MONTHLY", "a": "YEARLY"}


@dataclass(frozen=True, slots=True)
class ReminderExport:
    """The calendar bytes, how many events it holds, and what was left out and why."""

    ics: bytes
    events: int
    skipped: tuple[tuple[str, str], ...]  # (medication name, reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ics": self.ics.decode("utf-8"),
            "events": self.events,
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
        }


@dataclass(frozen=True, slots=True)
class DosePlan:
    times: tuple[time, ...]
    rule: dict[str, Any]


def _spread(count: int) -> tuple[time, ...]:
    """``count`` doses spread over 08:00-20:00."""
    if count == 1:
        return (time(8, 0),)
    step = 12 * 60 / (count - 1)
    return tuple(
        time(int(8 + m // 60), int(m % 60)) for m in (round(i * step) for i in range(count))
    )


def _parse_times(schedule: Schedule) -> tuple[time, ...]:
    out = []
    for text in schedule.times_of_day:
        parts = [int(p) for p in text.split(":")[:3]] + [0, 0]
        out.append(time(parts[0], parts[1], parts[2]))
    return tuple(sorted(out))


def dose_times(schedule: Schedule) -> tuple[DosePlan | None, str | None]:
    """The times of day and the RRULE for a schedule, or None and the reason there is none."""
    if schedule.as_needed:
        return None, "taken as needed: no fixed schedule"
    unit = schedule.period_unit or ("d" if schedule.times_of_day else None)
    if unit is None:
        return None, "the schedule gives no period"
    frequency = schedule.frequency or max(1, len(schedule.times_of_day))
    period = schedule.period or 1.0
    given = _parse_times(schedule)
    if unit in ("s", "min", "h"):
        hours = period * {"s": 1 / 3600, "min": 1 / 60, "h": 1.0}[unit] / frequency
        if hours <= 0 or hours != int(hours):
            return None, "a dose interval that is not a whole number of hours"
        step = int(hours)
        if 24 % step == 0:
            times = given or tuple(time((8 + k * step) % 24) for k in range(24 // step))
            return DosePlan(tuple(sorted(times)), {"freq": "DAILY"}), None
        return DosePlan(given[:1] or (time(8, 0),), {"freq": "HOURLY", "interval": step}), None
    if period != int(period):
        return None, "a period that is not a whole number"
    interval = int(period)
    if unit == "d":
        times = given or _spread(frequency)
        return DosePlan(times, {"freq": "DAILY", "interval": interval}), None
    if unit == "wk":
        rule: dict[str, Any] = {"freq": "WEEKLY", "interval": interval}
        if frequency > 1:
            rule["byday"] = [_WEEKDAYS[round(i * 7 / frequency) % 7] for i in range(frequency)]
        return DosePlan(given or (time(8, 0),), rule), None
    if frequency > 1:
        return None, "several doses a month or a year cannot be placed on days"
    return DosePlan(given or (time(8, 0),), {"freq": _FREQ[unit], "interval": interval}), None


def _uid(entry: MedicationEntry, at: time) -> str:
    digest = hashlib.sha256(
        ("|".join(sorted(entry.record_ids())) + f"|{at.isoformat()}").encode()
    ).hexdigest()
    return f"{digest[:32]}@healthspace"


def reminder_calendar(
    entries: Sequence[MedicationEntry],
    *,
    start: date,
    now: datetime,
    tz: str | None = None,
    include_dose: bool = True,
    include_schedule: bool = True,
    generic_titles: bool = False,
) -> ReminderExport:
    """An iCalendar file of reminders for ``entries`` (the ones the person chose).

    ``start`` is the first day of reminders (a medication that starts later begins on
    its own start day); ``now`` stamps the events (DTSTAMP). ``tz`` is an IANA zone
    name; without one, times float with the person. The output is parsed back before
    it is returned, so a malformed calendar is never handed out.
    """
    zone = ZoneInfo(tz) if tz else None
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    skipped: list[tuple[str, str]] = []
    events = 0
    for entry in entries:
        if entry.schedule is None:
            skipped.append((entry.name, "no schedule recorded"))
            continue
        plan, reason = dose_times(entry.schedule)
        if plan is None:
            skipped.append((entry.name, reason or "no usable schedule"))
            continue
        first = max(start, _day(entry.start) or start)
        last = _day(entry.end)
        if last is not None and last < first:
            skipped.append((entry.name, "ends before the first reminder day"))
            continue
        for at in plan.times:
            calendar.add_component(
                _event(
                    entry,
                    plan,
                    at,
                    first,
                    last,
                    now,
                    zone,
                    include_dose,
                    include_schedule,
                    generic_titles,
                )
            )
            events += 1
    if zone is not None:
        calendar.add_missing_timezones()
    ics = calendar.to_ical()
    _check(ics, events)
    return ReminderExport(ics, events, tuple(skipped))


def _day(iso: str | None) -> date | None:
    return date.fromisoformat(iso[:10]) if iso and len(iso) >= 10 else None


def _event(
    entry: MedicationEntry,
    plan: DosePlan,
    at: time,
    first: date,
    last: date | None,
    now: datetime,
    zone: ZoneInfo | None,
    include_dose: bool,
    include_schedule: bool,
    generic_titles: bool,
) -> Event:
    title = "Medication reminder" if generic_titles else f"Take {entry.name}"
    if include_dose and entry.dose is not None and not generic_titles:
        title += f" ({entry.dose_text()})"
    event = Event()
    event.add("uid", _uid(entry, at))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", datetime.combine(first, at, tzinfo=zone))
    event.add("duration", timedelta(minutes=15))
    event.add("summary", title)
    rule = dict(plan.rule)
    if last is not None:
        until = datetime.combine(last, time(23, 59, 59), tzinfo=zone)
        # RFC 5545 3.3.10: with a zoned DTSTART, UNTIL must be given in UTC.
        rule["until"] = until.astimezone(UTC) if zone is not None else until
    event.add("rrule", rule)
    if include_schedule and entry.schedule_text and not generic_titles:
        event.add("description", entry.schedule_text)
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", title)
    alarm.add("trigger", timedelta(0))
    event.add_component(alarm)
    return event


def _check(ics: bytes, events: int) -> None:
    parsed = Calendar.from_ical(ics)
    found = parsed.walk("VEVENT")
    if len(found) != events or any(e.get("rrule") is None for e in found):
        raise UsageError("the medication calendar did not parse back as written")
