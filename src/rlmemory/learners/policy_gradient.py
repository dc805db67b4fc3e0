"""PolicyGradientAgent: a linear softmax policy trained by REINFORCE with a baseline.

The policy is ``pi(a | x) = softmax(W x)[a]`` with one weight row per action over the
state extractor's feature vector. Steps (features, action, reward) are recorded and,
every ``policy_update_every`` steps or when :meth:`~PolicyGradientAgent.update_policy`
is called, the weights move by ``learning_rate`` times the gradient of
``sum_i A_i log pi(a_i | x_i)``, where the advantages ``A_i`` are the rewards
normalised within the batch (minus their mean, over their standard deviation). A
batch of one step (or of equal rewards) uses ``reward - running baseline`` instead,
so it still learns; the running baseline is an exponential mean of all rewards seen.

Differences from the seed, and why: the feature dimension comes from the extractor
(the seed hard-coded 10); the stored parameters carry their feature dimension and
action list, and loading them into an agent with another dimension or without one
of the stored actions is a ``ValueError`` rather than a silent reshape; recorded
steps not yet learned from are stored with the parameters, so a restarted agent
resumes exactly where it stopped. The default ``learning_rate`` is 0.1, not the
seed's 0.01: with unit-scale features and an update every 10 requests, 0.01 moves
the logits by well under one unit in 400 requests (measured on the routing test:
0.52 routed right over requests 301–400, against 0.90 with 0.1).

Several processes: the parameters are one document that every update rewrites from
the process's own copy, so two processes learning the same policy overwrite each
other's updates (last writer wins) and keep their pending steps apart. Let one
process learn; others may ``reload()`` it. Q-learning and the linear bandits re-read
what they update and lose nothing (``docs/learners.md``, "Several processes").

>>> import tempfile, os
>>> from rlmemory.store.sql import MemoryDatabase
>>> from rlmemory.features import OfflineStateExtractor
>>> db = MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db"))
>>> extractor = OfflineStateExtractor(dimension=16)
>>> agent = PolicyGradientAgent("router", None, db, None, extractor, ["search", "coding"], seed=3)
>>> features = extractor.extract("fix this python function").features
>>> agent.action_probabilities(features)
{'search': 0.5, 'coding': 0.5}
>>> agent.record_step(features, "coding", 1.0)
>>> agent.update_policy()
1
>>> agent.action_probabilities(features)["coding"] > 0.5
True
>>> stored = db.get_policy_params("router")
>>> stored["feature_dimension"], stored["actions"]
(16, ['search', 'coding'])
>>> db.close()
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rlmemory.learners._sampling import (
    check_action_name,
    check_actions,
    check_feature_values,
    check_known_action,
    check_observation,
    check_rate,
    check_reward,
    sample_index,
    softmax,
)
from rlmemory.store._validation import check_agent_name
from rlmemory.store.base import MemoryStore
from rlmemory.types import Choice, Observation

#: Feature dimension when neither ``state_extractor`` nor ``feature_dimension`` gives one:
#: the default of :class:`~rlmemory.features.OfflineStateExtractor`, the coordinator's
#: default extractor.
DEFAULT_FEATURE_DIMENSION = 64
#: Version of the stored parameter layout.
PARAMS_FORMAT = 1
#: Where the running baseline starts: the middle of the reward range [0, 1].
INITIAL_BASELINE = 0.5
#: Standard deviations below this count as "all rewards equal" in a batch.
_FLAT_BATCH = 1e-8


def action_probabilities(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``softmax(weights @ features)``: the probability of each action (one per row)."""
    return softmax(weights @ features)


def reinforce_objective(
    weights: np.ndarray,
    features: np.ndarray,
    action_indices: np.ndarray,
    advantages: np.ndarray,
) -> float:
    """``sum_i advantages[i] * log pi(action_indices[i] | features[i])``.

    ``features`` has one row per step. The policy update ascends this objective.
    """
    logits = features @ weights.T
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    steps = np.arange(len(action_indices))
    return float(np.dot(advantages, log_probabilities[steps, action_indices]))


