"""QLearningAgent: tabular Q-learning over bounded state keys, persisted value by value.

Differences from the seed, and why:

* Values start optimistic (``initial_value=1.0``, the largest reward), so in every
  state the greedy choice tries each action it has not tried yet. With
  zero-initialised values and rewards in [0, 1], the first action that paid anything
  (even a failure's 0.45) stayed greedy for good.
* The first update of a (state, action) pair replaces the initial value by its
  target (step size 1: the average of one sample); later updates use
  ``learning_rate``. The optimistic value thus means "not tried yet" and costs one
  try per action and state. Decaying it with step 0.1 instead would take about six
  tries of every wrong action per state before 0.45 falls below a success's value
  (measured on the routing test: 0.74 routed right over requests 201–300 instead of
  0.86). ``replace_initial_value=False`` gives the textbook update throughout.
* Ties between equal values are broken at random, not by the order of the actions.
* Only the changed value is written (``save_q_values``), never the whole table.
* :meth:`choose` reports the exact probability of its choice (for off-policy
  evaluation) and takes the generator to draw from (for exact resume).

>>> import tempfile, os
>>> from rlmemory.store.sql import MemoryDatabase
>>> from rlmemory.learners.base import Observation
>>> db = MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db"))
>>> agent = QLearningAgent("router", None, db, None, None, ["search", "coding"], seed=1)
>>> agent.update_q_value("coding:short:code", "coding", 0.75)
>>> db.get_q_table("router")
{'coding:short:code': {'coding': 0.75}}
>>> QLearningAgent("router", None, db, None, None, ["search", "coding"]).get_q_values(
...     "coding:short:code")
{'search': 1.0, 'coding': 0.75}
>>> db.close()
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from rlmemory.learners._sampling import (
    check_action_name,
    check_actions,
    check_known_action,
    check_observation,
    check_rate,
    check_reward,
    epsilon_greedy,
    epsilon_greedy_probabilities,
)
from rlmemory.store._validation import check_agent_name, check_finite
from rlmemory.store.base import MemoryStore, QTable
from rlmemory.types import Choice, Observation


class QLearningAgent:
    """Epsilon-greedy Q-learning whose table lives in a :class:`MemoryStore`.

    ``model``, ``reward_system`` and ``state_extractor`` are kept as attributes (the
    seed's signature); the learner itself only needs ``db`` and ``actions``.
    ``initial_value`` is the value of an action not yet tried in a state and
    ``replace_initial_value`` whether its first update replaces it (see the module
    docstring). ``seed`` seeds the generator used by :meth:`select_action`; :meth:`choose`
    draws from the generator it is given.

    ``refresh_every``: every so many choices (1: every choice), re-read the chosen
    state's stored values first, so that learning of other processes sharing the store
    shows up in this one's choices without a restart. 0 (the default) chooses from the
    copy in memory, which this process's own updates keep current and which every
    update refreshes for the states it touches.
    """

    def __init__(
        self,
        name: str,
        model: Any,
        db: MemoryStore,
        reward_system: Any,
        state_extractor: Any,
        actions: list[str],
        learning_rate: float = 0.1,
        discount_factor: float = 0.9,
        exploration_rate: float = 0.2,
        *,
        initial_value: float = 1.0,
        replace_initial_value: bool = True,
        seed: int | None = None,
        refresh_every: int = 0,
    ) -> None:
        self.name = check_agent_name(name)
        self.model = model
        self.db = db
        self.reward_system = reward_system
        self.state_extractor = state_extractor
        self.actions = check_actions(actions)
        self.learning_rate = check_rate(
            learning_rate, "learning_rate", low=0.0, high=1.0, low_open=True
        )
        self.discount_factor = check_rate(
            discount_factor, "discount_factor", low=0.0, high=1.0, low_open=False
        )
        self.exploration_rate = check_rate(
            exploration_rate, "exploration_rate", low=0.0, high=1.0, low_open=False
        )
        self.initial_value = check_finite(initial_value, "initial_value")
        if not isinstance(replace_initial_value, bool):
            raise TypeError("replace_initial_value must be a bool")
        self.replace_initial_value = replace_initial_value
        if (
            isinstance(refresh_every, bool)
            or not isinstance(refresh_every, int)
            or refresh_every < 0
        ):
            raise ValueError(f"refresh_every must be an int >= 0, got {refresh_every!r}")
        self.refresh_every = refresh_every
        self._choices_since_refresh = 0
        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        self.q_table: QTable = {}
        self.reload()

    # ------------------------------------------------------------------ seed API
    def get_q_values(self, state: str) -> dict[str, float]:
        """The value of every action in ``state`` (``initial_value`` where never updated)."""
        _check_state(state)
        with self._lock:
            row = self.q_table.get(state, {})
            return {action: row.get(action, self.initial_value) for action in self.actions}

    def action_probabilities(self, state: str) -> dict[str, float]:
        """The probability :meth:`select_action` picks each action in ``state`` (sum 1)."""
        return epsilon_greedy_probabilities(self.get_q_values(state), self.exploration_rate)

    def select_action(self, state: str) -> str:
        """Pick an action for ``state`` epsilon-greedily, from the agent's own generator."""
        return self._choose_for_state(state, self._rng)[0]

    def update_q_value(
        self, state: str, action: str, reward: float, next_state: str | None = None
    ) -> None:
        """Move Q(state, action) towards ``reward + discount * max_a Q(next_state, a)``.

        The step is ``learning_rate``, except that the first update of a pair sets its
        value to the target when ``replace_initial_value`` is true. ``next_state=None``
        is a terminal step (one-step feedback): the target is the reward alone. Only
        the changed value is written to the store.

        Several processes may learn into one store: inside one store transaction the
        learner is locked (:meth:`MemoryStore.lock_learner`), the stored values of
        ``state`` (and ``next_state``) are re-read into memory and the new value is
        computed from them, so an update made meanwhile by another process is built
        on, never overwritten. If the write fails, memory holds the stored values.
        """
        _check_state(state)
        if next_state is not None:
            _check_state(next_state)
        check_known_action(action, self.actions)
        reward = check_reward(reward)
        db = self.db
        with db.transaction(), self._lock:  # store, then learner: the coordinator's order
            # Other processes may have updated these states since we loaded them: lock
            # the learner (a no-op where write transactions already exclude each
            # other), re-read, and compute from the stored values, not from our copy.
            db.lock_learner(self.name)
            self._refresh_state(state)
            target = reward
            if next_state is not None:
                if next_state != state:
                    self._refresh_state(next_state)
                target += self.discount_factor * max(self.get_q_values(next_state).values())
            current = self.q_table.get(state, {}).get(action)
            if current is None and self.replace_initial_value:
                value = target
            else:
                if current is None:
                    current = self.initial_value
                value = current + self.learning_rate * (target - current)
            db.save_q_values(self.name, {state: {action: value}})
            self.q_table.setdefault(state, {})[action] = value

    def _refresh_state(self, state: str) -> None:
        """Replace the in-memory row of ``state`` by the stored one."""
        stored = self.db.get_q_values(self.name, state)
        with self._lock:
            if stored:
                self.q_table[state] = stored
            else:
                self.q_table.pop(state, None)

    # ------------------------------------------------------------- the protocol
    def choose(self, observation: Observation, rng: np.random.Generator) -> Choice:
        """Epsilon-greedy choice for ``observation.state``, with its exact probability.

        ``scores`` are the state's Q-values.
        """
        check_observation(observation)
        action, propensity, values = self._choose_for_state(observation.state, rng)
        return Choice(action=action, propensity=propensity, scores=values)

    def probabilities(self, observation: Observation) -> dict[str, float]:
        """:meth:`action_probabilities` of ``observation.state``."""
        check_observation(observation)
        return self.action_probabilities(observation.state)

    def learn(self, observation: Observation, action: str, reward: float) -> None:
        """Terminal update for the action actually taken in ``observation.state``."""
        check_observation(observation)
        self.update_q_value(observation.state, action, reward)

    def add_action(self, action: str) -> None:
        """Offer a new action; it starts at ``initial_value`` in every state, so it gets
        tried. Values learned for other actions are kept. Adding a known action does
        nothing."""
        check_action_name(action)
        with self._lock:
            if action not in self.actions:
                self.actions.append(action)

    def reload(self) -> None:
        """Re-read the Q-table from the store (e.g. after a rolled-back transaction)."""
        stored = self.db.get_q_table(self.name)
        with self._lock:
            self.q_table = {state: dict(row) for state, row in (stored or {}).items()}

    def _choose_for_state(
        self, state: str, rng: np.random.Generator
    ) -> tuple[str, float, dict[str, float]]:
        if self.refresh_every:
            _check_state(state)
            with self._lock:
                self._choices_since_refresh += 1
                due = self._choices_since_refresh >= self.refresh_every
                if due:
                    self._choices_since_refresh = 0
            if due:
                self._refresh_state(state)
        values = self.get_q_values(state)
        action, propensity = epsilon_greedy(values, self.exploration_rate, rng)
        return action, propensity, values


def _check_state(state: object) -> str:
    if not isinstance(state, str):
        raise TypeError(f"state must be a str, not {type(state).__name__}")
    return state
