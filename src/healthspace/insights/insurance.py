"""Insurance plan comparison: expected yearly cost under low, expected and high use.

Plans come from marketplace files (the CMS QHP JSON, read by
:mod:`healthspace.insights._insurance_qhp`, with the premium, deductible and
out-of-pocket maximum entered since the files do not carry them) or entirely from
entered terms (:class:`PlanTerms`). Use comes from the person's history
(:mod:`healthspace.insights._insurance_usage`) or is given as a
:class:`UtilisationProfile`. The cost model is documented in
:mod:`healthspace.insights._insurance_cost`:

    yearly cost = premium_monthly * 12 + min(oop_max, deductible-then-copay/coinsurance
                  arithmetic per service) + care the plan does not cover

The comparison ends in a pros-and-cons table: for each criterion the plans' values, the
best and the worst; a plan's pros are the criteria it is best on, its cons those it is
worst on (only where the plans differ).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from healthspace.errors import UsageError
from healthspace.insights._insurance_cost import (
    DEFAULT_PRICES,
    DRUG_SERVICES,
    SERVICES,
    CostShare,
    PlanTerms,
    ScenarioCost,
    Usage,
    cents,
    yearly_cost,
)
from healthspace.insights._insurance_qhp import (
    EnteredTerms,
    QhpDrug,
    QhpPlan,
    plan_terms_from_qhp,
    read_qhp_drugs,
    read_qhp_plans,
)
from healthspace.insights._insurance_usage import (
    UtilisationProfile,
    YearUse,
    profile_from_years,
    utilisation_history,
)
from healthspace.insights.facts import Fact
from healthspace.store import SpaceSession

__all__ = [
    "DEFAULT_PRICES",
    "DRUG_SERVICES",
    "SCENARIOS",
    "SERVICES",
    "CostShare",
    "Criterion",
    "EnteredTerms",
    "PlanComparison",
    "PlanTerms",
    "QhpDrug",
    "QhpPlan",
    "ScenarioCost",
    "Usage",
    "UtilisationProfile",
    "YearUse",
    "compare_plans",
    "compare_plans_for",
    "plan_terms_from_qhp",
    "profile_from_years",
    "read_qhp_drugs",
    "read_qhp_plans",
    "utilisation_history",
    "yearly_cost",
]

SCENARIOS: Final = ("low", "expected", "high")


@dataclass(frozen=True, slots=True)
class Criterion:
    """One row of the pros-and-cons table."""

    name: str
    lower_is_better: bool
    values: dict[str, Decimal]  # plan id -> value
    best: tuple[str, ...]
    worst: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lower_is_better": self.lower_is_better,
            "values": {k: str(v) for k, v in self.values.items()},
            "best": list(self.best),
            "worst": list(self.worst),
        }


@dataclass(frozen=True, slots=True)
class PlanComparison:
    plans: tuple[PlanTerms, ...]
    profile: UtilisationProfile
    prices: Mapping[str, Decimal]
    costs: dict[str, dict[str, ScenarioCost]]  # plan id -> scenario -> cost
    table: tuple[Criterion, ...]
    pros: dict[str, tuple[str, ...]]
    cons: dict[str, tuple[str, ...]]
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "plans": [p.to_dict() for p in self.plans],
            "profile": self.profile.to_dict(),
            "prices": {k: str(v) for k, v in self.prices.items()},
            "costs": {
                plan: {s: c.to_dict() for s, c in by.items()} for plan, by in self.costs.items()
            },
            "table": [c.to_dict() for c in self.table],
            "pros": {k: list(v) for k, v in self.pros.items()},
            "cons": {k: list(v) for k, v in self.cons.items()},
            "facts": [f.to_dict() for f in self.facts],
        }


def _criterion(
    name: str, plans: Sequence[PlanTerms], value: Callable[[PlanTerms], Decimal], lower: bool
) -> Criterion:
    values = {p.plan_id: value(p) for p in plans}
    best_value = min(values.values()) if lower else max(values.values())
    worst_value = max(values.values()) if lower else min(values.values())
    differ = best_value != worst_value
    return Criterion(
        name=name,
        lower_is_better=lower,
        values=values,
        best=tuple(k for k, v in values.items() if v == best_value) if differ else (),
        worst=tuple(k for k, v in values.items() if v == worst_value) if differ else (),
    )


def _table(
    plans: Sequence[PlanTerms], costs: dict[str, dict[str, ScenarioCost]], drugs: set[str]
) -> list[Criterion]:
    rows = [
        _criterion("monthly premium", plans, lambda p: p.premium_monthly, True),
        _criterion("deductible", plans, lambda p: p.deductible, True),
        _criterion("out-of-pocket maximum", plans, lambda p: p.oop_max, True),
        _criterion(
            "worst case a year (premiums + out-of-pocket maximum)",
            plans,
            lambda p: cents(p.premium_monthly * 12 + p.oop_max),
            True,
        ),
    ]
    for scenario in SCENARIOS:

        def total(plan: PlanTerms, scenario: str = scenario) -> Decimal:
            return costs[plan.plan_id][scenario].total

        rows.append(_criterion(f"{scenario}-use yearly cost", plans, total, True))
    with_formulary = [p for p in plans if p.formulary is not None]
    if drugs and with_formulary:
        rows.append(
            _criterion(
                "your drugs on the formulary",
                plans,
                lambda p: Decimal(sum(1 for d in drugs if p.drug_service(d) is not None)),
                False,
            )
        )
        rows.append(
            _criterion(
                "your drugs needing prior authorization, step therapy or a quantity limit",
                plans,
                lambda p: Decimal(sum(1 for d in drugs if d in p.restricted_drugs)),
                True,
            )
        )
    return rows


def _usage_text(usage: Usage) -> str:
    parts = [f"{v:g} {k.replace('_', ' ')}" for k, v in usage.services.items() if v > 0]
    fills = sum(usage.drugs.values(), Decimal(0))
    if fills:
        parts.append(f"{fills:g} drug fills")
    return ", ".join(parts) or "no care"


def _plan_fact(
    plan: PlanTerms, costs: dict[str, ScenarioCost], profile: UtilisationProfile
) -> Fact:
    e = costs["expected"]
    statement = (
        f"{plan.name}: about ${e.total} a year with expected use ({_usage_text(profile.expected)}, "
        f"from {profile.basis}): ${e.premiums} in premiums and ${e.out_of_pocket} out of pocket. "
        f"Low use ${costs['low'].total}, high use ${costs['high'].total}"
    )
    statement += " (reaches the out-of-pocket maximum)." if costs["high"].hit_oop_max else "."
    values: dict[str, float | int | str | bool | None] = {
        "plan_id": plan.plan_id,
        "premiums": str(e.premiums),
    }
    for s in SCENARIOS:
        values[f"{s}_total"] = str(costs[s].total)
        values[f"{s}_out_of_pocket"] = str(costs[s].out_of_pocket)
    return Fact("insurance.plan_cost", statement, profile.citations, values=values)


def compare_plans(
    plans: Sequence[PlanTerms],
    profile: UtilisationProfile,
    *,
    prices: Mapping[str, Decimal] | None = None,
) -> PlanComparison:
    """Each plan's yearly cost under the profile's three scenarios, and the pros and cons."""
    if not plans:
        raise UsageError("no plans to compare")
    if len({p.plan_id for p in plans}) != len(plans):
        raise UsageError("two plans share a plan id")
    used = {**DEFAULT_PRICES, **(prices or {})}
    costs = {
        p.plan_id: {s: yearly_cost(p, u, used) for s, u in profile.scenarios().items()}
        for p in plans
    }
    drugs = {d for u in profile.scenarios().values() for d in u.drugs}
    table = _table(plans, costs, drugs)
    pros = {p.plan_id: tuple(r.name for r in table if p.plan_id in r.best) for p in plans}
    cons = {p.plan_id: tuple(r.name for r in table if p.plan_id in r.worst) for p in plans}
    facts = [_plan_fact(p, costs[p.plan_id], profile) for p in plans]
    cheapest = min(plans, key=lambda p: (costs[p.plan_id]["expected"].total, p.plan_id))
    facts.append(
        Fact(
            "insurance.cheapest_expected",
            f"With expected use, {cheapest.name} costs the least "
            f"(${costs[cheapest.plan_id]['expected'].total} a year). Prices per service are "
            "assumptions you can change; the plan documents are the final word.",
            profile.citations,
            values={"plan_id": cheapest.plan_id},
        )
    )
    return PlanComparison(
        plans=tuple(plans),
        profile=profile,
        prices=used,
        costs=costs,
        table=tuple(table),
        pros=pros,
        cons=cons,
        facts=tuple(facts),
    )


def compare_plans_for(
    session: SpaceSession,
    plans: Sequence[PlanTerms],
    *,
    years: int = 3,
    through: int | None = None,
    prices: Mapping[str, Decimal] | None = None,
) -> PlanComparison:
    """:func:`compare_plans` with use estimated from the person's own records."""
    return compare_plans(
        plans, utilisation_history(session, years=years, through=through), prices=prices
    )
