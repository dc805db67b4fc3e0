"""The Typer application that every ``rlmemory`` command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rlmemory",
    help="Learn which sub-agent should handle each request, and keep what was learned.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
