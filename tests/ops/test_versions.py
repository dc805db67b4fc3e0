"""Versions of learned state on every backend: checkpoint, list, diff, rollback, auto."""

from __future__ import annotations

import numpy as np
import pytest

from rlmemory.ops.versions import (
    AutoCheckpoint,
    checkpoint,
    diff,
    get_version,
    list_versions,
    rollback,
)


def _learn_something(store):
    store.save_q_values("router", {"code": {"coder": 0.9, "search": 0.1}, "chat": {"chat": 0.5}})
    store.save_policy_params("router", {"weights": [[0.1, 0.2]], "actions": ["coder", "search"]})
    store.save_arrays("router", {"A:coder": np.eye(2), "n:coder": np.array([3], dtype=np.int64)})


def test_checkpoint_numbers_versions_per_agent_from_one(store):
    _learn_something(store)
    assert checkpoint(store, "router", "first") == 1
    assert checkpoint(store, "router", "second") == 2
    assert checkpoint(store, "other", "") == 1
    listed = list_versions(store, "router")
    assert [(info.version, info.note) for info in listed] == [(1, "first"), (2, "second")]
    assert all(info.size > 0 and info.created > 0 for info in listed)


def test_version_holds_q_table_policy_params_and_arrays_exactly(store):
    _learn_something(store)
    number = checkpoint(store, "router", "snapshot")
    state = get_version(store, "router", number).state
    assert state.q_table == store.get_q_table("router")
    assert state.policy_params == store.get_policy_params("router")
    assert set(state.arrays) == {"A:coder", "n:coder"}
    assert state.arrays["n:coder"].dtype == np.int64
    np.testing.assert_array_equal(state.arrays["A:coder"], np.eye(2))


def test_rollback_restores_old_state_and_adds_versions_without_rewriting_history(store):
    _learn_something(store)
    first = checkpoint(store, "router", "good")
    store.save_q_values("router", {"code": {"coder": -5.0}, "new": {"search": 2.0}})
    store.save_policy_params("router", {"weights": [[9.0, 9.0]], "actions": ["coder", "search"]})
    store.save_arrays("router", {"A:coder": np.zeros((2, 2)), "A:search": np.ones((2, 2))})
    bad_table = store.get_q_table("router")
    outcome = rollback(store, "router", first)
    assert store.get_q_table("router") == get_version(store, "router", first).state.q_table
    assert store.get_policy_params("router")["weights"] == [[0.1, 0.2]]
    assert set(store.get_arrays("router")) == {"A:coder", "n:coder"}
    assert [info.version for info in list_versions(store, "router")] == [1, 2, 3]
    assert outcome.saved_before == 2 and outcome.new_version == 3
    assert get_version(store, "router", 2).state.q_table == bad_table
    assert "before rollback" in get_version(store, "router", 2).note
    assert (
        get_version(store, "router", 1).state.q_table
        == get_version(store, "router", 3).state.q_table
    )


def test_rollback_to_a_version_without_policy_params_removes_them(store):
    store.save_q_values("router", {"s": {"a": 1.0}})
    first = checkpoint(store, "router")
    store.save_policy_params("router", {"w": [1.0]})
    rollback(store, "router", first)
    assert store.get_policy_params("router") is None
    assert store.get_q_table("router") == {"s": {"a": 1.0}}


def test_diff_reports_changed_states_actions_and_amounts(store):
    _learn_something(store)
    first = checkpoint(store, "router")
    store.save_q_values("router", {"code": {"coder": 0.4}, "greeting": {"chat": 1.0}})
    store.save_arrays("router", {"A:coder": np.array([[1.0, 0.0], [0.0, 1.5]])})
    second = checkpoint(store, "router")
    result = diff(store, "router", first, second)
    assert [(c.state, c.action, c.before, c.after) for c in result.q_changes] == [
        ("greeting", "chat", None, 1.0),
        ("code", "coder", 0.9, 0.4),
    ]
    assert [(c.key, c.max_abs_change) for c in result.array_changes] == [("A:coder", 0.5)]
    assert diff(store, "router", second, None).is_empty


def test_unknown_version_is_a_lookup_error_and_changes_nothing(store):
    _learn_something(store)
    checkpoint(store, "router")
    before = store.get_q_table("router")
    with pytest.raises(LookupError, match="no version 7"):
        rollback(store, "router", 7)
    with pytest.raises(ValueError, match="positive"):
        get_version(store, "router", 0)
    assert store.get_q_table("router") == before
    assert len(list_versions(store, "router")) == 1


def test_auto_checkpoint_takes_a_version_every_n_updates(store):
    auto = AutoCheckpoint(store, "router", every=3)
    taken = []
    for step in range(7):
        store.save_q_values("router", {"s": {"a": float(step)}})
        taken.append(auto.maybe_checkpoint())
    assert taken == [None, None, 1, None, None, 2, None]
    assert get_version(store, "router", 2).state.q_table == {"s": {"a": 5.0}}
    with pytest.raises(ValueError, match="every"):
        AutoCheckpoint(store, "router", every=0)


def test_versions_survive_reopening_the_store(make_store):
    with make_store() as first:
        first.save_q_values("router", {"s": {"a": 1.0}})
        checkpoint(first, "router", "kept")
    with make_store() as second:
        assert [info.note for info in list_versions(second, "router")] == ["kept"]
        assert get_version(second, "router", 1).state.q_table == {"s": {"a": 1.0}}


def test_decision_records_the_version_it_was_made_under(store):
    store.save_q_values("router", {"s": {"a": 1.0}})
    before_any = store.save_agent_decision("router", "s", "a", {"a": 1.0}, None)
    checkpoint(store, "router")
    checkpoint(store, "router")
    after_two = store.save_agent_decision("router", "s", "a", {"a": 1.0}, None)
    assert store.get_agent_decision(before_any)["version"] is None
    assert store.get_agent_decision(after_two)["version"] == 2
