"""Where each HealthKit sample type goes: metric name, unit, and how values convert.

Types listed in :data:`healthspace.model.METRICS` go to their metric in its unit.
Every other type is kept under a metric named by its HealthKit identifier, in the
unit below when known (so a later export in other units lands in the same series),
else under ``"<identifier>[<unit>]"``: nothing is dropped and no series mixes units.

Category types store HealthKit's own integer codes (sleep stages match
``SLEEP_STAGE_VALUES``); a category value we do not know becomes its own series
``"<identifier>:<value>"`` with value 1, so it is kept and stays distinguishable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from healthspace.model import METRICS, can_convert, convert, metric_for_healthkit, normalize_unit

__all__ = [
    "CATEGORY_CODES",
    "CUMULATIVE",
    "HRV_BEATS",
    "Plan",
    "plan_for",
    "priority_class",
]

_Q = "HKQuantityTypeIdentifier"
HRV_BEATS: Final = "hrv_sdnn.instantaneous_bpm"
# The instantaneous beats listed under an HRV record, as a type name of their own.
HRV_BEATS_TYPE: Final = _Q + "HeartRateVariabilitySDNN.InstantaneousBeatsPerMinute"

# Target units of types outside METRICS (HealthKit's own default units, in UCUM).
_UNITS: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "FlightsClimbed",
            "NikeFuel",
            "PushCount",
            "SwimmingStrokeCount",
            "NumberOfTimesFallen",
            "InhalerUsage",
            "UVExposure",
            "NumberOfAlcoholicBeverages",
        ),
        "{count}",
    ),
    **dict.fromkeys(
        (
            "BodyFatPercentage",
            "WalkingAsymmetryPercentage",
            "WalkingDoubleSupportPercentage",
            "BloodAlcoholContent",
            "PeripheralPerfusionIndex",
            "AppleWalkingSteadiness",
            "AtrialFibrillationBurden",
        ),
        "%",
    ),
    **dict.fromkeys(("Height", "WaistCircumference", "WalkingStepLength"), "cm"),
    **dict.fromkeys(("LeanBodyMass",), "kg"),
    **dict.fromkeys(("BodyMassIndex",), "kg/m2"),
    **dict.fromkeys(
        (
            "DistanceCycling",
            "DistanceSwimming",
            "DistanceWheelchair",
            "DistanceDownhillSnowSports",
            "SixMinuteWalkTestDistance",
            "RunningStrideLength",
            "UnderwaterDepth",
        ),
        "m",
    ),
    **dict.fromkeys(("RunningVerticalOscillation",), "cm"),
    **dict.fromkeys(("RunningGroundContactTime",), "ms"),
    **dict.fromkeys(
        ("WalkingSpeed", "RunningSpeed", "CyclingSpeed", "StairAscentSpeed", "StairDescentSpeed"),
        "m/s",
    ),
    **dict.fromkeys(("RunningPower", "CyclingPower"), "W"),
    **dict.fromkeys(
        ("WalkingHeartRateAverage", "HeartRateRecoveryOneMinute", "CyclingCadence"), "/min"
    ),
    **dict.fromkeys(("BasalEnergyBurned", "DietaryEnergyConsumed"), "kcal"),
    **dict.fromkeys(
        ("AppleExerciseTime", "AppleMoveTime", "AppleStandTime", "TimeInDaylight"), "min"
    ),
    **dict.fromkeys(("BodyTemperature", "BasalBodyTemperature", "WaterTemperature"), "Cel"),
    **dict.fromkeys(("AppleSleepingWristTemperature",), "Cel"),
    **dict.fromkeys(("BloodPressureSystolic", "BloodPressureDiastolic"), "mm[Hg]"),
    **dict.fromkeys(
        ("EnvironmentalAudioExposure", "HeadphoneAudioExposure", "EnvironmentalSoundReduction"),
        "dB[SPL]",
    ),
    **dict.fromkeys(("VO2Max",), "mL/kg/min"),
    **dict.fromkeys(("ForcedVitalCapacity", "ForcedExpiratoryVolume1"), "L"),
    **dict.fromkeys(("PeakExpiratoryFlowRate",), "L/min"),
    **dict.fromkeys(("DietaryWater",), "mL"),
    **dict.fromkeys(("InsulinDelivery",), "[IU]"),
    **dict.fromkeys(("ElectrodermalActivity",), "uS"),
    **dict.fromkeys(
        (
            "DietaryProtein",
            "DietaryCarbohydrates",
            "DietaryFatTotal",
            "DietaryFatSaturated",
            "DietaryFatMonounsaturated",
            "DietaryFatPolyunsaturated",
            "DietaryFiber",
            "DietarySugar",
        ),
        "g",
    ),
    **dict.fromkeys(
        (
            "DietaryCholesterol",
            "DietarySodium",
            "DietaryPotassium",
            "DietaryCalcium",
            "DietaryIron",
            "DietaryMagnesium",
            "DietaryZinc",
            "DietaryVitaminC",
            "DietaryVitaminE",
            "DietaryVitaminB6",
            "DietaryCaffeine",
            "DietaryNiacin",
            "DietaryPhosphorus",
        ),
        "mg",
    ),
    **dict.fromkeys(
        ("DietaryVitaminA", "DietaryVitaminD", "DietaryVitaminB12", "DietaryFolate"), "ug"
    ),
}

# Summed over time (Apple's "cumulative" quantity types): the source-priority rule
# applies to them so a step counted by the watch and the phone is counted once.
CUMULATIVE: Final[frozenset[str]] = frozenset(
    _Q + name
    for name in (
        "StepCount",
        "DistanceWalkingRunning",
        "ActiveEnergyBurned",
        "BasalEnergyBurned",
        "FlightsClimbed",
        "DistanceCycling",
        "DistanceSwimming",
        "DistanceWheelchair",
        "DistanceDownhillSnowSports",
        "PushCount",
        "SwimmingStrokeCount",
        "NikeFuel",
        "AppleExerciseTime",
        "AppleMoveTime",
        "AppleStandTime",
        "TimeInDaylight",
        "DietaryEnergyConsumed",
        "DietaryWater",
    )
) | frozenset(_Q + name for name, unit in _UNITS.items() if name.startswith("Dietary"))

# HealthKit's raw values of category samples, by the names exports write.
_C = "HKCategoryValue"
CATEGORY_CODES: Final[dict[bytes, float]] = {
    (_C + name).encode(): float(code)
    for name, code in {
        "SleepAnalysisInBed": 0,
        "SleepAnalysisAsleep": 1,
        "SleepAnalysisAsleepUnspecified": 1,
        "SleepAnalysisAwake": 2,
        "SleepAnalysisAsleepCore": 3,
        "SleepAnalysisAsleepDeep": 4,
        "SleepAnalysisAsleepREM": 5,
        "NotApplicable": 0,
        "AppleStandHourStood": 0,
        "AppleStandHourIdle": 1,
        "SeverityUnspecified": 0,
        "SeverityNotPresent": 1,
        "SeverityMild": 2,
        "SeverityModerate": 3,
        "SeveritySevere": 4,
        "PresencePresent": 0,
        "PresenceNotPresent": 1,
        "MenstrualFlowUnspecified": 1,
        "MenstrualFlowLight": 2,
        "MenstrualFlowMedium": 3,
        "MenstrualFlowHeavy": 4,
        "MenstrualFlowNone": 5,
        "OvulationTestResultNegative": 1,
        "OvulationTestResultLuteinizingHormoneSurge": 2,
        "OvulationTestResultPositive": 2,
        "OvulationTestResultIndeterminate": 3,
        "OvulationTestResultEstrogenSurge": 4,
        "CervicalMucusQualityDry": 1,
        "CervicalMucusQualitySticky": 2,
        "CervicalMucusQualityCreamy": 3,
        "CervicalMucusQualityWatery": 4,
        "CervicalMucusQualityEggWhite": 5,
        "AppetiteChangesUnspecified": 0,
        "AppetiteChangesNoChange": 1,
        "AppetiteChangesDecreased": 2,
        "AppetiteChangesIncreased": 3,
        "EnvironmentalAudioExposureEventMomentaryLimit": 1,
        "HeadphoneAudioExposureEventSevenDayLimit": 1,
        "LowCardioFitnessEventLowFitness": 1,
        "AppleWalkingSteadinessEventInitialLow": 1,
        "AppleWalkingSteadinessEventInitialVeryLow": 2,
        "AppleWalkingSteadinessEventRepeatLow": 3,
        "AppleWalkingSteadinessEventRepeatVeryLow": 4,
    }.items()
}

# Unit spellings Apple writes that UCUM reads otherwise (or not at all).
_APPLE_UNITS: Final[dict[str, str]] = {
    "count": "{count}",
    "count/min": "/min",
    "Cal": "kcal",
    "kcal": "kcal",
    "mL/min·kg": "mL/kg/min",
    "mL/(kg·min)": "mL/kg/min",
    "mL/kg·min": "mL/kg/min",
    "km/hr": "km/h",
    "mi/hr": "[mi_i]/h",
    "dBASPL": "dB[SPL]",
    "dBHL": "dB[HL]",
    "degF": "[degF]",
    "degC": "Cel",
    "mmHg": "mm[Hg]",
    "IU": "[IU]",
    "mcS": "uS",
    "µS": "uS",
    "st": "[stone_av]",
}

# Exact factors for the conversions that matter at volume, so the common path never
# loads the UCUM parser; everything else goes through model.units (and is cached).
_FACTORS: Final[dict[tuple[str, str], float]] = {
    ("{count}", "{steps}"): 1.0,
    ("km", "m"): 1000.0,
    ("[mi_i]", "m"): 1609.344,
    ("[ft_i]", "m"): 0.3048,
    ("[in_i]", "m"): 0.0254,
    ("cm", "m"): 0.01,
    ("[yd_i]", "m"): 0.9144,
    ("kJ", "kcal"): 1 / 4.184,
    ("[lb_av]", "kg"): 0.45359237,
    ("g", "kg"): 0.001,
    ("[oz_av]", "kg"): 0.028349523125,
    ("[stone_av]", "kg"): 6.35029318,
    ("s", "ms"): 1000.0,
}


@dataclass(frozen=True, slots=True)
class Plan:
    """How one (type, unit) becomes samples: ``stored = value * scale + shift``."""

    metric: str
    unit: str
    scale: float = 1.0
    shift: float = 0.0
    cumulative: bool = False
    sleep: bool = False


def apple_unit(unit: str) -> str:
    """An Apple unit spelling as UCUM (glucose's inline molar mass stays for the factor)."""
    if unit in _APPLE_UNITS:
        return _APPLE_UNITS[unit]
    return normalize_unit(unit.replace("·", "."))


def _molar_mass(unit: str) -> float | None:
    """Apple writes molar glucose as ``mmol<180.15588000005408>/L``."""
    if "<" not in unit or ">" not in unit:
        return None
    try:
        return float(unit[unit.index("<") + 1 : unit.index(">")])
    except ValueError:
        return None


def _affine(source: str, target: str, raw_unit: str) -> tuple[float, float] | None:
    """(scale, shift) converting ``source`` to ``target``; None if they do not convert."""
    if source == target:
        return 1.0, 0.0
    if (source, target) in _FACTORS:
        return _FACTORS[source, target], 0.0
    mass = _molar_mass(raw_unit)
    if mass is not None and target == "mg/dL" and source in ("mmol/L", "mol/L", "umol/L"):
        per_mmol = {"mmol/L": 1.0, "mol/L": 1000.0, "umol/L": 0.001}[source]
        return per_mmol * mass / 10.0, 0.0  # mmol/L * g/mol = mg/L; /10 -> mg/dL
    if not can_convert(source, target):
        return None
    zero = convert(0.0, source, target)
    return convert(1.0, source, target) - zero, zero


@cache
def plan_for(hk_type: str, unit: str) -> Plan:
    """Where samples of ``hk_type`` recorded in ``unit`` go (cached: a few per export)."""
    if hk_type == HRV_BEATS_TYPE:
        return Plan(HRV_BEATS, "/min")
    metric = metric_for_healthkit(hk_type)
    is_category = hk_type.startswith("HKCategoryTypeIdentifier")
    if metric == "sleep":
        return Plan("sleep", "", sleep=True)
    if is_category:
        return Plan(hk_type, "")
    cumulative = hk_type in CUMULATIVE
    source = apple_unit(unit)
    # HealthKit's percent is a fraction (0.97); stored as a percentage (97).
    fraction = unit == "%"
    scale_pct = 100.0 if fraction else 1.0
    if metric is not None:
        target = METRICS[metric].unit
        factors = (1.0, 0.0) if fraction and target == "%" else _affine(source, target, unit)
        if factors is not None:
            return Plan(metric, target, factors[0] * scale_pct, factors[1], cumulative)
        return Plan(f"{metric}[{source}]", source, scale_pct, 0.0, cumulative)
    short = hk_type.removeprefix(_Q)
    known = _UNITS.get(short) if hk_type.startswith(_Q) else None
    if known is not None:
        factors = (1.0, 0.0) if fraction and known == "%" else _affine(source, known, unit)
        if short == "BodyMassIndex" and source == "{count}":
            factors = (1.0, 0.0)  # Apple writes BMI with the unit "count"
        if factors is not None:
            return Plan(hk_type, known, factors[0] * scale_pct, factors[1], cumulative)
    if not unit:
        return Plan(hk_type, "", 1.0, 0.0, cumulative)
    return Plan(f"{hk_type}[{source}]", source, scale_pct, 0.0, cumulative)


def priority_class(source_name: str, device_names: set[str]) -> int:
    """0 for an Apple Watch, 1 for an iPhone, 2 for anything else (apps, scales, rings).

    The device's own name decides (a watch may be named anything by its owner);
    the source name is the fallback when a record carries no device.
    """
    names = device_names or {source_name}
    if any("watch" in name.lower() for name in names):
        return 0
    if any("iphone" in name.lower() for name in names):
        return 1
    return 2
