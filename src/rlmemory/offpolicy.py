"""Off-policy evaluation and learning from logged decisions (IPS, SNIPS, DM, DR).

A logged decision is a context ``x_i``, the action ``a_i`` taken, its reward ``r_i``
and the probability ``p_i`` the logging policy gave that action (its propensity).
A candidate policy is given as a matrix of action probabilities, one row per logged
context. With ``w_i = pi(a_i | x_i) / p_i``:

* IPS: ``mean(w_i r_i)`` — unbiased when every action the candidate may take had
  ``p > 0``; variance grows with the weights.
* SNIPS: ``sum(w_i r_i) / sum(w_i)`` — slightly biased, much less variance.
* DM: ``mean(sum_a pi(a | x_i) q(x_i, a))`` with a reward model ``q``; biased by the
  model's errors.
* DR: DM plus the IPS-weighted residual ``w_i (r_i - q(x_i, a_i))``; unbiased when
  either the propensities or the model are right. The default model is a per-action
  ridge regression fitted with 2-fold cross-fitting (each row is predicted by a model
  that did not see it).

Confidence intervals are percentile bootstrap intervals over logged rounds (seeded);
for DM and DR the cross-fitted predictions are held fixed while resampling.
:func:`exact_ips_interval` gives a Clopper–Pearson interval where IPS reduces to a
binomial count (0/1 rewards, one weight value).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = 2000
>>> logged = LoggedDecisions(
...     contexts=rng.normal(size=(n, 2)),
...     actions=rng.integers(0, 2, n),
...     rewards=np.zeros(n),
...     propensities=np.full(n, 0.5),
...     action_names=["a", "b"],
... )
>>> logged.rewards[logged.actions == 0] = 1.0
>>> always_a = np.tile([1.0, 0.0], (n, 1))
>>> round(ips_estimate(logged, always_a).value, 1), snips_estimate(logged, always_a).value
(1.0, 1.0)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

if TYPE_CHECKING:
    from rlmemory.learners.bandits import EpsilonGreedyAgent, LinUCBAgent, ThompsonSamplingAgent

#: A reward model: (train contexts, train action indices, train rewards, contexts to
#: predict, number of actions) -> predicted reward of every action, shape (m, K).
RewardModel = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]

POLICY_NAMES = ("linucb", "thompson", "epsilon_greedy", "uniform")
ESTIMATORS = ("IPS", "SNIPS", "DM", "DR")


@dataclass
class LoggedDecisions:
    """Logged rounds as arrays: ``contexts`` (n, d), ``actions`` (n,) indices into
    ``action_names``, ``rewards`` (n,), ``propensities`` (n,) in (0, 1]."""

    contexts: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    action_names: list[str]
    decision_ids: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.contexts = np.asarray(self.contexts, dtype=np.float64)
        self.actions = np.asarray(self.actions, dtype=np.int64)
        self.rewards = np.asarray(self.rewards, dtype=np.float64)
        self.propensities = np.asarray(self.propensities, dtype=np.float64)
        self.action_names = list(self.action_names)
        n = self.actions.shape[0]
        if self.contexts.ndim != 2 or self.contexts.shape[0] != n:
            raise ValueError(f"contexts must have shape (n, d) with n = {n}")
        if self.rewards.shape != (n,) or self.propensities.shape != (n,):
            raise ValueError("actions, rewards and propensities must have the same length")
        if n and (self.actions.min() < 0 or self.actions.max() >= len(self.action_names)):
            raise ValueError("actions must index action_names")
        _check_values(self.contexts, self.rewards, self.propensities)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def subset(self, rows: slice | np.ndarray) -> LoggedDecisions:
        """The logged rounds selected by ``rows`` (a slice, mask or index array)."""
        return LoggedDecisions(
            self.contexts[rows],
            self.actions[rows],
            self.rewards[rows],
            self.propensities[rows],
            self.action_names,
            None if self.decision_ids is None else self.decision_ids[rows],
        )


@dataclass(frozen=True)
class Estimate:
    """A policy value estimate with its confidence interval."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float = 0.95


class _BootstrapOptions(TypedDict):
    """The interval options every estimator takes (see :func:`ips_estimate`)."""

    n_bootstrap: int
    confidence: float
    seed: int | None


