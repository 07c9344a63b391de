"""The command-line contract (DESIGN.md): JSON on stdout, one-line errors, exit codes."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from healthspace.model import Attached
from healthspace.settings import load_settings
from healthspace.store import HealthGrant, ingest, open_store
from tests.store._records import lab


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHSPACE_")}
    base.update(
        HEALTHSPACE_HOME=str(tmp_path / "home"),
        HEALTHSPACE_KEY_FILE=str(tmp_path / "config" / "root.key"),
    )
    return base


def run(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "healthspace", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok_json(env: dict[str, str], *args: str, stdin: str | None = None) -> dict[str, object]:
    res = run(env, *args, "--json", stdin=stdin)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # exactly one JSON document, nothing else on stdout


def test_init_is_idempotent_and_keeps_the_key_apart(env: dict[str, str], tmp_path: Path) -> None:
    first = ok_json(env, "init")
    assert first["key_created"] is True
    key = Path(env["HEALTHSPACE_KEY_FILE"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not key.resolve().is_relative_to(Path(env["HEALTHSPACE_HOME"]).resolve())
    before = key.read_bytes()
    second = ok_json(env, "init")
    assert second["key_created"] is False
    assert key.read_bytes() == before


def test_two_installs_get_different_keys(env: dict[str, str], tmp_path: Path) -> None:
    other = dict(
        env, HEALTHSPACE_HOME=str(tmp_path / "h2"), HEALTHSPACE_KEY_FILE=str(tmp_path / "c2" / "k")
    )
    ok_json(env, "init")
    ok_json(other, "init")
    assert (
        Path(env["HEALTHSPACE_KEY_FILE"]).read_bytes()
        != Path(other["HEALTHSPACE_KEY_FILE"]).read_bytes()
    )


def test_known_default_root_key_is_refused(env: dict[str, str]) -> None:
    """T-ENC-6: starting with a known-default secret fails, in one line."""
    bad = dict(env, HEALTHSPACE_ROOT_KEY=base64.b64encode(bytes(32)).decode())
    res = run(bad, "init")
    assert res.returncode != 0
    assert res.stderr.count("\n") == 1
    assert "HEALTHSPACE_ROOT_KEY" in res.stderr
    assert "known or low-entropy" in res.stderr


def test_env_root_key_works_without_a_key_file(env: dict[str, str]) -> None:
    env = dict(env, HEALTHSPACE_ROOT_KEY=base64.b64encode(os.urandom(32)).decode())
    doc = ok_json(env, "init")
    assert doc["key_file"] is None
    assert not Path(env["HEALTHSPACE_KEY_FILE"]).exists()
    ok_json(env, "user", "add", "env@example.org")


def test_user_add_records_and_delete(env: dict[str, str], canary: str) -> None:
    ok_json(env, "init")
    added = ok_json(
        env, "user", "add", "Pat@Example.org", "--password-stdin", stdin="a long passphrase\n"
    )
    assert added["email"] == "pat@example.org"
    assert added["spaces"] == ["general", "health"]
    assert ok_json(env, "records", "--user", "pat@example.org") == {"records": []}

    settings = load_settings(home=env["HEALTHSPACE_HOME"], key_file=env["HEALTHSPACE_KEY_FILE"])
    store = open_store(settings, actor="test")
    user = store.find_user("pat@example.org")
    with store.health_session(user.user_id, HealthGrant.operator("test")) as s:
        ingest(s, [Attached(lab(1, value=162.0, note=canary)), lab(2, value=170.0)], source="test")
    store.close()

    doc = ok_json(env, "records", "--user", "pat@example.org", "--kind", "observation")
    recs = doc["records"]
    assert isinstance(recs, list)
    assert len(recs) == 2
    first = recs[0]
    assert set(first) == {"id", "kind", "code", "display", "value", "unit", "date", "source"}
    assert first["kind"] == "observation"
    assert first["code"] == {"system": "http://loinc.org", "code": "2093-3"}
    assert first["value"] == 162.0
    assert first["unit"] == "mg/dL"
    assert first["date"].startswith("2001-02-02")
    assert first["source"] == "labs.json"
    assert ok_json(env, "records", "--user", "pat@example.org", "--kind", "condition") == {
        "records": []
    }

    refused = run(env, "delete", "--user", "pat@example.org")
    assert refused.returncode != 0
    assert "--yes" in refused.stderr
    ok_json(env, "delete", "--user", "pat@example.org", "--space", "health", "--yes")
    assert ok_json(env, "records", "--user", "pat@example.org") == {"records": []}
    ok_json(env, "delete", "--user", "pat@example.org", "--yes")
    gone = run(env, "records", "--user", "pat@example.org")
    assert gone.returncode == 1
    assert gone.stderr == "healthspace: error: no user with that email\n"


def test_errors_are_one_line_and_nonzero(env: dict[str, str]) -> None:
    res = run(env, "records", "--user", "x@example.org")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert "root.key" in res.stderr
    assert "healthspace init" in res.stderr
    ok_json(env, "init")
    dup = run(env, "user", "add", "not-an-email")
    assert dup.returncode == 1
    assert dup.stderr.count("\n") == 1
    ok_json(env, "user", "add", "a@example.org")
    again = run(env, "user", "add", "a@example.org")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    usage = run(env, "records")
    assert usage.returncode == 2


def test_keys_rotate(env: dict[str, str]) -> None:
    ok_json(env, "init")
    ok_json(env, "user", "add", "r@example.org")
    before = json.loads(Path(env["HEALTHSPACE_KEY_FILE"]).read_text())
    doc = ok_json(env, "keys", "rotate")
    assert doc["rewrapped"] == 2
    after = json.loads(Path(env["HEALTHSPACE_KEY_FILE"]).read_text())
    assert set(after["keys"]) == {doc["root_key_id"]}
    assert after["primary"] != before["primary"]
    assert ok_json(env, "records", "--user", "r@example.org") == {"records": []}


def test_demo_twice(env: dict[str, str]) -> None:
    first = ok_json(env, "demo")
    assert first["user_created"] is True
    second = ok_json(env, "demo")
    assert second["user_created"] is False


@pytest.mark.postgres
def test_postgres_via_database_url(env: dict[str, str], pg_schema_url: str) -> None:
    env = dict(env, HEALTHSPACE_DATABASE_URL=pg_schema_url)
    assert ok_json(env, "init")["database"] == "postgresql"
    ok_json(env, "user", "add", "pg@example.org")
    assert ok_json(env, "records", "--user", "pg@example.org") == {"records": []}
