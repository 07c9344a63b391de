"""The plugin manager: built-ins first, then installed plugins, loaded on demand."""

from __future__ import annotations

import importlib
from functools import cache

import pluggy

from healthspace import hookspecs

__all__ = [
    "COMMAND_PLUGINS",
    "DEFAULT_PLUGINS",
    "SOURCE_PLUGINS",
    "get_command_plugin_manager",
    "get_plugin_manager",
]

# Built-in behaviour goes through the same hooks as third-party plugins.
# Commands: cheap to import (Typer and Rich; each command imports the store,
# the sources or the insights it needs when it runs).
COMMAND_PLUGINS: tuple[str, ...] = (
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
)
# Sources (one line each). They import the model and numpy, so the command line
# does not load them to build itself, only when a command asks for the sources.
SOURCE_PLUGINS: tuple[str, ...] = (
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
DEFAULT_PLUGINS: tuple[str, ...] = COMMAND_PLUGINS + SOURCE_PLUGINS


def _build(builtins: tuple[str, ...]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("healthspace")
    pm.add_hookspecs(hookspecs)
    for name in builtins:
        pm.register(importlib.import_module(name), name)
    pm.load_setuptools_entrypoints("healthspace")
    return pm


@cache
def get_plugin_manager() -> pluggy.PluginManager:
    """Every plugin: the built-ins in DEFAULT_PLUGINS order, then the installed ones."""
    return _build(DEFAULT_PLUGINS)


@cache
def get_command_plugin_manager() -> pluggy.PluginManager:
    """What building the command line needs: the built-in commands and the installed plugins.

    Only for ``register_commands``, which no built-in source implements; every other
    hook goes through get_plugin_manager(). Order is the same as there, so installed
    plugins add their commands after the built-ins, as before.
    """
    return _build(COMMAND_PLUGINS)
