"""SMART on FHIR: connect a patient portal and bring its records into the health space.

The standalone-launch flow, one method per step:

1. :meth:`SmartClient.start` discovers the server's endpoints, stores a pending
   connection (provider address, PKCE verifier and state, all encrypted) and
   returns the URL the person opens in their browser.
2. :meth:`SmartClient.finish` takes the URL the browser was sent back to, checks
   its state, trades the code (with the verifier) for tokens and stores them
   encrypted.
3. :meth:`SmartClient.sync` refreshes the tokens when needed (a rotated refresh
   token replaces the old one atomically, under a row lock), reads every page of
   every supported type, feeds it through the FHIR parser and writes it all as
   one import job; later syncs ask only for what changed (``_lastUpdated``).
4. :meth:`SmartClient.disconnect` deletes the tokens at once, then asks the
   server to revoke them.

Every URL goes through the SSRF guard (``_smart_net``); tokens stay in ``Secret``.
This module and the file pipeline are the only sources that reach the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from healthspace.errors import HealthspaceError, UsageError
from healthspace.sources._smart_discovery import SmartEndpoints, discover, normalise_base
from healthspace.sources._smart_fhir import (
    RESOURCE_TYPES,
    AccessDenied,
    FhirReader,
    fhir_instant,
    granted_types,
    scopes,
)
from healthspace.sources._smart_net import Resolver, UrlGuard, guarded_client, system_resolver
from healthspace.sources._smart_oauth import (
    OAuthClient,
    OAuthError,
    PendingAuthorization,
    ReauthorizationRequired,
    Secret,
    StateMismatchError,
    TokenSet,
)
from healthspace.sources._smart_parse import PageParser
from healthspace.sources._smart_types import (
    MANIFEST,
    ConnectionInfo,
    DisconnectResult,
    StartedConnection,
    SyncResult,
)
from healthspace.sources.base import Item
from healthspace.store import Space, SpaceSession, ingest
from healthspace.store.connections import ConnectionRepository, StoredConnection

__all__ = [
    "MANIFEST",
    "ConnectionInfo",
    "DisconnectResult",
    "OAuthError",
    "ReauthorizationRequired",
    "SmartClient",
    "StartedConnection",
    "StateMismatchError",
    "SyncResult",
]

log = logging.getLogger(__name__)

KIND = "smart"
REFRESH_LEEWAY_S = 60


class _Tokens:
    """The live tokens of one sync; refreshes under the row lock and stores rotations."""

    def __init__(self, repo: ConnectionRepository, connection_id: str, oauth: OAuthClient) -> None:
        self.repo = repo
        self.connection_id = connection_id
        self.oauth = oauth
        stored = repo.tokens(connection_id)
        if stored is None:
            raise UsageError(f"connection {connection_id} has no tokens; connect it again")
        self.current = TokenSet.from_json(stored)
        self.refreshed = False

    def access(self, force: bool = False) -> Secret:
        # Ahead of expiry at most once a sync: a server whose tokens live shorter
        # than the leeway would otherwise be asked for new ones on every request.
        # A 401 (``force``) always refreshes.
        if force or (not self.refreshed and self.current.expires_within(REFRESH_LEEWAY_S)):
            self.refresh(force=force)
        return self.current.access_token

    def refresh(self, *, force: bool) -> None:
        failure: ReauthorizationRequired | None = None
        with self.repo.token_lock(self.connection_id) as slot:
            if slot.current is None:
                raise UsageError(f"connection {self.connection_id} was disconnected")
            stored = TokenSet.from_json(slot.current)
            if stored.refresh_token != self.current.refresh_token and not (
                force or stored.expires_within(REFRESH_LEEWAY_S)
            ):
                # Another sync rotated them while we waited for the lock.
                self.current = stored
                return
            try:
                fresh = self.oauth.refresh(stored)
            except ReauthorizationRequired as exc:
                # Keep no dead tokens; the status change commits with the lock.
                slot.clear = True
                slot.status = "reauth"
                failure = exc
            else:
                slot.new = fresh.to_json()
                self.current = fresh
                self.refreshed = True
        if failure is not None:
            log.info("connection %s needs re-authorisation", self.connection_id)
            raise failure
        log.debug("connection %s: tokens refreshed", self.connection_id)


class SmartClient:
    """SMART connections of one health-space session."""

    def __init__(
        self,
        session: SpaceSession,
        *,
        resolver: Resolver = system_resolver,
        timeout: float = 30.0,
        page_size: int = 100,
        max_pages: int = 1000,
    ) -> None:
        session.require(Space.HEALTH)  # portal records and their tokens live in health only
        self.session = session
        self.repo = ConnectionRepository(session)
        self.resolver = resolver
        self.timeout = timeout
        self.page_size = page_size
        self.max_pages = max_pages

    # -- helpers ---------------------------------------------------------------

    def _guard(self, config: dict[str, Any]) -> UrlGuard:
        return UrlGuard(self.resolver, bool(config.get("allow_insecure_loopback", False)))

    def _oauth(self, http: Any, config: dict[str, Any]) -> OAuthClient:
        endpoints = SmartEndpoints.from_dict(config["endpoints"])
        return OAuthClient(
            http,
            authorize_endpoint=endpoints.authorize,
            token_endpoint=endpoints.token,
            revocation_endpoint=endpoints.revocation,
            client_id=config["client_id"],
            redirect_uri=config["redirect_uri"],
            scope=config["scope"],
        )

    def _smart(self, connection_id: str) -> StoredConnection:
        stored = self.repo.get(connection_id)
        if stored.kind != KIND:
            raise UsageError(f"connection {connection_id} is not a SMART connection")
        return stored

    # -- connect -----------------------------------------------------------------

    def start(
        self,
        fhir_base: str,
        *,
        client_id: str,
        redirect_uri: str,
        allow_insecure_loopback: bool = False,
        reconnect: str | None = None,
    ) -> StartedConnection:
        """Discover the server and begin an authorization; ``reconnect`` reuses a connection."""
        base = normalise_base(fhir_base)
        cursor: str | None = None
        if reconnect is not None:
            old = self._smart(reconnect).config
            if SmartEndpoints.from_dict(old["endpoints"]).fhir_base != base:
                # Records are identified by their address on the server: another base
                # would bring everything in a second time.
                raise UsageError(f"connection {reconnect} is for another FHIR base URL")
            cursor = old.get("cursor")
        config: dict[str, Any] = {"allow_insecure_loopback": allow_insecure_loopback}
        guard = self._guard(config)
        with guarded_client(guard, follow_redirects=True, timeout=self.timeout) as http:
            endpoints = discover(http, guard, base)
        config.update(
            endpoints=endpoints.to_dict(),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scopes(v1=endpoints.uses_v1_scopes),
        )
        with guarded_client(guard, follow_redirects=False, timeout=self.timeout) as http:
            url, pending = self._oauth(http, config).authorization_url(aud=base)
        config["pending"] = pending.to_dict()
        if reconnect is not None:
            self.repo.update(reconnect, config={**config, "cursor": cursor})
            return StartedConnection(reconnect, url)
        return StartedConnection(self.repo.create(kind=KIND, config=config), url)

    def finish(self, callback_url: str) -> str:
        """Complete the authorization the callback belongs to; returns the connection id."""
        match: StoredConnection | None = None
        pending: PendingAuthorization | None = None
        for stored in self.repo.list(kind=KIND):
            doc = stored.config.get("pending")
            if not doc:
                continue
            candidate = PendingAuthorization.from_dict(doc)
            try:
                OAuthClient.check_state(callback_url, candidate)
            except StateMismatchError:
                continue
            match, pending = stored, candidate
            break
        if match is None or pending is None:
            raise StateMismatchError(
                "the callback's state matches no authorization this client started "
                "(a forged or stale callback); start again with `healthspace connect smart`",
                place="callback",
            )
        config = {k: v for k, v in match.config.items() if k != "pending"}
        # The pending authorization is spent whatever happens next: one code, one try.
        self.repo.update(match.connection_id, config=config)
        guard = self._guard(config)
        with guarded_client(guard, follow_redirects=False, timeout=self.timeout) as http:
            tokens = self._oauth(http, config).exchange(callback_url, pending)
        if tokens.patient is None:
            raise OAuthError(
                "the server granted no patient context (launch/patient); cannot sync",
                place="token exchange",
            )
        config["granted_scope"] = tokens.scope
        replaced = self.repo.tokens(match.connection_id)
        self.repo.update(
            match.connection_id, config=config, tokens=tokens.to_json(), status="active"
        )
        log.info("connection %s authorised", match.connection_id)
        if replaced is not None:  # a re-authorisation: the old grant is not needed
            self._revoke(config, TokenSet.from_json(replaced))
        return match.connection_id

    # -- sync --------------------------------------------------------------------

    def sync(
        self, connection_id: str, *, progress: Callable[[int], None] | None = None
    ) -> SyncResult:
        """Fetch what changed since the last sync and write it as one import job."""
        stored = self._smart(connection_id)
        if stored.status == "pending":
            raise UsageError(
                f"connection {connection_id} is not authorised yet; "
                "finish with `healthspace connect callback`"
            )
        if stored.status == "reauth":
            raise ReauthorizationRequired(
                f"connection {connection_id} needs re-authorisation; run "
                f"`healthspace connect smart BASE_URL --connection {connection_id} ...`",
                place="sync",
            )
        config = stored.config
        guard = self._guard(config)
        started = datetime.now(UTC)
        with (
            guarded_client(guard, follow_redirects=False, timeout=self.timeout) as oauth_http,
            guarded_client(guard, follow_redirects=True, timeout=self.timeout) as fhir_http,
        ):
            tokens = _Tokens(self.repo, connection_id, self._oauth(oauth_http, config))
            base = SmartEndpoints.from_dict(config["endpoints"]).fhir_base
            reader = FhirReader(
                fhir_http,
                guard,
                base,
                tokens.access,
                max_pages=self.max_pages,
                page_size=self.page_size,
            )
            parser = PageParser(f"smart:{connection_id}", base)
            items = self._items(reader, parser, tokens, config)
            result = ingest(self.session, items, source=KIND, progress=progress)
        moment = reader.server_time or (started - timedelta(seconds=1))
        self.repo.update(
            connection_id, config={**config, "cursor": fhir_instant(moment)}, synced_at=started
        )
        log.info("connection %s synced: %d pages", connection_id, reader.pages)
        return SyncResult(
            connection_id=connection_id,
            job_id=result.job_id,
            imported=dict(result.imported),
            updated=result.updated,
            skipped_duplicates=result.skipped_duplicates,
            resources=dict(parser.counts),
            pages=reader.pages,
            warnings=parser.warnings,
        )

    def _items(
        self,
        reader: FhirReader,
        parser: PageParser,
        tokens: _Tokens,
        config: dict[str, Any],
    ) -> Iterator[Item]:
        patient = tokens.current.patient
        if patient is None:
            raise UsageError(f"connection {tokens.connection_id} has no patient context")
        allowed = granted_types(tokens.current.scope or config["scope"])
        if "Patient" in allowed:
            resource = reader.read("Patient", patient)
            entry = {"fullUrl": f"{reader.base}/Patient/{patient}", "resource": resource}
            yield from parser.parse("Patient", 1, [entry])
        params = {"patient": patient}
        if config.get("cursor"):
            params["_lastUpdated"] = f"gt{config['cursor']}"
        for resource_type in RESOURCE_TYPES:
            if resource_type not in allowed:
                parser.warnings.append(f"{resource_type}: not granted by the portal; skipped")
                continue
            try:
                for page in reader.search(resource_type, params):
                    if page.skipped:
                        parser.warnings.append(
                            f"{resource_type} page {page.number}: {page.skipped} entries not kept"
                        )
                    yield from parser.parse(resource_type, page.number, page.entries)
            except AccessDenied as exc:
                if parser.counts[resource_type]:
                    raise  # refused half-way through: not a type the server lacks
                parser.warnings.append(f"{resource_type}: {exc.reason}; skipped")

    # -- disconnect and listing ------------------------------------------------------

    def disconnect(self, connection_id: str) -> DisconnectResult:
        """Delete the connection and its tokens now; then ask the server to revoke them."""
        stored, token_bytes = self.repo.delete(connection_id)
        if stored.kind != KIND or token_bytes is None:
            return DisconnectResult(connection_id, revoked=False)
        revoked, error = self._revoke(stored.config, TokenSet.from_json(token_bytes))
        return DisconnectResult(connection_id, revoked=revoked, revocation_error=error)

    def _revoke(self, config: dict[str, Any], tokens: TokenSet) -> tuple[bool, str | None]:
        """Best effort: (revoked, why not). The tokens are already gone from the store."""
        if not SmartEndpoints.from_dict(config["endpoints"]).revocation:
            return False, None
        guard = self._guard(config)
        try:
            with guarded_client(guard, follow_redirects=False, timeout=self.timeout) as http:
                oauth = self._oauth(http, config)
                revoked = True
                if tokens.refresh_token is not None:
                    revoked = oauth.revoke(tokens.refresh_token, hint="refresh_token")
                revoked = oauth.revoke(tokens.access_token, hint="access_token") and revoked
        except HealthspaceError as exc:
            return False, str(exc)
        return revoked, None

    def connections(self) -> list[ConnectionInfo]:
        return [
            ConnectionInfo(
                connection_id=c.connection_id,
                status=c.status,
                fhir_base=str(c.config.get("endpoints", {}).get("fhir_base", "")),
                scope=str(c.config.get("granted_scope") or c.config.get("scope") or ""),
                created_at=c.created_at,
                last_sync_at=c.last_sync_at,
            )
            for c in self.repo.list(kind=KIND)
        ]

    def sync_one(
        self, connection_id: str, *, progress: Callable[[str, int], None] | None = None
    ) -> SyncResult | HealthspaceError:
        """Like :meth:`sync`, but a failure is returned, not raised."""
        report = None if progress is None else (lambda n: progress(connection_id, n))
        try:
            return self.sync(connection_id, progress=report)
        except HealthspaceError as exc:
            return exc

    def sync_all(
        self, *, progress: Callable[[str, int], None] | None = None
    ) -> list[tuple[str, SyncResult | HealthspaceError]]:
        """Sync every authorised connection; one failing does not stop the others."""
        return [
            (info.connection_id, self.sync_one(info.connection_id, progress=progress))
            for info in self.connections()
            if info.status != "pending"
        ]
