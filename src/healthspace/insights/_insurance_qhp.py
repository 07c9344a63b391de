"""Marketplace plan files: the CMS QHP provider and formulary API JSON (plans.json, drugs.json).

What these files hold: plan ids and names, network tiers, and per drug tier the
pharmacy cost sharing (copay and coinsurance with their deductible options); the drug
list maps RxNorm codes to each plan's tier with prior authorization, step therapy and
quantity limits. They hold no premiums, deductibles or out-of-pocket maximums (those
live in the marketplace's rate and benefit files), so a plan becomes comparable only
with terms the person enters (:class:`EnteredTerms`).

The metal level is not a field of the format; it is read from a ``metal_level`` field
when an issuer adds one, else from the marketing name ("... Gold Health Plan").

Cost-sharing options become one :class:`CostShare`: NO-CHARGE zeroes that part, the
AFTER-DEDUCTIBLE options make the deductible apply, BEFORE-DEDUCTIBLE or none mean the
part applies from the first fill. Retail 1-month cost sharing is used for fills.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import orjson

from healthspace.errors import SourceError
from healthspace.insights._insurance_cost import DEFAULT_SHARE, CostShare, PlanTerms

__all__ = [
    "EnteredTerms",
    "QhpCostSharing",
    "QhpDrug",
    "QhpDrugPlan",
    "QhpPlan",
    "QhpTier",
    "plan_terms_from_qhp",
    "read_qhp_drugs",
    "read_qhp_plans",
]

RETAIL: Final = "1-MONTH-IN-RETAIL"
# QHP drug tier -> the drug service it is costed as.
TIER_SERVICES: Final = {
    "ZERO-COST-SHARE-PREVENTIVE": "preventive_drug",
    "GENERIC": "generic_drug",
    "PREFERRED-GENERIC": "generic_drug",
    "NON-PREFERRED-GENERIC": "generic_drug",
    "PREFERRED": "preferred_brand_drug",
    "BRAND": "preferred_brand_drug",
    "PREFERRED-BRAND": "preferred_brand_drug",
    "NON-PREFERRED-BRAND": "non_preferred_brand_drug",
    "NON-PREFERRED": "non_preferred_brand_drug",
    "SPECIALTY": "specialty_drug",
    "MEDICAL-SERVICE": "specialty_drug",
}
_METALS: Final = ("catastrophic", "expanded bronze", "bronze", "silver", "gold", "platinum")
_AFTER: Final = frozenset({"AFTER-DEDUCTIBLE", "NO-CHARGE-AFTER-DEDUCTIBLE"})
_FREE: Final = frozenset({"NO-CHARGE", "NO-CHARGE-AFTER-DEDUCTIBLE"})


@dataclass(frozen=True, slots=True)
class QhpCostSharing:
    pharmacy_type: str
    copay_amount: Decimal
    copay_opt: str | None
    coinsurance_rate: Decimal
    coinsurance_opt: str | None

    def cost_share(self) -> CostShare:
        copay = Decimal(0) if self.copay_opt in _FREE else self.copay_amount
        rate = Decimal(0) if self.coinsurance_opt in _FREE else self.coinsurance_rate
        after = (self.copay_opt in _AFTER and self.copay_amount > 0) or (
            self.coinsurance_opt in _AFTER
        )
        return CostShare(copay=copay, coinsurance=rate, deductible_applies=bool(after))


@dataclass(frozen=True, slots=True)
class QhpTier:
    drug_tier: str
    mail_order: bool
    cost_sharing: tuple[QhpCostSharing, ...]

    def retail(self) -> QhpCostSharing | None:
        return next((c for c in self.cost_sharing if c.pharmacy_type == RETAIL), None)


@dataclass(frozen=True, slots=True)
class QhpPlan:
    plan_id: str
    plan_id_type: str
    marketing_name: str
    metal_level: str | None
    years: tuple[int, ...]
    network_tiers: tuple[str, ...]
    tiers: tuple[QhpTier, ...]
    summary_url: str | None = None
    last_updated_on: str | None = None


@dataclass(frozen=True, slots=True)
class QhpDrugPlan:
    plan_id: str
    drug_tier: str
    prior_authorization: bool
    step_therapy: bool
    quantity_limit: bool
    years: tuple[int, ...] = ()

    @property
    def restricted(self) -> bool:
        return self.prior_authorization or self.step_therapy or self.quantity_limit


@dataclass(frozen=True, slots=True)
class QhpDrug:
    rxnorm_id: str
    drug_name: str
    plans: tuple[QhpDrugPlan, ...]


@dataclass(frozen=True, slots=True)
class EnteredTerms:
    """Terms the QHP files do not carry, as the person read them from the plan summary."""

    premium_monthly: Decimal
    deductible: Decimal
    oop_max: Decimal
    shares: Mapping[str, CostShare] = field(default_factory=dict)
    default_share: CostShare = DEFAULT_SHARE


# -- reading ------------------------------------------------------------------------------


def _load(data: bytes, name: str) -> list[Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SourceError("not valid JSON", file=name, place=f"byte {exc.pos}") from None
    if not isinstance(doc, list):
        raise SourceError("expected a JSON array at the top level", file=name, place="top level")
    return doc


def _text(obj: Mapping[str, Any], key: str, place: str, name: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None and not required:
        return ""
    raise SourceError(f"field {key!r} is missing or not text", file=name, place=place)


def _money(value: Any, key: str, place: str, name: str) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SourceError(f"field {key!r} is not a number", file=name, place=place)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise SourceError(f"field {key!r} is not a number", file=name, place=place) from None
    if not amount.is_finite() or amount < 0:
        raise SourceError(f"field {key!r} must be a non-negative number", file=name, place=place)
    return amount


def _list(value: Any) -> list[Any]:
    # The format says "array", yet published files also give a single object.
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _years(value: Any) -> tuple[int, ...]:
    return tuple(int(y) for y in _list(value) if isinstance(y, int) and not isinstance(y, bool))


def metal_level(plan: Mapping[str, Any], marketing_name: str) -> str | None:
    explicit = plan.get("metal_level")
    if isinstance(explicit, str) and explicit.strip():
        return explicit.strip().title()
    lowered = marketing_name.lower()
    for metal in sorted(_METALS, key=len, reverse=True):
        if re.search(rf"\b{metal}\b", lowered):
            return metal.title()
    return None


def _tier(obj: Any, place: str, name: str) -> QhpTier:
    if not isinstance(obj, dict):
        raise SourceError("a formulary entry is not an object", file=name, place=place)
    tier = _text(obj, "drug_tier", place, name).upper()
    sharing = []
    for j, cs in enumerate(_list(obj.get("cost_sharing"))):
        where = f"{place}, cost_sharing {j}"
        if not isinstance(cs, dict):
            raise SourceError("a cost_sharing entry is not an object", file=name, place=where)
        sharing.append(
            QhpCostSharing(
                pharmacy_type=_text(cs, "pharmacy_type", where, name).upper(),
                copay_amount=_money(cs.get("copay_amount"), "copay_amount", where, name),
                copay_opt=(cs.get("copay_opt") or None),
                coinsurance_rate=_money(
                    cs.get("coinsurance_rate"), "coinsurance_rate", where, name
                ),
                coinsurance_opt=(cs.get("coinsurance_opt") or None),
            )
        )
        if sharing[-1].coinsurance_rate > 1:
            raise SourceError("coinsurance_rate must be within 0..1", file=name, place=where)
    return QhpTier(tier, bool(obj.get("mail_order")), tuple(sharing))


def read_qhp_plans(data: bytes, *, name: str) -> list[QhpPlan]:
    """Every plan of a QHP ``plans.json``; SourceError naming the plan index on bad input."""
    plans = []
    for i, obj in enumerate(_load(data, name)):
        place = f"plan {i}"
        if not isinstance(obj, dict):
            raise SourceError("a plan is not an object", file=name, place=place)
        plan_id = _text(obj, "plan_id", place, name)
        place = f"plan {i} ({plan_id})"
        marketing = _text(obj, "marketing_name", place, name)
        networks = tuple(
            str(n.get("network_tier", "")).upper()
            for n in _list(obj.get("network"))
            if isinstance(n, dict) and n.get("network_tier")
        )
        tiers = tuple(
            _tier(t, f"{place}, formulary {j}", name)
            for j, t in enumerate(_list(obj.get("formulary")))
        )
        plans.append(
            QhpPlan(
                plan_id=plan_id,
                plan_id_type=_text(obj, "plan_id_type", place, name, required=False)
                or "HIOS-PLAN-ID",
                marketing_name=marketing,
                metal_level=metal_level(obj, marketing),
                years=_years(obj.get("years")),
                network_tiers=networks,
                tiers=tiers,
                summary_url=obj.get("summary_url")
                if isinstance(obj.get("summary_url"), str)
                else None,
                last_updated_on=(
                    obj.get("last_updated_on")
                    if isinstance(obj.get("last_updated_on"), str)
                    else None
                ),
            )
        )
    return plans


def read_qhp_drugs(data: bytes, *, name: str) -> list[QhpDrug]:
    """Every drug of a QHP ``drugs.json`` with its tier in each plan."""
    drugs = []
    for i, obj in enumerate(_load(data, name)):
        place = f"drug {i}"
        if not isinstance(obj, dict):
            raise SourceError("a drug is not an object", file=name, place=place)
        rxnorm = obj.get("rxnorm_id")
        if isinstance(rxnorm, int) and not isinstance(rxnorm, bool):
            rxnorm = str(rxnorm)
        if not isinstance(rxnorm, str) or not rxnorm.strip().isdigit():
            raise SourceError(
                "field 'rxnorm_id' is missing or not an RxCUI", file=name, place=place
            )
        place = f"drug {i} (RxCUI {rxnorm.strip()})"
        plans = []
        for j, p in enumerate(_list(obj.get("plans"))):
            where = f"{place}, plan {j}"
            if not isinstance(p, dict):
                raise SourceError("a plan entry is not an object", file=name, place=where)
            plans.append(
                QhpDrugPlan(
                    plan_id=_text(p, "plan_id", where, name),
                    drug_tier=_text(p, "drug_tier", where, name).upper(),
                    prior_authorization=bool(p.get("prior_authorization")),
                    step_therapy=bool(p.get("step_therapy")),
                    quantity_limit=bool(p.get("quantity_limit")),
                    years=_years(p.get("years")),
                )
            )
        drugs.append(QhpDrug(rxnorm.strip(), _text(obj, "drug_name", place, name), tuple(plans)))
    return drugs


def plan_terms_from_qhp(
    plan: QhpPlan, entered: EnteredTerms, drugs: Sequence[QhpDrug] | None = None
) -> PlanTerms:
    """Comparable terms: the QHP plan's name, metal level, drug cost sharing and formulary,
    with the premium, deductible, out-of-pocket maximum and medical cost sharing entered."""
    shares = dict(entered.shares)
    for tier in plan.tiers:
        service = TIER_SERVICES.get(tier.drug_tier)
        retail = tier.retail()
        if service is not None and retail is not None and service not in shares:
            shares[service] = retail.cost_share()
    formulary: dict[str, str] | None = None
    restricted: list[str] = []
    if drugs is not None:
        formulary = {}
        for drug in drugs:
            for entry in drug.plans:
                if entry.plan_id == plan.plan_id:
                    formulary[drug.rxnorm_id] = TIER_SERVICES.get(entry.drug_tier, "specialty_drug")
                    if entry.restricted:
                        restricted.append(drug.rxnorm_id)
    return PlanTerms(
        plan_id=plan.plan_id,
        name=plan.marketing_name,
        premium_monthly=entered.premium_monthly,
        deductible=entered.deductible,
        oop_max=entered.oop_max,
        shares=shares,
        default_share=entered.default_share,
        metal_level=plan.metal_level,
        source="qhp",
        formulary=formulary,
        restricted_drugs=tuple(sorted(restricted)),
        notes=("premium, deductible and out-of-pocket maximum as entered (not in the QHP file)",),
    )
