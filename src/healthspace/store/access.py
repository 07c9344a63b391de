"""Grants that open a space. The health space opens only with a :class:`HealthGrant`.

A grant names who is asking and how they proved it. The web layer mints one after
an authenticated request (with fresh MFA where the user enabled it); the command
line runs as the machine's operator, who holds the root key anyway, and mints an
operator grant. Either way the opening is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HealthGrant"]


@dataclass(frozen=True, slots=True)
class HealthGrant:
    actor: str
    method: str

    @classmethod
    def operator(cls, actor: str = "operator") -> HealthGrant:
        """The machine's operator (the CLI): holds the root key, audited like anyone."""
        return cls(actor=actor, method="operator")

    @classmethod
    def authenticated(cls, actor: str, *, mfa: bool) -> HealthGrant:
        """An authenticated user request; ``mfa`` says whether a second factor was fresh."""
        return cls(actor=actor, method="password+mfa" if mfa else "password")
