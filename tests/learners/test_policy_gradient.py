"""PolicyGradientAgent: REINFORCE gradient, sampling, persistence checks, resume and routing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from routing_simulation import SUB_AGENTS, run_routing

from rlmemory.features import OfflineStateExtractor
from rlmemory.learners.base import Observation
from rlmemory.learners.policy_gradient import (
    PolicyGradientAgent,
    batch_advantages,
    reinforce_gradient,
    reinforce_objective,
)
from rlmemory.rewards import RewardSystem
from rlmemory.store.sql import MemoryDatabase

ACTIONS = ["search_agent", "analysis_agent", "coding_agent"]
extractor16 = OfflineStateExtractor(dimension=16)


@pytest.fixture
def db(tmp_path):
    with MemoryDatabase(tmp_path / "m.db") as database:
        yield database


def make_agent(db, actions=ACTIONS, extractor=extractor16, **options):
    return PolicyGradientAgent("router", None, db, None, extractor, list(actions), **options)


def features(text="Write a Python function that sorts log lines"):
    return extractor16.extract(text).features


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(11)
    weights = rng.normal(size=(4, 7))
    steps = rng.normal(size=(6, 7))
    actions = rng.integers(0, 4, size=6)
    advantages = rng.normal(size=6)
    analytic = reinforce_gradient(weights, steps, actions, advantages)
    numeric = np.zeros_like(weights)
    step = 1e-6
    for index in np.ndindex(*weights.shape):
        up, down = weights.copy(), weights.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (
            reinforce_objective(up, steps, actions, advantages)
            - reinforce_objective(down, steps, actions, advantages)
        ) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_update_moves_weights_by_learning_rate_times_the_gradient_of_normalised_advantages(db):
    agent = make_agent(db, learning_rate=0.05)
    rng = np.random.default_rng(2)
    start = rng.normal(size=(3, 16))
    db.save_policy_params(
        "router",
        {
            "format": 1,
            "feature_dimension": 16,
            "actions": ACTIONS,
            "weights": start.tolist(),
            "baseline": 0.5,
            "updates": 0,
            "pending": [],
        },
    )
    agent.reload()
    texts = ["find jazz papers", "mean of 3, 4, 5", "fix this bug", "hello"]
    taken = [0, 1, 2, 2]
    rewards = np.array([0.75, 0.45, 0.75, 0.45])
    for text, action, reward in zip(texts, taken, rewards, strict=True):
        agent.record_step(features(text), ACTIONS[action], reward)
    assert agent.update_policy() == 4
    normalised = (rewards - rewards.mean()) / rewards.std()
    expected = start + 0.05 * reinforce_gradient(
        start, np.array([features(t) for t in texts]), np.array(taken), normalised
    )
    np.testing.assert_allclose(agent.weights, expected)
    assert agent.pending_steps == []


def test_a_single_step_learns_from_reward_minus_the_running_baseline(db):
    agent = make_agent(db, baseline_rate=0.1)
    x = features()
    agent.record_step(x, "coding_agent", 0.75)
    agent.update_policy()
    assert agent.action_probabilities(x)["coding_agent"] > 1 / 3
    assert agent.baseline == pytest.approx(0.5 + 0.1 * (0.75 - 0.5))
    agent.record_step(x, "search_agent", 0.45)
    agent.update_policy()
    assert agent.action_probabilities(x)["search_agent"] < 1 / 3


def test_equal_rewards_in_a_batch_fall_back_to_the_running_baseline():
    assert batch_advantages(np.array([0.75, 0.75, 0.75]), 0.5).tolist() == [0.25] * 3
    advantages = batch_advantages(np.array([0.75, 0.45, 0.6]), 0.5)
    assert advantages.mean() == pytest.approx(0.0)
    assert advantages.std() == pytest.approx(1.0)


def test_update_without_pending_steps_writes_nothing(db):
    agent = make_agent(db)
    assert agent.update_policy() == 0
    assert db.get_policy_params("router") is None


def test_learn_updates_the_policy_every_policy_update_every_steps(db):
    agent = make_agent(db, policy_update_every=3)
    x = Observation(state="s", features=features())
    for step in range(7):
        agent.learn(x, ACTIONS[step % 3], 0.45 + 0.3 * (step % 2))
    assert agent.updates == 2
    assert len(agent.pending_steps) == 1
    assert db.get_policy_params("router")["updates"] == 2


def test_select_action_draws_from_the_seeded_generator(db):
    agent_a, agent_b = make_agent(db, seed=4), make_agent(db, seed=4)
    sequence_a = [agent_a.select_action(features()) for _ in range(40)]
    assert sequence_a == [agent_b.select_action(features()) for _ in range(40)]
    assert set(sequence_a) == set(ACTIONS)


def test_parameters_are_stored_with_their_dimension_and_actions(db):
    agent = make_agent(db)
    agent.record_step(features(), "coding_agent", 0.75)
    stored = db.get_policy_params("router")
    assert stored["feature_dimension"] == 16
    assert stored["actions"] == ACTIONS
    assert np.asarray(stored["weights"]).shape == (3, 16)
    assert stored["pending"][0]["action"] == "coding_agent"


def test_the_dimension_comes_from_the_extractor(db):
    agent = make_agent(db, extractor=OfflineStateExtractor(dimension=40))
    assert agent.weights.shape == (3, 40)
    with pytest.raises(ValueError, match=r"shape \(40,\).*got \(16,\)"):
        agent.select_action(features())


def test_a_stored_policy_of_another_dimension_is_a_clear_error(db):
    make_agent(db).record_step(features(), "coding_agent", 0.75)
    with pytest.raises(ValueError, match="feature dimension 16, but the state extractor gives 32"):
        make_agent(db, extractor=OfflineStateExtractor(dimension=32))


def test_a_stored_action_missing_from_the_given_ones_is_a_clear_error(db):
    make_agent(db).record_step(features(), "coding_agent", 0.75)
    with pytest.raises(ValueError, match=r"lacks \['analysis_agent'\]"):
        make_agent(db, actions=["search_agent", "coding_agent"])


def test_given_actions_may_reorder_and_extend_the_stored_ones(db):
    agent = make_agent(db, learning_rate=0.5)
    agent.record_step(features(), "coding_agent", 0.75)
    agent.update_policy()
    stored = dict(zip(agent.actions, agent.weights, strict=True))
    reordered = make_agent(db, actions=["coding_agent", "math_agent", *ACTIONS[:2]])
    rows = dict(zip(reordered.actions, reordered.weights, strict=True))
    for action in ACTIONS:
        np.testing.assert_array_equal(rows[action], stored[action])
    np.testing.assert_array_equal(rows["math_agent"], np.zeros(16))


def test_parameters_in_a_foreign_format_are_refused(db):
    db.save_policy_params("router", {"weights": [[0.0] * 10] * 3})
    with pytest.raises(ValueError, match="not in rlmemory's policy format"):
        make_agent(db)


def test_a_stored_pending_step_of_the_wrong_shape_is_refused(db):
    make_agent(db).record_step(features(), "coding_agent", 0.75)
    stored = db.get_policy_params("router")
    stored["pending"][0]["features"] = [0.0] * 15
    db.save_policy_params("router", stored)
    with pytest.raises(ValueError, match=r"pending step with features of shape \(15,\)"):
        make_agent(db)


def test_add_action_appends_a_stored_zero_row(db):
    agent = make_agent(db, learning_rate=0.5)
    agent.record_step(features(), "coding_agent", 0.75)
    agent.update_policy()
    before = agent.weights
    agent.add_action("math_agent")
    agent.add_action("math_agent")
    np.testing.assert_array_equal(agent.weights[:3], before)
    np.testing.assert_array_equal(agent.weights[3], np.zeros(16))
    assert db.get_policy_params("router")["actions"] == [*ACTIONS, "math_agent"]
    assert make_agent(db, actions=[*ACTIONS, "math_agent"]).weights.shape == (4, 16)


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        ({"features": np.zeros(5)}, ValueError, "shape"),
        ({"features": np.full(16, np.nan)}, ValueError, "NaN"),
        ({"features": "abc"}, TypeError, "features"),
    ],
)
def test_a_bad_step_is_rejected_and_nothing_is_stored(db, step, error, message):
    agent = make_agent(db)
    agent.record_step(features(), "coding_agent", 0.75)
    stored = db.get_policy_params("router")
    arguments = {"features": features(), "action": "search_agent", "reward": 0.5, **step}
    with pytest.raises(error, match=message):
        agent.record_step(arguments["features"], arguments["action"], arguments["reward"])
    assert db.get_policy_params("router") == stored
    assert len(agent.pending_steps) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": math.inf}, "learning_rate"),
        ({"policy_update_every": 0}, "policy_update_every"),
        ({"baseline_rate": 2.0}, "baseline_rate"),
        ({"actions": []}, "at least one action"),
    ],
)
def test_bad_settings_are_rejected(db, options, message):
    with pytest.raises(ValueError, match=message):
        make_agent(db, **options)


def test_an_extractor_without_a_dimension_is_a_type_error(db):
    with pytest.raises(TypeError, match="dimension"):
        make_agent(db, extractor=object())


def test_reload_forgets_steps_rolled_back_by_the_store(db):
    agent = make_agent(db)
    agent.record_step(features(), "coding_agent", 0.75)
    with pytest.raises(RuntimeError), db.transaction():
        agent.record_step(features(), "search_agent", 0.45)
        raise RuntimeError("the interaction could not be stored")
    agent.reload()
    assert [step.action for step in agent.pending_steps] == ["coding_agent"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_routing_is_learned_within_400_requests(tmp_path, seed):
    extractor = OfflineStateExtractor()
    with MemoryDatabase(tmp_path / "m.db") as db:
        agent = PolicyGradientAgent(
            "router", None, db, RewardSystem(db), extractor, list(SUB_AGENTS)
        )
        routed_right = run_routing(agent, extractor, RewardSystem(db), requests=400, seed=seed)
    assert np.mean(routed_right[-100:]) >= 0.70
