"""CLI commands ``serve``, ``mcp`` and ``keys api``: the decision service and its API keys."""

from __future__ import annotations

import json
import os

import typer
from rich.table import Table

from rlmemory.cli.app import app
from rlmemory.cli.cmd_ops import keys_app
from rlmemory.cli.common import DbOption, console, error_console, opened_store, resolve_db

__all__ = ["api_keys_list", "api_keys_new", "api_keys_revoke", "mcp", "serve"]

api_app = typer.Typer(help="API keys of the decision service (only their hashes are stored).")
keys_app.add_typer(api_app, name="api")

SERVE_EXTRA = "pip install 'rlmemory[serve]'"


def _fail(message: str) -> None:
    error_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


@app.command()
def serve(
    db: str | None = DbOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to bind."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    personalizer_loop: str = typer.Option(
        "default", "--personalizer-loop", help="Loop served by the /personalizer/v1.0 routes."
    ),
    max_body_bytes: int = typer.Option(
        1_000_000, "--max-body-bytes", min=1, help="Larger request bodies are refused (413)."
    ),
    refresh_seconds: float = typer.Option(
        0.5, "--refresh-seconds", min=0.0, help="Oldest statistics a rank may use."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the store's learning loops over HTTP (rank/reward, Personalizer alias, dashboard).

    On a loopback address no key is needed; on any other address API keys are required
    and the service refuses to start until one exists (rlmemory keys api new).
    """
    try:
        import uvicorn

        from rlmemory.service.app import ENVIRONMENT_PREFIX, is_loopback
        from rlmemory.service.keys import has_api_keys
    except ImportError as missing:
        _fail(f"rlmemory serve needs FastAPI and uvicorn ({missing}); {SERVE_EXTRA}")
    location = resolve_db(db)
    with opened_store(location, create=True) as store:
        require_keys = not is_loopback(host)
        if require_keys and not has_api_keys(store):
            _fail(
                f"refusing to listen on {host}, which is not a loopback address, without API "
                "keys; create one with: rlmemory keys api new --scope admin"
            )
    options = {
        "require_api_keys": require_keys,
        "personalizer_loop": personalizer_loop,
        "max_body_bytes": max_body_bytes,
        "refresh_seconds": refresh_seconds,
    }
    os.environ[ENVIRONMENT_PREFIX + "DB"] = location
    os.environ[ENVIRONMENT_PREFIX + "OPTIONS"] = json.dumps(options)
    uvicorn.run(
        "rlmemory.service.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


@app.command()
def mcp(
    db: str | None = DbOption,
    transport: str = typer.Option(
        "stdio", "--transport", help="stdio or streamable-http.", case_sensitive=False
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address (streamable-http)."),
    port: int = typer.Option(8001, "--port", min=0, max=65535, help="Port (streamable-http)."),
) -> None:
    """Serve the store's learning loops as MCP tools (route, reward, loop_stats, evaluate)."""
    if transport not in ("stdio", "streamable-http"):
        _fail(f"--transport must be stdio or streamable-http, got {transport!r}")
    try:
        from rlmemory.service.mcp_server import create_mcp_server
    except ImportError as missing:
        _fail(f"rlmemory mcp needs the mcp package ({missing}); pip install 'rlmemory[mcp]'")
    server = create_mcp_server(resolve_db(db))
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)


@api_app.command("new")
def api_keys_new(
    scope: str = typer.Option(..., "--scope", help="rank (rank, reward, read) or admin (all)."),
    note: str = typer.Option("", "--note", help="A note kept with the key's hash."),
    db: str | None = DbOption,
) -> None:
    """Create an API key and print it once; the store keeps only its hash."""
    from rlmemory.service.keys import new_api_key

    with opened_store(db, create=True) as store:
        key = new_api_key(store, scope, note)
    console.print(key, highlight=False, soft_wrap=True)
    error_console.print(
        f"a {scope} key; it is shown only this once. Send it as: Authorization: Bearer KEY"
    )


@api_app.command("list")
def api_keys_list(db: str | None = DbOption) -> None:
    """List API keys (id, scope, note; never the key)."""
    from rlmemory.service.keys import list_api_keys

    with opened_store(db) as store:
        entries = list_api_keys(store)
    table = Table("id", "scope", "note")
    for entry in entries:
        table.add_row(entry["id"], str(entry["scope"]), entry["note"])
    console.print(table)


@api_app.command("revoke")
def api_keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id (second part of rlm_ID_SECRET)."),
    db: str | None = DbOption,
) -> None:
    """Revoke an API key."""
    from rlmemory.service.keys import revoke_api_key

    with opened_store(db) as store:
        if not revoke_api_key(store, key_id):
            _fail(f"no API key with id {key_id!r}")
    console.print(f"revoked {key_id}")
