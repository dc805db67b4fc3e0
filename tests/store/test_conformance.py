"""The one conformance suite: every MemoryStore backend honours the contract in store/base.py.

Each test runs once per backend (sqlite, postgresql, files) through the ``store`` and
``make_store`` fixtures of ``tests/conftest.py``. Tests only use the public contract,
except the few marked as SQL-only, which read the seed's tables with plain SQL.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlmemory.errors import UnknownDecisionError, UnknownInteractionError
from rlmemory.store._validation import MAX_NAME_BYTES, MAX_STATE_BYTES
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore

AGENT = "router"
OTHER = "analyst"
EVERYTHING = 1_000_000  # a limit larger than any history written here

HYPOTHESIS_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Texts that break naive quoting, escaping, encoding or line splitting.
TRICKY_TEXTS = {
    "quotes": 'it\'s "quoted" and `ticked`',
    "sql_injection": "'; DROP TABLE q_tables;--",
    "backslashes": "C:\\new\\table \\' \\\" \\\\ \\x00 \\u0000",
    "non_ascii": "naïve façade Ünïcödé 日本語 العربية русский",
    "emoji": "🤖🎉 👩‍👩‍👧 🇫🇷 ❤️",
    "newlines": "line1\nline2\r\nline3\rline4\n",
    "line_separators": "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg\x1dh\x1ei",
    "control_chars": "\x01\x07\x1b[31m\x7f",
    "whitespace": "  \t leading and trailing \t ",
    "empty": "",
    "json_like": '{"key": [1, 2, null], "x": "\\"}',
    "format_markers": "%s %(name)s {0} {} ? :param $1 %%",
    "bom": "\ufeffbom",
    "long_ascii_100kB": "x" * 100_000,
    "long_unicode_100kB": "é€🤖\n" * 10_000,
}

#: Texts usable as keys and agent names: non-empty, of reasonable length, path-like.
TRICKY_KEYS = {
    **{name: text for name, text in TRICKY_TEXTS.items() if text and len(text) < 1000},
    "path_parent": "../x",
    "path_absolute": "/etc/passwd",
    "path_nested": "a/b",
    "path_dotdot": "..",
    "path_dot": ".",
    "windows_path": "C:\\Windows\\..\\system32",
    "long_300": "n" * 300,
    "long_non_ascii_510_bytes": "日" * 170,  # just under the 512-byte name limit
}

#: Agent names that naive file-name mappings confuse with one another.
COLLIDING_AGENT_NAMES = [
    "a/b",
    "a_b",
    "a%2Fb",
    "a\\b",
    "a b",
    "Router",
    "router",
    "é",  # precomposed
    "e\u0301",  # decomposed: a different string
    "..",
    ".",
    "../x",
    "/etc/passwd",
    "n" * 300,
    "n" * 299 + "m",
    "日" * 170,
    "日" * 169 + "月",
    "con",
    "NUL",
    "-",
    "~",
]

json_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=60,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=12,
)


# --------------------------------------------------------------------------- helpers
def cut_to_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``limit`` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def array_fingerprint(array: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    return (array.dtype.str, array.shape, np.ascontiguousarray(array).tobytes())


def snapshot(store: MemoryStore) -> dict[str, Any]:
    """Everything the contract lets a reader observe, for before/after comparisons."""
    agents = store.list_agents()
    observed: dict[str, Any] = {"agents": agents}
    for agent in sorted({*agents, AGENT, OTHER}):
        observed[agent] = {
            "q_table": store.get_q_table(agent),
            "policy_params": store.get_policy_params(agent),
            "arrays": {
                key: array_fingerprint(value) for key, value in store.get_arrays(agent).items()
            },
            "rewards": store.get_agent_rewards(agent, limit=EVERYTHING),
            "interactions": store.get_agent_interactions(agent, limit=EVERYTHING),
            "unlearned": store.get_unlearned_feedback(agent, limit=EVERYTHING),
            "decisions": store.get_agent_decisions(agent, limit=EVERYTHING),
            "stats": store.agent_stats(agent),
            "decision_count": store.count_agent_decisions(agent),
        }
    return observed


@dataclass
class Populated:
    interaction_ids: list[int]
    decision_ids: list[int]
    reward_ids: list[int]


def populate(store: MemoryStore) -> Populated:
    """Write one of everything for AGENT and a little for OTHER."""
    store.save_q_table(AGENT, {"greeting": {"search": 0.5, "code": -1.25}, "bug": {"code": 2.0}})
    store.save_q_table(OTHER, {"s": {"a": 1.0}})
    store.save_policy_params(AGENT, {"weights": [[0.1, 0.2], [0.3, 0.4]], "lr": 0.01})
    store.save_arrays(
        AGENT, {"A": np.eye(3), "b": np.arange(3, dtype=np.float64), "n": np.array([7])}
    )
    reward_ids = [
        store.save_agent_reward(AGENT, 1.0, {"success": 1.0}),
        store.save_agent_reward(AGENT, -0.5, {"latency": -0.5, "note": "slow"}),
        store.save_agent_reward(OTHER, 0.25, {}),
    ]
    interaction_ids = [
        store.save_agent_interaction(AGENT, "hello", "hi there"),
        store.save_agent_interaction(AGENT, "fix my bug", "done", feedback="great"),
        store.save_agent_interaction(OTHER, "analyse", "ok", feedback="meh"),
    ]
    decision_ids = [
        store.save_agent_decision(AGENT, "greeting", "search", {"search": 0.5, "code": -1.25}, 1.0),
        store.save_agent_decision(
            AGENT, "bug", "code", {"code": 2.0}, None, propensity=0.9, features=[1.0, 0.0]
        ),
        store.save_agent_decision(OTHER, "s", "a", {"a": 1.0}, {"score": 0.25}),
    ]
    return Populated(interaction_ids, decision_ids, reward_ids)


def assert_same_arrays(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype, key
        assert actual[key].shape == value.shape, key
        assert np.array_equal(actual[key], value), key
        assert np.array_equal(np.signbit(actual[key]), np.signbit(value)), key


def assert_history_order(rows: list[dict[str, Any]], expected_ids: list[int]) -> None:
    assert [row["id"] for row in rows] == expected_ids


# ------------------------------------------------------------------- Q-learning
def test_q_table_of_an_agent_never_saved_is_none(store: MemoryStore) -> None:
    assert store.get_q_table(AGENT) is None


def test_saved_q_table_round_trips(store: MemoryStore) -> None:
    table = {"greeting": {"search": 0.5, "code": -1.25}, "bug": {"code": 2.0, "search": 1e-300}}
    store.save_q_table(AGENT, table)
    loaded = store.get_q_table(AGENT)
    assert loaded == table
    assert all(isinstance(v, float) for actions in loaded.values() for v in actions.values())


def test_integer_q_values_are_returned_as_floats(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {"s": {"a": 3, "b": np.int64(-2), "c": np.float32(0.5)}})
    loaded = store.get_q_table(AGENT)
    assert loaded == {"s": {"a": 3.0, "b": -2.0, "c": 0.5}}
    assert all(type(value) is float for value in loaded["s"].values())


def test_save_q_table_replaces_the_whole_table(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {"old": {"a": 1.0}, "kept": {"a": 1.0, "b": 2.0}})
    store.save_q_table(AGENT, {"kept": {"b": 5.0}, "new": {"c": 3.0}})
    assert store.get_q_table(AGENT) == {"kept": {"b": 5.0}, "new": {"c": 3.0}}


def test_q_table_saved_empty_reads_as_empty_dict(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {})
    assert store.get_q_table(AGENT) == {}


def test_q_table_emptied_after_having_entries_reads_as_empty_dict(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {"s": {"a": 1.0}})
    store.save_q_table(AGENT, {})
    assert store.get_q_table(AGENT) == {}


def test_states_without_actions_are_dropped(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {"s": {"a": 1.0}, "empty": {}})
    assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}


def test_save_q_values_merges_and_keeps_untouched_entries(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {"s1": {"a": 1.0, "b": 2.0}, "s2": {"a": 3.0}})
    store.save_q_values(AGENT, {"s1": {"b": 20.0, "c": 30.0}, "s3": {"a": 4.0}})
    assert store.get_q_table(AGENT) == {
        "s1": {"a": 1.0, "b": 20.0, "c": 30.0},
        "s2": {"a": 3.0},
        "s3": {"a": 4.0},
    }


def test_save_q_values_on_a_never_saved_agent_creates_its_table(store: MemoryStore) -> None:
    store.save_q_values(AGENT, {"s": {"a": 0.5}})
    store.save_q_values(AGENT, {"s": {"b": 0.25}})
    assert store.get_q_table(AGENT) == {"s": {"a": 0.5, "b": 0.25}}


def test_save_q_table_after_save_q_values_replaces_merged_entries(store: MemoryStore) -> None:
    store.save_q_values(AGENT, {"s": {"a": 0.5}, "t": {"a": 1.0}})
    store.save_q_table(AGENT, {"u": {"a": 2.0}})
    store.save_q_values(AGENT, {"v": {"a": 3.0}})
    assert store.get_q_table(AGENT) == {"u": {"a": 2.0}, "v": {"a": 3.0}}


def test_q_tables_are_kept_per_agent(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {"s": {"a": 1.0}})
    store.save_q_values(OTHER, {"s": {"a": 2.0}})
    assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}
    assert store.get_q_table(OTHER) == {"s": {"a": 2.0}}


@pytest.mark.parametrize("key_name", sorted(TRICKY_KEYS))
def test_q_table_state_and_action_keys_round_trip_exactly(
    store: MemoryStore, key_name: str
) -> None:
    key = TRICKY_KEYS[key_name]
    store.save_q_table(AGENT, {key: {key: 1.5, "plain": 2.0}})
    store.save_q_values(AGENT, {key: {key + "!": 3.0}, "plain": {key: 4.0}})
    assert store.get_q_table(AGENT) == {
        key: {key: 1.5, "plain": 2.0, key + "!": 3.0},
        "plain": {key: 4.0},
    }


@HYPOTHESIS_SETTINGS
@given(
    table=st.dictionaries(
        json_text.filter(bool),
        st.dictionaries(
            json_text.filter(bool),
            st.floats(allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=3,
        ),
        max_size=4,
    )
)
def test_any_q_table_round_trips_exactly(store: MemoryStore, table: dict) -> None:
    store.save_q_table(AGENT, table)
    loaded = store.get_q_table(AGENT)
    assert loaded == table


# ------------------------------------------------------------ policy parameters
def test_policy_params_of_an_agent_never_saved_are_none(store: MemoryStore) -> None:
    assert store.get_policy_params(AGENT) is None


def test_policy_params_round_trip_with_their_json_types(store: MemoryStore) -> None:
    params = {
        "weights": [[0.1, -0.2], [1e-12, 123456.789]],
        "baseline": 0.5,
        "steps": 42,
        "actions": ["search", "code"],
        "frozen": False,
        "note": None,
        "nested": {"deeper": {"x": [1, 2.5, "three"]}},
    }
    store.save_policy_params(AGENT, params)
    loaded = store.get_policy_params(AGENT)
    assert loaded == params
    assert type(loaded["steps"]) is int
    assert type(loaded["baseline"]) is float
    assert type(loaded["frozen"]) is bool


def test_save_policy_params_replaces_the_previous_ones(store: MemoryStore) -> None:
    store.save_policy_params(AGENT, {"old": 1, "shared": 1})
    store.save_policy_params(AGENT, {"shared": 2})
    assert store.get_policy_params(AGENT) == {"shared": 2}


def test_policy_params_saved_empty_read_as_empty_dict(store: MemoryStore) -> None:
    store.save_policy_params(AGENT, {})
    assert store.get_policy_params(AGENT) == {}


def test_policy_params_accept_numpy_scalars_and_arrays(store: MemoryStore) -> None:
    store.save_policy_params(AGENT, {"w": np.array([0.5, 1.5]), "n": np.int64(3)})
    assert store.get_policy_params(AGENT) == {"w": [0.5, 1.5], "n": 3}


@HYPOTHESIS_SETTINGS
@given(params=st.dictionaries(json_text, json_values, max_size=5))
def test_any_json_policy_params_round_trip(store: MemoryStore, params: dict) -> None:
    store.save_policy_params(AGENT, params)
    assert store.get_policy_params(AGENT) == params


# ------------------------------------------------------------------ arrays
ARRAY_SAMPLES = {
    "scalar": np.float64(2.5) * np.ones(()),
    "vector": np.array([0.1, -0.0, 1e-308, 5e-324, np.finfo(np.float64).max]),
    "matrix": np.arange(6, dtype=np.float64).reshape(2, 3) / 7.0,
    "cube": np.linspace(-1.0, 1.0, 24).reshape(2, 3, 4),
    "ints": np.array([np.iinfo(np.int64).min, -1, 0, 1, np.iinfo(np.int64).max], dtype=np.int64),
    "int_matrix": np.arange(12, dtype=np.int64).reshape(3, 4),
    "empty": np.zeros((0,), dtype=np.float64),
    "empty_2d": np.zeros((2, 0), dtype=np.float64),
}


def test_arrays_round_trip_dtype_shape_and_values(store: MemoryStore) -> None:
    store.save_arrays(AGENT, ARRAY_SAMPLES)
    assert_same_arrays(store.get_arrays(AGENT), ARRAY_SAMPLES)


def test_non_contiguous_arrays_round_trip_by_value(store: MemoryStore) -> None:
    fortran = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
    strided = np.arange(10, dtype=np.float64)[::3]
    transposed = np.arange(6, dtype=np.int64).reshape(2, 3).T
    store.save_arrays(AGENT, {"fortran": fortran, "strided": strided, "transposed": transposed})
    assert_same_arrays(
        store.get_arrays(AGENT),
        {"fortran": fortran.copy(), "strided": strided.copy(), "transposed": transposed.copy()},
    )


def test_get_arrays_of_an_agent_without_arrays_is_empty(store: MemoryStore) -> None:
    assert store.get_arrays(AGENT) == {}


def test_save_arrays_upserts_and_keeps_unnamed_arrays(store: MemoryStore) -> None:
    store.save_arrays(AGENT, {"A": np.eye(2), "b": np.zeros(2)})
    store.save_arrays(AGENT, {"b": np.ones(3), "c": np.array([4], dtype=np.int64)})
    assert_same_arrays(
        store.get_arrays(AGENT),
        {"A": np.eye(2), "b": np.ones(3), "c": np.array([4], dtype=np.int64)},
    )


def test_get_arrays_by_keys_returns_only_those_that_exist(store: MemoryStore) -> None:
    store.save_arrays(AGENT, {"A": np.eye(2), "b": np.zeros(2)})
    assert_same_arrays(store.get_arrays(AGENT, ["b", "missing"]), {"b": np.zeros(2)})
    assert store.get_arrays(AGENT, []) == {}


def test_arrays_are_kept_per_agent(store: MemoryStore) -> None:
    store.save_arrays(AGENT, {"A": np.eye(2)})
    store.save_arrays(OTHER, {"A": np.zeros((2, 2))})
    assert_same_arrays(store.get_arrays(AGENT), {"A": np.eye(2)})
    assert_same_arrays(store.get_arrays(OTHER), {"A": np.zeros((2, 2))})


def test_delete_arrays_by_key_counts_what_it_deleted(store: MemoryStore) -> None:
    store.save_arrays(AGENT, {"A": np.eye(2), "b": np.zeros(2), "c": np.ones(1)})
    store.save_arrays(OTHER, {"A": np.eye(2)})
    assert store.delete_arrays(AGENT, ["A", "missing"]) == 1
    assert sorted(store.get_arrays(AGENT)) == ["b", "c"]
    assert store.delete_arrays(AGENT) == 2
    assert store.get_arrays(AGENT) == {}
    assert store.delete_arrays(AGENT) == 0
    assert sorted(store.get_arrays(OTHER)) == ["A"]


@pytest.mark.parametrize("key_name", ["sql_injection", "emoji", "path_parent", "long_300"])
def test_array_keys_round_trip_exactly(store: MemoryStore, key_name: str) -> None:
    key = TRICKY_KEYS[key_name]
    store.save_arrays(AGENT, {key: np.array([1.0, 2.0])})
    assert list(store.get_arrays(AGENT, [key])) == [key]


# ------------------------------------------------------------------ rewards
def test_rewards_come_back_newest_first_with_every_field(store: MemoryStore) -> None:
    decision_id = store.save_agent_decision(AGENT, "s", "a", {}, None)
    before = time.time()
    first = store.save_agent_reward(AGENT, 1.0, {"success": 1.0})
    second = store.save_agent_reward(AGENT, -0.5, {"latency": -0.5, "tags": ["slow"]}, decision_id)
    after = time.time()
    rows = store.get_agent_rewards(AGENT)
    assert_history_order(rows, [second, first])
    newest = rows[0]
    assert set(newest) >= {"id", "agent_name", "reward", "reward_components", "decision_id"}
    assert newest["agent_name"] == AGENT
    assert newest["reward"] == -0.5 and type(newest["reward"]) is float
    assert newest["reward_components"] == {"latency": -0.5, "tags": ["slow"]}
    assert newest["decision_id"] == decision_id
    assert rows[1]["decision_id"] is None
    for row in rows:
        assert type(row["id"]) is int
        assert type(row["timestamp"]) is float
        assert before - 5 <= row["timestamp"] <= after + 5


def test_reward_ids_grow_and_ties_in_time_keep_insertion_order(store: MemoryStore) -> None:
    ids = [store.save_agent_reward(AGENT, float(i), {"i": i}) for i in range(30)]
    assert ids == sorted(ids) and len(set(ids)) == 30
    assert_history_order(store.get_agent_rewards(AGENT, limit=30), ids[::-1])


def test_reward_history_honours_limit_and_default_of_ten(store: MemoryStore) -> None:
    ids = [store.save_agent_reward(AGENT, float(i), {}) for i in range(12)]
    assert_history_order(store.get_agent_rewards(AGENT), ids[::-1][:10])
    assert_history_order(store.get_agent_rewards(AGENT, limit=3), ids[::-1][:3])
    assert_history_order(store.get_agent_rewards(AGENT, limit=1000), ids[::-1])


def test_rewards_are_kept_per_agent(store: MemoryStore) -> None:
    mine = store.save_agent_reward(AGENT, 1.0, {})
    store.save_agent_reward(OTHER, 2.0, {})
    assert_history_order(store.get_agent_rewards(AGENT), [mine])
    assert store.get_agent_rewards("nobody") == []


def test_numpy_rewards_are_stored_as_floats(store: MemoryStore) -> None:
    store.save_agent_reward(AGENT, np.float64(0.75), {"x": np.float32(0.5)})
    store.save_agent_reward(AGENT, 2, {})
    rows = store.get_agent_rewards(AGENT)
    assert [row["reward"] for row in rows] == [2.0, 0.75]
    assert all(type(row["reward"]) is float for row in rows)
    assert rows[1]["reward_components"] == {"x": 0.5}


# ------------------------------------------------------------- interactions
def test_interactions_come_back_newest_first_with_every_field(store: MemoryStore) -> None:
    decision_id = store.save_agent_decision(AGENT, "s", "a", {}, None)
    before = time.time()
    first = store.save_agent_interaction(AGENT, "hello", "hi")
    second = store.save_agent_interaction(
        AGENT, "bug", "fixed", feedback="thanks", decision_id=decision_id
    )
    after = time.time()
    rows = store.get_agent_interactions(AGENT)
    assert_history_order(rows, [second, first])
    assert rows[0]["agent_name"] == AGENT
    assert (rows[0]["request"], rows[0]["response"], rows[0]["feedback"]) == (
        "bug",
        "fixed",
        "thanks",
    )
    assert rows[0]["decision_id"] == decision_id
    assert rows[1]["feedback"] is None and rows[1]["decision_id"] is None
    for row in rows:
        assert row["feedback_learned"] is False
        assert type(row["id"]) is int
        assert type(row["timestamp"]) is float
        assert before - 5 <= row["timestamp"] <= after + 5


def test_interaction_history_honours_limit_and_order(store: MemoryStore) -> None:
    ids = [store.save_agent_interaction(AGENT, f"q{i}", f"a{i}") for i in range(25)]
    store.save_agent_interaction(OTHER, "q", "a")
    assert_history_order(store.get_agent_interactions(AGENT), ids[::-1][:10])
    assert_history_order(store.get_agent_interactions(AGENT, limit=25), ids[::-1])
    assert_history_order(store.get_agent_interactions(AGENT, limit=2), ids[::-1][:2])


def test_interaction_by_id_matches_its_history_row(store: MemoryStore) -> None:
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="fb")
    assert store.get_agent_interaction(interaction_id) == store.get_agent_interactions(AGENT)[0]


def test_unknown_interaction_id_raises_lookup_error(store: MemoryStore) -> None:
    store.save_agent_interaction(AGENT, "req", "resp")
    for unknown_id in (0, -1, 10**9):
        with pytest.raises(UnknownInteractionError) as caught:
            store.get_agent_interaction(unknown_id)
        assert isinstance(caught.value, LookupError)


def test_find_agent_interaction_returns_the_newest_exact_match(store: MemoryStore) -> None:
    store.save_agent_interaction(AGENT, "hello", "hi")
    newest = store.save_agent_interaction(AGENT, "hello", "hi", feedback="again")
    store.save_agent_interaction(AGENT, "hello", "hi there")
    store.save_agent_interaction(OTHER, "hello", "hi")
    found = store.find_agent_interaction(AGENT, "hello", "hi")
    assert found is not None and found["id"] == newest
    assert found == store.get_agent_interaction(newest)


@pytest.mark.parametrize(
    ("request_text", "response_text"),
    [("Hello", "hi"), ("hello ", "hi"), ("hello", "hi "), ("hell", "hi"), ("hello%", "hi")],
)
def test_find_agent_interaction_does_not_match_near_misses(
    store: MemoryStore, request_text: str, response_text: str
) -> None:
    store.save_agent_interaction(AGENT, "hello", "hi")
    assert store.find_agent_interaction(AGENT, request_text, response_text) is None
    assert store.find_agent_interaction(OTHER, "hello", "hi") is None


@HYPOTHESIS_SETTINGS
@given(request_text=json_text, response_text=json_text, feedback=st.none() | json_text)
def test_any_interaction_text_round_trips_exactly(
    store: MemoryStore, request_text: str, response_text: str, feedback: str | None
) -> None:
    interaction_id = store.save_agent_interaction(AGENT, request_text, response_text, feedback)
    row = store.get_agent_interaction(interaction_id)
    assert (row["request"], row["response"], row["feedback"]) == (
        request_text,
        response_text,
        feedback,
    )


def test_text_with_nul_character_round_trips_or_is_refused_cleanly(store: MemoryStore) -> None:
    populate(store)
    before = snapshot(store)
    try:
        interaction_id = store.save_agent_interaction(AGENT, "a\x00b", "c\x00d")
    except ValueError:
        assert snapshot(store) == before
    else:
        row = store.get_agent_interaction(interaction_id)
        assert (row["request"], row["response"]) == ("a\x00b", "c\x00d")


# ------------------------------------------------------- feedback bookkeeping
def test_feedback_set_later_appears_as_unlearned(store: MemoryStore) -> None:
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp")
    assert store.get_unlearned_feedback(AGENT) == []
    store.set_interaction_feedback(interaction_id, "too slow")
    rows = store.get_unlearned_feedback(AGENT)
    assert [row["id"] for row in rows] == [interaction_id]
    assert rows[0]["feedback"] == "too slow"
    assert rows[0]["feedback_learned"] is False
    assert store.get_agent_interaction(interaction_id)["feedback"] == "too slow"


def test_feedback_given_at_save_time_is_unlearned(store: MemoryStore) -> None:
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="nice")
    assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == [interaction_id]


def test_empty_feedback_string_still_counts_as_feedback(store: MemoryStore) -> None:
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="")
    assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == [interaction_id]


def test_marked_feedback_disappears_and_reappears_when_changed(store: MemoryStore) -> None:
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="good")
    store.mark_feedback_learned([interaction_id])
    assert store.get_unlearned_feedback(AGENT) == []
    assert store.get_agent_interaction(interaction_id)["feedback_learned"] is True
    store.set_interaction_feedback(interaction_id, "actually bad")
    rows = store.get_unlearned_feedback(AGENT)
    assert [row["id"] for row in rows] == [interaction_id]
    assert rows[0]["feedback"] == "actually bad"
    assert store.get_agent_interaction(interaction_id)["feedback_learned"] is False


def test_setting_the_same_feedback_again_makes_it_unlearned_again(store: MemoryStore) -> None:
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="good")
    store.mark_feedback_learned([interaction_id])
    store.set_interaction_feedback(interaction_id, "good")
    assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == [interaction_id]


def test_unlearned_feedback_is_oldest_first_per_agent_and_limited(store: MemoryStore) -> None:
    ids = [store.save_agent_interaction(AGENT, f"q{i}", "a", feedback=f"f{i}") for i in range(5)]
    store.save_agent_interaction(AGENT, "no feedback", "a")
    store.save_agent_interaction(OTHER, "q", "a", feedback="other agent")
    assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == ids
    assert [row["id"] for row in store.get_unlearned_feedback(AGENT, limit=2)] == ids[:2]
    store.mark_feedback_learned(ids[:3])
    assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == ids[3:]
    assert len(store.get_unlearned_feedback(OTHER)) == 1


def test_marking_no_interactions_changes_nothing(store: MemoryStore) -> None:
    populate(store)
    before = snapshot(store)
    store.mark_feedback_learned([])
    assert snapshot(store) == before


def test_unlearned_feedback_sees_feedback_set_through_another_store_object(
    make_store: Any,
) -> None:
    writer, reader = make_store(), make_store()
    interaction_id = writer.save_agent_interaction(AGENT, "req", "resp")
    assert reader.get_unlearned_feedback(AGENT) == []
    writer.set_interaction_feedback(interaction_id, "late feedback")
    assert [row["id"] for row in reader.get_unlearned_feedback(AGENT)] == [interaction_id]


# ------------------------------------------------------------------ decisions
def test_decisions_come_back_newest_first_with_every_field(store: MemoryStore) -> None:
    before = time.time()
    first = store.save_agent_decision(AGENT, "greeting", "search", {"search": 0.5}, None)
    second = store.save_agent_decision(
        AGENT,
        "bug",
        "code",
        {"code": 0.7, "search": 0.3},
        {"score": 1.0, "parts": [1, 2]},
        propensity=0.7,
        features=[1, 0.5, -2.25],
    )
    after = time.time()
    rows = store.get_agent_decisions(AGENT)
    assert_history_order(rows, [second, first])
    newest, oldest = rows
    assert newest["agent_name"] == AGENT
    assert (newest["state"], newest["selected_action"]) == ("bug", "code")
    assert newest["q_values"] == {"code": 0.7, "search": 0.3}
    assert newest["reward"] == {"score": 1.0, "parts": [1, 2]}
    assert newest["propensity"] == 0.7
    assert newest["features"] == [1.0, 0.5, -2.25]
    assert all(type(value) is float for value in newest["features"])
    assert oldest["reward"] is None
    assert oldest["propensity"] is None
    assert oldest["features"] is None
    for row in rows:
        assert type(row["id"]) is int
        assert type(row["timestamp"]) is float
        assert before - 5 <= row["timestamp"] <= after + 5


@pytest.mark.parametrize("reward", [None, 0, 1.5, -2.0, "good", [1, "a"], {"r": {"n": None}}])
def test_decision_reward_is_any_json_value(store: MemoryStore, reward: Any) -> None:
    decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, reward)
    assert store.get_agent_decision(decision_id)["reward"] == reward


def test_decision_history_honours_limit_and_order(store: MemoryStore) -> None:
    ids = [store.save_agent_decision(AGENT, f"s{i}", "a", {}, None) for i in range(12)]
    assert_history_order(store.get_agent_decisions(AGENT), ids[::-1][:10])
    assert_history_order(store.get_agent_decisions(AGENT, limit=12), ids[::-1])
    assert_history_order(store.get_agent_decisions(AGENT, limit=4), ids[::-1][:4])


def test_decision_by_id_matches_its_history_row(store: MemoryStore) -> None:
    decision_id = store.save_agent_decision(
        AGENT, "s", "a", {"a": 0.5}, 1.0, propensity=0.25, features=[0.5]
    )
    assert store.get_agent_decision(decision_id) == store.get_agent_decisions(AGENT)[0]


def test_unknown_decision_id_raises_lookup_error(store: MemoryStore) -> None:
    store.save_agent_decision(AGENT, "s", "a", {}, None)
    for unknown_id in (0, -1, 10**9):
        with pytest.raises(UnknownDecisionError) as caught:
            store.get_agent_decision(unknown_id)
        assert isinstance(caught.value, LookupError)


def test_rewards_and_interactions_naming_an_unknown_decision_are_refused(
    store: MemoryStore,
) -> None:
    known = store.save_agent_decision(AGENT, "s", "a", {}, None)
    for unknown_id in (0, known + 1, 10**9):
        with pytest.raises(UnknownDecisionError, match=str(unknown_id)):
            store.save_agent_reward(AGENT, 1.0, {}, unknown_id)
        with pytest.raises(UnknownDecisionError, match=str(unknown_id)):
            store.save_agent_interaction(AGENT, "q", "r", None, unknown_id)
        with store.transaction():
            kept = store.save_agent_reward(AGENT, 0.5, {}, known)
            with pytest.raises(UnknownDecisionError):
                store.save_agent_reward(AGENT, 1.0, {}, unknown_id)
        assert store.get_agent_reward(kept)["decision_id"] == known
    assert store.get_agent_interactions(AGENT) == []
    assert [row["reward"] for row in store.get_agent_rewards(AGENT)] == [0.5] * 3
    assert store.agent_stats(AGENT)["rewards"] == 3


def test_set_decision_reward_replaces_the_reward(store: MemoryStore) -> None:
    pending = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, None)
    other = store.save_agent_decision(AGENT, "s", "b", {"b": 1.0}, None)
    store.set_decision_reward(pending, {"score": 0.75})
    assert store.get_agent_decision(pending)["reward"] == {"score": 0.75}
    store.set_decision_reward(pending, -1.0)
    assert store.get_agent_decision(pending)["reward"] == -1.0
    assert store.get_agent_decision(other)["reward"] is None
    changed = store.get_agent_decision(pending)
    assert (changed["state"], changed["selected_action"], changed["q_values"]) == (
        "s",
        "a",
        {"a": 1.0},
    )


def test_iter_agent_decisions_is_oldest_first_across_batches(store: MemoryStore) -> None:
    mine = []
    for i in range(7):
        mine.append(store.save_agent_decision(AGENT, f"s{i}", "a", {"a": float(i)}, i))
        store.save_agent_decision(OTHER, f"s{i}", "a", {}, None)
    rows = list(store.iter_agent_decisions(AGENT, batch_size=2))
    assert [row["id"] for row in rows] == mine
    assert rows == [store.get_agent_decision(decision_id) for decision_id in mine]


def test_iter_agent_decisions_starts_after_the_given_id(store: MemoryStore) -> None:
    mine = [store.save_agent_decision(AGENT, f"s{i}", "a", {}, None) for i in range(6)]
    after = [row["id"] for row in store.iter_agent_decisions(AGENT, after_id=mine[2])]
    assert after == mine[3:]
    assert list(store.iter_agent_decisions(AGENT, after_id=mine[-1])) == []
    assert list(store.iter_agent_decisions("nobody")) == []


def test_count_agent_decisions_counts_per_agent(store: MemoryStore) -> None:
    assert store.count_agent_decisions(AGENT) == 0
    for _ in range(3):
        store.save_agent_decision(AGENT, "s", "a", {}, None)
    store.save_agent_decision(OTHER, "s", "a", {}, None)
    assert store.count_agent_decisions(AGENT) == 3
    assert store.count_agent_decisions(OTHER) == 1


# ---------------------------------------------------------------- text fields
@pytest.mark.parametrize("text_name", sorted(TRICKY_TEXTS))
def test_texts_round_trip_exactly_in_every_field(store: MemoryStore, text_name: str) -> None:
    text = TRICKY_TEXTS[text_name]
    interaction_id = store.save_agent_interaction(AGENT, text, text[::-1], feedback=text)
    row = store.get_agent_interaction(interaction_id)
    assert (row["request"], row["response"], row["feedback"]) == (text, text[::-1], text)
    assert store.get_agent_interactions(AGENT, limit=1)[0] == row
    assert store.find_agent_interaction(AGENT, text, text[::-1])["id"] == interaction_id
    store.set_interaction_feedback(interaction_id, text + "!")
    assert store.get_unlearned_feedback(AGENT)[0]["feedback"] == text + "!"

    components = {"note": text, text: 1.0, "list": [text, {"inner": text}]}
    store.save_agent_reward(AGENT, 1.0, components)
    assert store.get_agent_rewards(AGENT, limit=1)[0]["reward_components"] == components

    # States and action names are index keys with a byte limit; cut long texts to it.
    state = cut_to_bytes(text, MAX_STATE_BYTES) or "state"
    action = cut_to_bytes(text[::-1], MAX_NAME_BYTES) or "action"
    decision_id = store.save_agent_decision(
        AGENT, state, action, {text: 0.5, "other": 0.5}, {"note": text}
    )
    decision = store.get_agent_decision(decision_id)
    assert (decision["state"], decision["selected_action"]) == (state, action)
    assert decision["q_values"] == {text: 0.5, "other": 0.5}
    assert decision["reward"] == {"note": text}
    store.set_decision_reward(decision_id, [text])
    assert store.get_agent_decision(decision_id)["reward"] == [text]

    store.save_policy_params(AGENT, {text: text, "list": [text]})
    assert store.get_policy_params(AGENT) == {text: text, "list": [text]}


# ----------------------------------------------------------------- inspection
def test_list_agents_names_every_agent_with_anything_stored(store: MemoryStore) -> None:
    assert store.list_agents() == []
    store.save_q_table("q-table", {"s": {"a": 1.0}})
    store.save_q_values("q-values", {"s": {"a": 1.0}})
    store.save_policy_params("policy", {"w": 1})
    store.save_arrays("arrays", {"A": np.eye(1)})
    store.save_agent_reward("reward", 1.0, {})
    store.save_agent_interaction("interaction", "q", "a")
    store.save_agent_decision("decision", "s", "a", {}, None)
    store.save_agent_reward("reward", 2.0, {})
    assert store.list_agents() == sorted(
        ["q-table", "q-values", "policy", "arrays", "reward", "interaction", "decision"]
    )


def test_agent_stats_counts_and_means(store: MemoryStore) -> None:
    before = time.time()
    for reward in (1.0, 2.0, 4.5):
        store.save_agent_reward(AGENT, reward, {})
    store.save_agent_interaction(AGENT, "q", "a")
    store.save_agent_decision(AGENT, "s", "a", {}, None)
    store.save_agent_decision(AGENT, "s", "b", {}, None)
    store.save_agent_reward(OTHER, 100.0, {})
    after = time.time()
    stats = store.agent_stats(AGENT)
    assert (stats["decisions"], stats["interactions"], stats["rewards"]) == (2, 1, 3)
    assert stats["mean_reward"] == pytest.approx(2.5)
    assert stats["last_update"] is not None
    assert before - 5 <= stats["last_update"] <= after + 5


def test_agent_stats_of_an_unknown_agent_are_empty(store: MemoryStore) -> None:
    stats = store.agent_stats("nobody")
    assert (stats["decisions"], stats["interactions"], stats["rewards"]) == (0, 0, 0)
    assert stats["mean_reward"] is None
    assert stats["last_update"] is None


def test_agent_names_that_look_alike_stay_distinct_agents(make_store: Any, tmp_path: Path) -> None:
    store = make_store()
    outside_before = _entries_outside_store(tmp_path, make_store)
    for index, name in enumerate(COLLIDING_AGENT_NAMES):
        store.save_q_values(name, {"s": {"index": float(index)}})
        store.save_agent_reward(name, float(index), {"name": name})
        store.save_policy_params(name, {"name": name})
    assert store.list_agents() == sorted(COLLIDING_AGENT_NAMES)
    for index, name in enumerate(COLLIDING_AGENT_NAMES):
        assert store.get_q_table(name) == {"s": {"index": float(index)}}, name
        rows = store.get_agent_rewards(name)
        assert [(row["reward"], row["agent_name"]) for row in rows] == [(float(index), name)]
        assert store.get_policy_params(name) == {"name": name}
    assert _entries_outside_store(tmp_path, make_store) == outside_before


@HYPOTHESIS_SETTINGS
@given(name=json_text.filter(bool))
def test_any_agent_name_round_trips_and_stays_inside_the_store(
    make_store: Any, tmp_path: Path, name: str
) -> None:
    store = make_store()
    outside_before = _entries_outside_store(tmp_path, make_store)
    store.save_agent_reward(name, 0.5, {"name": name})
    store.save_q_values(name, {"s": {"a": 0.5}})
    assert name in store.list_agents()
    rows = store.get_agent_rewards(name)
    assert [row["reward_components"] for row in rows] == [{"name": name}]
    assert store.get_q_table(name) == {"s": {"a": 0.5}}
    assert _entries_outside_store(tmp_path, make_store) == outside_before


def _entries_outside_store(tmp_path: Path, make_store: Any) -> set[str]:
    """Paths under tmp_path (and its parent) that do not belong to the store's location."""
    own_prefixes = []
    if make_store.backend == "sqlite":
        own_prefixes.append(str(make_store.sqlite_path))
    elif make_store.backend == "files":
        own_prefixes.append(make_store.location.removeprefix("files://") + "/")
    entries = set()
    for path in [*tmp_path.parent.iterdir(), *tmp_path.rglob("*")]:
        text = str(path)
        if any(text.startswith(prefix) for prefix in own_prefixes):
            continue
        entries.add(text)
    return entries


