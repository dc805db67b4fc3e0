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

import numpy as np

from rlmemory.coordinator import create_rl_agent_architecture
from rlmemory.demo.agents import demo_sub_agents
from rlmemory.demo.requests import KINDS, DemoRequest, demo_requests
from rlmemory.learners.base import Observation
from rlmemory.ops.history import reward_value
from rlmemory.store.base import MemoryStore

__all__ = [
    "DemoOutcome",
    "DemoReport",
    "GreedyChoice",
    "demo_agent_name",
    "greedy_choice",
    "run_demo",
    "stored_history",
    "stored_rewards",
]


@dataclass(frozen=True)
class DemoOutcome:
    """One routed demo request: which sub-agent served it, whether it succeeded, the reward,
    the probability the learner gave its choice and the stored decision's id."""

    request: DemoRequest
    selected_agent: str
    success: bool
    reward: float
    propensity: float = 1.0
    decision_id: int | None = None

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
    #: Per outcome, the learner's choice once the run is over, without exploration.
    greedy: list[GreedyChoice] = field(default_factory=list)
    #: The learner's exploration rate (epsilon), when it explores at a fixed rate.
    exploration_rate: float | None = None
    seed: int = 0

    def greedy_right_share(self) -> float | None:
        """Share of this run's requests the learned policy, choosing greedily, would send
        to the sub-agent made for them."""
        pairs = list(zip(self.outcomes, self.greedy, strict=False))
        if not pairs:
            return None
        return sum(KINDS[o.request.kind] == g.agent for o, g in pairs) / len(pairs)

    def exploration_cap(self) -> float | None:
        """The largest share routed right while exploring at :attr:`exploration_rate`:
        a random pick is right one time in as many sub-agents as there are."""
        if self.exploration_rate is None:
            return None
        return 1.0 - self.exploration_rate * (len(KINDS) - 1) / len(KINDS)

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
    report = DemoReport(name, agent_type, resumed_from=store.count_agent_decisions(name), seed=seed)
    learner = coordinator.rl_agent
    rate = getattr(learner, "exploration_rate", getattr(learner, "epsilon", None))
    report.exploration_rate = None if rate is None else float(rate)
    started = time.perf_counter()
    for request in demo_requests(requests, seed=seed, start=report.resumed_from):
        result = await coordinator.process_request(request.text)
        outcome = DemoOutcome(
            request=request,
            selected_agent=result["selected_agent"],
            success=bool(result["success"]),
            reward=float(result["reward"]),
            propensity=float(result["propensity"]),
            decision_id=result["decision_id"],
        )
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    report.seconds = time.perf_counter() - started
    report.greedy = greedy_choices(store, learner, name, report.outcomes)
    return report


@dataclass(frozen=True)
class GreedyChoice:
    """The sub-agent a learner would choose without exploring, and its value: the
    Q-value for Q-learning, the probability of the most likely choice otherwise."""

    agent: str
    value: float


def greedy_choice(learner: Any, observation: Observation) -> GreedyChoice:
    """What ``learner`` prefers for ``observation`` now (ties: the first in its actions)."""
    if hasattr(learner, "get_q_values"):
        values = learner.get_q_values(observation.state)
    else:
        values = learner.action_probabilities(observation.features)
    best = max(values, key=lambda action: values[action])
    return GreedyChoice(best, float(values[best]))


def greedy_choices(
    store: MemoryStore, learner: Any, agent_name: str, outcomes: list[DemoOutcome]
) -> list[GreedyChoice]:
    """:func:`greedy_choice` for the stored decision of every outcome, in order."""
    wanted = {outcome.decision_id for outcome in outcomes}
    first = min((i for i in wanted if i is not None), default=None)
    if first is None:
        return []
    observations = {
        decision["id"]: Observation(
            decision["state"], np.asarray(decision["features"] or [], dtype=np.float64)
        )
        for decision in store.iter_agent_decisions(agent_name, after_id=first - 1)
        if decision["id"] in wanted
    }
    return [greedy_choice(learner, observations[o.decision_id]) for o in outcomes]


def stored_rewards(store: MemoryStore, agent_name: str) -> list[float]:
    """The learned reward of every stored decision of ``agent_name``, oldest first
    (decisions whose reward is still pending are left out)."""
    rewards = []
    for decision in store.iter_agent_decisions(agent_name):
        reward = reward_value(decision["reward"])
        if reward is not None:
            rewards.append(reward)
    return rewards


def stored_history(
    store: MemoryStore, agent_name: str, seed: int = 0
) -> tuple[list[float], list[bool]]:
    """Per stored, rewarded decision of the demo agent, oldest first: its reward and
    whether it went to the sub-agent made for its request.

    Request ``i`` of the stream is regenerated from ``seed`` (a resumed demo continues
    the stream of the same seed, so this is the request decision ``i`` served).
    """
    rewards: list[float] = []
    right: list[bool] = []
    for index, decision in enumerate(store.iter_agent_decisions(agent_name)):
        reward = reward_value(decision["reward"])
        if reward is None:
            continue
        (request,) = demo_requests(1, seed=seed, start=index)
        rewards.append(reward)
        right.append(KINDS[request.kind] == decision["selected_action"])
    return rewards, right
