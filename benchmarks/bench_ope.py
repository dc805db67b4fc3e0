"""Checked off-policy evaluation on digits: IPS, SNIPS, DM and DR against the true value.

30 % of the rows (stratified) train the target policy: epsilon-greedy (epsilon 0.1) over
per-action ridge models fitted with full information (every action's reward 1[a == y]).
The other 70 % are the contexts: each logged round draws one of them uniformly, the
logging policy picks an action (uniform random, or epsilon-greedy with epsilon 0.2 over
ridge models fitted on 100 rows only) and the reward is 1[a == label]. The target's true
value is its expected reward over those contexts, computed exactly from the labels.
Each estimator's relative error |estimate - truth| / truth is averaged over the seeds.

Run: PYTHONPATH=src python benchmarks/bench_ope.py [--rounds 5000] [--seeds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bandit_common import load_dataset, machine_description, markdown_table

from rlmemory.learners.bandits import EpsilonGreedyAgent
from rlmemory.offpolicy import (
    LoggedDecisions,
    cross_fitted_rewards,
    dm_estimate,
    dr_estimate,
    ips_estimate,
    snips_estimate,
)


def full_information_policy(
    contexts: np.ndarray, labels: np.ndarray, n_actions: int, epsilon: float
) -> EpsilonGreedyAgent:
    """Epsilon-greedy over ridge models that saw every action's reward for every row.

    ``prior_mean=0.0``: with full information there is nothing to explore, and the
    figures in docs/bandits.md were measured with ridge models shrunk towards 0.
    """
    actions = [str(k) for k in range(n_actions)]
    policy = EpsilonGreedyAgent("policy", None, actions, epsilon=epsilon, prior_mean=0.0, seed=0)
    for k in range(n_actions):
        policy.update_batch(contexts, [actions[k]] * len(labels), (labels == k).astype(float))
    return policy


def logistic_reward_model(
    contexts: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    predict_contexts: np.ndarray,
    n_actions: int,
) -> np.ndarray:
    """A better reward model: per-action L2 logistic regression (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression

    predictions = np.zeros((predict_contexts.shape[0], n_actions))
    for k in range(n_actions):
        rows = actions == k
        observed = rewards[rows]
        if observed.min() == observed.max():
            predictions[:, k] = observed[0]
            continue
        model = LogisticRegression(C=10.0, max_iter=2000).fit(contexts[rows], observed)
        predictions[:, k] = model.predict_proba(predict_contexts)[:, 1]
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--bootstrap", type=int, default=200)
    arguments = parser.parse_args()

    from sklearn.model_selection import train_test_split

    contexts, labels = load_dataset("digits")
    n_actions = int(labels.max()) + 1
    train_x, pool_x, train_y, pool_y = train_test_split(
        contexts, labels, train_size=0.3, stratify=labels, random_state=0
    )
    target_policy = full_information_policy(train_x, train_y, n_actions, epsilon=0.1)
    target_on_pool = target_policy.probability_matrix(pool_x)
    truth = float(target_on_pool[np.arange(len(pool_y)), pool_y].mean())
    logging_model = full_information_policy(train_x[:100], train_y[:100], n_actions, epsilon=0.2)
    loggers = {
        "uniform": np.full((len(pool_y), n_actions), 1.0 / n_actions),
        "epsilon-greedy (0.2)": logging_model.probability_matrix(pool_x),
    }

    started = time.perf_counter()
    errors: dict[tuple[str, str], list[float]] = {}
    signed: dict[tuple[str, str], list[float]] = {}
    coverage: dict[tuple[str, str], list[bool]] = {}
    for logger_name, logger_probabilities in loggers.items():
        for seed in range(arguments.seeds):
            rng = np.random.default_rng(seed)
            rows = rng.integers(0, len(pool_y), arguments.rounds)
            cumulative = logger_probabilities[rows].cumsum(axis=1)
            draws = rng.random(arguments.rounds)[:, None]
            actions = np.minimum((draws > cumulative).sum(axis=1), n_actions - 1)
            logged = LoggedDecisions(
                pool_x[rows],
                actions,
                (actions == pool_y[rows]).astype(float),
                logger_probabilities[rows, actions],
                [str(k) for k in range(n_actions)],
            )
            target = target_on_pool[rows]
            options = {"n_bootstrap": arguments.bootstrap, "seed": seed}
            ridge_q = cross_fitted_rewards(logged, seed=seed)
            logistic_q = cross_fitted_rewards(logged, reward_model=logistic_reward_model, seed=seed)
            estimates = {
                "IPS": ips_estimate(logged, target, **options),
                "SNIPS": snips_estimate(logged, target, **options),
                "DM (ridge)": dm_estimate(logged, target, predictions=ridge_q, **options),
                "DR (ridge)": dr_estimate(logged, target, predictions=ridge_q, **options),
                "DM (logistic)": dm_estimate(logged, target, predictions=logistic_q, **options),
                "DR (logistic)": dr_estimate(logged, target, predictions=logistic_q, **options),
            }
            for name, estimate in estimates.items():
                key = (logger_name, name)
                errors.setdefault(key, []).append(abs(estimate.value - truth) / truth)
                signed.setdefault(key, []).append((estimate.value - truth) / truth)
                coverage.setdefault(key, []).append(estimate.ci_low <= truth <= estimate.ci_high)
    elapsed = time.perf_counter() - started

    table = [
        [
            logger,
            estimator,
            f"{100 * np.mean(errors[(logger, estimator)]):.2f} %",
            f"{100 * np.mean(signed[(logger, estimator)]):+.2f} %",
            f"{100 * np.mean(coverage[(logger, estimator)]):.0f} %",
        ]
        for logger, estimator in errors
    ]
    print(
        f"digits: target policy true value {truth:.4f} over {len(pool_y)} contexts; "
        f"{arguments.rounds} logged rounds; {arguments.seeds} seeds; "
        f"{arguments.bootstrap} bootstrap replicates; {elapsed:.1f} s"
    )
    print(
        markdown_table(
            [
                "logging policy",
                "estimator",
                "mean relative error",
                "mean signed error",
                "95 % CI covers truth",
            ],
            table,
        )
    )
    print()
    print(machine_description(["numpy", "scikit-learn"]))


if __name__ == "__main__":
    main()
