"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOpt", "SpaceOpt", "UserOpt"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document.")]
UserOpt = Annotated[str, typer.Option("--user", help="The user's email.", show_default=False)]
SpaceOpt = Annotated[str, typer.Option("--space", help="health or general.")]
