"""What every routing learner offers the coordinator.

A learner picks one action (a sub-agent name) for an :class:`Observation` and learns
from the reward of the action that was actually taken. Learners hold their parameters
in memory and write only what an update changed through the store's API; they never
touch SQL or files. :class:`Observation` and :class:`Choice` live in :mod:`rlmemory.types`
(below both learners and features) and are re-exported here.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from rlmemory.types import Choice, Observation


@runtime_checkable
class RoutingLearner(Protocol):
    """The interface the coordinator drives.

    * ``choose(observation, rng)`` -> :class:`Choice`; all randomness from ``rng``.
    * ``probabilities(observation)`` -> the probability ``choose`` picks each action
      (they sum to 1; a choice's ``propensity`` is its action's entry).
    * ``learn(observation, action, reward)``: one-step (terminal) update for the
      action actually taken, persisting only what changed. A reward that is not a
      finite number or an unknown action raises (``TypeError``/``ValueError`` naming
      it) and changes nothing, in memory or in the store.
    * ``add_action(action)``: a new sub-agent; what was learned for others is kept.
    * ``reload()``: re-read parameters from the store (after a failed transaction).
    """

    name: str
    actions: list[str]

    def choose(self, observation: Observation, rng: np.random.Generator) -> Choice: ...

    def probabilities(self, observation: Observation) -> dict[str, float]: ...

    def learn(self, observation: Observation, action: str, reward: float) -> None: ...

    def add_action(self, action: str) -> None: ...

    def reload(self) -> None: ...


__all__ = ["Choice", "Observation", "RoutingLearner"]
