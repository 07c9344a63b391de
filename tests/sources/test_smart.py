"""The SMART on FHIR client: end to end over real HTTP, OAuth rules, SSRF guard, secrets.

The end-to-end tests run against ``_smart_server`` (OAuth 2 + FHIR on 127.0.0.1,
started here); the SSRF tests use respx and an injected resolver, so no packet
leaves the machine. Expected counts are computed from the Synthea bundle files.
"""

from __future__ import annotations

import http.client
import logging
import math
import os
import pickle
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import respx
import sqlalchemy as sa

from healthspace.cli import main
from healthspace.errors import IntegrityError, SourceError, SpaceAccessError, UsageError
from healthspace.sources._smart_discovery import discover
from healthspace.sources._smart_fhir import RESOURCE_TYPES, FhirReader, scopes
from healthspace.sources._smart_net import (
    BlockedAddressError,
    UrlGuard,
    _GuardedBackend,
    guarded_client,
)
from healthspace.sources._smart_oauth import (
    OAuthClient,
    PendingAuthorization,
    Secret,
    TokenSet,
)
from healthspace.sources.smart import (
    OAuthError,
    ReauthorizationRequired,
    SmartClient,
    StateMismatchError,
)
from healthspace.store import HealthGrant, RecordRepository, Space, SpaceSession, Store, User
from healthspace.store.connections import ConnectionRepository
from healthspace.store.tables import audit_log, connections
from tests.conftest import SHARED_DATA, files_containing
from tests.sources._smart_server import CLIENT_ID, REDIRECT_URI, SmartServer, s256

SYNTHEA = SHARED_DATA / "fhir" / "synthea-r4"
EVELYN = next(SYNTHEA.glob("Evelyn_McCullough_*.json"))  # 263 entries, 7 Observation pages
BUSTER = next(SYNTHEA.glob("Buster_Hoeger_*.json"))  # 66 entries, the small one
# The types the brief names; the client must ask for exactly these (plus Patient).
SUPPORTED = {
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
}
PUBLIC_IP = "93.184.216.34"
# The flow tests need one engine; the end-to-end and storage tests run on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def served(path: Path) -> tuple[str, set[str]]:
    """(patient id, {"Type/id"} the server serves for the types we sync), from the file."""
    bundle = orjson.loads(path.read_bytes())
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    return patient, {
        f"{r['resourceType']}/{r['id']}" for r in resources if r["resourceType"] in SUPPORTED
    }


