"""Helpers shared by CLI command modules: opening the store and reporting errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from rlmemory.errors import StoreError
from rlmemory.store import MemoryStore, open_store
from rlmemory.store.locations import mask_credentials

console = Console()
error_console = Console(stderr=True)

DEFAULT_DB = "agent_memory.db"

DbOption = typer.Option(
    None,
    "--db",
    help="Store path or URL (SQLite path, sqlite:///, postgresql+psycopg://, files://). "
    "Default: $RLMEMORY_DB or agent_memory.db.",
)


def resolve_db(db: str | None) -> str:
    """The store location from ``--db``, else ``$RLMEMORY_DB``, else ``agent_memory.db``."""
    return db or os.environ.get("RLMEMORY_DB") or DEFAULT_DB


@contextmanager
def opened_store(db: str | None) -> Iterator[MemoryStore]:
    """Open the store for a command; turn known errors into a one-line message and exit 1."""
    with reported_errors(), open_store(resolve_db(db)) as store:
        yield store


@contextmanager
def reported_errors() -> Iterator[None]:
    """Print StoreError, ValueError, TypeError and LookupError as one line and exit 1."""
    try:
        yield
    except (StoreError, ValueError, TypeError, LookupError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        # Library messages name locations already masked; a driver's text might not be.
        error_console.print(
            f"[red]error:[/red] {mask_credentials(str(message))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from None
