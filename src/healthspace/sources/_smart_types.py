"""What the SMART client hands back: its manifest and the results of each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from healthspace.sources.base import SourceManifest

__all__ = [
    "MANIFEST",
    "ConnectionInfo",
    "DisconnectResult",
    "StartedConnection",
    "SyncResult",
]

MANIFEST = SourceManifest(
    id="smart",
    name="SMART on FHIR patient portal",
    reads=(
        "patient",
        "observation",
        "condition",
        "medication",
        "allergy",
        "immunization",
        "encounter",
        "procedure",
        "report",
        "document",
        "care_plan",
        "coverage",
        "claim",
    ),
    purpose=(
        "Read your own medical records from your provider's patient portal, with read-only "
        "access you grant there, and keep a copy in your health space."
    ),
    data_leaves_server=False,
    spaces=("health",),
)


@dataclass(frozen=True)
class StartedConnection:
    connection_id: str
    authorize_url: str


@dataclass(frozen=True)
class ConnectionInfo:
    connection_id: str
    status: str
    fhir_base: str
    scope: str
    created_at: datetime
    last_sync_at: datetime | None


@dataclass
class SyncResult:
    connection_id: str
    job_id: str
    imported: dict[str, int]
    updated: int
    skipped_duplicates: int
    resources: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DisconnectResult:
    connection_id: str
    revoked: bool
    revocation_error: str | None = None