@pytest.fixture(scope="module")
def smart_server() -> Iterator[SmartServer]:
    server = SmartServer(sorted(SYNTHEA.glob("*.json")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(smart_server: SmartServer) -> SmartServer:
    smart_server.reset(patient=served(BUSTER)[0])
    return smart_server


@dataclass
class BrowserAnswer:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def browser(authorize_url: str) -> BrowserAnswer:
    """The person's browser, another program: plain http.client, redirects not followed.

    Not httpx, so the client's own log capture sees only the client (T-ENC-5).
    """
    url = urlsplit(authorize_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", f"{url.path}?{url.query}")
        answer = conn.getresponse()
        return BrowserAnswer(
            answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        )
    finally:
        conn.close()


def connect(client: SmartClient, server: SmartServer, **kwargs: Any) -> str:
    started = client.start(
        server.fhir_base,
        client_id=CLIENT_ID,
        redirect_uri=kwargs.pop("redirect_uri", REDIRECT_URI),
        allow_insecure_loopback=True,
        **kwargs,
    )
    answer = browser(started.authorize_url)
    assert answer.status_code == 302, answer.body
    return client.finish(answer.headers["location"])


def n_obs_links(expected: set[str]) -> int:
    """Every Observation of the sample names its encounter: at least that many links."""
    return sum(ref.startswith("Observation/") for ref in expected) - 1


def stored_refs(health: SpaceSession) -> list[str]:
    return [
        r.record.provenance.original_ref
        for r in RecordRepository(health).list()
        if r.record.provenance is not None and r.record.provenance.original_ref is not None
    ]


def token_grants(server: SmartServer, grant_type: str) -> list[dict[str, str]]:
    return [r["form"] for r in server.sent("/auth/token") if r["form"]["grant_type"] == grant_type]


# -- end to end -------------------------------------------------------------------------


def test_connect_sync_resync_refresh_disconnect(
    server: SmartServer, health: SpaceSession, store: Store
) -> None:
    patient, expected = served(EVELYN)
    server.reset(patient=patient)
    client = SmartClient(health)
    cid = connect(client, server)
    [info] = client.connections()
    assert (info.connection_id, info.status) == (cid, "active")
    assert "patient/Observation.rs" in info.scope.split()

    first = client.sync(cid)
    refs = stored_refs(health)
    assert set(refs) == expected
    assert len(refs) == len(expected) == sum(first.imported.values())
    assert first.resources == dict(Counter(ref.split("/")[0] for ref in expected))
    # References across pages and types link up: a report's results and an
    # observation's encounter are the identities of records fetched elsewhere.
    records = [r.record for r in RecordRepository(health).list()]
    identities = {r.source_id for r in records}
    links = [i for r in records for i in getattr(r, "result_ids", ())]
    links += [r.encounter_id for r in records if getattr(r, "encounter_id", None)]
    assert len(links) > n_obs_links(expected)
    assert set(links) <= identities
    # Paging: 20 entries a page, every page followed.
    n_obs = sum(ref.startswith("Observation/") for ref in expected)
    obs_pages = list(server.sent("/fhir/Observation"))
    assert len(obs_pages) == math.ceil(n_obs / 20) == 7
    assert [int(r["query"].get("_offset", 0)) for r in obs_pages] == list(range(0, n_obs, 20))

    server.requests.clear()
    second = client.sync(cid)
    assert second.imported == {}
    assert second.updated == 0
    searches = [r for r in server.requests if "patient" in r["query"]]
    assert len(searches) == len(RESOURCE_TYPES)
    assert all(r["query"]["_lastUpdated"].startswith("gt") for r in searches)
    assert len(stored_refs(health)) == len(expected)

    touched = server.touch(patient, "Observation", 3)
    third = client.sync(cid)
    assert (third.imported, third.updated) == ({}, 1)
    assert third.resources == {"Patient": 1, "Observation": 1}
    assert len(stored_refs(health)) == len(expected)
    assert f"Observation/{touched['id']}" in expected

    # The server expires the access token: the next request gets 401, the client
    # refreshes once, stores the rotated tokens, and the sync completes.
    server.expire_access_tokens()
    before = ConnectionRepository(health).tokens(cid)
    fourth = client.sync(cid)
    assert fourth.imported == {}
    assert len(token_grants(server, "refresh_token")) == 1
    after = ConnectionRepository(health).tokens(cid)
    assert after is not None
    assert after != before
    newest = TokenSet.from_json(after).refresh_token
    assert newest is not None
    assert not server.refresh[newest.reveal()].rotated

    result = client.disconnect(cid)
    assert result.revoked
    with store.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count())
            .select_from(connections)
            .where(connections.c.connection_id == cid)
        ).scalar()
        actions = conn.execute(
            sa.select(audit_log.c.action).where(audit_log.c.user_id == health.user_id)
        ).scalars()
        assert "connection.delete" in set(actions)
    assert left == 0
    assert newest.reveal() in {r["form"]["token"] for r in server.sent("/auth/revoke")}
    assert server.refresh[newest.reveal()].family.revoked
    with pytest.raises(UsageError, match="no connection"):
        client.sync(cid)
    assert len(stored_refs(health)) == len(expected)  # disconnecting keeps what was synced


@sqlite_only
def test_token_near_expiry_is_refreshed_before_reading(
    server: SmartServer, health: SpaceSession
) -> None:
    server.knobs.access_ttl = 30  # inside the client's 60 s leeway
    client = SmartClient(health)
    cid = connect(client, server)
    server.requests.clear()
    client.sync(cid)
    paths = [r["path"] for r in server.requests]
    assert paths[0] == "/auth/token"
    assert paths[1].startswith("/fhir/Patient/")
    assert len(token_grants(server, "refresh_token")) == 1


@sqlite_only
def test_rotated_refresh_tokens_are_never_sent_again(
    server: SmartServer, health: SpaceSession
) -> None:
    client = SmartClient(health)
    cid = connect(client, server)
    for _ in range(4):
        server.expire_access_tokens()
        client.sync(cid)
    sent = [f["refresh_token"] for f in token_grants(server, "refresh_token")]
    assert len(sent) == 4
    assert len(set(sent)) == 4
    # The server revokes the whole family on a reused token: it never had to.
    assert not any(g.family.revoked for g in server.refresh.values())
    stored = TokenSet.from_json(ConnectionRepository(health).tokens(cid) or b"")
    assert stored.refresh_token is not None
    assert stored.refresh_token.reveal() not in sent


@sqlite_only
def test_refused_refresh_token_asks_for_reauthorisation(
    server: SmartServer, health: SpaceSession
) -> None:
    client = SmartClient(health)
    cid = connect(client, server)
    client.sync(cid)
    for grant in server.refresh.values():
        grant.family.revoked = True  # revoked at the portal
    server.expire_access_tokens()
    with pytest.raises(ReauthorizationRequired) as failure:
        client.sync(cid)
    message = str(failure.value)
    assert "invalid_grant" in message
    assert not any(t in message for t in [*server.refresh, *server.access])
    state = ConnectionRepository(health).get(cid)
    assert state.status == "reauth"
    assert not state.has_tokens
    with pytest.raises(ReauthorizationRequired, match="needs re-authorisation"):
        client.sync(cid)
    # Re-authorising keeps the connection (and its sync cursor).
    assert connect(client, server, reconnect=cid) == cid
    again = client.sync(cid)
    assert again.imported == {}
    assert ConnectionRepository(health).get(cid).status == "active"
    # Re-authorising an active connection revokes the grant it replaces.
    replaced = TokenSet.from_json(ConnectionRepository(health).tokens(cid) or b"")
    assert replaced.refresh_token is not None
    connect(client, server, reconnect=cid)
    assert server.refresh[replaced.refresh_token.reveal()].family.revoked
    with pytest.raises(UsageError, match="another FHIR base"):
        client.start(
            "https://other.example.org/fhir",
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT_URI,
            reconnect=cid,
        )


@sqlite_only
def test_metadata_fallback_and_no_revocation_endpoint(
    server: SmartServer, health: SpaceSession
) -> None:
    server.knobs.well_known = False
    server.knobs.revocation = False
    client = SmartClient(health)
    cid = connect(client, server)
    assert server.sent("/fhir/metadata")
    assert client.sync(cid).imported
    result = client.disconnect(cid)
    assert not result.revoked
    assert result.revocation_error is None
    assert server.sent("/auth/revoke") == []
    assert client.connections() == []


@sqlite_only
def test_types_not_granted_or_refused_are_skipped_with_a_warning(
    server: SmartServer, health: SpaceSession
) -> None:
    server.knobs.withhold = frozenset({"Condition"})
    server.knobs.forbid = frozenset({"Immunization"})
    client = SmartClient(health)
    cid = connect(client, server)
    assert "patient/Condition.rs" not in client.connections()[0].scope.split()
    result = client.sync(cid)
    assert "condition" not in result.imported
    assert "immunization" not in result.imported
    assert result.imported["observation"] > 0
    assert server.sent("/fhir/Condition") == []
    assert any(w.startswith("Condition: not granted") for w in result.warnings)
    assert any(w.startswith("Immunization:") and "403" in w for w in result.warnings)


@sqlite_only
def test_a_failed_sync_keeps_nothing_and_the_next_gets_everything(
    server: SmartServer, health: SpaceSession
) -> None:
    _, expected = served(BUSTER)
    server.knobs.fail_type = "Observation"
    client = SmartClient(health)
    cid = connect(client, server)
    with pytest.raises(SourceError, match=r"127\.0\.0\.1: Observation page 2: .*HTTP 500"):
        client.sync(cid)
    assert stored_refs(health) == []
    assert "cursor" not in ConnectionRepository(health).get(cid).config
    server.knobs.fail_type = None
    assert sum(client.sync(cid).imported.values()) == len(expected)
    assert set(stored_refs(health)) == expected


# -- T-CON-6, client side ---------------------------------------------------------------


@sqlite_only
def test_state_mismatch_is_rejected(server: SmartServer, health: SpaceSession) -> None:
    client = SmartClient(health)
    started = client.start(
        server.fhir_base,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        allow_insecure_loopback=True,
    )
    location = browser(started.authorize_url).headers["location"]
    forged = re.sub(r"state=[^&]+", "state=forged", location)
    with pytest.raises(StateMismatchError, match="state"):
        client.finish(forged)
    assert token_grants(server, "authorization_code") == []  # no code was spent
    assert client.finish(location) == started.connection_id


@sqlite_only
def test_client_always_sends_s256_and_a_verifier(server: SmartServer, health: SpaceSession) -> None:
    client = SmartClient(health)
    connect(client, server)
    connect(client, server)
    authorizations = server.sent("/auth/authorize")
    exchanges = token_grants(server, "authorization_code")
    assert len(authorizations) == len(exchanges) == 2
    for auth, form in zip(authorizations, exchanges, strict=True):
        assert auth["query"]["code_challenge_method"] == "S256"
        assert auth["query"]["aud"] == server.fhir_base
        assert set(auth["query"]["scope"].split()) == set(scopes().split())
        verifier = form["code_verifier"]
        assert 43 <= len(verifier) <= 128
        assert s256(verifier) == auth["query"]["code_challenge"]
    assert exchanges[0]["code_verifier"] != exchanges[1]["code_verifier"]


@sqlite_only
def test_server_rejects_plain_and_client_surfaces_it(
    server: SmartServer, health: SpaceSession
) -> None:
    client = SmartClient(health)
    started = client.start(
        server.fhir_base,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        allow_insecure_loopback=True,
    )
    downgraded = started.authorize_url.replace(
        "code_challenge_method=S256", "code_challenge_method=plain"
    )
    answer = browser(downgraded)
    assert answer.status_code == 302
    assert "code=" not in answer.headers["location"]
    with pytest.raises(OAuthError, match=r"invalid_request.*S256"):
        client.finish(answer.headers["location"])


@sqlite_only
def test_wrong_verifier_is_rejected(server: SmartServer, health: SpaceSession) -> None:
    client = SmartClient(health)
    started = client.start(
        server.fhir_base,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        allow_insecure_loopback=True,
    )
    repo = ConnectionRepository(health)
    config = repo.get(started.connection_id).config
    config["pending"]["verifier"] = Secret.new().reveal()
    repo.update(started.connection_id, config=config)
    location = browser(started.authorize_url).headers["location"]
    with pytest.raises(OAuthError, match=r"invalid_grant.*code_verifier does not match") as failure:
        client.finish(location)
    assert config["pending"]["verifier"] not in str(failure.value)
    assert repo.get(started.connection_id).status == "pending"
    assert not repo.get(started.connection_id).has_tokens


@sqlite_only
def test_code_reuse_is_rejected(server: SmartServer, health: SpaceSession) -> None:
    client = SmartClient(health)
    started = client.start(
        server.fhir_base,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        allow_insecure_loopback=True,
    )
    location = browser(started.authorize_url).headers["location"]
    client.finish(location)
    # Our client spends a pending authorization once: the replay never leaves it.
    with pytest.raises(StateMismatchError):
        client.finish(location)
    # Replayed at the protocol level, the server refuses it and revokes what it issued.
    first_form = token_grants(server, "authorization_code")[0]
    with guarded_client(UrlGuard(allow_insecure_loopback=True), follow_redirects=False) as http:
        oauth = OAuthClient(
            http,
            authorize_endpoint=f"{server.base_url}/auth/authorize",
            token_endpoint=f"{server.base_url}/auth/token",
            revocation_endpoint=None,
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT_URI,
            scope=scopes(),
        )
        pending = PendingAuthorization(
            Secret(httpx.URL(location).params["state"]),
            Secret(first_form["code_verifier"]),
            int(time.time()),
        )
        with pytest.raises(OAuthError, match=r"invalid_grant.*already used"):
            oauth.exchange(location, pending)
    assert all(g.family.revoked for g in server.access.values())


@sqlite_only
def test_unregistered_redirect_uri_is_refused_without_redirect(
    server: SmartServer, health: SpaceSession
) -> None:
    client = SmartClient(health)
    started = client.start(
        server.fhir_base,
        client_id=CLIENT_ID,
        redirect_uri="https://evil.example.org/steal",
        allow_insecure_loopback=True,
    )
    answer = browser(started.authorize_url)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.json()["error"] == "invalid_request"
    assert "redirect_uri" in answer.json()["error_description"]
    assert server.codes == {}


# -- T-SSRF-1 ------------------------------------------------------------------------------


def resolver(mapping: dict[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in mapping:
            raise socket.gaierror(f"unknown host {host}")
        return mapping[host]

    return resolve


NAMES = resolver(
    {
        "fhir.example.org": [PUBLIC_IP],
        "elsewhere.example.net": ["198.41.0.4"],
        "localhost": ["127.0.0.1"],
        "metadata.example.org": ["169.254.169.254"],
        "internal.example.org": ["10.0.0.7"],
        "split.example.org": [PUBLIC_IP, "192.168.1.20"],
        "v6.example.org": ["fd12:3456::1"],
    }
)
WELL_KNOWN = {
    "authorization_endpoint": "https://fhir.example.org/auth/authorize",
    "token_endpoint": "https://fhir.example.org/auth/token",
    "code_challenge_methods_supported": ["S256"],
}


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1/fhir",
        "https://127.0.0.1/fhir",
        "https://localhost/fhir",
        "https://169.254.169.254/fhir",
        "https://metadata.example.org/fhir",
        "https://10.0.0.1/fhir",
        "https://172.16.4.2/fhir",
        "https://192.168.0.10/fhir",
        "https://split.example.org/fhir",
        "https://0.0.0.0/fhir",
        "https://224.0.0.251/fhir",
        "https://[::1]/fhir",
        "https://[fe80::1]/fhir",
        "https://[fc00::5]/fhir",
        "https://v6.example.org/fhir",
        "https://[::ffff:10.0.0.1]/fhir",
        "http://fhir.example.org/fhir",
        "https://user:pw@fhir.example.org/fhir",
        "file:///etc/passwd",
    ],
)
def test_discovery_to_internal_or_insecure_urls_is_blocked(base: str) -> None:
    guard = UrlGuard(NAMES)
    with respx.mock(assert_all_called=False) as mock:
        anything = mock.route().mock(return_value=httpx.Response(200, json=WELL_KNOWN))
        with (
            guarded_client(guard, follow_redirects=True) as http,
            pytest.raises(BlockedAddressError),
        ):
            discover(http, guard, base)
        assert not anything.called


@sqlite_only
def test_smart_client_refuses_loopback_without_the_testing_flag(
    server: SmartServer, health: SpaceSession
) -> None:
    with pytest.raises(BlockedAddressError, match="plain http"):
        SmartClient(health).start(server.fhir_base, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI)
    https_loopback = server.fhir_base.replace("http://", "https://")
    with pytest.raises(BlockedAddressError, match="loopback"):
        SmartClient(health).start(https_loopback, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI)
    assert server.requests == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/admin",
        "https://internal.example.org/fhir/.well-known/smart-configuration",
        "https://10.0.0.1/",
    ],
)
def test_redirect_to_an_internal_host_is_blocked(target: str) -> None:
    guard = UrlGuard(NAMES)
    with respx.mock(assert_all_called=False) as mock:
        mock.get("https://fhir.example.org/fhir/.well-known/smart-configuration").mock(
            return_value=httpx.Response(302, headers={"Location": target})
        )
        inside = mock.route().mock(return_value=httpx.Response(200, json=WELL_KNOWN))
        with (
            guarded_client(guard, follow_redirects=True) as http,
            pytest.raises(BlockedAddressError),
        ):
            discover(http, guard, "https://fhir.example.org/fhir")
        assert not inside.called


