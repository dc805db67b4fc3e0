"""QLearningAgent: updates, exploration, exact propensities, persistence and routing."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from routing_simulation import SUB_AGENTS, run_routing

from rlmemory.features import OfflineStateExtractor
from rlmemory.learners.base import Observation
from rlmemory.learners.qlearning import QLearningAgent
from rlmemory.rewards import RewardSystem
from rlmemory.store.sql import MemoryDatabase

ACTIONS = ["search_agent", "analysis_agent", "coding_agent"]
STATE = "coding:short:code"


@pytest.fixture
def db(tmp_path):
    with MemoryDatabase(tmp_path / "m.db") as database:
        yield database


def make_agent(db, actions=ACTIONS, **options):
    return QLearningAgent("router", None, db, None, None, list(actions), **options)


def observation(state=STATE):
    return Observation(state=state, features=np.zeros(1))


def test_q_table_is_loaded_from_the_store_at_init(db):
    db.save_q_table("router", {STATE: {"coding_agent": 0.7, "search_agent": 0.2}})
    agent = make_agent(db)
    assert agent.get_q_values(STATE) == {
        "search_agent": 0.2,
        "analysis_agent": 1.0,
        "coding_agent": 0.7,
    }


def test_first_update_replaces_the_initial_value_then_steps_by_the_learning_rate(db):
    agent = make_agent(db, learning_rate=0.1)
    agent.update_q_value(STATE, "coding_agent", 0.75)
    assert agent.get_q_values(STATE)["coding_agent"] == 0.75
    agent.update_q_value(STATE, "coding_agent", 0.45)
    assert agent.get_q_values(STATE)["coding_agent"] == pytest.approx(0.75 + 0.1 * (0.45 - 0.75))


def test_textbook_mode_steps_from_the_initial_value(db):
    agent = make_agent(db, learning_rate=0.1, replace_initial_value=False)
    agent.update_q_value(STATE, "coding_agent", 0.75)
    assert agent.get_q_values(STATE)["coding_agent"] == pytest.approx(1.0 + 0.1 * (0.75 - 1.0))


def test_non_terminal_update_bootstraps_from_the_best_next_value(db):
    agent = make_agent(db, learning_rate=0.5, discount_factor=0.9)
    agent.update_q_value("next", "search_agent", 0.2)
    agent.update_q_value("next", "analysis_agent", 0.4)
    agent.update_q_value("next", "coding_agent", 0.3)
    agent.update_q_value(STATE, "coding_agent", 0.5)
    agent.update_q_value(STATE, "coding_agent", 0.1, next_state="next")
    assert agent.get_q_values(STATE)["coding_agent"] == pytest.approx(
        0.5 + 0.5 * (0.1 + 0.9 * 0.4 - 0.5)
    )


def test_only_the_changed_entry_is_written_and_others_writes_survive(db):
    agent = make_agent(db)
    db.save_q_values("router", {"other:short:text": {"search_agent": 0.3}})
    agent.update_q_value(STATE, "coding_agent", 0.75)
    assert db.get_q_table("router") == {
        "other:short:text": {"search_agent": 0.3},
        STATE: {"coding_agent": 0.75},
    }


def test_every_action_is_tried_once_in_a_new_state_before_any_repeats(db):
    agent = make_agent(db, exploration_rate=0.0)
    for index in range(10):
        tried = []
        state = f"state-{index}"
        for draw in range(3):
            choice = agent.choose(observation(state), np.random.default_rng([index, draw]))
            tried.append(choice.action)
            agent.learn(observation(state), choice.action, 0.45)
        assert sorted(tried) == sorted(ACTIONS)


def test_a_failure_worth_045_does_not_lock_the_greedy_choice(db):
    agent = make_agent(db, exploration_rate=0.0)
    rewards = RewardSystem(None)
    chosen = []
    for draw in range(10):
        choice = agent.choose(observation(), np.random.default_rng(draw))
        success = choice.action == "coding_agent"
        reward, _ = rewards.compute_reward(None, {"task_completed": success, "response_time": 0})
        agent.learn(observation(), choice.action, reward)
        chosen.append(choice.action)
    assert chosen[-5:] == ["coding_agent"] * 5


def test_zero_initial_values_would_lock_onto_the_first_paying_action(db):
    """The seed's defect, reproduced: why the default initial value is optimistic."""
    agent = make_agent(db, exploration_rate=0.0, initial_value=0.0)
    first = agent.choose(observation(), np.random.default_rng(0)).action
    agent.learn(observation(), first, 0.45)
    later = {agent.choose(observation(), np.random.default_rng(d)).action for d in range(20)}
    assert later == {first}


