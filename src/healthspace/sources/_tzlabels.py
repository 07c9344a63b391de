"""Time-zone abbreviations as exports write them (``2020-04-07 16:39 (PST)``).

An abbreviation states an offset; it also implies daylight saving or not. Some exports
(Peloton) label every row with the account's zone *at export time*, so a summer workout
can say "PST". We keep the offset as written and only report when the label disagrees
with the daylight-saving rules of the zone it names, so nothing is silently shifted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["TzLabel", "label_mismatch", "lookup"]


class TzLabel(NamedTuple):
    offset_minutes: int
    zone: str | None  # an IANA zone whose rules the label follows, for the DST check
    # Also used all year somewhere (Arizona's MST, Queensland's AEST): a standard label
    # in summer is then no evidence of a mistake.
    standard_all_year_somewhere: bool = False


_LABELS: Final[dict[str, TzLabel]] = {
    "UTC": TzLabel(0, None),
    "GMT": TzLabel(0, None),
    "Z": TzLabel(0, None),
    "EST": TzLabel(-300, "America/New_York"),
    "EDT": TzLabel(-240, "America/New_York"),
    "CST": TzLabel(-360, "America/Chicago"),
    "CDT": TzLabel(-300, "America/Chicago"),
    "MST": TzLabel(-420, "America/Denver", standard_all_year_somewhere=True),
    "MDT": TzLabel(-360, "America/Denver"),
    "PST": TzLabel(-480, "America/Los_Angeles"),
    "PDT": TzLabel(-420, "America/Los_Angeles"),
    "AKST": TzLabel(-540, "America/Anchorage"),
    "AKDT": TzLabel(-480, "America/Anchorage"),
    "HST": TzLabel(-600, None),
    "AST": TzLabel(-240, "America/Halifax", standard_all_year_somewhere=True),
    "ADT": TzLabel(-180, "America/Halifax"),
    "NST": TzLabel(-210, "America/St_Johns"),
    "NDT": TzLabel(-150, "America/St_Johns"),
    "WET": TzLabel(0, "Europe/Lisbon"),
    "WEST": TzLabel(60, "Europe/Lisbon"),
    "BST": TzLabel(60, "Europe/London"),
    "CET": TzLabel(60, "Europe/Paris"),
    "CEST": TzLabel(120, "Europe/Paris"),
    "EET": TzLabel(120, "Europe/Athens"),
    "EEST": TzLabel(180, "Europe/Athens"),
    "AWST": TzLabel(480, None),
    "ACST": TzLabel(570, "Australia/Adelaide", standard_all_year_somewhere=True),
    "ACDT": TzLabel(630, "Australia/Adelaide"),
    "AEST": TzLabel(600, "Australia/Sydney", standard_all_year_somewhere=True),
    "AEDT": TzLabel(660, "Australia/Sydney"),
    "NZST": TzLabel(720, "Pacific/Auckland"),
    "NZDT": TzLabel(780, "Pacific/Auckland"),
}


def lookup(label: str) -> TzLabel | None:
    return _LABELS.get(label.strip().upper())


def label_mismatch(wall: datetime, label: str) -> str | None:
    """The abbreviation the named zone really used at ``wall``, when it differs from ``label``.

    None when the label is consistent, unknown, or cannot be checked here.
    """
    info = lookup(label)
    if info is None or info.zone is None:
        return None
    try:
        zone = ZoneInfo(info.zone)
    except ZoneInfoNotFoundError:
        return None  # no time-zone database on this machine: nothing to check against
    local = wall.replace(tzinfo=zone)
    stated = timedelta(minutes=info.offset_minutes)
    # In the repeated hour when clocks go back, both offsets are right.
    if stated in (local.utcoffset(), local.replace(fold=1).utcoffset()):
        return None
    labelled_dst = info.offset_minutes > _standard_offset(zone, wall)
    if not labelled_dst and info.standard_all_year_somewhere:
        return None
    return local.tzname()


def _standard_offset(zone: ZoneInfo, wall: datetime) -> int:
    """The zone's standard (winter) offset in the year of ``wall``, in minutes."""
    offsets = []
    for month in (1, 7):
        sample = datetime(wall.year, month, 15, 12).replace(tzinfo=zone).utcoffset()
        if sample is not None:
            offsets.append(int(sample.total_seconds() // 60))
    return min(offsets) if offsets else 0
