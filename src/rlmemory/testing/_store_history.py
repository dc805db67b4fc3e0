"""The store suite, histories: rewards, interactions and their feedback, decisions, texts."""

from __future__ import annotations

import functools
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlmemory.errors import UnknownDecisionError, UnknownInteractionError
from rlmemory.store._validation import MAX_NAME_BYTES, MAX_STATE_BYTES
from rlmemory.store.base import MemoryStore
from rlmemory.testing._store_base import StoreFactory, SuiteBase
from rlmemory.testing._store_values import (
    AGENT,
    HYPOTHESIS_SETTINGS,
    OTHER,
    TRICKY_TEXTS,
    assert_history_order,
    cut_to_bytes,
    json_text,
    observe,
    populate,
)

#: A text that looks like what an encrypting store writes (rlmemory.store.crypto).
ENCRYPTED_LOOKING = "rlm:enc:v1:0011aabb:AAAA"


def _assert_recent(timestamp: Any, before: float, after: float) -> None:
    assert type(timestamp) is float
    assert before - 5 <= timestamp <= after + 5


class RewardTests(SuiteBase):
    """save_agent_reward, get_agent_rewards, get_agent_reward."""

    def test_rewards_come_back_newest_first_with_every_field(self, store: MemoryStore) -> None:
        decision_id = store.save_agent_decision(AGENT, "s", "a", {}, None)
        before = time.time()
        first = store.save_agent_reward(AGENT, 1.0, {"success": 1.0})
        second = store.save_agent_reward(
            AGENT, -0.5, {"latency": -0.5, "tags": ["slow"]}, decision_id
        )
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
            _assert_recent(row["timestamp"], before, after)
            assert store.get_agent_reward(row["id"]) == row

    def test_reward_ids_grow_and_ties_in_time_keep_insertion_order(
        self, store: MemoryStore
    ) -> None:
        ids = [store.save_agent_reward(AGENT, float(i), {"i": i}) for i in range(30)]
        assert ids == sorted(ids) and len(set(ids)) == 30
        assert_history_order(store.get_agent_rewards(AGENT, limit=30), ids[::-1])

    def test_reward_history_honours_limit_and_default_of_ten(self, store: MemoryStore) -> None:
        ids = [store.save_agent_reward(AGENT, float(i), {}) for i in range(12)]
        assert_history_order(store.get_agent_rewards(AGENT), ids[::-1][:10])
        assert_history_order(store.get_agent_rewards(AGENT, limit=3), ids[::-1][:3])
        assert_history_order(store.get_agent_rewards(AGENT, limit=1000), ids[::-1])

    def test_rewards_are_kept_per_agent(self, store: MemoryStore) -> None:
        mine = store.save_agent_reward(AGENT, 1.0, {})
        store.save_agent_reward(OTHER, 2.0, {})
        assert_history_order(store.get_agent_rewards(AGENT), [mine])
        assert store.get_agent_rewards("nobody") == []

    def test_numpy_rewards_are_stored_as_floats(self, store: MemoryStore) -> None:
        import numpy as np

        store.save_agent_reward(AGENT, np.float64(0.75), {"x": np.float32(0.5)})
        store.save_agent_reward(AGENT, 2, {})
        rows = store.get_agent_rewards(AGENT)
        assert [row["reward"] for row in rows] == [2.0, 0.75]
        assert all(type(row["reward"]) is float for row in rows)
        assert rows[1]["reward_components"] == {"x": 0.5}

    def test_unknown_reward_id_raises_lookup_error(self, store: MemoryStore) -> None:
        store.save_agent_reward(AGENT, 1.0, {})
        for unknown_id in (0, -1, 10**9):
            with pytest.raises(LookupError):
                store.get_agent_reward(unknown_id)


