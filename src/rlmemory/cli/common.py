"""Helpers shared by CLI command modules: opening the store, naming agents, reporting errors.

Every error a command can meet becomes one line on standard error and exit status 1
(:func:`error_message` says which line); a malformed command line stays Click's exit
status 2. Commands that only read open the store with :func:`opened_store`, which
refuses a store that does not exist instead of creating an empty one.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from rlmemory.errors import NotAStoreError, StoreError
from rlmemory.store import MemoryStore, open_store
from rlmemory.store.locations import mask_credentials

#: ``markup=False``: agent names, states and messages are printed as they are, even
#: with brackets in them; the few styled words ask for markup explicitly.
console = Console(markup=False)
#: ``soft_wrap``: an error stays one line however narrow the terminal.
error_console = Console(stderr=True, soft_wrap=True, markup=False)

DEFAULT_DB = "agent_memory.db"

DbOption = typer.Option(
    None,
    "--db",
    help="Store path or URL (SQLite path, sqlite:///, postgresql+psycopg://, postgres://, "
    "files://). Default: $RLMEMORY_DB or agent_memory.db.",
)
AgentArgument = typer.Argument(..., help="Agent name (see `rlmemory stats`).", show_default=False)
FormatOption = typer.Option("table", "--format", help="Output: table or json.")

#: Optional package (top-level module) -> the extra of rlmemory that installs it.
EXTRAS = {
    "psycopg": "postgres",
    "psycopg_binary": "postgres",
    "pandas": "export",
    "pyarrow": "export",
    "langchain_core": "llm",
    "langchain": "llm",
    "langgraph": "langgraph",
}


def resolve_db(db: str | None) -> str:
    """The store location from ``--db``, else ``$RLMEMORY_DB``, else ``agent_memory.db``."""
    return db or os.environ.get("RLMEMORY_DB") or DEFAULT_DB


# ----------------------------------------------------------------------- errors
def _missing_module(error: ImportError) -> str | None:
    """The top-level name of the module whose import failed, following the cause chain."""
    seen: BaseException | None = error
    while seen is not None:
        name = getattr(seen, "name", None)
        if isinstance(seen, ImportError) and name:
            return str(name).split(".")[0]
        seen = seen.__cause__ or seen.__context__
    return None


def _os_error_message(error: OSError) -> str:
    if error.strerror and error.filename is not None:
        return f"{error.strerror}: {error.filename}"
    return str(error) or type(error).__name__


def error_message(error: BaseException) -> str | None:
    """The one line a user sees for ``error``, or None for an error of rlmemory itself.

    >>> error_message(LookupError("no agent 'x'"))
    "no agent 'x'"
    >>> error_message(ModuleNotFoundError("No module named 'psycopg'", name="psycopg"))
    "psycopg is not installed; install it with: pip install 'rlmemory[postgres]'"
    >>> error_message(FileNotFoundError(2, "No such file or directory", "x.tar"))
    'No such file or directory: x.tar'
    """
    if isinstance(error, ImportError):
        module = _missing_module(error)
        if module is None:
            return f"a package is missing: {error}"
        extra = EXTRAS.get(module)
        fix = f"pip install 'rlmemory[{extra}]'" if extra else f"pip install {module}"
        return f"{module} is not installed; install it with: {fix}"
    if isinstance(error, KeyError):
        return str(error.args[0]) if error.args else "unknown key"
    if isinstance(error, StoreError | ValueError | TypeError | LookupError):
        return str(error)
    if isinstance(error, OSError):
        return _os_error_message(error)
    if _is_database_error(error):
        return _database_error_message(error)
    return None


def _is_database_error(error: BaseException) -> bool:
    module = type(error).__module__
    return module.startswith(("sqlalchemy", "psycopg", "sqlite3"))


def _database_error_message(error: BaseException) -> str:
    # SQLAlchemy's message carries the statement and a link over several lines; the
    # driver's first line says what went wrong (no route, refused, bad password).
    original = getattr(error, "orig", None) or error
    first = str(original).strip().splitlines()
    return f"database error: {first[0] if first else type(original).__name__}"


def report_and_exit(error: BaseException) -> typer.Exit:
    """Print ``error`` as one line on stderr; return the ``Exit(1)`` to raise."""
    message = error_message(error)
    if message is None:
        message = (
            f"unexpected {type(error).__name__}: {error} (this is a bug in rlmemory; "
            "set RLMEMORY_DEBUG=1 for the traceback)"
        )
    # Drivers' messages can span lines (psycopg adds a hint); one line is the promise.
    # Library messages name locations already masked; a driver's text might not be.
    message = mask_credentials(" ".join(message.split()))
    error_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(1)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn any error inside into one line on stderr and exit status 1.

    ``$RLMEMORY_DEBUG`` set lets unexpected errors through with their traceback.
    """
    try:
        yield
    except Exception as error:
        # Click's own exceptions (usage errors: exit status 2, Exit, Abort) are Click's.
        if type(error).__module__.startswith(("click", "typer")):
            raise
        if os.environ.get("RLMEMORY_DEBUG") and error_message(error) is None:
            raise
        raise report_and_exit(error) from None


