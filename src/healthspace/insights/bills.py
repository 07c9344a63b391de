"""Explanation of benefits: billed, allowed, plan paid and what you owe, per claim and year.

Read from :class:`~healthspace.model.Claim` records (FHIR ExplanationOfBenefit, CARIN
Blue Button, paper EOBs). A claim's amount is its own header amount when the payer
gave one, else the sum of its lines' amounts (when at least one line has it); a claim
with neither leaves the amount unknown rather than zero, and totals say how many claims
had it. Totals are kept per currency, never mixed.

A claim counts as denied when the payer's outcome is "error", its disposition says
denied/rejected, or it carries a denial (adjustment) reason; reasons that are
placeholders ("N/A", code 0) are dropped. Lines with their own reasons make a claim
"partly denied". A claim's year is the year its service started (else when it was
filed). "You owe" is the payer's statement of your share (deductible, copay,
coinsurance, non-covered care), which is not a bill from the provider.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from healthspace.insights.facts import Citation, Fact, citation_of, record_moment
from healthspace.model import Claim, ClaimItem, Code, Money
from healthspace.store import RecordRepository, SpaceSession, StoredRecord

__all__ = [
    "AMOUNTS",
    "BillSummary",
    "ClaimBill",
    "Denial",
    "Totals",
    "bill_summary",
    "claim_bill",
    "summarise_claims",
]

AMOUNTS: Final = ("billed", "allowed", "plan_paid", "patient_owes")
_PLACEHOLDERS: Final = frozenset({"N/A", "NA", "NONE", "NOT APPLICABLE"})
_DENIED_WORDS: Final = ("denied", "denial", "rejected")


@dataclass(frozen=True, slots=True)
class Denial:
    """A denial or adjustment reason (CARC/RARC or the payer's own code)."""

    system: str
    code: str
    display: str | None
    line: int | None  # the claim line's sequence, None for the whole claim

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "code": self.code,
            "display": self.display,
            "line": self.line,
        }


