"""The MCP server: its tools through the SDK's in-memory Client, and over stdio.

The in-memory tests run on every backend (``make_store``); the stdio test runs on
SQLite only: it checks the transport and the ``rlmemory mcp`` command, not the store.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("mcp")
from mcp import Client, StdioServerParameters

from rlmemory.service import create_mcp_server


def run_with(server_or_params: Any, work: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with Client(server_or_params) as client:
            return await work(client)

    return asyncio.run(main())


def test_route_reward_and_loop_stats_on_every_backend(make_store: Any) -> None:
    server = create_mcp_server(make_store.location)

    async def work(client: Client) -> tuple[Any, Any, Any]:
        routed = await client.call_tool(
            "route",
            {"loop": "support", "actions": ["billing", "tech"], "text": "refund my order",
             "context": {"user": {"tier": "gold"}}},
        )  # fmt: skip
        decision = routed.structured_content
        rewarded = await client.call_tool(
            "reward", {"loop": "support", "decision_id": decision["decision_id"], "value": 1.0}
        )
        stats = await client.call_tool("loop_stats", {"loop": "support"})
        return decision, rewarded.structured_content, stats.structured_content

    decision, rewarded, stats = run_with(server, work)
    assert decision["chosen_action"] in {"billing", "tech"}
    assert sum(decision["probabilities"].values()) == pytest.approx(1.0)
    assert rewarded == {
        "decision_id": decision["decision_id"],
        "learned": True,
        "status": "observed",
    }
    assert (stats["ranks"], stats["rewards"], stats["mean_reward"]) == (1, 1, 1.0)
    store = make_store()
    assert store.get_agent_decisions("support")[0]["selected_action"] == decision["chosen_action"]


def test_tools_list_with_structured_output_schemas(tmp_path: Any) -> None:
    server = create_mcp_server(str(tmp_path / "memory.db"))
    tools = run_with(server, lambda client: client.list_tools()).tools
    assert sorted(tool.name for tool in tools) == ["evaluate", "loop_stats", "reward", "route"]
    assert all(tool.output_schema for tool in tools)


@pytest.mark.parametrize(
    ("tool", "arguments", "named"),
    [
        ("reward", {"loop": "support", "decision_id": "unknown", "value": 1.0}, "unknown"),
        ("reward", {"loop": "ghost", "decision_id": "x", "value": 1.0}, "ghost"),
        ("route", {"loop": "support", "actions": []}, "actions"),
        ("route", {"loop": "bad name", "actions": ["a"]}, "loop"),
        ("loop_stats", {"loop": "ghost"}, "ghost"),
        ("evaluate", {"loop": "support", "policy": "sarsa"}, "sarsa"),
    ],
)
def test_mistakes_are_one_line_tool_errors(
    tmp_path: Any, tool: str, arguments: dict, named: str
) -> None:
    server = create_mcp_server(str(tmp_path / "memory.db"))

    async def work(client: Client) -> Any:
        routed = await client.call_tool("route", {"loop": "support", "actions": ["a", "b"]})
        await client.call_tool(
            "reward", {"loop": "support", "decision_id": routed.structured_content["decision_id"],
                       "value": 1.0},
        )  # fmt: skip
        return await client.call_tool(tool, arguments)

    result = run_with(server, work)
    assert result.is_error
    text = result.content[0].text
    assert named in text and "\n" not in text


def test_evaluate_estimates_a_policy_on_the_loops_log(tmp_path: Any) -> None:
    server = create_mcp_server(str(tmp_path / "memory.db"))

    async def work(client: Client) -> Any:
        for number in range(40):
            routed = (await client.call_tool(
                "route", {"loop": "support", "actions": ["a", "b"],
                          "context": {"n": number % 2}},
            )).structured_content  # fmt: skip
            value = 1.0 if routed["chosen_action"] == "a" else 0.0
            await client.call_tool(
                "reward", {"loop": "support", "decision_id": routed["decision_id"], "value": value}
            )
        return await client.call_tool("evaluate", {"loop": "support", "policy": "uniform"})

    result = run_with(server, work).structured_content
    assert result["evaluated_decisions"] == 20
    ips = result["estimates"]["IPS"]
    assert ips["low"] <= ips["value"] <= ips["high"]


def test_rlmemory_mcp_serves_the_tools_over_stdio(tmp_path: Any, subprocess_env: dict) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rlmemory", "mcp", "--db", str(tmp_path / "memory.db")],
        env=subprocess_env,
    )

    async def work(client: Client) -> Any:
        routed = await client.call_tool("route", {"loop": "support", "actions": ["a", "b"]})
        decision = routed.structured_content["decision_id"]
        await client.call_tool("reward", {"loop": "support", "decision_id": decision, "value": 1})
        return (await client.call_tool("loop_stats", {"loop": "support"})).structured_content

    stats = asyncio.run(asyncio.wait_for(_with_client(params, work), timeout=120))
    assert (stats["ranks"], stats["rewards"]) == (1, 1)


async def _with_client(params: Any, work: Callable[[Client], Awaitable[Any]]) -> Any:
    async with Client(params) as client:
        return await work(client)


def test_rlmemory_mcp_serves_streamable_http_on_loopback(
    tmp_path: Any, subprocess_env: dict
) -> None:
    import subprocess
    import time

    import httpx
    from tests.service.conftest import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rlmemory", "mcp", "--db", str(tmp_path / "memory.db"),
         "--transport", "streamable-http", "--port", str(port)],
        env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)  # polling a starting server
        url = f"http://127.0.0.1:{port}/mcp"

        async def work(client: Client) -> Any:
            return await client.call_tool("route", {"loop": "s", "actions": ["a", "b"]})

        routed = asyncio.run(asyncio.wait_for(_with_client(url, work), timeout=60))
        assert routed.structured_content["chosen_action"] in {"a", "b"}
    finally:
        process.terminate()
        process.wait(timeout=30)
