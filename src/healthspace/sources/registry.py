"""The sources registered through the ``register_sources`` hook, and detection."""

from __future__ import annotations

from healthspace.plugins import get_plugin_manager
from healthspace.sources.base import InputFile, Source

__all__ = ["all_sources", "detect"]


def all_sources() -> list[Source]:
    found: list[Source] = []
    for group in get_plugin_manager().hook.register_sources():
        found.extend(group)
    return found


def detect(file: InputFile, sources: list[Source] | None = None) -> Source | None:
    """The first source that claims ``file``, or None."""
    head = file.head(65536)
    for source in sources if sources is not None else all_sources():
        if source.sniff(file, head):
            return source
    return None
