"""Plan comparison: the cost model against hand arithmetic, QHP files, use from history."""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal as D

import pytest

from healthspace.errors import SourceError
from healthspace.insights.insurance import (
    CostShare,
    EnteredTerms,
    PlanTerms,
    Usage,
    UtilisationProfile,
    compare_plans,
    compare_plans_for,
    plan_terms_from_qhp,
    read_qhp_drugs,
    read_qhp_plans,
    utilisation_history,
    yearly_cost,
)
from healthspace.model import (
    LOINC,
    RXNORM,
    Claim,
    Code,
    Encounter,
    Medication,
    Money,
    Observation,
    PartialDateTime,
    Provenance,
    Quantity,
    QuantityValue,
)
from healthspace.store import SpaceSession, ingest
from tests.conftest import SHARED_DATA

QHP = SHARED_DATA / "insurance" / "cms-qhp"
PRICES = {
    "primary_care": D(150),
    "specialist": D(250),
    "emergency": D(2200),
    "inpatient": D(15000),
    "lab": D(60),
    "generic_drug": D(15),
    "non_preferred_brand_drug": D(350),
}

PLAN_A = PlanTerms(
    plan_id="A",
    name="Plan A",
    premium_monthly=D(450),
    deductible=D(500),
    oop_max=D(4000),
    shares={
        "primary_care": CostShare(copay=D(20), deductible_applies=False),
        "specialist": CostShare(copay=D(50), deductible_applies=False),
        "emergency": CostShare(copay=D(250), deductible_applies=True),
        "generic_drug": CostShare(copay=D(10), deductible_applies=False),
    },
    # Everything else: deductible, then 20% coinsurance.
)
PLAN_B = PlanTerms(
    plan_id="B",
    name="Plan B",
    premium_monthly=D(250),
    deductible=D(4000),
    oop_max=D(8000),
    shares={"generic_drug": CostShare(copay=D(15), deductible_applies=True)},
    default_share=CostShare(coinsurance=D("0.4")),
)
PROFILE = UtilisationProfile(
    low=Usage({"primary_care": D(2)}, {"860975": D(12)}),
    expected=Usage({"primary_care": D(4), "specialist": D(2), "lab": D(3)}, {"860975": D(12)}),
    high=Usage(
        {
            "primary_care": D(6),
            "specialist": D(4),
            "emergency": D(1),
            "inpatient": D(1),
            "lab": D(6),
        },
        {"860975": D(12)},
    ),
    basis="given in the test",
)


def test_scenario_costs_equal_the_hand_calculation() -> None:
    result = compare_plans([PLAN_A, PLAN_B], PROFILE, prices=PRICES)
    a, b = result.costs["A"], result.costs["B"]

    # Plan A, premiums 450 * 12 = 5400.
    # low: 2 primary visits at the $20 copay = 40; 12 generic fills at the $10 copay = 120.
    assert a["low"].out_of_pocket == D(2 * 20 + 12 * 10) == D(160)
    assert a["low"].total == D(5400 + 160)
    # expected: primary 4 * 20 = 80; specialist 2 * 50 = 100; 3 labs of $60 all go to the
    # $500 deductible = 180 (deductible left 320); 12 fills * 10 = 120.
    assert a["expected"].out_of_pocket == D(80 + 100 + 180 + 120) == D(480)
    assert a["expected"].total == D(5400 + 480)
    # high: primary 6 * 20 = 120; specialist 4 * 50 = 200; ER: the whole $500 deductible,
    # then the $250 copay = 750; hospital: 20% of 15000 = 3000; 6 labs at 20% of 60 = 72;
    # fills 120. Sum 4262, above the $4000 out-of-pocket maximum: 4000.
    assert a["high"].by_service["emergency"] == D(500 + 250)
    assert a["high"].by_service["inpatient"] == D("0.2") * 15000
    assert 120 + 200 + 750 + 3000 + 72 + 120 == 4262
    assert a["high"].out_of_pocket == D(4000)
    assert a["high"].hit_oop_max
    assert a["high"].total == D(5400 + 4000)

    # Plan B, premiums 250 * 12 = 3000; deductible 4000 then 40%; fills $15 after it.
    # low: 2 visits * 150 = 300 and 12 fills * 15 = 180, all toward the deductible.
    assert b["low"].out_of_pocket == D(300 + 180)
    assert b["low"].total == D(3000 + 480)
    # expected: 4 * 150 + 2 * 250 + 3 * 60 + 12 * 15 = 600 + 500 + 180 + 180, all deductible.
    assert b["expected"].out_of_pocket == D(600 + 500 + 180 + 180) == D(1460)
    assert b["expected"].total == D(3000 + 1460)
    # high: 6 * 150 = 900 and 4 * 250 = 1000 (deductible left 4000 - 1900 = 2100);
    # ER 2100 + 40% of the other 100 = 2140; hospital 40% of 15000 = 6000;
    # labs 6 * 24 = 144; fills 12 * 15 = 180. Sum 10364 > 8000: capped.
    assert b["high"].by_service["emergency"] == D(2100) + D("0.4") * 100
    assert b["high"].out_of_pocket == D(8000)
    assert b["high"].total == D(3000 + 8000)


