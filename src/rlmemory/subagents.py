"""Run any kind of sub-agent the same way: timed, and never raising into the coordinator.

A sub-agent is one of

* an object with ``execute(request, db)`` (async or sync) returning a dict
  ``{"success", "response", "error"?, "tool_calls"?, "self_evaluation"?}`` — the seed's form;
* a plain callable taking the request (async or sync), returning such a dict or any
  other value, which becomes the response of a successful task (a LangChain
  ``AIMessage`` gives its ``content`` as the response and keeps its ``usage_metadata``).

A result may report what it cost: ``cost`` (currency) or token usage
(``usage_metadata``: ``input_tokens``, ``output_tokens``), which
:class:`~rlmemory.rewards.RewardSystem` turns into the reward's cost component.

:func:`run_sub_agent` runs one with a timeout and returns a :class:`SubAgentOutcome`.
An exception or a timeout is a failed task with the error recorded; the caller keeps
serving. Sync callables run in a worker thread so that a timeout can be enforced
without blocking the event loop (a timed-out thread is abandoned, not killed).

>>> import asyncio
>>> outcome = asyncio.run(run_sub_agent(str.upper, "hello", db=None, timeout=1.0))
>>> outcome.result["success"], outcome.result["response"]
(True, 'HELLO')
>>> def broken(request):
...     raise RuntimeError("disk full")
>>> asyncio.run(run_sub_agent(broken, "hello", db=None, timeout=1.0)).result["error"]
'RuntimeError: disk full'
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SubAgentOutcome", "check_sub_agent", "run_sub_agent"]


@dataclass(frozen=True)
class SubAgentOutcome:
    """What a sub-agent produced and how long it took.

    ``result`` always has ``success`` (bool) and ``response`` (str); ``error`` (str)
    when the task failed; the sub-agent's other keys are kept as it returned them.
    """

    result: dict[str, Any]
    response_time: float

    @property
    def success(self) -> bool:
        return bool(self.result["success"])

    @property
    def tool_usage(self) -> int:
        """How many tool calls the sub-agent reported (0 when it reported none)."""
        tool_calls = self.result.get("tool_calls")
        if isinstance(tool_calls, int | float) and not isinstance(tool_calls, bool):
            return int(tool_calls) if math.isfinite(tool_calls) else 0
        if isinstance(tool_calls, list | tuple):
            return len(tool_calls)
        return 0


def check_sub_agent(name: object, agent: object) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``agent`` can serve as sub-agent ``name``.

    >>> check_sub_agent("search", str.upper)
    >>> check_sub_agent("search", 42)
    Traceback (most recent call last):
    TypeError: sub-agent 'search' must have an execute(request, db) method or be callable, not int
    """
    if not isinstance(name, str):
        raise TypeError(f"sub-agent names must be str, not {type(name).__name__}")
    if not name:
        raise ValueError("sub-agent names must be non-empty strings")
    if not callable(getattr(agent, "execute", None)) and not callable(agent):
        raise TypeError(
            f"sub-agent {name!r} must have an execute(request, db) method or be callable, "
            f"not {type(agent).__name__}"
        )


async def run_sub_agent(
    agent: Any, request: str, db: Any, timeout: float | None
) -> SubAgentOutcome:
    """Run ``agent`` on ``request`` within ``timeout`` seconds (None: no limit)."""
    started = time.perf_counter()
    try:
        raw = await asyncio.wait_for(_invoke(agent, request, db), timeout)
        result = _normalise(raw)
    except TimeoutError:
        result = {"success": False, "response": "", "error": f"timed out after {timeout:g} s"}
    except Exception as error:  # a sub-agent's failure is a failed task, not ours
        result = {"success": False, "response": "", "error": f"{type(error).__name__}: {error}"}
    return SubAgentOutcome(result=result, response_time=time.perf_counter() - started)


async def _invoke(agent: Any, request: str, db: Any) -> Any:
    execute = getattr(agent, "execute", None)
    if callable(execute):
        if _is_async(execute):
            return await execute(request, db)
        return await asyncio.to_thread(execute, request, db)
    if _is_async(agent):
        return await agent(request)
    return await asyncio.to_thread(agent, request)


def _is_async(function: Any) -> bool:
    if inspect.iscoroutinefunction(function):
        return True
    call = getattr(function, "__call__", None)  # noqa: B004 - objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _normalise(raw: Any) -> dict[str, Any]:
    if inspect.isawaitable(raw):
        raise TypeError("sub-agent returned an awaitable that was not awaited")
    if not isinstance(raw, Mapping):
        content = getattr(raw, "content", None)
        if isinstance(content, str):  # a LangChain AIMessage: its text and token usage
            usage = getattr(raw, "usage_metadata", None)
            message = {"success": True, "response": content}
            return {**message, "usage_metadata": dict(usage)} if usage else message
        return {"success": True, "response": "" if raw is None else str(raw)}
    result = dict(raw)
    error = result.get("error")
    success = result.get("success", not error)
    result["success"] = bool(success)
    response = result.get("response")
    result["response"] = "" if response is None else str(response)
    if not result["success"]:
        result["error"] = str(error) if error else "sub-agent reported failure"
    elif "error" in result and not error:
        del result["error"]
    return result
