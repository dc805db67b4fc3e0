"""SquareCBAgent: inverse-gap weighting, exact propensities, sparse persistence, exact resume."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rlmemory.features import SparseVector, TextFeaturizer
from rlmemory.learners.base import Observation
from rlmemory.learners.squarecb import DIMENSION_KEY, ROUNDS_KEY, SquareCBAgent

ACTIONS = ["search", "analysis", "code"]
REQUESTS = {
    "search": "find the latest news about {}",
    "analysis": "compute the median and variance of {}",
    "code": "fix the python traceback in {}",
}
TOPICS = ["bees", "tea", "solar panels", "football", "compilers"]


def stream(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    kinds = [ACTIONS[k] for k in rng.integers(0, len(ACTIONS), n)]
    return [(kind, REQUESTS[kind].format(TOPICS[rng.integers(len(TOPICS))])) for kind in kinds]


def test_it_routes_text_to_the_right_specialist() -> None:
    featurizer = TextFeaturizer(dimension=2**16)
    learner = SquareCBAgent("router", None, ACTIONS, seed=1)
    right = []
    for kind, text in stream(600):
        action = learner.select_action(featurizer.sparse(text))
        learner.update(featurizer.sparse(text), action, float(action == kind))
        right.append(action == kind)
    assert np.mean(right[-200:]) > 0.9
    for kind, text in stream(30, seed=5):
        probabilities = learner.action_probabilities(featurizer.sparse(text))
        assert max(probabilities, key=probabilities.get) == kind


def test_probabilities_are_the_inverse_gap_weights_and_the_propensity_is_exact() -> None:
    learner = SquareCBAgent("router", None, ACTIONS, gamma=4.0, gamma_exponent=0.5)
    for _ in range(3):
        learner.update([1.0, 0.5], "search", 1.0)
        learner.update([1.0, 0.5], "analysis", 0.2)
    scores = np.array(list(learner.predictions([1.0, 0.5]).values()))
    gamma = 4.0 * (learner.rounds + 1) ** 0.5
    expected = 1.0 / (3 + gamma * (scores.max() - scores))
    expected[0] = 1.0 - expected[1:].sum()
    probabilities = learner.action_probabilities([1.0, 0.5])
    assert list(probabilities.values()) == pytest.approx(expected.tolist(), abs=1e-15)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-15)
    counts = dict.fromkeys(ACTIONS, 0)
    for draw in range(4000):
        choice = learner.choose(Observation("s", np.array([1.0, 0.5])), np.random.default_rng(draw))
        assert choice.propensity == probabilities[choice.action]
        assert choice.scores == learner.predictions([1.0, 0.5])
        counts[choice.action] += 1
    for action in ACTIONS:
        assert counts[action] / 4000 == pytest.approx(probabilities[action], abs=0.025)


def test_tied_best_actions_share_the_remaining_probability() -> None:
    learner = SquareCBAgent("router", None, ACTIONS)
    assert learner.action_probabilities([1.0]) == pytest.approx(dict.fromkeys(ACTIONS, 1 / 3))
    learner.update([1.0], "code", -1.0)
    probabilities = learner.action_probabilities([1.0])
    assert probabilities["search"] == probabilities["analysis"] > probabilities["code"]
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-15)


def test_an_update_writes_only_the_weights_it_touched(make_store: Any) -> None:
    featurizer = TextFeaturizer(dimension=2**18)
    vector = featurizer.sparse("compute the median")
    with make_store() as store:
        learner = SquareCBAgent("router", store, ACTIONS)
        learner.update(vector, "analysis", 1.0)
        stored = store.get_arrays("router")
    columns = [*vector.indices.tolist(), 2**18]
    expected = {f"s/{i}" for i in columns} | {f"a/analysis/{i}" for i in columns}
    assert set(stored) == expected | {ROUNDS_KEY, DIMENSION_KEY}
    assert stored[ROUNDS_KEY].tolist() == [1]


def test_a_learner_built_again_on_the_store_resumes_exactly(make_store: Any) -> None:
    featurizer = TextFeaturizer(dimension=2**16)
    requests = stream(120, seed=3)
    uninterrupted = SquareCBAgent("router", None, ACTIONS, gamma=5.0)
    decisions = []
    for index, (kind, text) in enumerate(requests):
        rng = np.random.default_rng([7, index])
        choice = uninterrupted.choose(Observation("s", featurizer.sparse(text)), rng)
        uninterrupted.update(featurizer.sparse(text), choice.action, float(choice.action == kind))
        decisions.append((choice.action, choice.propensity))
    resumed = []
    for start in range(0, len(requests), 25):
        with make_store() as store:
            learner = SquareCBAgent("router", store, ACTIONS, gamma=5.0)
            for index in range(start, min(start + 25, len(requests))):
                kind, text = requests[index]
                rng = np.random.default_rng([7, index])
                choice = learner.choose(Observation("s", featurizer.sparse(text)), rng)
                learner.update(featurizer.sparse(text), choice.action, float(choice.action == kind))
                resumed.append((choice.action, choice.propensity))
    assert resumed == decisions
    with make_store() as store:
        reloaded = SquareCBAgent("router", store, ACTIONS, gamma=5.0)
    assert reloaded.rounds == len(requests)
    for _, text in requests[:20]:
        assert reloaded.predictions(featurizer.sparse(text)) == uninterrupted.predictions(
            featurizer.sparse(text)
        )


def test_a_failed_write_leaves_memory_as_stored(make_store: Any) -> None:
    with make_store() as store:
        learner = SquareCBAgent("router", store, ACTIONS)
        learner.update([1.0, 0.0], "search", 1.0)
        before = learner.predictions([1.0, 0.0])
        with pytest.raises(RuntimeError, match="boom"), store.transaction():
            learner.update([1.0, 0.0], "search", 1.0)
            raise RuntimeError("boom")
        learner.reload()
        assert learner.predictions([1.0, 0.0]) == before
        assert learner.rounds == 1


def test_dense_and_sparse_features_learn_the_same() -> None:
    dense = SquareCBAgent("router", None, ACTIONS)
    sparse = SquareCBAgent("router", None, ACTIONS)
    x = np.array([0.0, 2.0, 0.0, -1.0])
    for reward in (1.0, 0.5, 0.0):
        dense.update(x, "code", reward)
        sparse.update(SparseVector.from_dense(x), "code", reward)
    assert dense.predictions(x) == sparse.predictions(SparseVector.from_dense(x))


def test_a_new_action_starts_fresh_and_the_others_keep_what_they_learned(make_store: Any) -> None:
    with make_store() as store:
        learner = SquareCBAgent("router", store, ["search", "code"])
        for _ in range(5):
            learner.update([1.0, 1.0], "search", 1.0)
        before = learner.predictions([1.0, 1.0])
        learner.add_action("analysis")
        after = learner.predictions([1.0, 1.0])
        assert after["search"] == before["search"]
        assert after["analysis"] == before["code"]
        learner.update([1.0, 1.0], "analysis", 0.3)
        again = SquareCBAgent("router", store, ["search", "code", "analysis"])
        assert again.predictions([1.0, 1.0]) == learner.predictions([1.0, 1.0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gamma": 0.0}, "gamma must be a positive"),
        ({"gamma_exponent": -1.0}, "gamma_exponent"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"dimension": 0}, "dimension"),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        SquareCBAgent("router", None, ACTIONS, **options)


def test_bad_input_is_refused_and_learns_nothing(make_store: Any) -> None:
    with make_store() as store:
        learner = SquareCBAgent("router", store, ACTIONS, dimension=2)
        with pytest.raises(ValueError, match="length 3"):
            learner.update([1.0, 0.0, 0.0], "search", 1.0)
        with pytest.raises(ValueError, match="unknown action 'nope'"):
            learner.update([1.0, 0.0], "nope", 1.0)
        with pytest.raises(ValueError, match="reward"):
            learner.update([1.0, 0.0], "search", float("inf"))
        with pytest.raises(ValueError, match="NaN or infinite"):
            learner.action_probabilities([float("nan"), 0.0])
        assert store.get_arrays("router") == {}
        learner.update([1.0, 0.0], "search", 1.0)
        with pytest.raises(ValueError, match="dimension 2 in the store"):
            SquareCBAgent("router", store, ACTIONS, dimension=5)


def test_reading_hundreds_of_named_arrays_returns_exactly_those(make_store: Any) -> None:
    """SquareCB re-reads every coordinate it updates by key; the SQL store reads them in
    chunks of ``key IN (...)``, which must neither drop nor invent keys."""
    with make_store() as store:
        store.save_arrays("router", {f"s/{i}": np.array([float(i), 1.0]) for i in range(1200)})
        wanted = [f"s/{i}" for i in range(0, 1400, 2)]
        found = store.get_arrays("router", wanted)
    assert sorted(found) == sorted(f"s/{i}" for i in range(0, 1200, 2))
    assert all(found[f"s/{i}"].tolist() == [float(i), 1.0] for i in range(0, 1200, 2))