def test_pros_and_cons_table() -> None:
    result = compare_plans([PLAN_A, PLAN_B], PROFILE, prices=PRICES)
    rows = {row.name: row for row in result.table}
    assert rows["monthly premium"].best == ("B",)
    assert rows["deductible"].best == ("A",)
    assert rows["worst case a year (premiums + out-of-pocket maximum)"].values == {
        "A": D(450 * 12 + 4000),
        "B": D(250 * 12 + 8000),
    }
    assert set(result.pros["A"]) == {
        "deductible",
        "out-of-pocket maximum",
        "worst case a year (premiums + out-of-pocket maximum)",
        "high-use yearly cost",
    }
    assert set(result.pros["B"]) == {
        "monthly premium",
        "low-use yearly cost",
        "expected-use yearly cost",
    }
    assert result.cons["A"] == result.pros["B"]
    cheapest = next(f for f in result.facts if f.topic == "insurance.cheapest_expected")
    assert cheapest.values["plan_id"] == "B"
    plan_a = next(f for f in result.facts if f.values.get("plan_id") == "A")
    assert "$5880" in plan_a.statement
    assert json.dumps(result.to_dict())  # JSON-ready


def test_fractional_use_scales_price_and_copay() -> None:
    usage = Usage({"primary_care": D("2.5")})
    # Two visits at the $20 copay, then half a visit: price 75, copay 10.
    assert yearly_cost(PLAN_A, usage, PRICES).out_of_pocket == D(20 + 20 + 10)
    # Plan B: 150 + 150 + 75 toward the deductible.
    assert yearly_cost(PLAN_B, usage, PRICES).out_of_pocket == D(375)


def test_qhp_plans_parse() -> None:
    raw = (QHP / "plans.json").read_bytes()
    plans = read_qhp_plans(raw, name="plans.json")
    doc = json.loads(raw)
    assert [p.plan_id for p in plans] == [p["plan_id"] for p in doc]
    assert [p.marketing_name for p in plans] == [p["marketing_name"] for p in doc]
    metals = Counter(
        m.group(1).title()
        for p in doc
        if (m := re.search(r"\b(Bronze|Silver|Gold|Platinum|Catastrophic)\b", p["marketing_name"]))
    )
    assert Counter(p.metal_level for p in plans) == metals
    for plan, src in zip(plans, doc, strict=True):
        formulary = src["formulary"] if isinstance(src["formulary"], list) else [src["formulary"]]
        assert [t.drug_tier for t in plan.tiers] == [f["drug_tier"] for f in formulary]
        assert plan.network_tiers == tuple(n["network_tier"] for n in src["network"])


def test_qhp_plans_compared_with_entered_terms() -> None:
    plans = read_qhp_plans((QHP / "plans.json").read_bytes(), name="plans.json")
    raw_drugs = (QHP / "drugs-1.json").read_bytes()
    drugs = read_qhp_drugs(raw_drugs, name="drugs-1.json")
    assert [d.rxnorm_id for d in drugs] == [d["rxnorm_id"] for d in json.loads(raw_drugs)]
    by_id = {p.plan_id: p for p in plans}
    gold = plan_terms_from_qhp(
        by_id["12345XX9876543"],
        EnteredTerms(
            premium_monthly=D(500),
            deductible=D(1000),
            oop_max=D(6000),
            shares={"primary_care": CostShare(copay=D(25), deductible_applies=False)},
        ),
        drugs,
    )
    bronze = plan_terms_from_qhp(
        by_id["12345XX9876541"],
        EnteredTerms(premium_monthly=D(300), deductible=D(6000), oop_max=D(9000)),
        drugs,
    )
    # Generic tier, retail: $20 copay after the deductible, 10% coinsurance.
    assert gold.shares["generic_drug"] == CostShare(
        copay=D("20.0"), coinsurance=D("0.10"), deductible_applies=True
    )
    assert gold.metal_level == "Gold"
    assert gold.restricted_drugs == ("248656",)  # azithromycin: quantity limit
    assert bronze.drug_service("248656") is None  # not on the bronze formulary
    usage = Usage({"primary_care": D(2)}, {"248656": D(2), "209459": D(1)})
    profile = UtilisationProfile(usage, usage, usage, basis="given in the test")
    result = compare_plans([gold, bronze], profile, prices=PRICES)
    g, b = result.costs[gold.plan_id]["expected"], result.costs[bronze.plan_id]["expected"]
    # Gold: 2 visits * $25 = 50; three $15 generic fills all go to the deductible = 45.
    assert g.out_of_pocket == D(50 + 45)
    assert g.total == D(500 * 12 + 95)
    # Bronze: visits 2 * 150 = 300 and acetaminophen 15 toward the deductible; two
    # azithromycin fills off the formulary, paid in full as non-preferred brand: 2 * 350.
    assert b.uncovered == D(700)
    assert b.out_of_pocket == D(300 + 15 + 700)
    assert b.total == D(300 * 12 + 1015)
    rows = {row.name: row for row in result.table}
    assert rows["your drugs on the formulary"].best == (gold.plan_id,)
    assert rows[
        "your drugs needing prior authorization, step therapy or a quantity limit"
    ].best == (bronze.plan_id,)


