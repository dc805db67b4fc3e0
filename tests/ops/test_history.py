"""Correcting history: rewards and interactions fixed or deleted, and relearning from the log."""

from __future__ import annotations

import numpy as np
import pytest

from rlmemory.learners.base import Observation
from rlmemory.learners.qlearning import QLearningAgent
from rlmemory.ops.history import (
    correct_interaction,
    correct_reward,
    delete_interaction,
    delete_reward,
    relearn,
)
from rlmemory.ops.versions import checkpoint, list_versions


def _decide(store, learner, state, action, reward):
    decision = store.save_agent_decision(
        learner.name, state, action, {action: 0.0}, reward, features=[1.0, 0.0]
    )
    reward_id = store.save_agent_reward(learner.name, reward, {"task": reward}, decision)
    learner.learn(Observation(state, np.array([1.0, 0.0])), action, reward)
    return decision, reward_id


def _learner(store):
    return QLearningAgent("router", None, store, None, None, ["coder", "search"], learning_rate=0.5)


def test_correct_reward_changes_the_row_and_its_decision(store):
    decision = store.save_agent_decision("router", "s", "coder", {}, 0.9)
    reward_id = store.save_agent_reward("router", 0.9, {"task": 1.0}, decision)
    before = correct_reward(store, reward_id, 0.1, {"task": 0.0})
    assert before["reward"] == 0.9
    assert store.get_agent_rewards("router")[0]["reward"] == 0.1
    assert store.get_agent_rewards("router")[0]["reward_components"] == {"task": 0.0}
    assert store.get_agent_decision(decision)["reward"] == 0.1


def test_delete_reward_removes_it_and_leaves_its_decision_pending(store):
    decision = store.save_agent_decision("router", "s", "coder", {}, 0.9)
    reward_id = store.save_agent_reward("router", 0.9, {}, decision)
    kept = store.save_agent_reward("router", 0.5, {})
    delete_reward(store, reward_id)
    assert [row["id"] for row in store.get_agent_rewards("router")] == [kept]
    assert store.get_agent_decision(decision)["reward"] is None
    assert store.agent_stats("router")["rewards"] == 1


def test_unknown_reward_or_interaction_is_a_lookup_error_and_nothing_changes(store):
    store.save_agent_reward("router", 0.5, {})
    with pytest.raises(LookupError, match="999"):
        correct_reward(store, 999, 0.1)
    with pytest.raises(LookupError, match="999"):
        delete_interaction(store, 999)
    with pytest.raises(ValueError, match="finite"):
        correct_reward(store, store.get_agent_rewards("router")[0]["id"], float("nan"))
    assert store.get_agent_rewards("router")[0]["reward"] == 0.5


def test_correct_and_delete_interaction(store):
    first = store.save_agent_interaction("router", "wrong request", "reply", "good")
    second = store.save_agent_interaction("router", "other", "reply")
    store.mark_feedback_learned([first])
    correct_interaction(store, first, request="right request", feedback="bad after all")
    row = store.get_agent_interaction(first)
    assert (row["request"], row["response"], row["feedback"]) == (
        "right request",
        "reply",
        "bad after all",
    )
    assert [r["id"] for r in store.get_unlearned_feedback("router")] == [first]
    delete_interaction(store, second)
    assert [r["id"] for r in store.get_agent_interactions("router")] == [first]
    with pytest.raises(ValueError, match="at least one"):
        correct_interaction(store, first)


def test_relearn_replays_corrected_rewards_after_a_version(store):
    learner = _learner(store)
    _decide(store, learner, "code", "coder", 1.0)
    good = checkpoint(store, "router", "trusted")
    _, wrong_reward = _decide(store, learner, "code", "coder", 0.0)  # a mistaken reward
    _decide(store, learner, "chat", "search", 0.8)
    assert learner.q_table["code"]["coder"] == pytest.approx(0.5)
    correct_reward(store, wrong_reward, 1.0)
    report = relearn(store, learner, good)
    assert (report.replayed, report.skipped) == (2, 0)
    assert learner.q_table["code"]["coder"] == pytest.approx(1.0)
    assert learner.q_table["chat"]["search"] == pytest.approx(0.8)
    assert store.get_q_table("router") == learner.q_table
    notes = [info.note for info in list_versions(store, "router")]
    assert notes[-1].startswith("relearned 2 decisions")
    assert len(notes) == 4  # trusted, before rollback, rollback, relearned


def test_relearn_skips_decisions_whose_reward_was_deleted(store):
    learner = _learner(store)
    start = checkpoint(store, "router", "empty")
    _decide(store, learner, "code", "coder", 1.0)
    _, doubtful = _decide(store, learner, "code", "search", 1.0)
    delete_reward(store, doubtful)
    report = relearn(store, learner, start)
    assert (report.replayed, report.skipped) == (1, 1)
    assert "search" not in store.get_q_table("router").get("code", {})


def test_correction_keeps_the_coordinators_reward_record_and_only_the_learned_value(store):
    observed = {"status": "observed", "value": 0.75, "source": "outcome", "interaction_id": 7}
    decision = store.save_agent_decision("router", "s", "coder", {}, observed)
    outcome = store.save_agent_reward("router", 0.75, {"source": "outcome"}, decision)
    other = store.save_agent_reward("router", 0.2, {"source": "late feedback"}, decision)
    correct_reward(store, other, 0.3)  # not the learned value: the decision stays
    assert store.get_agent_decision(decision)["reward"] == observed
    correct_reward(store, outcome, 0.25)
    assert store.get_agent_decision(decision)["reward"] == {
        **observed,
        "value": 0.25,
        "corrected_from": 0.75,
    }
    delete_reward(store, outcome)
    retracted = store.get_agent_decision(decision)["reward"]
    assert retracted["status"] == "retracted" and retracted["value"] is None
    assert retracted["retracted_value"] == 0.25 and retracted["interaction_id"] == 7


def test_agent_stats_follow_corrections_deletions_and_pruning(store):
    from rlmemory.ops.retention import RetentionPolicy, TableRule, prune

    ids = [store.save_agent_reward("router", value, {}) for value in (0.2, 0.4, 0.6)]
    store.save_agent_decision("router", "s", "a", {}, None)
    correct_reward(store, ids[0], 1.0)
    stats = store.agent_stats("router")
    assert (stats["rewards"], stats["mean_reward"]) == (3, pytest.approx(2.0 / 3))
    delete_reward(store, ids[1])
    stats = store.agent_stats("router")
    assert (stats["rewards"], stats["mean_reward"]) == (2, pytest.approx(0.8))
    prune(store, "router", RetentionPolicy(rewards=TableRule(max_rows=1)))
    stats = store.agent_stats("router")
    assert (stats["rewards"], stats["mean_reward"], stats["decisions"]) == (
        1,
        pytest.approx(0.6),
        1,
    )
    assert store.count_agent_decisions("router") == 1
    prune(store, "router", RetentionPolicy(rewards=TableRule(max_rows=0)))
    assert store.agent_stats("router")["mean_reward"] is None
