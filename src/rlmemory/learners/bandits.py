"""Linear contextual bandits: LinUCB, linear Thompson sampling and epsilon-greedy.

All three keep one ridge regression per action (:class:`~rlmemory.learners._ridge.RidgeArms`)
and differ only in how they pick an action from it. With a store, an update appends
what it learned as one O(d) step (``[reward, weight, x]`` under the action's name) and
the O(d²) statistics are written as a snapshot every ``snapshot_every`` updates and on
:meth:`close` (:mod:`rlmemory.learners._ridge_log`: keys ``f"{action}/ridge"``
holding ``[count, b, upper triangle of A^{-1}]`` and ``"steps_through"``); a learner
built again on the same store reads the snapshot and replays the steps after it, bit
for bit. ``db=None`` runs the same learner without a store (nothing persisted), for
experiments and offline evaluation.

``prior_mean`` is the reward an action is predicted to earn before it has data: the
ridge models are fitted to ``reward - prior_mean`` and predict ``theta_k . x +
prior_mean``, so estimates shrink towards it rather than towards 0. The stored ``b``
is of those centred rewards, so a learner whose ``prior_mean`` is not 0 also stores it
(key ``"prior_mean"``), and building a learner on statistics learned with another
``prior_mean`` is a ``ValueError``. Epsilon-greedy defaults to an optimistic 1.0 (rewards
in [0, 1]): otherwise it locks onto the first action that pays anything; LinUCB and
Thompson sampling explore by themselves and default to 0.0 (``docs/bandits.md``).

Each learner reports the probability of its choice (``Choice.propensity``) and of
every action (``action_probabilities``), which off-policy evaluation relies on:

* LinUCB is greedy on upper confidence bounds; ties are broken uniformly at random, so
  a tied action has probability 1 / (number of tied actions). Exact.
* Epsilon-greedy explores uniformly with probability ``epsilon``. Exact.
* Thompson sampling draws one score per action, ``N(theta_k . x, v^2 x^T A_k^{-1} x)``
  (the projection of the Gaussian posterior on ``x``, which gives the same choice as
  drawing whole parameter vectors). The probability that action ``k`` has the largest
  draw is a one-dimensional integral, computed by the trapezoid rule over ``[-6, 6]``
  posterior standard deviations with a step set by how sharp the integrand is
  (within ``THOMPSON_GRID_STEPS``). Not exact: against a fine fixed grid the error stayed
  below 5e-4 over random cases (``tests/learners/test_bandits.py``); the probabilities
  of all actions are renormalised to sum to 1, a choice's propensity is not.

>>> import numpy as np
>>> learner = LinUCBAgent("router", None, ["search", "code"], alpha=0.5, seed=0)
>>> for _ in range(20):
...     learner.update([1.0, 0.0], "search", 1.0)
...     learner.update([1.0, 0.0], "code", 0.0)
>>> learner.select_action([1.0, 0.0])
'search'
>>> learner.action_probabilities([1.0, 0.0])
{'search': 1.0, 'code': 0.0}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rlmemory.learners._ridge import STATE_SUFFIX, RidgeArms, state_key
from rlmemory.learners._ridge_log import RidgeLog
from rlmemory.learners._sampling import check_feature_values, check_observation
from rlmemory.store._validation import check_finite, check_name
from rlmemory.types import Choice, Observation

#: Snapshot the statistics after this many logged updates (``snapshot_every``) by default.
SNAPSHOT_EVERY = 1000

#: Coarsest and finest grid step (in posterior standard deviations of the action
#: concerned) of the numerical integral giving Thompson sampling's probabilities.
THOMPSON_GRID_STEPS = (0.1, 0.002)
_GRID_HALF_WIDTH = 6.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _ties(values: np.ndarray) -> np.ndarray:
    """Mask of the entries equal to the maximum (up to rounding); never empty.

    A score that overflowed counts as what it is: +inf beats everything, NaN nothing.
    """
    return np.asarray(_tie_rows(values[None, :])[0])


def _tie_rows(values: np.ndarray) -> np.ndarray:
    """:func:`_ties` for every row of a matrix."""
    values = np.where(np.isnan(values), -np.inf, values)
    best = values.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        tolerance = 1e-12 * np.maximum(1.0, np.abs(best))
        tied = np.where(np.isfinite(best), values >= best - tolerance, values == best)
    return np.asarray(tied)


def _widths(arms: RidgeArms, contexts: np.ndarray) -> np.ndarray:
    """``x^T A_k^{-1} x`` for every row ``x`` and action ``k``, shape (n, K)."""
    columns = [np.einsum("nd,nd->n", contexts @ A_inv, contexts) for A_inv in arms.A_inv]
    return np.asarray(np.maximum(np.stack(columns, axis=1), 0.0))


#: Coefficients of the Chebyshev fit to erfc in Numerical Recipes (``erfcc``), lowest first.
_ERFC_COEFFICIENTS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised (erfc of Numerical Recipes, relative error < 1.2e-7)."""
    z = np.abs(x) * (1.0 / math.sqrt(2.0))
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _ERFC_COEFFICIENTS[-1]
    for coefficient in reversed(_ERFC_COEFFICIENTS[:-1]):
        poly = coefficient + t * poly
    upper_tail = 0.5 * t * np.exp(-z * z + poly)
    return np.asarray(np.where(x >= 0, 1.0 - upper_tail, upper_tail))


