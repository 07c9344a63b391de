"""What the FHIR sample files should import, computed from their JSON independently.

Nothing here calls the importer: resources are walked with the standard library json
module, identities and EOB amounts are recomputed from the rules the importer
documents (``fhir:`` + fullUrl or ResourceType/id; the adjudication rule in
``_fhir_claims``), so a test comparing the two can fail.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import SHARED_DATA

FHIR_FILES: list[Path] = sorted((SHARED_DATA / "fhir").rglob("*.json")) + sorted(
    (SHARED_DATA / "insurance" / "bluebutton").glob("*.json")
)

TYPE_KIND = {
    "Patient": "patient",
    "Observation": "observation",
    "DiagnosticReport": "report",
    "Condition": "condition",
    "MedicationRequest": "medication",
    "MedicationStatement": "medication",
    "AllergyIntolerance": "allergy",
    "Immunization": "immunization",
    "Encounter": "encounter",
    "Procedure": "procedure",
    "DocumentReference": "document",
    "CarePlan": "care_plan",
    "Coverage": "coverage",
    "ExplanationOfBenefit": "claim",
}


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def resources(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(resource, fullUrl) of every resource, nested Bundles walked, Bundles themselves not."""
    if doc["resourceType"] != "Bundle":
        yield doc, None
        return
    for entry in doc.get("entry", []):
        if "resource" not in entry:
            continue
        resource = entry["resource"]
        if resource["resourceType"] == "Bundle":
            yield from resources(resource)
        else:
            yield resource, entry.get("fullUrl")


def identity(resource: dict[str, Any], full_url: str | None) -> str:
    if full_url:
        return f"fhir:{full_url}"
    return f"fhir:{resource['resourceType']}/{resource['id']}"


def identities_by_kind(doc: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for resource, full_url in resources(doc):
        kind = TYPE_KIND.get(resource["resourceType"])
        if kind is not None:
            found.setdefault(kind, set()).add(identity(resource, full_url))
    return found


def mapped_count(doc: dict[str, Any]) -> int:
    return sum(1 for r, _ in resources(doc) if r["resourceType"] in TYPE_KIND)


def unmapped(doc: dict[str, Any]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for resource, _ in resources(doc):
        if resource["resourceType"] not in TYPE_KIND:
            counts[resource["resourceType"]] += 1
    if doc["resourceType"] == "Bundle":
        for entry in doc.get("entry", []):
            outcome = entry.get("response", {}).get("outcome")
            if outcome is not None:
                counts[outcome["resourceType"]] += 1
    return counts


# -- the documented EOB amount rule, written out again --------------------------------

_STANDARD = {
    "http://terminology.hl7.org/CodeSystem/adjudication",
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication",
}
_BB = "https://bluebutton.cms.gov/resources/codesystem/adjudication"
_BB_FALLBACK = {
    "line_sbmtd_chrg_amt": "submitted",
    "rev_cntr_tot_chrg_amt": "submitted",
    "clm_tot_chrg_amt": "submitted",
    "line_alowd_chrg_amt": "eligible",
    "line_nch_pmt_amt": "benefit",
    "line_prvdr_pmt_amt": "paidtoprovider",
    "rev_cntr_prvdr_pmt_amt": "paidtoprovider",
    "line_bene_pmt_amt": "paidtopatient",
    "rev_cntr_bene_pmt_amt": "paidtopatient",
    "line_bene_ptb_ddctbl_amt": "deductible",
    "rev_cntr_cash_ddctbl_amt": "deductible",
    "rev_cntr_blood_ddctbl_amt": "deductible",
    "line_coinsrnc_amt": "coinsurance",
    "rev_cntr_ptnt_rspnsblty_pmt": "paidbypatient",
}


def _category_of(entry: dict[str, Any]) -> str | None:
    codings = entry.get("category", {}).get("coding", [])
    bb = [c["code"].split("/")[-1] for c in codings if c.get("system") == _BB]
    if "rev_cntr_rate_amt" in bb:
        return None
    standard = [c["code"] for c in codings if c.get("system") in _STANDARD]
    if standard:
        return standard[0]
    known = sorted(v for v in bb if v in _BB_FALLBACK)
    return _BB_FALLBACK[known[0]] if known else None


def _sums(entries: list[dict[str, Any]]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for entry in entries:
        category = _category_of(entry)
        if category is not None and "amount" in entry:
            value = Decimal(str(entry["amount"]["value"]))
            sums[category] = sums.get(category, Decimal(0)) + value
    return sums


def _first(*values: Decimal | None) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def _add(*values: Decimal | None) -> Decimal | None:
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) if present else None


def eob_amounts(eob: dict[str, Any]) -> dict[str, Decimal | None]:
    """billed / allowed / plan_paid / patient_owes of one ExplanationOfBenefit."""
    totals = _sums(eob.get("total", []))
    lines = [a for item in eob.get("item", []) for a in item.get("adjudication", [])]
    detail = _sums(lines + eob.get("adjudication", []))
    claim = {**detail, **totals}
    payment = eob.get("payment", {}).get("amount")
    paid = Decimal(str(payment["value"])) if payment else None
    return {
        "billed": _first(claim.get("submitted"), claim.get("drugcost")),
        "allowed": claim.get("eligible"),
        "plan_paid": _first(
            totals.get("benefit"),
            paid,
            detail.get("benefit"),
            _add(detail.get("paidtoprovider"), detail.get("paidtopatient")),
        ),
        "patient_owes": _first(
            claim.get("memberliability"),
            claim.get("paidbypatient"),
            _add(claim.get("deductible"), claim.get("copay"), claim.get("coinsurance")),
        ),
    }