# ----------------------------------------------------------- stores and agents
def _sqlite_path(location: str) -> Path | None:
    """The file of a SQLite location (None for ``:memory:`` and for non-SQLite URLs)."""
    if location.startswith("sqlite://"):
        path = location.removeprefix("sqlite://").removeprefix("/")
        return None if path in ("", ":memory:") else Path(path)
    if "://" in location or location == ":memory:":
        return None
    return Path(location)


def _did_you_mean(missing: Path) -> str:
    folder = missing.parent if str(missing.parent) else Path(".")
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return ""
    close = difflib.get_close_matches(missing.name, names, n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {str(folder / close[0]) if str(missing.parent) != '.' else close[0]}?"


def check_store_exists(location: str) -> None:
    """``FileNotFoundError`` (with a did-you-mean) when ``location`` names no existing store.

    Only files and folders can be checked; a PostgreSQL database must exist anyway.
    """
    if location.startswith("files://"):
        folder = Path(location.removeprefix("files://"))
        if not folder.is_dir():
            raise FileNotFoundError(
                f"no store folder {folder}{_did_you_mean(folder)} "
                "(`rlmemory demo --db files://FOLDER` creates one)"
            )
        return
    path = _sqlite_path(location)
    if path is not None and not path.exists():
        raise FileNotFoundError(
            f"no store at {path}{_did_you_mean(path)} (`rlmemory demo --db {location}` creates one)"
        )


def store_exists(location: str) -> bool:
    """Whether ``location`` names an existing SQLite file or store folder (URLs: True)."""
    try:
        check_store_exists(location)
    except FileNotFoundError:
        return False
    return True


def remove_new_store(location: str) -> None:
    """Remove the SQLite file (with its journal files) or store folder that a failed
    command created at ``location``; only call it for a store that did not exist before."""
    if location.startswith("files://"):
        shutil.rmtree(location.removeprefix("files://"), ignore_errors=True)
        return
    path = _sqlite_path(location)
    if path is None:
        return
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def opened_store(db: str | None, *, create: bool = False) -> Iterator[MemoryStore]:
    """Open the store for a command; errors become one line on stderr and exit status 1.

    Without ``create`` a missing SQLite file or store folder is an error: a typo in
    ``--db`` must not leave an empty store behind.
    """
    location = resolve_db(db)
    with reported_errors():
        if not create:
            check_store_exists(location)  # a path: the message can say "did you mean"
        try:
            opened = open_store(location, create=create)
        except NotAStoreError as error:
            # A PostgreSQL database (or an empty file) that holds no store: left untouched.
            target = "URL" if "://" in location else location  # never echo a password
            raise NotAStoreError(
                f"{error} (`rlmemory demo --db {target}` creates one)", error.location
            ) from None
        with opened as store:
            yield store


def require_agent(store: MemoryStore, agent: str) -> str:
    """``agent`` if the store holds anything of it, else ``LookupError`` with a did-you-mean."""
    agents = store.list_agents()
    if agent in agents:
        return agent
    close = difflib.get_close_matches(agent, agents, n=1, cutoff=0.5)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    elif agents:
        hint = f"; stored agents: {', '.join(agents[:10])}"
    else:
        hint = " (it stores no agents yet)"
    raise LookupError(f"no agent {agent!r} in {store.location}{hint}")


# ------------------------------------------------------------------ output
def check_output_format(output: str) -> str:
    """``output`` if it is ``table`` or ``json``, else ``ValueError``."""
    if output not in ("table", "json"):
        raise ValueError(f"--format must be table or json, not {output!r}")
    return output


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout (no colours, no wrapping)."""
    typer.echo(json.dumps(value, indent=2, default=str))


def new_table(title: str | None, columns: Sequence[str], *, right: Sequence[str] = ()) -> Table:
    """A Rich table with these columns; those named in ``right`` are right-aligned.

    Rules under the header only (no vertical lines): the tables stay readable in 80
    columns.
    """
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for position, column in enumerate(columns):
        table.add_column(
            column,
            justify="right" if column in right else "left",
            overflow="fold" if position == 0 else "ellipsis",
        )
    return table


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress callback ``(done, total)`` drawing a Rich bar on a terminal.

    Silent when standard error is not a terminal (pipes, CI, tests), so output that
    is parsed stays clean.
    """
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total or None)

    with bar:
        yield advance


def format_time(timestamp: float | None) -> str:
    """A stored timestamp as local ``YYYY-MM-DD HH:MM`` ("-" for None)."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def write_plot(rewards: Sequence[float], path: Path, **options: Any) -> None:
    """:func:`rlmemory.demo.plot.plot_reward_curve`, with a missing folder as a ValueError."""
    from rlmemory.demo.plot import plot_reward_curve

    if not path.parent.is_dir():
        raise ValueError(f"cannot write the plot to {path}: folder {path.parent} does not exist")
    plot_reward_curve(rewards, path, **options)
