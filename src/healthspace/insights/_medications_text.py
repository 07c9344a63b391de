"""Medication names normalised for matching, and schedules in plain words."""

from __future__ import annotations

import re
from typing import Final

from healthspace.model import Medication, Schedule

__all__ = ["normalise_name", "schedule_text"]

# Salt and ester words: "metformin hydrochloride" and "metformin" are one drug. Only
# stripped when a non-salt word remains ("ferrous sulfate", "potassium chloride" stay).
_SALTS: Final = frozenset(
    [
        "hydrochloride",
        "hcl",
        "dihydrochloride",
        "hydrobromide",
        "sodium",
        "potassium",
        "calcium",
        "magnesium",
        "sulfate",
        "sulphate",
        "succinate",
        "tartrate",
        "bitartrate",
        "maleate",
        "mesylate",
        "besylate",
        "citrate",
        "acetate",
        "phosphate",
        "bromide",
        "chloride",
        "fumarate",
        "hyclate",
        "monohydrate",
        "dihydrate",
        "trihydrate",
        "anhydrous",
        "gluconate",
        "lactate",
        "nitrate",
        "oxalate",
        "carbonate",
        "disodium",
        "dipotassium",
        "ferrous",
        "ferric",
        "zinc",
        "lithium",
        "aluminum",
    ]
)
# Dose-form, route and packaging words. The drug's own name never is one of these.
_FORMS: Final = frozenset(
    [
        "oral",
        "tablet",
        "tablets",
        "tab",
        "tabs",
        "capsule",
        "capsules",
        "cap",
        "caps",
        "extended",
        "release",
        "delayed",
        "prolonged",
        "sustained",
        "controlled",
        "modified",
        "immediate",
        "er",
        "xr",
        "sr",
        "dr",
        "cr",
        "xl",
        "la",
        "ir",
        "odt",
        "film",
        "coated",
        "chewable",
        "disintegrating",
        "dispersible",
        "effervescent",
        "enteric",
        "injectable",
        "injection",
        "solution",
        "suspension",
        "emulsion",
        "syrup",
        "elixir",
        "liquid",
        "drops",
        "drop",
        "ophthalmic",
        "otic",
        "nasal",
        "spray",
        "inhaler",
        "inhalation",
        "powder",
        "dry",
        "metered",
        "dose",
        "aerosol",
        "nebulizer",
        "topical",
        "cream",
        "ointment",
        "gel",
        "lotion",
        "foam",
        "patch",
        "transdermal",
        "system",
        "sublingual",
        "buccal",
        "mucosal",
        "vaginal",
        "rectal",
        "suppository",
        "pen",
        "prefilled",
        "syringe",
        "auto",
        "injector",
        "autoinjector",
        "cartridge",
        "vial",
        "kit",
        "pack",
        "day",
        "hr",
        "hour",
        "hours",
        "actuat",
        "actuation",
        "unt",
        "unit",
        "units",
        "ml",
        "mg",
        "mcg",
        "g",
        "meq",
        "pack",
        "intrauterine",
        "for",
        "of",
        "and",
        "in",
        "with",
    ]
)
_BRACKETS = re.compile(r"\[[^\]]*\]|\([^)]*\)")
_STRENGTH = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:[a-z%]+(?:/[a-z]+)?)?\b")
_NDA = re.compile(r"\b(?:nda|anda|bla)\d+\b")
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def _component(text: str) -> str:
    # "auto-injector" is a form as a whole; "co-trimoxazole" is a drug.
    words = [w for w in _WORD.findall(text) if not set(w.split("-")) <= _FORMS]
    kept = [w for w in words if w not in _SALTS]
    return " ".join(kept or words)


def normalise_name(medication: Medication | str) -> str:
    """A matching key for a medication name.

    ``"Metformin hydrochloride 500 MG Extended Release Oral Tablet [Glucophage]"`` ->
    ``"metformin"``; combinations keep every part, sorted:
    ``"Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet"`` -> ``"amoxicillin /
    clavulanate"``. Falls back to the RxNorm or first code when there is no name.
    """
    text = medication.display_text() if isinstance(medication, Medication) else medication
    text = _BRACKETS.sub(" ", text.lower())
    text = _NDA.sub(" ", text)
    text = _STRENGTH.sub(" ", text)
    parts = sorted({p for p in (_component(part) for part in text.split("/")) if p})
    return " / ".join(parts) or text.strip()


_UNIT_WORDS: Final = {
    "s": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "d": ("day", "days"),
    "wk": ("week", "weeks"),
    "mo": ("month", "months"),
    "a": ("year", "years"),
}
_TIMES: Final = {1: "once", 2: "twice", 3: "three times", 4: "four times"}


def schedule_text(schedule: Schedule) -> str:
    """A schedule in plain words: "twice a day at 08:00, 20:00", "every 8 hours", ..."""
    parts = []
    unit = schedule.period_unit
    if unit is not None:
        one, many = _UNIT_WORDS[unit]
        period = schedule.period or 1
        frequency = schedule.frequency or 1
        if frequency == 1 and period != 1:
            parts.append(f"every {period:g} {many}")
        else:
            times = _TIMES.get(frequency, f"{frequency} times")
            every = f"a {one}" if period == 1 else f"every {period:g} {many}"
            parts.append(f"{times} {every}")
    if schedule.times_of_day:
        parts.append("at " + ", ".join(t[:5] for t in schedule.times_of_day))
    if schedule.as_needed:
        reason = f" for {schedule.as_needed_reason}" if schedule.as_needed_reason else ""
        parts.append(f"as needed{reason}")
    if not parts and schedule.text:
        return schedule.text
    return " ".join(parts) if parts else "no fixed schedule"
