"""SquareCB: inverse-gap weighting over an online sparse regression (Foster & Rakhlin 2020).

A regression oracle predicts the reward of every action for a context; the action with
the best prediction is played most, and every other action ``a`` with probability
``1 / (K + gamma_t * (best - prediction_a))`` — the further it looks behind, the less it
is tried. ``gamma_t = gamma * t ** gamma_exponent`` grows with the number ``t`` of
rewards learned, so exploration fades as the oracle improves. This is what Vowpal
Wabbit's ``--cb_explore_adf --squarecb`` does, and like it the oracle here is linear
on hashed sparse features and learned by per-coordinate adaptive gradient steps, so a
step costs O(non-zero features), whatever the dimension (2**18 for
:class:`~rlmemory.features.text.TextFeaturizer`).

The oracle: ``prediction_a(x) = (shared + weights_a) . [x, 1]``. The shared weights
learn what makes any action pay (how hard a request is); the per-action weights learn
how actions differ (VW's ``-q sa`` interaction). Only the chosen action's reward is
seen; its squared error drives an AdaGrad step on the coordinates of ``x`` that are
non-zero (and the constant), in both weight rows.

Probabilities are exact: ``action_probabilities`` returns the distribution sampled from,
and ``Choice.propensity`` the probability of the action drawn. Tied best actions share
the remaining mass equally.

Persistence: each coordinate an update touched is one stored array (``[weight,
sum of squared gradients]``) under ``f"s/{index}"`` (shared row) or
``f"a/{action}/{index}"``, plus ``"rounds"`` and ``"dimension"``. An update writes
those keys and nothing else, inside a store transaction that first locks the learner
and re-reads them, so updates of several processes sharing a store all count. A learner
built on a store restores every weight bit for bit.

>>> learner = SquareCBAgent("router", None, ["search", "code"], seed=0)
>>> for _ in range(30):
...     learner.update([1.0, 0.0], "search", 1.0)
...     learner.update([1.0, 0.0], "code", 0.0)
>>> learner.select_action([1.0, 0.0])
'search'
>>> probabilities = learner.action_probabilities([1.0, 0.0])
>>> probabilities["search"] > 0.9, round(sum(probabilities.values()), 12)
(True, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rlmemory.learners._sampling import (
    check_action_name,
    check_actions,
    check_observation,
    sample_index,
)
from rlmemory.learners.base import Choice, Observation
from rlmemory.store._validation import check_finite
from rlmemory.types import SparseVector

#: Store keys of the number of rewards learned and of the feature dimension.
ROUNDS_KEY = "rounds"
DIMENSION_KEY = "dimension"
#: Sum of squared gradients a coordinate starts with: the first steps are plain gradient
#: steps of size ``learning_rate`` instead of AdaGrad's full-size jump on the first sight.
INITIAL_ACCUMULATOR = 1.0


def shared_key(index: int) -> str:
    """Store key of the shared weight of coordinate ``index``."""
    return f"s/{index}"


def action_key(action: str, index: int) -> str:
    """Store key of ``action``'s weight of coordinate ``index``."""
    return f"a/{action}/{index}"


