"""The decision service: learning loops over HTTP (rank/reward), an MCP server, a dashboard.

A skin over the library: :mod:`rlmemory.service.loops` holds the behaviour (a loop is a
learner with settings, stored in the store); :func:`create_app` serves it with FastAPI
(extra ``rlmemory[serve]``) and :func:`create_mcp_server` as MCP tools (extra
``rlmemory[mcp]``). Neither FastAPI nor mcp is imported until asked for.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "create_mcp_server"]


def create_app(store_location: Any, **options: Any) -> Any:
    """The ASGI app serving the loops of the store at ``store_location`` (see
    :func:`rlmemory.service.app.create_app`)."""
    from rlmemory.service.app import create_app as build

    return build(store_location, **options)


def create_mcp_server(store_location: Any, **options: Any) -> Any:
    """The MCP server over the loops of the store at ``store_location`` (see
    :func:`rlmemory.service.mcp_server.create_mcp_server`)."""
    from rlmemory.service.mcp_server import create_mcp_server as build

    return build(store_location, **options)