class InteractionTests(SuiteBase):
    """save_agent_interaction, get_agent_interactions, get_agent_interaction,
    find_agent_interaction."""

    def test_interactions_come_back_newest_first_with_every_field(self, store: MemoryStore) -> None:
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
            _assert_recent(row["timestamp"], before, after)

    def test_interaction_history_honours_limit_and_order(self, store: MemoryStore) -> None:
        ids = [store.save_agent_interaction(AGENT, f"q{i}", f"a{i}") for i in range(25)]
        store.save_agent_interaction(OTHER, "q", "a")
        assert_history_order(store.get_agent_interactions(AGENT), ids[::-1][:10])
        assert_history_order(store.get_agent_interactions(AGENT, limit=25), ids[::-1])
        assert_history_order(store.get_agent_interactions(AGENT, limit=2), ids[::-1][:2])

    def test_interaction_by_id_matches_its_history_row(self, store: MemoryStore) -> None:
        interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="fb")
        assert store.get_agent_interaction(interaction_id) == store.get_agent_interactions(AGENT)[0]

    def test_unknown_interaction_id_raises_lookup_error(self, store: MemoryStore) -> None:
        store.save_agent_interaction(AGENT, "req", "resp")
        for unknown_id in (0, -1, 10**9):
            with pytest.raises(UnknownInteractionError) as caught:
                store.get_agent_interaction(unknown_id)
            assert isinstance(caught.value, LookupError)

    def test_find_agent_interaction_returns_the_newest_exact_match(
        self, store: MemoryStore
    ) -> None:
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
        self, store: MemoryStore, request_text: str, response_text: str
    ) -> None:
        store.save_agent_interaction(AGENT, "hello", "hi")
        assert store.find_agent_interaction(AGENT, request_text, response_text) is None
        assert store.find_agent_interaction(OTHER, "hello", "hi") is None

    @HYPOTHESIS_SETTINGS
    @given(request_text=json_text, response_text=json_text, feedback=st.none() | json_text)
    def test_any_interaction_text_round_trips_exactly(
        self, store: MemoryStore, request_text: str, response_text: str, feedback: str | None
    ) -> None:
        interaction_id = store.save_agent_interaction(AGENT, request_text, response_text, feedback)
        row = store.get_agent_interaction(interaction_id)
        assert (row["request"], row["response"], row["feedback"]) == (
            request_text,
            response_text,
            feedback,
        )

    def test_text_with_nul_character_round_trips_or_is_refused_cleanly(
        self, store: MemoryStore
    ) -> None:
        populate(store)
        before = observe(store)
        try:
            interaction_id = store.save_agent_interaction(AGENT, "a\x00b", "c\x00d")
        except ValueError:
            assert observe(store) == before
        else:
            row = store.get_agent_interaction(interaction_id)
            assert (row["request"], row["response"]) == ("a\x00b", "c\x00d")

    def test_text_that_looks_encrypted_round_trips_or_is_refused(self, store: MemoryStore) -> None:
        """A store without a key keeps such a text exactly, or refuses it with a
        ``ValueError`` before anything is stored; it never stores what it cannot read."""
        existing = populate(store)
        before = observe(store)
        try:
            interaction_id = store.save_agent_interaction(
                AGENT, ENCRYPTED_LOOKING, ENCRYPTED_LOOKING + "!", feedback=ENCRYPTED_LOOKING
            )
        except ValueError:
            assert observe(store) == before
        else:
            row = store.get_agent_interaction(interaction_id)
            assert (row["request"], row["response"], row["feedback"]) == (
                ENCRYPTED_LOOKING,
                ENCRYPTED_LOOKING + "!",
                ENCRYPTED_LOOKING,
            )
            assert store.get_agent_interactions(AGENT, limit=1)[0] == row
        target = existing.interaction_ids[0]
        original = store.get_agent_interaction(target)
        try:
            store.set_interaction_feedback(target, ENCRYPTED_LOOKING)
        except ValueError:
            assert store.get_agent_interaction(target) == original
        else:
            assert store.get_agent_interaction(target)["feedback"] == ENCRYPTED_LOOKING
        original = store.get_agent_interaction(target)
        try:
            store.update_agent_interaction(target, request=ENCRYPTED_LOOKING)
        except ValueError:
            assert store.get_agent_interaction(target) == original
        else:
            assert store.get_agent_interaction(target)["request"] == ENCRYPTED_LOOKING