def _check_values(contexts: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> None:
    """Finite contexts and rewards, propensities in (0, 1]; else a ValueError naming them."""
    if not np.all(np.isfinite(contexts)):
        raise ValueError("contexts contain NaN or infinite values")
    if not np.all(np.isfinite(rewards)):
        raise ValueError("rewards contain NaN or infinite values")
    bad = ~np.isfinite(propensities) | (propensities <= 0) | (propensities > 1)
    if np.any(bad):
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"propensities must be in (0, 1]; row {first} has {float(propensities[first])!r}"
        )


# ---------------------------------------------------------------- reading the store
def _reward_value(raw: Any, decision_id: Any) -> float | None:
    """The learned reward of a decision's ``reward`` JSON; None while it is pending.

    Accepts a number, or the coordinator's forms ``{"status": "observed" | "defaulted",
    "value": r, ...}`` and ``{"status": "pending", ...}`` (and ``{"reward": r}``).
    """
    if raw is None:
        return None
    if isinstance(raw, dict):
        if raw.get("status") == "pending":
            return None
        raw = raw.get("value", raw.get("reward"))
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"decision {decision_id} has a reward that is not a number: {raw!r}")
    return float(raw)


def load_logged_decisions(
    db: Any, agent_name: str, *, actions: Sequence[str] | None = None
) -> LoggedDecisions:
    """Read ``agent_name``'s decisions (oldest first) that have a reward.

    Decisions whose reward is still pending (``None``) are skipped. A decision with no
    propensity or no features is a ``ValueError`` naming it: it cannot be used for
    off-policy evaluation. Action columns follow ``actions`` when given, else the order
    in which actions first appear.
    """
    names = list(actions) if actions is not None else []
    index = {name: k for k, name in enumerate(names)}
    contexts, chosen, rewards, propensities, ids = [], [], [], [], []
    for row in db.iter_agent_decisions(agent_name):
        reward = _reward_value(row.get("reward"), row["id"])
        if reward is None:
            continue
        propensity = row.get("propensity")
        if propensity is None or not 0 < float(propensity) <= 1:
            raise ValueError(
                f"decision {row['id']} of {agent_name!r} has propensity {propensity!r}; "
                "off-policy evaluation needs the probability of every logged choice in (0, 1]"
            )
        if row.get("features") is None:
            raise ValueError(f"decision {row['id']} of {agent_name!r} has no features")
        action = row["selected_action"]
        if action not in index:
            if actions is not None:
                raise ValueError(
                    f"decision {row['id']} chose {action!r}, which is not among {names}"
                )
            index[action] = len(names)
            names.append(action)
        contexts.append(row["features"])
        chosen.append(index[action])
        rewards.append(reward)
        propensities.append(float(propensity))
        ids.append(row["id"])
    if not chosen:
        raise ValueError(f"agent {agent_name!r} has no decisions with a reward")
    lengths = {len(c) for c in contexts}
    if len(lengths) != 1:
        raise ValueError(f"decisions of {agent_name!r} have features of lengths {sorted(lengths)}")
    return LoggedDecisions(
        np.array(contexts, dtype=np.float64),
        np.array(chosen),
        np.array(rewards),
        np.array(propensities),
        names,
        np.array(ids),
    )


def import_logged_decisions(
    db: Any,
    agent_name: str,
    contexts: Any,
    actions: Sequence[str],
    rewards: Sequence[float],
    propensities: Sequence[float],
    *,
    states: Sequence[str] | None = None,
) -> list[int]:
    """Store externally logged rounds as decisions of ``agent_name``, in one transaction.

    Everything is validated first; on any error nothing is stored. Returns the new ids.
    """
    matrix = np.asarray(contexts, dtype=np.float64)
    action_list = [str(a) for a in actions]
    reward_array = np.asarray(rewards, dtype=np.float64)
    propensity_array = np.asarray(propensities, dtype=np.float64)
    n = len(action_list)
    state_list = ["logged"] * n if states is None else [str(s) for s in states]
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise ValueError(f"contexts must have shape (n, d) with n = {n}, got {matrix.shape}")
    if reward_array.shape != (n,) or propensity_array.shape != (n,) or len(state_list) != n:
        raise ValueError("contexts, actions, rewards, propensities and states differ in length")
    _check_values(matrix, reward_array, propensity_array)
    ids: list[int] = []
    with db.transaction():
        for x, action, reward, propensity, state in zip(
            matrix, action_list, reward_array, propensity_array, state_list, strict=True
        ):
            ids.append(
                db.save_agent_decision(
                    agent_name,
                    state,
                    action,
                    {},
                    float(reward),
                    propensity=float(propensity),
                    features=x.tolist(),
                )
            )
    return ids


