"""What an agent has learned, read from its store: the summary behind ``rlmemory show``.

:func:`learned_policy` recognises the learner from what is stored — a Q-table
(Q-learning), policy parameters (policy gradient) or numeric arrays (the linear
bandits) — and summarises it with the decision log:

* Q-learning: per state, the best action with its value, every action's value and
  how many stored decisions were made in that state;
* bandits: per action, how often it was chosen, its mean reward, how many rewards its
  model learned from and the size of its weight vector;
* policy gradient: per action, how often it was chosen, its mean reward, its mean
  probability over the logged contexts and the size of its weight row.

>>> import os, tempfile
>>> from rlmemory.store import open_store
>>> with open_store(os.path.join(tempfile.mkdtemp(), "m.db")) as store:
...     store.save_q_values("router", {"code": {"coder": 0.8, "searcher": 0.4}})
...     _ = store.save_agent_decision("router", "code", "coder", {}, {"value": 0.8})
...     policy = learned_policy(store, "router")
>>> policy.learner, policy.states[0].best_action, policy.states[0].visits
('q_learning', 'coder', 1)
>>> policy.actions[0].action, policy.actions[0].chosen, policy.actions[0].mean_reward
('coder', 1, 0.8)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rlmemory.ops.history import reward_value
from rlmemory.store.base import MemoryStore

__all__ = ["ActionSummary", "LearnedPolicy", "StateSummary", "learned_policy"]

#: Learner kinds :func:`learned_policy` recognises.
LEARNER_KINDS = ("q_learning", "linear_bandit", "policy_gradient", "nothing_learned")
#: How many of the newest logged contexts a policy gradient's mean probabilities use.
MAX_CONTEXTS = 2000


@dataclass(frozen=True)
class StateSummary:
    """One Q-table state: its best action and value, all values, stored decisions in it."""

    state: str
    best_action: str
    best_value: float
    values: dict[str, float]
    visits: int


@dataclass(frozen=True)
class ActionSummary:
    """One action (sub-agent): how often it was chosen, what it earned, its model's size.

    ``learned_from`` (bandits) is how many rewards its model was fitted to;
    ``weight_norm`` the Euclidean norm of its weight vector (bandits: ``theta``,
    policy gradient: its row of weights); ``mean_probability`` (policy gradient) its
    probability averaged over the logged contexts.
    """

    action: str
    chosen: int
    mean_reward: float | None
    learned_from: int | None = None
    weight_norm: float | None = None
    mean_probability: float | None = None


@dataclass(frozen=True)
class LearnedPolicy:
    """The summary of one agent's learned policy (see the module docstring)."""

    agent_name: str
    learner: str
    decisions: int
    actions: list[ActionSummary]
    states: list[StateSummary] = field(default_factory=list)
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


@dataclass
class _DecisionLog:
    """Per action and state: choices and rewards; the feature vectors (policy gradient)."""

    total: int = 0
    chosen: Counter[str] = field(default_factory=Counter)
    reward_sums: dict[str, float] = field(default_factory=dict)
    rewarded: Counter[str] = field(default_factory=Counter)
    features: list[list[float]] = field(default_factory=list)

    def mean_reward(self, action: str) -> float | None:
        count = self.rewarded[action]
        return self.reward_sums.get(action, 0.0) / count if count else None


def _read_log(store: MemoryStore, agent_name: str, keep_features: bool) -> _DecisionLog:
    log = _DecisionLog()
    for decision in store.iter_agent_decisions(agent_name):
        action = decision["selected_action"]
        log.total += 1
        log.chosen[action] += 1
        reward = reward_value(decision.get("reward"))
        if reward is not None:
            log.reward_sums[action] = log.reward_sums.get(action, 0.0) + reward
            log.rewarded[action] += 1
        if keep_features and decision.get("features"):
            log.features.append(list(decision["features"]))
    return log


def learned_policy(
    store: MemoryStore, agent_name: str, *, top_states: int | None = None
) -> LearnedPolicy:
    """Summarise what ``agent_name`` has learned (see the module docstring).

    ``top_states`` keeps only the most visited Q-table states. An agent with
    decisions but no learned parameters yet is ``learner="nothing_learned"``.
    """
    q_table = store.get_q_table(agent_name) or {}
    params = store.get_policy_params(agent_name) or {}
    if q_table:
        return _q_learning(store, agent_name, q_table, top_states)
    if isinstance(params.get("weights"), list):
        return _policy_gradient(store, agent_name, params)
    arrays = store.get_arrays(agent_name)
    # The linear bandits log each update as a step and snapshot their arrays now and
    # then: either one means a bandit has learned.
    steps = store.get_learner_steps(agent_name)
    if arrays or steps:
        return _linear_bandit(store, agent_name, arrays, steps)
    log = _read_log(store, agent_name, keep_features=False)
    return LearnedPolicy(agent_name, "nothing_learned", log.total, _action_rows(log, []))


