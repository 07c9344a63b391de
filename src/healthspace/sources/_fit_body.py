"""FIT monitoring (daily steps, heart rate) and weight-scale messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Final

from healthspace.model import (
    LOINC,
    Code,
    Observation,
    PartialDateTime,
    Quantity,
    QuantityValue,
    Sample,
)
from healthspace.sources._fit_decode import Message
from healthspace.sources._wellness import in_offset, provenance
from healthspace.sources.base import ImportContext, Item

__all__ = ["monitoring", "weight_scale"]

# Activity types whose monitoring ``cycles`` are steps (the FIT profile's ``steps``
# sub-field: same raw number, scale 1 instead of 2).
_STEP_ACTIVITIES: Final = frozenset({"walking", "running"})
_LOCAL: Final = "urn:healthspace:fit:weight_scale"

# weight_scale field -> (code, unit); weight is the body_mass sample too.
_BODY: Final[dict[str, tuple[Code, str]]] = {
    "weight": (Code(system=LOINC, code="29463-7", display="Body weight"), "kg"),
    "percent_fat": (Code(system=LOINC, code="41982-0", display="Percentage of body fat"), "%"),
    "bmi": (Code(system=LOINC, code="39156-5", display="Body mass index (BMI)"), "kg/m2"),
    "percent_hydration": (Code(system=_LOCAL, code="percent_hydration", display="Body water"), "%"),
    "bone_mass": (Code(system=_LOCAL, code="bone_mass", display="Bone mass"), "kg"),
    "muscle_mass": (Code(system=_LOCAL, code="muscle_mass", display="Muscle mass"), "kg"),
    "visceral_fat_rating": (
        Code(system=_LOCAL, code="visceral_fat_rating", display="Visceral fat rating"),
        "",
    ),
    "basal_met": (Code(system=_LOCAL, code="basal_met", display="Basal metabolic rate"), "kcal/d"),
    "metabolic_age": (Code(system=_LOCAL, code="metabolic_age", display="Metabolic age"), "a"),
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def monitoring(messages: list[Message], ctx: ImportContext, device: str) -> Iterator[Item]:
    """Steps per interval (from per-day cumulative counts) and heart-rate readings.

    The device counts steps per activity type cumulatively through each local day, so
    a reading's steps are its count minus the previous count of that type. A count that
    drops means the day's counters restarted. (A reset is not inferred from the clock:
    devices write the day's final totals again at local midnight.)
    """
    last: dict[str, tuple[int, float]] = {}  # activity type -> (t_ms, cumulative steps)
    day_start: int | None = None
    for message in messages:
        if message.name == "monitoring_info" and message.time is not None:
            day_start = _ms(message.time)
            last.clear()
            continue
        if message.name != "monitoring" or message.time is None:
            continue
        t = _ms(message.time)
        heart = message.number("heart_rate")
        if heart is not None and heart > 0:
            yield Sample("heart_rate", t, heart, 0, device)
        activity = message.text("activity_type")
        raw = message.raw.get("steps", message.raw.get("cycles"))
        if activity not in _STEP_ACTIVITIES or not isinstance(raw, int | float):
            continue
        total = float(raw)
        since = day_start if day_start is not None and day_start <= t else t
        previous_t, previous = last.get(activity, (since, 0.0))
        delta = total - previous if total >= previous else total  # a drop: counters reset
        last[activity] = (t, total)
        if delta > 0:
            yield Sample("steps", previous_t, delta, t - previous_t, device)


def weight_scale(
    messages: list[Message],
    ctx: ImportContext,
    source: str,
    device: str,
    offset: int | None,
) -> Iterator[Item]:
    readings = [m for m in messages if m.name == "weight_scale" and m.time is not None]
    if not readings:
        return
    users = {m.values.get("user_profile_index") for m in readings}
    shared = len(users) > 1
    if shared:
        ctx.warn(
            "weight_scale",
            f"the scale file holds readings of {len(users)} scale users; they are kept as "
            "observations marked by scale user, and not added to the body-mass series",
        )
    for message in readings:
        assert message.time is not None
        when = in_offset(PartialDateTime.from_datetime(message.time), offset)
        user = message.values.get("user_profile_index")
        note = f"Scale user {user}" if shared and user is not None else None
        for name, (code, unit) in _BODY.items():
            value = message.number(name)
            if value is None:
                continue
            yield Observation(
                source_id=f"fit:weight_scale:{message.time.isoformat()}:{user}:{name}",
                provenance=provenance(source, ctx, f"message {message.index} (weight_scale)"),
                note=note,
                code=code,
                codes=(code,),
                category="vital-signs" if code.system == LOINC else None,
                value=QuantityValue(quantity=Quantity(value=value, unit=unit)),
                effective=when,
                method=device,
            )
            if name == "weight" and not shared:
                yield Sample("body_mass", _ms(message.time), value, 0, device)