def export_decision_log(db: Any, agent_name: str, path: str | Path) -> int:
    """Write ``agent_name``'s rewarded decisions in the Open Bandit Pipeline layout.

    Columns: ``decision_id``, ``action`` (index), ``action_name``, ``reward``, ``pscore``
    and ``context_0`` … ``context_{d-1}``. ``.csv`` is written with the standard
    library; ``.parquet`` needs pyarrow. Returns the number of rows written.
    """
    logged = load_logged_decisions(db, agent_name)
    target = Path(path)
    header = ["decision_id", "action", "action_name", "reward", "pscore"]
    header += [f"context_{j}" for j in range(logged.contexts.shape[1])]
    ids = logged.decision_ids if logged.decision_ids is not None else np.arange(len(logged))
    suffix = target.suffix.lower()
    if suffix == ".csv":
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for i in range(len(logged)):
                writer.writerow(
                    [
                        int(ids[i]),
                        int(logged.actions[i]),
                        logged.action_names[logged.actions[i]],
                        repr(float(logged.rewards[i])),
                        repr(float(logged.propensities[i])),
                        *(repr(float(v)) for v in logged.contexts[i]),
                    ]
                )
    elif suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ValueError(
                "writing Parquet needs pyarrow: pip install 'rlmemory[export]'"
            ) from error
        columns: dict[str, Any] = {
            "decision_id": ids.astype(np.int64),
            "action": logged.actions,
            "action_name": [logged.action_names[a] for a in logged.actions],
            "reward": logged.rewards,
            "pscore": logged.propensities,
        }
        for j in range(logged.contexts.shape[1]):
            columns[f"context_{j}"] = logged.contexts[:, j]
        pq.write_table(pa.table(columns), target)
    else:
        raise ValueError(f"export file must end in .csv or .parquet, got {target.name!r}")
    return len(logged)