def test_location_names_the_store_without_its_password(make_store: Any) -> None:
    store = make_store()
    assert isinstance(store.location, str) and store.location
    if make_store.backend == "postgresql":
        from sqlalchemy.engine import make_url

        url = make_url(make_store.location)
        assert url.database in store.location
        if url.password:
            assert f":{url.password}@" not in store.location
    elif make_store.backend == "sqlite":
        assert "memory.db" in store.location
    else:
        assert "memory" in store.location


# --------------------------------------------------------------- transactions
def test_transaction_stores_every_write_when_the_block_ends(store: MemoryStore) -> None:
    with store.transaction():
        store.save_q_values(AGENT, {"s": {"a": 1.0}})
        reward_id = store.save_agent_reward(AGENT, 1.0, {})
        decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, None)
    assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}
    assert_history_order(store.get_agent_rewards(AGENT), [reward_id])
    assert store.get_agent_decision(decision_id)["state"] == "s"


def test_writes_inside_a_transaction_are_readable_inside_it(store: MemoryStore) -> None:
    store.save_q_table(AGENT, {"s": {"a": 1.0}})
    with store.transaction():
        store.save_q_values(AGENT, {"s": {"b": 2.0}})
        decision_id = store.save_agent_decision(AGENT, "s", "b", {"b": 2.0}, None)
        assert store.get_q_table(AGENT) == {"s": {"a": 1.0, "b": 2.0}}
        assert store.get_agent_decision(decision_id)["selected_action"] == "b"


