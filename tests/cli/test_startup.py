"""Startup stays cheap: building the command line loads no store, sources or numpy."""

from __future__ import annotations

import json
import subprocess
import sys

import pluggy
import pytest

from healthspace.plugins import get_command_plugin_manager, get_plugin_manager

# What a command imports when it runs, never to register itself or print help.
HEAVY = (
    "alembic",
    "numpy",
    "pydantic_settings",
    "sqlalchemy",
    "healthspace.insights",
    "healthspace.model",
    "healthspace.settings",
    "healthspace.sources",
    "healthspace.store",
    "healthspace.vault",
)

_PROBE = """
import json, sys
from healthspace.cli import main
code = main(sys.argv[1:])
sys.stderr.write(json.dumps([code, sorted(sys.modules)]) + "\\n")
"""


@pytest.mark.parametrize("args", [["--help"], ["import", "--help"], ["review", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    code, modules = json.loads(res.stderr.splitlines()[-1])
    assert code == 0, res.stderr
    assert "Usage" in res.stdout
    packages = tuple(h + "." for h in HEAVY)
    assert [m for m in modules if m in HEAVY or m.startswith(packages)] == []


def test_the_command_manager_has_every_command_hook() -> None:
    def names(pm: pluggy.PluginManager) -> list[str]:
        return [impl.plugin_name for impl in pm.hook.register_commands.get_hookimpls()]

    assert names(get_command_plugin_manager()) == names(get_plugin_manager())