def reinforce_gradient(
    weights: np.ndarray,
    features: np.ndarray,
    action_indices: np.ndarray,
    advantages: np.ndarray,
) -> np.ndarray:
    """The gradient of :func:`reinforce_objective` with respect to ``weights``.

    For one step, ``d log pi(a | x) / d W[k] = (1[k == a] - pi(k | x)) x``.
    """
    logits = features @ weights.T
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    indicator = np.zeros_like(probabilities)
    indicator[np.arange(len(action_indices)), action_indices] = 1.0
    return np.asarray(((indicator - probabilities) * advantages[:, None]).T @ features)


def batch_advantages(rewards: np.ndarray, baseline: float) -> np.ndarray:
    """Rewards normalised within the batch; ``rewards - baseline`` for a batch of one
    step or of equal rewards.

    >>> batch_advantages(np.array([0.75, 0.25]), 0.5).tolist()
    [1.0, -1.0]
    >>> batch_advantages(np.array([0.75]), 0.5).tolist()
    [0.25]
    """
    spread = float(rewards.std()) if len(rewards) > 1 else 0.0
    if spread < _FLAT_BATCH:
        return rewards - baseline
    return np.asarray((rewards - rewards.mean()) / spread)


@dataclass(frozen=True)
class PendingStep:
    """A recorded step not yet learned from."""

    features: np.ndarray = field(repr=False)
    action: str
    reward: float


@dataclass(frozen=True)
class _PolicyState:
    actions: tuple[str, ...]
    weights: np.ndarray
    baseline: float
    pending: tuple[PendingStep, ...]
    updates: int