class _Abort(Exception):
    pass


def _write_one_of_everything(store: MemoryStore, existing: Populated) -> tuple[int, int, int]:
    store.save_q_table(OTHER, {"replaced": {"a": 9.0}})
    store.save_q_values(AGENT, {"greeting": {"search": 99.0}, "new": {"a": 1.0}})
    store.save_policy_params(AGENT, {"replaced": True})
    store.save_arrays(AGENT, {"A": np.zeros((3, 3)), "new": np.ones(2)})
    store.delete_arrays(AGENT, ["b"])
    reward_id = store.save_agent_reward(AGENT, 5.0, {"x": 1})
    interaction_id = store.save_agent_interaction(AGENT, "new", "row", feedback="f")
    store.set_interaction_feedback(existing.interaction_ids[0], "changed")
    store.mark_feedback_learned([existing.interaction_ids[1]])
    decision_id = store.save_agent_decision("new-agent", "s", "a", {}, None)
    store.set_decision_reward(existing.decision_ids[1], 3.0)
    return reward_id, interaction_id, decision_id


def test_transaction_that_raises_leaves_nothing_of_the_block(store: MemoryStore) -> None:
    existing = populate(store)
    before = snapshot(store)
    with pytest.raises(_Abort), store.transaction():
        _, interaction_id, decision_id = _write_one_of_everything(store, existing)
        raise _Abort
    assert snapshot(store) == before
    with pytest.raises(UnknownInteractionError):
        store.get_agent_interaction(interaction_id)
    with pytest.raises(UnknownDecisionError):
        store.get_agent_decision(decision_id)


