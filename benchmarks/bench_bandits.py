"""Contextual bandit bake-off: rlmemory's learners against Vowpal Wabbit and mabwiser.

The supervised-to-bandit conversion of Bietti, Agarwal & Langford, "A Contextual Bandit
Bake-off" (JMLR 2021): scikit-learn's bundled iris, wine, breast_cancer and digits,
standardised (plus a constant feature), 5 shuffles each; each row is one round, the
actions are the classes, the reward is 1 when the action equals the label, and only the
chosen action's reward is revealed. "digits x3" replays each shuffle three times.
Reported: progressive mean reward (mean over the 5 shuffles) and seconds per 1,000
rounds (act + learn, including each library's input formatting), all in one run;
with ``--repeat N`` each run is timed N times and the fastest kept.

* rlmemory learners are driven as the coordinator drives them: ``choose(observation,
  rng)`` (which computes the choice's propensity) then ``learn(observation, action,
  reward)``.
* rlmemory, SQLite: every update written to a MemoryDatabase on a temporary file
  (``save_arrays`` of the chosen action's statistics, durable when it returns).
* rlmemory, memory: the same learners built with ``db=None`` (nothing persisted).
* VW: ``--cb_explore_adf --epsilon 0.05 -q sa`` and ``--cb_explore_adf --squarecb -q sa``
  (plus ``--quiet --random_seed <shuffle>``); the action is sampled from the returned
  pmf and learned with cost 1 - reward and its probability.
* mabwiser ``LinUCB(alpha=1)``; uniform random.

Run: PYTHONPATH=src python benchmarks/bench_bandits.py [--shuffles 5] [--only rlmemory]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bandit_common import DATASETS, load_dataset, machine_description, markdown_table

from rlmemory.learners.bandits import EpsilonGreedyAgent, LinUCBAgent, ThompsonSamplingAgent
from rlmemory.learners.base import Observation

VW_ARGUMENTS = {
    "VW epsilon 0.05": "--cb_explore_adf --epsilon 0.05 -q sa",
    "VW squarecb": "--cb_explore_adf --squarecb -q sa",
}
RLMEMORY_LEARNERS: dict[str, tuple[type, dict[str, float]]] = {
    "LinUCB alpha 0.5": (LinUCBAgent, {"alpha": 0.5}),
    "Thompson v 0.1": (ThompsonSamplingAgent, {"v": 0.1}),
    "eps-greedy 0.05": (EpsilonGreedyAgent, {"epsilon": 0.05}),
}

# One run over a shuffled stream: (contexts, labels, n_actions, seed) -> total reward.
Runner = Callable[[np.ndarray, np.ndarray, int, int], float]


def rlmemory_runner(learner_class: type, options: dict[str, float], store: object) -> Runner:
    def run(contexts: np.ndarray, labels: np.ndarray, n_actions: int, seed: int) -> float:
        actions = [str(k) for k in range(n_actions)]
        name = f"bench-{learner_class.__name__}-{seed}-{time.monotonic_ns()}"
        learner = learner_class(name, store, actions, seed=seed, **options)
        rng = np.random.default_rng(seed)
        total = 0.0
        for x, label in zip(contexts, labels, strict=True):
            # The coordinator's path: choose() also computes the choice's propensity.
            observation = Observation("bench", x)
            action = learner.choose(observation, rng).action
            reward = 1.0 if int(action) == label else 0.0
            learner.learn(observation, action, reward)
            total += reward
        return total

    return run


def vw_runner(arguments: str) -> Runner:
    import vowpalwabbit

    def run(contexts: np.ndarray, labels: np.ndarray, n_actions: int, seed: int) -> float:
        workspace = vowpalwabbit.Workspace(f"{arguments} --quiet --random_seed {seed}")
        rng = np.random.default_rng(seed)
        action_lines = [f"|a a{k}" for k in range(n_actions)]
        total = 0.0
        for x, label in zip(contexts, labels, strict=True):
            shared = "shared |s " + " ".join(f"{j}:{v:.6g}" for j, v in enumerate(x) if v)
            pmf = np.asarray(workspace.predict([shared, *action_lines]), dtype=np.float64)
            pmf /= pmf.sum()
            action = int(rng.choice(n_actions, p=pmf))
            reward = 1.0 if action == label else 0.0
            learn_lines = list(action_lines)
            learn_lines[action] = f"0:{1.0 - reward}:{pmf[action]} {action_lines[action]}"
            workspace.learn([shared, *learn_lines])
            total += reward
        workspace.finish()
        return total

    return run


def mabwiser_runner(contexts: np.ndarray, labels: np.ndarray, n_actions: int, seed: int) -> float:
    from mabwiser.mab import MAB, LearningPolicy

    bandit = MAB(list(range(n_actions)), LearningPolicy.LinUCB(alpha=1.0), seed=seed)
    rng = np.random.default_rng(seed)
    first = int(rng.integers(n_actions))
    total = 1.0 if first == labels[0] else 0.0
    bandit.fit([first], [total], contexts[:1])
    for i in range(1, len(labels)):
        action = int(bandit.predict(contexts[i : i + 1]))
        reward = 1.0 if action == labels[i] else 0.0
        bandit.partial_fit([action], [reward], contexts[i : i + 1])
        total += reward
    return total


def uniform_runner(contexts: np.ndarray, labels: np.ndarray, n_actions: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    total = 0.0
    for label in labels:
        total += 1.0 if int(rng.integers(n_actions)) == label else 0.0
    return total


def streams(shuffles: int) -> list[tuple[str, list[tuple[np.ndarray, np.ndarray]], int]]:
    """(data set name, one (contexts, labels) stream per shuffle, number of actions)."""
    result = []
    for name in DATASETS:
        contexts, labels = load_dataset(name)
        orders = [np.random.default_rng(s).permutation(len(labels)) for s in range(shuffles)]
        n_actions = int(labels.max()) + 1
        result.append((name, [(contexts[o], labels[o]) for o in orders], n_actions))
        if name == "digits":
            tripled = [(np.tile(contexts[o], (3, 1)), np.tile(labels[o], 3)) for o in orders]
            result.append(("digits x3", tripled, n_actions))
    return result


class OldLayoutLinUCB(LinUCBAgent):
    """LinUCB with the write path rlmemory had before the step log (schema 2).

    Per update, in one locked transaction: read the agent's stored arrays (the SQL
    store of then answered a keyed ``get_arrays`` by reading every array of the agent),
    refresh the chosen action from them, learn, and rewrite that action's packed
    statistics, O(d²) bytes.
    """

    def _learn_from_stored(self, touched, rounds):  # type: ignore[no-untyped-def]
        from rlmemory.learners._ridge import state_key

        db, arms = self.db, self._arms
        with db.transaction():
            db.lock_learner(self.name)
            stored = db.get_arrays(self.name)
            for k in touched:
                key = state_key(self.actions[k])
                if key in stored:
                    arms.set_state(k, stored[key])
            for k, x, reward, weight in rounds(arms):
                arms.update(k, x, reward, weight)
            changed = {state_key(self.actions[k]): arms.state_of(k) for k in touched}
            db.save_arrays(self.name, changed)


def _timed_rounds(learner: LinUCBAgent, contexts: np.ndarray, rewards: np.ndarray) -> float:
    """Seconds for choose + learn over every row (and the closing snapshot)."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for x, row in zip(contexts, rewards, strict=True):
        observation = Observation("bench", x)
        action = learner.choose(observation, rng).action
        learner.learn(observation, action, float(row[int(action)]))
    learner.close()
    return time.perf_counter() - started


