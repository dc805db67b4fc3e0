"""The store suite, learned state: Q-tables, policy parameters, arrays, steps, the cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlmemory.store.base import MemoryStore
from rlmemory.testing._store_base import StoreFactory, SuiteBase
from rlmemory.testing._store_values import (
    AGENT,
    ARRAY_SAMPLES,
    HYPOTHESIS_SETTINGS,
    OTHER,
    TRICKY_KEYS,
    assert_same_arrays,
    json_text,
    json_values,
    text_key,
)


def _step(key: str, *values: float) -> tuple[str, np.ndarray]:
    return key, np.array(values, dtype=np.float64)


class QTableTests(SuiteBase):
    """save_q_table, get_q_table, save_q_values, get_q_values."""

    def test_q_table_of_an_agent_never_saved_is_none(self, store: MemoryStore) -> None:
        assert store.get_q_table(AGENT) is None
        assert store.get_q_values(AGENT, "s") == {}

    def test_saved_q_table_round_trips(self, store: MemoryStore) -> None:
        table = {"greeting": {"search": 0.5, "code": -1.25}, "bug": {"code": 2.0, "s": 1e-300}}
        store.save_q_table(AGENT, table)
        loaded = store.get_q_table(AGENT)
        assert loaded == table
        assert all(type(v) is float for actions in loaded.values() for v in actions.values())

    def test_integer_q_values_are_returned_as_floats(self, store: MemoryStore) -> None:
        loose: Any = store  # numpy numbers are accepted, beyond the annotation
        loose.save_q_table(AGENT, {"s": {"a": 3, "b": np.int64(-2), "c": np.float32(0.5)}})
        loaded = store.get_q_table(AGENT)
        assert loaded == {"s": {"a": 3.0, "b": -2.0, "c": 0.5}}
        assert all(type(value) is float for value in loaded["s"].values())

    def test_save_q_table_replaces_the_whole_table(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {"old": {"a": 1.0}, "kept": {"a": 1.0, "b": 2.0}})
        store.save_q_table(AGENT, {"kept": {"b": 5.0}, "new": {"c": 3.0}})
        assert store.get_q_table(AGENT) == {"kept": {"b": 5.0}, "new": {"c": 3.0}}

    def test_q_table_saved_empty_reads_as_empty_dict(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {})
        assert store.get_q_table(AGENT) == {}

    def test_q_table_emptied_after_having_entries_reads_as_empty_dict(
        self, store: MemoryStore
    ) -> None:
        store.save_q_table(AGENT, {"s": {"a": 1.0}})
        store.save_q_table(AGENT, {})
        assert store.get_q_table(AGENT) == {}
        assert store.get_q_values(AGENT, "s") == {}

    def test_states_without_actions_are_dropped(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {"s": {"a": 1.0}, "empty": {}})
        assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}

    def test_save_q_values_merges_and_keeps_untouched_entries(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {"s1": {"a": 1.0, "b": 2.0}, "s2": {"a": 3.0}})
        store.save_q_values(AGENT, {"s1": {"b": 20.0, "c": 30.0}, "s3": {"a": 4.0}})
        assert store.get_q_table(AGENT) == {
            "s1": {"a": 1.0, "b": 20.0, "c": 30.0},
            "s2": {"a": 3.0},
            "s3": {"a": 4.0},
        }

    def test_save_q_values_on_a_never_saved_agent_creates_its_table(
        self, store: MemoryStore
    ) -> None:
        store.save_q_values(AGENT, {"s": {"a": 0.5}})
        store.save_q_values(AGENT, {"s": {"b": 0.25}})
        assert store.get_q_table(AGENT) == {"s": {"a": 0.5, "b": 0.25}}

    def test_save_q_table_after_save_q_values_replaces_merged_entries(
        self, store: MemoryStore
    ) -> None:
        store.save_q_values(AGENT, {"s": {"a": 0.5}, "t": {"a": 1.0}})
        store.save_q_table(AGENT, {"u": {"a": 2.0}})
        store.save_q_values(AGENT, {"v": {"a": 3.0}})
        assert store.get_q_table(AGENT) == {"u": {"a": 2.0}, "v": {"a": 3.0}}

    def test_get_q_values_reads_one_state(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {"s": {"a": 1.0, "b": -2.0}, "t": {"a": 3.0}})
        store.save_q_values(AGENT, {"s": {"c": 0.5}, "": {"a": 4.0}})
        assert store.get_q_values(AGENT, "s") == {"a": 1.0, "b": -2.0, "c": 0.5}
        assert store.get_q_values(AGENT, "") == {"a": 4.0}
        assert store.get_q_values(AGENT, "missing") == {}
        assert store.get_q_values(OTHER, "s") == {}
        assert all(type(value) is float for value in store.get_q_values(AGENT, "s").values())

    def test_q_tables_are_kept_per_agent(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {"s": {"a": 1.0}})
        store.save_q_values(OTHER, {"s": {"a": 2.0}})
        assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}
        assert store.get_q_table(OTHER) == {"s": {"a": 2.0}}

    def test_q_table_state_and_action_keys_round_trip_exactly(self, store: MemoryStore) -> None:
        def case(agent: str, key: str) -> Callable[[], None]:
            def run() -> None:
                store.save_q_table(agent, {key: {key: 1.5, "plain": 2.0}})
                store.save_q_values(agent, {key: {key + "!": 3.0}, "plain": {key: 4.0}})
                assert store.get_q_table(agent) == {
                    key: {key: 1.5, "plain": 2.0, key + "!": 3.0},
                    "plain": {key: 4.0},
                }
                assert store.get_q_values(agent, key) == {key: 1.5, "plain": 2.0, key + "!": 3.0}

            return run

        self.run_cases(
            "test_q_table_state_and_action_keys_round_trip_exactly",
            {name: case(f"keys-{name}", key) for name, key in sorted(TRICKY_KEYS.items())},
        )

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
    def test_any_q_table_round_trips_exactly(
        self, store: MemoryStore, table: dict[str, dict[str, float]]
    ) -> None:
        store.save_q_table(AGENT, table)
        assert store.get_q_table(AGENT) == table


class PolicyParamsTests(SuiteBase):
    """save_policy_params, get_policy_params, delete_policy_params."""

    def test_policy_params_of_an_agent_never_saved_are_none(self, store: MemoryStore) -> None:
        assert store.get_policy_params(AGENT) is None

    def test_policy_params_round_trip_with_their_json_types(self, store: MemoryStore) -> None:
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
        assert loaded is not None
        assert type(loaded["steps"]) is int
        assert type(loaded["baseline"]) is float
        assert type(loaded["frozen"]) is bool

    def test_save_policy_params_replaces_the_previous_ones(self, store: MemoryStore) -> None:
        store.save_policy_params(AGENT, {"old": 1, "shared": 1})
        store.save_policy_params(AGENT, {"shared": 2})
        assert store.get_policy_params(AGENT) == {"shared": 2}

    def test_policy_params_saved_empty_read_as_empty_dict(self, store: MemoryStore) -> None:
        store.save_policy_params(AGENT, {})
        assert store.get_policy_params(AGENT) == {}

    def test_policy_params_accept_numpy_scalars_and_arrays(self, store: MemoryStore) -> None:
        store.save_policy_params(AGENT, {"w": np.array([0.5, 1.5]), "n": np.int64(3)})
        assert store.get_policy_params(AGENT) == {"w": [0.5, 1.5], "n": 3}

    def test_delete_policy_params_says_whether_there_were_any(self, store: MemoryStore) -> None:
        assert store.delete_policy_params(AGENT) is False
        store.save_policy_params(AGENT, {"w": 1})
        store.save_policy_params(OTHER, {"w": 2})
        assert store.delete_policy_params(AGENT) is True
        assert store.get_policy_params(AGENT) is None
        assert store.delete_policy_params(AGENT) is False
        assert store.get_policy_params(OTHER) == {"w": 2}

    @HYPOTHESIS_SETTINGS
    @given(params=st.dictionaries(json_text, json_values, max_size=5))
    def test_any_json_policy_params_round_trip(
        self, store: MemoryStore, params: dict[str, Any]
    ) -> None:
        store.save_policy_params(AGENT, params)
        assert store.get_policy_params(AGENT) == params


class ArrayTests(SuiteBase):
    """save_arrays, get_arrays, delete_arrays."""

    def test_arrays_round_trip_dtype_shape_and_values(self, store: MemoryStore) -> None:
        store.save_arrays(AGENT, ARRAY_SAMPLES)
        assert_same_arrays(store.get_arrays(AGENT), ARRAY_SAMPLES)

    def test_non_contiguous_arrays_round_trip_by_value(self, store: MemoryStore) -> None:
        fortran = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
        strided = np.arange(10, dtype=np.float64)[::3]
        transposed = np.arange(6, dtype=np.int64).reshape(2, 3).T
        store.save_arrays(AGENT, {"fortran": fortran, "strided": strided, "transposed": transposed})
        assert_same_arrays(
            store.get_arrays(AGENT),
            {"fortran": fortran.copy(), "strided": strided.copy(), "transposed": transposed.copy()},
        )

    def test_get_arrays_of_an_agent_without_arrays_is_empty(self, store: MemoryStore) -> None:
        assert store.get_arrays(AGENT) == {}

    def test_save_arrays_upserts_and_keeps_unnamed_arrays(self, store: MemoryStore) -> None:
        store.save_arrays(AGENT, {"A": np.eye(2), "b": np.zeros(2)})
        store.save_arrays(AGENT, {"b": np.ones(3), "c": np.array([4], dtype=np.int64)})
        assert_same_arrays(
            store.get_arrays(AGENT),
            {"A": np.eye(2), "b": np.ones(3), "c": np.array([4], dtype=np.int64)},
        )

    def test_get_arrays_by_keys_returns_only_those_that_exist(self, store: MemoryStore) -> None:
        store.save_arrays(AGENT, {"A": np.eye(2), "b": np.zeros(2)})
        assert_same_arrays(store.get_arrays(AGENT, ["b", "missing"]), {"b": np.zeros(2)})
        assert store.get_arrays(AGENT, []) == {}

    def test_arrays_are_kept_per_agent(self, store: MemoryStore) -> None:
        store.save_arrays(AGENT, {"A": np.eye(2)})
        store.save_arrays(OTHER, {"A": np.zeros((2, 2))})
        assert_same_arrays(store.get_arrays(AGENT), {"A": np.eye(2)})
        assert_same_arrays(store.get_arrays(OTHER), {"A": np.zeros((2, 2))})

    def test_delete_arrays_by_key_counts_what_it_deleted(self, store: MemoryStore) -> None:
        store.save_arrays(AGENT, {"A": np.eye(2), "b": np.zeros(2), "c": np.ones(1)})
        store.save_arrays(OTHER, {"A": np.eye(2)})
        assert store.delete_arrays(AGENT, ["A", "missing"]) == 1
        assert sorted(store.get_arrays(AGENT)) == ["b", "c"]
        assert store.delete_arrays(AGENT) == 2
        assert store.get_arrays(AGENT) == {}
        assert store.delete_arrays(AGENT) == 0
        assert sorted(store.get_arrays(OTHER)) == ["A"]

    @pytest.mark.parametrize("key_name", ["sql_injection", "emoji", "path_parent", "long_300"])
    def test_array_keys_round_trip_exactly(self, store: MemoryStore, key_name: str) -> None:
        key = TRICKY_KEYS[key_name]
        store.save_arrays(AGENT, {key: np.array([1.0, 2.0])})
        assert list(store.get_arrays(AGENT, [key])) == [key]


class LearnerStepTests(SuiteBase):
    """append_learner_steps, get_learner_steps, delete_learner_steps."""

    def test_steps_round_trip_bit_for_bit_in_append_order(self, store: MemoryStore) -> None:
        awkward = [0.1, -0.0, 5e-324, 1.7976931348623157e308, 1 / 3, -2.5]
        ids = store.append_learner_steps(AGENT, [_step("a", *awkward), _step("b", 1.0)])
        steps = store.get_learner_steps(AGENT)
        assert [step.id for step in steps] == ids and ids[0] < ids[1]
        assert [step.key for step in steps] == ["a", "b"]
        assert steps[0].values.dtype == np.float64
        assert steps[0].values.tobytes() == np.array(awkward).tobytes()
        assert steps[1].values.tolist() == [1.0]
        assert store.append_learner_steps(AGENT, []) == []

    def test_get_steps_after_an_id_returns_only_newer_steps(self, store: MemoryStore) -> None:
        first = store.append_learner_steps(AGENT, [_step("a", 1.0), _step("a", 2.0)])
        later = store.append_learner_steps(AGENT, [_step("b", 3.0)])
        newer = store.get_learner_steps(AGENT, after_id=first[0])
        assert [step.values[0] for step in newer] == [2.0, 3.0]
        assert [step.id for step in store.get_learner_steps(AGENT, after_id=first[1])] == later
        assert store.get_learner_steps(AGENT, after_id=later[0]) == []

    def test_steps_are_kept_per_agent(self, store: MemoryStore) -> None:
        store.append_learner_steps(AGENT, [_step("a", 1.0)])
        store.append_learner_steps(OTHER, [_step("a", 2.0)])
        assert [step.values[0] for step in store.get_learner_steps(AGENT)] == [1.0]
        assert [step.values[0] for step in store.get_learner_steps(OTHER)] == [2.0]
        assert store.get_learner_steps("nobody") == []

    def test_delete_steps_through_an_id_counts_and_keeps_the_newer(
        self, store: MemoryStore
    ) -> None:
        ids = store.append_learner_steps(AGENT, [_step("a", float(i)) for i in range(5)])
        store.append_learner_steps(OTHER, [_step("a", 9.0)])
        assert store.delete_learner_steps(AGENT, through_id=ids[2]) == 3
        assert [step.id for step in store.get_learner_steps(AGENT)] == ids[3:]
        assert store.delete_learner_steps(AGENT) == 2
        assert store.get_learner_steps(AGENT) == []
        assert len(store.get_learner_steps(OTHER)) == 1

    def test_ids_are_never_reused_after_deleting_every_step(self, make_store: StoreFactory) -> None:
        self.require("reopens")
        with make_store() as store:
            ids = store.append_learner_steps(AGENT, [_step("a", 1.0), _step("a", 2.0)])
            store.delete_learner_steps(AGENT)
        with make_store() as store:
            (new_id,) = store.append_learner_steps(AGENT, [_step("a", 3.0)])
            assert new_id > ids[-1]
            after = store.get_learner_steps(AGENT, after_id=ids[-1])
            assert [step.values[0] for step in after] == [3.0]

    def test_steps_survive_reopening(self, make_store: StoreFactory) -> None:
        self.require("reopens")
        with make_store() as store:
            store.append_learner_steps(AGENT, [_step("search", 0.5, 1.0, 2.0)])
        with make_store() as store:
            (step,) = store.get_learner_steps(AGENT)
        assert (step.key, step.values.tolist()) == ("search", [0.5, 1.0, 2.0])

    def test_steps_appended_in_a_failed_transaction_are_not_stored(
        self, store: MemoryStore
    ) -> None:
        kept = store.append_learner_steps(AGENT, [_step("a", 1.0)])
        with pytest.raises(RuntimeError), store.transaction():
            store.append_learner_steps(AGENT, [_step("a", 2.0)])
            store.delete_learner_steps(AGENT)
            raise RuntimeError("the update failed")
        assert [step.id for step in store.get_learner_steps(AGENT)] == kept

    @pytest.mark.parametrize(
        ("steps", "error", "words"),
        [
            ([("a", np.array([np.nan]))], ValueError, "NaN"),
            ([("a", np.array([[1.0]]))], ValueError, "1-D"),
            ([("", np.array([1.0]))], ValueError, "non-empty"),
            ([("a", [1.0])], TypeError, "numpy array"),
            ([(1, np.array([1.0]))], TypeError, "key"),
            ("a", TypeError, "sequence"),
            ([("a",)], TypeError, "pair"),
        ],
    )
    def test_bad_steps_are_refused_and_nothing_is_stored(
        self, store: MemoryStore, steps: Any, error: type[Exception], words: str
    ) -> None:
        good = ("a", np.array([1.0]))
        with pytest.raises(error, match=words):
            store.append_learner_steps(AGENT, [good, *steps] if isinstance(steps, list) else steps)
        assert store.get_learner_steps(AGENT) == []

    @pytest.mark.parametrize("bound", [-1, 1.5, True])
    def test_bad_step_bounds_are_refused(self, store: MemoryStore, bound: Any) -> None:
        kept = store.append_learner_steps(AGENT, [_step("a", 1.0)])
        with pytest.raises((TypeError, ValueError)):
            store.get_learner_steps(AGENT, after_id=bound)
        with pytest.raises((TypeError, ValueError)):
            store.delete_learner_steps(AGENT, through_id=bound)
        assert [step.id for step in store.get_learner_steps(AGENT)] == kept


class FeatureCacheTests(SuiteBase):
    """save_feature_vectors, get_feature_vectors, count_feature_vectors,
    prune_feature_vectors."""

    def test_vectors_round_trip_exactly_and_survive_reopening(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        vectors = {
            text_key("a"): np.array([0.1, -2.5e-300, 1e300]),
            text_key("b"): np.array([1.0 / 3.0]),
        }
        with make_store() as store:
            store.save_feature_vectors("emb:v1", vectors)
        with make_store() as store:
            found = store.get_feature_vectors(
                "emb:v1", [text_key("a"), text_key("b"), text_key("missing")]
            )
            assert set(found) == {text_key("a"), text_key("b")}
            for name, vector in vectors.items():
                assert found[name].dtype == np.float64
                assert found[name].tolist() == vector.tolist()
            assert store.get_feature_vectors("emb:other", [text_key("a")]) == {}
            assert store.get_feature_vectors("emb:v1", []) == {}
            assert store.count_feature_vectors("emb:v1") == 2
            assert store.count_feature_vectors("emb:other") == 0

    def test_a_cached_key_keeps_its_first_vector(self, store: MemoryStore) -> None:
        store.save_feature_vectors("emb", {text_key("a"): np.array([1.0])})
        store.save_feature_vectors("emb", {text_key("a"): np.array([2.0])})
        assert store.get_feature_vectors("emb", [text_key("a")])[text_key("a")].tolist() == [1.0]

    def test_pruning_keeps_the_newest_vectors_of_that_featurizer_only(
        self, store: MemoryStore
    ) -> None:
        for index in range(6):
            store.save_feature_vectors("emb", {text_key(str(index)): np.array([float(index)])})
        store.save_feature_vectors("kept", {text_key("x"): np.array([1.0])})
        assert store.prune_feature_vectors("emb", 4) == 2
        assert store.count_feature_vectors("emb") == 4
        left = store.get_feature_vectors("emb", [text_key(str(i)) for i in range(6)])
        assert len(left) == 4
        assert text_key("5") in left and text_key("4") in left
        assert store.prune_feature_vectors("emb", 10) == 0
        assert store.count_feature_vectors("kept") == 1
        assert store.prune_feature_vectors("emb", 0) == 4
        assert store.count_feature_vectors("emb") == 0

    @pytest.mark.parametrize(
        ("vectors", "error", "message"),
        [
            ({"not-a-sha": np.array([1.0])}, ValueError, "64 hex digits"),
            ({text_key("a"): np.array([np.nan])}, ValueError, "NaN or infinity"),
            ({text_key("a"): np.array([[1.0]])}, ValueError, "1-D"),
            ({text_key("a"): np.array([])}, ValueError, "1-D"),
            ({text_key("a"): ["x"]}, TypeError, "numbers"),
            ([1.0], TypeError, "mapping"),
        ],
    )
    def test_bad_vectors_are_refused_and_nothing_is_written(
        self, store: MemoryStore, vectors: Any, error: type[Exception], message: str
    ) -> None:
        good = {text_key("good"): np.array([1.0])}
        with pytest.raises(error, match=message):
            store.save_feature_vectors(
                "emb", {**good, **vectors} if isinstance(vectors, dict) else vectors
            )
        assert store.count_feature_vectors("emb") == 0

    def test_bad_names_keys_and_limits_are_refused(self, store: MemoryStore) -> None:
        store.save_feature_vectors("emb", {text_key("kept"): np.array([1.0])})
        with pytest.raises(ValueError, match="featurizer must be a non-empty"):
            store.save_feature_vectors("", {text_key("a"): np.array([1.0])})
        with pytest.raises(TypeError, match="featurizer must be a str"):
            store.get_feature_vectors(None, [text_key("a")])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="keys must be a sequence"):
            store.get_feature_vectors("emb", text_key("a"))
        with pytest.raises(ValueError, match="keep must be a non-negative int"):
            store.prune_feature_vectors("emb", -1)
        with pytest.raises(TypeError, match="featurizer"):
            store.count_feature_vectors(3)  # type: ignore[arg-type]
        assert store.count_feature_vectors("emb") == 1

    def test_a_rolled_back_transaction_caches_nothing(self, store: MemoryStore) -> None:
        with pytest.raises(RuntimeError, match="boom"), store.transaction():
            store.save_feature_vectors("emb", {text_key("a"): np.array([1.0])})
            raise RuntimeError("boom")
        assert store.get_feature_vectors("emb", [text_key("a")]) == {}
