"""The MCP server: a store's learning loops as tools for MCP clients (extra ``rlmemory[mcp]``).

Built on the official ``mcp`` SDK (2.x, ``mcp.server.MCPServer``). Tools, each with typed
structured output, and :class:`ToolError` (one line) for anything the caller got wrong:

* ``route`` — rank candidate actions for a text and/or feature dictionaries on a loop
  (created with defaults if new): decision id, chosen action, probabilities;
* ``reward`` — the reward of a routed decision;
* ``loop_stats`` — settings and live figures of a loop;
* ``evaluate`` — off-policy estimate of a candidate policy on a loop's logged decisions.

``text`` becomes a bag of lower-case words in the namespace ``text`` (each word's count
under ``text^word``), hashed with the loop's :class:`~rlmemory.features.DictFeaturizer`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

from pydantic import BaseModel

from rlmemory.errors import StoreError
from rlmemory.service.loops import LoopRegistry, RequestError, UnknownEventError, UnknownLoopError
from rlmemory.service.settings import SettingsError, check_loop_name

try:
    from mcp.server import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"the rlmemory MCP server needs the mcp package ({missing}); install it with "
        "pip install 'rlmemory[mcp]'"
    ) from None

_WORD = re.compile(r"\w+")


class RouteResult(BaseModel):
    """A routing decision."""

    decision_id: str
    chosen_action: str
    probabilities: dict[str, float]


class RewardResult(BaseModel):
    """What a reward did."""

    decision_id: str
    learned: bool
    status: str


class LoopStats(BaseModel):
    """A loop's settings and live figures."""

    loop: str
    settings: dict[str, Any]
    ranks: int
    rewards: int
    mean_reward: float | None
    pending_events: int
    current_version: int | None


class EstimateResult(BaseModel):
    """One off-policy estimate with its confidence interval."""

    value: float
    low: float
    high: float


class EvaluationResult(BaseModel):
    """A candidate policy's estimated value on a loop's log, beside the logged policy's."""

    loop: str
    policy: str
    evaluated_decisions: int
    logged_policy_value: float
    estimates: dict[str, EstimateResult]


def text_features(text: str) -> dict[str, dict[str, int]]:
    """A text as feature dictionaries: its lower-case words counted under ``text``.

    >>> text_features("Refund my order, my ORDER")
    {'text': {'refund': 1, 'my': 2, 'order': 2}}
    """
    return {"text": dict(Counter(word.lower() for word in _WORD.findall(text)))}


def _one_line(error: Exception) -> ToolError:
    return ToolError(" ".join(str(error.args[0] if error.args else error).split()))


def create_mcp_server(store_location: Any, *, name: str = "rlmemory") -> MCPServer:
    """The MCP server over the loops of the store at ``store_location`` (path, URL or an
    open store). The store is opened now and stays open for the server's life."""
    from rlmemory.store import open_store

    store = (
        open_store(store_location)
        if isinstance(store_location, str | os.PathLike)
        else store_location
    )
    loops = LoopRegistry(store, refresh_seconds=0.5)
    server = MCPServer(
        name,
        instructions="Route requests to actions with learning loops, then report rewards.",
    )
    expected = (RequestError, SettingsError, UnknownLoopError, UnknownEventError, ValueError)

    @server.tool()
    def route(
        loop: str,
        actions: list[str],
        text: str | None = None,
        context: dict[str, Any] | list[dict[str, Any]] | None = None,
        excluded_actions: list[str] | None = None,
        decision_id: str | None = None,
    ) -> RouteResult:
        """Choose one of ``actions`` for a request (its ``text`` and/or ``context`` feature
        dictionaries) on learning loop ``loop``; report the outcome with ``reward``."""
        documents: list[dict[str, Any]] = []
        if context is not None:
            documents.extend(context if isinstance(context, list) else [context])
        if text is not None:
            documents.append(text_features(text))
        try:
            answer = loops.rank(
                loop, documents, [{"id": action} for action in actions], excluded_actions,
                decision_id,
            )  # fmt: skip
        except expected as error:
            raise _one_line(error) from None
        except StoreError as error:
            raise _one_line(error) from None
        return RouteResult(
            decision_id=answer.event_id,
            chosen_action=answer.reward_action_id,
            probabilities=dict(answer.ranking),
        )

    @server.tool()
    def reward(loop: str, decision_id: str, value: float) -> RewardResult:
        """Report the reward (a finite number, higher is better) of a routed decision."""
        try:
            outcome = loops.get(check_loop_name(loop)).reward(decision_id, value)
        except (*expected, StoreError) as error:
            raise _one_line(error) from None
        return RewardResult(decision_id=decision_id, learned=outcome.learned, status=outcome.status)

    @server.tool()
    def loop_stats(loop: str) -> LoopStats:
        """Settings and live figures of a learning loop."""
        try:
            stats = loops.get(check_loop_name(loop)).stats()
        except (*expected, StoreError) as error:
            raise _one_line(error) from None
        return LoopStats(
            loop=stats["loop"],
            settings=stats["settings"],
            ranks=stats["ranks"],
            rewards=stats["rewards"],
            mean_reward=stats["meanReward"],
            pending_events=stats["pendingEvents"],
            current_version=stats["currentVersion"],
        )

    @server.tool()
    def evaluate(
        loop: str, policy: str = "linucb", train_fraction: float = 0.5
    ) -> EvaluationResult:
        """Estimate (IPS, SNIPS, DR with 95 % intervals) what ``policy`` (linucb, thompson,
        epsilon_greedy, uniform) would have earned on the loop's logged decisions."""
        from rlmemory.offpolicy import evaluate_candidate

        try:
            loops.get(check_loop_name(loop))
            result = evaluate_candidate(
                store, loop, policy, train_fraction=train_fraction, n_bootstrap=500
            )
        except (*expected, StoreError) as error:
            raise _one_line(error) from None
        return EvaluationResult(
            loop=loop,
            policy=policy,
            evaluated_decisions=result.n_evaluated,
            logged_policy_value=result.observed.value,
            estimates={
                name: EstimateResult(value=e.value, low=e.ci_low, high=e.ci_high)
                for name, e in result.estimates.items()
            },
        )

    return server
