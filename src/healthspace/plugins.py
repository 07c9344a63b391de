"""The plugin manager: built-ins first, then installed plugins, loaded on demand."""

from __future__ import annotations

import importlib
from functools import cache

import pluggy

from healthspace import hookspecs

__all__ = ["DEFAULT_PLUGINS", "get_plugin_manager"]

# Built-in behaviour goes through the same hooks as third-party plugins.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "healthspace.cli.setup",
    "healthspace.cli.users",
    "healthspace.cli.records",
    "healthspace.cli.keys",
    "healthspace.cli.backups",
    "healthspace.cli.demo",
    "healthspace.cli.imports",
    "healthspace.cli.review",
    "healthspace.cli.connect",
    "healthspace.cli.insights",
    # Sources (one line each).
    "healthspace.sources.apple_health",
    "healthspace.sources.labs_pdf",
    "healthspace.sources.myfitnesspal",
    "healthspace.sources.peloton",
    "healthspace.sources.fit",
    "healthspace.sources.gpx",
    "healthspace.sources.fitbit",
    "healthspace.sources.ccda",
    "healthspace.sources.fhir",
)


@cache
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("healthspace")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name)
    pm.load_setuptools_entrypoints("healthspace")
    return pm
