"""Run the demo: route a stream of demo requests through a persistent coordinator.

What ``rlmemory demo`` does, as a library call. The coordinator is named
``demo_<agent type>``; a second run on the same store resumes from the stored
decisions and continues the same request stream.

>>> import asyncio, os, tempfile
>>> from rlmemory.store import open_store
>>> with open_store(os.path.join(tempfile.mkdtemp(), "demo.db")) as store:
...     first = asyncio.run(run_demo(store, requests=6, seed=3))
...     second = asyncio.run(run_demo(store, requests=4, seed=3))
>>> first.resumed_from, second.resumed_from, len(second.outcomes)
(0, 6, 4)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rlmemory.coordinator import create_rl_agent_architecture
from rlmemory.demo.agents import demo_sub_agents
from rlmemory.demo.requests import KINDS, DemoRequest, demo_requests
from rlmemory.store.base import MemoryStore

__all__ = ["DemoOutcome", "DemoReport", "demo_agent_name", "run_demo", "stored_rewards"]


@dataclass(frozen=True)
class DemoOutcome:
    """One routed demo request: which sub-agent served it, whether it succeeded, the reward."""

    request: DemoRequest
    selected_agent: str
    success: bool
    reward: float

    @property
    def routed_right(self) -> bool:
        """Whether the request went to the sub-agent made for its kind."""
        return KINDS[self.request.kind] == self.selected_agent


@dataclass
class DemoReport:
    """The outcomes of one demo run and where it resumed from."""

    agent_name: str
    agent_type: str
    resumed_from: int
    outcomes: list[DemoOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def routing(self) -> dict[str, Counter[str]]:
        """Request kind -> how many of its requests each sub-agent served."""
        table: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
        for outcome in self.outcomes:
            table[outcome.request.kind][outcome.selected_agent] += 1
        return table

    def success_rate(self, kind: str) -> float | None:
        """Share of requests of ``kind`` whose sub-agent succeeded (None if none)."""
        served = [outcome.success for outcome in self.outcomes if outcome.request.kind == kind]
        return sum(served) / len(served) if served else None

    def routed_right_share(self, last: int | None = None) -> float | None:
        """Share of requests (of the last ``last``) sent to the sub-agent made for them."""
        outcomes = self.outcomes[-last:] if last else self.outcomes
        return sum(o.routed_right for o in outcomes) / len(outcomes) if outcomes else None

    def reward_blocks(self, size: int = 50) -> list[tuple[int, int, float, float]]:
        """Per block of ``size`` requests: ``(first, last, mean reward, share routed
        right)``, with 1-based request numbers counted over all stored decisions."""
        blocks = []
        for start in range(0, len(self.outcomes), size):
            chunk = self.outcomes[start : start + size]
            first = self.resumed_from + start + 1
            mean = sum(o.reward for o in chunk) / len(chunk)
            right = sum(o.routed_right for o in chunk) / len(chunk)
            blocks.append((first, first + len(chunk) - 1, mean, right))
        return blocks


def demo_agent_name(agent_type: str) -> str:
    """The demo coordinator's name for a learner type."""
    return f"demo_{agent_type}"


async def run_demo(
    store: MemoryStore,
    *,
    requests: int = 1000,
    seed: int = 0,
    agent_type: str = "q_learning",
    snippet_timeout: float = 5.0,
    on_outcome: Callable[[DemoOutcome], Any] | None = None,
) -> DemoReport:
    """Route ``requests`` demo requests, continuing the stream after the stored decisions."""
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ValueError(f"requests must be a positive integer, got {requests!r}")
    name = demo_agent_name(agent_type)
    coordinator = await create_rl_agent_architecture(
        None, store, demo_sub_agents(snippet_timeout), agent_type, seed=seed, name=name
    )
    report = DemoReport(name, agent_type, resumed_from=store.count_agent_decisions(name))
    started = time.perf_counter()
    for request in demo_requests(requests, seed=seed, start=report.resumed_from):
        result = await coordinator.process_request(request.text)
        outcome = DemoOutcome(
            request=request,
            selected_agent=result["selected_agent"],
            success=bool(result["success"]),
            reward=float(result["reward"]),
        )
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    report.seconds = time.perf_counter() - started
    return report


def stored_rewards(store: MemoryStore, agent_name: str) -> list[float]:
    """The learned reward of every stored decision of ``agent_name``, oldest first
    (decisions whose reward is still pending are left out)."""
    rewards = []
    for decision in store.iter_agent_decisions(agent_name):
        reward = decision["reward"]
        if isinstance(reward, dict) and isinstance(reward.get("value"), int | float):
            rewards.append(float(reward["value"]))
        elif isinstance(reward, int | float) and not isinstance(reward, bool):
            rewards.append(float(reward))
    return rewards