class FeedbackTests(SuiteBase):
    """set_interaction_feedback, get_unlearned_feedback, mark_feedback_learned."""

    def test_feedback_set_later_appears_as_unlearned(self, store: MemoryStore) -> None:
        interaction_id = store.save_agent_interaction(AGENT, "req", "resp")
        assert store.get_unlearned_feedback(AGENT) == []
        store.set_interaction_feedback(interaction_id, "too slow")
        rows = store.get_unlearned_feedback(AGENT)
        assert [row["id"] for row in rows] == [interaction_id]
        assert rows[0]["feedback"] == "too slow"
        assert rows[0]["feedback_learned"] is False
        assert store.get_agent_interaction(interaction_id)["feedback"] == "too slow"

    def test_feedback_given_at_save_time_is_unlearned(self, store: MemoryStore) -> None:
        interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="nice")
        assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == [interaction_id]

    def test_empty_feedback_string_still_counts_as_feedback(self, store: MemoryStore) -> None:
        interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="")
        assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == [interaction_id]

    def test_marked_feedback_disappears_and_reappears_when_changed(
        self, store: MemoryStore
    ) -> None:
        interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="good")
        store.mark_feedback_learned([interaction_id])
        assert store.get_unlearned_feedback(AGENT) == []
        assert store.get_agent_interaction(interaction_id)["feedback_learned"] is True
        store.set_interaction_feedback(interaction_id, "actually bad")
        rows = store.get_unlearned_feedback(AGENT)
        assert [row["id"] for row in rows] == [interaction_id]
        assert rows[0]["feedback"] == "actually bad"
        assert store.get_agent_interaction(interaction_id)["feedback_learned"] is False

    def test_setting_the_same_feedback_again_makes_it_unlearned_again(
        self, store: MemoryStore
    ) -> None:
        interaction_id = store.save_agent_interaction(AGENT, "req", "resp", feedback="good")
        store.mark_feedback_learned([interaction_id])
        store.set_interaction_feedback(interaction_id, "good")
        assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == [interaction_id]

    def test_unlearned_feedback_is_oldest_first_per_agent_and_limited(
        self, store: MemoryStore
    ) -> None:
        ids = [
            store.save_agent_interaction(AGENT, f"q{i}", "a", feedback=f"f{i}") for i in range(5)
        ]
        store.save_agent_interaction(AGENT, "no feedback", "a")
        store.save_agent_interaction(OTHER, "q", "a", feedback="other agent")
        assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == ids
        assert [row["id"] for row in store.get_unlearned_feedback(AGENT, limit=2)] == ids[:2]
        store.mark_feedback_learned(ids[:3])
        assert [row["id"] for row in store.get_unlearned_feedback(AGENT)] == ids[3:]
        assert len(store.get_unlearned_feedback(OTHER)) == 1

    def test_marking_no_interactions_changes_nothing(self, store: MemoryStore) -> None:
        populate(store)
        before = observe(store)
        store.mark_feedback_learned([])
        assert observe(store) == before

    def test_unlearned_feedback_sees_feedback_set_through_another_store_object(
        self, make_store: StoreFactory
    ) -> None:
        self.require("reopens")
        writer, reader = make_store(), make_store()
        interaction_id = writer.save_agent_interaction(AGENT, "req", "resp")
        assert reader.get_unlearned_feedback(AGENT) == []
        writer.set_interaction_feedback(interaction_id, "late feedback")
        assert [row["id"] for row in reader.get_unlearned_feedback(AGENT)] == [interaction_id]