def test_discovered_endpoints_on_internal_hosts_are_refused() -> None:
    guard = UrlGuard(NAMES)
    bad = {**WELL_KNOWN, "token_endpoint": "https://10.0.0.1/token"}
    with respx.mock() as mock:
        mock.get("https://fhir.example.org/fhir/.well-known/smart-configuration").mock(
            return_value=httpx.Response(200, json=bad)
        )
        with (
            guarded_client(guard, follow_redirects=True) as http,
            pytest.raises(BlockedAddressError, match="private"),
        ):
            discover(http, guard, "https://fhir.example.org/fhir")


def test_discovery_works_for_a_public_host_and_falls_back_to_metadata() -> None:
    guard = UrlGuard(NAMES)
    statement = {
        "resourceType": "CapabilityStatement",
        "rest": [
            {
                "security": {
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org"
                            "/StructureDefinition/oauth-uris",
                            "extension": [
                                {"url": "authorize", "valueUri": "https://fhir.example.org/a"},
                                {"url": "token", "valueUri": "https://fhir.example.org/t"},
                                {"url": "revoke", "valueUri": "https://fhir.example.org/r"},
                            ],
                        }
                    ]
                }
            }
        ],
    }
    with respx.mock() as mock:
        mock.get("https://fhir.example.org/fhir/.well-known/smart-configuration").mock(
            return_value=httpx.Response(404)
        )
        mock.get("https://fhir.example.org/fhir/metadata").mock(
            return_value=httpx.Response(200, json=statement)
        )
        with guarded_client(guard, follow_redirects=True) as http:
            found = discover(http, guard, "https://fhir.example.org/fhir/")
    assert (found.authorize, found.token, found.revocation) == (
        "https://fhir.example.org/a",
        "https://fhir.example.org/t",
        "https://fhir.example.org/r",
    )
    assert found.fhir_base == "https://fhir.example.org/fhir"


