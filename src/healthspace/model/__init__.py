"""Pure typed objects for health data: codes, units, dates, records, samples.

No I/O here (beyond reading the tables shipped in ``model/data``); every layer may
import this package.
"""

from __future__ import annotations

from healthspace.model.allergy import (
    Allergy,
    Reaction,
)
from healthspace.model.analytes import (
    Analyte,
    analyte_info,
)
from healthspace.model.care_plan import (
    CarePlan,
    CarePlanActivity,
)
from healthspace.model.coding import (
    CPT,
    CVX,
    HEALTHKIT,
    ICD9CM,
    ICD10CM,
    LOINC,
    NDC,
    OID_SYSTEMS,
    RXNORM,
    SNOMED,
    UCUM,
    Code,
    is_healthkit_identifier,
    is_valid_loinc,
    is_valid_rxnorm,
    is_valid_snomed,
    system_from_oid,
)
from healthspace.model.condition import (
    Condition,
)
from healthspace.model.coverage import (
    Claim,
    ClaimItem,
    Coverage,
)
from healthspace.model.document import (
    Document,
)
from healthspace.model.encounter import (
    Encounter,
)
from healthspace.model.immunization import (
    Immunization,
)
from healthspace.model.item import (
    Attached,
)
from healthspace.model.medication import (
    Medication,
    PeriodUnit,
    Schedule,
)
from healthspace.model.observation import (
    BooleanValue,
    CodedValue,
    DateTimeValue,
    Observation,
    ObservationComponent,
    ObservationValue,
    QuantityValue,
    RangeValue,
    RatioValue,
    ReferenceRange,
    StringValue,
)
from healthspace.model.patient import (
    Patient,
)
from healthspace.model.procedure import (
    Procedure,
)
from healthspace.model.provenance import (
    Provenance,
    Sha256Hex,
)
from healthspace.model.quantity import (
    Comparator,
    FiniteFloat,
    Money,
    Quantity,
)
from healthspace.model.record import (
    Record,
    SummaryValue,
)
from healthspace.model.records import (
    RECORD_CLASSES,
    RECORD_KINDS,
    AnyRecord,
    ModelItem,
    record_class,
    record_from_json,
    record_to_json,
)
from healthspace.model.report import (
    DiagnosticReport,
)
from healthspace.model.sample import (
    METRICS,
    OVERLAP_SUFFIX,
    SLEEP_STAGE_VALUES,
    Aggregation,
    MetricInfo,
    Sample,
    SampleBatch,
    metric_for_healthkit,
)
from healthspace.model.timing import (
    PartialDateTime,
    Precision,
)
from healthspace.model.units import (
    UnitConversionError,
    can_convert,
    canonical_unit,
    convert,
    is_ucum,
    normalize_unit,
)
from healthspace.model.wellness import (
    NutritionDay,
    SleepSession,
    SleepStage,
    SleepStagePeriod,
    Workout,
)

__all__ = [
    "CPT",
    "CVX",
    "HEALTHKIT",
    "ICD9CM",
    "ICD10CM",
    "LOINC",
    "METRICS",
    "NDC",
    "OID_SYSTEMS",
    "OVERLAP_SUFFIX",
    "RECORD_CLASSES",
    "RECORD_KINDS",
    "RXNORM",
    "SLEEP_STAGE_VALUES",
    "SNOMED",
    "UCUM",
    "Aggregation",
    "Allergy",
    "Analyte",
    "AnyRecord",
    "Attached",
    "BooleanValue",
    "CarePlan",
    "CarePlanActivity",
    "Claim",
    "ClaimItem",
    "Code",
    "CodedValue",
    "Comparator",
    "Condition",
    "Coverage",
    "DateTimeValue",
    "DiagnosticReport",
    "Document",
    "Encounter",
    "FiniteFloat",
    "Immunization",
    "Medication",
    "MetricInfo",
    "ModelItem",
    "Money",
    "NutritionDay",
    "Observation",
    "ObservationComponent",
    "ObservationValue",
    "PartialDateTime",
    "Patient",
    "PeriodUnit",
    "Precision",
    "Procedure",
    "Provenance",
    "Quantity",
    "QuantityValue",
    "RangeValue",
    "RatioValue",
    "Reaction",
    "Record",
    "ReferenceRange",
    "Sample",
    "SampleBatch",
    "Schedule",
    "Sha256Hex",
    "SleepSession",
    "SleepStage",
    "SleepStagePeriod",
    "StringValue",
    "SummaryValue",
    "UnitConversionError",
    "Workout",
    "analyte_info",
    "can_convert",
    "canonical_unit",
    "convert",
    "is_healthkit_identifier",
    "is_ucum",
    "is_valid_loinc",
    "is_valid_rxnorm",
    "is_valid_snomed",
    "metric_for_healthkit",
    "normalize_unit",
    "record_class",
    "record_from_json",
    "record_to_json",
    "system_from_oid",
]