class PolicyGradientAgent:
    """REINFORCE over a linear softmax policy whose parameters live in a :class:`MemoryStore`.

    The feature dimension is ``feature_dimension`` when given, else
    ``state_extractor.dimension``, else :data:`DEFAULT_FEATURE_DIMENSION` (that of
    :class:`~rlmemory.features.OfflineStateExtractor` with its defaults). The learner
    only reads the extractor's ``dimension``: it never imports the features package.
    ``model``, ``reward_system`` and ``state_extractor`` are kept as attributes (the
    seed's signature). :meth:`learn` records a step and updates the
    policy once ``policy_update_every`` steps are pending. ``baseline_rate`` is the
    weight of each new reward in the running baseline. ``seed`` seeds the generator
    of :meth:`select_action`; :meth:`choose` draws from the generator it is given.
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
        *,
        policy_update_every: int = 10,
        baseline_rate: float = 0.1,
        seed: int | None = None,
        feature_dimension: int | None = None,
    ) -> None:
        self.name = check_agent_name(name)
        self.model = model
        self.db = db
        self.reward_system = reward_system
        self.state_extractor = state_extractor
        self.feature_dimension = _feature_dimension(state_extractor, feature_dimension)
        self.learning_rate = check_rate(
            learning_rate, "learning_rate", low=0.0, high=float("inf"), low_open=True
        )
        if (
            isinstance(policy_update_every, bool)
            or not isinstance(policy_update_every, int)
            or policy_update_every < 1
        ):
            raise ValueError(
                f"policy_update_every must be a positive int, got {policy_update_every!r}"
            )
        self.policy_update_every = policy_update_every
        self.baseline_rate = check_rate(
            baseline_rate, "baseline_rate", low=0.0, high=1.0, low_open=True
        )
        self._given_actions = check_actions(actions)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._state = self._load()

    # ------------------------------------------------------------- inspection
    @property
    def actions(self) -> list[str]:
        """The actions, in the order of the weight rows."""
        return list(self._state.actions)

    @property
    def weights(self) -> np.ndarray:
        """A copy of the weight matrix, one row per action."""
        return self._state.weights.copy()

    @property
    def baseline(self) -> float:
        """The running mean of rewards used for one-step batches."""
        return self._state.baseline

    @property
    def pending_steps(self) -> list[PendingStep]:
        """Steps recorded and not yet learned from, oldest first."""
        return list(self._state.pending)

    @property
    def updates(self) -> int:
        """How many policy updates have been made (stored)."""
        return self._state.updates

    def action_probabilities(self, features: Sequence[float] | np.ndarray) -> dict[str, float]:
        """The policy's probability of each action for ``features``."""
        vector = self._check_features(features)
        state = self._state
        probabilities = action_probabilities(state.weights, vector)
        return {action: float(p) for action, p in zip(state.actions, probabilities, strict=True)}

    # ------------------------------------------------------------------ seed API
    def select_action(self, features: Sequence[float] | np.ndarray) -> str:
        """Sample an action from the policy, with the agent's own generator."""
        return self._sample(self._check_features(features), self._rng)[0]

    def record_step(
        self, features: Sequence[float] | np.ndarray, action: str, reward: float
    ) -> None:
        """Record one step for the next policy update; stored at once."""
        with self._lock:
            self._commit(self._with_step(self._state, features, action, reward))

    def update_policy(self) -> int:
        """Learn from every pending step (one REINFORCE update); return how many.

        Returns 0, and writes nothing, when no step is pending.
        """
        with self._lock:
            count = len(self._state.pending)
            if count:
                self._commit(self._updated(self._state))
            return count

    # ------------------------------------------------------------- the protocol
    def choose(self, observation: Observation, rng: np.random.Generator) -> Choice:
        """Sample from the policy; ``propensity`` is the chosen action's probability and
        ``scores`` are all probabilities."""
        check_observation(observation)
        vector = self._check_features(observation.features)
        action, propensity, scores = self._sample(vector, rng)
        return Choice(action=action, propensity=propensity, scores=scores)

    def probabilities(self, observation: Observation) -> dict[str, float]:
        """:meth:`action_probabilities` of ``observation.features``."""
        check_observation(observation)
        return self.action_probabilities(observation.features)

    def learn(self, observation: Observation, action: str, reward: float) -> None:
        """Record the step; update the policy once ``policy_update_every`` are pending.

        One write to the store either way.
        """
        check_observation(observation)
        with self._lock:
            state = self._with_step(self._state, observation.features, action, reward)
            if len(state.pending) >= self.policy_update_every:
                state = self._updated(state)
            self._commit(state)

    def add_action(self, action: str) -> None:
        """Offer a new action with a zero weight row; other rows are kept. Adding a
        known action does nothing."""
        check_action_name(action)
        with self._lock:
            state = self._state
            if action in state.actions:
                return
            weights = np.vstack([state.weights, np.zeros((1, self.feature_dimension))])
            self._commit(replace(state, actions=(*state.actions, action), weights=weights))

    def reload(self) -> None:
        """Re-read parameters and pending steps from the store."""
        with self._lock:
            self._state = self._load()

    # ---------------------------------------------------------------- internals
    def _sample(
        self, features: np.ndarray, rng: np.random.Generator
    ) -> tuple[str, float, dict[str, float]]:
        state = self._state
        probabilities = action_probabilities(state.weights, features)
        index = sample_index(probabilities, rng)
        scores = {a: float(p) for a, p in zip(state.actions, probabilities, strict=True)}
        return state.actions[index], float(probabilities[index]), scores

    def _check_features(self, features: object) -> np.ndarray:
        try:
            vector = np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"features must be a sequence of numbers, not {type(features).__name__}"
            ) from None
        if vector.shape != (self.feature_dimension,):
            raise ValueError(
                f"features must have shape ({self.feature_dimension},) (the state extractor's "
                f"dimension), got {vector.shape}"
            )
        return check_feature_values(vector)

    def _with_step(
        self, state: _PolicyState, features: object, action: str, reward: float
    ) -> _PolicyState:
        vector = self._check_features(features)
        check_known_action(action, list(state.actions))
        step = PendingStep(features=vector.copy(), action=action, reward=check_reward(reward))
        return replace(state, pending=(*state.pending, step))

    def _updated(self, state: _PolicyState) -> _PolicyState:
        features = np.array([step.features for step in state.pending])
        indices = np.array([state.actions.index(step.action) for step in state.pending])
        rewards = np.array([step.reward for step in state.pending])
        advantages = batch_advantages(rewards, state.baseline)
        gradient = reinforce_gradient(state.weights, features, indices, advantages)
        baseline = state.baseline
        for reward in rewards:
            baseline += self.baseline_rate * (float(reward) - baseline)
        return replace(
            state,
            weights=state.weights + self.learning_rate * gradient,
            baseline=baseline,
            pending=(),
            updates=state.updates + 1,
        )

    def _commit(self, state: _PolicyState) -> None:
        """Store ``state``, then adopt it (memory is unchanged if the write fails)."""
        self.db.save_policy_params(self.name, _to_params(state))
        self._state = state

    def _load(self) -> _PolicyState:
        stored = self.db.get_policy_params(self.name)
        if stored is None:
            return _PolicyState(
                actions=tuple(self._given_actions),
                weights=np.zeros((len(self._given_actions), self.feature_dimension)),
                baseline=INITIAL_BASELINE,
                pending=(),
                updates=0,
            )
        return _from_params(self.name, stored, self._given_actions, self.feature_dimension)