def searchset(next_url: str | None, n: int = 2) -> dict[str, Any]:
    links = [{"relation": "next", "url": next_url}] if next_url else []
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {"resource": {"resourceType": "Observation", "id": f"o{i}", "status": "final"}}
            for i in range(n)
        ],
    }


def refused_next_link(next_url: str, error: type[Exception], match: str) -> None:
    """Page 1 of a search links to ``next_url``: reading on fails, nothing else is contacted."""
    guard = UrlGuard(NAMES)
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url__startswith="https://fhir.example.org/fhir/Observation").mock(
            side_effect=lambda request: httpx.Response(200, json=searchset(next_url))
        )
        elsewhere = mock.route().mock(return_value=httpx.Response(200, json=searchset(None)))
        with guarded_client(guard, follow_redirects=True) as http:
            reader = FhirReader(
                http, guard, "https://fhir.example.org/fhir", lambda force: Secret("t0ken")
            )
            pages = reader.search("Observation", {"patient": "p1"})
            assert len(next(pages).entries) == 2
            with pytest.raises(error, match=match):
                next(pages)
        assert not elsewhere.called


@pytest.mark.parametrize(
    "next_url",
    [
        "https://internal.example.org/fhir/Observation?page=2",
        "https://169.254.169.254/fhir/Observation?page=2",
        "http://127.0.0.1:8080/fhir/Observation?page=2",
        "https://[::1]/fhir/Observation?page=2",
    ],
)
def test_next_link_to_an_internal_host_is_blocked(next_url: str) -> None:
    refused_next_link(next_url, BlockedAddressError, "refused")


