"""Linear contextual bandits: ridge math, persistence, restart, probabilities, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlmemory.learners.bandits import (
    EpsilonGreedyAgent,
    LinUCBAgent,
    ThompsonSamplingAgent,
    _normal_cdf,
)
from rlmemory.learners.base import Observation

ACTIONS = ["search", "analysis", "code"]
LEARNERS = [
    pytest.param(LinUCBAgent, {"alpha": 0.7}, id="linucb"),
    pytest.param(ThompsonSamplingAgent, {"v": 0.3}, id="thompson"),
    pytest.param(EpsilonGreedyAgent, {"epsilon": 0.2}, id="epsilon_greedy"),
    pytest.param(LinUCBAgent, {"alpha": 0.7, "prior_mean": 0.5}, id="linucb_prior_mean"),
]


def logged_rounds(n: int, dimension: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    contexts = rng.normal(size=(n, dimension))
    actions = [ACTIONS[k] for k in rng.integers(0, len(ACTIONS), n)]
    rewards = rng.random(n)
    return contexts, actions, rewards


def trained(learner_class, options, db=None, name="router", n=60):
    learner = learner_class(name, db, list(ACTIONS), seed=3, **options)
    for x, action, reward in zip(*logged_rounds(n), strict=True):
        learner.update(x, action, reward)
    return learner


@pytest.mark.parametrize(("learner_class", "options"), LEARNERS)
def test_updates_match_the_closed_form_ridge_solution(learner_class, options):
    contexts, actions, rewards = logged_rounds(80)
    learner = learner_class("router", None, list(ACTIONS), ridge=2.0, **options)
    for x, action, reward in zip(contexts, actions, rewards, strict=True):
        learner.update(x, action, reward)
    statistics = learner.statistics()
    for action in ACTIONS:
        rows = np.array([a == action for a in actions])
        A = 2.0 * np.eye(4) + contexts[rows].T @ contexts[rows]
        b = contexts[rows].T @ (rewards[rows] - learner.prior_mean)
        np.testing.assert_allclose(statistics[action]["A_inv"], np.linalg.inv(A), atol=1e-10)
        np.testing.assert_allclose(statistics[action]["theta"], np.linalg.solve(A, b), atol=1e-10)
        assert int(statistics[action]["count"]) == rows.sum()


def test_weighted_updates_match_weighted_ridge_and_batches_match_single_updates():
    contexts, actions, rewards = logged_rounds(50)
    weights = np.random.default_rng(1).uniform(0.2, 3.0, 50)
    one_by_one = LinUCBAgent("router", None, list(ACTIONS))
    for x, action, reward, weight in zip(contexts, actions, rewards, weights, strict=True):
        one_by_one.update(x, action, reward, weight=weight)
    batch = LinUCBAgent("router", None, list(ACTIONS))
    batch.update_batch(contexts, actions, rewards, weights)
    rows = np.array([a == "code" for a in actions])
    A = np.eye(4) + (contexts[rows] * weights[rows, None]).T @ contexts[rows]
    b = contexts[rows].T @ (weights[rows] * rewards[rows])
    np.testing.assert_allclose(
        batch.statistics()["code"]["theta"], np.linalg.solve(A, b), atol=1e-10
    )
    for action in ACTIONS:
        for key in ("A_inv", "b", "count"):
            assert np.array_equal(
                batch.statistics()[action][key], one_by_one.statistics()[action][key]
            )


def test_an_update_appends_one_small_step_and_writes_no_statistics(store):
    learner = LinUCBAgent("router", store, list(ACTIONS))
    learner.update([1.0, 0.0], "code", 1.0)
    learner.update([0.0, 1.0], "search", 0.5, weight=2.0)
    assert store.get_arrays("router") == {}
    steps = [(step.key, step.values.tolist()) for step in store.get_learner_steps("router")]
    assert steps == [("code", [1.0, 1.0, 1.0, 0.0]), ("search", [0.5, 2.0, 0.0, 1.0])]


def test_a_snapshot_writes_the_changed_actions_and_drops_the_steps_it_covers(make_store):
    store = make_store()
    learner = LinUCBAgent("router", store, list(ACTIONS), snapshot_every=3)
    learner.update([1.0, 0.0], "code", 1.0)
    learner.update([1.0, 1.0], "code", 0.0)
    assert store.get_arrays("router") == {}
    learner.update([0.0, 1.0], "search", 0.5)
    stored = store.get_arrays("router")
    assert set(stored) == {"code/ridge", "search/ridge", "steps_through"}
    (marker,) = store.get_learner_steps("router")  # the steps went into the snapshot
    assert (marker.key, marker.values.tolist()) == ("snapshot", [stored["steps_through"][0]])
    learner.update([0.5, 0.5], "analysis", 1.0)
    learner.close()
    assert set(store.get_arrays("router")) == {*stored, "analysis/ridge"}
    assert [step.key for step in store.get_learner_steps("router")] == ["snapshot"]
    reopened = LinUCBAgent("router", make_store(), list(ACTIONS))
    for action in ACTIONS:
        for key in ("A_inv", "b", "theta", "count"):
            assert reopened.statistics()[action][key].tobytes() == (
                learner.statistics()[action][key].tobytes()
            )


@pytest.mark.parametrize("snapshot_every", [1, 4, 1000])
def test_loading_replays_the_steps_after_the_snapshot_bit_for_bit(make_store, snapshot_every):
    learner = LinUCBAgent("router", make_store(), list(ACTIONS), snapshot_every=snapshot_every)
    rng = np.random.default_rng(3)
    for _ in range(15):
        learner.update(rng.normal(size=3), ACTIONS[rng.integers(3)], float(rng.random()))
    reopened = LinUCBAgent("router", make_store(), list(ACTIONS), snapshot_every=snapshot_every)
    for action in ACTIONS:
        for key in ("A_inv", "b", "theta", "count"):
            assert reopened.statistics()[action][key].tobytes() == (
                learner.statistics()[action][key].tobytes()
            )


def test_statistics_written_by_the_old_layout_load_and_keep_learning(make_store):
    """A store of rlmemory <= 0.x: per-action snapshots, no steps_through, no steps."""
    from rlmemory.learners._ridge import RidgeArms, state_key

    arms = RidgeArms(2, 1.0)
    for _ in ACTIONS:
        arms.add_action()
    arms.update(0, np.array([1.0, 0.5]), 1.0)
    arms.update(1, np.array([0.0, 1.0]), 0.25)
    store = make_store()
    store.save_arrays("router", {state_key(a): arms.state_of(k) for k, a in enumerate(ACTIONS)})
    learner = LinUCBAgent("router", store, list(ACTIONS))
    assert learner.statistics()["search"]["A_inv"].tobytes() == arms.A_inv[0].tobytes()
    learner.update([1.0, 1.0], "search", 0.5)
    arms.update(0, np.array([1.0, 1.0]), 0.5)
    reopened = LinUCBAgent("router", make_store(), list(ACTIONS))
    assert reopened.statistics()["search"]["A_inv"].tobytes() == arms.A_inv[0].tobytes()
    assert int(reopened.statistics()["search"]["count"]) == 2


def test_a_learner_that_missed_another_processes_snapshot_reloads(make_store):
    first = LinUCBAgent("router", make_store(), list(ACTIONS), snapshot_every=2)
    second = LinUCBAgent("router", make_store(), list(ACTIONS), snapshot_every=2)
    first.update([1.0, 0.0], "code", 1.0)
    first.update([1.0, 0.0], "code", 1.0)  # snapshot: the two steps are deleted
    second.update([1.0, 0.0], "code", 1.0)
    assert int(second.statistics()["code"]["count"]) == 3
    first.update([0.0, 1.0], "search", 0.0)
    assert int(first.statistics()["code"]["count"]) == 3


def test_adding_an_action_keeps_what_was_learned_for_the_others(make_store):
    learner = trained(LinUCBAgent, {"alpha": 0.5}, db=make_store())
    learned = learner.statistics()
    learner.add_action("writer")
    assert learner.actions == [*ACTIONS, "writer"]
    for action in ACTIONS:
        assert np.array_equal(learner.statistics()[action]["A_inv"], learned[action]["A_inv"])
    assert np.array_equal(learner.statistics()["writer"]["A_inv"], np.eye(4))
    learner.update([1.0, 2.0, 3.0, 4.0], "writer", 1.0)
    reopened = LinUCBAgent("router", make_store(), [*ACTIONS, "writer"])
    for action in [*ACTIONS, "writer"]:
        assert np.array_equal(
            reopened.statistics()[action]["A_inv"], learner.statistics()[action]["A_inv"]
        )


def test_an_action_added_again_after_a_restart_gets_its_stored_statistics(make_store):
    learner = LinUCBAgent("router", make_store(), ["a", "b"])
    learner.add_action("c")
    learner.update([1.0, 1.0], "c", 1.0)
    restarted = LinUCBAgent("router", make_store(), ["a", "b"])
    restarted.add_action("c")
    assert int(restarted.statistics()["c"]["count"]) == 1


@pytest.mark.parametrize(("learner_class", "options"), LEARNERS)
def test_probability_matrix_matches_the_probabilities_of_each_context(learner_class, options):
    learner = trained(learner_class, options, n=30)
    contexts = np.random.default_rng(8).normal(size=(25, 4))
    contexts[3] = 0.0  # every action tied for LinUCB and epsilon-greedy
    matrix = learner.probability_matrix(contexts)
    for row, x in zip(matrix, contexts, strict=True):
        expected = learner.action_probabilities(x)
        np.testing.assert_allclose(row, [expected[a] for a in ACTIONS], atol=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        learner.probability_matrix([[1.0, 2.0, 3.0, float("nan")]])


def test_linucb_splits_probability_evenly_between_tied_actions():
    learner = LinUCBAgent("router", None, list(ACTIONS), seed=0)
    assert learner.action_probabilities([1.0, 2.0]) == dict.fromkeys(ACTIONS, 1 / 3)
    chosen = {learner.select_action([1.0, 2.0]) for _ in range(200)}
    assert chosen == set(ACTIONS)


def test_epsilon_greedy_probabilities_are_exact():
    learner = EpsilonGreedyAgent("router", None, list(ACTIONS), epsilon=0.3, prior_mean=0.0)
    learner.update([1.0], "analysis", 1.0)
    probabilities = learner.action_probabilities([1.0])
    assert probabilities["analysis"] == pytest.approx(0.7 + 0.1)
    assert probabilities["search"] == pytest.approx(0.1)


def test_epsilon_greedy_is_optimistic_by_default_so_a_poor_payer_is_left_for_untried_ones():
    learner = EpsilonGreedyAgent("router", None, list(ACTIONS), epsilon=0.3)
    learner.update([1.0], "analysis", 0.45)
    probabilities = learner.action_probabilities([1.0])
    assert probabilities["analysis"] == pytest.approx(0.1)
    assert probabilities["search"] == pytest.approx(0.1 + 0.7 / 2)


@pytest.mark.parametrize(
    ("learner_class", "options"),
    [(LinUCBAgent, {"alpha": 0.0}), (ThompsonSamplingAgent, {}), (EpsilonGreedyAgent, {})],
)
def test_prior_mean_is_the_prediction_of_an_untried_action(learner_class, options):
    learner = learner_class("router", None, list(ACTIONS), prior_mean=0.8, **options)
    learner.update([1.0, 2.0], "code", 0.2)
    choice = learner.choose(Observation("s", np.array([1.0, 2.0])), np.random.default_rng(0))
    # ridge 1, one row x: theta . x = (0.2 - 0.8) |x|^2 / (1 + |x|^2) = -0.6 * 5 / 6
    assert choice.scores == pytest.approx({"search": 0.8, "analysis": 0.8, "code": 0.3})


def test_prior_mean_shifts_every_prediction_and_data_pulls_away_from_it():
    plain = EpsilonGreedyAgent("router", None, ["a", "b"], prior_mean=0.0)
    shifted = EpsilonGreedyAgent("router", None, ["a", "b"], prior_mean=1.0)
    for learner in (plain, shifted):
        learner.update([1.0], "a", 0.5)
    plain_scores = plain.choose(Observation("s", np.array([1.0])), np.random.default_rng(0))
    shifted_scores = shifted.choose(Observation("s", np.array([1.0])), np.random.default_rng(0))
    assert plain_scores.scores == pytest.approx({"a": 0.25, "b": 0.0})
    assert shifted_scores.scores == pytest.approx({"a": 0.75, "b": 1.0})
    assert shifted.action_probabilities([1.0]) == pytest.approx({"a": 0.025, "b": 0.975})


def test_a_non_zero_prior_mean_is_stored_and_a_mismatch_on_load_is_refused(store):
    learner = EpsilonGreedyAgent("router", store, list(ACTIONS), prior_mean=1.0)
    learner.update([1.0, 2.0], "code", 0.5)
    stored = store.get_arrays("router")
    assert set(stored) == {"prior_mean"}  # the statistics are in the step log
    with pytest.raises(ValueError, match=r"prior_mean 1\.0 in the store, but prior_mean 0\.0"):
        EpsilonGreedyAgent("router", store, list(ACTIONS), prior_mean=0.0)
    assert all(np.array_equal(store.get_arrays("router")[k], v) for k, v in stored.items())
    reopened = EpsilonGreedyAgent("router", store, list(ACTIONS), prior_mean=1.0)
    assert int(reopened.statistics()["code"]["count"]) == 1


def test_statistics_learned_with_prior_mean_zero_are_refused_under_another_prior(store):
    LinUCBAgent("router", store, list(ACTIONS)).update([1.0, 2.0], "code", 0.5)
    assert store.get_arrays("router") == {}  # no prior_mean key: 0 is the default
    with pytest.raises(ValueError, match=r"pass prior_mean=0\.0 to use them"):
        EpsilonGreedyAgent("router", store, list(ACTIONS))
    assert EpsilonGreedyAgent("router", store, list(ACTIONS), prior_mean=0.0).dimension == 2


def test_thompson_sampling_prefers_the_better_action_with_calibrated_probability():
    learner = ThompsonSamplingAgent("router", None, ["good", "bad"], v=1.0)
    for _ in range(3):
        learner.update([1.0], "good", 1.0)
        learner.update([1.0], "bad", 0.0)
    # means 0.75 and 0, standard deviations 0.5 each: P(good) = Phi(0.75 / sqrt(0.5)).
    expected = 0.5 * (1 + math.erf(0.75 / np.sqrt(0.5) / np.sqrt(2)))
    assert learner.action_probabilities([1.0])["good"] == pytest.approx(expected, abs=1e-4)


def test_the_normal_cdf_approximation_is_accurate():
    t = np.linspace(-9, 9, 2001)
    exact = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in t])
    np.testing.assert_allclose(_normal_cdf(t), exact, rtol=2e-7, atol=1e-300)


def test_thompson_probabilities_match_a_fine_grid_integral_on_random_cases():
    z = np.linspace(-9, 9, 36_001)
    density = (z[1] - z[0]) * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    rng = np.random.default_rng(1)
    for _ in range(40):
        n_actions = int(rng.integers(2, 6))
        means = rng.normal(size=n_actions) * rng.choice([0.01, 0.1, 1.0])
        spreads = 0.1 * np.exp(rng.normal(size=n_actions) * rng.choice([0.1, 1.0, 2.0]))
        for k in range(n_actions):
            others = np.arange(n_actions) != k
            values = means[k] + spreads[k] * z[None, :]
            cdf = _normal_cdf((values - means[others][:, None]) / spreads[others][:, None])
            reference = float(cdf.prod(axis=0) @ density)
            computed = ThompsonSamplingAgent._raw_probability(k, means, spreads)
            assert computed == pytest.approx(reference, abs=1e-3)


@pytest.mark.parametrize(
    ("features", "action", "reward", "message"),
    [
        ([1.0, 2.0, 3.0], "code", 1.0, "length 3"),
        ([1.0, float("nan")], "code", 1.0, "NaN"),
        ([[1.0, 2.0]], "code", 1.0, "1-D"),
    ],
)
def test_bad_updates_are_refused_and_nothing_is_stored(store, features, action, reward, message):
    learner = LinUCBAgent("router", store, list(ACTIONS))
    learner.update([0.5, 0.5], "search", 1.0)
    stored = store.get_arrays("router")
    before = learner.statistics()
    with pytest.raises(ValueError, match=message):
        learner.update(features, action, reward)
    after = store.get_arrays("router")
    assert set(after) == set(stored)
    assert all(np.array_equal(after[key], stored[key]) for key in stored)
    for name in ACTIONS:
        assert np.array_equal(learner.statistics()[name]["A_inv"], before[name]["A_inv"])


def test_a_bad_row_in_a_batch_stores_nothing(store):
    learner = LinUCBAgent("router", store, list(ACTIONS))
    with pytest.raises(ValueError, match="unknown action"):
        learner.update_batch([[1.0, 0.0], [0.0, 1.0]], ["code", "nobody"], [1.0, 0.0])
    assert store.get_arrays("router") == {}


def test_stored_dimension_conflicting_with_the_requested_one_is_an_error(store):
    LinUCBAgent("router", store, list(ACTIONS)).update([1.0, 2.0, 3.0], "code", 1.0)
    with pytest.raises(ValueError, match="dimension 3"):
        LinUCBAgent("router", store, list(ACTIONS), dimension=5)


def test_bad_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match="unique"):
        LinUCBAgent("router", None, ["a", "a"])
    with pytest.raises(ValueError, match="alpha"):
        LinUCBAgent("router", None, ["a"], alpha=float("nan"))
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonGreedyAgent("router", None, ["a"], epsilon=1.5)
    with pytest.raises(ValueError, match="at least one action"):
        ThompsonSamplingAgent("router", None, [])
    for bad in (float("nan"), float("inf"), "1.0", True):
        with pytest.raises(ValueError, match="prior_mean"):
            LinUCBAgent("router", None, ["a"], prior_mean=bad)


def test_a_rollback_restores_statistics_held_in_the_step_log(make_store):
    """Versions capture the steps not yet snapshotted; a rollback puts them back."""
    from rlmemory.ops.versions import checkpoint, rollback

    store = make_store()
    learner = LinUCBAgent("router", store, list(ACTIONS), snapshot_every=3)
    rng = np.random.default_rng(8)
    for _ in range(5):  # one snapshot after 3 steps, 2 steps in the log
        learner.update(rng.normal(size=2), ACTIONS[rng.integers(3)], float(rng.random()))
    kept = {a: learner.statistics()[a]["A_inv"].tobytes() for a in ACTIONS}
    version = checkpoint(store, "router")
    for _ in range(4):
        learner.update(rng.normal(size=2), ACTIONS[rng.integers(3)], float(rng.random()))
    rollback(store, "router", version)
    learner.reload()
    assert {a: learner.statistics()[a]["A_inv"].tobytes() for a in ACTIONS} == kept
    reopened = LinUCBAgent("router", make_store(), list(ACTIONS))
    assert {a: reopened.statistics()[a]["A_inv"].tobytes() for a in ACTIONS} == kept
