"""Export elements and files that become observations: correlations (blood pressure),
audiograms, ActivitySummary days (the rings), ECG recordings
(``electrocardiograms/*.csv``), and any element we do not know, kept whole with its
original bytes.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Final

from healthspace.model import (
    HEALTHKIT,
    LOINC,
    Attached,
    Code,
    Observation,
    ObservationComponent,
    Provenance,
    Quantity,
    QuantityValue,
    StringValue,
)
from healthspace.sources._apple_metrics import apple_unit
from healthspace.sources._apple_records import moment, number, quantity, stable_id
from healthspace.sources._apple_xml import Elem

__all__ = ["activity_day", "audiogram", "correlation", "ecg", "generic"]

_BP: Final = "HKCorrelationTypeIdentifierBloodPressure"
_BP_PARTS: Final = {
    "HKQuantityTypeIdentifierBloodPressureSystolic": Code(
        system=LOINC, code="8480-6", display="Systolic blood pressure"
    ),
    "HKQuantityTypeIdentifierBloodPressureDiastolic": Code(
        system=LOINC, code="8462-4", display="Diastolic blood pressure"
    ),
}


def _hk(code: str, display: str | None = None) -> Code:
    return Code(system=HEALTHKIT, code=code or "unknown", display=display)


def _span(a: dict[str, str]) -> tuple[str, str]:
    return a.get("startDate", ""), a.get("endDate", "")


def correlation(elem: Elem, raw: bytes, prov: Provenance) -> Attached | None:
    """A correlation (blood pressure, food) as one observation with a component per record.

    Its records also stand alone in the export, so their samples are not repeated here.
    """
    a = elem.attrs
    kind = a.get("type", "")
    start, end = _span(a)
    when = moment(start)
    if when is None:
        return None
    components: list[ObservationComponent] = []
    for child in elem.find_all("Record"):
        child_type = child.attrs.get("type", "")
        amount = quantity(child.attrs.get("value"), child.attrs.get("unit"))
        text = child.attrs.get("value")
        value: QuantityValue | StringValue | None = (
            QuantityValue(quantity=amount)
            if amount is not None
            else StringValue(text=text)
            if text
            else None
        )
        code = _BP_PARTS.get(child_type, _hk(child_type)) if kind == _BP else _hk(child_type)
        components.append(
            ObservationComponent(code=code, codes=(code, _hk(child_type)), value=value)
        )
    if kind == _BP:
        code = Code(system=LOINC, code="85354-9", display="Blood pressure panel")
        codes: tuple[Code, ...] = (code, _hk(kind))
        category: str | None = "vital-signs"
        # Systolic first, as "120/80" is read.
        order = list(_BP_PARTS.values())
        components.sort(key=lambda c: order.index(c.code) if c.code in order else len(order))
    else:
        code, codes, category = _hk(kind), (_hk(kind),), None
    end_moment = moment(end)
    record = Observation(
        source_id=stable_id("correlation", kind, a.get("sourceName", ""), start, end),
        provenance=prov,
        code=code,
        codes=codes,
        category=category,
        components=tuple(components),
        effective=when,
        effective_end=end_moment if end_moment is not None and end_moment != when else None,
        performer=a.get("sourceName") or None,
    )
    return Attached(record, original=raw)


def audiogram(elem: Elem, raw: bytes, prov: Provenance) -> Attached | None:
    """Hearing thresholds per frequency and ear, one component each."""
    a = elem.attrs
    start, end = _span(a)
    when = moment(start)
    if when is None:
        return None
    components: list[ObservationComponent] = []
    for point in elem.find_all("SensitivityPoint"):
        p = point.attrs
        frequency = f"{p.get('frequencyValue', '')} {p.get('frequencyUnit', '')}".strip()
        for side in ("left", "right"):
            amount = quantity(p.get(f"{side}EarValue"), p.get(f"{side}EarUnit"))
            if amount is None:
                continue
            components.append(
                ObservationComponent(
                    code=_hk(f"{side}Ear:{frequency}", f"{side.title()} ear at {frequency}"),
                    value=QuantityValue(quantity=amount),
                )
            )
    record = Observation(
        source_id=stable_id("audiogram", a.get("sourceName", ""), start, end),
        provenance=prov,
        code=_hk(a.get("type", "HKDataTypeIdentifierAudiogram"), "Audiogram"),
        category="exam",
        components=tuple(components),
        effective=when,
        performer=a.get("sourceName") or None,
    )
    return Attached(record, original=raw)


# ActivitySummary attributes: (display, unit); energy takes the unit the export names.
_RINGS: Final = {
    "activeEnergyBurned": ("Active energy", None),
    "activeEnergyBurnedGoal": ("Active energy goal", None),
    "appleMoveTime": ("Move time", "min"),
    "appleMoveTimeGoal": ("Move time goal", "min"),
    "appleExerciseTime": ("Exercise time", "min"),
    "appleExerciseTimeGoal": ("Exercise time goal", "min"),
    "appleStandHours": ("Stand hours", "h"),
    "appleStandHoursGoal": ("Stand hours goal", "h"),
}


def activity_day(elem: Elem, raw: bytes, prov: Provenance) -> Attached | None:
    """One day's activity rings: active energy as the value, the rest (goals, exercise,
    stand, move) as components. A record per day rather than eight one-sample series."""
    a = elem.attrs
    day = moment(a.get("dateComponents"))
    if day is None:
        return None
    energy_unit = apple_unit(a.get("activeEnergyBurnedUnit", "kcal"))
    value: QuantityValue | None = None
    components: list[ObservationComponent] = []
    for name, text in a.items():
        if name in ("dateComponents", "activeEnergyBurnedUnit"):
            continue
        amount = number(text)
        if amount is None:
            continue
        display, unit = _RINGS.get(name, (name, ""))
        found = QuantityValue(quantity=Quantity(value=amount, unit=unit or energy_unit))
        if name == "activeEnergyBurned":
            value = found
        else:
            components.append(ObservationComponent(code=_hk(name, display), value=found))
    record = Observation(
        source_id=stable_id("activity", a.get("dateComponents", "")),
        provenance=prov,
        code=_hk("HKActivitySummary", "Activity rings"),
        category="activity",
        value=value,
        components=tuple(components),
        effective=day,
    )
    return Attached(record, original=raw)


_DATE_ATTRS: Final = ("startDate", "dateIssued", "date", "creationDate", "receivedDate")


def generic(elem: Elem, raw: bytes, prov: Provenance) -> Attached:
    """An element we do not map (a newer export's VisionPrescription, say): kept whole."""
    a = elem.attrs
    when = next((m for m in (moment(a.get(k)) for k in _DATE_ATTRS) if m is not None), None)
    kind = a.get("type") or elem.tag
    identity = [elem.tag, *(f"{k}={v}" for k, v in sorted(a.items()))]
    record = Observation(
        source_id=stable_id("element", *identity),
        provenance=prov,
        code=_hk(kind, elem.tag),
        effective=when,
        performer=a.get("sourceName") or None,
        note=f"Apple Health {elem.tag} element, kept as exported",
    )
    return Attached(record, original=raw)


# Apple's ECG CSV: "Key,Value" lines, a blank line, then one voltage per line. The keys
# are localised; in order they are: name, birth date, recorded date, classification,
# symptoms, software version, device, sample rate (then lead and unit in newer ones).
_ECG_KEYS: Final = {
    "recorded date": 2,
    "classification": 3,
    "symptoms": 4,
    "software version": 5,
    "device": 6,
    "sample rate": 7,
    "lead": 8,
    "unit": 9,
}
_RATE = re.compile(r"([0-9]+(?:[.,][0-9]+)?)")


def ecg(data: bytes, prov: Provenance) -> Attached | None:
    """One ECG recording: classification as the value, the voltages kept as the original."""
    text = data.decode("utf-8-sig", "replace")
    lines = text.splitlines()
    header: dict[int, str] = {}
    samples = 0
    in_header = True
    for position, row in enumerate(csv.reader(io.StringIO("\n".join(lines)))):
        if in_header:
            if not row or not "".join(row).strip():
                in_header = False
                continue
            key = row[0].strip().lower()
            value = ",".join(row[1:]).strip()
            header[_ECG_KEYS.get(key, position)] = value
            continue
        if row and number(",".join(row).strip()) is not None:
            samples += 1
    recorded = moment(header.get(2))
    if recorded is None:
        return None
    rate = _RATE.search(header.get(7, ""))
    components = [
        ObservationComponent(
            code=_hk("voltageSamples", "Voltage samples"),
            value=QuantityValue(quantity=Quantity(value=samples, unit="{count}")),
        )
    ]
    if rate is not None:
        components.append(
            ObservationComponent(
                code=_hk("samplingFrequency", "Sample rate"),
                value=QuantityValue(
                    quantity=Quantity(value=float(rate.group(1).replace(",", ".")), unit="Hz")
                ),
            )
        )
    if header.get(8):
        components.append(
            ObservationComponent(code=_hk("lead", "Lead"), value=StringValue(text=header[8]))
        )
    classification = header.get(3) or None
    code = _hk("HKElectrocardiogramType", "Electrocardiogram")
    record = Observation(
        source_id=stable_id("ecg", header.get(2, "")),
        provenance=prov,
        code=code,
        codes=(code, Code(system=LOINC, code="11524-6", display="EKG study")),
        category="procedure",
        value=StringValue(text=classification) if classification else None,
        components=tuple(components),
        effective=recorded,
        method=" ".join(filter(None, (header.get(6), header.get(5)))) or None,
        note=header.get(4) or None,
    )
    return Attached(record, original=data)
