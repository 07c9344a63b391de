"""Output helpers: JSON on stdout, human text on stdout, messages on stderr."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console

__all__ = ["emit_json", "err_console", "fail_line", "out_console"]

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def emit_json(doc: Any) -> None:
    sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode() + "\n")
    sys.stdout.flush()


def fail_line(message: str) -> None:
    # One line, whatever the message held.
    line = " ".join(message.split())
    sys.stderr.write(f"healthspace: error: {line}\n")
    sys.stderr.flush()
