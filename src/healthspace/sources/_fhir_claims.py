"""Coverage and ExplanationOfBenefit (CARIN Blue Button, Synthea) -> Coverage and Claim.

How an EOB's amounts are read (the rule tests recompute independently):

1. Each ``total`` and ``adjudication`` entry has one category: its first coding in the
   HL7 adjudication or CARIN C4BBAdjudication code system (``submitted``, ``eligible``,
   ``benefit``, ``paidtoprovider``, ``paidtopatient``, ``memberliability``,
   ``paidbypatient``, ``deductible``, ``copay``, ``coinsurance``, ``drugcost``, ...).
   Entries with no such coding fall back to their Blue Button variable through
   ``BLUE_BUTTON_CATEGORIES`` (Synthea and older CMS files code only those). Entries
   for a per-unit rate (``rev_cntr_rate_amt``) are never summed: a rate is not money
   charged.
2. A category's claim amount is the sum of the ``total`` entries in it when there are
   any, else the sum over the item adjudications plus the header adjudications.
3. billed = submitted, else drugcost. allowed = eligible. plan paid = total benefit,
   else ``payment.amount``, else item benefit, else paid to provider + paid to patient.
   patient owes = member liability, else paid by patient, else deductible + copay +
   coinsurance. deductible / copay / coinsurance = their categories.
4. Per item, the same with the item's own adjudications (billed falls back to ``net``).

Denial reasons are the ``reason`` codings of adjudications in the CARIN
``denialreason`` category or carrying a reason, except "N/A" placeholders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Literal, cast

from healthspace.model import Claim, ClaimItem, Code, Coverage, Money
from healthspace.sources._fhir_env import Res
from healthspace.sources._fhir_types import (
    JSON,
    MappingError,
    codings,
    concept,
    concept_label,
    dicts,
    first_code,
    money,
    number,
    period,
    string,
    when,
)
from healthspace.sources.base import Item

__all__ = ["BLUE_BUTTON_CATEGORIES", "STANDARD_SYSTEMS", "map_coverage", "map_eob"]

STANDARD_SYSTEMS: Final = (
    "http://terminology.hl7.org/CodeSystem/adjudication",
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication",
)
_DISCRIMINATOR: Final = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
_BLUE_BUTTON: Final = "https://bluebutton.cms.gov/resources/codesystem/adjudication"

BLUE_BUTTON_CATEGORIES: Final[dict[str, str]] = {
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
_RATES: Final = frozenset({"rev_cntr_rate_amt"})
_CLAIM_TYPES: Final = "http://terminology.hl7.org/CodeSystem/claim-type"

Sums = dict[str, Money]


def _category(entry: JSON) -> str | None:
    codes = codings(entry.get("category"))
    variables = {c.code.rsplit("/", 1)[-1] for c in codes if c.system == _BLUE_BUTTON}
    if variables & _RATES:
        return None
    for code in codes:
        if code.system in STANDARD_SYSTEMS:
            return code.code
    for variable in sorted(variables):
        if variable in BLUE_BUTTON_CATEGORIES:
            return BLUE_BUTTON_CATEGORIES[variable]
    return None


def _add(sums: Sums, category: str, amount: Money, field: str) -> None:
    held = sums.get(category)
    if held is None:
        sums[category] = amount
    elif held.currency != amount.currency:
        raise MappingError(field, "amounts in more than one currency")
    else:
        sums[category] = Money(amount=held.amount + amount.amount, currency=held.currency)


def _sum(entries: list[tuple[JSON, str]]) -> Sums:
    sums: Sums = {}
    for entry, field in entries:
        category = _category(entry)
        amount = money(entry.get("amount"), f"{field}.amount")
        if category is not None and amount is not None:
            _add(sums, category, amount, field)
    return sums


def _plus(*amounts: Money | None) -> Money | None:
    present = [a for a in amounts if a is not None]
    if not present:
        return None
    total = Decimal(0)
    for amount in present:
        if amount.currency != present[0].currency:
            raise MappingError("adjudication", "amounts in more than one currency")
        total += amount.amount
    return Money(amount=total, currency=present[0].currency)


def _owes(sums: Sums) -> Money | None:
    return (
        sums.get("memberliability")
        or sums.get("paidbypatient")
        or _plus(sums.get("deductible"), sums.get("copay"), sums.get("coinsurance"))
    )


def _denials(adjudications: list[JSON]) -> list[Code]:
    found = []
    for adj in adjudications:
        denial = any(c.system == _DISCRIMINATOR for c in codings(adj.get("category")))
        if denial or "reason" in adj:
            found += [c for c in codings(adj.get("reason")) if (c.display or "").upper() != "N/A"]
    return found


def _item(r: Res, item: JSON, n: int) -> ClaimItem:
    field = f"item[{n}]"
    adjudications = dicts(item.get("adjudication"))
    sums = _sum([(a, f"{field}.adjudication[{i}]") for i, a in enumerate(adjudications)])
    service, _, _ = concept(item.get("productOrService"))
    if service is None:
        service, _, _ = concept(item.get("revenue"))
    start = when(item.get("servicedDate"), f"{field}.servicedDate")
    if start is None:
        start, _ = period(item.get("servicedPeriod"), f"{field}.servicedPeriod")
    qty = item.get("quantity")
    sequence = item.get("sequence")
    return ClaimItem(
        sequence=sequence if isinstance(sequence, int) and sequence >= 1 else None,
        service=service,
        text=concept_label(item.get("productOrService")) or concept_label(item.get("revenue")),
        service_date=start,
        quantity=number(qty.get("value"), f"{field}.quantity.value")
        if isinstance(qty, dict)
        else None,
        billed=sums.get("submitted")
        or sums.get("drugcost")
        or money(item.get("net"), f"{field}.net"),
        allowed=sums.get("eligible"),
        plan_paid=sums.get("benefit")
        or _plus(sums.get("paidtoprovider"), sums.get("paidtopatient")),
        patient_owes=_owes(sums),
        denial_reasons=tuple(_denials(adjudications)),
    )


def map_eob(r: Res) -> list[Item]:
    r.resolve(r.get("patient"), "patient")
    items = dicts(r.get("item"))
    totals = _sum([(t, f"total[{i}]") for i, t in enumerate(dicts(r.get("total")))])
    lines: list[tuple[JSON, str]] = [
        (a, f"item[{n}].adjudication[{i}]")
        for n, item in enumerate(items)
        for i, a in enumerate(dicts(item.get("adjudication")))
    ]
    lines += [(a, f"adjudication[{i}]") for i, a in enumerate(dicts(r.get("adjudication")))]
    detail = _sum(lines)
    claim = {**detail, **totals}  # a category's totals win over its line sums
    payment = r.get("payment")
    paid = money(payment.get("amount"), "payment.amount") if isinstance(payment, dict) else None
    lines_out = tuple(_item(r, item, n) for n, item in enumerate(items))
    start, end = period(r.get("billablePeriod"), "billablePeriod")
    served = sorted((i.service_date for i in lines_out if i.service_date), key=lambda d: d.start)
    if start is None and served:
        start, end = served[0], served[-1] if len(served) > 1 else None
    insurance = dicts(r.get("insurance"))
    focal = next(
        (i for i in insurance if i.get("focal") is True), insurance[0] if insurance else {}
    )
    coverage_ref = focal.get("coverage")
    coverage = r.resolve(coverage_ref, "insurance.coverage")
    payer = r.name(r.get("insurer"))
    if coverage is not None and coverage.source_id.startswith(f"{r.source_id}#"):
        # A contained Coverage is no record of its own: keep only who pays.
        payer = payer or next(iter(_payors(r, coverage.resource)), None)
        coverage_id = None
    else:
        coverage_id = r.ref_id(coverage_ref, "insurance.coverage", check=False)
    kinds = [c.code for c in codings(r.get("type")) if c.system == _CLAIM_TYPES]
    identifiers = [string(i.get("value")) for i in dicts(r.get("identifier"))]
    outcome = r.get("outcome")
    all_adjudications = [a for a, _ in lines]
    denials = dict.fromkeys(_denials(all_adjudications))
    record = Claim(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        claim_id=next((i for i in identifiers if i), None) or string(r.get("id")),
        claim_type=kinds[0] if kinds else concept_label(r.get("type")),
        provider=r.name(r.get("provider")),
        facility=r.name(r.get("facility")),
        payer=payer,
        coverage_id=coverage_id,
        service_start=start,
        service_end=end,
        created=r.when("created"),
        billed=claim.get("submitted") or claim.get("drugcost"),
        allowed=claim.get("eligible"),
        plan_paid=totals.get("benefit")
        or paid
        or detail.get("benefit")
        or _plus(detail.get("paidtoprovider"), detail.get("paidtopatient")),
        patient_owes=_owes(claim),
        deductible=claim.get("deductible"),
        copay=claim.get("copay"),
        coinsurance=claim.get("coinsurance"),
        items=lines_out,
        diagnoses=tuple(
            c for d in dicts(r.get("diagnosis")) for c in codings(d.get("diagnosisCodeableConcept"))
        ),
        denial_reasons=tuple(denials),
        outcome=cast(Literal["queued", "complete", "error", "partial"] | None, outcome),
        disposition=string(r.get("disposition")),
    )
    return [r.attach(record)]


def _payors(r: Res, coverage: JSON) -> tuple[str, ...]:
    found = [r.name(p) for p in dicts(coverage.get("payor"))]
    return tuple(n for n in found if n)


def _class_values(classes: list[JSON], kind: str, *, prefer_name: bool) -> list[str]:
    found = []
    for item in classes:
        if first_code([item.get("type")]) != kind:
            continue
        name, value = string(item.get("name")), string(item.get("value"))
        text = (name or value) if prefer_name else (value or name)
        if text:
            found.append(text)
    return found


def map_coverage(r: Res) -> list[Item]:
    r.resolve(r.get("beneficiary"), "beneficiary")
    classes = dicts(r.get("class"))
    plan = [
        v
        for kind in ("subgroup", "plan", "subplan")
        for v in _class_values(classes, kind, prefer_name=True)
    ]
    groups = _class_values(classes, "group", prefer_name=False)
    payers = _payors(r, r.json)
    start, end = period(r.get("period"), "period")
    member = string(r.get("subscriberId"))
    if member is None:
        for ident in dicts(r.get("identifier")):
            if first_code([ident.get("type")]) == "MB":
                member = string(ident.get("value"))
    record = Coverage(
        source_id=r.source_id,
        provenance=r.provenance(),
        status=string(r.get("status")),
        payer=payers[0] if payers else None,
        plan_name=" ".join(plan) or None,
        coverage_type=concept_label(r.get("type")),
        member_id=member,
        group_id=groups[0] if groups else None,
        subscriber=r.name(r.get("subscriber")),
        relationship=first_code([r.get("relationship")]),
        start=start,
        end=end,
        network=string(r.get("network")),
    )
    return [r.attach(record)]
