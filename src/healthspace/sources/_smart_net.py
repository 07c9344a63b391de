"""Outbound HTTP for the SMART client, guarded against server-side request forgery.

Every URL the client touches (discovery, authorize, token, revocation, the FHIR
base, each next-page link, each redirect hop) passes :meth:`UrlGuard.check_url`:
https only, no credentials in the URL, and every address the host resolves to
must be public. A second check runs when the socket is opened, on the address
actually connected to, so a name that resolves to a public address for the
check and to an internal one for the connection (DNS rebinding) is refused too
(T-SSRF-1). Plain http is allowed for loopback only, and only with the explicit
``allow_insecure_loopback`` testing flag.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import orjson

from healthspace.errors import SourceError

__all__ = [
    "MAX_RESPONSE_BYTES",
    "BlockedAddressError",
    "Resolver",
    "UrlGuard",
    "guarded_client",
    "origin",
    "read_json",
    "system_resolver",
]

Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A searchset page or a token answer is far smaller; a hostile server must not be
# able to make us buffer without bound.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddressError(SourceError):
    """A URL the client refuses to contact (scheme, credentials or address)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, as the operating system answers."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _category(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None if it is one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _category(ip.ipv4_mapped)
        if ip in _NAT64:
            return _category(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    return (url.scheme, url.host.lower(), port)


@dataclass(frozen=True)
class UrlGuard:
    """Decides which URLs and addresses the client may contact."""

    resolver: Resolver = system_resolver
    allow_insecure_loopback: bool = False

    def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            found = self.resolver(host, port)
        except OSError:
            raise BlockedAddressError(f"cannot resolve host {host}") from None
        addresses: list[IPAddress] = []
        for text in found:
            try:
                # A scoped IPv6 address ("fe80::1%eth0") is link-local anyway.
                addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
            except ValueError:
                raise BlockedAddressError(f"host {host} resolved to a non-address") from None
        if not addresses:
            raise BlockedAddressError(f"host {host} resolves to no address")
        return addresses

    def vet(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` if every one may be contacted; raises otherwise."""
        addresses = self._addresses(host, port)
        for ip in addresses:
            why = _category(ip)
            if why is None or (why == "loopback" and self.allow_insecure_loopback):
                continue
            raise BlockedAddressError(f"refused {host}: it resolves to a {why} address ({ip})")
        return [str(ip) for ip in addresses]

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """``url`` parsed, if the client may contact it; raises BlockedAddressError."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise BlockedAddressError("refused a malformed URL") from None
        host = parsed.host
        if parsed.scheme not in ("https", "http") or not host:
            raise BlockedAddressError(f"refused a {parsed.scheme or 'relative'} URL: https only")
        if parsed.userinfo:
            raise BlockedAddressError(f"refused {host}: credentials in the URL")
        if parsed.scheme == "http" and not self.allow_insecure_loopback:
            raise BlockedAddressError(f"refused {host}: plain http (https only)")
        _, _, port = origin(parsed)
        addresses = self.vet(host, port or 443)
        if parsed.scheme == "http" and not all(
            ipaddress.ip_address(a).is_loopback for a in addresses
        ):
            raise BlockedAddressError(f"refused {host}: plain http is for loopback testing only")
        return parsed


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves once, vets what it resolved and connects to exactly that address."""

    def __init__(self, guard: UrlGuard) -> None:
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in self._guard.vet(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that vets every request URL and every connected address."""

    def __init__(self, guard: UrlGuard) -> None:
        # No proxies from the environment: a proxy would connect on our behalf to
        # addresses the backend never sees.
        super().__init__(trust_env=False)
        self._guard = guard
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=10,
            network_backend=_GuardedBackend(guard),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._guard.check_url(request.url)
        return super().handle_request(request)


def guarded_client(
    guard: UrlGuard, *, follow_redirects: bool, timeout: float = 30.0
) -> httpx.Client:
    """An httpx client whose every request, redirects included, goes through ``guard``."""
    return httpx.Client(
        transport=GuardedTransport(guard),
        follow_redirects=follow_redirects,
        max_redirects=5,
        timeout=timeout,
        trust_env=False,
        headers={"User-Agent": "healthspace-smart"},
    )


def read_json(
    client: httpx.Client,
    url: str | httpx.URL,
    *,
    headers: dict[str, str] | None = None,
    what: str,
) -> tuple[httpx.Response, Any]:
    """GET ``url``; (response, parsed JSON or None when the status is not 2xx).

    The body is read with a byte limit. Errors name ``what`` and the host only:
    the path and query may carry identifiers.
    """
    host = httpx.URL(url).host
    try:
        with client.stream("GET", url, headers=headers) as response:
            if not response.is_success:
                return response, None
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise SourceError(
                        f"answer larger than {MAX_RESPONSE_BYTES} bytes", file=host, place=what
                    )
                chunks.append(chunk)
    except httpx.TooManyRedirects:
        raise SourceError("too many redirects", file=host, place=what) from None
    except httpx.HTTPError as exc:
        raise SourceError(
            f"cannot reach the server ({type(exc).__name__})", file=host, place=what
        ) from None
    try:
        return response, orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise SourceError("the answer is not JSON", file=host, place=what) from None
