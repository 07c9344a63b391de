"""SMART discovery: where a FHIR server wants us to authorize, get tokens and revoke them.

First ``{base}/.well-known/smart-configuration`` (SMART App Launch 2), then the
CapabilityStatement at ``{base}/metadata`` (its ``rest.security`` oauth-uris
extension, as older servers publish it). Every endpoint found is checked by the
URL guard before it is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from healthspace.errors import SourceError
from healthspace.sources._smart_net import UrlGuard, read_json

__all__ = ["OAUTH_URIS", "SmartEndpoints", "discover", "normalise_base"]

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def normalise_base(url: str) -> str:
    """The FHIR base as a canonical string: no query, no fragment, no trailing slash."""
    parsed = httpx.URL(url.strip())
    if parsed.query or parsed.fragment:
        raise SourceError("a FHIR base URL has no query or fragment", file=parsed.host or "url")
    return str(parsed.copy_with(path=parsed.path.rstrip("/") or "/")).rstrip("/")


@dataclass(frozen=True)
class SmartEndpoints:
    fhir_base: str
    authorize: str
    token: str
    revocation: str | None = None
    capabilities: tuple[str, ...] = ()
    code_challenge_methods: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "fhir_base": self.fhir_base,
            "authorize": self.authorize,
            "token": self.token,
            "revocation": self.revocation,
            "capabilities": list(self.capabilities),
            "code_challenge_methods": list(self.code_challenge_methods),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SmartEndpoints:
        return cls(
            fhir_base=str(doc["fhir_base"]),
            authorize=str(doc["authorize"]),
            token=str(doc["token"]),
            revocation=doc.get("revocation"),
            capabilities=tuple(doc.get("capabilities") or ()),
            code_challenge_methods=tuple(doc.get("code_challenge_methods") or ()),
        )

    @property
    def uses_v1_scopes(self) -> bool:
        """True if the server declares SMART v1 permissions and not v2 (``.read`` scopes)."""
        caps = set(self.capabilities)
        return "permission-v1" in caps and "permission-v2" not in caps


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _from_well_known(base: str, doc: object) -> SmartEndpoints | None:
    if not isinstance(doc, dict):
        return None
    authorize = doc.get("authorization_endpoint")
    token = doc.get("token_endpoint")
    if not isinstance(authorize, str) or not isinstance(token, str):
        return None
    revocation = doc.get("revocation_endpoint")
    return SmartEndpoints(
        fhir_base=base,
        authorize=authorize,
        token=token,
        revocation=revocation if isinstance(revocation, str) else None,
        capabilities=_strings(doc.get("capabilities")),
        code_challenge_methods=_strings(doc.get("code_challenge_methods_supported")),
    )


def _from_capability_statement(base: str, doc: object) -> SmartEndpoints | None:
    if not isinstance(doc, dict) or doc.get("resourceType") != "CapabilityStatement":
        return None
    for rest in doc.get("rest") or ():
        security = rest.get("security") if isinstance(rest, dict) else None
        if not isinstance(security, dict):
            continue
        for ext in security.get("extension") or ():
            if not isinstance(ext, dict) or ext.get("url") != OAUTH_URIS:
                continue
            uris = {
                e.get("url"): e.get("valueUri")
                for e in ext.get("extension") or ()
                if isinstance(e, dict) and isinstance(e.get("valueUri"), str)
            }
            if "authorize" in uris and "token" in uris:
                return SmartEndpoints(
                    fhir_base=base,
                    authorize=str(uris["authorize"]),
                    token=str(uris["token"]),
                    revocation=uris.get("revoke"),
                )
    return None


def discover(http: httpx.Client, guard: UrlGuard, fhir_base: str) -> SmartEndpoints:
    """The server's SMART endpoints; raises SourceError naming what was tried."""
    base = normalise_base(fhir_base)
    host = guard.check_url(base).host
    found: SmartEndpoints | None = None
    _, doc = read_json(
        http,
        f"{base}/.well-known/smart-configuration",
        headers={"Accept": "application/json"},
        what="discovery",
    )
    if doc is not None:
        found = _from_well_known(base, doc)
    if found is None:
        _, doc = read_json(
            http, f"{base}/metadata", headers={"Accept": "application/fhir+json"}, what="metadata"
        )
        if doc is not None:
            found = _from_capability_statement(base, doc)
    if found is None:
        raise SourceError(
            "no SMART configuration: neither .well-known/smart-configuration nor the "
            "CapabilityStatement at /metadata names authorize and token endpoints",
            file=host,
            place="discovery",
        )
    for endpoint in (found.authorize, found.token, found.revocation):
        if endpoint is not None:
            guard.check_url(endpoint)
    if found.code_challenge_methods and "S256" not in found.code_challenge_methods:
        raise SourceError(
            "the server does not offer PKCE with S256, which healthspace requires",
            file=host,
            place="discovery",
        )
    return found