class _LinearBandit:
    """Shared machinery: ridge models per action, validation, persistence."""

    def __init__(
        self,
        name: str,
        db: Any,
        actions: Sequence[str],
        *,
        ridge: float = 1.0,
        prior_mean: float = 0.0,
        dimension: int | None = None,
        seed: int | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        action_list = list(actions)
        if not action_list:
            raise ValueError("actions must name at least one action")
        for action in action_list:
            self._check_new_action_name(action)
        if len(set(action_list)) != len(action_list):
            raise ValueError(f"actions must be unique, got {action_list}")
        if not isinstance(ridge, int | float) or not math.isfinite(ridge) or ridge <= 0:
            raise ValueError(f"ridge must be a positive finite number, got {ridge!r}")
        if (
            isinstance(prior_mean, bool)
            or not isinstance(prior_mean, int | float | np.number)
            or not math.isfinite(prior_mean)
        ):
            raise ValueError(f"prior_mean must be a finite number, got {prior_mean!r}")
        if dimension is not None and (not isinstance(dimension, int) or dimension < 1):
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int):
            raise ValueError(f"snapshot_every must be a positive integer, got {snapshot_every!r}")
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be a positive integer, got {snapshot_every!r}")
        self.name = name
        self.db = db
        self.actions = action_list
        self.ridge = float(ridge)
        self.prior_mean = float(prior_mean)
        self.snapshot_every = snapshot_every
        self._requested_dimension = dimension
        self._rng = np.random.default_rng(seed)
        self._arms: RidgeArms | None = None
        self._log = RidgeLog(db, name, snapshot_every)
        self.reload()

    # ----------------------------------------------------------------- state
    @property
    def dimension(self) -> int | None:
        """Feature dimension, fixed by the constructor, the store or the first vector."""
        return None if self._arms is None else self._arms.dimension

    def reload(self) -> None:
        """Re-read the statistics from the store: the snapshot, then the steps after it."""
        if self.db is not None:
            self._load(self._requested_dimension)

    def _load(self, dimension: int | None) -> None:
        log = RidgeLog(self.db, self.name, self.snapshot_every)
        arms = log.load(
            self.actions, ridge=self.ridge, prior_mean=self.prior_mean, dimension=dimension
        )
        self._arms, self._log = arms, log

    def snapshot(self) -> None:
        """Write the full statistics now, so that loading replays no step.

        Also done every ``snapshot_every`` updates and by :meth:`close`.
        """
        db = self.db
        if db is None or self._arms is None:
            return
        self._learn_from_stored([], lambda arms: [])

    def close(self) -> None:
        """Snapshot the statistics (the store stays open: it belongs to the caller)."""
        self.snapshot()

    def add_action(self, action: str) -> None:
        """Add a new action; statistics stored for it earlier are restored, others kept."""
        self._check_new_action_name(action)
        if action in self.actions:
            raise ValueError(f"action {action!r} already exists")
        self.actions.append(action)
        if self._arms is not None:
            stored = None if self.db is None else self._log.stored_state(action, self._arms)
            self._arms.add_action(stored)

    @staticmethod
    def _check_new_action_name(action: object) -> None:
        if not isinstance(action, str) or not action:
            raise ValueError(f"action names must be non-empty strings, got {action!r}")
        # The statistics are stored under "<action>/ridge", an array key with a byte limit.
        check_name(state_key(action), f"action name with its '/{STATE_SUFFIX}' suffix")

    # ------------------------------------------------------------ validation
    def _features(self, features: Any) -> np.ndarray:
        try:
            x = np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"features must be a vector of numbers: {error}") from None
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"features must be a non-empty 1-D vector, got shape {x.shape}")
        check_feature_values(x)
        if self._arms is None:
            arms = RidgeArms(x.size, self.ridge, self.prior_mean)
            for _ in self.actions:
                arms.add_action()
            self._arms = arms
        elif x.size != self._arms.dimension:
            raise ValueError(
                f"features have length {x.size}, but learner {self.name!r} has dimension "
                f"{self._arms.dimension}"
            )
        return x

    def _action_index(self, action: str) -> int:
        try:
            return self.actions.index(action)
        except ValueError:
            raise ValueError(f"unknown action {action!r}; known actions: {self.actions}") from None

    @staticmethod
    def _reward(reward: Any) -> float:
        if isinstance(reward, bool) or not isinstance(reward, int | float | np.number):
            raise ValueError(f"reward must be a real number, not {type(reward).__name__}")
        return check_finite(reward, "reward")

    # ---------------------------------------------------------------- acting
    def select_action(self, features: Any) -> str:
        """Pick an action for ``features`` with the learner's own seeded generator."""
        k, _, _ = self._pick(self._features(features), self._rng)
        return self.actions[k]

    def choose(self, observation: Observation, rng: np.random.Generator) -> Choice:
        """Pick an action for ``observation.features``; all randomness from ``rng``."""
        check_observation(observation)
        x = self._features(observation.features)
        k, propensity, scores = self._pick(x, rng)
        return Choice(
            action=self.actions[k],
            propensity=propensity,
            scores={a: float(s) for a, s in zip(self.actions, scores, strict=True)},
        )

    def action_probabilities(self, features: Any) -> dict[str, float]:
        """Probability of each action being selected for ``features``; they sum to 1."""
        probabilities = self._probabilities(self._features(features))
        return {a: float(p) for a, p in zip(self.actions, probabilities, strict=True)}

    def probabilities(self, observation: Observation) -> dict[str, float]:
        """:meth:`action_probabilities` of ``observation.features``."""
        check_observation(observation)
        return self.action_probabilities(observation.features)

    def probability_matrix(self, contexts: Any) -> np.ndarray:
        """Rows of action probabilities (columns in ``self.actions`` order) for many contexts."""
        try:
            matrix = np.asarray(contexts, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"contexts must be a matrix of numbers: {error}") from None
        if matrix.ndim != 2:
            raise ValueError(f"contexts must be a 2-D matrix, got shape {matrix.shape}")
        if matrix.shape[0] == 0:
            return np.zeros((0, len(self.actions)))
        check_feature_values(matrix, "contexts")
        self._features(matrix[0])
        return self._probability_rows(matrix)

    def _probability_rows(self, contexts: np.ndarray) -> np.ndarray:
        return np.array([self._probabilities(x) for x in contexts])

    def _pick(self, x: np.ndarray, rng: np.random.Generator) -> tuple[int, float, np.ndarray]:
        raise NotImplementedError

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------- learning
    def update(self, features: Any, action: str, reward: float, weight: float = 1.0) -> None:
        """Learn ``reward`` for ``action`` taken on ``features``; persist that action only.

        ``weight`` scales the observation (importance weights of off-policy learning).
        """
        x = self._features(features)
        k = self._action_index(action)
        value = self._reward(reward)
        weight = self._weight(weight)
        self._learn_from_stored([k], lambda arms: [(k, x, value, weight)])

    def learn(self, observation: Observation, action: str, reward: float) -> None:
        """Protocol form of :meth:`update`."""
        check_observation(observation)
        self.update(observation.features, action, reward)

    def update_batch(
        self,
        contexts: Any,
        actions: Sequence[str],
        rewards: Sequence[float],
        weights: Sequence[float] | None = None,
    ) -> None:
        """Learn many logged rounds in order, persisted atomically.

        Everything is validated before anything is learned or stored.
        """
        rows = [self._features(x) for x in contexts]
        indices = [self._action_index(a) for a in actions]
        values = [self._reward(r) for r in rewards]
        weight_list = [1.0] * len(rows) if weights is None else [self._weight(w) for w in weights]
        if not len(rows) == len(indices) == len(values) == len(weight_list):
            raise ValueError("contexts, actions, rewards and weights must have the same length")
        if self._arms is None:
            return
        rounds = list(zip(indices, rows, values, weight_list, strict=True))
        self._learn_from_stored(sorted(set(indices)), lambda arms: rounds)

    def _learn_from_stored(
        self,
        touched: Sequence[int],
        rounds: Callable[[RidgeArms], Sequence[tuple[int, np.ndarray, float, float]]],
    ) -> None:
        """Learn ``rounds(arms)`` (``(action index, x, reward, weight)``) and persist them.

        With a store, all of it happens in one store transaction that first locks the
        learner and replays what other processes learned meanwhile (the steps they
        appended; everything, if one of them wrote a snapshot), so that their learning
        is built on, never overwritten. With ``touched`` empty, it writes a snapshot.
        If anything fails, memory is put back as it was before.
        """
        db = self.db
        arms = self._loaded_arms()
        before: dict[int, Any] = {}
        if db is None:
            before = {k: arms.snapshot(k) for k in touched}
            try:
                self._learn_checked(arms, rounds(arms))
            except BaseException:
                for k, snapshot in before.items():
                    arms.restore(k, snapshot)
                raise
            return
        log_before = self._log
        before = {}
        try:
            with db.transaction():
                db.lock_learner(self.name)
                if not self._log.catch_up(arms, self.actions):
                    self._load(self._requested_dimension or arms.dimension)
                    arms = self._loaded_arms()
                log_before = self._log.copy()
                before = {k: arms.snapshot(k) for k in touched}
                learned = rounds(arms)
                self._learn_checked(arms, learned)
                if touched:
                    self._log.record(arms, self.actions, learned)
                else:
                    self._log.snapshot(arms, self.actions)
        except BaseException:
            # What was replayed from the store stays; what this call learned goes.
            for k, snapshot in before.items():
                arms.restore(k, snapshot)
            self._log = log_before
            raise

    def _loaded_arms(self) -> RidgeArms:
        """The ridge models; they exist once the dimension is known (store or a vector)."""
        arms = self._arms
        if arms is None:
            raise RuntimeError(f"learner {self.name!r} has no statistics before its first vector")
        return arms

    def _learn_checked(
        self, arms: RidgeArms, learned: Sequence[tuple[int, np.ndarray, float, float]]
    ) -> None:
        """Learn ``learned``; refuse it if it left an action's statistics non-finite.

        Features within ``MAX_FEATURE_MAGNITUDE`` times a huge reward (1e300) or weight
        can overflow ``b``. The check comes before the steps are logged, so such a step
        never reaches the store (replaying it would overflow every later load); the
        caller puts memory back.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            for k, x, value, weight in learned:
                arms.update(k, x, value, weight)
        for k in sorted({k for k, _, _, _ in learned}):
            if not (
                np.isfinite(arms.b[k]).all()
                and np.isfinite(arms.A_inv[k]).all()
                and np.isfinite(arms.theta[k]).all()
            ):
                raise ValueError(
                    f"learning this update would make the statistics of action "
                    f"{self.actions[k]!r} overflow (reward, weight or features too large); "
                    "nothing was learned"
                )

    @staticmethod
    def _weight(weight: Any) -> float:
        try:
            value = float(weight)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                f"weight must be a positive finite number, not {type(weight).__name__}"
            ) from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"weight must be a positive finite number, got {weight!r}")
        return value

    def statistics(self) -> dict[str, dict[str, np.ndarray]]:
        """Each action's ``A_inv``, ``b``, ``theta`` and ``count`` (copies), for inspection.

        ``b`` and ``theta`` are of the centred rewards ``reward - prior_mean``.
        """
        arms = self._arms
        if arms is None:
            return {}
        return {
            action: {
                "A_inv": arms.A_inv[k].copy(),
                "b": arms.b[k].copy(),
                "theta": arms.theta[k].copy(),
                "count": np.array(arms.counts[k]),
            }
            for k, action in enumerate(self.actions)
        }


class LinUCBAgent(_LinearBandit):
    """LinUCB (Li et al. 2010): pick the largest ``theta_k . x + alpha * sqrt(x^T A_k^{-1} x)``.

    Ties are broken uniformly at random.

    >>> learner = LinUCBAgent("router", None, ["a", "b"], seed=1)
    >>> learner.action_probabilities([0.5, 1.0])
    {'a': 0.5, 'b': 0.5}
    """

    def __init__(
        self,
        name: str,
        db: Any,
        actions: Sequence[str],
        *,
        alpha: float = 0.5,
        ridge: float = 1.0,
        prior_mean: float = 0.0,
        dimension: int | None = None,
        seed: int | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a non-negative finite number, got {alpha!r}")
        self.alpha = float(alpha)
        super().__init__(
            name,
            db,
            actions,
            ridge=ridge,
            prior_mean=prior_mean,
            dimension=dimension,
            seed=seed,
            snapshot_every=snapshot_every,
        )

    def _ucb(self, x: np.ndarray) -> np.ndarray:
        arms = self._arms
        assert arms is not None
        return np.asarray(arms.means(x) + self.alpha * np.sqrt(arms.variances(x)))

    def _pick(self, x: np.ndarray, rng: np.random.Generator) -> tuple[int, float, np.ndarray]:
        scores = self._ucb(x)
        tied = np.flatnonzero(_ties(scores))
        k = int(tied[0]) if tied.size == 1 else int(tied[rng.integers(tied.size)])
        return k, 1.0 / tied.size, scores

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        tied = _ties(self._ucb(x))
        return np.asarray(tied / tied.sum())

    def _probability_rows(self, contexts: np.ndarray) -> np.ndarray:
        arms = self._arms
        assert arms is not None
        scores = arms.mean_rows(contexts) + self.alpha * np.sqrt(_widths(arms, contexts))
        tied = _tie_rows(scores)
        return np.asarray(tied / tied.sum(axis=1, keepdims=True))


class EpsilonGreedyAgent(_LinearBandit):
    """Greedy on the ridge estimates, uniform exploration with probability ``epsilon``.

    ``prior_mean`` defaults to 1.0, an optimistic start for rewards in [0, 1]: an action
    not yet tried is predicted to pay 1, so greedy tries each action that might be
    better before it settles, instead of keeping the first one that pays anything.

    >>> learner = EpsilonGreedyAgent("router", None, ["a", "b"], epsilon=0.5, seed=1)
    >>> learner.update([1.0], "a", 0.4)
    >>> learner.action_probabilities([1.0])
    {'a': 0.25, 'b': 0.75}
    >>> learner.update([1.0], "b", 0.0)
    >>> learner.action_probabilities([1.0])
    {'a': 0.75, 'b': 0.25}
    """

    def __init__(
        self,
        name: str,
        db: Any,
        actions: Sequence[str],
        *,
        epsilon: float = 0.05,
        ridge: float = 1.0,
        prior_mean: float = 1.0,
        dimension: int | None = None,
        seed: int | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        if not math.isfinite(epsilon) or not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.epsilon = float(epsilon)
        super().__init__(
            name,
            db,
            actions,
            ridge=ridge,
            prior_mean=prior_mean,
            dimension=dimension,
            seed=seed,
            snapshot_every=snapshot_every,
        )

    def _pick(self, x: np.ndarray, rng: np.random.Generator) -> tuple[int, float, np.ndarray]:
        arms = self._arms
        assert arms is not None
        scores = arms.means(x)
        tied = np.flatnonzero(_ties(scores))
        n_actions = scores.size
        if rng.random() < self.epsilon:
            k = int(rng.integers(n_actions))
        else:
            k = int(tied[0]) if tied.size == 1 else int(tied[rng.integers(tied.size)])
        greedy_share = (1.0 - self.epsilon) / tied.size if k in tied else 0.0
        return k, self.epsilon / n_actions + greedy_share, scores

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        arms = self._arms
        assert arms is not None
        tied = _ties(arms.means(x))
        return np.asarray(self.epsilon / tied.size + (1.0 - self.epsilon) * tied / tied.sum())

    def _probability_rows(self, contexts: np.ndarray) -> np.ndarray:
        arms = self._arms
        assert arms is not None
        tied = _tie_rows(arms.mean_rows(contexts))
        greedy = tied / tied.sum(axis=1, keepdims=True)
        return np.asarray(self.epsilon / tied.shape[1] + (1.0 - self.epsilon) * greedy)


class ThompsonSamplingAgent(_LinearBandit):
    """Linear Thompson sampling (Agrawal & Goyal 2013) with posterior scale ``v``.

    Scores stored with a decision are the posterior means ``theta_k . x``.

    >>> learner = ThompsonSamplingAgent("router", None, ["a", "b"], v=0.2, seed=1)
    >>> sum(learner.action_probabilities([1.0, 2.0]).values())
    1.0
    """

    def __init__(
        self,
        name: str,
        db: Any,
        actions: Sequence[str],
        *,
        v: float = 0.1,
        ridge: float = 1.0,
        prior_mean: float = 0.0,
        dimension: int | None = None,
        seed: int | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"v must be a positive finite number, got {v!r}")
        self.v = float(v)
        super().__init__(
            name,
            db,
            actions,
            ridge=ridge,
            prior_mean=prior_mean,
            dimension=dimension,
            seed=seed,
            snapshot_every=snapshot_every,
        )

    def _posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        arms = self._arms
        assert arms is not None
        return arms.means(x), self.v * np.sqrt(arms.variances(x))

    def _pick(self, x: np.ndarray, rng: np.random.Generator) -> tuple[int, float, np.ndarray]:
        means, spreads = self._posterior(x)
        draws = means + spreads * rng.standard_normal(means.size)
        tied = np.flatnonzero(_ties(draws))
        k = int(tied[0]) if tied.size == 1 else int(tied[rng.integers(tied.size)])
        return k, self._probability_of(k, means, spreads), means

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        means, spreads = self._posterior(x)
        if not np.any(spreads > 0):
            tied = _ties(means)
            return np.asarray(tied / tied.sum())
        probabilities = np.array(
            [self._raw_probability(k, means, spreads) for k in range(means.size)]
        )
        return np.asarray(probabilities / probabilities.sum())

    def _probability_of(self, k: int, means: np.ndarray, spreads: np.ndarray) -> float:
        if not np.any(spreads > 0):
            tied = _ties(means)
            return float(1.0 / tied.sum())
        raw = self._raw_probability(k, means, spreads)
        return float(min(1.0, max(raw, np.finfo(np.float64).tiny)))

    @staticmethod
    def _raw_probability(k: int, means: np.ndarray, spreads: np.ndarray) -> float:
        """P(draw_k > every other draw) = E_z[prod_j Phi((m_k + s_k z - m_j) / s_j)].

        Actions whose draws lie wholly below action k's range (Phi = 1 there) are left
        out, and so is the part of the grid where some other draw is surely larger. The
        grid step is a quarter of the narrowest ``s_j / s_k`` (the width of the sharpest
        factor), kept within :data:`THOMPSON_GRID_STEPS`.
        """
        spread_k = max(float(spreads[k]), 1e-300)
        lowest_k = means[k] - _GRID_HALF_WIDTH * spread_k
        others = np.arange(means.size) != k
        others &= means + _GRID_HALF_WIDTH * spreads > lowest_k
        if not others.any():
            return 1.0
        means_j = means[others]
        spreads_j = np.maximum(spreads[others], 1e-300)
        coarsest, finest = THOMPSON_GRID_STEPS
        step = min(coarsest, max(finest, float(spreads_j.min()) / spread_k / 4.0))
        start = (np.max(means_j - _GRID_HALF_WIDTH * spreads_j) - means[k]) / spread_k
        if start >= _GRID_HALF_WIDTH:
            return 0.0
        z = np.arange(max(start, -_GRID_HALF_WIDTH), _GRID_HALF_WIDTH, step)
        density_weights = (step / _SQRT_2PI) * np.exp(-0.5 * z * z)
        values_k = means[k] + spread_k * z
        cdf = _normal_cdf((values_k[None, :] - means_j[:, None]) / spreads_j[:, None])
        return float(cdf.prod(axis=0) @ density_weights)