def test_transaction_rollback_is_seen_by_another_store_object(make_store: Any) -> None:
    store, observer = make_store(), make_store()
    existing = populate(store)
    before = snapshot(observer)
    with pytest.raises(_Abort), store.transaction():
        _write_one_of_everything(store, existing)
        raise _Abort
    assert snapshot(observer) == before


def test_committed_transaction_is_seen_by_another_store_object(make_store: Any) -> None:
    store, observer = make_store(), make_store()
    existing = populate(store)
    with store.transaction():
        reward_id, interaction_id, _ = _write_one_of_everything(store, existing)
    assert snapshot(observer) == snapshot(store)
    assert observer.get_agent_rewards(AGENT, limit=1)[0]["id"] == reward_id
    assert observer.get_agent_interaction(interaction_id)["request"] == "new"


def test_nested_transaction_joins_the_outer_one(store: MemoryStore) -> None:
    populate(store)
    before = snapshot(store)
    with pytest.raises(_Abort), store.transaction():
        store.save_agent_reward(AGENT, 1.0, {"outer": True})
        with store.transaction():
            store.save_q_values(AGENT, {"inner": {"a": 1.0}})
            store.save_agent_reward(AGENT, 2.0, {"inner": True})
        store.save_agent_reward(AGENT, 3.0, {"outer": "after"})
        raise _Abort
    assert snapshot(store) == before


