"""The yearly cost model behind plan comparison: plan terms, a year's use, what you pay.

Model (all money in Decimal, rounded to cents at the end):

    yearly cost = premium_monthly * 12 + out_of_pocket
    out_of_pocket = min(oop_max, sum of covered payments) + payments for uncovered care

Services are costed one unit at a time, in the order of :data:`SERVICES`, then drug
fills by drug key; a fractional count (an "expected" 2.5 visits) is costed as whole
units plus a scaled partial unit (price and copay times the fraction). For one unit of
price ``p`` under a :class:`CostShare` with copay ``c`` and coinsurance ``r``:

- deductible applies and ``d`` of it is left: you pay ``min(p, d)`` toward it, and
  on the rest ``x = p - min(p, d)`` you pay ``share(x)``;
- otherwise you pay ``share(p)``;
- ``share(x) = min(x, c + r * max(0, x - c))``: the copay, plus coinsurance on what
  the copay does not cover, never more than the price.
- Not covered (``covered=False``, or a drug missing from a known formulary): you pay
  the whole price and it does not count toward the out-of-pocket maximum.

Copays that apply before the deductible do not reduce it. Prices are allowed amounts
per service (:data:`DEFAULT_PRICES` unless given): assumptions, stated in every result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

from healthspace.errors import UsageError

__all__ = [
    "DEFAULT_PRICES",
    "DRUG_SERVICES",
    "SERVICES",
    "CostShare",
    "PlanTerms",
    "ScenarioCost",
    "Usage",
    "cents",
    "yearly_cost",
]

SERVICES: Final = (
    "primary_care",
    "specialist",
    "urgent_care",
    "emergency",
    "inpatient",
    "outpatient",
    "lab",
    "imaging",
)
DRUG_SERVICES: Final = (
    "preventive_drug",
    "generic_drug",
    "preferred_brand_drug",
    "non_preferred_brand_drug",
    "specialty_drug",
)

# Assumed allowed amounts in USD, order-of-magnitude figures for commercial US plans:
# a visit, an ER visit, a hospital stay, a lab draw, an imaging study, a 30-day fill.
# Every comparison states the prices it used; pass your own to replace them.
DEFAULT_PRICES: Final[Mapping[str, Decimal]] = {
    "primary_care": Decimal(150),
    "specialist": Decimal(250),
    "urgent_care": Decimal(200),
    "emergency": Decimal(2200),
    "inpatient": Decimal(15000),
    "outpatient": Decimal(1500),
    "lab": Decimal(60),
    "imaging": Decimal(500),
    "preventive_drug": Decimal(15),
    "generic_drug": Decimal(15),
    "preferred_brand_drug": Decimal(150),
    "non_preferred_brand_drug": Decimal(350),
    "specialty_drug": Decimal(3000),
}

_CENT: Final = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class CostShare:
    """What you pay for one service: copay, coinsurance, whether the deductible comes first."""

    copay: Decimal = Decimal(0)
    coinsurance: Decimal = Decimal(0)  # a fraction: 0.2 is 20%
    deductible_applies: bool = True
    covered: bool = True

    def describe(self) -> str:
        if not self.covered:
            return "not covered"
        parts = []
        if self.copay:
            parts.append(f"${cents(self.copay)} copay")
        if self.coinsurance:
            parts.append(f"{self.coinsurance * 100:g}% coinsurance")
        text = " + ".join(parts) or "no charge"
        return f"deductible, then {text}" if self.deductible_applies else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "copay": str(self.copay),
            "coinsurance": str(self.coinsurance),
            "deductible_applies": self.deductible_applies,
            "covered": self.covered,
            "text": self.describe(),
        }


# Deductible, then 20% coinsurance: what a service the terms do not mention costs.
DEFAULT_SHARE: Final = CostShare(coinsurance=Decimal("0.2"))


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """A plan's terms, from a marketplace file, entered by the person, or both."""

    plan_id: str
    name: str
    premium_monthly: Decimal
    deductible: Decimal
    oop_max: Decimal
    shares: Mapping[str, CostShare] = field(default_factory=dict)
    default_share: CostShare = DEFAULT_SHARE
    metal_level: str | None = None
    source: Literal["entered", "qhp"] = "entered"
    # Drug key (RxNorm code) -> drug service, when the plan's formulary is known.
    formulary: Mapping[str, str] | None = None
    restricted_drugs: tuple[str, ...] = ()  # prior authorization / step therapy / limits
    notes: tuple[str, ...] = ()

    def share(self, service: str) -> CostShare:
        return self.shares.get(service, self.default_share)

    def drug_service(self, drug: str) -> str | None:
        """The drug service (tier) a fill is costed under; None if off a known formulary."""
        if self.formulary is None:
            return "generic_drug"
        return self.formulary.get(drug)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "name": self.name,
            "metal_level": self.metal_level,
            "source": self.source,
            "premium_monthly": str(self.premium_monthly),
            "deductible": str(self.deductible),
            "oop_max": str(self.oop_max),
            "shares": {k: v.to_dict() for k, v in self.shares.items()},
            "default_share": self.default_share.to_dict(),
            "formulary_known": self.formulary is not None,
            "restricted_drugs": list(self.restricted_drugs),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """A year of care: service counts and drug fills (drug key -> 30-day fills)."""

    services: Mapping[str, Decimal] = field(default_factory=dict)
    drugs: Mapping[str, Decimal] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "services": {k: str(v) for k, v in self.services.items()},
            "drugs": {k: str(v) for k, v in self.drugs.items()},
        }


