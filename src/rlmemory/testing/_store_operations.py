"""The store suite, keeping and correcting: versions, corrections, pruning, settings,
and what a store tells about its agents."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from hypothesis import given

from rlmemory.errors import UnknownInteractionError
from rlmemory.store.base import MemoryStore
from rlmemory.testing._store_base import StoreFactory, SuiteBase
from rlmemory.testing._store_values import (
    AGENT,
    COLLIDING_AGENT_NAMES,
    HYPOTHESIS_SETTINGS,
    OTHER,
    json_text,
    observe,
    populate,
)


class VersionTests(SuiteBase):
    """save_version, list_versions, get_version, delete_versions."""

    def test_versions_are_numbered_per_agent_from_one(self, store: MemoryStore) -> None:
        assert store.list_versions(AGENT) == []
        before = time.time()
        numbers = [store.save_version(AGENT, bytes([n]) * n, f"v{n}") for n in (1, 2, 3)]
        loose: Any = store  # payloads may be any bytes-like object, beyond the annotation
        other = loose.save_version(OTHER, bytearray(b"other"))
        after = time.time()
        assert numbers == [1, 2, 3] and other == 1
        listed = store.list_versions(AGENT)
        assert [row["version"] for row in listed] == [1, 2, 3]
        assert [(row["note"], row["size"]) for row in listed] == [("v1", 1), ("v2", 2), ("v3", 3)]
        for row in listed:
            assert type(row["created"]) is float
            assert before - 5 <= row["created"] <= after + 5
            assert set(row) >= {"version", "note", "created", "size"}
        assert store.list_versions(OTHER)[0]["note"] == ""

    def test_a_version_holds_its_payload_exactly(self, store: MemoryStore) -> None:
        payload = bytes(range(256)) * 40
        loose: Any = store  # payloads may be any bytes-like object, beyond the annotation
        number = loose.save_version(AGENT, memoryview(payload), "all bytes")
        version = store.get_version(AGENT, number)
        assert version["payload"] == payload and type(version["payload"]) is bytes
        assert (version["version"], version["note"], version["size"]) == (
            number,
            "all bytes",
            10240,
        )
        assert store.get_version(AGENT, store.save_version(AGENT, b"", "empty"))["payload"] == b""

    def test_an_unknown_version_is_a_lookup_error(self, store: MemoryStore) -> None:
        store.save_version(AGENT, b"one")
        for unknown in (2, 0, 10**6):
            with pytest.raises(LookupError):
                store.get_version(AGENT, unknown)
        with pytest.raises(LookupError):
            store.get_version(OTHER, 1)

    def test_delete_versions_counts_those_that_existed(self, store: MemoryStore) -> None:
        for number in range(4):
            store.save_version(AGENT, b"x" * number, f"v{number + 1}")
        store.save_version(OTHER, b"kept")
        assert store.delete_versions(AGENT, [1, 3, 99]) == 2
        assert [row["version"] for row in store.list_versions(AGENT)] == [2, 4]
        assert store.delete_versions(AGENT, []) == 0
        assert store.delete_versions(AGENT, (2, 2)) == 1
        assert [row["version"] for row in store.list_versions(OTHER)] == [1]

    def test_versions_survive_reopening(self, make_store: StoreFactory) -> None:
        self.require("reopens")
        with make_store() as first:
            first.save_version(AGENT, b"\x00kept\xff", "kept")
        with make_store() as second:
            assert second.get_version(AGENT, 1)["payload"] == b"\x00kept\xff"
            assert second.save_version(AGENT, b"next") == 2


class CorrectionTests(SuiteBase):
    """update_agent_reward, delete_agent_reward, update_agent_interaction,
    delete_agent_interaction, delete_q_states, q_state_stats."""

    def test_update_agent_reward_corrects_the_value_and_maybe_the_components(
        self, store: MemoryStore
    ) -> None:
        decision = store.save_agent_decision(AGENT, "s", "a", {}, 0.9)
        reward_id = store.save_agent_reward(AGENT, 0.9, {"task": 1.0}, decision)
        other = store.save_agent_reward(AGENT, 0.5, {"kept": True})
        store.update_agent_reward(reward_id, 0.1)
        row = store.get_agent_reward(reward_id)
        assert (row["reward"], row["reward_components"]) == (0.1, {"task": 1.0})
        store.update_agent_reward(reward_id, np.float64(-2), {"task": 0.0, "why": "fixed"})
        row = store.get_agent_reward(reward_id)
        assert (row["reward"], row["reward_components"]) == (-2.0, {"task": 0.0, "why": "fixed"})
        assert type(row["reward"]) is float
        assert (row["decision_id"], row["agent_name"]) == (decision, AGENT)
        assert store.get_agent_rewards(AGENT)[1] == row
        assert store.get_agent_reward(other)["reward"] == 0.5
        assert store.agent_stats(AGENT)["mean_reward"] == pytest.approx(-0.75)

    def test_delete_agent_reward_removes_only_that_row(self, store: MemoryStore) -> None:
        first = store.save_agent_reward(AGENT, 0.2, {})
        second = store.save_agent_reward(AGENT, 0.4, {})
        store.delete_agent_reward(first)
        assert [row["id"] for row in store.get_agent_rewards(AGENT)] == [second]
        with pytest.raises(LookupError):
            store.get_agent_reward(first)
        with pytest.raises(LookupError):
            store.delete_agent_reward(first)
        with pytest.raises(LookupError):
            store.update_agent_reward(first, 1.0)
        stats = store.agent_stats(AGENT)
        assert (stats["rewards"], stats["mean_reward"]) == (1, pytest.approx(0.4))

    def test_update_agent_interaction_corrects_the_given_texts(self, store: MemoryStore) -> None:
        first = store.save_agent_interaction(AGENT, "wrong request", "reply", "good")
        second = store.save_agent_interaction(AGENT, "other", "reply")
        store.mark_feedback_learned([first])
        store.update_agent_interaction(first, request="right request")
        row = store.get_agent_interaction(first)
        assert (row["request"], row["response"], row["feedback"]) == (
            "right request",
            "reply",
            "good",
        )
        store.update_agent_interaction(first, response="new reply")
        store.update_agent_interaction(second, request="both", response="changed")
        assert store.get_agent_interaction(first)["response"] == "new reply"
        row = store.get_agent_interaction(second)
        assert (row["request"], row["response"]) == ("both", "changed")
        found = store.find_agent_interaction(AGENT, "right request", "new reply")
        assert found is not None and found["id"] == first
        assert store.find_agent_interaction(AGENT, "wrong request", "reply") is None
        with pytest.raises(ValueError, match="request and/or response"):
            store.update_agent_interaction(first)

    def test_delete_agent_interaction_removes_only_that_row(self, store: MemoryStore) -> None:
        first = store.save_agent_interaction(AGENT, "a", "b", "feedback")
        second = store.save_agent_interaction(AGENT, "c", "d")
        store.delete_agent_interaction(first)
        assert [row["id"] for row in store.get_agent_interactions(AGENT)] == [second]
        assert store.get_unlearned_feedback(AGENT) == []
        assert store.agent_stats(AGENT)["interactions"] == 1
        for call in (
            lambda: store.get_agent_interaction(first),
            lambda: store.delete_agent_interaction(first),
            lambda: store.update_agent_interaction(first, request="x"),
        ):
            with pytest.raises(UnknownInteractionError):
                call()

    def test_delete_q_states_counts_the_entries_it_deleted(self, store: MemoryStore) -> None:
        store.save_q_table(AGENT, {"s": {"a": 1.0, "b": 2.0}, "t": {"a": 3.0}, "u": {"a": 4.0}})
        store.save_q_table(OTHER, {"s": {"a": 1.0}})
        assert store.delete_q_states(AGENT, ["s", "missing", "s"]) == 2
        assert store.get_q_table(AGENT) == {"t": {"a": 3.0}, "u": {"a": 4.0}}
        loose: Any = store  # states may be a set too, beyond the annotation
        assert loose.delete_q_states(AGENT, {"t", "u"}) == 2
        assert store.get_q_table(AGENT) == {}
        assert store.delete_q_states(AGENT, []) == 0
        assert store.get_q_table(OTHER) == {"s": {"a": 1.0}}

    def test_q_state_stats_count_entries_and_visits(self, store: MemoryStore) -> None:
        assert store.q_state_stats(AGENT) == []
        before = time.time()
        store.save_q_table(AGENT, {"s": {"a": 1.0, "b": 2.0}, "t": {"a": 3.0}})
        store.save_q_values(AGENT, {"u": {"a": 1.0}})
        for state in ("s", "s", "t", "elsewhere"):
            store.save_agent_decision(AGENT, state, "a", {}, None)
        store.save_agent_decision(OTHER, "s", "a", {}, None)
        after = time.time()
        rows = sorted(store.q_state_stats(AGENT), key=lambda row: row["state"])
        assert [(r["state"], r["actions"], r["visits"]) for r in rows] == [
            ("s", 2, 2),
            ("t", 1, 1),
            ("u", 1, 0),
        ]
        for row in rows:
            assert type(row["last_updated"]) is float
            assert before - 5 <= row["last_updated"] <= after + 5


class PruneHistoryTests(SuiteBase):
    """prune_history."""

    def test_keep_newest_prunes_the_older_rows_of_that_agent_and_table(
        self, store: MemoryStore
    ) -> None:
        ids = [store.save_agent_reward(AGENT, float(i), {}) for i in range(5)]
        other = store.save_agent_reward(OTHER, 9.0, {})
        kept_decision = store.save_agent_decision(AGENT, "s", "a", {}, None)
        stamps = [row["timestamp"] for row in store.get_agent_rewards(AGENT)][::-1]
        dry = store.prune_history(AGENT, "rewards", keep_newest=2, dry_run=True)
        assert dry == {
            "rows": 3,
            "first_id": ids[0],
            "last_id": ids[2],
            "oldest": stamps[0],
            "newest": stamps[2],
        }
        assert len(store.get_agent_rewards(AGENT)) == 5
        assert store.prune_history(AGENT, "rewards", keep_newest=2) == dry
        assert [row["id"] for row in store.get_agent_rewards(AGENT)] == ids[:2:-1]
        assert [row["id"] for row in store.get_agent_rewards(OTHER)] == [other]
        assert store.get_agent_decision(kept_decision)["state"] == "s"
        assert store.prune_history(AGENT, "rewards", keep_newest=2)["rows"] == 0
        assert store.prune_history(AGENT, "rewards", keep_newest=0)["rows"] == 2
        assert store.get_agent_rewards(AGENT) == []

    @pytest.mark.parametrize("table", ["interactions", "decisions"])
    def test_older_than_prunes_rows_before_the_timestamp(
        self, store: MemoryStore, table: str
    ) -> None:
        if table == "interactions":
            ids = [store.save_agent_interaction(AGENT, f"q{i}", "a") for i in range(3)]
            rows = store.get_agent_interactions(AGENT)[::-1]
        else:
            ids = [store.save_agent_decision(AGENT, f"s{i}", "a", {}, None) for i in range(3)]
            rows = store.get_agent_decisions(AGENT)[::-1]
        cutoff = rows[-1]["timestamp"]
        nothing = store.prune_history(AGENT, table, older_than=rows[0]["timestamp"])
        assert nothing == {
            "rows": 0,
            "first_id": None,
            "last_id": None,
            "oldest": None,
            "newest": None,
        }
        assert store.prune_history(AGENT, table) == nothing
        summary = store.prune_history(AGENT, table, older_than=math.nextafter(cutoff, math.inf))
        assert (summary["rows"], summary["first_id"], summary["last_id"]) == (3, ids[0], ids[2])
        left = (
            store.get_agent_interactions(AGENT)
            if table == "interactions"
            else store.get_agent_decisions(AGENT)
        )
        assert left == []

    def test_both_bounds_prune_rows_that_break_either(self, store: MemoryStore) -> None:
        ids = [store.save_agent_reward(AGENT, float(i), {}) for i in range(4)]
        summary = store.prune_history(AGENT, "rewards", older_than=0.0, keep_newest=3)
        assert (summary["rows"], summary["first_id"], summary["last_id"]) == (1, ids[0], ids[0])
        assert [row["id"] for row in store.get_agent_rewards(AGENT)] == ids[:0:-1]


class SettingsTests(SuiteBase):
    """save_setting, get_setting, list_settings, delete_setting."""

    def test_a_setting_never_saved_is_none_and_lists_empty(self, store: MemoryStore) -> None:
        assert store.get_setting("loops", "default") is None
        assert store.list_settings("loops") == {}
        assert store.delete_setting("loops", "default") is False

    def test_settings_round_trip_with_their_json_types(self, store: MemoryStore) -> None:
        value = {"learner": "linucb", "options": {"alpha": 0.5}, "wait": 600, "on": True, "x": None}
        store.save_setting("loops", "default", value)
        assert store.get_setting("loops", "default") == value

    def test_saving_again_replaces_the_whole_document(self, store: MemoryStore) -> None:
        store.save_setting("loops", "a", {"old": 1, "kept": 2})
        store.save_setting("loops", "a", {"new": 3})
        assert store.get_setting("loops", "a") == {"new": 3}

    def test_namespaces_keep_their_keys_apart_and_list_sorted(self, store: MemoryStore) -> None:
        store.save_setting("loops", "b", {"n": 2})
        store.save_setting("loops", "a", {"n": 1})
        store.save_setting("api_keys", "a", {"scope": "admin"})
        assert store.list_settings("loops") == {"a": {"n": 1}, "b": {"n": 2}}
        assert list(store.list_settings("loops")) == ["a", "b"]
        assert store.list_settings("api_keys") == {"a": {"scope": "admin"}}

    def test_delete_removes_only_that_setting(self, store: MemoryStore) -> None:
        store.save_setting("loops", "a", {"n": 1})
        store.save_setting("loops", "b", {"n": 2})
        assert store.delete_setting("loops", "a") is True
        assert store.delete_setting("loops", "a") is False
        assert store.list_settings("loops") == {"b": {"n": 2}}

    def test_tricky_keys_round_trip_exactly(self, store: MemoryStore) -> None:
        keys = ['it\'s "q"', "'; DROP TABLE x;--", "日本語 🤖", "a/b\\c", "../up"]
        for number, key in enumerate(keys):
            store.save_setting("ns", key, {"n": number})
        assert store.list_settings("ns") == {key: {"n": n} for n, key in enumerate(keys)}

    @pytest.mark.parametrize(
        ("namespace", "key", "value", "error", "named"),
        [
            ("", "k", {}, ValueError, "namespace"),
            ("ns", "", {}, ValueError, "key"),
            ("ns", "k" * 201, {}, ValueError, "key"),
            (1, "k", {}, TypeError, "namespace"),
            ("ns", "k", [1], TypeError, "value"),
            ("ns", "k", {"x": {1, 2}}, TypeError, "value"),
            ("ns", "k", {"x": math.nan}, ValueError, "value"),
        ],
    )
    def test_bad_settings_are_refused_naming_the_field_and_nothing_changes(
        self,
        store: MemoryStore,
        namespace: Any,
        key: Any,
        value: Any,
        error: type[Exception],
        named: str,
    ) -> None:
        store.save_setting("ns", "k", {"kept": True})
        with pytest.raises(error, match=named):
            store.save_setting(namespace, key, value)
        assert store.get_setting("ns", "k") == {"kept": True}

    def test_a_setting_saved_in_a_failed_transaction_is_not_stored(
        self, store: MemoryStore
    ) -> None:
        store.save_setting("ns", "k", {"n": 1})
        with pytest.raises(RuntimeError), store.transaction():
            store.save_setting("ns", "k", {"n": 2})
            store.save_setting("ns", "other", {"n": 3})
            raise RuntimeError("abort")
        assert store.list_settings("ns") == {"k": {"n": 1}}

    def test_settings_are_seen_by_another_store_object(self, make_store: StoreFactory) -> None:
        self.require("reopens")
        make_store().save_setting("loops", "default", {"learner": "thompson"})
        assert make_store().get_setting("loops", "default") == {"learner": "thompson"}


class InspectionTests(SuiteBase):
    """list_agents, agent_stats, location, sqlite_path, encryption_key_id."""

    def test_list_agents_names_every_agent_with_anything_stored(self, store: MemoryStore) -> None:
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

    def test_agent_stats_counts_and_means(self, store: MemoryStore) -> None:
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

    def test_agent_stats_of_an_unknown_agent_are_empty(self, store: MemoryStore) -> None:
        stats = store.agent_stats("nobody")
        assert (stats["decisions"], stats["interactions"], stats["rewards"]) == (0, 0, 0)
        assert stats["mean_reward"] is None
        assert stats["last_update"] is None

    def test_agent_names_that_look_alike_stay_distinct_agents(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        store = make_store()
        outside_before = self._entries_outside_store(tmp_path, make_store.location)
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
        assert self._entries_outside_store(tmp_path, make_store.location) == outside_before

    @HYPOTHESIS_SETTINGS
    @given(name=json_text.filter(bool))
    def test_any_agent_name_round_trips_and_stays_inside_the_store(
        self, make_store: StoreFactory, tmp_path: Path, name: str
    ) -> None:
        store = make_store()
        outside_before = self._entries_outside_store(tmp_path, make_store.location)
        store.save_agent_reward(name, 0.5, {"name": name})
        store.save_q_values(name, {"s": {"a": 0.5}})
        assert name in store.list_agents()
        rows = store.get_agent_rewards(name)
        assert [row["reward_components"] for row in rows] == [{"name": name}]
        assert store.get_q_table(name) == {"s": {"a": 0.5}}
        assert self._entries_outside_store(tmp_path, make_store.location) == outside_before

    def _entries_outside_store(self, tmp_path: Path, location: Any) -> set[str]:
        """Paths under tmp_path (and beside it) that do not belong to the store."""
        own_prefixes = [str(path) for path in self.owned_paths(location)]
        return {
            str(path)
            for path in [*tmp_path.parent.iterdir(), *tmp_path.rglob("*")]
            if not any(str(path).startswith(prefix) for prefix in own_prefixes)
        }

    def test_location_names_the_store_without_its_password(
        self, store: MemoryStore, store_location: Any
    ) -> None:
        assert isinstance(store.location, str) and store.location
        given_location = str(store_location)
        if "://" in given_location:
            url = urlsplit(given_location)
            assert url.path.rsplit("/", 1)[-1] in store.location
            if url.password:
                assert f":{url.password}@" not in store.location
        else:
            assert Path(given_location).name in store.location

    def test_sqlite_path_and_key_id_say_what_the_store_is(self, store: MemoryStore) -> None:
        path = store.sqlite_path
        assert path is None or (isinstance(path, Path) and path.is_file())
        assert store.encryption_key_id is None


class BadAgentArgumentTests(SuiteBase):
    """Every per-agent read refuses a bad agent name or limit and changes nothing."""

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
        "get_learner_steps",
        "agent_stats",
        "count_agent_decisions",
        "list_versions",
        "q_state_stats",
    )

    def test_limit_of_zero_or_less_is_a_value_error_for_every_history(
        self, store: MemoryStore
    ) -> None:
        populate(store)
        before = observe(store)
        for method in self.LIMITED_READS:
            for limit in (0, -1):
                with pytest.raises(ValueError, match="limit"):
                    getattr(store, method)(AGENT, limit=limit)
        with pytest.raises(ValueError, match="batch_size"):
            list(store.iter_agent_decisions(AGENT, batch_size=0))
        assert observe(store) == before

    def test_empty_agent_name_is_a_value_error_for_every_read(self, store: MemoryStore) -> None:
        populate(store)
        before = observe(store)
        for method in self.PER_AGENT_READS:
            with pytest.raises(ValueError, match="agent_name"):
                getattr(store, method)("")
        with pytest.raises(ValueError, match="agent_name"):
            list(store.iter_agent_decisions(""))
        with pytest.raises(ValueError, match="agent_name"):
            store.get_q_values("", "s")
        assert observe(store) == before
