"""RewardSystem: components, sentiment, weights, validation and persistence."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlmemory.rewards import RewardSystem, text_sentiment, user_satisfaction
from rlmemory.store.sql import MemoryDatabase

INSTANT = {"response_time": 0.0}


@pytest.fixture
def db(tmp_path):
    with MemoryDatabase(tmp_path / "m.db") as database:
        yield database


@pytest.mark.parametrize(
    ("feedback", "expected"),
    [(1, 0.0), (2, 0.25), (3, 0.5), (4.5, 0.875), (5, 1.0), ("4/5", 0.75), ("2 stars", 0.25)],
)
def test_rating_maps_one_to_five_linearly_onto_unit_interval(feedback, expected):
    assert user_satisfaction(feedback) == pytest.approx(expected)


@pytest.mark.parametrize("rating", [0, 5.5, -1, {"rating": 9}])
def test_rating_outside_one_to_five_is_rejected(rating):
    with pytest.raises(ValueError, match="between 1 and 5"):
        RewardSystem(None).compute_reward(rating, INSTANT)


@pytest.mark.parametrize("text", ["0", "9/5", "6 stars"])
def test_text_that_looks_like_an_out_of_range_rating_is_read_as_neutral_text(text):
    assert user_satisfaction(text) == pytest.approx(0.5)


def test_negated_praise_is_negative_and_negated_blame_mildly_positive():
    assert user_satisfaction("not helpful") < 0.5
    assert user_satisfaction("this wasn't useful") < 0.5
    assert user_satisfaction("it doesn't work") < 0.5
    assert 0.5 < user_satisfaction("not bad") < user_satisfaction("good")
    assert user_satisfaction("helpful") > 0.5


def test_negation_stops_at_a_clause_break():
    assert text_sentiment("not fast, but correct") == pytest.approx((-0.4 + 0.7) / 2)
    assert text_sentiment("not fast but correct") == pytest.approx((-0.4 + 0.7) / 2)


def test_negation_reaches_only_three_words():
    assert text_sentiment("not at all really good") > 0
    assert text_sentiment("not really good") < 0


def test_sentiment_ignores_case_and_punctuation():
    assert text_sentiment("GREAT!!!") == text_sentiment("great")


def test_text_without_sentiment_words_is_neutral():
    assert user_satisfaction("the file is in /tmp") == 0.5
    assert user_satisfaction("") == 0.5


def test_without_feedback_success_is_worth_075_and_failure_045():
    rewards = RewardSystem(None)
    success, components = rewards.compute_reward(None, {"task_completed": True, **INSTANT})
    failure, _ = rewards.compute_reward(None, {"task_completed": False, **INSTANT})
    assert success == pytest.approx(0.75)
    assert failure == pytest.approx(0.45)
    assert components == {"user_satisfaction": 0.5, "task_completion": 1.0, "efficiency": 1.0}


def test_task_completion_comes_from_success_rate_before_flags():
    rewards = RewardSystem(None, weights={"task_completion": 1.0})
    assert rewards.compute_reward(None, {"success_rate": 0.3, "task_completed": True})[0] == 0.3
    assert rewards.compute_reward(None, {"success": False})[0] == 0.0
    assert rewards.compute_reward(None, {})[0] == 0.5


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"response_time": 0.0}, 1.0),
        ({"response_time": 5.0}, 0.5),
        ({"response_time": 15.0}, 0.25),
        ({"tool_usage": 5}, 0.5),
        ({"tool_calls": ["search", "read"]}, 1 / 1.4),
        ({"response_time": 5.0, "tool_usage": 0}, 0.75),
        ({}, 0.5),
    ],
)
def test_efficiency_follows_the_documented_curves(metrics, expected):
    rewards = RewardSystem(None, weights={"efficiency": 1.0})
    assert rewards.compute_reward(None, metrics)[0] == pytest.approx(expected)


def test_slower_answers_earn_less():
    rewards = RewardSystem(None)
    fast = rewards.compute_reward(None, {"task_completed": True, "response_time": 0.5})[0]
    slow = rewards.compute_reward(None, {"task_completed": True, "response_time": 30})[0]
    assert fast > slow


def test_weights_are_normalised_and_change_the_reward():
    rewards = RewardSystem(None, weights={"user_satisfaction": 2, "task_completion": 2})
    assert rewards.reward_weights == {
        "user_satisfaction": 0.5,
        "task_completion": 0.5,
        "efficiency": 0.0,
    }
    reward, _ = rewards.compute_reward(5, {"task_completed": False, "response_time": 0.0})
    assert reward == pytest.approx(0.5)


def test_unknown_weight_component_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"'speed'.*user_satisfaction, task_completion, efficiency"
    ):
        RewardSystem(None, weights={"speed": 1.0})


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        ({"efficiency": -1.0}, ValueError, "must not be negative"),
        ({"efficiency": math.nan}, ValueError, "finite"),
        ({"efficiency": math.inf}, ValueError, "finite"),
        ({"efficiency": 0.0}, ValueError, "all be zero"),
        ({"efficiency": "1"}, TypeError, "weights\\['efficiency'\\]"),
        ({"efficiency": True}, TypeError, "weights\\['efficiency'\\]"),
        ([0.5, 0.3, 0.2], TypeError, "mapping"),
    ],
)
def test_bad_weights_are_rejected(weights, error, message):
    with pytest.raises(error, match=message):
        RewardSystem(None, weights=weights)


@pytest.mark.parametrize(
    ("metrics", "error", "metric"),
    [
        ({"success_rate": math.nan}, ValueError, "success_rate"),
        ({"success_rate": 1.5}, ValueError, "success_rate"),
        ({"response_time": math.inf}, ValueError, "response_time"),
        ({"response_time": -1.0}, ValueError, "response_time"),
        ({"response_time": "fast"}, TypeError, "response_time"),
        ({"tool_usage": math.nan}, ValueError, "tool_usage"),
        ({"tool_calls": -2}, ValueError, "tool_calls"),
        ({"task_completed": "yes"}, TypeError, "task_completed"),
    ],
)
def test_bad_metric_is_named_and_nothing_is_stored(db, metrics, error, metric):
    rewards = RewardSystem(db)
    with pytest.raises(error, match=metric):
        rewards.calculate_reward("router", None, metrics)
    assert db.get_agent_rewards("router") == []


def test_metrics_that_are_not_a_mapping_are_rejected(db):
    with pytest.raises(TypeError, match="performance_metrics"):
        RewardSystem(db).calculate_reward("router", None, [("response_time", 1.0)])
    assert db.get_agent_rewards("router") == []


def test_feedback_of_an_unusable_type_is_rejected():
    with pytest.raises(TypeError, match="feedback"):
        RewardSystem(None).compute_reward(object(), INSTANT)
    with pytest.raises(TypeError, match="user_feedback"):
        RewardSystem(None).compute_reward({"user_feedback": 3}, INSTANT)


def test_feedback_mapping_prefers_rating_then_text_then_self_evaluation():
    assert user_satisfaction({"rating": 1, "user_feedback": "excellent"}) == 0.0
    assert user_satisfaction({"user_feedback": "excellent", "self_evaluation": 0.0}) == 1.0
    assert user_satisfaction({"self_evaluation": 0.8}) == 0.8
    assert user_satisfaction({}) == 0.5


def test_calculate_reward_stores_reward_components_and_decision(store):
    decision_id = store.save_agent_decision("router", "s", "coding_agent", {}, None)
    rewards = RewardSystem(store)
    reward = rewards.calculate_reward(
        "router", "great, thanks", {"task_completed": True, **INSTANT}, decision_id=decision_id
    )
    (row,) = rewards.get_agent_rewards("router", limit=5)
    assert row["reward"] == pytest.approx(reward)
    assert row["decision_id"] == decision_id
    assert row["reward_components"] == {
        "user_satisfaction": pytest.approx(0.875),
        "task_completion": 1.0,
        "efficiency": 1.0,
    }


def test_reward_history_is_newest_first_and_limited(db):
    rewards = RewardSystem(db)
    for rating in (1, 3, 5):
        rewards.calculate_reward("router", rating, INSTANT)
    history = rewards.get_agent_rewards("router", limit=2)
    assert [row["reward_components"]["user_satisfaction"] for row in history] == [1.0, 0.5]


def test_bad_agent_name_or_limit_is_rejected_before_storing(db):
    rewards = RewardSystem(db)
    with pytest.raises(ValueError, match="agent_name"):
        rewards.calculate_reward("", None, INSTANT)
    with pytest.raises(ValueError, match="limit"):
        rewards.get_agent_rewards("router", limit=0)
    assert db.list_agents() == []


def test_a_reward_system_without_store_can_only_compute():
    with pytest.raises(ValueError, match="no store"):
        RewardSystem(None).calculate_reward("router", None, INSTANT)


feedbacks = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.floats(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=5),
)
metric_sets = st.fixed_dictionaries(
    {},
    optional={
        "success_rate": st.floats(min_value=0, max_value=1),
        "task_completed": st.booleans(),
        "response_time": st.floats(min_value=0, max_value=1e9),
        "tool_usage": st.integers(min_value=0, max_value=10**6),
    },
)
weight_sets = st.fixed_dictionaries(
    {"user_satisfaction": st.floats(min_value=0.01, max_value=100)},
    optional={
        "task_completion": st.floats(min_value=0, max_value=100),
        "efficiency": st.floats(min_value=0, max_value=100),
    },
)


@settings(max_examples=200, deadline=None)
@given(feedback=feedbacks, metrics=metric_sets, weights=weight_sets)
def test_reward_is_always_in_the_unit_interval(feedback, metrics, weights):
    reward, components = RewardSystem(None, weights).compute_reward(feedback, metrics)
    assert 0.0 <= reward <= 1.0
    assert all(0.0 <= value <= 1.0 for value in components.values())