def _feature_dimension(state_extractor: Any, feature_dimension: object) -> int:
    """The feature dimension: given, else the extractor's, else the default."""
    if feature_dimension is not None:
        if (
            isinstance(feature_dimension, bool)
            or not isinstance(feature_dimension, int)
            or feature_dimension < 1
        ):
            raise ValueError(f"feature_dimension must be a positive int, got {feature_dimension!r}")
        extractor_dimension = getattr(state_extractor, "dimension", None)
        if extractor_dimension is not None and extractor_dimension != feature_dimension:
            raise ValueError(
                f"feature_dimension {feature_dimension} differs from the state extractor's "
                f"dimension {extractor_dimension!r}"
            )
        return feature_dimension
    if state_extractor is None:
        return DEFAULT_FEATURE_DIMENSION
    dimension = getattr(state_extractor, "dimension", None)
    if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
        raise TypeError(
            "state_extractor must have a positive int `dimension` (the feature vector "
            f"length), got {dimension!r}"
        )
    return dimension


def _to_params(state: _PolicyState) -> dict[str, Any]:
    return {
        "format": PARAMS_FORMAT,
        "feature_dimension": int(state.weights.shape[1]),
        "actions": list(state.actions),
        "weights": state.weights.tolist(),
        "baseline": state.baseline,
        "updates": state.updates,
        "pending": [
            {"features": step.features.tolist(), "action": step.action, "reward": step.reward}
            for step in state.pending
        ],
    }


def _from_params(
    name: str, stored: dict[str, Any], actions: list[str], dimension: int
) -> _PolicyState:
    missing = [
        key
        for key in ("format", "feature_dimension", "actions", "weights", "baseline", "pending")
        if key not in stored
    ]
    if missing:
        raise ValueError(
            f"stored policy parameters of {name!r} are not in rlmemory's policy format "
            f"(missing {', '.join(missing)})"
        )
    if stored["format"] != PARAMS_FORMAT:
        raise ValueError(
            f"stored policy parameters of {name!r} have format {stored['format']!r}; "
            f"this rlmemory reads format {PARAMS_FORMAT}"
        )
    stored_dimension = stored["feature_dimension"]
    stored_actions = list(stored["actions"])
    if stored_dimension != dimension:
        raise ValueError(
            f"stored policy of {name!r} has feature dimension {stored_dimension}, but the "
            f"state extractor gives {dimension}; use an extractor of dimension "
            f"{stored_dimension} or another agent name"
        )
    dropped = [action for action in stored_actions if action not in actions]
    if dropped:
        raise ValueError(
            f"stored policy of {name!r} has actions {stored_actions}, but the agent was given "
            f"{actions}, which lacks {dropped}; pass every stored action (new ones may be added)"
        )
    stored_weights = np.asarray(stored["weights"], dtype=np.float64)
    if stored_weights.shape != (len(stored_actions), dimension):
        raise ValueError(
            f"stored policy of {name!r} has weights of shape {stored_weights.shape}, expected "
            f"{(len(stored_actions), dimension)} for its actions and dimension"
        )
    weights = np.zeros((len(actions), dimension))
    for row, action in enumerate(stored_actions):
        weights[actions.index(action)] = stored_weights[row]
    pending = tuple(
        _pending_step(name, step, stored_actions, dimension) for step in stored["pending"]
    )
    return _PolicyState(
        actions=tuple(actions),
        weights=weights,
        baseline=float(stored["baseline"]),
        pending=pending,
        updates=int(stored.get("updates", 0)),
    )


def _pending_step(name: str, step: Any, actions: list[str], dimension: int) -> PendingStep:
    features = np.asarray(step["features"], dtype=np.float64)
    if features.shape != (dimension,) or step["action"] not in actions:
        raise ValueError(
            f"stored policy of {name!r} has a pending step with features of shape "
            f"{features.shape} and action {step['action']!r}; expected shape ({dimension},) "
            f"and one of {actions}"
        )
    return PendingStep(features=features, action=step["action"], reward=float(step["reward"]))
