"""The store suite, together: transactions, threads, several store objects and processes,
the learner lock, reopening and closing."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlmemory.errors import NotAStoreError, UnknownDecisionError, UnknownInteractionError
from rlmemory.store.base import SCHEMA_VERSION, MemoryStore
from rlmemory.testing._store_base import StoreFactory, SuiteBase
from rlmemory.testing._store_values import (
    AGENT,
    EVERYTHING,
    OTHER,
    Populated,
    assert_history_order,
    observe,
    populate,
)

#: Read-modify-write updates per writer in the learner-lock tests.
LOCKED_UPDATES = 15


class _Abort(Exception):
    pass


def _write_one_of_everything(store: MemoryStore, existing: Populated) -> tuple[int, int, int]:
    store.save_q_table(OTHER, {"replaced": {"a": 9.0}})
    store.save_q_values(AGENT, {"greeting": {"search": 99.0}, "new": {"a": 1.0}})
    store.save_policy_params(AGENT, {"replaced": True})
    store.save_arrays(AGENT, {"A": np.zeros((3, 3)), "new": np.ones(2)})
    store.delete_arrays(AGENT, ["b"])
    store.append_learner_steps(AGENT, [("new", np.array([2.0]))])
    reward_id = store.save_agent_reward(AGENT, 5.0, {"x": 1})
    interaction_id = store.save_agent_interaction(AGENT, "new", "row", feedback="f")
    store.set_interaction_feedback(existing.interaction_ids[0], "changed")
    store.mark_feedback_learned([existing.interaction_ids[1]])
    decision_id = store.save_agent_decision("new-agent", "s", "a", {}, None)
    store.set_decision_reward(existing.decision_ids[1], 3.0)
    store.update_agent_reward(existing.reward_ids[0], 7.0)
    store.delete_agent_interaction(existing.interaction_ids[2])
    store.save_version(AGENT, b"v2", "in the block")
    store.save_setting("ns", "new", {"n": 1})
    store.delete_q_states(AGENT, ["bug"])
    return reward_id, interaction_id, decision_id


def _locked_increment(store: MemoryStore, updates: int) -> None:
    """Add 1 to a Q-value and an array ``updates`` times, reading each inside the lock."""
    for _ in range(updates):
        with store.transaction():
            store.lock_learner(AGENT)
            value = store.get_q_values(AGENT, "s").get("a", 0.0)
            count = store.get_arrays(AGENT, ["n"]).get("n", np.zeros(1, dtype=np.int64))
            store.save_q_values(AGENT, {"s": {"a": value + 1.0}})
            store.save_arrays(AGENT, {"n": count + 1})


class TransactionTests(SuiteBase):
    """transaction: all or nothing, nested blocks, other threads and store objects."""

    def test_transaction_stores_every_write_when_the_block_ends(self, store: MemoryStore) -> None:
        with store.transaction():
            store.save_q_values(AGENT, {"s": {"a": 1.0}})
            reward_id = store.save_agent_reward(AGENT, 1.0, {})
            decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, None)
        assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}
        assert_history_order(store.get_agent_rewards(AGENT), [reward_id])
        assert store.get_agent_decision(decision_id)["state"] == "s"

    def test_writes_inside_a_transaction_are_readable_inside_it(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {"s": {"a": 1.0}})
        with store.transaction():
            store.save_q_values(AGENT, {"s": {"b": 2.0}})
            decision_id = store.save_agent_decision(AGENT, "s", "b", {"b": 2.0}, None)
            assert store.get_q_table(AGENT) == {"s": {"a": 1.0, "b": 2.0}}
            assert store.get_q_values(AGENT, "s") == {"a": 1.0, "b": 2.0}
            assert store.get_agent_decision(decision_id)["selected_action"] == "b"

    def test_transaction_that_raises_leaves_nothing_of_the_block(self, store: MemoryStore) -> None:
        existing = populate(store)
        before = observe(store)
        with pytest.raises(_Abort), store.transaction():
            _, interaction_id, decision_id = _write_one_of_everything(store, existing)
            raise _Abort
        assert observe(store) == before
        with pytest.raises(UnknownInteractionError):
            store.get_agent_interaction(interaction_id)
        with pytest.raises(UnknownDecisionError):
            store.get_agent_decision(decision_id)

    def test_transaction_rollback_is_seen_by_another_store_object(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        store, observer = make_store(), make_store()
        existing = populate(store)
        before = observe(observer)
        with pytest.raises(_Abort), store.transaction():
            _write_one_of_everything(store, existing)
            raise _Abort
        assert observe(observer) == before

    def test_committed_transaction_is_seen_by_another_store_object(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        store, observer = make_store(), make_store()
        existing = populate(store)
        with store.transaction():
            reward_id, interaction_id, _ = _write_one_of_everything(store, existing)
        assert observe(observer) == observe(store)
        assert observer.get_agent_rewards(AGENT, limit=1)[0]["id"] == reward_id
        assert observer.get_agent_interaction(interaction_id)["request"] == "new"

    def test_nested_transaction_joins_the_outer_one(self, store: MemoryStore) -> None:
        populate(store)
        before = observe(store)
        with pytest.raises(_Abort), store.transaction():
            store.save_agent_reward(AGENT, 1.0, {"outer": True})
            with store.transaction():
                store.save_q_values(AGENT, {"inner": {"a": 1.0}})
                store.save_agent_reward(AGENT, 2.0, {"inner": True})
            store.save_agent_reward(AGENT, 3.0, {"outer": "after"})
            raise _Abort
        assert observe(store) == before

    def test_store_is_usable_after_a_rolled_back_transaction(self, store: MemoryStore) -> None:
        with pytest.raises(_Abort), store.transaction():
            store.save_agent_reward(AGENT, 1.0, {})
            raise _Abort
        reward_id = store.save_agent_reward(AGENT, 2.0, {})
        with store.transaction():
            store.save_q_values(AGENT, {"s": {"a": 1.0}})
        assert_history_order(store.get_agent_rewards(AGENT), [reward_id])
        assert store.get_q_table(AGENT) == {"s": {"a": 1.0}}

    def test_other_threads_wait_for_the_transaction_and_are_not_rolled_back_with_it(
        self, store: MemoryStore
    ) -> None:
        thread_started = threading.Event()
        thread_result: dict[str, Any] = {}

        def write_from_another_thread() -> None:
            thread_started.set()
            thread_result["id"] = store.save_agent_reward(OTHER, 7.0, {"thread": True})

        worker = threading.Thread(target=write_from_another_thread)
        with pytest.raises(_Abort), store.transaction():
            store.save_agent_reward(AGENT, 1.0, {"block": True})
            worker.start()
            assert thread_started.wait(10)
            worker.join(0.3)
            assert worker.is_alive(), "another thread wrote while the transaction was open"
            raise _Abort
        worker.join(30)
        assert not worker.is_alive()
        assert store.get_agent_rewards(AGENT) == []
        assert [row["id"] for row in store.get_agent_rewards(OTHER)] == [thread_result["id"]]


class SharingTests(SuiteBase):
    """Threads, store objects and processes sharing one store; lock_learner."""

    def test_several_threads_writing_through_one_store_lose_nothing(
        self, store: MemoryStore
    ) -> None:
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
        expected = {f"t{t}-s{i}": {"a": float(i)} for t in range(threads) for i in range(writes)}
        assert table == expected
        rows = store.get_agent_rewards(AGENT, limit=EVERYTHING)
        assert sorted(row["id"] for row in rows) == sorted(reward_ids)
        assert len(store.get_agent_interactions(OTHER, limit=EVERYTHING)) == threads * writes

    def test_several_threads_running_transactions_all_commit(self, store: MemoryStore) -> None:
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

    def test_two_store_objects_on_one_location_merge_each_others_writes(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
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
        first_version = first.save_version(AGENT, b"a")
        assert second.save_version(AGENT, b"b") == first_version + 1

    def test_lock_learner_outside_a_transaction_has_no_lasting_effect(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store()
        store.lock_learner(AGENT)
        store.lock_learner("never-written")
        store.save_q_values(AGENT, {"s": {"a": 1.0}})
        if self.reopens:
            other = make_store()
            other.save_q_values(AGENT, {"s": {"b": 2.0}})
            with other.transaction():
                other.lock_learner(AGENT)
                other.save_q_values(AGENT, {"s": {"c": 3.0}})
        assert store.list_agents() == [AGENT]

    def test_locked_read_modify_writes_of_two_store_objects_all_count(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        writers = [make_store(), make_store()]
        with ThreadPoolExecutor(len(writers)) as pool:
            list(pool.map(lambda writer: _locked_increment(writer, LOCKED_UPDATES), writers))
        total = len(writers) * LOCKED_UPDATES
        reader = make_store()
        assert reader.get_q_values(AGENT, "s") == {"a": float(total)}
        assert reader.get_arrays(AGENT)["n"].tolist() == [total]

    def test_locked_read_modify_writes_of_two_processes_all_count(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        self.require("supports_processes")
        if "fork" not in multiprocessing.get_all_start_methods():
            pytest.skip("the process tests fork, which this platform cannot")
        make_store().close()  # create the store before the children race to
        context = multiprocessing.get_context("fork")
        children = [
            context.Process(target=self._child_increments, args=(make_store.location,))
            for _ in range(2)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
        assert [child.exitcode for child in children] == [0, 0]
        reader = make_store()
        assert reader.get_q_values(AGENT, "s") == {"a": float(2 * LOCKED_UPDATES)}
        assert reader.get_arrays(AGENT)["n"].tolist() == [2 * LOCKED_UPDATES]
        rewards = reader.get_agent_rewards(AGENT, limit=EVERYTHING)
        assert len(rewards) == 2 * LOCKED_UPDATES

    def _child_increments(self, location: Any) -> None:
        with self.open_store(location) as store:
            _locked_increment(store, LOCKED_UPDATES)
            for i in range(LOCKED_UPDATES):
                store.save_agent_reward(AGENT, float(i), {})


class LifecycleTests(SuiteBase):
    """Reopening, schema_version, close and the context manager."""

    def test_everything_is_there_after_closing_and_reopening(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        store = make_store()
        populate(store)
        store.save_q_values(AGENT, {"greeting": {"search": 0.75}})
        store.mark_feedback_learned([store.get_unlearned_feedback(AGENT)[0]["id"]])
        before = observe(store)
        store.close()
        with make_store() as reopened:
            assert observe(reopened) == before
            assert reopened.schema_version == SCHEMA_VERSION

    def test_opening_only_an_existing_store_refuses_a_location_without_one(
        self, location_without_store: Any
    ) -> None:
        self.require("opens_existing_only")
        paths_before = _paths_below(location_without_store)
        for _ in range(2):  # the second refusal shows the first created nothing
            with pytest.raises(NotAStoreError):
                self.open_store(location_without_store, create=False)
        assert _paths_below(location_without_store) == paths_before
        with self.open_store(location_without_store) as created:
            created.save_agent_reward(AGENT, 1.0, {})
        with self.open_store(location_without_store, create=False) as existing:
            assert len(existing.get_agent_rewards(AGENT)) == 1

    def test_schema_version_is_recorded(self, store: MemoryStore) -> None:
        assert store.schema_version == SCHEMA_VERSION

    def test_close_is_idempotent_and_the_store_is_a_context_manager(
        self, make_store: StoreFactory
    ) -> None:
        with make_store() as store:
            assert store.save_agent_reward(AGENT, 1.0, {}) > 0
        store.close()
        store.close()
        if self.reopens:
            with make_store() as reopened:
                assert len(reopened.get_agent_rewards(AGENT)) == 1


def _paths_below(location: Any) -> list[str] | None:
    """The paths at and below ``location`` when it is a path (None for a URL)."""
    if not isinstance(location, os.PathLike):
        return None
    root = Path(location)
    if not root.exists():
        return []
    return sorted(str(path) for path in [root, *root.rglob("*")])