def test_next_link_to_another_public_host_is_refused_and_loops_end() -> None:
    refused_next_link(
        "https://elsewhere.example.net/fhir/Observation?page=2", SourceError, "leaves the FHIR"
    )
    refused_next_link(
        "https://fhir.example.org/fhir/Observation?patient=p1&_count=100", SourceError, "loop"
    )


def test_page_limit_ends_an_endless_search() -> None:
    guard = UrlGuard(NAMES)
    with respx.mock() as mock:

        def endless(request: httpx.Request) -> httpx.Response:
            page = int(request.url.params.get("p", 0)) + 1
            return httpx.Response(
                200, json=searchset(f"{request.url.copy_with(query=None)}?p={page}")
            )

        mock.get(url__startswith="https://fhir.example.org/fhir/Observation").mock(
            side_effect=endless
        )
        with guarded_client(guard, follow_redirects=True) as http:
            reader = FhirReader(
                http, guard, "https://fhir.example.org/fhir", lambda f: Secret("t"), max_pages=5
            )
            with pytest.raises(SourceError, match="more than 5 pages"):
                list(reader.search("Observation", {"patient": "p1"}))


def test_dns_rebinding_is_caught_when_connecting() -> None:
    """The name is public when the URL is checked and loopback when the socket opens."""
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    guard = UrlGuard(lambda host, port: next(answers))
    with (
        guarded_client(guard, follow_redirects=False) as http,
        pytest.raises(BlockedAddressError, match="loopback"),
    ):
        http.get("https://rebind.example.org/fhir/metadata")
    backend = _GuardedBackend(UrlGuard(resolver({"x.example.org": ["10.9.8.7"]})))
    with pytest.raises(BlockedAddressError, match="private"):
        backend.connect_tcp("x.example.org", 443)