def store_cost(dimensions: tuple[int, ...] = (64, 384), n_actions: int = 4) -> None:
    """Seconds per 1,000 LinUCB rounds in memory, persisted to SQLite, and the old layout."""
    from rlmemory.store.sql import MemoryDatabase

    rounds_for = {64: 2000, 384: 500}
    rows = []
    for dimension in dimensions:
        rounds = rounds_for.get(dimension, 500)
        rng = np.random.default_rng(dimension)
        contexts = rng.normal(size=(rounds, dimension)) / np.sqrt(dimension)
        weights = rng.normal(size=(dimension, n_actions))
        rewards = (contexts @ weights > 0).astype(float)
        actions = [str(k) for k in range(n_actions)]
        per_thousand = {}
        with tempfile.TemporaryDirectory() as folder:
            store = MemoryDatabase(os.path.join(folder, "cost.db"))
            for label, learner_class, db in (
                ("memory", LinUCBAgent, None),
                ("sqlite", LinUCBAgent, store),
                ("old layout", OldLayoutLinUCB, store),
            ):
                learner = learner_class(f"cost-{label}", db, actions, alpha=0.5, seed=0)
                elapsed = _timed_rounds(learner, contexts, rewards)
                per_thousand[label] = 1000 * elapsed / rounds
            store.close()
        memory = per_thousand["memory"]
        rows.append(
            [
                str(dimension),
                str(rounds),
                f"{memory:.3f}",
                f"{per_thousand['sqlite']:.3f}",
                f"{per_thousand['sqlite'] / memory:.2f}",
                f"{per_thousand['old layout']:.3f}",
                f"{per_thousand['old layout'] / memory:.2f}",
            ]
        )
        print(" ".join(rows[-1]), file=sys.stderr)
    print(
        f"LinUCB (alpha 0.5, {n_actions} actions), choose + learn, seconds per 1,000 rounds; "
        "SQLite: step log, snapshot every 1,000 updates and on close (default); "
        "old layout: statistics rewritten on every update (schema 2):"
    )
    print(
        markdown_table(
            [
                "d",
                "rounds",
                "in memory s/1000",
                "SQLite s/1000",
                "ratio",
                "old layout s/1000",
                "old layout ratio",
            ],
            rows,
        )
    )
    print()
    print(machine_description(["numpy", "sqlalchemy"]))
    print("command: PYTHONPATH=src python benchmarks/bench_bandits.py --store-cost")