@dataclass(frozen=True, slots=True)
class ScenarioCost:
    """One plan under one scenario."""

    premiums: Decimal
    out_of_pocket: Decimal
    total: Decimal
    hit_oop_max: bool
    by_service: Mapping[str, Decimal]  # before the out-of-pocket cap
    uncovered: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "premiums": str(self.premiums),
            "out_of_pocket": str(self.out_of_pocket),
            "total": str(self.total),
            "hit_oop_max": self.hit_oop_max,
            "by_service": {k: str(v) for k, v in self.by_service.items()},
            "uncovered": str(self.uncovered),
        }


def _share_of(share: CostShare, amount: Decimal, copay: Decimal) -> Decimal:
    if amount <= 0:
        return Decimal(0)
    return min(amount, copay + share.coinsurance * max(Decimal(0), amount - copay))


class _Ledger:
    def __init__(self, deductible: Decimal) -> None:
        self.deductible_left = deductible
        self.covered = Decimal(0)
        self.uncovered = Decimal(0)

    def unit(self, share: CostShare, price: Decimal, fraction: Decimal) -> Decimal:
        if not share.covered:
            self.uncovered += price
            return price
        copay = share.copay * fraction
        if share.deductible_applies and self.deductible_left > 0:
            toward = min(price, self.deductible_left)
            self.deductible_left -= toward
            paid = toward + _share_of(share, price - toward, copay)
        else:
            paid = _share_of(share, price, copay)
        self.covered += paid
        return paid

    def line(self, share: CostShare, price: Decimal, count: Decimal) -> Decimal:
        whole = int(count)
        paid = sum((self.unit(share, price, Decimal(1)) for _ in range(whole)), Decimal(0))
        fraction = count - whole
        if fraction > 0:
            paid += self.unit(share, price * fraction, fraction)
        return paid


def yearly_cost(
    plan: PlanTerms, usage: Usage, prices: Mapping[str, Decimal] = DEFAULT_PRICES
) -> ScenarioCost:
    """What a year of ``usage`` costs under ``plan`` (see the module docstring)."""
    ledger = _Ledger(plan.deductible)
    by_service: dict[str, Decimal] = {}
    for service in (*SERVICES, *sorted(set(usage.services) - set(SERVICES))):
        count = usage.services.get(service, Decimal(0))
        if count > 0:
            if service not in prices:
                raise UsageError(f"no price for service {service!r}; pass one in prices")
            paid = ledger.line(plan.share(service), prices[service], count)
            by_service[service] = cents(paid)
    for drug in sorted(usage.drugs):
        count = usage.drugs[drug]
        tier = plan.drug_service(drug)
        share = plan.share(tier) if tier is not None else CostShare(covered=False)
        # Off the formulary: priced as a non-preferred brand, paid in full.
        price = prices[tier or "non_preferred_brand_drug"]
        if count > 0:
            paid = ledger.line(share, price, count)
            key = f"drug:{drug}"
            by_service[key] = cents(by_service.get(key, Decimal(0)) + paid)
    capped = min(plan.oop_max, ledger.covered)
    out_of_pocket = cents(capped + ledger.uncovered)
    premiums = cents(plan.premium_monthly * 12)
    return ScenarioCost(
        premiums=premiums,
        out_of_pocket=out_of_pocket,
        total=premiums + out_of_pocket,
        hit_oop_max=ledger.covered >= plan.oop_max,
        by_service=by_service,
        uncovered=cents(ledger.uncovered),
    )
