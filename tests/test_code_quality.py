"""Lint, format, types and the layer contract are part of the suite, so CI runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    which = shutil.which(name)
    if which is None:
        pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
    return which


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_lint() -> None:
    res = _run(_tool("ruff"), "check", "src", "tests", "bench")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format() -> None:
    res = _run(_tool("ruff"), "format", "--check", "src", "tests", "bench")
    assert res.returncode == 0, res.stdout + res.stderr


def test_layers_contract() -> None:
    res = _run(_tool("lint-imports"))
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict() -> None:
    res = _run(_tool("mypy"))
    assert res.returncode == 0, res.stdout + res.stderr


def test_nothing_names_this_machine() -> None:
    """The repository never names local paths or workplace tools."""
    tracked = _run("git", "ls-files").stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    # Computed here, never written down: the checkout's parent and the home directory.
    needles = tuple(str(p) + "/" for p in {ROOT.parent, Path.home()} if len(p.parts) > 1)
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".toml", ".cfg", ".txt", ".json", ""} and path.is_file():
            text = path.read_text(errors="ignore")
            offenders += [f"{name}: {n}" for n in needles if n in text]
    assert offenders == []