def test_the_testing_flag_opens_loopback_only() -> None:
    guard = UrlGuard(NAMES, allow_insecure_loopback=True)
    assert guard.check_url("http://127.0.0.1:8080/fhir").host == "127.0.0.1"
    assert guard.check_url("https://fhir.example.org/fhir").host == "fhir.example.org"
    for refused in ("http://fhir.example.org/fhir", "http://10.0.0.1/", "https://169.254.169.254/"):
        with pytest.raises(BlockedAddressError):
            guard.check_url(refused)


# -- T-ENC-5 and storage ---------------------------------------------------------------------


def test_secrets_never_reach_logs_errors_or_the_database(
    server: SmartServer,
    health: SpaceSession,
    store: Store,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "authlib", "healthspace"):
        caplog.set_level(logging.DEBUG, logger=name)
    client = SmartClient(health)
    cid = connect(client, server)
    client.sync(cid)
    server.expire_access_tokens()
    client.sync(cid)  # refresh with rotation
    tokens = TokenSet.from_json(ConnectionRepository(health).tokens(cid) or b"")
    shown = [repr(tokens), str(tokens.access_token), f"{tokens.refresh_token}"]
    # A second authorization left pending: its verifier and state sit in the config.
    waiting = client.start(
        server.fhir_base,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        allow_insecure_loopback=True,
    )
    repo = ConnectionRepository(health)
    pending = repo.get(waiting.connection_id).config["pending"]
    shown.append(repr(repo.list()))
    for grant in server.refresh.values():
        grant.family.revoked = True
    server.expire_access_tokens()
    with pytest.raises(ReauthorizationRequired) as failure:
        client.sync(cid)
    shown.append(str(failure.value))
    assert "HTTP Request" in caplog.text  # the capture works: httpx logged every call
    secrets_used = [
        *server.access,
        *server.refresh,
        *server.codes,
        *(f["code_verifier"] for f in token_grants(server, "authorization_code")),
        pending["verifier"],
    ]
    assert len(secrets_used) >= 7
    text = caplog.text + "\n".join(shown)
    assert [s for s in secrets_used if s in text] == []
    assert re.findall(r"\b(?:at|rt|code)-[A-Za-z0-9_-]{20,}", text) == []
    with pytest.raises(TypeError):
        pickle.dumps(tokens.access_token)
    if store.engine.dialect.name == "sqlite":
        # The database, its WAL and the keystore, all under tmp_path.
        hits = [s for s in secrets_used if files_containing(s.encode(), tmp_path)]
        assert hits == []
        # The provider's address is encrypted too.
        assert files_containing(server.base_url.split("//")[1].encode(), tmp_path) == []