def test_store_is_usable_after_a_rolled_back_transaction(store: MemoryStore) -> None:
    with pytest.raises(_Abort), store.transaction():
        store.save_agent_reward(AGENT, 1.0, {})
        raise _Abort
    reward_id = store.save_agent_reward(AGENT, 2.0, {})
    with store.transaction():
        store.save_q_values(AGENT, {"s": {"a": 1.0}})
    assert_history_order(store.get_agent_rewards(AGENT), [reward_id])
    assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}


def test_other_threads_wait_for_the_transaction_and_are_not_rolled_back_with_it(
    store: MemoryStore,
) -> None:
    thread_started = threading.Event()
    thread_result: dict[str, Any] = {}

    def write_from_another_thread() -> None:
        thread_started.set()
        thread_result["id"] = store.save_agent_reward(OTHER, 7.0, {"thread": True})

    with pytest.raises(_Abort), store.transaction():
        store.save_agent_reward(AGENT, 1.0, {"block": True})
        worker = threading.Thread(target=write_from_another_thread)
        worker.start()
        assert thread_started.wait(10)
        worker.join(0.3)
        assert worker.is_alive(), "another thread wrote while the transaction was open"
        raise _Abort
    worker.join(30)
    assert not worker.is_alive()
    assert store.get_agent_rewards(AGENT) == []
    assert [row["id"] for row in store.get_agent_rewards(OTHER)] == [thread_result["id"]]