class DecisionTests(SuiteBase):
    """save_agent_decision, get_agent_decisions, get_agent_decision, iter_agent_decisions,
    set_decision_reward, count_agent_decisions."""

    def test_decisions_come_back_newest_first_with_every_field(self, store: MemoryStore) -> None:
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
            assert row["version"] is None
            _assert_recent(row["timestamp"], before, after)

    @pytest.mark.parametrize("reward", [None, 0, 1.5, -2.0, "good", [1, "a"], {"r": {"n": None}}])
    def test_decision_reward_is_any_json_value(self, store: MemoryStore, reward: Any) -> None:
        decision_id = store.save_agent_decision(AGENT, "s", "a", {"a": 1.0}, reward)
        assert store.get_agent_decision(decision_id)["reward"] == reward

    def test_decision_history_honours_limit_and_order(self, store: MemoryStore) -> None:
        ids = [store.save_agent_decision(AGENT, f"s{i}", "a", {}, None) for i in range(12)]
        assert_history_order(store.get_agent_decisions(AGENT), ids[::-1][:10])
        assert_history_order(store.get_agent_decisions(AGENT, limit=12), ids[::-1])
        assert_history_order(store.get_agent_decisions(AGENT, limit=4), ids[::-1][:4])

    def test_decision_by_id_matches_its_history_row(self, store: MemoryStore) -> None:
        decision_id = store.save_agent_decision(
            AGENT, "s", "a", {"a": 0.5}, 1.0, propensity=0.25, features=[0.5]
        )
        assert store.get_agent_decision(decision_id) == store.get_agent_decisions(AGENT)[0]

    def test_unknown_decision_id_raises_lookup_error(self, store: MemoryStore) -> None:
        store.save_agent_decision(AGENT, "s", "a", {}, None)
        for unknown_id in (0, -1, 10**9):
            with pytest.raises(UnknownDecisionError) as caught:
                store.get_agent_decision(unknown_id)
            assert isinstance(caught.value, LookupError)

    def test_rewards_and_interactions_naming_an_unknown_decision_are_refused(
        self, store: MemoryStore
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

    def test_set_decision_reward_replaces_the_reward(self, store: MemoryStore) -> None:
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

    def test_iter_agent_decisions_is_oldest_first_across_batches(self, store: MemoryStore) -> None:
        mine = []
        for i in range(7):
            mine.append(store.save_agent_decision(AGENT, f"s{i}", "a", {"a": float(i)}, i))
            store.save_agent_decision(OTHER, f"s{i}", "a", {}, None)
        rows = list(store.iter_agent_decisions(AGENT, batch_size=2))
        assert [row["id"] for row in rows] == mine
        assert rows == [store.get_agent_decision(decision_id) for decision_id in mine]

    def test_iter_agent_decisions_starts_after_the_given_id(self, store: MemoryStore) -> None:
        mine = [store.save_agent_decision(AGENT, f"s{i}", "a", {}, None) for i in range(6)]
        after = [row["id"] for row in store.iter_agent_decisions(AGENT, after_id=mine[2])]
        assert after == mine[3:]
        assert list(store.iter_agent_decisions(AGENT, after_id=mine[-1])) == []
        assert list(store.iter_agent_decisions("nobody")) == []

    def test_count_agent_decisions_counts_per_agent(self, store: MemoryStore) -> None:
        assert store.count_agent_decisions(AGENT) == 0
        for _ in range(3):
            store.save_agent_decision(AGENT, "s", "a", {}, None)
        store.save_agent_decision(OTHER, "s", "a", {}, None)
        assert store.count_agent_decisions(AGENT) == 3
        assert store.count_agent_decisions(OTHER) == 1

    def test_decisions_record_the_agents_newest_version(self, store: MemoryStore) -> None:
        before = store.save_agent_decision(AGENT, "s", "a", {}, None)
        first = store.save_version(AGENT, b"one", "first")
        store.save_version(OTHER, b"other", "another agent's")
        under_first = store.save_agent_decision(AGENT, "s", "a", {}, None)
        second = store.save_version(AGENT, b"two", "second")
        under_second = store.save_agent_decision(AGENT, "s", "a", {}, None)
        versions = [store.get_agent_decision(i)["version"] for i in (before, under_first)]
        assert versions == [None, first]
        assert store.get_agent_decision(under_second)["version"] == second


class TextTests(SuiteBase):
    """Every text field keeps texts that break naive quoting, encoding and splitting."""

    def test_texts_round_trip_exactly_in_every_field(self, store: MemoryStore) -> None:
        self.run_cases(
            "test_texts_round_trip_exactly_in_every_field",
            {
                name: functools.partial(self._round_trip_everywhere, store, f"texts-{name}", text)
                for name, text in sorted(TRICKY_TEXTS.items())
            },
        )

    @staticmethod
    def _round_trip_everywhere(store: MemoryStore, agent: str, text: str) -> None:
        interaction_id = store.save_agent_interaction(agent, text, text[::-1], feedback=text)
        row = store.get_agent_interaction(interaction_id)
        assert (row["request"], row["response"], row["feedback"]) == (text, text[::-1], text)
        assert store.get_agent_interactions(agent, limit=1)[0] == row
        found = store.find_agent_interaction(agent, text, text[::-1])
        assert found is not None and found["id"] == interaction_id
        store.set_interaction_feedback(interaction_id, text + "!")
        assert store.get_unlearned_feedback(agent)[0]["feedback"] == text + "!"
        store.update_agent_interaction(interaction_id, request=text[::-1], response=text)
        corrected = store.get_agent_interaction(interaction_id)
        assert (corrected["request"], corrected["response"]) == (text[::-1], text)

        components = {"note": text, text: 1.0, "list": [text, {"inner": text}]}
        store.save_agent_reward(agent, 1.0, components)
        assert store.get_agent_rewards(agent, limit=1)[0]["reward_components"] == components

        # States and action names are index keys with a byte limit; cut long texts to it.
        state = cut_to_bytes(text, MAX_STATE_BYTES) or "state"
        action = cut_to_bytes(text[::-1], MAX_NAME_BYTES) or "action"
        decision_id = store.save_agent_decision(
            agent, state, action, {text: 0.5, "other": 0.5}, {"note": text}
        )
        decision = store.get_agent_decision(decision_id)
        assert (decision["state"], decision["selected_action"]) == (state, action)
        assert decision["q_values"] == {text: 0.5, "other": 0.5}
        assert decision["reward"] == {"note": text}
        store.set_decision_reward(decision_id, [text])
        assert store.get_agent_decision(decision_id)["reward"] == [text]

        store.save_policy_params(agent, {text: text, "list": [text]})
        assert store.get_policy_params(agent) == {text: text, "list": [text]}
        store.save_version(agent, text.encode("utf-8"), note=text)
        assert store.list_versions(agent)[-1]["note"] == text
