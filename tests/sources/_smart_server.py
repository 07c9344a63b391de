"""A real SMART on FHIR server for the client's tests: OAuth 2 + FHIR on 127.0.0.1.

Started by the tests themselves (uvicorn in a background thread). It plays both
roles of a patient portal:

- an OAuth 2 authorization server: SMART discovery (``.well-known`` and the
  CapabilityStatement), an auto-approving authorize endpoint (the "browser" step
  is a GET that is answered with a redirect carrying code and state), a token
  endpoint with PKCE S256 only (``plain`` and a wrong or absent verifier are
  refused), single-use codes (a reused code also revokes what it issued),
  registered redirect URIs only, rotating refresh tokens (reusing a rotated one
  revokes the whole family), access-token expiry and RFC 7009 revocation;
- a FHIR R4 endpoint serving the Synthea bundles as a server would: references
  rewritten from ``urn:uuid:`` to ``Type/id``, searchsets by patient with
  ``_count`` paging through ``link[rel=next]``, ``_lastUpdated=gt...``, and
  per-type scope checks.

Every request is recorded (``requests``) so tests can check what the client sent.
It is deliberately written by hand, independent of the client's OAuth library.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "healthspace-test"
REDIRECT_URI = "https://app.example.org/callback"
LOADED_AT = "2025-06-01T00:00:00Z"
SUPPORTED_TYPES = frozenset(
    {
        "Patient",
        "Observation",
        "Condition",
        "MedicationRequest",
        "AllergyIntolerance",
        "Immunization",
        "Encounter",
        "Procedure",
        "DiagnosticReport",
        "DocumentReference",
        "CarePlan",
        "Coverage",
        "ExplanationOfBenefit",
        "Claim",
        "Goal",
        "Organization",
        "Practitioner",
    }
)


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def _rewrite_refs(node: Any, refs: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in refs:
                out[key] = refs[value]
            else:
                out[key] = _rewrite_refs(value, refs)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, refs) for v in node]
    return node


def load_patient_bundle(path: Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """(patient id, resources by type) as a FHIR server would hold them."""
    bundle = orjson.loads(path.read_bytes())
    refs = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if "fullUrl" in e
    }
    by_type: dict[str, list[dict[str, Any]]] = {}
    patient_id = ""
    for entry in bundle["entry"]:
        resource = _rewrite_refs(copy.deepcopy(entry["resource"]), refs)
        resource.setdefault("meta", {})["lastUpdated"] = LOADED_AT
        by_type.setdefault(resource["resourceType"], []).append(resource)
        if resource["resourceType"] == "Patient":
            patient_id = resource["id"]
    return patient_id, by_type


@dataclass
class Family:
    """One authorization: its codes' and tokens' shared fate."""

    patient: str
    scope: str
    revoked: bool = False


@dataclass
class CodeGrant:
    client_id: str
    redirect_uri: str
    challenge: str
    family: Family
    used: bool = False
    issued: list[str] = field(default_factory=list)


@dataclass
class AccessGrant:
    family: Family
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshGrant:
    family: Family
    rotated: bool = False


@dataclass
class Knobs:
    page_size: int = 20
    access_ttl: int = 3600
    well_known: bool = True
    metadata: bool = True
    revocation: bool = True
    rotate_refresh: bool = True
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,)
    withhold: frozenset[str] = frozenset()  # types whose scopes the portal does not grant
    forbid: frozenset[str] = frozenset()  # types the FHIR endpoint refuses (403) anyway
    fail_type: str | None = None  # this type's second page answers 500


class SmartServer:
    """State plus the Starlette app; see the module docstring."""

    def __init__(self, bundles: list[Path]) -> None:
        self.patients: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for path in bundles:
            pid, by_type = load_patient_bundle(path)
            self.patients[pid] = by_type
        self.login_patient = next(iter(self.patients))
        self.knobs = Knobs()
        self.codes: dict[str, CodeGrant] = {}
        self.access: dict[str, AccessGrant] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/fhir/.well-known/smart-configuration", self.well_known),
                Route("/fhir/metadata", self.metadata),
                Route("/auth/authorize", self.authorize),
                Route("/auth/token", self.token, methods=["POST"]),
                Route("/auth/revoke", self.revoke, methods=["POST"]),
                Route("/fhir/{rtype}/{rid}", self.read),
                Route("/fhir/{rtype}", self.search),
            ]
        )

    # -- lifecycle ---------------------------------------------------------------

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test SMART server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def reset(self, patient: str | None = None) -> None:
        self.knobs = Knobs()
        self.codes.clear()
        self.access.clear()
        self.refresh.clear()
        self.requests.clear()
        if patient is not None:
            self.login_patient = patient

    # -- test controls -----------------------------------------------------------

    def expire_access_tokens(self) -> None:
        for grant in self.access.values():
            grant.expires_at = time.time() - 1

    def touch(self, patient: str, rtype: str, index: int = 0) -> dict[str, Any]:
        """Change one resource now, as a later visit would."""
        resource = self.patients[patient][rtype][index]
        resource["meta"]["lastUpdated"] = datetime.now(UTC).isoformat()
        resource["status"] = resource.get("status", "final")
        resource.setdefault("extension", []).append(
            {"url": "https://example.org/touched", "valueString": secrets.token_hex(4)}
        )
        return resource

    def sent(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    # -- helpers -----------------------------------------------------------------

    async def _record(self, request: Request) -> dict[str, str]:
        form: dict[str, str] = {}
        if request.method == "POST":
            form = dict(parse_qsl((await request.body()).decode()))
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "form": form,
                "authorization": request.headers.get("authorization"),
            }
        )
        return form

    @staticmethod
    def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
        return JSONResponse(
            {"error": error, "error_description": description},
            status_code=status,
            headers={"Cache-Control": "no-store"},
        )

    def _issue(self, family: Family, *, refresh: bool = True) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        self.access[access] = AccessGrant(family, time.time() + self.knobs.access_ttl)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.knobs.access_ttl,
            "scope": family.scope,
            "patient": family.patient,
        }
        if refresh:
            token = "rt-" + secrets.token_urlsafe(24)
            self.refresh[token] = RefreshGrant(family)
            answer["refresh_token"] = token
        return answer

    def _revoke_family(self, family: Family) -> None:
        family.revoked = True

    def _bearer(self, request: Request) -> AccessGrant | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        grant = self.access.get(header[7:])
        if grant is None or grant.revoked or grant.family.revoked:
            return None
        if grant.expires_at < time.time():
            return None
        return grant

    # -- discovery -----------------------------------------------------------------

    async def well_known(self, request: Request) -> Response:
        await self._record(request)
        if not self.knobs.well_known:
            return Response(status_code=404)
        doc: dict[str, Any] = {
            "authorization_endpoint": f"{self.base_url}/auth/authorize",
            "token_endpoint": f"{self.base_url}/auth/token",
            "capabilities": ["launch-standalone", "client-public", "permission-v2"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        }
        if self.knobs.revocation:
            doc["revocation_endpoint"] = f"{self.base_url}/auth/revoke"
        return JSONResponse(doc)

    async def metadata(self, request: Request) -> Response:
        await self._record(request)
        if not self.knobs.metadata:
            return Response(status_code=404)
        uris = [
            {"url": "authorize", "valueUri": f"{self.base_url}/auth/authorize"},
            {"url": "token", "valueUri": f"{self.base_url}/auth/token"},
        ]
        if self.knobs.revocation:
            uris.append({"url": "revoke", "valueUri": f"{self.base_url}/auth/revoke"})
        return JSONResponse(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["json"],
                "rest": [
                    {
                        "mode": "server",
                        "security": {
                            "extension": [
                                {
                                    "url": "http://fhir-registry.smarthealthit.org/"
                                    "StructureDefinition/oauth-uris",
                                    "extension": uris,
                                }
                            ]
                        },
                    }
                ],
            }
        )

    # -- OAuth -----------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        await self._record(request)
        q = request.query_params
        if q.get("client_id") != CLIENT_ID:
            return self._oauth_error("invalid_request", "unknown client_id")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in self.knobs.redirect_uris:
            # Never redirect to an unregistered URI (RFC 6749 4.1.2.1).
            return self._oauth_error("invalid_request", "unregistered redirect_uri")
        state = q.get("state", "")

        def fail(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description, "state": state}
            return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

        if q.get("response_type") != "code":
            return fail("unsupported_response_type", "only code")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return fail("invalid_request", "PKCE with S256 is required")
        if q.get("aud") != self.fhir_base:
            return fail("invalid_request", "aud is not this FHIR server")
        granted = [
            s
            for s in q.get("scope", "").split()
            if self._scope_ok(s) and s.split("/")[-1].split(".")[0] not in self.knobs.withhold
        ]
        code = "code-" + secrets.token_urlsafe(24)
        self.codes[code] = CodeGrant(
            CLIENT_ID,
            redirect_uri,
            q["code_challenge"],
            Family(self.login_patient, " ".join(granted)),
        )
        return RedirectResponse(
            f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302
        )

    @staticmethod
    def _scope_ok(scope: str) -> bool:
        if scope in ("launch/patient", "openid", "fhirUser", "offline_access"):
            return True
        if scope.startswith("patient/") and "." in scope:
            rtype, perm = scope[8:].split(".", 1)
            return rtype in SUPPORTED_TYPES and perm in ("rs", "read")
        return False

    async def token(self, request: Request) -> Response:
        form = await self._record(request)
        if form.get("client_id") != CLIENT_ID:
            return self._oauth_error("invalid_client", "unknown client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_exchange(form)
        if grant_type == "refresh_token":
            return self._refresh(form)
        return self._oauth_error("unsupported_grant_type", "no such grant type")

    def _code_exchange(self, form: dict[str, str]) -> Response:
        grant = self.codes.get(form.get("code", ""))
        if grant is None:
            return self._oauth_error("invalid_grant", "unknown code")
        if grant.used:
            # A replayed code: refuse, and revoke what it issued (RFC 6749 4.1.2).
            self._revoke_family(grant.family)
            return self._oauth_error("invalid_grant", "code already used")
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._oauth_error("invalid_grant", "redirect_uri does not match")
        verifier = form.get("code_verifier")
        if not verifier:
            return self._oauth_error("invalid_grant", "code_verifier is required")
        if not secrets.compare_digest(s256(verifier), grant.challenge):
            return self._oauth_error("invalid_grant", "code_verifier does not match")
        answer = self._issue(grant.family)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    def _refresh(self, form: dict[str, str]) -> Response:
        token = form.get("refresh_token", "")
        grant = self.refresh.get(token)
        if grant is None or grant.family.revoked:
            return self._oauth_error("invalid_grant", "refresh token is not valid")
        if grant.rotated:
            # Reuse of a rotated refresh token: assume theft, revoke the family.
            self._revoke_family(grant.family)
            return self._oauth_error("invalid_grant", "refresh token was already used")
        if self.knobs.rotate_refresh:
            grant.rotated = True
        answer = self._issue(grant.family, refresh=self.knobs.rotate_refresh)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    async def revoke(self, request: Request) -> Response:
        form = await self._record(request)
        token = form.get("token", "")
        if token in self.refresh:
            self._revoke_family(self.refresh[token].family)
        elif token in self.access:
            self.access[token].revoked = True
        return Response(status_code=200)

    # -- FHIR ------------------------------------------------------------------------

    def _fhir_error(self, status: int, text: str) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else {}
        return JSONResponse(
            {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "security", "diagnostics": text}],
            },
            status_code=status,
            headers=headers,
        )

    def _allowed(self, grant: AccessGrant, rtype: str) -> bool:
        scopes = grant.family.scope.split()
        return f"patient/{rtype}.rs" in scopes or f"patient/{rtype}.read" in scopes

    async def read(self, request: Request) -> Response:
        await self._record(request)
        grant = self._bearer(request)
        if grant is None:
            return self._fhir_error(401, "invalid or expired token")
        rtype, rid = request.path_params["rtype"], request.path_params["rid"]
        if not self._allowed(grant, rtype):
            return self._fhir_error(403, "scope")
        for resource in self.patients.get(grant.family.patient, {}).get(rtype, []):
            if resource["id"] == rid:
                return JSONResponse(resource, media_type="application/fhir+json")
        return self._fhir_error(404, "not found")

    async def search(self, request: Request) -> Response:
        await self._record(request)
        grant = self._bearer(request)
        if grant is None:
            return self._fhir_error(401, "invalid or expired token")
        rtype = request.path_params["rtype"]
        q = request.query_params
        if not self._allowed(grant, rtype) or rtype in self.knobs.forbid:
            return self._fhir_error(403, "scope")
        if q.get("patient") != grant.family.patient:
            return self._fhir_error(403, "other patient")
        matches = list(self.patients.get(grant.family.patient, {}).get(rtype, []))
        since = q.get("_lastUpdated")
        if since:
            if not since.startswith("gt"):
                return self._fhir_error(400, "only gt is supported")
            cut = datetime.fromisoformat(since[2:].replace("Z", "+00:00"))
            matches = [
                r
                for r in matches
                if datetime.fromisoformat(r["meta"]["lastUpdated"].replace("Z", "+00:00")) > cut
            ]
        count = min(int(q.get("_count", self.knobs.page_size)), self.knobs.page_size)
        offset = int(q.get("_offset", 0))
        if rtype == self.knobs.fail_type and offset > 0:
            return self._fhir_error(500, "the database is down")
        page = matches[offset : offset + count]
        params = {k: v for k, v in q.items() if k != "_offset"}
        links = [{"relation": "self", "url": str(request.url)}]
        if offset + count < len(matches):
            nxt = urlencode({**params, "_offset": offset + count})
            links.append({"relation": "next", "url": f"{self.fhir_base}/{rtype}?{nxt}"})
        return JSONResponse(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(matches),
                "link": links,
                "entry": [
                    {
                        "fullUrl": f"{self.fhir_base}/{rtype}/{r['id']}",
                        "resource": r,
                        "search": {"mode": "match"},
                    }
                    for r in page
                ],
            },
            media_type="application/fhir+json",
        )
