"""The ``healthspace`` command line: the only place that imports Typer.

Commands follow DESIGN.md's contract: ``--json`` prints exactly one JSON document
on stdout, progress goes to stderr, and a failure exits non-zero with one line on
stderr naming the file, the place and the reason.
"""

from __future__ import annotations

import logging
import sys

import typer

from healthspace.cli._output import fail_line
from healthspace.errors import HealthspaceError
from healthspace.plugins import get_command_plugin_manager

__all__ = ["build_app", "main"]


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="healthspace",
        help="A private, encrypted health space you host yourself.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    get_command_plugin_manager().hook.register_commands(app=app)
    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn our errors into one-line failures."""
    app = build_app()
    try:
        # Without standalone mode, a command's typer.Exit(code) comes back as the
        # return value instead of being raised.
        returned = app(args=argv, prog_name="healthspace", standalone_mode=False)
    except HealthspaceError as exc:
        fail_line(str(exc))
        return 1
    except PermissionError as exc:
        fail_line(f"permission denied: {exc}")
        return 1
    except typer.Abort:
        fail_line("aborted")
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.TyperException as exc:  # usage errors: the parser prints its own line
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            fail_line(str(exc))
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:
        # Never a traceback on the terminal (it could carry paths or SQL); the
        # details go to the debug log for the operator who asks for them.
        logging.getLogger("healthspace").debug("unexpected error", exc_info=True)
        fail_line(
            f"unexpected {type(exc).__name__}; rerun with HEALTHSPACE_LOG_LEVEL=DEBUG for details"
        )
        return 1
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
