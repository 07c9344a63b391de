"""The plugin surface: typed pluggy hooks. Built-ins register through them too."""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("healthspace")
hookimpl = pluggy.HookimplMarker("healthspace")


@hookspec
def register_commands(app: Any) -> None:
    """Add commands or command groups to the ``healthspace`` Typer app."""


@hookspec
def register_sources() -> list[Any]:
    """Return input sources (file formats, connections) this plugin provides."""
    return []


@hookspec
def register_apps() -> list[Any]:
    """Return outbound app manifests this plugin provides."""
    return []


@hookspec
def register_insights() -> list[Any]:
    """Return insight providers this plugin provides."""
    return []


@hookspec
def register_llm_backends() -> list[Any]:
    """Return LLM backend factories this plugin provides."""
    return []
