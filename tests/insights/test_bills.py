"""Explanation of benefits: Blue Button EOB totals against the files' own amounts, denials."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from healthspace.insights.bills import AMOUNTS, bill_summary
from healthspace.model import (
    Claim,
    ClaimItem,
    Code,
    Money,
    PartialDateTime,
    Provenance,
)
from healthspace.sources.pipeline import import_paths
from healthspace.store import RecordRepository, SpaceSession, ingest
from tests.conftest import SHARED_DATA

BLUE_BUTTON = SHARED_DATA / "insurance" / "bluebutton"
EOB_FILES = sorted(p for p in BLUE_BUTTON.glob("eob_*.json"))

# CARIN / HL7 adjudication categories: an entry's meaning is its coding in one of these.
STANDARD = (
    "http://terminology.hl7.org/CodeSystem/adjudication",
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication",
)
BB_VARIABLES = "https://bluebutton.cms.gov/resources/codesystem/adjudication"


def _variable(entry: dict[str, Any]) -> set[str]:
    codes = entry.get("category", {}).get("coding", [])
    return {c["code"].rsplit("/", 1)[-1] for c in codes if c["system"] == BB_VARIABLES}


def _meaning(entry: dict[str, Any]) -> str | None:
    # A revenue-centre rate is a price per unit, not money charged: never summed.
    if "rev_cntr_rate_amt" in _variable(entry):
        return None
    for c in entry.get("category", {}).get("coding", []):
        if c["system"] in STANDARD:
            return str(c["code"])
    # Inpatient lines name their total charge only by the Blue Button variable.
    return "submitted" if "rev_cntr_tot_chrg_amt" in _variable(entry) else None


def _sums(entries: list[dict[str, Any]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        meaning = _meaning(entry)
        if meaning is not None and "amount" in entry:
            out[meaning] += Decimal(str(entry["amount"]["value"]))
    return dict(out)


def expected_amounts(eob: dict[str, Any]) -> dict[str, Decimal | None]:
    """billed, allowed, plan paid and owed, from the EOB's own total/adjudication amounts."""
    totals = _sums(eob.get("total", []))
    lines = _sums(
        [a for item in eob.get("item", []) for a in item.get("adjudication", [])]
        + eob.get("adjudication", [])
    )
    claim = {**lines, **totals}  # a category's totals stand for the claim when given

    def plus(*names: str) -> Decimal | None:
        found = [claim[n] for n in names if n in claim]
        return sum(found, Decimal(0)) if found else None

    payment = eob.get("payment", {}).get("amount")
    paid = totals.get("benefit")
    if paid is None and payment is not None:
        paid = Decimal(str(payment["value"]))
    if paid is None:
        paid = lines.get("benefit")
    if paid is None:
        found = [lines[n] for n in ("paidtoprovider", "paidtopatient") if n in lines]
        paid = sum(found, Decimal(0)) if found else None
    owes = claim.get("memberliability")
    if owes is None:
        owes = claim.get("paidbypatient")
    if owes is None:
        owes = plus("deductible", "copay", "coinsurance")
    billed = claim.get("submitted")
    if billed is None:
        billed = claim.get("drugcost")
    return {
        "billed": billed,
        "allowed": claim.get("eligible"),
        "plan_paid": paid,
        "patient_owes": owes,
    }


def _year(eob: dict[str, Any]) -> int:
    start = eob.get("billablePeriod", {}).get("start")
    if start is None:
        dates = [
            item.get("servicedDate") or item.get("servicedPeriod", {}).get("start")
            for item in eob.get("item", [])
        ]
        start = min(d for d in dates if d)
    return int(start[:4])


def eobs() -> list[dict[str, Any]]:
    out = []
    for path in EOB_FILES:
        doc = json.loads(Path(path).read_text())
        if doc["resourceType"] == "Bundle":
            out += [e["resource"] for e in doc.get("entry", [])]
        else:
            out.append(doc)
    return [r for r in out if r["resourceType"] == "ExplanationOfBenefit"]


def _key(amounts: dict[str, Decimal | None]) -> tuple[str, ...]:
    return tuple("-" if amounts[n] is None else f"{amounts[n]:.2f}" for n in AMOUNTS)


