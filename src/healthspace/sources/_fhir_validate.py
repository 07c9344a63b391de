"""Validation at the edge: the fhir.resources R4B models, plus required code bindings.

Each resource of a type we map is validated with ``model_validate`` before mapping
(about 4k resources/s: well under a second for the largest Synthea patient). Type,
format and value errors (a date "2023-13-45", a string where an object belongs, an
unknown element) reject the resource. Missing required elements do not: real exports
omit them (every Blue Button EOB lacks ``insurer``), so they are reported as warnings
and the resource is kept. The R4B models do not check required value-set bindings, so
the codes we map into fixed vocabularies (``status``, ``gender``, ...) are checked here.
Errors name the field path and the kind of error, never the value.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Final

from pydantic import ValidationError

from healthspace.sources._fhir_types import JSON, MappingError, as_list

__all__ = ["is_resource_type", "validate"]

_NAME_RE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_INDEX_RE = re.compile(r"\[\d+\]")
_CHOICES_RE = re.compile(r"\[([^\]]*)\]")

# R4 (4.0.1) resource types that R4B renamed or dropped; still valid input here.
_R4_ONLY: Final = frozenset(
    {
        "EffectEvidenceSynthesis",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "RiskEvidenceSynthesis",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
    }
)

_EOB_STATUS: Final = frozenset({"active", "cancelled", "draft", "entered-in-error"})

# Required bindings (FHIR R4) of the coded elements the mapping relies on.
_BINDINGS: Final[dict[str, dict[str, frozenset[str]]]] = {
    "Patient": {"gender": frozenset({"male", "female", "other", "unknown"})},
    "Observation": {
        "status": frozenset(
            {"registered", "preliminary", "final", "amended", "corrected", "cancelled"}
            | {"entered-in-error", "unknown"}
        )
    },
    "DiagnosticReport": {
        "status": frozenset(
            {"registered", "partial", "preliminary", "final", "amended", "corrected"}
            | {"appended", "cancelled", "entered-in-error", "unknown"}
        )
    },
    "MedicationRequest": {
        "status": frozenset(
            {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped"}
            | {"draft", "unknown"}
        ),
        "intent": frozenset(
            {"proposal", "plan", "order", "original-order", "reflex-order", "filler-order"}
            | {"instance-order", "option"}
        ),
    },
    "MedicationStatement": {
        "status": frozenset(
            {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold"}
            | {"unknown", "not-taken"}
        )
    },
    "AllergyIntolerance": {
        "type": frozenset({"allergy", "intolerance"}),
        "category": frozenset({"food", "medication", "environment", "biologic"}),
        "criticality": frozenset({"low", "high", "unable-to-assess"}),
    },
    "Immunization": {"status": frozenset({"completed", "entered-in-error", "not-done"})},
    "Encounter": {
        "status": frozenset(
            {"planned", "arrived", "triaged", "in-progress", "onleave", "finished"}
            | {"cancelled", "entered-in-error", "unknown"}
        )
    },
    "Procedure": {
        "status": frozenset(
            {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed"}
            | {"entered-in-error", "unknown"}
        )
    },
    "DocumentReference": {"status": frozenset({"current", "superseded", "entered-in-error"})},
    "CarePlan": {
        "status": frozenset(
            {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
        ),
        "intent": frozenset({"proposal", "plan", "order", "option"}),
    },
    "Coverage": {"status": _EOB_STATUS},
    "ExplanationOfBenefit": {
        "status": _EOB_STATUS,
        "outcome": frozenset({"queued", "complete", "error", "partial"}),
        "use": frozenset({"claim", "preauthorization", "predetermination"}),
    },
}


@cache
def _model(rtype: str) -> type | None:
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource

    try:
        cls = get_fhir_model_class(rtype)
    except (ValueError, ImportError):
        return None
    if not isinstance(cls, type) or not issubclass(cls, Resource):
        return None
    return cls


def is_resource_type(rtype: object) -> bool:
    """True for the name of a FHIR R4 or R4B resource type."""
    if not isinstance(rtype, str) or _NAME_RE.match(rtype) is None:
        return False
    if rtype in {"Resource", "DomainResource"}:
        return False
    return rtype in _R4_ONLY or _model(rtype) is not None


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "root":
            text += f".{part}" if text else part
    return text or "(resource)"


def _missing_path(error: dict[str, Any]) -> str:
    path = _path(tuple(error["loc"]))
    if error["type"] == "value_error":
        # A missing choice: name it ``diagnosis[x]`` from the choices the message lists.
        listed = _CHOICES_RE.search(str(error.get("msg")))
        names = re.findall(r"'(\w+)'", listed.group(1)) if listed else []
        stem = names[0] if names else ""
        for name in names[1:]:
            while not name.startswith(stem):
                stem = stem[:-1]
        if stem:
            path = f"{path}.{stem}[x]" if path != "(resource)" else f"{stem}[x]"
    return _INDEX_RE.sub("[]", path)


def _tolerated(error: dict[str, object]) -> bool:
    kind = str(error.get("type"))
    if kind in {"missing", "model_field_validation.missing"}:
        return True
    # A required choice element (value[x]) that is absent altogether.
    return kind == "value_error" and "Expect any of field value" in str(error.get("msg"))


def _check_bindings(resource: JSON, rtype: str) -> None:
    for element, allowed in _BINDINGS.get(rtype, {}).items():
        value = resource.get(element)
        values = as_list(value) if isinstance(value, list) else [value]
        for item in values:
            if item is not None and item not in allowed:
                raise MappingError(element, "not a code the FHIR R4 value set allows")


def validate(resource: JSON, rtype: str) -> list[str]:
    """Validate ``resource``; return the paths of missing required elements (tolerated),
    one per occurrence, list indices written ``[]``.

    Raises MappingError(path, reason) for anything else wrong.
    """
    model = _model(rtype)
    missing: list[str] = []
    if model is not None:
        try:
            model.model_validate(resource)  # type: ignore[attr-defined]
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            fatal = [e for e in errors if not _tolerated(dict(e))]
            if fatal:
                more = f"; {len(fatal) - 1} more error(s)" if len(fatal) > 1 else ""
                raise MappingError(
                    _path(tuple(fatal[0]["loc"])),
                    f"fails FHIR R4 validation ({fatal[0]['type']}{more})",
                ) from None
            # Indices dropped so that one element missing from every item is one finding.
            missing = [_missing_path(dict(e)) for e in errors]
        except RecursionError:
            raise MappingError("(resource)", "nested too deeply to validate") from None
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            # Validators of the models raise these on some malformed shapes.
            raise MappingError(
                "(resource)", f"fails FHIR R4 validation ({type(exc).__name__})"
            ) from None
    _check_bindings(resource, rtype)
    return missing
