"""Garmin/ANT+ FIT files: activities, daily monitoring and weight scales.

* Activity: each ``session`` (or, without one, the laps or the records) becomes a
  :class:`Workout` with its totals and lap splits as statistics; ``record`` messages
  become ``heart_rate``, ``speed``, ``cadence`` and ``power`` samples. Developer fields
  (Stryd power, ...) are summarised in the statistics, and the whole FIT file is kept
  as the workout's original, so nothing the device wrote is lost.
* Monitoring (``monitoring_a/b``): step counts (cumulative per activity type through a
  day, turned into per-interval steps) and heart rate become samples.
* Weight scale: weight becomes a ``body_mass`` sample, and weight, body fat, BMI and
  the other body-composition values become observations. A scale file shared by
  several people keeps them as observations marked by scale user, not as samples.

A damaged or truncated file is a :class:`SourceError` naming the byte offset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Final

from healthspace.hookspecs import hookimpl
from healthspace.sources._fit_activity import items as activity_items
from healthspace.sources._fit_body import monitoring, weight_scale
from healthspace.sources._fit_decode import Message, decode
from healthspace.sources._wellness import read_limited
from healthspace.sources.base import ImportContext, InputFile, Item, Source, SourceManifest

__all__ = ["FitSource", "register_sources"]

SOURCE_ID: Final = "fit"
# Decoded in memory; a day-long 1 Hz activity is a few MB.
_MAX_BYTES: Final = 256 << 20
# Messages mapped (or deliberately read only for context) by this source.
_READ: Final = frozenset(
    {
        "file_id",
        "file_creator",
        "device_info",
        "activity",
        "session",
        "lap",
        "record",
        "event",
        "monitoring",
        "monitoring_info",
        "weight_scale",
        "user_profile",
        "developer_data_id",
        "field_description",
    }
)


class FitSource:
    manifest = SourceManifest(
        id=SOURCE_ID,
        name="FIT files (Garmin, Wahoo, Zwift, ...)",
        reads=("workout", "observation", "heart_rate", "steps", "body_mass"),
        purpose="Workouts with their heart rate, speed, cadence and power; daily steps; "
        "weight-scale readings.",
    )

    def sniff(self, file: InputFile, head: bytes) -> bool:
        return len(head) >= 12 and head[0] in (12, 14) and head[8:12] == b".FIT"

    def parse(self, file: InputFile, ctx: ImportContext) -> Iterator[Item]:
        data = read_limited(file, _MAX_BYTES, "the FIT file")
        messages = decode(data, file.name)
        ignored = Counter(m.name for m in messages if m.name not in _READ)
        for name, count in sorted(ignored.items()):
            ctx.unmapped[f"fit message {name}"] += count
        device = _device(messages)
        offset = _local_offset(messages)
        yield from activity_items(messages, data, ctx, SOURCE_ID, device, offset)
        yield from monitoring(messages, ctx, device)
        yield from weight_scale(messages, ctx, SOURCE_ID, device, offset)


def _device(messages: list[Message]) -> str:
    """'manufacturer product' from file_id, the samples' source label."""
    for message in messages:
        if message.name == "file_id":
            maker = message.text("manufacturer")
            product = message.text("garmin_product") or message.text("product")
            label = " ".join(p for p in (maker, product) if p)
            return label or "FIT device"
    return "FIT device"


def _local_offset(messages: list[Message]) -> int | None:
    """The device's UTC offset in minutes, from ``activity``/``monitoring_info`` local time."""
    for message in messages:
        local = message.raw.get("local_timestamp")
        utc = message.raw.get("timestamp")
        if isinstance(local, int) and isinstance(utc, int):
            minutes = (local - utc) / 60
            # A real offset is a whole quarter hour within a day.
            if abs(minutes) < 24 * 60 and minutes % 15 == 0:
                return int(minutes)
    return None


@hookimpl
def register_sources() -> list[Source]:
    return [FitSource()]
