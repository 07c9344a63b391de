"""Insurance: coverage (the plan) and claims as explained by the payer (EOB)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from healthspace.model.coding import Code
from healthspace.model.quantity import FiniteFloat, Money
from healthspace.model.record import Record, SummaryValue, first_time, label
from healthspace.model.timing import PartialDateTime

__all__ = ["Claim", "ClaimItem", "Coverage"]


class Coverage(Record):
    """An insurance plan the person is covered by (FHIR Coverage)."""

    kind: Literal["coverage"] = "coverage"

    payer: str | None = None
    plan_name: str | None = None
    coverage_type: str | None = None  # "medical", "dental", "vision", "pharmacy", "HMO", ...
    member_id: str | None = None
    group_id: str | None = None
    subscriber: str | None = None
    relationship: str | None = None  # "self", "spouse", "child", ...
    start: PartialDateTime | None = None
    end: PartialDateTime | None = None
    network: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.start, self.end)

    def primary_code(self) -> Code | None:
        return None

    def display_text(self) -> str:
        parts = [part for part in (self.payer, self.plan_name) if part]
        return " - ".join(parts) if parts else "Coverage"

    def summary_value(self) -> SummaryValue:
        return self.coverage_type, None


class ClaimItem(BaseModel):
    """One billed line: a service with what was charged, allowed, paid and owed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int | None = Field(default=None, ge=1)
    service: Code | None = None  # CPT / HCPCS / revenue code
    text: str | None = None
    service_date: PartialDateTime | None = None
    quantity: FiniteFloat | None = None
    billed: Money | None = None
    allowed: Money | None = None
    plan_paid: Money | None = None
    patient_owes: Money | None = None
    denial_reasons: tuple[Code, ...] = ()  # CARC/RARC adjustment reason codes


class Claim(Record):
    """A claim as adjudicated by the payer (FHIR ExplanationOfBenefit, or a paper EOB)."""

    kind: Literal["claim"] = "claim"

    claim_id: str | None = None  # the payer's claim number
    claim_type: str | None = None  # "professional", "institutional", "pharmacy", ...
    provider: str | None = None
    facility: str | None = None
    payer: str | None = None
    coverage_id: str | None = None  # source_id of the Coverage
    service_start: PartialDateTime | None = None
    service_end: PartialDateTime | None = None
    created: PartialDateTime | None = None
    processed: PartialDateTime | None = None
    billed: Money | None = None
    allowed: Money | None = None
    plan_paid: Money | None = None
    patient_owes: Money | None = None
    deductible: Money | None = None
    copay: Money | None = None
    coinsurance: Money | None = None
    items: tuple[ClaimItem, ...] = ()
    diagnoses: tuple[Code, ...] = ()
    denial_reasons: tuple[Code, ...] = ()
    outcome: Literal["queued", "complete", "error", "partial"] | None = None
    disposition: str | None = None

    def sort_time(self) -> datetime | None:
        return first_time(self.service_start, self.created, self.processed)

    def primary_code(self) -> Code | None:
        for item in self.items:
            if item.service is not None:
                return item.service
        return None

    def display_text(self) -> str:
        text = " - ".join(part for part in (self.provider, self.claim_type) if part)
        return label(text or None, (), f"Claim {self.claim_id}" if self.claim_id else "Claim")

    def summary_value(self) -> SummaryValue:
        money = self.patient_owes or self.billed
        if money is None:
            return None, None
        return float(money.amount), money.currency