# ----------------------------------------------------------------------- estimators
def _target_matrix(logged: LoggedDecisions, target: Any) -> np.ndarray:
    matrix = np.asarray(target, dtype=np.float64)
    expected = (len(logged), len(logged.action_names))
    if matrix.shape != expected:
        raise ValueError(f"target probabilities must have shape {expected}, got {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError("target probabilities must be finite and non-negative")
    if not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("target probabilities must sum to 1 in every row")
    return matrix


def _importance_weights(logged: LoggedDecisions, target: np.ndarray) -> np.ndarray:
    rows = np.arange(len(logged))
    weights: np.ndarray = target[rows, logged.actions] / logged.propensities
    return weights


def _bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    n_bootstrap: int,
    confidence: float,
    seed: int | None,
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over bootstrap index matrices (chunked)."""
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_bootstrap, 2_000_000 // max(n, 1)))
    values: list[np.ndarray] = []
    done = 0
    while done < n_bootstrap:
        size = min(chunk, n_bootstrap - done)
        values.append(statistic(rng.integers(0, n, size=(size, n))))
        done += size
    replicates = np.concatenate(values)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return float(low), float(high)


def _mean_estimate(
    name: str, contributions: np.ndarray, n_bootstrap: int, confidence: float, seed: int | None
) -> Estimate:
    low, high = _bootstrap(
        lambda idx: contributions[idx].mean(axis=1),
        contributions.size,
        n_bootstrap,
        confidence,
        seed,
    )
    return Estimate(name, float(contributions.mean()), low, high, contributions.size, confidence)


def ips_estimate(
    logged: LoggedDecisions,
    target: Any,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Estimate:
    """Inverse propensity scoring: ``mean(w_i r_i)``."""
    weights = _importance_weights(logged, _target_matrix(logged, target))
    return _mean_estimate("IPS", weights * logged.rewards, n_bootstrap, confidence, seed)


def snips_estimate(
    logged: LoggedDecisions,
    target: Any,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Estimate:
    """Self-normalised IPS: ``sum(w_i r_i) / sum(w_i)`` (0 when every weight is 0)."""
    weights = _importance_weights(logged, _target_matrix(logged, target))
    weighted = weights * logged.rewards

    def ratio(weighted_sum: np.ndarray, weight_sum: np.ndarray) -> np.ndarray:
        safe = np.where(weight_sum > 0, weight_sum, 1.0)
        return np.where(weight_sum > 0, weighted_sum / safe, 0.0)

    low, high = _bootstrap(
        lambda idx: ratio(weighted[idx].sum(axis=1), weights[idx].sum(axis=1)),
        len(logged),
        n_bootstrap,
        confidence,
        seed,
    )
    value = float(ratio(np.array(weighted.sum()), np.array(weights.sum())))
    return Estimate("SNIPS", value, low, high, len(logged), confidence)


def ridge_reward_model(ridge: float = 1.0) -> RewardModel:
    """A per-action ridge regression (with an intercept column) as a reward model."""

    def fit_predict(
        contexts: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        predict_contexts: np.ndarray,
        n_actions: int,
    ) -> np.ndarray:
        design = np.hstack([contexts, np.ones((contexts.shape[0], 1))])
        queries = np.hstack([predict_contexts, np.ones((predict_contexts.shape[0], 1))])
        predictions = np.zeros((queries.shape[0], n_actions))
        identity = ridge * np.eye(design.shape[1])
        for k in range(n_actions):
            rows = actions == k
            if not np.any(rows):
                continue
            X = design[rows]
            theta = np.linalg.solve(X.T @ X + identity, X.T @ rewards[rows])
            predictions[:, k] = queries @ theta
        return predictions

    return fit_predict


def cross_fitted_rewards(
    logged: LoggedDecisions,
    *,
    reward_model: RewardModel | None = None,
    folds: int = 2,
    seed: int | None = 0,
) -> np.ndarray:
    """Predicted reward of every action for every logged row, shape (n, K), each row
    predicted by a model fitted on the other folds."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    model = reward_model or ridge_reward_model()
    n, n_actions = len(logged), len(logged.action_names)
    assignment = np.random.default_rng(seed).permutation(n) % folds
    predictions = np.zeros((n, n_actions))
    for fold in range(folds):
        held_out = assignment == fold
        train = ~held_out
        predictions[held_out] = model(
            logged.contexts[train],
            logged.actions[train],
            logged.rewards[train],
            logged.contexts[held_out],
            n_actions,
        )
    return predictions


def dm_estimate(
    logged: LoggedDecisions,
    target: Any,
    *,
    predictions: np.ndarray | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Estimate:
    """Direct method: the reward model's value of the target policy."""
    matrix = _target_matrix(logged, target)
    q = cross_fitted_rewards(logged, seed=seed) if predictions is None else predictions
    return _mean_estimate("DM", (matrix * q).sum(axis=1), n_bootstrap, confidence, seed)


def dr_estimate(
    logged: LoggedDecisions,
    target: Any,
    *,
    predictions: np.ndarray | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Estimate:
    """Doubly robust: DM plus the importance-weighted residual of the logged action."""
    matrix = _target_matrix(logged, target)
    q = cross_fitted_rewards(logged, seed=seed) if predictions is None else predictions
    weights = _importance_weights(logged, matrix)
    rows = np.arange(len(logged))
    contributions = (matrix * q).sum(axis=1) + weights * (logged.rewards - q[rows, logged.actions])
    return _mean_estimate("DR", contributions, n_bootstrap, confidence, seed)


def evaluate_policy(
    logged: LoggedDecisions,
    target: Any,
    *,
    estimators: Iterable[str] = ESTIMATORS,
    reward_model: RewardModel | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Estimate]:
    """Every requested estimate of the target policy's value, keyed by estimator name."""
    wanted = [e.upper() for e in estimators]
    unknown = sorted(set(wanted) - set(ESTIMATORS))
    if unknown:
        raise ValueError(f"unknown estimators {unknown}; choose from {', '.join(ESTIMATORS)}")
    options: _BootstrapOptions = {
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "seed": seed,
    }
    predictions = None
    if "DM" in wanted or "DR" in wanted:
        predictions = cross_fitted_rewards(logged, reward_model=reward_model, seed=seed)
    results: dict[str, Estimate] = {}
    for name in wanted:
        if name == "IPS":
            results[name] = ips_estimate(logged, target, **options)
        elif name == "SNIPS":
            results[name] = snips_estimate(logged, target, **options)
        elif name == "DM":
            results[name] = dm_estimate(logged, target, predictions=predictions, **options)
        else:
            results[name] = dr_estimate(logged, target, predictions=predictions, **options)
    return results


@dataclass(frozen=True)
class SupportDiagnostics:
    """How far the logs can speak for a target policy.

    ``effective_sample_size`` is ``(sum w)^2 / sum w^2`` (equal to ``n`` when every weight
    is equal). ``deterministic_share`` is the share of rounds where the logging policy
    chose with probability 1; there it tried no other action, so ``unsupported_mass``
    — the target's average probability on actions other than the logged one in those
    rounds — cannot be checked against the logs: IPS counts it as zero reward, SNIPS
    ignores it, DR takes it from its reward model alone.
    """

    effective_sample_size: float
    deterministic_share: float
    unsupported_mass: float


def support_diagnostics(logged: LoggedDecisions, target: Any) -> SupportDiagnostics:
    """Effective sample size and unsupported probability mass of ``target`` on ``logged``.

    >>> logged = LoggedDecisions([[0.0], [0.0]], [0, 1], [1.0, 0.0], [1.0, 0.5], ["a", "b"])
    >>> support_diagnostics(logged, [[0.5, 0.5], [0.5, 0.5]])
    SupportDiagnostics(effective_sample_size=1.8, deterministic_share=0.5, unsupported_mass=0.25)
    """
    matrix = _target_matrix(logged, target)
    weights = _importance_weights(logged, matrix)
    squares = float(np.sum(weights**2))
    ess = float(weights.sum() ** 2 / squares) if squares > 0 else 0.0
    deterministic = logged.propensities >= 1.0 - 1e-12
    on_logged = matrix[np.arange(len(logged)), logged.actions]
    unsupported = float(np.mean(np.where(deterministic, 1.0 - on_logged, 0.0)))
    return SupportDiagnostics(ess, float(deterministic.mean()), unsupported)


def observed_value(
    logged: LoggedDecisions,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> Estimate:
    """The logging policy's own mean reward, with a bootstrap interval."""
    return _mean_estimate("observed", logged.rewards, n_bootstrap, confidence, seed)


# ------------------------------------------------------------------ exact intervals
def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    ks = np.arange(k + 1)
    log_choose = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(j + 1) for j in ks])
        - np.array([math.lgamma(n - j + 1) for j in ks])
    )
    log_terms = log_choose + ks * math.log(p) + (n - ks) * math.log1p(-p)
    top = log_terms.max()
    return float(min(1.0, math.exp(top) * np.exp(log_terms - top).sum()))


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval for a binomial proportion.

    >>> low, high = clopper_pearson(38, 10_000)
    >>> round(low, 4), round(high, 4)
    (0.0027, 0.0052)
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    tail = (1.0 - confidence) / 2.0

    def solve(condition: Callable[[float], bool]) -> float:
        low, high = 0.0, 1.0
        for _ in range(60):
            middle = (low + high) / 2.0
            if condition(middle):
                high = middle
            else:
                low = middle
        return (low + high) / 2.0

    lower = (
        0.0
        if successes == 0
        else solve(lambda p: 1.0 - _binomial_cdf(successes - 1, trials, p) >= tail)
    )
    upper = (
        1.0 if successes == trials else solve(lambda p: _binomial_cdf(successes, trials, p) <= tail)
    )
    return lower, upper


def exact_ips_interval(
    logged: LoggedDecisions, target: Any, confidence: float = 0.95
) -> tuple[float, float]:
    """Clopper–Pearson interval for IPS when it is a scaled binomial count.

    Needs 0/1 rewards and one common non-zero importance weight ``c`` (a deterministic
    target policy under a logging policy with constant propensity, for example): then
    ``IPS = c * k / n`` with ``k`` binomial, and the interval is ``c`` times the exact
    interval for ``k / n``.
    """
    weights = _importance_weights(logged, _target_matrix(logged, target))
    if not np.all(np.isin(logged.rewards, (0.0, 1.0))):
        raise ValueError("an exact IPS interval needs rewards that are 0 or 1")
    positive = weights[weights > 0]
    if positive.size == 0:
        return 0.0, 0.0
    scale = float(positive[0])
    if not np.allclose(positive, scale, rtol=1e-9):
        raise ValueError("an exact IPS interval needs one common non-zero importance weight")
    successes = int(np.sum((weights > 0) & (logged.rewards == 1.0)))
    low, high = clopper_pearson(successes, len(logged), confidence)
    return scale * low, scale * high


# ---------------------------------------------------------------- learning offline
def importance_weights_for_learning(logged: LoggedDecisions) -> np.ndarray:
    """``1 / p_i`` normalised to mean 1 (uniform logging gives all ones)."""
    inverse = 1.0 / logged.propensities
    weights: np.ndarray = inverse / inverse.mean()
    return weights


def learn_from_batch(
    learner: Any, logged: LoggedDecisions, *, importance_weighted: bool = True
) -> None:
    """Train a bandit learner on logged rounds, oldest first.

    With ``importance_weighted`` each round counts ``1 / p_i`` (normalised to mean 1),
    correcting the logging policy's preference for some actions in some contexts.
    The learner persists each touched action once, at the end, in one write.
    """
    weights = importance_weights_for_learning(logged) if importance_weighted else None
    learner.update_batch(
        logged.contexts,
        [logged.action_names[a] for a in logged.actions],
        logged.rewards,
        weights,
    )


def policy_probabilities(policy: Any, logged: LoggedDecisions) -> np.ndarray:
    """The candidate's action probabilities for every logged context, columns in
    ``logged.action_names`` order (0 for actions the candidate does not know)."""
    columns = {action: j for j, action in enumerate(logged.action_names)}
    matrix = np.zeros((len(logged), len(logged.action_names)))
    if hasattr(policy, "probability_matrix"):
        rows = policy.probability_matrix(logged.contexts)
        for k, action in enumerate(policy.actions):
            if action in columns:
                matrix[:, columns[action]] = rows[:, k]
        return matrix
    for i, x in enumerate(logged.contexts):
        for action, probability in policy.action_probabilities(x).items():
            if action in columns:
                matrix[i, columns[action]] = probability
    return matrix


def make_policy(
    policy: str, actions: Sequence[str], *, seed: int | None = 0, **options: Any
) -> LinUCBAgent | ThompsonSamplingAgent | EpsilonGreedyAgent | None:
    """A fresh, store-less candidate learner by name (``uniform`` returns None)."""
    from rlmemory.learners.bandits import EpsilonGreedyAgent, LinUCBAgent, ThompsonSamplingAgent

    classes: dict[str, type[LinUCBAgent | ThompsonSamplingAgent | EpsilonGreedyAgent]] = {
        "linucb": LinUCBAgent,
        "thompson": ThompsonSamplingAgent,
        "epsilon_greedy": EpsilonGreedyAgent,
    }
    if policy == "uniform":
        return None
    if policy not in classes:
        raise ValueError(f"unknown policy {policy!r}; choose from {', '.join(POLICY_NAMES)}")
    return classes[policy]("candidate", None, list(actions), seed=seed, **options)


@dataclass(frozen=True)
class CandidateEvaluation:
    """What :func:`evaluate_candidate` found: estimates beside the logged policy's value."""

    policy: str
    n_train: int
    n_evaluated: int
    observed: Estimate
    estimates: dict[str, Estimate]
    support: SupportDiagnostics


def evaluate_candidate(
    db: Any,
    agent_name: str,
    policy: str,
    *,
    train_fraction: float = 0.5,
    estimators: Iterable[str] = ("IPS", "SNIPS", "DR"),
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    **policy_options: Any,
) -> CandidateEvaluation:
    """Estimate what ``policy`` would have earned on ``agent_name``'s logged traffic.

    The candidate is trained offline (:func:`learn_from_batch`) on the oldest
    ``train_fraction`` of the rewarded decisions and evaluated, frozen, on the rest,
    beside the logging policy's observed mean reward on those same decisions.
    """
    if not 0 <= train_fraction < 1:
        raise ValueError(f"train_fraction must be in [0, 1), got {train_fraction}")
    logged = load_logged_decisions(db, agent_name)
    split = int(len(logged) * train_fraction)
    if len(logged) - split < 1:
        raise ValueError(f"agent {agent_name!r} has too few rewarded decisions to evaluate")
    training, evaluation = logged.subset(slice(0, split)), logged.subset(slice(split, None))
    candidate = make_policy(policy, logged.action_names, seed=seed, **policy_options)
    if candidate is None:
        target = np.full(
            (len(evaluation), len(logged.action_names)), 1.0 / len(logged.action_names)
        )
    else:
        if split:
            learn_from_batch(candidate, training)
        target = policy_probabilities(candidate, evaluation)
    options: _BootstrapOptions = {
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "seed": seed,
    }
    return CandidateEvaluation(
        policy=policy,
        n_train=split,
        n_evaluated=len(evaluation),
        observed=observed_value(evaluation, **options),
        estimates=evaluate_policy(evaluation, target, estimators=estimators, **options),
        support=support_diagnostics(evaluation, target),
    )
