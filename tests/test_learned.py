"""rlmemory.learned: what ``rlmemory show`` prints, read through the store API on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rlmemory.learned import learned_policy
from rlmemory.learners.bandits import EpsilonGreedyAgent, LinUCBAgent
from rlmemory.learners.base import Observation
from rlmemory.learners.policy_gradient import PolicyGradientAgent
from rlmemory.learners.qlearning import QLearningAgent


def decide(store: Any, agent: str, state: str, action: str, reward: float | None) -> None:
    value = None if reward is None else {"status": "observed", "value": reward}
    store.save_agent_decision(agent, state, action, {}, value, propensity=0.5, features=[1.0, 0.0])


def test_q_learning_policy_gives_each_states_best_action_value_and_visits(store: Any) -> None:
    learner = QLearningAgent("router", None, store, None, None, ["search", "code"], seed=0)
    learner.update_q_value("code", "code", 0.9)
    learner.update_q_value("code", "search", 0.2)
    learner.update_q_value("docs", "search", 0.7)
    for state, action, reward in [("code", "code", 0.9), ("code", "search", 0.2)] + [
        ("docs", "search", 0.7)
    ] * 3:
        decide(store, "router", state, action, reward)
    decide(store, "router", "docs", "search", None)  # pending: counted, not averaged

    policy = learned_policy(store, "router")

    assert policy.learner == "q_learning" and policy.decisions == 6
    by_state = {row.state: row for row in policy.states}
    assert (by_state["code"].best_action, by_state["code"].best_value) == ("code", 0.9)
    assert by_state["code"].values == {"code": 0.9, "search": 0.2}
    assert (by_state["docs"].best_action, by_state["docs"].visits) == ("search", 4)
    assert [row.state for row in policy.states] == ["docs", "code"]  # most visited first
    actions = {row.action: row for row in policy.actions}
    assert actions["search"].chosen == 5
    assert actions["search"].mean_reward == pytest.approx((0.2 + 3 * 0.7) / 4)
    assert learned_policy(store, "router", top_states=1).states == policy.states[:1]


@pytest.mark.parametrize("learner_class", [LinUCBAgent, EpsilonGreedyAgent])
def test_bandit_policy_counts_what_each_action_learned_from(store: Any, learner_class: Any) -> None:
    options = {"prior_mean": 1.0} if learner_class is EpsilonGreedyAgent else {}
    learner = learner_class("router", store, ["search", "code"], seed=0, **options)
    for _ in range(3):
        learner.update([1.0, 0.0], "code", 0.8)
        decide(store, "router", "s", "code", 0.8)
    learner.update([0.0, 1.0], "search", 0.3)
    decide(store, "router", "s", "search", 0.3)

    policy = learned_policy(store, "router")

    assert policy.learner == "linear_bandit" and policy.decisions == 4
    actions = {row.action: row for row in policy.actions}
    assert (actions["code"].learned_from, actions["search"].learned_from) == (3, 1)
    assert actions["code"].mean_reward == pytest.approx(0.8)
    expected = learner.statistics()["code"]["theta"]
    assert actions["code"].weight_norm == pytest.approx(float(np.linalg.norm(expected)))
    assert policy.details["prior_mean"] == options.get("prior_mean", 0.0)


def test_policy_gradient_policy_gives_mean_probabilities(store: Any) -> None:
    class TwoFeatures:
        dimension = 2

    learner = PolicyGradientAgent(
        "router", None, store, None, TwoFeatures(), ["search", "code"], policy_update_every=1
    )
    observation = Observation("s", np.array([1.0, 0.0]))
    for _ in range(5):
        learner.learn(observation, "code", 1.0)
        decide(store, "router", "s", "code", 1.0)

    policy = learned_policy(store, "router")

    assert policy.learner == "policy_gradient" and policy.decisions == 5
    actions = {row.action: row for row in policy.actions}
    expected = learner.action_probabilities([1.0, 0.0])
    assert actions["code"].mean_probability == pytest.approx(expected["code"])
    assert actions["code"].mean_probability > 0.5
    assert policy.details["updates"] == 5


def test_an_agent_with_only_decisions_has_learned_nothing_yet(store: Any) -> None:
    decide(store, "router", "s", "code", None)
    policy = learned_policy(store, "router")
    assert policy.learner == "nothing_learned"
    assert [(row.action, row.chosen, row.mean_reward) for row in policy.actions] == [
        ("code", 1, None)
    ]
    assert policy.to_dict()["actions"][0]["action"] == "code"
