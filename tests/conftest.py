"""Shared fixtures: stores on both engines, users, sessions, canaries, raw-byte sweeps.

PostgreSQL tests run against HEALTHSPACE_TEST_POSTGRES_URL (default: the local
server). Each test gets its own schema, dropped afterwards. Under CI=true an
unreachable server fails the run loudly instead of skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from healthspace.store import HealthGrant, Space, SpaceSession, Store, User
from healthspace.store.engine import create_engine
from healthspace.store.keystore import KeyStore
from healthspace.vault import MemoryKeySource, Vault

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")

PG_URL = os.environ.get(
    "HEALTHSPACE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _postgres_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


_PG_STATE: dict[str, str | None] = {}


def _require_postgres() -> None:
    if "error" not in _PG_STATE:
        _PG_STATE["error"] = _postgres_reachable()
    error = _PG_STATE["error"]
    if error is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"PostgreSQL at {PG_URL} is unreachable under CI=true; "
            f"PostgreSQL tests must run: {error}",
            pytrace=False,
        )
    pytest.skip(f"PostgreSQL unreachable ({error}); set CI=true to make this fatal")


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    _require_postgres()
    schema = "hs_test_" + secrets.token_hex(6)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a test over SQLite (a file in tmp_path) and PostgreSQL (own schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'healthspace.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def root_source() -> MemoryKeySource:
    return MemoryKeySource()


@pytest.fixture
def keystore(tmp_path: Path) -> KeyStore:
    """The keystore lives in its own database, apart from the data (as in production)."""
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    return KeyStore(create_engine(f"sqlite:///{keys_dir / 'keystore.db'}"))


@pytest.fixture
def store(database_url: str, root_source: MemoryKeySource, keystore: KeyStore) -> Iterator[Store]:
    st = Store(create_engine(database_url), Vault(root_source), keystore, actor="test")
    st.initialize()
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def user(store: Store) -> User:
    return store.create_user(f"person-{secrets.token_hex(4)}@example.org")


@pytest.fixture
def health(store: Store, user: User) -> Iterator[SpaceSession]:
    with store.open_session(user.user_id, Space.HEALTH, grant=HealthGrant.operator("test")) as s:
        yield s


@pytest.fixture
def general(store: Store, user: User) -> Iterator[SpaceSession]:
    with store.open_session(user.user_id, Space.GENERAL) as s:
        yield s


@pytest.fixture
def canary() -> str:
    """A unique fake health string: if it shows up in raw bytes, plaintext leaked."""
    return "CANARY-" + secrets.token_hex(12)


def raw_bytes_under(*paths: Path) -> dict[Path, bytes]:
    """Every file's raw bytes under the given files or directories."""
    out: dict[Path, bytes] = {}
    for p in paths:
        if p.is_file():
            out[p] = p.read_bytes()
        elif p.is_dir():
            for f in p.rglob("*"):
                if f.is_file():
                    out[f] = f.read_bytes()
    return out


def files_containing(needle: bytes, *paths: Path) -> list[Path]:
    return [p for p, data in raw_bytes_under(*paths).items() if needle in data]