def test_tokens_are_bound_to_their_row(health: SpaceSession, store: Store) -> None:
    """T-ENC-2 for tokens: a token envelope copied to another connection does not open."""
    repo = ConnectionRepository(health)
    a = repo.create(kind="smart", config={"x": 1})
    b = repo.create(kind="smart", config={"x": 2})
    repo.update(a, tokens=b'{"access_token": "secret-a"}', status="active")
    with store.engine.begin() as conn:
        envelope = conn.execute(
            sa.select(connections.c.tokens).where(connections.c.connection_id == a)
        ).scalar()
        conn.execute(
            connections.update().where(connections.c.connection_id == b).values(tokens=envelope)
        )
    assert repo.tokens(a) == b'{"access_token": "secret-a"}'
    with pytest.raises(IntegrityError):
        repo.tokens(b)


def test_deleting_the_space_or_the_account_leaves_no_usable_connection(
    store: Store, user: User, health: SpaceSession
) -> None:
    repo = ConnectionRepository(health)
    cid = repo.create(kind="smart", config={"endpoints": {"fhir_base": "https://x.example"}})
    repo.update(cid, tokens=b'{"access_token": "shredded"}', status="active")
    store.delete_space(user.user_id, Space.HEALTH)
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("t")) as fresh:
        assert SmartClient(fresh).connections() == []
        # The row went with the space, tokens and all.
        with pytest.raises(UsageError, match="no connection"):
            ConnectionRepository(fresh).tokens(cid)
    with store.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(connections)
                .where(connections.c.connection_id == cid)
            ).scalar()
            == 0
        )
    store.delete_user(user.user_id)
    with store.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count())
            .select_from(connections)
            .where(connections.c.user_id == user.user_id)
        ).scalar()
    assert left == 0


