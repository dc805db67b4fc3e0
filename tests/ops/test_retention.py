"""Retention: pruning history, versions and cold Q-table states, with dry runs."""

from __future__ import annotations

import time

import pytest

from rlmemory.ops.retention import RetentionPolicy, TableRule, prune
from rlmemory.ops.versions import checkpoint, get_version, list_versions


def _history(store, count):
    for index in range(count):
        decision = store.save_agent_decision("router", f"s{index % 3}", "a", {}, 0.5)
        store.save_agent_reward("router", index / count, {}, decision)
        store.save_agent_interaction("router", f"request {index}", "reply", None, decision)


def test_dry_run_reports_what_would_go_and_changes_nothing(store):
    _history(store, 10)
    policy = RetentionPolicy(rewards=TableRule(max_rows=4), decisions=TableRule(max_rows=0))
    report = prune(store, "router", policy, dry_run=True)
    assert report.counts() == {
        "rewards": 6,
        "interactions": 0,
        "decisions": 10,
        "versions": 0,
        "q_states": 0,
    }
    rewards_plan = report.tables[0]
    assert rewards_plan.last_id < store.get_agent_rewards("router", limit=4)[-1]["id"]
    assert report.saved_version is None
    assert store.agent_stats("router")["rewards"] == 10
    assert list_versions(store, "router") == []


def test_prune_keeps_the_newest_rows_and_saves_a_version_first(store):
    _history(store, 10)
    store.save_q_values("router", {"s0": {"a": 1.0}})
    newest = [row["id"] for row in store.get_agent_rewards("router", limit=3)]
    policy = RetentionPolicy(rewards=TableRule(max_rows=3), interactions=TableRule(max_rows=5))
    report = prune(store, "router", policy)
    assert [row["id"] for row in store.get_agent_rewards("router", limit=100)] == newest
    assert store.agent_stats("router")["interactions"] == 5
    assert store.agent_stats("router")["decisions"] == 10
    assert report.saved_version == 1
    assert get_version(store, "router", 1).note == "auto: before prune"


def test_prune_by_age_uses_the_given_clock(store):
    _history(store, 4)
    now = time.time()
    keep_all = RetentionPolicy.from_mapping({"max_age_days": 1})
    assert prune(store, "router", keep_all, now=now).is_empty
    drop_all = RetentionPolicy.from_mapping({"max_age_days": 1})
    report = prune(store, "router", drop_all, now=now + 2 * 86_400)
    assert report.counts()["rewards"] == 4
    assert store.agent_stats("router")["rewards"] == 0


def test_prune_of_one_agent_leaves_other_agents_alone(store):
    _history(store, 5)
    store.save_agent_reward("other", 1.0, {})
    prune(store, "router", RetentionPolicy(rewards=TableRule(max_rows=0)))
    assert store.agent_stats("router")["rewards"] == 0
    assert store.agent_stats("other")["rewards"] == 1


def test_versions_pruned_to_the_newest_n_never_the_last(store):
    store.save_q_values("router", {"s": {"a": 0.0}})
    for _ in range(5):
        checkpoint(store, "router")
    prune(store, "router", RetentionPolicy(versions=TableRule(max_rows=2)))
    # 5 versions + the one saved before pruning: keep the 2 newest of them
    assert [info.version for info in list_versions(store, "router")] == [5, 6]
    prune(
        store,
        "router",
        RetentionPolicy(versions=TableRule(max_age_seconds=0)),
        now=time.time() + 10,
    )
    assert [info.version for info in list_versions(store, "router")] == [7]


def test_q_states_outside_the_most_visited_are_pruned_and_can_be_rolled_back(store):
    store.save_q_values("router", {"hot": {"a": 1.0}, "warm": {"a": 0.5}, "cold": {"a": 0.1}})
    for state, visits in (("hot", 5), ("warm", 2), ("cold", 1)):
        for _ in range(visits):
            store.save_agent_decision("router", state, "a", {}, None)
    report = prune(store, "router", RetentionPolicy(q_keep_most_visited=2))
    assert report.q_states == ["cold"]
    assert set(store.get_q_table("router")) == {"hot", "warm"}
    assert "cold" in get_version(store, "router", report.saved_version).state.q_table


def test_q_states_not_updated_for_a_while_are_pruned(store):
    store.save_q_values("router", {"old": {"a": 1.0}})
    later = time.time() + 3600
    report = prune(
        store, "router", RetentionPolicy(q_unvisited_seconds=1800), dry_run=True, now=later
    )
    assert report.q_states == ["old"]
    assert prune(store, "router", RetentionPolicy(q_unvisited_seconds=7200), now=later).is_empty


def test_bad_policies_are_rejected_with_the_field_named():
    with pytest.raises(ValueError, match="max_rows"):
        TableRule(max_rows=-1)
    with pytest.raises(ValueError, match="unknown retention keys"):
        RetentionPolicy.from_mapping({"max_days": 3})
    with pytest.raises(ValueError, match="q_unvisited_days"):
        RetentionPolicy.from_mapping({"q_unvisited_days": float("nan")})
