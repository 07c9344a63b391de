"""Reading one patient's record from a FHIR server: reads, searchsets, paging, bearer token.

Each search follows ``link[rel=next]`` page by page. A next link must pass the URL
guard (checked first, so an internal address is reported as such) and stay on
the FHIR server's own origin, where the bearer token may go; a link seen before
(a loop) or more than ``max_pages`` pages end the sync with an error rather than
a silent partial import. A 401 gets one retry with a freshly refreshed token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from healthspace.errors import SourceError
from healthspace.sources._smart_net import UrlGuard, origin, read_json
from healthspace.sources._smart_oauth import Secret

__all__ = [
    "RESOURCE_TYPES",
    "AccessDenied",
    "FhirReader",
    "Page",
    "fhir_instant",
    "granted_types",
    "scopes",
]

# What we search for, in this order; each maps to a record kind of the FHIR parser.
RESOURCE_TYPES: tuple[str, ...] = (
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
)
_KEPT = frozenset(("Patient", *RESOURCE_TYPES))
_BASE_SCOPES = ("launch/patient", "openid", "fhirUser", "offline_access")


def scopes(*, v1: bool = False) -> str:
    """The minimal patient scopes: read and search of exactly the types we map."""
    suffix = ".read" if v1 else ".rs"
    return " ".join((*_BASE_SCOPES, *(f"patient/{t}{suffix}" for t in sorted(_KEPT))))


def granted_types(granted: str) -> set[str]:
    """The resource types a granted scope lets us search (SMART v1 ``.read``, v2 ``.rs``)."""
    found: set[str] = set()
    for scope in granted.split():
        context, _, rest = scope.partition("/")
        if context not in ("patient", "user") or "." not in rest:
            continue
        rtype, _, permission = rest.partition(".")
        permission = permission.split("?", 1)[0]  # v2 granular scopes narrow, still allow
        if permission in ("read", "*") or "s" in permission:
            found.update(_KEPT if rtype == "*" else {rtype})
    return found & _KEPT


class AccessDenied(SourceError):
    """The server refused one read or search (HTTP 403): not granted, or not offered."""


def fhir_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Page:
    """The matched resources of one searchset page, as Bundle entries."""

    resource_type: str
    number: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0


class FhirReader:
    """Authenticated reads against one FHIR base URL."""

    def __init__(
        self,
        http: httpx.Client,
        guard: UrlGuard,
        base: str,
        access_token: Callable[[bool], Secret],
        *,
        max_pages: int = 1000,
        page_size: int = 100,
    ) -> None:
        self.http = http
        self.guard = guard
        self.base = base.rstrip("/")
        self.host = httpx.URL(self.base).host
        self._origin = origin(httpx.URL(self.base))
        self._token = access_token
        self.max_pages = max_pages
        self.page_size = page_size
        self.pages = 0
        # The server's clock at our first request: the next incremental sync asks
        # for what changed after it, whatever our own clock says.
        self.server_time: datetime | None = None

    def _get(self, url: str, what: str) -> dict[str, Any]:
        response: httpx.Response | None = None
        doc: Any = None
        for attempt in range(2):
            bearer = self._token(attempt > 0)
            response, doc = read_json(
                self.http,
                url,
                headers={
                    "Accept": "application/fhir+json",
                    "Authorization": f"Bearer {bearer.reveal()}",
                },
                what=what,
            )
            if response.status_code != 401:
                break
        assert response is not None
        if self.server_time is None:
            self.server_time = _server_date(response)
        if response.status_code == 401:
            raise SourceError(
                "the FHIR server refuses this connection's access token even after a refresh",
                file=self.host,
                place=what,
            )
        if response.status_code == 403:
            raise AccessDenied(
                "the FHIR server refused access (HTTP 403)", file=self.host, place=what
            )
        if not isinstance(doc, dict):
            raise SourceError(
                f"the FHIR server answered HTTP {response.status_code}", file=self.host, place=what
            )
        return doc

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """One resource by id."""
        what = f"{resource_type} read"
        doc = self._get(f"{self.base}/{resource_type}/{resource_id}", what)
        if doc.get("resourceType") != resource_type:
            raise SourceError(f"the answer is not a {resource_type}", file=self.host, place=what)
        return doc

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[Page]:
        """Every page of one search, following next links."""
        query = {**params, "_count": str(self.page_size)}
        url: str | None = f"{self.base}/{resource_type}?{urlencode(query)}"
        seen: set[str] = set()
        number = 0
        while url is not None:
            number += 1
            self.pages += 1
            what = f"{resource_type} page {number}"
            if number > self.max_pages:
                raise SourceError(
                    f"more than {self.max_pages} pages; stopped", file=self.host, place=what
                )
            seen.add(url)
            bundle = self._get(url, what)
            if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
                raise SourceError(
                    "the answer is not a searchset Bundle", file=self.host, place=what
                )
            yield _page(resource_type, number, bundle)
            url = self._next(bundle, url, seen, what)

    def _next(self, bundle: dict[str, Any], current: str, seen: set[str], what: str) -> str | None:
        for link in bundle.get("link") or ():
            if isinstance(link, dict) and link.get("relation") == "next":
                target = link.get("url")
                if not isinstance(target, str) or not target:
                    return None
                # Relative links are not FHIR, but resolve them rather than fail.
                resolved = httpx.URL(current).join(target)
                self.guard.check_url(resolved)
                if origin(resolved) != self._origin:
                    raise SourceError(
                        "a next link leaves the FHIR server; the token is not sent elsewhere",
                        file=self.host,
                        place=what,
                    )
                text = str(resolved)
                if text in seen:
                    raise SourceError(
                        "a next link points back to an earlier page (a loop)",
                        file=self.host,
                        place=what,
                    )
                return text
        return None


def _page(resource_type: str, number: int, bundle: dict[str, Any]) -> Page:
    page = Page(resource_type, number)
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        search = entry.get("search") if isinstance(entry, dict) else None
        mode = search.get("mode", "match") if isinstance(search, dict) else "match"
        if (
            mode != "match"
            or not isinstance(resource, dict)
            or resource.get("resourceType") not in _KEPT
        ):
            page.skipped += 1
            continue
        kept: dict[str, Any] = {"resource": resource}
        if isinstance(entry.get("fullUrl"), str):
            kept["fullUrl"] = entry["fullUrl"]
        page.entries.append(kept)
    return page


def _server_date(response: httpx.Response) -> datetime | None:
    value = response.headers.get("date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # The Date header is truncated to the second: step back one so nothing that
    # changed in that same second is missed (a re-read is only a duplicate).
    return moment - timedelta(seconds=1)