@sqlite_only
def test_connections_live_in_the_health_space_only(general: SpaceSession) -> None:
    with pytest.raises(SpaceAccessError):
        SmartClient(general)


def test_secret_and_scopes() -> None:
    secret = Secret("abc-very-secret")
    assert "very" not in repr(secret) + str(secret) + f"{secret}"
    assert secret == Secret("abc-very-secret")
    assert secret != Secret("other")
    wanted = scopes().split()
    assert {"launch/patient", "openid", "fhirUser", "offline_access"} <= set(wanted)
    assert {s.split("/")[1].split(".")[0] for s in wanted if s.startswith("patient/")} == SUPPORTED
    assert all(s.endswith(".rs") for s in wanted if s.startswith("patient/"))
    assert not any("*" in s for s in wanted)
    assert set(RESOURCE_TYPES) | {"Patient"} == SUPPORTED


# -- the command line -------------------------------------------------------------------


def test_cli_connect_callback_sync_list_disconnect(
    server: SmartServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [k for k in os.environ if k.startswith("HEALTHSPACE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HEALTHSPACE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEALTHSPACE_KEY_FILE", str(tmp_path / "config" / "root.key"))
    email = "portal@example.org"
    seen: list[str] = []

    def run(*args: str, code: int = 0) -> dict[str, Any]:
        assert main([*args, "--json"]) == code
        out, err = capsys.readouterr()
        seen.append(out + err)
        return dict(orjson.loads(out))

    run("init")
    run("user", "add", email)
    started = run(
        "connect", "smart", server.fhir_base, "--user", email, "--client-id", CLIENT_ID,
        "--redirect-uri", REDIRECT_URI, "--allow-insecure-loopback",
    )  # fmt: skip
    location = browser(started["authorize_url"]).headers["location"]
    cid = run("connect", "callback", location, "--user", email)["connection_id"]
    assert cid == started["connection_id"]
    synced = run("sync", "--user", email)
    _, expected = served(BUSTER)
    assert synced["errors"] == []
    assert sum(synced["imported"].values()) == len(expected)
    assert run("sync", "--user", email)["imported"] == {}
    [listed] = run("connections", "--user", email)["connections"]
    assert (listed["connection_id"], listed["status"]) == (cid, "active")
    assert listed["fhir_base"] == server.fhir_base
    assert listed["last_sync_at"] is not None
    gone = run("disconnect", cid, "--user", email)
    assert gone["revoked"] is True
    refused = run("sync", "--user", email, "--connection", cid, code=1)
    assert "no connection" in refused["errors"][0]
    assert run("connections", "--user", email) == {"connections": []}
    # Without --json, stdout is the authorization URL alone, ready to open.
    args = ["--user", email, "--client-id", CLIENT_ID, "--redirect-uri", REDIRECT_URI]
    assert main(["connect", "smart", server.fhir_base, *args, "--allow-insecure-loopback"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{server.base_url}/auth/authorize?")
    assert out.count("\n") == 1
    assert "testing only" in err
    assert browser(out.strip()).status_code == 302
    secrets_used = [
        *server.access,
        *server.refresh,
        *server.codes,
        *(f["code_verifier"] for f in token_grants(server, "authorization_code")),
    ]
    printed = "\n".join(seen)
    assert [s for s in secrets_used if s in printed] == []