def test_blue_button_totals_equal_the_files_own_amounts(health: SpaceSession) -> None:
    report = import_paths(health, EOB_FILES)
    assert report.errors == []
    resources = eobs()
    summary = bill_summary(health)
    assert len(summary.claims) == len(resources)
    # Claim by claim (as a multiset: the synthetic ids repeat with a sign flipped).
    expected = [expected_amounts(r) for r in resources]
    assert Counter(_key(c.amounts) for c in summary.claims) == Counter(_key(e) for e in expected)
    # Overall and per year: the sums of the files' own amounts, and how many gave each.
    (overall,) = summary.overall
    assert overall.claims == len(resources)
    for name in AMOUNTS:
        known = [e[name] for e in expected if e[name] is not None]
        assert overall.amounts[name] == sum(known, Decimal(0)), name
        assert overall.known[name] == len(known), name
    per_year: dict[int, list[dict[str, Decimal | None]]] = defaultdict(list)
    for resource, amounts in zip(resources, expected, strict=True):
        per_year[_year(resource)].append(amounts)
    assert set(summary.by_year) == set(per_year)
    for year, group in per_year.items():
        (totals,) = summary.by_year[year]
        assert totals.claims == len(group)
        for name in AMOUNTS:
            assert totals.amounts[name] == sum(
                (e[name] for e in group if e[name] is not None), Decimal(0)
            )
    # Every fact cites claims that exist.
    ids = {s.record_id for s in RecordRepository(health).list(kind="claim")}
    assert {c.record_id for f in summary.facts for c in f.citations} == ids
    # The one placeholder denial reason in the files ("N/A") is not a denial.
    assert overall.denied == 0


def _money(value: str, currency: str = "USD") -> Money:
    return Money(amount=Decimal(value), currency=currency)


def test_denials_line_sums_and_currencies(health: SpaceSession) -> None:
    prov = Provenance(source="test")
    carc = "https://x12.org/codes/claim-adjustment-reason-codes"
    claims = [
        # Header amounts missing: the lines' amounts are summed.
        Claim(
            source_id="c1",
            claim_id="C1",
            claim_type="professional",
            service_start=PartialDateTime.parse("2023-03-01"),
            items=(
                ClaimItem(
                    sequence=1,
                    billed=_money("120.00"),
                    plan_paid=_money("80.00"),
                    patient_owes=_money("20.00"),
                ),
                ClaimItem(
                    sequence=2,
                    billed=_money("80.00"),
                    plan_paid=_money("0"),
                    patient_owes=_money("0"),
                    denial_reasons=(Code(system=carc, code="96", display="Non-covered charge(s)"),),
                ),
            ),
            provenance=prov,
        ),
        # Denied as a whole, with a placeholder reason that is dropped.
        Claim(
            source_id="c2",
            claim_id="C2",
            service_start=PartialDateTime.parse("2023-07-15"),
            billed=_money("900.00"),
            allowed=_money("0"),
            plan_paid=_money("0"),
            patient_owes=_money("900.00"),
            denial_reasons=(
                Code(system=carc, code="0", display="N/A"),
                Code(system=carc, code="197", display="Precertification absent"),
            ),
            outcome="complete",
            provenance=prov,
        ),
        # Another currency is totalled apart.
        Claim(
            source_id="c3",
            claim_id="C3",
            service_start=PartialDateTime.parse("2024-01-10"),
            billed=_money("50.00", "EUR"),
            plan_paid=_money("35.00", "EUR"),
            patient_owes=_money("15.00", "EUR"),
            provenance=prov,
        ),
    ]
    ingest(health, claims, source="test", input_sha256="b" * 64)
    summary = bill_summary(health)
    bills = {b.claim_id: b for b in summary.claims}
    assert bills["C1"].amounts["billed"] == Decimal("200.00")
    assert bills["C1"].amounts["allowed"] is None
    assert bills["C1"].from_lines == ("billed", "plan_paid", "patient_owes")
    assert bills["C1"].partly_denied
    assert not bills["C1"].denied
    assert [(d.code, d.line) for d in bills["C1"].denials] == [("96", 2)]
    assert bills["C2"].denied
    assert [d.code for d in bills["C2"].denials] == ["197"]
    (y2023,) = summary.by_year[2023]
    assert y2023.amounts["billed"] == Decimal("1100.00")
    assert y2023.amounts["patient_owes"] == Decimal("920.00")
    assert (y2023.denied, y2023.partly_denied) == (1, 1)
    currencies = {t.currency: t for t in summary.overall}
    assert set(currencies) == {"EUR", "USD"}
    assert currencies["EUR"].amounts["plan_paid"] == Decimal("35.00")
    denial_fact = next(f for f in summary.facts if f.values.get("claim_id") == "C2")
    assert "197 (Precertification absent)" in denial_fact.statement
    assert "N/A" not in denial_fact.statement
    assert denial_fact.severity == "notice"
    year_fact = next(
        f for f in summary.facts if f.topic == "bill.year" and f.values["year"] == 2023
    )
    assert "$1100.00" in year_fact.statement
    assert "allowed" in year_fact.statement