# ----------------------------------------------------------- threads, reopening
def test_several_threads_writing_through_one_store_lose_nothing(store: MemoryStore) -> None:
    threads, writes = 8, 25

    def write(thread_index: int) -> list[int]:
        ids = []
        for i in range(writes):
            store.save_q_values(AGENT, {f"t{thread_index}-s{i}": {"a": float(i)}})
            ids.append(store.save_agent_reward(AGENT, float(i), {"thread": thread_index}))
            store.save_agent_interaction(OTHER, f"t{thread_index}", f"{i}")
        return ids

    with ThreadPoolExecutor(threads) as pool:
        reward_ids = [rid for ids in pool.map(write, range(threads)) for rid in ids]
    assert len(set(reward_ids)) == threads * writes
    table = store.get_q_table(AGENT)
    assert table == {f"t{t}-s{i}": {"a": float(i)} for t in range(threads) for i in range(writes)}
    rows = store.get_agent_rewards(AGENT, limit=EVERYTHING)
    assert sorted(row["id"] for row in rows) == sorted(reward_ids)
    assert len(store.get_agent_interactions(OTHER, limit=EVERYTHING)) == threads * writes


def test_several_threads_running_transactions_all_commit(store: MemoryStore) -> None:
    threads, blocks = 6, 10

    def write(thread_index: int) -> None:
        for i in range(blocks):
            with store.transaction():
                store.save_q_values(AGENT, {f"t{thread_index}": {f"a{i}": float(i)}})
                store.save_agent_reward(AGENT, float(i), {"thread": thread_index})

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(threads)))
    assert store.get_q_table(AGENT) == {
        f"t{t}": {f"a{i}": float(i) for i in range(blocks)} for t in range(threads)
    }
    assert len(store.get_agent_rewards(AGENT, limit=EVERYTHING)) == threads * blocks


def test_everything_is_there_after_closing_and_reopening(make_store: Any) -> None:
    store = make_store()
    populate(store)
    store.save_q_values(AGENT, {"greeting": {"search": 0.75}})
    store.mark_feedback_learned([store.get_unlearned_feedback(AGENT)[0]["id"]])
    before = snapshot(store)
    store.close()
    with make_store() as reopened:
        assert snapshot(reopened) == before
        assert reopened.schema_version == SCHEMA_VERSION


def test_two_store_objects_on_one_location_merge_each_others_writes(make_store: Any) -> None:
    first, second = make_store(), make_store()
    first.save_q_values(AGENT, {"s1": {"a": 1.0}})
    second.save_q_values(AGENT, {"s2": {"a": 2.0}})
    first.save_q_values(AGENT, {"s1": {"b": 3.0}})
    second.save_arrays(AGENT, {"x": np.ones(2)})
    first.save_arrays(AGENT, {"y": np.zeros(2)})
    expected = {"s1": {"a": 1.0, "b": 3.0}, "s2": {"a": 2.0}}
    assert first.get_q_table(AGENT) == expected
    assert second.get_q_table(AGENT) == expected
    assert sorted(first.get_arrays(AGENT)) == ["x", "y"]
    ids = [first.save_agent_reward(AGENT, 1.0, {}), second.save_agent_reward(AGENT, 2.0, {})]
    assert_history_order(first.get_agent_rewards(AGENT), ids[::-1])