def test_ties_are_broken_at_random(db):
    agent = make_agent(db, exploration_rate=0.0)
    counts = Counter(
        agent.choose(observation(), np.random.default_rng(draw)).action for draw in range(3000)
    )
    assert set(counts) == set(ACTIONS)
    assert all(abs(count / 3000 - 1 / 3) < 0.03 for count in counts.values())


def test_select_action_draws_from_the_seeded_generator(db):
    runs = []
    for _ in range(2):
        agent = make_agent(db, seed=7)
        runs.append([agent.select_action(STATE) for _ in range(30)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3


def exact_probabilities(values, epsilon):
    best = max(values.values())
    ties = [action for action, value in values.items() if value == best]
    n = len(values)
    return {
        action: (1 - epsilon) / len(ties) + epsilon / n if action in ties else epsilon / n
        for action in values
    }


def test_propensity_is_the_exact_epsilon_greedy_probability_and_matches_frequencies(db):
    actions = ["a", "b", "c", "d"]
    agent = make_agent(db, actions=actions, exploration_rate=0.2)
    for action, reward in (("a", 0.7), ("b", 0.7), ("c", 0.1), ("d", 0.3)):
        agent.update_q_value(STATE, action, reward)
    expected = exact_probabilities(agent.get_q_values(STATE), 0.2)
    assert expected == {"a": 0.45, "b": 0.45, "c": 0.05, "d": 0.05}
    draws = 20000
    counts = Counter()
    reported = {}
    for draw in range(draws):
        choice = agent.choose(observation(), np.random.default_rng([3, draw]))
        assert choice.propensity == pytest.approx(expected[choice.action])
        assert choice.scores == agent.get_q_values(STATE)
        reported[choice.action] = choice.propensity
        counts[choice.action] += 1
    assert math.fsum(reported[action] for action in actions) == pytest.approx(1.0)
    for action, probability in expected.items():
        standard_error = math.sqrt(probability * (1 - probability) / draws)
        assert abs(counts[action] / draws - probability) < 4 * standard_error


def test_add_action_keeps_values_and_the_new_action_gets_tried(db):
    agent = make_agent(db, exploration_rate=0.0)
    for action in ACTIONS:
        agent.update_q_value(STATE, action, 0.5)
    agent.add_action("math_agent")
    agent.add_action("math_agent")
    assert agent.actions == [*ACTIONS, "math_agent"]
    assert agent.get_q_values(STATE) == {**dict.fromkeys(ACTIONS, 0.5), "math_agent": 1.0}
    assert agent.choose(observation(), np.random.default_rng(0)).action == "math_agent"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"actions": []}, "at least one action"),
        ({"actions": ["a", "a"]}, "appears twice"),
        ({"actions": ["a", ""]}, "non-empty"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": 1.5}, "learning_rate"),
        ({"discount_factor": -0.1}, "discount_factor"),
        ({"exploration_rate": math.nan}, "exploration_rate"),
        ({"initial_value": math.inf}, "initial_value"),
    ],
)
def test_bad_settings_are_rejected(db, options, message):
    with pytest.raises(ValueError, match=message):
        make_agent(db, **options)


def test_a_state_that_is_not_a_string_is_a_type_error(db):
    with pytest.raises(TypeError, match="state"):
        make_agent(db).update_q_value(3, "coding_agent", 0.5)


def test_reload_forgets_updates_rolled_back_by_the_store(db):
    agent = make_agent(db)
    agent.update_q_value(STATE, "coding_agent", 0.75)
    with pytest.raises(RuntimeError), db.transaction():
        agent.update_q_value(STATE, "search_agent", 0.45)
        raise RuntimeError("the sub-agent's interaction could not be stored")
    agent.reload()
    assert agent.get_q_values(STATE) == {
        "search_agent": 1.0,
        "analysis_agent": 1.0,
        "coding_agent": 0.75,
    }


def route(db, requests, seed, start=0, **options):
    extractor = OfflineStateExtractor()
    agent = QLearningAgent(
        "router", None, db, RewardSystem(db), extractor, list(SUB_AGENTS), **options
    )
    return agent, run_routing(
        agent, extractor, RewardSystem(db), requests=requests, seed=seed, start=start
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_routing_is_learned_within_300_requests(tmp_path, seed):
    with MemoryDatabase(tmp_path / "m.db") as db:
        _, routed_right = route(db, 300, seed)
    assert np.mean(routed_right[-100:]) >= 0.75
