"""Questions worth asking at a visit, made by fixed rules from the facts (no model).

Each rule reads computed results and writes one question that names the numbers and
dates it rests on and cites the same records. The rules, in order:

1. a recent result at a critical value (as the brief selects them): raise it first;
2. a trend whose latest change goes the same way as the overall trend and exceeds the
   trend's tolerance: "your X rose from A to B since <date>";
3. a latest result outside its range (not already asked about under 1 or 2), with
   "is it due to be repeated?" when it is more than a year old;
4. medications: whether each is still needed; doses that differ between sources;
5. allergies: whether the list is complete;
6. activity: steps or resting heart rate that moved by 20% or more against the 30 days
   before; a device weight change of 2 kg or more within the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Final

from healthspace.insights.facts import Fact, format_number, with_unit
from healthspace.insights.labs import LabResult, Labs, LabTrend
from healthspace.insights.medications import MedicationList

__all__ = ["questions"]

_ACTIVITY_CHANGE: Final = 0.20
_WEIGHT_CHANGE_KG: Final = 2.0
_STALE: Final = timedelta(days=365)


def lower_name(name: str) -> str:
    """ "Creatinine" -> "creatinine" inside a sentence; acronyms ("LDL ...") stay."""
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name


def _q(statement: str, source: Fact | None = None, **values: float | str | None) -> Fact:
    citations = source.citations if source is not None else ()
    windows = source.windows if source is not None else ()
    return Fact("question", statement, citations, windows, dict(values), "notice")


def _critical(critical: Sequence[LabResult]) -> tuple[list[Fact], set[str]]:
    out, asked = [], set()
    for result in critical:
        asked.add(result.analyte_id)
        fact = result.fact()
        out.append(
            Fact(
                "question",
                f"Your {lower_name(result.name)} of {result.value_text()} on "
                f"{result.day_text} was at a critical level: raise it first, and if you have "
                "not yet heard from your care team about it, contact them now rather than "
                "waiting for the visit.",
                fact.citations,
                values={"analyte": result.analyte_id, "value": result.value},
                severity="critical",
            )
        )
    return out, asked


def _trend_question(trend: LabTrend) -> Fact | None:
    previous, change = trend.previous, trend.change_since_previous
    if previous is None or change is None or trend.tolerance is None:
        return None
    if trend.direction not in ("up", "down") or abs(change) <= trend.tolerance:
        return None
    if (change > 0) != (trend.direction == "up"):
        return None
    last = trend.last
    assert previous.canonical_value is not None
    assert last.canonical_value is not None
    verb = "rose" if change > 0 else "fell"
    before = with_unit(format_number(previous.canonical_value), trend.unit)
    after = with_unit(format_number(last.canonical_value), trend.unit)
    name = lower_name(trend.name)
    text = f"Your {name} {verb} from {before} to {after} since {previous.day_text}"
    if last.range_flag in ("high", "low"):
        text += f" and is now {'above' if last.range_flag == 'high' else 'below'} its range"
    text += ": ask what may be behind the change and whether anything should be done about it."
    return Fact(
        "question",
        text,
        (previous.citation, last.citation),
        values={
            "analyte": trend.analyte_id,
            "previous": previous.canonical_value,
            "latest": last.canonical_value,
            "unit": trend.unit,
        },
        severity="notice",
    )


def _range_question(result: LabResult, today: date) -> Fact:
    rng = result.range_used
    where = {"high": "above", "low": "below"}.get(result.range_flag or "", "outside")
    whose = "the laboratory's" if rng is None or rng.source == "reported" else "the typical"
    name = lower_name(result.name)
    text = f"Your latest {name} ({result.value_text()} on {result.day_text}) was "
    if rng is not None:
        text += f"{where} {whose} range {rng.text()}"
    else:
        text += f"flagged {result.range_flag} by the laboratory"
    collected = result.collected
    if collected is not None and today - collected > _STALE:
        text += ": ask whether it is due to be repeated."
    else:
        text += ": ask what it means for you and whether it should be checked again."
    return Fact(
        "question",
        text,
        (result.citation,),
        values={"analyte": result.analyte_id, "value": result.value, "flag": result.range_flag},
        severity="notice",
    )


def _medication_questions(meds: MedicationList) -> list[Fact]:
    out = []
    if meds.medications:
        citations = tuple(c for m in meds.medications for c in m.citations)
        n = len(meds.medications)
        out.append(
            Fact(
                "question",
                f"You have {n} active medication{'s' if n != 1 else ''} on record: ask whether "
                "each one is still needed and whether the doses listed are still right.",
                citations,
                values={"medications": n},
                severity="notice",
            )
        )
    for entry in meds.medications:
        if entry.doses_differ:
            out.append(
                Fact(
                    "question",
                    f"Your records give different doses for {entry.name}: ask which dose is "
                    "current.",
                    entry.citations,
                    values={"name": entry.name},
                    severity="notice",
                )
            )
    entries = meds.allergies.entries
    if entries:
        names = ", ".join(e.name for e in entries)
        out.append(
            Fact(
                "question",
                f"Check that your allergy list ({names}) is complete and up to date.",
                tuple(c for e in entries for c in e.citations),
                values={"allergies": len(entries)},
                severity="notice",
            )
        )
    return out


def _activity_questions(activity: Sequence[Fact]) -> list[Fact]:
    out = []
    for fact in activity:
        values = fact.values
        metric = values.get("metric")
        mean, before = values.get("mean"), values.get("previous_mean")
        if (
            isinstance(mean, float)
            and isinstance(before, float)
            and before > 0
            and abs(mean - before) / before >= _ACTIVITY_CHANGE
        ):
            label = "daily steps" if metric == "steps" else "resting heart rate"
            verb = "rose" if mean > before else "fell"
            out.append(
                _q(
                    f"Your {label} {verb} from {format_number(before)} to "
                    f"{format_number(mean)} on average compared with the 30 days before: "
                    "mention it, especially if it goes with a change in how you feel.",
                    fact,
                    metric=str(metric),
                )
            )
        change = values.get("change")
        if metric == "body_mass" and isinstance(change, float) and abs(change) >= _WEIGHT_CHANGE_KG:
            out.append(
                _q(
                    f"Your weight changed by {format_number(change)} kg in the last 30 "
                    "days: ask whether this matters for you.",
                    fact,
                    metric="body_mass",
                )
            )
    return out


def questions(
    labs: Labs,
    critical: Sequence[LabResult],
    trends: Sequence[LabTrend],
    meds: MedicationList,
    activity: Sequence[Fact],
    today: date,
) -> list[Fact]:
    """The questions, most urgent first; each cites what it is about."""
    out, asked = _critical(critical)
    for trend in trends:
        if trend.analyte_id in asked:
            continue
        question = _trend_question(trend)
        if question is not None:
            out.append(question)
            asked.add(trend.analyte_id)
    for result in labs.out_of_range():
        if result.analyte_id not in asked:
            out.append(_range_question(result, today))
    out.extend(_medication_questions(meds))
    out.extend(_activity_questions(activity))
    return out
