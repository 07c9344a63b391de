"""OAuth 2 for a SMART standalone launch: PKCE S256 and state, code exchange, refresh, revoke.

Built on authlib's OAuth 2 client (authorization URL, token requests and answers,
RFC 7009 revocation) with our guarded httpx client underneath. Tokens, codes,
verifiers and states live in :class:`Secret`, whose repr is masked, so they never
reach a log line, an exception or the command line (T-ENC-5). Error messages
carry the server's error code and a scrubbed description, never a secret.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.client import DEFAULT_HEADERS
from authlib.oauth2.client import OAuth2Client as AuthlibOAuth2Client

from healthspace.errors import SourceError

__all__ = [
    "PENDING_TTL_S",
    "OAuthClient",
    "OAuthError",
    "PendingAuthorization",
    "ReauthorizationRequired",
    "Secret",
    "StateMismatchError",
    "TokenSet",
]

PENDING_TTL_S = 15 * 60  # how long an authorization may wait for its callback


class Secret:
    """A string that shows itself only when asked: ``reveal()``. Never pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("secrets are not pickled")

    @classmethod
    def new(cls, nbytes: int = 48) -> Secret:
        """A fresh random value (URL-safe; 48 bytes make a 64-character PKCE verifier)."""
        return cls(secrets.token_urlsafe(nbytes))


class OAuthError(SourceError):
    """The authorization server refused, or answered something unusable."""

    def __init__(self, reason: str, *, code: str | None = None, place: str | None = None) -> None:
        super().__init__(reason, file="authorization server", place=place)
        self.code = code


class StateMismatchError(OAuthError):
    """The callback's state is not the one this authorization sent (CSRF)."""


class ReauthorizationRequired(OAuthError):
    """The refresh token is no longer accepted: the person must connect again."""


def scrub(text: object, hide: list[Secret | None]) -> str:
    """A server's free text made safe to show: no secrets, one line, printable, short."""
    out = str(text or "")
    for secret in hide:
        if secret is not None:
            out = out.replace(secret.reveal(), "***")
    out = "".join(ch if ch.isprintable() else " " for ch in out)
    return " ".join(out.split())[:200]