def _action_rows(log: _DecisionLog, actions: list[str], **extra: dict[str, Any]) -> list[Any]:
    names = list(dict.fromkeys([*actions, *sorted(log.chosen)]))
    return [
        ActionSummary(
            action,
            log.chosen[action],
            log.mean_reward(action),
            **{key: values.get(action) for key, values in extra.items()},
        )
        for action in names
    ]


def _q_learning(
    store: MemoryStore,
    agent_name: str,
    q_table: dict[str, dict[str, float]],
    top_states: int | None,
) -> LearnedPolicy:
    visits = {row["state"]: int(row["visits"] or 0) for row in store.q_state_stats(agent_name)}
    states = []
    for state, values in q_table.items():
        if not values:
            continue
        best = max(values, key=lambda action: (values[action], action))
        states.append(
            StateSummary(state, best, float(values[best]), dict(values), visits.get(state, 0))
        )
    states.sort(key=lambda row: (-row.visits, row.state))
    if top_states is not None:
        states = states[:top_states]
    log = _read_log(store, agent_name, keep_features=False)
    actions = sorted({action for values in q_table.values() for action in values})
    return LearnedPolicy(
        agent_name,
        "q_learning",
        log.total,
        _action_rows(log, actions),
        states,
        {"states": float(len(q_table))},
    )


def _linear_bandit(
    store: MemoryStore, agent_name: str, arrays: dict[str, np.ndarray], steps: list[Any]
) -> LearnedPolicy:
    from rlmemory.learners._ridge_log import PRIOR_MEAN_KEY, SNAPSHOT_MARKER_KEY
    from rlmemory.learners.bandits import LinUCBAgent

    log = _read_log(store, agent_name, keep_features=False)
    keys: list[str | None] = [key.rpartition("/")[0] for key in arrays if "/" in key]
    keys += [_step_key(step) for step in steps]
    stored_actions = [key for key in keys if key and key != SNAPSHOT_MARKER_KEY]
    actions = list(dict.fromkeys([*stored_actions, *sorted(log.chosen)]))
    prior = arrays.get(PRIOR_MEAN_KEY)
    prior_mean = 0.0 if prior is None else float(np.asarray(prior).reshape(-1)[0])
    # Every linear bandit keeps the same ridge statistics; LinUCB reads them as well as
    # any (no store write happens on reading).
    statistics = LinUCBAgent(agent_name, store, actions, prior_mean=prior_mean).statistics()
    learned_from = {a: int(s["count"]) for a, s in statistics.items()}
    norms = {a: float(np.linalg.norm(s["theta"])) for a, s in statistics.items()}
    details = {"prior_mean": prior_mean}
    if statistics:
        details["feature_dimension"] = float(next(iter(statistics.values()))["theta"].size)
    return LearnedPolicy(
        agent_name,
        "linear_bandit",
        log.total,
        _action_rows(log, actions, learned_from=learned_from, weight_norm=norms),
        details=details,
    )


def _step_key(step: Any) -> str | None:
    key = step.get("key") if isinstance(step, dict) else getattr(step, "key", None)
    return key if isinstance(key, str) else None


def _policy_gradient(store: MemoryStore, agent_name: str, params: dict[str, Any]) -> LearnedPolicy:
    from rlmemory.learners.policy_gradient import action_probabilities

    log = _read_log(store, agent_name, keep_features=True)
    actions = [str(action) for action in params.get("actions", [])]
    weights = np.asarray(params["weights"], dtype=np.float64)
    norms = {action: float(np.linalg.norm(weights[k])) for k, action in enumerate(actions)}
    probabilities: dict[str, float] = {}
    # The newest contexts are enough for an average and keep `show` quick on long logs.
    contexts = [row for row in log.features[-MAX_CONTEXTS:] if len(row) == weights.shape[1]]
    if contexts and actions:
        mean = np.mean([action_probabilities(weights, np.asarray(row)) for row in contexts], axis=0)
        probabilities = {action: float(mean[k]) for k, action in enumerate(actions)}
    return LearnedPolicy(
        agent_name,
        "policy_gradient",
        log.total,
        _action_rows(log, actions, weight_norm=norms, mean_probability=probabilities),
        details={
            "baseline": float(params.get("baseline", 0.0)),
            "updates": float(params.get("updates", 0)),
            "feature_dimension": float(weights.shape[1]) if weights.ndim == 2 else 0.0,
        },
    )