def sweep(shuffles: int) -> None:
    """Sensitivity of the progressive reward to the exploration and ridge settings."""
    settings: list[tuple[str, type, dict[str, float]]] = []
    for ridge in (0.5, 1.0, 2.0):
        for alpha in (0.1, 0.25, 0.5, 1.0):
            settings.append(
                (
                    f"LinUCB alpha {alpha} ridge {ridge}",
                    LinUCBAgent,
                    {"alpha": alpha, "ridge": ridge},
                )
            )
        for v in (0.05, 0.1, 0.2, 0.5):
            settings.append(
                (f"Thompson v {v} ridge {ridge}", ThompsonSamplingAgent, {"v": v, "ridge": ridge})
            )
    data = streams(shuffles)
    rows = []
    for label, learner_class, options in settings:
        run = rlmemory_runner(learner_class, options, None)
        row = [label]
        for _, shuffled, n_actions in data:
            per_shuffle = [
                run(contexts, labels, n_actions, seed) / len(labels)
                for seed, (contexts, labels) in enumerate(shuffled)
            ]
            row.append(f"{np.mean(per_shuffle):.3f}")
        rows.append(row)
        print(" ".join(row), file=sys.stderr)
    print(f"Progressive mean reward, in memory, {shuffles} shuffles:")
    print(markdown_table(["setting", *(d[0] for d in data)], rows))
    print()
    print(
        f"command: PYTHONPATH=src python benchmarks/bench_bandits.py --sweep --shuffles {shuffles}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shuffles", type=int, default=5)
    parser.add_argument("--only", choices=["rlmemory", "all"], default="all")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Time each run this many times; keep the fastest."
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="Instead: reward of in-memory learners over a grid of alpha, v and ridge.",
    )
    parser.add_argument(
        "--store-cost",
        action="store_true",
        help="Instead: LinUCB in memory vs persisted to SQLite (step log) vs the old layout.",
    )
    arguments = parser.parse_args()

    if arguments.sweep:
        sweep(arguments.shuffles)
        return
    if arguments.store_cost:
        store_cost()
        return

    from rlmemory.store.sql import MemoryDatabase

    folder = tempfile.mkdtemp(prefix="rlmemory-bench-")
    store = MemoryDatabase(os.path.join(folder, "bench.db"))
    runners: dict[str, Runner] = {}
    for label, (learner_class, options) in RLMEMORY_LEARNERS.items():
        runners[f"rlmemory {label}, SQLite"] = rlmemory_runner(learner_class, options, store)
        runners[f"rlmemory {label}, memory"] = rlmemory_runner(learner_class, options, None)
    if arguments.only == "all":
        for label, vw_arguments in VW_ARGUMENTS.items():
            runners[label] = vw_runner(vw_arguments)
        runners["mabwiser LinUCB alpha 1"] = mabwiser_runner
        runners["uniform random"] = uniform_runner

    data = streams(arguments.shuffles)
    repeat = arguments.repeat
    rewards: dict[tuple[str, str], float] = {}
    seconds: dict[tuple[str, str], float] = {}
    for data_name, shuffled, n_actions in data:
        # Methods take turns on each shuffle, so load from elsewhere on the machine
        # falls on all of them alike.
        elapsed = dict.fromkeys(runners, 0.0)
        per_shuffle: dict[str, list[float]] = {method: [] for method in runners}
        for seed, (contexts, labels) in enumerate(shuffled):
            for method, run in runners.items():
                # Seeded runs repeat exactly; the fastest repeat is the least disturbed.
                timings, rewards_seen = [], set()
                for _ in range(repeat):
                    started = time.perf_counter()
                    rewards_seen.add(run(contexts, labels, n_actions, seed))
                    timings.append(time.perf_counter() - started)
                if len(rewards_seen) != 1:
                    raise RuntimeError(f"{method} is not reproducible: {sorted(rewards_seen)}")
                elapsed[method] += min(timings)
                per_shuffle[method].append(rewards_seen.pop() / len(labels))
        rounds = sum(len(labels) for _, labels in shuffled)
        for method in runners:
            rewards[(data_name, method)] = float(np.mean(per_shuffle[method]))
            seconds[(data_name, method)] = 1000.0 * elapsed[method] / rounds
            print(
                f"{data_name:>13} {method:<40} reward {rewards[(data_name, method)]:.3f} "
                f"s/1000 {seconds[(data_name, method)]:.3f}",
                file=sys.stderr,
            )
    store.close()

    names = [d[0] for d in data]
    print("Progressive mean reward (mean of shuffles):")
    print(
        markdown_table(
            ["method", *names],
            [[m, *(f"{rewards[(d, m)]:.3f}" for d in names)] for m in runners],
        )
    )
    print()
    print("Seconds per 1,000 rounds:")
    print(
        markdown_table(
            ["method", *names],
            [[m, *(f"{seconds[(d, m)]:.3f}" for d in names)] for m in runners],
        )
    )
    print()
    command = "PYTHONPATH=src python benchmarks/bench_bandits.py"
    print(
        f"command: {command} --shuffles {arguments.shuffles} --only {arguments.only} "
        f"--repeat {arguments.repeat}"
    )
    print(
        "VW arguments: "
        + "; ".join(f"{a} --quiet --random_seed <shuffle>" for a in VW_ARGUMENTS.values())
    )
    print(machine_description(["numpy", "scikit-learn", "sqlalchemy", "vowpalwabbit", "mabwiser"]))


if __name__ == "__main__":
    main()