@dataclass(frozen=True)
class PendingAuthorization:
    """What the client must remember between the authorize redirect and the callback."""

    state: Secret
    verifier: Secret
    created_at: int

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.created_at > PENDING_TTL_S

    def to_dict(self) -> dict[str, Any]:
        # Only ever stored inside the encrypted connection config.
        return {
            "state": self.state.reveal(),
            "verifier": self.verifier.reveal(),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PendingAuthorization:
        return cls(Secret(doc["state"]), Secret(doc["verifier"]), int(doc["created_at"]))


@dataclass(frozen=True)
class TokenSet:
    """The tokens of one connection."""

    access_token: Secret
    refresh_token: Secret | None
    expires_at: int | None
    scope: str
    patient: str | None

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at - seconds <= (now if now is not None else time.time())

    def to_json(self) -> bytes:
        # Only ever handed to the store, which encrypts it.
        return orjson.dumps(
            {
                "access_token": self.access_token.reveal(),
                "refresh_token": None
                if self.refresh_token is None
                else self.refresh_token.reveal(),
                "expires_at": self.expires_at,
                "scope": self.scope,
                "patient": self.patient,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> TokenSet:
        doc = orjson.loads(data)
        refresh = doc.get("refresh_token")
        return cls(
            access_token=Secret(doc["access_token"]),
            refresh_token=Secret(refresh) if refresh else None,
            expires_at=doc.get("expires_at"),
            scope=str(doc.get("scope") or ""),
            patient=doc.get("patient"),
        )

    @classmethod
    def from_response(
        cls, answer: Mapping[str, Any], *, requested_scope: str, previous: TokenSet | None = None
    ) -> TokenSet:
        """Tokens from a token-endpoint answer; a refresh answer may omit what stays."""
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthError("the token answer has no access_token", place="token")
        if str(answer.get("token_type", "")).lower() != "bearer":
            raise OAuthError("the token answer is not a Bearer token", place="token")
        refresh = answer.get("refresh_token")
        expires_at = answer.get("expires_at")
        patient = answer.get("patient")
        scope = answer.get("scope")
        return cls(
            access_token=Secret(access),
            refresh_token=Secret(refresh)
            if isinstance(refresh, str) and refresh
            else (previous.refresh_token if previous is not None else None),
            expires_at=int(expires_at) if isinstance(expires_at, int | float) else None,
            scope=scope
            if isinstance(scope, str) and scope
            else (previous.scope if previous is not None else requested_scope),
            patient=str(patient)
            if isinstance(patient, str) and patient
            else (previous.patient if previous is not None else None),
        )


class _Authlib(AuthlibOAuth2Client):  # type: ignore[misc]
    """authlib's protocol client, sending through our guarded httpx client."""

    def _send(self, url: str, body: str | None, auth: Any, headers: Any) -> httpx.Response:
        # A copy: authlib hands us its module-level default headers.
        url, headers, body = auth.prepare("POST", url, dict(headers or DEFAULT_HEADERS), body or "")
        response: httpx.Response = self.session.post(url, content=body, headers=headers)
        return response

    def _fetch_token(
        self,
        url: str,
        body: str = "",
        headers: Any = None,
        auth: Any = None,
        method: str = "POST",
        **kwargs: Any,
    ) -> Any:
        return self.parse_response_token(self._send(url, body, auth, headers))

    def _http_post(
        self,
        url: str,
        body: str | None = None,
        auth: Any = None,
        headers: Any = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._send(url, body, auth, headers)


class OAuthClient:
    """One client registration at one authorization server."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        authorize_endpoint: str,
        token_endpoint: str,
        revocation_endpoint: str | None,
        client_id: str,
        redirect_uri: str,
        scope: str,
    ) -> None:
        self.authorize_endpoint = authorize_endpoint
        self.token_endpoint = token_endpoint
        self.revocation_endpoint = revocation_endpoint
        self.redirect_uri = redirect_uri
        self.scope = scope
        # scope=None here: a refresh then asks for exactly what was granted.
        self._client = _Authlib(
            http,
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )

    def authorization_url(self, *, aud: str) -> tuple[str, PendingAuthorization]:
        """The URL to open in the person's browser, and what to remember for the callback."""
        pending = PendingAuthorization(Secret.new(32), Secret.new(48), int(time.time()))
        url, _ = self._client.create_authorization_url(
            self.authorize_endpoint,
            state=pending.state.reveal(),
            code_verifier=pending.verifier.reveal(),
            scope=self.scope,
            aud=aud,
        )
        return str(url), pending

    @staticmethod
    def check_state(callback_url: str, pending: PendingAuthorization) -> dict[str, str]:
        """The callback's parameters, if its state is the one ``pending`` sent (CSRF check)."""
        params = dict(parse_qsl(urlsplit(callback_url).query, keep_blank_values=True))
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.reveal().encode()):
            raise StateMismatchError(
                "the callback's state does not match the authorization this client started "
                "(a forged or stale callback); start again with `healthspace connect smart`",
                place="callback",
            )
        return params

    def exchange(self, callback_url: str, pending: PendingAuthorization) -> TokenSet:
        """Check the callback's state, then trade its code (with the verifier) for tokens."""
        params = self.check_state(callback_url, pending)
        if "error" in params:
            code = scrub(params["error"], [pending.state])
            detail = scrub(params.get("error_description"), [pending.state])
            raise OAuthError(
                f"the authorization server refused: {code}" + (f" ({detail})" if detail else ""),
                code=code,
                place="callback",
            )
        if pending.expired():
            raise OAuthError(
                "this authorization is too old; start again with `healthspace connect smart`",
                place="callback",
            )
        raw_code = params.get("code")
        if not raw_code:
            raise OAuthError("the callback URL carries no code", place="callback")
        code_secret = Secret(raw_code)
        answer = self._call(
            "token exchange",
            [code_secret, pending.verifier, pending.state],
            lambda: self._client.fetch_token(
                self.token_endpoint,
                grant_type="authorization_code",
                code=code_secret.reveal(),
                code_verifier=pending.verifier.reveal(),
                redirect_uri=self.redirect_uri,
            ),
        )
        return TokenSet.from_response(answer, requested_scope=self.scope)

    def refresh(self, tokens: TokenSet) -> TokenSet:
        """New tokens from the refresh token; raises ReauthorizationRequired if refused."""
        if tokens.refresh_token is None:
            raise ReauthorizationRequired(
                "the access token expired and the server gave no refresh token", place="refresh"
            )
        refresh = tokens.refresh_token
        try:
            answer = self._call(
                "refresh",
                [refresh, tokens.access_token],
                lambda: self._client.refresh_token(
                    self.token_endpoint, refresh_token=refresh.reveal()
                ),
            )
        except OAuthError as exc:
            if exc.code in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise ReauthorizationRequired(
                    f"the server no longer accepts this connection's refresh token ({exc.code})",
                    code=exc.code,
                    place="refresh",
                ) from None
            raise
        return TokenSet.from_response(answer, requested_scope=self.scope, previous=tokens)

    def revoke(self, token: Secret, *, hint: str) -> bool:
        """Ask the server to revoke ``token`` (RFC 7009); True if it said yes."""
        if self.revocation_endpoint is None:
            return False
        endpoint = self.revocation_endpoint
        response = self._call(
            "revocation",
            [token],
            lambda: self._client.revoke_token(endpoint, token=token.reveal(), token_type_hint=hint),
        )
        return isinstance(response, httpx.Response) and response.is_success

    def _call(self, place: str, hide: list[Secret | None], action: Any) -> Any:
        try:
            return action()
        except OAuth2Error as exc:
            code = scrub(exc.error, hide) or "error"
            detail = scrub(exc.description, hide)
            raise OAuthError(
                f"the authorization server refused the {place}: {code}"
                + (f" ({detail})" if detail else ""),
                code=code,
                place=place,
            ) from None
        except httpx.HTTPStatusError as exc:
            raise OAuthError(
                f"the authorization server failed the {place} (HTTP {exc.response.status_code})",
                place=place,
            ) from None
        except httpx.HTTPError as exc:
            raise OAuthError(
                f"cannot reach the authorization server ({type(exc).__name__})", place=place
            ) from None
        except ValueError:
            raise OAuthError(
                f"the authorization server's {place} answer is not a usable JSON object",
                place=place,
            ) from None
