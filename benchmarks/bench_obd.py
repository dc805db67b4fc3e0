"""Real logged data end to end: the Open Bandit Dataset sample through rlmemory's store.

Setup: ``pip download obp==0.4.1 --no-deps`` fetches the obp wheel (1.3 MB), and the
10,000-round sample ``obp/dataset/obd/random/all/all.csv`` is read straight from the
wheel with ``zipfile``; obp's code is never imported. The sample was logged by a
uniform-random policy over 80 items at 3 positions (propensity 1/80); a click is
reward 1.

Steps: import the rounds into a SQLite store as decisions of agent ``obd`` with their
features, propensities and rewards (``import_logged_decisions``); read them back
(``load_logged_decisions``); estimate the logging policy's value (IPS, SNIPS) against
its observed click rate; train candidates offline with ``learn_from_batch`` on the
older half and estimate their value on the newer half with bootstrap and exact
(Clopper–Pearson) intervals.

Context: one-hot position (3) and user features (3 + 5 + 8 + 8 categories), the 80
user-item affinities, and a constant: 108 features.

Run: PYTHONPATH=src python benchmarks/bench_obd.py [--wheel PATH_TO_obp-0.4.1.whl]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bandit_common import machine_description, markdown_table

from rlmemory.offpolicy import (
    evaluate_policy,
    exact_ips_interval,
    import_logged_decisions,
    learn_from_batch,
    load_logged_decisions,
    make_policy,
    observed_value,
    policy_probabilities,
)

SAMPLE = "obp/dataset/obd/random/all/all.csv"
USER_FEATURES = [f"user_feature_{j}" for j in range(4)]
N_ITEMS = 80


def download_wheel(folder: str) -> Path:
    """``pip download obp==0.4.1 --no-deps`` into ``folder``; return the wheel's path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "obp==0.4.1", "--no-deps", "-d", folder, "-q"],
        check=True,
    )
    return next(Path(folder).glob("obp-0.4.1-*.whl"))


def read_sample(wheel: Path) -> list[dict[str, str]]:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(SAMPLE).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def contexts_of(rows: list[dict[str, str]]) -> np.ndarray:
    """One-hot position and user features, the item affinities, and a constant."""
    columns: list[np.ndarray] = []
    positions = np.array([int(r["position"]) for r in rows])
    columns.append(np.eye(3)[positions - 1])
    for feature in USER_FEATURES:
        values = sorted({r[feature] for r in rows})
        index = {value: k for k, value in enumerate(values)}
        columns.append(np.eye(len(values))[[index[r[feature]] for r in rows]])
    affinities = [[float(r[f"user-item_affinity_{j}"]) for j in range(N_ITEMS)] for r in rows]
    columns.append(np.array(affinities))
    columns.append(np.ones((len(rows), 1)))
    return np.hstack(columns)


def interval(low: float, high: float) -> str:
    return f"{low:.4f} – {high:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="obp-0.4.1 wheel (default: pip download it)")
    parser.add_argument("--bootstrap", type=int, default=2000)
    arguments = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="rlmemory-obd-")
    wheel = arguments.wheel or download_wheel(folder)
    rows = read_sample(wheel)
    contexts = contexts_of(rows)
    actions = [f"item_{int(r['item_id'])}" for r in rows]
    rewards = [float(r["click"]) for r in rows]
    propensities = [float(r["propensity_score"]) for r in rows]

    from rlmemory.store.sql import MemoryDatabase

    with MemoryDatabase(os.path.join(folder, "obd.db")) as store:
        started = time.perf_counter()
        import_logged_decisions(store, "obd", contexts, actions, rewards, propensities)
        import_seconds = time.perf_counter() - started
        item_names = [f"item_{k}" for k in range(N_ITEMS)]
        logged = load_logged_decisions(store, "obd", actions=item_names)

    n = len(logged)
    clicks = int(logged.rewards.sum())
    print(
        f"Open Bandit Dataset sample (random/all): {n} rounds, {clicks} clicks, "
        f"{contexts.shape[1]} features; imported into SQLite in {import_seconds:.1f} s"
    )
    print()

    options = {"n_bootstrap": arguments.bootstrap, "seed": 0}
    uniform = np.full((n, N_ITEMS), 1.0 / N_ITEMS)
    observed = observed_value(logged, **options)
    estimates = evaluate_policy(logged, uniform, estimators=("IPS", "SNIPS"), **options)
    exact = exact_ips_interval(logged, uniform)
    print("Logging policy (uniform random) on all rounds:")
    print(
        markdown_table(
            ["estimate", "value", "95 % bootstrap CI", "95 % exact CI"],
            [
                [
                    "observed click rate",
                    f"{observed.value:.4f}",
                    interval(observed.ci_low, observed.ci_high),
                    interval(*exact),
                ],
                *(
                    [
                        f"{name} of the uniform (logging) policy",
                        f"{e.value:.4f}",
                        interval(e.ci_low, e.ci_high),
                        interval(*exact),
                    ]
                    for name, e in estimates.items()
                ),
            ],
        )
    )
    print()

    half = n // 2
    training, evaluation = logged.subset(slice(0, half)), logged.subset(slice(half, None))
    candidates = {
        "uniform random": ("uniform", {}),
        "greedy ridge (LinUCB alpha 0)": ("linucb", {"alpha": 0.0}),
        "LinUCB alpha 0.5": ("linucb", {"alpha": 0.5}),
        "eps-greedy 0.1": ("epsilon_greedy", {"epsilon": 0.1}),
    }
    table = []
    for label, (policy, policy_options) in candidates.items():
        candidate = make_policy(policy, item_names, seed=0, **policy_options)
        if candidate is None:
            target = np.full((len(evaluation), N_ITEMS), 1.0 / N_ITEMS)
        else:
            learn_from_batch(candidate, training)
            target = policy_probabilities(candidate, evaluation)
        results = evaluate_policy(evaluation, target, estimators=("IPS", "SNIPS"), **options)
        weights = target[np.arange(len(evaluation)), evaluation.actions] / evaluation.propensities
        matched = float(weights.sum() / N_ITEMS)
        matched_clicks = float((weights * evaluation.rewards).sum() / N_ITEMS)
        try:
            exact_text = interval(*exact_ips_interval(evaluation, target))
        except ValueError:
            exact_text = "n/a (weights vary)"
        for name, estimate in results.items():
            table.append(
                [
                    label,
                    name,
                    f"{estimate.value:.4f}",
                    interval(estimate.ci_low, estimate.ci_high),
                    exact_text if name == "IPS" else "",
                    f"{matched:.0f}",
                    f"{matched_clicks:.1f}",
                ]
            )
    observed_half = observed_value(evaluation, **options)
    half_interval = interval(observed_half.ci_low, observed_half.ci_high)
    print(
        f"Candidates trained with learn_from_batch on the older {half} rounds, estimated on "
        f"the newer {len(evaluation)} (observed click rate there "
        f"{observed_half.value:.4f}, 95 % CI {half_interval}):"
    )
    print(
        markdown_table(
            [
                "candidate",
                "estimator",
                "value",
                "95 % bootstrap CI",
                "95 % exact CI",
                "expected matches: sum of pi(logged item)",
                "matched clicks: sum of pi(logged item) x click",
            ],
            table,
        )
    )
    print()
    print("command: PYTHONPATH=src python benchmarks/bench_obd.py")
    print(machine_description(["numpy", "sqlalchemy"]))


if __name__ == "__main__":
    main()