@pytest.mark.parametrize(
    ("data", "place"),
    [
        (b"{not json", "byte"),
        (b'{"plan_id": "x"}', "top level"),
        (b'[{"plan_id": "X1", "marketing_name": 5}]', "plan 0 (X1)"),
        (
            b'[{"plan_id": "X1", "marketing_name": "n", "formulary": {"drug_tier": "GENERIC",'
            b' "cost_sharing": [{"pharmacy_type": "1-MONTH-IN-RETAIL", "copay_amount": -3}]}}]',
            "plan 0 (X1), formulary 0, cost_sharing 0",
        ),
    ],
)
def test_bad_plan_files_name_file_and_place(data: bytes, place: str) -> None:
    with pytest.raises(SourceError) as info:
        read_qhp_plans(data, name="plans.json")
    assert info.value.file == "plans.json"
    assert info.value.place is not None
    assert info.value.place.startswith(place)


def _enc(n: int, klass: str, text: str, when: str) -> Encounter:
    return Encounter(
        source_id=f"enc:{n}",
        encounter_class=klass,
        text=text,
        start=PartialDateTime.parse(when),
        provenance=Provenance(source="test"),
    )


def test_utilisation_from_history(health: SpaceSession) -> None:
    prov = Provenance(source="test")
    metformin = Code(system=RXNORM, code="860975", display="Metformin 500 MG Oral Tablet")
    glucose = Code(system=LOINC, code="2345-7", display="Glucose")
    items = [
        _enc(1, "AMB", "Encounter for check up (procedure)", "2022-02-01"),
        _enc(2, "AMB", "Encounter for symptom", "2022-03-01"),
        _enc(3, "AMB", "Follow-up encounter", "2022-05-01"),
        _enc(4, "EMER", "Emergency room admission (procedure)", "2022-06-01"),
        _enc(5, "AMB", "Consultation for treatment", "2022-08-01"),
        _enc(6, "AMB", "Death Certification", "2022-09-01"),
        _enc(7, "AMB", "Encounter for check up (procedure)", "2023-02-01"),
        _enc(8, "IMP", "Admission to hospital", "2023-04-01"),
        Medication(
            source_id="rx:1",
            medication_kind="request",
            code=metformin,
            status="active",
            start=PartialDateTime.parse("2022-07-01"),
            provenance=prov,
        ),
        # Pharmacy and professional claims in a year that already has requests and visits.
        Claim(
            source_id="clm:1",
            claim_type="pharmacy",
            service_start=PartialDateTime.parse("2023-03-01"),
            patient_owes=Money(amount=D(5)),
            provenance=prov,
        ),
        Claim(
            source_id="clm:2",
            claim_type="professional",
            service_start=PartialDateTime.parse("2023-02-01"),
            provenance=prov,
        ),
    ]
    for n, day in enumerate(["2022-02-01", "2022-02-01", "2022-05-01"]):
        items.append(
            Observation(
                source_id=f"lab:{n}",
                code=glucose,
                category="laboratory",
                value=QuantityValue(quantity=Quantity(value=95.0, unit="mg/dL")),
                effective=PartialDateTime.parse(day),
                provenance=prov,
            )
        )
    ingest(health, items, source="test", input_sha256="a" * 64)
    profile = utilisation_history(health, years=3, through=2023)
    years = {y.year: y for y in profile.years}
    assert sorted(years) == [2022, 2023]  # nothing before the first year with data
    assert years[2022].services == {"primary_care": 3, "emergency": 1, "specialist": 1, "lab": 2}
    assert years[2022].drugs == {"860975": 6}  # July to December
    assert years[2023].services == {"primary_care": 1, "inpatient": 1}
    assert years[2023].drugs == {"860975": 12}
    # expected = mean of the two years; low = the lower year; high = max(higher year, 2x mean).
    assert profile.expected.services == {
        "primary_care": D("2.00"),
        "emergency": D("0.50"),
        "specialist": D("0.50"),
        "lab": D("1.00"),
        "inpatient": D("0.50"),
    }
    assert profile.low.services["primary_care"] == D(1)
    assert profile.low.services["inpatient"] == D(0)
    assert profile.high.services["primary_care"] == D(4)  # 2 * 2.00 > 3
    assert profile.high.services["lab"] == D(2)
    assert (profile.low.drugs, profile.expected.drugs, profile.high.drugs) == (
        {"860975": D(6)},
        {"860975": D(9)},
        {"860975": D(12)},
    )
    assert "2022-2023" in profile.basis
    result = compare_plans_for(health, [PLAN_A, PLAN_B], through=2023)
    assert result.costs["A"]["expected"].total == yearly_cost(PLAN_A, profile.expected).total
    fact = next(f for f in result.facts if f.topic == "insurance.plan_cost")
    # 7 care encounters, the request and 3 lab results; the claims were not counted.
    assert len(fact.citations) == 11
