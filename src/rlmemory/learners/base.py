"""What every routing learner offers the coordinator.

A learner picks one action (a sub-agent name) for an :class:`Observation` and learns
from the reward of the action that was actually taken. Learners hold their parameters
in memory and write only what an update changed through the store's API; they never
touch SQL or files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Observation:
    """What a learner sees of one request.

    ``state`` is a bounded discrete key (for tabular learners); ``features`` a
    fixed-length float vector (for linear learners). Extractors fill both.
    """

    state: str
    features: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Choice:
    """A learner's decision: the action, the probability it had, and the scores seen.

    ``propensity`` is the probability with which ``action`` was chosen under the
    learner's exploration, in (0, 1]; off-policy evaluation relies on it.
    ``scores`` are the per-action values (Q-values, probabilities or UCB scores)
    stored with the decision.
    """

    action: str
    propensity: float
    scores: dict[str, float]


@runtime_checkable
class RoutingLearner(Protocol):
    """The interface the coordinator drives.

    * ``choose(observation, rng)`` -> :class:`Choice`; all randomness from ``rng``.
    * ``learn(observation, action, reward)``: one-step (terminal) update for the
      action actually taken, persisting only what changed.
    * ``add_action(action)``: a new sub-agent; what was learned for others is kept.
    * ``reload()``: re-read parameters from the store (after a failed transaction).
    """

    name: str
    actions: list[str]

    def choose(self, observation: Observation, rng: np.random.Generator) -> Choice: ...

    def learn(self, observation: Observation, action: str, reward: float) -> None: ...

    def add_action(self, action: str) -> None: ...

    def reload(self) -> None: ...