@dataclass(frozen=True, slots=True)
class ClaimBill:
    """One claim as the payer explained it."""

    record_id: str
    claim_id: str | None
    year: int | None
    service_date: str | None
    claim_type: str | None
    provider: str | None
    payer: str | None
    currency: str
    amounts: dict[str, Decimal | None]  # AMOUNTS -> value, None when not given
    from_lines: tuple[str, ...]  # amounts summed from lines, not given for the claim
    deductible: Decimal | None
    copay: Decimal | None
    coinsurance: Decimal | None
    denied: bool
    partly_denied: bool
    denials: tuple[Denial, ...]
    lines: int
    citation: Citation

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "claim_id": self.claim_id,
            "year": self.year,
            "service_date": self.service_date,
            "claim_type": self.claim_type,
            "provider": self.provider,
            "payer": self.payer,
            "currency": self.currency,
            "amounts": {k: _str(v) for k, v in self.amounts.items()},
            "from_lines": list(self.from_lines),
            "deductible": _str(self.deductible),
            "copay": _str(self.copay),
            "coinsurance": _str(self.coinsurance),
            "denied": self.denied,
            "partly_denied": self.partly_denied,
            "denials": [d.to_dict() for d in self.denials],
            "lines": self.lines,
            "citation": self.citation.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over some claims in one currency; ``known`` counts claims that gave each amount."""

    currency: str
    claims: int
    amounts: dict[str, Decimal]
    known: dict[str, int]
    denied: int
    partly_denied: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "claims": self.claims,
            "amounts": {k: str(v) for k, v in self.amounts.items()},
            "known": dict(self.known),
            "denied": self.denied,
            "partly_denied": self.partly_denied,
        }


@dataclass(frozen=True, slots=True)
class BillSummary:
    claims: tuple[ClaimBill, ...]
    by_year: dict[int | None, tuple[Totals, ...]]
    overall: tuple[Totals, ...]
    facts: tuple[Fact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "claims": [c.to_dict() for c in self.claims],
            "by_year": {
                str(year): [t.to_dict() for t in totals] for year, totals in self.by_year.items()
            },
            "overall": [t.to_dict() for t in self.overall],
            "facts": [f.to_dict() for f in self.facts],
        }


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _real(code: Code) -> bool:
    display = (code.display or "").strip().upper()
    return display not in _PLACEHOLDERS and code.code.strip() not in {"", "0", "00"}


def _denials(claim: Claim) -> tuple[tuple[Denial, ...], bool]:
    found = [Denial(c.system, c.code, c.display, None) for c in claim.denial_reasons if _real(c)]
    lines = False
    for n, item in enumerate(claim.items, start=1):
        for code in item.denial_reasons:
            if _real(code):
                lines = True
                denial = Denial(code.system, code.code, code.display, item.sequence or n)
                if all((d.system, d.code) != (code.system, code.code) for d in found):
                    found.append(denial)
    return tuple(found), lines


def _currency(claim: Claim) -> str:
    for money in (claim.billed, claim.allowed, claim.plan_paid, claim.patient_owes):
        if money is not None:
            return money.currency
    for item in claim.items:
        for money in (item.billed, item.allowed, item.plan_paid, item.patient_owes):
            if money is not None:
                return money.currency
    return "USD"


def _amount(header: Money | None, lines: Iterable[Money | None], currency: str) -> Decimal | None:
    if header is not None:
        return header.amount if header.currency == currency else None
    present = [m.amount for m in lines if m is not None and m.currency == currency]
    return sum(present, Decimal(0)) if present else None


def _line_values(items: tuple[ClaimItem, ...], name: str) -> list[Money | None]:
    return [getattr(item, name) for item in items]


def claim_bill(stored: StoredRecord) -> ClaimBill:
    """One claim's amounts (header, else summed lines), denials and citation."""
    claim = stored.record
    if not isinstance(claim, Claim):
        raise TypeError("claim_bill needs a stored Claim")
    currency = _currency(claim)
    amounts: dict[str, Decimal | None] = {}
    from_lines = []
    for name in AMOUNTS:
        header = getattr(claim, name)
        amounts[name] = _amount(header, _line_values(claim.items, name), currency)
        if header is None and amounts[name] is not None:
            from_lines.append(name)
    denials, line_denials = _denials(claim)
    disposition = (claim.disposition or "").lower()
    denied = (
        claim.outcome == "error"
        or any(word in disposition for word in _DENIED_WORDS)
        or any(d.line is None for d in denials)
    )
    moment = record_moment(claim)
    instant = claim.sort_time()
    return ClaimBill(
        record_id=stored.record_id,
        claim_id=claim.claim_id,
        year=instant.year if instant is not None else None,
        service_date=moment.isoformat() if moment is not None else None,
        claim_type=claim.claim_type,
        provider=claim.provider,
        payer=claim.payer,
        currency=currency,
        amounts=amounts,
        from_lines=tuple(from_lines),
        deductible=_amount(claim.deductible, (), currency),
        copay=_amount(claim.copay, (), currency),
        coinsurance=_amount(claim.coinsurance, (), currency),
        denied=denied,
        partly_denied=line_denials and not denied,
        denials=denials,
        lines=len(claim.items),
        citation=citation_of(stored),
    )


def _totals(bills: list[ClaimBill]) -> tuple[Totals, ...]:
    by_currency: dict[str, list[ClaimBill]] = defaultdict(list)
    for bill in bills:
        by_currency[bill.currency].append(bill)
    out = []
    for currency, group in sorted(by_currency.items()):
        amounts = {
            name: sum((v for b in group if (v := b.amounts[name]) is not None), Decimal(0))
            for name in AMOUNTS
        }
        known = {name: sum(1 for b in group if b.amounts[name] is not None) for name in AMOUNTS}
        out.append(
            Totals(
                currency=currency,
                claims=len(group),
                amounts=amounts,
                known=known,
                denied=sum(1 for b in group if b.denied),
                partly_denied=sum(1 for b in group if b.partly_denied),
            )
        )
    return tuple(out)


