"""The Typer application that every ``rlmemory`` command module registers on.

Its group runs every command inside :func:`rlmemory.cli.common.reported_errors`, so an
error that a command does not handle itself still ends as one line on stderr with
exit status 1, never as a traceback.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import typer
from typer.core import TyperGroup

from rlmemory.cli.common import reported_errors


class _OneLineErrorsGroup(TyperGroup):
    """The command group: commands run with one-line error reporting."""

    def invoke(self, ctx: Any) -> Any:
        with reported_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="rlmemory",
    cls=_OneLineErrorsGroup,
    help="Learn which sub-agent should handle each request, and keep what was learned.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def installed_version() -> str:
    """The installed rlmemory's version ("unknown" when run from a source tree only)."""
    try:
        return package_version("rlmemory")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"rlmemory {installed_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Learn which sub-agent should handle each request, and keep what was learned."""