def test_schema_version_is_recorded(store: MemoryStore) -> None:
    assert store.schema_version == SCHEMA_VERSION


def test_close_is_idempotent_and_the_store_is_a_context_manager(make_store: Any) -> None:
    with make_store() as store:
        store.save_agent_reward(AGENT, 1.0, {})
    store.close()
    store.close()
    with make_store() as reopened:
        assert len(reopened.get_agent_rewards(AGENT)) == 1


# ------------------------------------------------------------------- SQL view
def _plain_sql(make_sql: Any, query: str, params: tuple = ()) -> list[tuple]:
    """Run one statement with the plain driver, as a user reading the seed's tables would."""
    if make_sql.backend == "sqlite":
        with contextlib.closing(sqlite3.connect(make_sql.sqlite_path)) as connection:
            rows = connection.execute(query, params).fetchall()
            connection.commit()
            return rows
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(make_sql.location).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        cursor = conn.execute(query.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def test_plain_sql_reads_the_merged_q_table_json(make_sql_store: Any) -> None:
    store = make_sql_store()
    store.save_q_table(AGENT, {"s1": {"a": 1.0}})
    store.save_q_values(AGENT, {"s1": {"b": 2.0}, "s2": {"a": 3.0}})
    rows = _plain_sql(make_sql_store, "SELECT q_table FROM q_tables WHERE agent_name = ?", (AGENT,))
    assert len(rows) == 1
    stored = rows[0][0]
    assert (json.loads(stored) if isinstance(stored, str) else stored) == {
        "s1": {"a": 1.0, "b": 2.0},
        "s2": {"a": 3.0},
    }


def test_feedback_written_by_plain_sql_is_unlearned(make_sql_store: Any) -> None:
    store = make_sql_store()
    interaction_id = store.save_agent_interaction(AGENT, "req", "resp")
    _plain_sql(
        make_sql_store,
        "UPDATE agent_interactions SET feedback = ? WHERE id = ?",
        ("written by hand", interaction_id),
    )
    rows = store.get_unlearned_feedback(AGENT)
    assert [(row["id"], row["feedback"]) for row in rows] == [(interaction_id, "written by hand")]


# ------------------------------------------------------------------ bad input
@dataclass(frozen=True)
class BadCall:
    call: Callable[[MemoryStore, Populated], Any]
    error: type[Exception]
    message: str  # regular expression the error message must match


NAN, INF = float("nan"), float("inf")

BAD_CALLS: dict[str, BadCall] = {
    # save_q_table
    "save_q_table-empty-agent": BadCall(
        lambda s, p: s.save_q_table("", {"s": {"a": 1.0}}), ValueError, "agent_name"
    ),
    "save_q_table-nan": BadCall(
        lambda s, p: s.save_q_table(AGENT, {"ok": {"a": 1.0}, "s": {"a": NAN}}),
        ValueError,
        "q_table",
    ),
    "save_q_table-inf": BadCall(
        lambda s, p: s.save_q_table(AGENT, {"s": {"a": INF}}), ValueError, "q_table"
    ),
    "save_q_table-text-value": BadCall(
        lambda s, p: s.save_q_table(AGENT, {"s": {"a": "high"}}), TypeError, "str"
    ),
    "save_q_table-not-a-mapping": BadCall(
        lambda s, p: s.save_q_table(AGENT, [("s", {"a": 1.0})]), TypeError, "list"
    ),
    # save_q_values
    "save_q_values-empty-agent": BadCall(
        lambda s, p: s.save_q_values("", {"s": {"a": 1.0}}), ValueError, "agent_name"
    ),
    "save_q_values-nan": BadCall(
        lambda s, p: s.save_q_values(AGENT, {"greeting": {"search": 9.0}, "s": {"a": NAN}}),
        ValueError,
        "changed|q_values|q_table",
    ),
    "save_q_values-minus-inf": BadCall(
        lambda s, p: s.save_q_values(AGENT, {"s": {"a": -INF}}),
        ValueError,
        "changed|q_values|q_table",
    ),
    "save_q_values-object-value": BadCall(
        lambda s, p: s.save_q_values(AGENT, {"s": {"a": object()}}), TypeError, "object"
    ),
    # save_policy_params
    "save_policy_params-empty-agent": BadCall(
        lambda s, p: s.save_policy_params("", {"w": 1}), ValueError, "agent_name"
    ),
    "save_policy_params-nan": BadCall(
        lambda s, p: s.save_policy_params(AGENT, {"w": [1.0, NAN]}), ValueError, "policy_params"
    ),
    "save_policy_params-set": BadCall(
        lambda s, p: s.save_policy_params(AGENT, {"w": {1, 2}}), TypeError, "set"
    ),
    "save_policy_params-object": BadCall(
        lambda s, p: s.save_policy_params(AGENT, {"w": object()}), TypeError, "object"
    ),
    "save_policy_params-not-a-mapping": BadCall(
        lambda s, p: s.save_policy_params(AGENT, [1, 2]), TypeError, "list"
    ),
    # save_arrays / delete_arrays
    "save_arrays-empty-agent": BadCall(
        lambda s, p: s.save_arrays("", {"A": np.eye(2)}), ValueError, "agent_name"
    ),
    "save_arrays-nan": BadCall(
        lambda s, p: s.save_arrays(AGENT, {"A": np.zeros(2), "weights_bad": np.array([NAN])}),
        ValueError,
        "arrays|weights_bad",
    ),
    "save_arrays-inf": BadCall(
        lambda s, p: s.save_arrays(AGENT, {"weights_bad": np.array([[1.0, -INF]])}),
        ValueError,
        "arrays|weights_bad",
    ),
    "save_arrays-text-array": BadCall(
        lambda s, p: s.save_arrays(AGENT, {"weights_bad": np.array(["a", "b"])}),
        TypeError,
        "arrays|weights_bad|dtype|str",
    ),
    "delete_arrays-empty-agent": BadCall(
        lambda s, p: s.delete_arrays("", ["A"]), ValueError, "agent_name"
    ),
    # save_agent_reward
    "save_agent_reward-empty-agent": BadCall(
        lambda s, p: s.save_agent_reward("", 1.0, {}), ValueError, "agent_name"
    ),
    "save_agent_reward-nan": BadCall(
        lambda s, p: s.save_agent_reward(AGENT, NAN, {}), ValueError, "reward"
    ),
    "save_agent_reward-inf": BadCall(
        lambda s, p: s.save_agent_reward(AGENT, INF, {}), ValueError, "reward"
    ),
    "save_agent_reward-minus-inf": BadCall(
        lambda s, p: s.save_agent_reward(AGENT, -INF, {}), ValueError, "reward"
    ),
    "save_agent_reward-text-reward": BadCall(
        lambda s, p: s.save_agent_reward(AGENT, "high", {}), TypeError, "reward"
    ),
    "save_agent_reward-nan-component": BadCall(
        lambda s, p: s.save_agent_reward(AGENT, 1.0, {"x": NAN}), ValueError, "reward_components"
    ),
    "save_agent_reward-set-component": BadCall(
        lambda s, p: s.save_agent_reward(AGENT, 1.0, {"x": {1}}), TypeError, "set"
    ),
    "save_agent_reward-object-component": BadCall(
        lambda s, p: s.save_agent_reward(AGENT, 1.0, {"x": object()}), TypeError, "object"
    ),
    # save_agent_interaction / set_interaction_feedback / mark_feedback_learned
    "save_agent_interaction-empty-agent": BadCall(
        lambda s, p: s.save_agent_interaction("", "q", "a"), ValueError, "agent_name"
    ),
    "save_agent_interaction-request-not-text": BadCall(
        lambda s, p: s.save_agent_interaction(AGENT, 123, "a"), TypeError, "request"
    ),
    "save_agent_interaction-response-not-text": BadCall(
        lambda s, p: s.save_agent_interaction(AGENT, "q", None), TypeError, "response"
    ),
    "save_agent_interaction-feedback-not-text": BadCall(
        lambda s, p: s.save_agent_interaction(AGENT, "q", "a", feedback=5), TypeError, "feedback"
    ),
    "set_interaction_feedback-unknown-id": BadCall(
        lambda s, p: s.set_interaction_feedback(10**9, "x"), UnknownInteractionError, "10+"
    ),
    "set_interaction_feedback-not-text": BadCall(
        lambda s, p: s.set_interaction_feedback(p.interaction_ids[0], {"x"}),
        TypeError,
        "feedback",
    ),
    "mark_feedback_learned-unknown-id": BadCall(
        lambda s, p: s.mark_feedback_learned([p.interaction_ids[1], 10**9]),
        UnknownInteractionError,
        "10+",
    ),
    "mark_feedback_learned-not-an-id": BadCall(
        lambda s, p: s.mark_feedback_learned([p.interaction_ids[1], "x"]), TypeError, "str"
    ),
    # save_agent_decision / set_decision_reward
    "save_agent_decision-empty-agent": BadCall(
        lambda s, p: s.save_agent_decision("", "s", "a", {}, None), ValueError, "agent_name"
    ),
    "save_agent_decision-nan-q-value": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {"a": NAN}, None),
        ValueError,
        "q_values",
    ),
    "save_agent_decision-set-q-value": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {"a": {1}}, None), TypeError, "set"
    ),
    "save_agent_decision-nan-reward": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, NAN), ValueError, "reward"
    ),
    "save_agent_decision-object-reward": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, object()), TypeError, "object"
    ),
    "save_agent_decision-zero-propensity": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, propensity=0.0),
        ValueError,
        "propensity",
    ),
    "save_agent_decision-propensity-above-one": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, propensity=1.5),
        ValueError,
        "propensity",
    ),
    "save_agent_decision-nan-propensity": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, propensity=NAN),
        ValueError,
        "propensity",
    ),
    "save_agent_decision-nan-feature": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, features=[1.0, NAN]),
        ValueError,
        "features",
    ),
    "save_agent_decision-text-feature": BadCall(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, features=["a"]),
        TypeError,
        "features",
    ),
    "set_decision_reward-unknown-id": BadCall(
        lambda s, p: s.set_decision_reward(10**9, 1.0), UnknownDecisionError, "10+"
    ),
    "set_decision_reward-nan": BadCall(
        lambda s, p: s.set_decision_reward(p.decision_ids[1], NAN), ValueError, "reward"
    ),
    "set_decision_reward-set": BadCall(
        lambda s, p: s.set_decision_reward(p.decision_ids[1], {1, 2}), TypeError, "set"
    ),
}