def _money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "not given"
    return f"${value:.2f}" if currency == "USD" else f"{value:.2f} {currency}"


def _claim_fact(bill: ClaimBill) -> Fact:
    label = f"Claim {bill.claim_id}" if bill.claim_id else "A claim"
    context = ", ".join(p for p in (bill.claim_type, bill.service_date) if p)
    parts = [
        f"{word} {_money(bill.amounts[name], bill.currency)}"
        for word, name in (
            ("billed", "billed"),
            ("allowed", "allowed"),
            ("plan paid", "plan_paid"),
            ("you owe", "patient_owes"),
        )
    ]
    statement = f"{label}{f' ({context})' if context else ''}: " + ", ".join(parts) + "."
    if bill.denials:
        reasons = "; ".join(
            f"{d.code}{f' ({d.display})' if d.display else ''}"
            + (f" on line {d.line}" if d.line is not None else "")
            for d in bill.denials
        )
        verdict = "denied" if bill.denied else "partly denied"
        statement += f" It was {verdict}: {reasons}."
    elif bill.denied:
        statement += " It was denied."
    values: dict[str, float | int | str | bool | None] = {
        name: _str(bill.amounts[name]) for name in AMOUNTS
    }
    values.update({"claim_id": bill.claim_id, "denied": bill.denied, "currency": bill.currency})
    return Fact(
        "bill.claim",
        statement,
        (bill.citation,),
        values=values,
        severity="notice" if bill.denied or bill.partly_denied else "info",
    )


def _year_fact(year: int | None, totals: Totals, bills: list[ClaimBill]) -> Fact:
    when = f"In {year}" if year is not None else "With no date"
    c = totals.currency
    a = {n: totals.amounts[n] if totals.known[n] else None for n in AMOUNTS}
    statement = (
        f"{when}: {totals.claims} claims, billed {_money(a['billed'], c)}, allowed "
        f"{_money(a['allowed'], c)}, plan paid {_money(a['plan_paid'], c)}, you owed "
        f"{_money(a['patient_owes'], c)}; {totals.denied} denied"
    )
    statement += f", {totals.partly_denied} partly denied." if totals.partly_denied else "."
    missing = [n.replace("_", " ") for n in AMOUNTS if totals.known[n] < totals.claims]
    if missing:
        statement += f" Some claims did not state: {', '.join(missing)}."
    values: dict[str, float | int | str | bool | None] = {
        "year": year,
        "claims": totals.claims,
        "currency": c,
        "denied": totals.denied,
    }
    values.update({name: _str(a[name]) for name in AMOUNTS})
    cites = tuple(b.citation for b in bills if b.currency == c)
    return Fact("bill.year", statement, cites, values=values)


def summarise_claims(stored: Iterable[StoredRecord]) -> BillSummary:
    """Claims, per-year and overall totals, and facts, from stored Claim records."""
    bills = sorted(
        (claim_bill(s) for s in stored if isinstance(s.record, Claim)),
        key=lambda b: (b.year or 0, b.service_date or "", b.record_id),
    )
    years: dict[int | None, list[ClaimBill]] = defaultdict(list)
    for bill in bills:
        years[bill.year].append(bill)
    by_year = {year: _totals(group) for year, group in years.items()}
    facts = [_year_fact(y, t, years[y]) for y, totals in by_year.items() for t in totals]
    facts += [_claim_fact(b) for b in bills]
    return BillSummary(tuple(bills), by_year, _totals(bills), tuple(facts))


def bill_summary(
    session: SpaceSession, *, since_ms: int | None = None, until_ms: int | None = None
) -> BillSummary:
    """:func:`summarise_claims` over the space's Claim records in a time window."""
    stored = RecordRepository(session).list(kind="claim", since_ms=since_ms, until_ms=until_ms)
    return summarise_claims(stored)
