"""Version payloads and diffs of learned state (no store involved)."""

from __future__ import annotations

import numpy as np
import pytest

from rlmemory.ops.compression import is_compressed
from rlmemory.ops.versions import AgentState, diff_states


def test_payload_round_trips_every_kind_of_state_exactly():
    state = AgentState(
        q_table={"greet": {"search": 0.1 + 0.2, "code": -1e-300}},
        policy_params={"weights": [[0.5, -0.25]], "actions": ["search", "code"], "dimension": 2},
        arrays={
            "A:search": np.arange(9, dtype=np.float64).reshape(3, 3) / 7,
            "count:search": np.array([3, -2], dtype=np.int64),
            "scalar": np.array(2.5),
        },
        decision_watermark=42,
    )
    payload = state.to_payload()
    assert is_compressed(payload)
    restored = AgentState.from_payload(payload)
    assert restored == state
    assert restored.arrays["count:search"].dtype == np.int64
    assert restored.arrays["scalar"].shape == ()


def test_states_with_different_array_values_are_not_equal():
    first = AgentState(arrays={"b": np.array([1.0, 2.0])})
    assert first != AgentState(arrays={"b": np.array([1.0, 2.5])})
    assert first != AgentState(arrays={"b": np.array([1, 2])})


def test_empty_state_is_empty_and_round_trips():
    empty = AgentState()
    assert empty.is_empty
    assert AgentState.from_payload(empty.to_payload()) == empty
    assert not AgentState(policy_params={}).is_empty


def test_unknown_payload_format_is_refused():
    from rlmemory.ops.compression import compress_json

    with pytest.raises(ValueError, match="format 99"):
        AgentState.from_payload(compress_json({"format": 99}))


def test_q_diff_lists_changed_added_and_removed_entries_biggest_first():
    before = AgentState(q_table={"s1": {"a": 1.0, "b": 0.5}, "s2": {"a": 0.0}})
    after = AgentState(q_table={"s1": {"a": 1.25, "b": 0.5}, "s3": {"c": -3.0}})
    result = diff_states(before, after)
    assert [(c.state, c.action, c.before, c.after) for c in result.q_changes] == [
        ("s3", "c", None, -3.0),
        ("s1", "a", 1.0, 1.25),
        ("s2", "a", 0.0, None),
    ]
    assert result.changed_states == ["s1", "s2", "s3"]
    assert result.summary()["q_max_abs_change"] == pytest.approx(3.0)


def test_removed_entry_with_zero_value_still_counts_as_changed():
    result = diff_states(
        AgentState(q_table={"s": {"a": 0.0}}), AgentState(q_table={"s": {"a": 0.0}, "t": {}})
    )
    assert result.is_empty
    removed = diff_states(AgentState(q_table={"s": {"a": 0.0}}), AgentState(q_table={}))
    assert [(c.state, c.action, c.before, c.after) for c in removed.q_changes] == [
        ("s", "a", 0.0, None)
    ]


def test_array_diff_reports_keys_and_max_abs_change():
    before = AgentState(
        arrays={
            "A:x": np.eye(2),
            "b:x": np.zeros(2),
            "gone": np.ones(1),
            "reshaped": np.zeros(4),
        }
    )
    after = AgentState(
        arrays={
            "A:x": np.eye(2),
            "b:x": np.array([0.0, -0.75]),
            "new": np.ones(3),
            "reshaped": np.zeros((2, 2)),
        }
    )
    changes = {c.key: c for c in diff_states(before, after).array_changes}
    assert set(changes) == {"b:x", "gone", "new", "reshaped"}
    assert changes["b:x"].max_abs_change == pytest.approx(0.75)
    assert changes["b:x"].changed_entries == 1
    assert changes["gone"].status == "removed"
    assert changes["new"].status == "added" and changes["new"].shape_after == (3,)
    assert changes["reshaped"].shape_before == (4,) and changes["reshaped"].shape_after == (2, 2)


def test_policy_params_diff_walks_nested_numeric_lists():
    before = AgentState(policy_params={"weights": [[0.0, 1.0]], "meta": {"actions": ["a", "b"]}})
    after = AgentState(
        policy_params={"weights": [[0.5, 1.0]], "meta": {"actions": ["a", "b", "c"]}}
    )
    changes = {c.key: c for c in diff_states(before, after).policy_changes}
    assert changes["weights"].max_abs_change == pytest.approx(0.5)
    assert changes["meta.actions"].status == "changed"
    assert changes["meta.actions"].max_abs_change is None


def test_identical_states_have_an_empty_diff():
    state = AgentState(
        q_table={"s": {"a": 1.0}}, policy_params={"w": [1.0]}, arrays={"x": np.ones(2)}
    )
    assert diff_states(state, state).is_empty
