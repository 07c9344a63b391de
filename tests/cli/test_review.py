"""``healthspace review``: extracted lab values wait for the person, then count or vanish."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sources.test_labs_pdf import EN_ROWS, REAL_PDF, lab_pdf, text_layer_rows

USER = "reviewer@example.org"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHSPACE_")}
    base.update(
        HEALTHSPACE_HOME=str(tmp_path / "home"),
        HEALTHSPACE_KEY_FILE=str(tmp_path / "config" / "root.key"),
    )
    return base


def cli(env: dict[str, str], *args: str) -> dict[str, object]:
    res = subprocess.run(
        [sys.executable, "-m", "healthspace", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert isinstance(doc, dict)
    return doc


def test_import_review_confirm_reject(env: dict[str, str], tmp_path: Path) -> None:
    cli(env, "init")
    cli(env, "user", "add", USER)
    expected = len(text_layer_rows(REAL_PDF))

    imported = cli(env, "import", str(REAL_PDF), "--user", USER)
    assert imported["errors"] == []
    (job,) = imported["held_for_review"]  # type: ignore[misc]
    assert imported["imported"] == {"observation": expected, "document": 1}

    (pending,) = cli(env, "review", "list", "--user", USER)["pending"]  # type: ignore[misc]
    assert pending["job_id"] == job
    assert pending["source"] == "labs_pdf"
    shown = cli(env, "review", "show", job, "--user", USER)["records"]
    assert isinstance(shown, list)
    labs = [r for r in shown if r["kind"] == "observation"]
    assert len(labs) == expected
    sodium = next(r for r in labs if r["code"] == {"system": "http://loinc.org", "code": "2951-2"})
    assert (sodium["value"], sodium["unit"]) == (135.0, "mmol/L")

    assert cli(env, "review", "confirm", job, "--user", USER) == {
        "job_id": job,
        "kept": expected + 1,
    }
    visible = cli(env, "records", "--user", USER, "--kind", "observation")["records"]
    assert isinstance(visible, list)
    assert len(visible) == expected
    assert all(r["date"].startswith("2025-07-25") for r in visible)

    again = cli(env, "import", str(REAL_PDF), "--user", USER)
    assert again["imported"] == {}
    assert again["skipped_duplicates"] == expected + 1

    # Another report, rejected: nothing of it remains.
    other = tmp_path / "other-report.pdf"
    other.write_bytes(lab_pdf(["Test", "Result", "Flag", "Units", "Reference Interval"],
                              [cells for cells, _ in EN_ROWS]))  # fmt: skip
    (job2,) = cli(env, "import", str(other), "--user", USER)["held_for_review"]  # type: ignore[misc]
    assert cli(env, "review", "reject", job2, "--user", USER) == {"job_id": job2, "rejected": True}
    left = cli(env, "review", "list", "--user", USER)["pending"]
    assert isinstance(left, list)
    # Nothing waits any more (the duplicate re-import may leave an empty job listed).
    assert all(p["job_id"] not in (job, job2) and p["counts"] == {} for p in left)
    after = cli(env, "records", "--user", USER, "--kind", "observation")["records"]
    assert after == visible

    # A file named .pdf that is an executable: one line on stderr, exit 1.
    fake = tmp_path / "invoice.pdf"
    fake.write_bytes(b"MZ\x90\x00" + bytes(200))
    res = subprocess.run(
        [sys.executable, "-m", "healthspace", "import", str(fake), "--user", USER],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert "invoice.pdf" in res.stderr
    assert "executable" in res.stderr