LIMITED_READS = (
    "get_agent_rewards",
    "get_agent_interactions",
    "get_unlearned_feedback",
    "get_agent_decisions",
)
PER_AGENT_READS = (
    *LIMITED_READS,
    "get_q_table",
    "get_policy_params",
    "get_arrays",
    "agent_stats",
    "count_agent_decisions",
)

#: One bad write per kind of failure, replayed inside a transaction.
BAD_CALLS_IN_TRANSACTION = [
    "save_q_values-nan",
    "save_q_table-text-value",
    "save_policy_params-set",
    "save_arrays-nan",
    "save_agent_reward-nan",
    "save_agent_interaction-request-not-text",
    "set_interaction_feedback-unknown-id",
    "mark_feedback_learned-unknown-id",
    "save_agent_decision-zero-propensity",
    "set_decision_reward-unknown-id",
]


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_write_raises_a_typed_error_and_changes_nothing(store: MemoryStore, case: str) -> None:
    bad = BAD_CALLS[case]
    existing = populate(store)
    before = snapshot(store)
    with pytest.raises(bad.error, match=bad.message):
        bad.call(store, existing)
    assert snapshot(store) == before


@pytest.mark.parametrize("case", BAD_CALLS_IN_TRANSACTION)
def test_bad_write_inside_a_transaction_rolls_back_and_store_stays_usable(
    store: MemoryStore, case: str
) -> None:
    bad = BAD_CALLS[case]
    existing = populate(store)
    before = snapshot(store)
    with pytest.raises(bad.error), store.transaction():
        bad.call(store, existing)
    assert snapshot(store) == before
    reward_id = store.save_agent_reward(AGENT, 0.5, {"after": case})
    assert store.get_agent_rewards(AGENT, limit=1)[0]["id"] == reward_id


def test_limit_of_zero_or_less_is_a_value_error_for_every_history(store: MemoryStore) -> None:
    populate(store)
    before = snapshot(store)
    for method in LIMITED_READS:
        for limit in (0, -1):
            with pytest.raises(ValueError, match="limit"):
                getattr(store, method)(AGENT, limit=limit)
    with pytest.raises(ValueError, match="batch_size"):
        list(store.iter_agent_decisions(AGENT, batch_size=0))
    assert snapshot(store) == before


def test_empty_agent_name_is_a_value_error_for_every_read(store: MemoryStore) -> None:
    populate(store)
    before = snapshot(store)
    for method in PER_AGENT_READS:
        with pytest.raises(ValueError, match="agent_name"):
            getattr(store, method)("")
    with pytest.raises(ValueError, match="agent_name"):
        list(store.iter_agent_decisions(""))
    assert snapshot(store) == before


# ---------------------------------------------------------- backup and restore
def backup_rows(store: MemoryStore) -> dict[str, list[dict[str, Any]]]:
    """Every row of every backup table, read in one snapshot."""
    with store.snapshot() as read_table:
        return {table: list(read_table(table)) for table in store.backup_tables()}


def test_writers_keep_going_while_a_snapshot_is_open(make_store: Any) -> None:
    """Every read of a snapshot sees one moment, and the snapshot holds up no writer."""
    reader, writer = make_store(), make_store()  # two store objects, as two processes
    reader.save_agent_reward(AGENT, 1.0, {})
    reader.save_q_values(AGENT, {"s": {"a": 1.0}})
    written = threading.Event()

    def write() -> None:
        writer.save_agent_reward(AGENT, 2.0, {})
        writer.save_q_values(AGENT, {"s": {"a": 2.0}})
        written.set()

    thread = threading.Thread(target=write, daemon=True)
    with reader.snapshot() as read_table:
        first = [row["reward"] for row in read_table("agent_rewards")]
        thread.start()
        kept_going = written.wait(timeout=30)
        rewards = [row["reward"] for row in read_table("agent_rewards")]
        values = [row["value"] for row in read_table("q_values")]
    thread.join()
    assert kept_going, "a writer waited for the snapshot to end"
    assert (first, rewards, values) == ([1.0], [1.0], [1.0])
    assert [row["reward"] for row in reader.get_agent_rewards(AGENT)] == [2.0, 1.0]


def test_restoring_a_snapshot_keeps_the_times_of_what_was_stored(store: MemoryStore) -> None:
    """After clear_data and load_rows, q_state_stats and agent_stats report the times of
    the writes that were backed up, not the time of the restore."""
    store.save_agent_reward(AGENT, 1.0, {})
    store.append_learner_steps(AGENT, [("a", np.array([1.0, 2.0]))])
    store.save_q_values(AGENT, {"first": {"a": 1.0}})
    time.sleep(0.02)  # states written at distinct times
    store.save_q_values(AGENT, {"second": {"a": 2.0, "b": 0.5}})
    store.save_arrays(AGENT, {"A": np.eye(2)})
    store.save_policy_params(AGENT, {"w": [1.0]})  # the tables are newer than the histories
    states = sorted(store.q_state_stats(AGENT), key=lambda row: row["state"])
    stats = store.agent_stats(AGENT)
    rows = backup_rows(store)
    time.sleep(0.05)  # the restore happens later than every write
    store.clear_data()
    for table in store.backup_tables():
        store.load_rows(table, rows[table])
    assert sorted(store.q_state_stats(AGENT), key=lambda row: row["state"]) == states
    assert store.agent_stats(AGENT) == stats
    assert backup_rows(store) == rows
