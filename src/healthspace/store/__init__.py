"""The store: the only place that imports SQLAlchemy.

Space-scoped repositories over SQLite or PostgreSQL, encrypted through the vault.
"""

from healthspace.store import review
from healthspace.store.access import HealthGrant
from healthspace.store.audit import ChainReport, verify_chain
from healthspace.store.facade import RotationReport, Store, User
from healthspace.store.ingest import IngestResult, ingest
from healthspace.store.open import open_store
from healthspace.store.records import FileRepository, RecordRepository, StoredRecord
from healthspace.store.series import SeriesRepository
from healthspace.store.session import Space, SpaceSession

__all__ = [
    "ChainReport",
    "FileRepository",
    "HealthGrant",
    "IngestResult",
    "RecordRepository",
    "RotationReport",
    "SeriesRepository",
    "Space",
    "SpaceSession",
    "Store",
    "StoredRecord",
    "User",
    "ingest",
    "open_store",
    "review",
    "verify_chain",
]
