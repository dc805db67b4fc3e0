"""The store suite, bad input: every write refuses bad arguments with a typed error that
names the problem, and nothing stored changes, inside a transaction or not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from rlmemory.errors import UnknownDecisionError, UnknownInteractionError
from rlmemory.store.base import MemoryStore
from rlmemory.testing._store_base import SuiteBase
from rlmemory.testing._store_values import AGENT, Populated, observe, populate

NAN, INF = float("nan"), float("inf")
UNKNOWN_ID = 10**9


@dataclass(frozen=True)
class BadCall:
    """One call that must fail: the call, the error type, a regular expression of its message."""

    #: The store is typed ``Any``: the calls pass what the annotations forbid, on purpose.
    call: Callable[[Any, Populated], Any]
    error: type[Exception]
    message: str


def _bad(call: Callable[[Any, Populated], Any], error: type[Exception], message: str) -> BadCall:
    return BadCall(call, error, message)


BAD_CALLS: dict[str, BadCall] = {
    # Q-learning
    "save_q_table-empty-agent": _bad(
        lambda s, p: s.save_q_table("", {"s": {"a": 1.0}}), ValueError, "agent_name"
    ),
    "save_q_table-nan": _bad(
        lambda s, p: s.save_q_table(AGENT, {"ok": {"a": 1.0}, "s": {"a": NAN}}),
        ValueError,
        "q_table",
    ),
    "save_q_table-inf": _bad(
        lambda s, p: s.save_q_table(AGENT, {"s": {"a": INF}}), ValueError, "q_table"
    ),
    "save_q_table-text-value": _bad(
        lambda s, p: s.save_q_table(AGENT, {"s": {"a": "high"}}), TypeError, "str"
    ),
    "save_q_table-not-a-mapping": _bad(
        lambda s, p: s.save_q_table(AGENT, [("s", {"a": 1.0})]), TypeError, "list"
    ),
    "save_q_values-empty-agent": _bad(
        lambda s, p: s.save_q_values("", {"s": {"a": 1.0}}), ValueError, "agent_name"
    ),
    "save_q_values-nan": _bad(
        lambda s, p: s.save_q_values(AGENT, {"greeting": {"search": 9.0}, "s": {"a": NAN}}),
        ValueError,
        "changed|q_values|q_table",
    ),
    "save_q_values-minus-inf": _bad(
        lambda s, p: s.save_q_values(AGENT, {"s": {"a": -INF}}),
        ValueError,
        "changed|q_values|q_table",
    ),
    "save_q_values-object-value": _bad(
        lambda s, p: s.save_q_values(AGENT, {"s": {"a": object()}}), TypeError, "object"
    ),
    "get_q_values-state-not-text": _bad(lambda s, p: s.get_q_values(AGENT, 3), TypeError, "state"),
    "lock_learner-empty-agent": _bad(lambda s, p: s.lock_learner(""), ValueError, "agent_name"),
    "delete_q_states-a-string": _bad(
        lambda s, p: s.delete_q_states(AGENT, "greeting"), TypeError, "states"
    ),
    "delete_q_states-generator": _bad(
        lambda s, p: s.delete_q_states(AGENT, (x for x in ["greeting"])), TypeError, "states"
    ),
    # policy parameters
    "save_policy_params-empty-agent": _bad(
        lambda s, p: s.save_policy_params("", {"w": 1}), ValueError, "agent_name"
    ),
    "save_policy_params-nan": _bad(
        lambda s, p: s.save_policy_params(AGENT, {"w": [1.0, NAN]}), ValueError, "policy_params"
    ),
    "save_policy_params-set": _bad(
        lambda s, p: s.save_policy_params(AGENT, {"w": {1, 2}}), TypeError, "set"
    ),
    "save_policy_params-object": _bad(
        lambda s, p: s.save_policy_params(AGENT, {"w": object()}), TypeError, "object"
    ),
    "save_policy_params-not-a-mapping": _bad(
        lambda s, p: s.save_policy_params(AGENT, [1, 2]), TypeError, "list"
    ),
    "delete_policy_params-empty-agent": _bad(
        lambda s, p: s.delete_policy_params(""), ValueError, "agent_name"
    ),
    # arrays
    "save_arrays-empty-agent": _bad(
        lambda s, p: s.save_arrays("", {"A": np.eye(2)}), ValueError, "agent_name"
    ),
    "save_arrays-nan": _bad(
        lambda s, p: s.save_arrays(AGENT, {"A": np.zeros(2), "weights_bad": np.array([NAN])}),
        ValueError,
        "arrays|weights_bad",
    ),
    "save_arrays-inf": _bad(
        lambda s, p: s.save_arrays(AGENT, {"weights_bad": np.array([[1.0, -INF]])}),
        ValueError,
        "arrays|weights_bad",
    ),
    "save_arrays-text-array": _bad(
        lambda s, p: s.save_arrays(AGENT, {"weights_bad": np.array(["a", "b"])}),
        TypeError,
        "arrays|weights_bad|dtype|str",
    ),
    "delete_arrays-empty-agent": _bad(
        lambda s, p: s.delete_arrays("", ["A"]), ValueError, "agent_name"
    ),
    "delete_arrays-generator": _bad(
        lambda s, p: s.delete_arrays(AGENT, iter(["A"])), TypeError, "keys"
    ),
    # learner steps
    "append_learner_steps-nan": _bad(
        lambda s, p: s.append_learner_steps(AGENT, [("a", np.ones(1)), ("b", np.array([NAN]))]),
        ValueError,
        "NaN",
    ),
    "delete_learner_steps-negative": _bad(
        lambda s, p: s.delete_learner_steps(AGENT, through_id=-1), ValueError, "through_id"
    ),
    # feature cache
    "save_feature_vectors-bad-key": _bad(
        lambda s, p: s.save_feature_vectors("emb:v1", {"short": np.ones(2)}),
        ValueError,
        "64 hex digits",
    ),
    "prune_feature_vectors-negative": _bad(
        lambda s, p: s.prune_feature_vectors("emb:v1", -1), ValueError, "keep"
    ),
    # rewards
    "save_agent_reward-empty-agent": _bad(
        lambda s, p: s.save_agent_reward("", 1.0, {}), ValueError, "agent_name"
    ),
    "save_agent_reward-nan": _bad(
        lambda s, p: s.save_agent_reward(AGENT, NAN, {}), ValueError, "reward"
    ),
    "save_agent_reward-inf": _bad(
        lambda s, p: s.save_agent_reward(AGENT, INF, {}), ValueError, "reward"
    ),
    "save_agent_reward-minus-inf": _bad(
        lambda s, p: s.save_agent_reward(AGENT, -INF, {}), ValueError, "reward"
    ),
    "save_agent_reward-text-reward": _bad(
        lambda s, p: s.save_agent_reward(AGENT, "high", {}), TypeError, "reward"
    ),
    "save_agent_reward-nan-component": _bad(
        lambda s, p: s.save_agent_reward(AGENT, 1.0, {"x": NAN}), ValueError, "reward_components"
    ),
    "save_agent_reward-set-component": _bad(
        lambda s, p: s.save_agent_reward(AGENT, 1.0, {"x": {1}}), TypeError, "set"
    ),
    "save_agent_reward-object-component": _bad(
        lambda s, p: s.save_agent_reward(AGENT, 1.0, {"x": object()}), TypeError, "object"
    ),
    "update_agent_reward-unknown-id": _bad(
        lambda s, p: s.update_agent_reward(UNKNOWN_ID, 1.0), LookupError, str(UNKNOWN_ID)
    ),
    "update_agent_reward-nan": _bad(
        lambda s, p: s.update_agent_reward(p.reward_ids[0], NAN), ValueError, "reward"
    ),
    "update_agent_reward-nan-component": _bad(
        lambda s, p: s.update_agent_reward(p.reward_ids[0], 1.0, {"x": NAN}),
        ValueError,
        "reward_components",
    ),
    "update_agent_reward-text-id": _bad(
        lambda s, p: s.update_agent_reward("1", 1.0), TypeError, "reward_id"
    ),
    "delete_agent_reward-unknown-id": _bad(
        lambda s, p: s.delete_agent_reward(UNKNOWN_ID), LookupError, str(UNKNOWN_ID)
    ),
    "delete_agent_reward-id-beyond-64-bits": _bad(
        lambda s, p: s.delete_agent_reward(2**70), ValueError, "reward_id"
    ),
    # interactions and feedback
    "save_agent_interaction-empty-agent": _bad(
        lambda s, p: s.save_agent_interaction("", "q", "a"), ValueError, "agent_name"
    ),
    "save_agent_interaction-request-not-text": _bad(
        lambda s, p: s.save_agent_interaction(AGENT, 123, "a"), TypeError, "request"
    ),
    "save_agent_interaction-response-not-text": _bad(
        lambda s, p: s.save_agent_interaction(AGENT, "q", None), TypeError, "response"
    ),
    "save_agent_interaction-feedback-not-text": _bad(
        lambda s, p: s.save_agent_interaction(AGENT, "q", "a", feedback=5), TypeError, "feedback"
    ),
    "set_interaction_feedback-unknown-id": _bad(
        lambda s, p: s.set_interaction_feedback(UNKNOWN_ID, "x"), UnknownInteractionError, "10+"
    ),
    "set_interaction_feedback-not-text": _bad(
        lambda s, p: s.set_interaction_feedback(p.interaction_ids[0], {"x"}),
        TypeError,
        "feedback",
    ),
    "mark_feedback_learned-unknown-id": _bad(
        lambda s, p: s.mark_feedback_learned([p.interaction_ids[1], UNKNOWN_ID]),
        UnknownInteractionError,
        "10+",
    ),
    "mark_feedback_learned-not-an-id": _bad(
        lambda s, p: s.mark_feedback_learned([p.interaction_ids[1], "x"]), TypeError, "str"
    ),
    "update_agent_interaction-unknown-id": _bad(
        lambda s, p: s.update_agent_interaction(UNKNOWN_ID, request="x"),
        UnknownInteractionError,
        str(UNKNOWN_ID),
    ),
    "update_agent_interaction-nothing-to-change": _bad(
        lambda s, p: s.update_agent_interaction(p.interaction_ids[0]), ValueError, "request"
    ),
    "update_agent_interaction-response-not-text": _bad(
        lambda s, p: s.update_agent_interaction(p.interaction_ids[0], response=5),
        TypeError,
        "response",
    ),
    "delete_agent_interaction-unknown-id": _bad(
        lambda s, p: s.delete_agent_interaction(UNKNOWN_ID),
        UnknownInteractionError,
        str(UNKNOWN_ID),
    ),
    # decisions
    "save_agent_decision-empty-agent": _bad(
        lambda s, p: s.save_agent_decision("", "s", "a", {}, None), ValueError, "agent_name"
    ),
    "save_agent_decision-nan-q-value": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {"a": NAN}, None),
        ValueError,
        "q_values",
    ),
    "save_agent_decision-set-q-value": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {"a": {1}}, None), TypeError, "set"
    ),
    "save_agent_decision-nan-reward": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, NAN), ValueError, "reward"
    ),
    "save_agent_decision-object-reward": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, object()), TypeError, "object"
    ),
    "save_agent_decision-zero-propensity": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, propensity=0.0),
        ValueError,
        "propensity",
    ),
    "save_agent_decision-propensity-above-one": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, propensity=1.5),
        ValueError,
        "propensity",
    ),
    "save_agent_decision-nan-propensity": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, propensity=NAN),
        ValueError,
        "propensity",
    ),
    "save_agent_decision-nan-feature": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, features=[1.0, NAN]),
        ValueError,
        "features",
    ),
    "save_agent_decision-text-feature": _bad(
        lambda s, p: s.save_agent_decision(AGENT, "s", "a", {}, None, features=["a"]),
        TypeError,
        "features",
    ),
    "set_decision_reward-unknown-id": _bad(
        lambda s, p: s.set_decision_reward(UNKNOWN_ID, 1.0), UnknownDecisionError, "10+"
    ),
    "set_decision_reward-nan": _bad(
        lambda s, p: s.set_decision_reward(p.decision_ids[1], NAN), ValueError, "reward"
    ),
    "set_decision_reward-set": _bad(
        lambda s, p: s.set_decision_reward(p.decision_ids[1], {1, 2}), TypeError, "set"
    ),
    # versions
    "save_version-text-payload": _bad(
        lambda s, p: s.save_version(AGENT, "not bytes"), TypeError, "payload"
    ),
    "save_version-note-not-text": _bad(
        lambda s, p: s.save_version(AGENT, b"x", note=3), TypeError, "note"
    ),
    "get_version-beyond-integer": _bad(
        lambda s, p: s.get_version(AGENT, 2**31), ValueError, "version"
    ),
    "delete_versions-beyond-integer": _bad(
        lambda s, p: s.delete_versions(AGENT, [p.version, 2**31]), ValueError, "version"
    ),
    "delete_versions-generator": _bad(
        lambda s, p: s.delete_versions(AGENT, iter([p.version])), TypeError, "versions"
    ),
    # pruning
    "prune_history-unknown-table": _bad(
        lambda s, p: s.prune_history(AGENT, "q_values", keep_newest=0), ValueError, "table"
    ),
    "prune_history-negative-keep": _bad(
        lambda s, p: s.prune_history(AGENT, "rewards", keep_newest=-1), ValueError, "keep_newest"
    ),
    "prune_history-nan-cutoff": _bad(
        lambda s, p: s.prune_history(AGENT, "rewards", older_than=NAN), ValueError, "older_than"
    ),
    # settings
    "save_setting-list-value": _bad(
        lambda s, p: s.save_setting("ns", "k", [1]), TypeError, "value"
    ),
    "delete_setting-empty-key": _bad(lambda s, p: s.delete_setting("ns", ""), ValueError, "key"),
    # restore
    "load_rows-unknown-table": _bad(lambda s, p: s.load_rows("bogus", []), ValueError, "table"),
    "load_rows-table-not-text": _bad(lambda s, p: s.load_rows(3, []), TypeError, "table"),
    "load_rows-row-breaking-the-rules": _bad(
        lambda s, p: s.load_rows(
            "agent_rewards",
            [
                {
                    "id": UNKNOWN_ID,
                    "agent_name": "",
                    "reward": 1.0,
                    "reward_components": "{}",
                    "decision_id": None,
                    "timestamp": 1.0,
                }
            ],
        ),
        ValueError,
        f"agent_rewards.*id={UNKNOWN_ID}",
    ),
    "load_rows-unknown-column": _bad(
        lambda s, p: s.load_rows(
            "agent_rewards",
            [
                {
                    "id": UNKNOWN_ID,
                    "agent_name": AGENT,
                    "reward": 1.0,
                    "reward_components": "{}",
                    "decision_id": None,
                    "timestamp": 1.0,
                    "colour": "red",
                }
            ],
        ),
        ValueError,
        r"agent_rewards.*no columns \['colour'\]",
    ),
}

#: One bad write per kind of failure, replayed inside a transaction.
BAD_CALLS_IN_TRANSACTION = [
    "save_q_values-nan",
    "save_q_table-text-value",
    "save_policy_params-set",
    "save_arrays-nan",
    "append_learner_steps-nan",
    "save_agent_reward-nan",
    "save_agent_interaction-request-not-text",
    "set_interaction_feedback-unknown-id",
    "mark_feedback_learned-unknown-id",
    "save_agent_decision-zero-propensity",
    "set_decision_reward-unknown-id",
    "update_agent_reward-unknown-id",
    "delete_agent_interaction-unknown-id",
    "save_version-text-payload",
    "load_rows-row-breaking-the-rules",
]


class BadInputTests(SuiteBase):
    """A refused call raises TypeError, ValueError or LookupError and changes nothing.

    Each test loops over its cases on one populated store (a refused call leaves it as
    it was, so the next case starts from the same data) and names every case that fails.
    """

    def test_bad_calls_raise_a_typed_error_and_change_nothing(self, store: MemoryStore) -> None:
        existing = populate(store)
        before = observe(store)

        def case(bad: BadCall) -> Callable[[], None]:
            def run() -> None:
                with pytest.raises(bad.error, match=bad.message):
                    bad.call(store, existing)
                assert observe(store) == before, "the refused call changed the store"

            return run

        self.run_cases(
            "test_bad_calls_raise_a_typed_error_and_change_nothing",
            {name: case(bad) for name, bad in BAD_CALLS.items()},
        )

    def test_a_bad_call_inside_a_transaction_rolls_it_back(self, store: MemoryStore) -> None:
        existing = populate(store)
        before = observe(store)

        def case(name: str, bad: BadCall) -> Callable[[], None]:
            def run() -> None:
                with pytest.raises(bad.error), store.transaction():
                    store.save_agent_reward(AGENT, 0.5, {"rolled back": name})
                    bad.call(store, existing)
                assert observe(store) == before, "the block was not rolled back"

            return run

        self.run_cases(
            "test_a_bad_call_inside_a_transaction_rolls_it_back",
            {name: case(name, BAD_CALLS[name]) for name in BAD_CALLS_IN_TRANSACTION},
        )
        reward_id = store.save_agent_reward(AGENT, 0.5, {"after": "every case"})
        assert store.get_agent_rewards(AGENT, limit=1)[0]["id"] == reward_id

    def test_a_refused_call_leaves_the_transaction_usable(self, store: MemoryStore) -> None:
        existing = populate(store)

        def case(name: str, bad: BadCall) -> Callable[[], None]:
            def run() -> None:
                with store.transaction():
                    first = store.save_agent_reward(AGENT, 0.25, {"before": name})
                    with pytest.raises(bad.error):
                        bad.call(store, existing)
                    second = store.save_agent_reward(AGENT, 0.75, {"after": name})
                ids = [row["id"] for row in store.get_agent_rewards(AGENT, limit=2)]
                assert ids == [second, first]

            return run

        self.run_cases(
            "test_a_refused_call_leaves_the_transaction_usable",
            {name: case(name, BAD_CALLS[name]) for name in BAD_CALLS_IN_TRANSACTION},
        )