class SquareCBAgent:
    """SquareCB contextual bandit over sparse (or dense) feature vectors.

    ``gamma`` and ``gamma_exponent`` set exploration (``gamma_t = gamma * t **
    gamma_exponent``; larger explores less); ``learning_rate`` the AdaGrad step;
    ``dimension`` the feature length (else fixed by the store or the first vector);
    ``seed`` seeds the generator of :meth:`select_action` (:meth:`choose` takes the
    coordinator's generator). Features may be a :class:`SparseVector` (what the text
    featuriser gives) or any dense 1-D vector of finite numbers.
    """

    #: The coordinator hands this learner ``featurizer.sparse(text)``, not a dense vector.
    accepts_sparse = True

    def __init__(
        self,
        name: str,
        db: Any,
        actions: Sequence[str],
        *,
        gamma: float = 10.0,
        gamma_exponent: float = 0.5,
        learning_rate: float = 0.5,
        dimension: int | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        self.name = name
        self.db = db
        self.actions = check_actions(actions)
        self.gamma = _positive(gamma, "gamma")
        self.gamma_exponent = check_finite(gamma_exponent, "gamma_exponent")
        if self.gamma_exponent < 0:
            raise ValueError(f"gamma_exponent must be >= 0, got {gamma_exponent!r}")
        self.learning_rate = _positive(learning_rate, "learning_rate")
        if dimension is not None and (
            isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1
        ):
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        self._requested_dimension = dimension
        self._rng = np.random.default_rng(seed)
        self._dimension: int | None = None
        self.rounds = 0
        # Row 0 is shared, row 1 + k is action k; column `dimension` is the constant.
        self._weights = np.zeros((0, 0))
        self._accumulators = np.zeros((0, 0))
        self.reload()

    # ----------------------------------------------------------------- state
    @property
    def dimension(self) -> int | None:
        """Feature dimension, fixed by the constructor, the store or the first vector."""
        return self._dimension

    def reload(self) -> None:
        """Re-read every weight, the round count and the dimension from the store."""
        stored = {} if self.db is None else self.db.get_arrays(self.name)
        dimension = self._requested_dimension
        if DIMENSION_KEY in stored:
            found = int(np.asarray(stored[DIMENSION_KEY]).reshape(-1)[0])
            if dimension is not None and found != dimension:
                raise ValueError(
                    f"learner {self.name!r} has weights of dimension {found} in the store, "
                    f"but dimension {dimension} was requested"
                )
            dimension = found
        self.rounds = int(np.asarray(stored.get(ROUNDS_KEY, [0])).reshape(-1)[0])
        self._dimension = None
        if dimension is not None:
            self._allocate(dimension)
            self._restore(stored)

    def _allocate(self, dimension: int) -> None:
        self._dimension = dimension
        shape = (1 + len(self.actions), dimension + 1)
        self._weights = np.zeros(shape)
        self._accumulators = np.full(shape, INITIAL_ACCUMULATOR)

    def _row_of_key(self, key: str) -> tuple[int, int] | None:
        """(row, column) of a weight key, or None for other keys (and unknown actions)."""
        kind, _, rest = key.partition("/")
        label, _, index_text = rest.rpartition("/")
        if not index_text.isdigit():
            return None
        column = int(index_text)
        if kind == "s" and not label:
            row = 0
        elif kind == "a" and label in self.actions:
            row = 1 + self.actions.index(label)
        else:
            return None
        return (row, column) if column <= (self._dimension or 0) else None

    def _restore(self, stored: dict[str, np.ndarray]) -> None:
        for key, value in stored.items():
            place = self._row_of_key(key)
            if place is None:
                continue
            pair = np.asarray(value, dtype=np.float64).reshape(-1)
            if pair.shape != (2,):
                raise ValueError(
                    f"learner {self.name!r}: stored weight {key!r} has shape {pair.shape}, "
                    "expected (2,)"
                )
            self._weights[place] = pair[0]
            self._accumulators[place] = pair[1]

    def add_action(self, action: str) -> None:
        """Add a new action; weights stored for it earlier are restored, others kept."""
        check_action_name(action)
        if action in self.actions:
            raise ValueError(f"action {action!r} already exists")
        self.actions.append(action)
        if self._dimension is None:
            return
        width = self._dimension + 1
        self._weights = np.vstack([self._weights, np.zeros(width)])
        self._accumulators = np.vstack([self._accumulators, np.full(width, INITIAL_ACCUMULATOR)])
        if self.db is not None:
            prefix = f"a/{action}/"
            stored = self.db.get_arrays(self.name)
            self._restore({key: value for key, value in stored.items() if key.startswith(prefix)})

    # ------------------------------------------------------------ validation
    def _features(self, features: Any) -> SparseVector:
        if isinstance(features, SparseVector):
            vector = features
        else:
            vector = SparseVector.from_dense(features)
        if self._dimension is None:
            self._allocate(vector.dimension)
        elif vector.dimension != self._dimension:
            raise ValueError(
                f"features have length {vector.dimension}, but learner {self.name!r} has "
                f"dimension {self._dimension}"
            )
        return vector

    def _action_index(self, action: object) -> int:
        check_action_name(action)
        try:
            return self.actions.index(action)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(
                f"unknown action {action!r}; known actions: {', '.join(self.actions)}"
            ) from None

    # ---------------------------------------------------------------- acting
    def predictions(self, features: Any) -> dict[str, float]:
        """The oracle's predicted reward of every action for ``features``."""
        scores = self._predict(self._features(features))
        return {a: float(s) for a, s in zip(self.actions, scores, strict=True)}

    def _predict(self, x: SparseVector) -> np.ndarray:
        columns: np.ndarray = self._weights[:, x.indices] @ x.values + self._weights[:, -1]
        return np.asarray(columns[0] + columns[1:])

    def current_gamma(self) -> float:
        """``gamma * (rounds + 1) ** gamma_exponent``, the exploration scale used now."""
        return float(self.gamma * (self.rounds + 1) ** self.gamma_exponent)

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        count = scores.size
        best = scores.max()
        tied = scores >= best - 1e-12 * max(1.0, abs(best))
        probabilities: np.ndarray = 1.0 / (count + self.current_gamma() * (best - scores))
        probabilities[tied] = 0.0
        probabilities[tied] = (1.0 - probabilities.sum()) / int(tied.sum())
        return probabilities

    def action_probabilities(self, features: Any) -> dict[str, float]:
        """Probability of each action being selected for ``features``; they sum to 1."""
        probabilities = self._probabilities(self._predict(self._features(features)))
        return {a: float(p) for a, p in zip(self.actions, probabilities, strict=True)}

    def select_action(self, features: Any) -> str:
        """Pick an action for ``features`` with the learner's own seeded generator."""
        probabilities = self._probabilities(self._predict(self._features(features)))
        return self.actions[sample_index(probabilities, self._rng)]

    def choose(self, observation: Observation, rng: np.random.Generator) -> Choice:
        """Pick an action for ``observation.features``; one draw from ``rng``."""
        check_observation(observation)
        scores = self._predict(self._features(observation.features))
        probabilities = self._probabilities(scores)
        k = sample_index(probabilities, rng)
        return Choice(
            action=self.actions[k],
            propensity=float(probabilities[k]),
            scores={a: float(s) for a, s in zip(self.actions, scores, strict=True)},
        )

    def probabilities(self, observation: Observation) -> dict[str, float]:
        """:meth:`action_probabilities` of ``observation.features``."""
        check_observation(observation)
        return self.action_probabilities(observation.features)

    # -------------------------------------------------------------- learning
    def update(self, features: Any, action: str, reward: float, weight: float = 1.0) -> None:
        """Learn ``reward`` for ``action`` taken on ``features``; persist the touched weights.

        ``weight`` scales the step (importance weights of off-policy learning).
        """
        x = self._features(features)
        k = self._action_index(action)
        value = check_finite(reward, "reward")
        scale = _positive(weight, "weight")
        columns = np.append(x.indices, x.dimension)  # the bias column follows the features
        inputs = np.append(x.values, 1.0)
        rows = np.array((0, 1 + k))
        if self.db is None:
            self._step(rows, columns, inputs, value, scale)
            return
        before = (
            self._weights[np.ix_(rows, columns)].copy(),
            self._accumulators[np.ix_(rows, columns)].copy(),
            self.rounds,
        )
        try:
            with self.db.transaction():
                self.db.lock_learner(self.name)
                keys = self._keys(k, columns)
                self._refresh(keys, columns, k)
                self._step(rows, columns, inputs, value, scale)
                self.db.save_arrays(self.name, self._arrays(keys, columns, k))
        except BaseException:
            self._weights[np.ix_(rows, columns)] = before[0]
            self._accumulators[np.ix_(rows, columns)] = before[1]
            self.rounds = before[2]
            raise

    def learn(self, observation: Observation, action: str, reward: float) -> None:
        """Protocol form of :meth:`update`."""
        check_observation(observation)
        self.update(observation.features, action, reward)

    def _step(
        self, rows: np.ndarray, columns: np.ndarray, inputs: np.ndarray, reward: float,
        scale: float,
    ) -> None:  # fmt: skip
        weights = self._weights[np.ix_(rows, columns)]
        prediction = float((weights[0] + weights[1]) @ inputs)
        gradient = (scale * (prediction - reward)) * inputs
        accumulators = self._accumulators[np.ix_(rows, columns)] + gradient * gradient
        self._accumulators[np.ix_(rows, columns)] = accumulators
        self._weights[np.ix_(rows, columns)] = weights - self.learning_rate * gradient / np.sqrt(
            accumulators
        )
        self.rounds += 1

    def _keys(self, k: int, columns: np.ndarray) -> tuple[list[str], list[str]]:
        action = self.actions[k]
        indices = columns.tolist()
        return [shared_key(i) for i in indices], [action_key(action, i) for i in indices]

    def _refresh(self, keys: tuple[list[str], list[str]], columns: np.ndarray, k: int) -> None:
        """Replace the touched weights and the round count in memory by the stored ones."""
        shared, own = keys
        stored = self.db.get_arrays(self.name, [*shared, *own, ROUNDS_KEY])
        self.rounds = int(np.asarray(stored.get(ROUNDS_KEY, [0])).reshape(-1)[0])
        for row, row_keys in ((0, shared), (1 + k, own)):
            for column, key in zip(columns.tolist(), row_keys, strict=True):
                pair = stored.get(key)
                if pair is None:
                    self._weights[row, column] = 0.0
                    self._accumulators[row, column] = INITIAL_ACCUMULATOR
                else:
                    pair = np.asarray(pair, dtype=np.float64).reshape(-1)
                    self._weights[row, column] = pair[0]
                    self._accumulators[row, column] = pair[1]

    def _arrays(
        self, keys: tuple[list[str], list[str]], columns: np.ndarray, k: int
    ) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {
            ROUNDS_KEY: np.array([self.rounds], dtype=np.int64),
            DIMENSION_KEY: np.array([self._dimension], dtype=np.int64),
        }
        for row, row_keys in ((0, keys[0]), (1 + k, keys[1])):
            pairs = np.stack(
                [self._weights[row, columns], self._accumulators[row, columns]], axis=1
            )
            arrays.update(zip(row_keys, pairs, strict=True))
        return arrays


def _positive(value: object, field: str) -> float:
    number = check_finite(value, field)
    if number <= 0:
        raise ValueError(f"{field} must be a positive finite number, got {value!r}")
    return number
