"""The learning loop: RLCoordinatorAgent and create_rl_agent_architecture on real stores."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlmemory.coordinator import LEARNER_TYPES, RLCoordinatorAgent, create_rl_agent_architecture
from rlmemory.errors import UnknownDecisionError
from rlmemory.features import EmbeddingFeaturizer, TextFeaturizer
from rlmemory.rewards import RewardSystem
from rlmemory.store.sql import MemoryDatabase

KIND_REQUESTS = {
    "search_agent": [
        "Search for the latest news about {}",
        "Find information on {} please",
        "Where can I look up sources about {}?",
    ],
    "analysis_agent": [
        "Analyse the average and median of these numbers for {}",
        "Compare the growth statistics of {}",
        "Summarise the distribution of the data on {}",
    ],
    "coding_agent": [
        "Fix this python function for {}: def f(x): return x +",
        "Debug the script that handles {}: import os; print(os.getcwd(",
        "Refactor the class for {}: class A: pass",
    ],
}
TOPICS = ["solar panels", "the stock market", "bees", "rust compilers", "football", "tea"]


def kind_request(rng: np.random.Generator) -> tuple[str, str]:
    """A request and the sub-agent that can serve it."""
    kind = list(KIND_REQUESTS)[int(rng.integers(3))]
    template = KIND_REQUESTS[kind][int(rng.integers(3))]
    return kind, template.format(TOPICS[int(rng.integers(len(TOPICS)))])


class Specialist:
    """Succeeds only on requests of its own kind (the seed's execute(request, db) form)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0

    async def execute(self, request: str, db: Any) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0)
        serves = any(
            request.startswith(template.split("{}")[0]) for template in KIND_REQUESTS[self.kind]
        )
        if serves:
            return {"success": True, "response": f"{self.kind} handled: {request}"}
        return {"success": False, "response": "", "error": f"{self.kind} cannot serve this"}


def specialists() -> dict[str, Specialist]:
    return {kind: Specialist(kind) for kind in KIND_REQUESTS}


@pytest.fixture
def db(tmp_path: Path) -> Any:
    with MemoryDatabase(tmp_path / "memory.db") as database:
        yield database


def make_coordinator(db: Any, rl_agent_type: str = "q_learning", **options: Any) -> Any:
    options.setdefault("sub_agents", specialists())
    sub_agents = options.pop("sub_agents")
    return asyncio.run(create_rl_agent_architecture(None, db, sub_agents, rl_agent_type, **options))


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# ----------------------------------------------------------------- one request
def test_process_request_stores_decision_interaction_and_reward_together(db: Any) -> None:
    coordinator = make_coordinator(db, seed=1)
    result = run(coordinator.process_request("Search for the latest news about bees"))

    for key in ("success", "response", "selected_agent", "reward", "performance_metrics"):
        assert key in result
    decision = db.get_agent_decision(result["decision_id"])
    assert decision["agent_name"] == "rl_coordinator"
    assert decision["selected_action"] == result["selected_agent"]
    assert decision["state"] == result["state"]
    assert set(decision["q_values"]) == set(KIND_REQUESTS)
    assert 0 < decision["propensity"] <= 1
    assert decision["propensity"] == pytest.approx(result["propensity"])
    assert len(decision["features"]) == coordinator.state_extractor.dimension
    assert decision["reward"]["status"] == "observed"
    assert decision["reward"]["value"] == pytest.approx(result["reward"])
    assert decision["reward"]["interaction_id"] == result["interaction_id"]
    interaction = db.get_agent_interaction(result["interaction_id"])
    assert interaction["decision_id"] == result["decision_id"]
    assert interaction["request"] == "Search for the latest news about bees"
    assert interaction["response"] == result["response"]
    (reward_row,) = db.get_agent_rewards("rl_coordinator")
    assert reward_row["decision_id"] == result["decision_id"]
    assert reward_row["reward"] == pytest.approx(result["reward"])
    q_value = db.get_q_table("rl_coordinator")[result["state"]][result["selected_agent"]]
    assert q_value == coordinator.rl_agent.get_q_values(result["state"])[result["selected_agent"]]


def test_success_earns_more_than_failure(db: Any) -> None:
    coordinator = make_coordinator(db, seed=2)
    rewards: dict[bool, list[float]] = {True: [], False: []}
    for index in range(30):
        _, request = kind_request(np.random.default_rng(index))
        result = run(coordinator.process_request(request))
        rewards[result["success"]].append(result["reward"])
    assert rewards[True] and rewards[False]
    assert min(rewards[True]) > max(rewards[False]) + 0.2


def test_request_that_is_not_a_string_is_a_type_error_and_nothing_is_stored(db: Any) -> None:
    coordinator = make_coordinator(db)
    with pytest.raises(TypeError, match="request must be a str"):
        run(coordinator.process_request(b"bytes are not text"))  # type: ignore[arg-type]
    assert db.count_agent_decisions("rl_coordinator") == 0
    assert db.get_agent_interactions("rl_coordinator") == []
    assert all(agent.calls == 0 for agent in coordinator.sub_agents.values())


@pytest.mark.parametrize("features", [[1.0, float("nan")], [[1.0, 2.0]], []])
def test_bad_features_are_rejected_before_anything_runs(db: Any, features: Any) -> None:
    coordinator = make_coordinator(db, "linucb")
    with pytest.raises(ValueError, match="features"):
        run(coordinator.process_request("Find information on tea", features=features))
    assert db.count_agent_decisions("rl_coordinator") == 0


def test_given_features_replace_extraction(db: Any) -> None:
    coordinator = make_coordinator(db, "linucb", seed=3)
    context = [0.5, -1.0, 2.0]
    result = run(coordinator.process_request("Find information on tea", features=context))
    decision = db.get_agent_decision(result["decision_id"])
    assert decision["features"] == context
    assert decision["state"] == coordinator.state_extractor.extract("Find information on tea").state


def test_a_chat_model_classifies_the_state(db: Any) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=["coding"])
    coordinator = run(create_rl_agent_architecture(model, db, specialists(), seed=27))
    result = run(coordinator.process_request("Find information on tea"))
    assert result["state"].startswith("coding:")  # the model's label, not the keywords'
    assert db.get_agent_decision(result["decision_id"])["state"] == result["state"]


# ---------------------------------------------------------------- sub-agents
def test_crashing_sub_agent_is_a_failed_task_and_the_coordinator_keeps_serving(db: Any) -> None:
    def crashing(request: str) -> str:
        raise RuntimeError("the index is corrupt")

    coordinator = make_coordinator(db, sub_agents={"crashing": crashing}, seed=4)
    first = run(coordinator.process_request("Find information on tea"))
    second = run(coordinator.process_request("Find information on bees"))
    assert first["success"] is False
    assert first["error"] == "RuntimeError: the index is corrupt"
    assert second["success"] is False
    assert db.count_agent_decisions("rl_coordinator") == 2
    assert (
        db.get_agent_decision(first["decision_id"])["reward"]["performance_metrics"]["success_rate"]
        == 0.0
    )


def test_sub_agent_running_past_the_timeout_fails_with_the_error_recorded(db: Any) -> None:
    async def slow(request: str) -> str:
        await asyncio.sleep(5)
        return "too late"

    coordinator = make_coordinator(db, sub_agents={"slow": slow}, subagent_timeout=0.05)
    started = time.perf_counter()
    result = run(coordinator.process_request("Find information on tea"))
    assert time.perf_counter() - started < 4
    assert result["success"] is False
    assert "timed out after 0.05 s" in result["error"]
    assert db.get_agent_interaction(result["interaction_id"])["response"] == ""


def test_blocking_sync_sub_agent_times_out_without_blocking_the_event_loop(db: Any) -> None:
    release = threading.Event()

    def blocking(request: str) -> str:
        release.wait(10)
        return "finally"

    coordinator = make_coordinator(db, sub_agents={"blocking": blocking}, subagent_timeout=0.05)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not release.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async def scenario() -> dict[str, Any]:
        ticking = asyncio.create_task(ticker())
        result = await coordinator.process_request("Find information on tea")
        release.set()
        await ticking
        return result

    result = run(scenario())
    assert result["success"] is False
    assert "timed out after 0.05 s" in result["error"]
    assert ticks >= 3  # the loop kept running while the sub-agent blocked its thread


def test_sub_agent_returning_a_non_dict_is_a_successful_text_response(db: Any) -> None:
    coordinator = make_coordinator(db, sub_agents={"counter": len}, seed=26)
    result = run(coordinator.process_request("four"))
    assert result["success"] is True and result["response"] == "4"


def test_every_sub_agent_form_is_served(db: Any) -> None:
    class SyncExecute:
        def execute(self, request: str, db: Any) -> dict[str, Any]:
            return {"success": True, "response": "sync execute", "tool_calls": ["a", "b"]}

    async def async_callable(request: str) -> dict[str, Any]:
        return {"success": True, "response": "async callable"}

    forms = {
        "sync_execute": SyncExecute(),
        "async_callable": async_callable,
        "sync_callable": lambda request: f"echo {request}",
    }
    for name, agent in forms.items():
        coordinator = make_coordinator(db, sub_agents={name: agent}, name=f"router_{name}")
        result = run(coordinator.process_request("hello"))
        assert result["success"] is True
        assert result["selected_agent"] == name
    assert result["response"] == "echo hello"
    assert (
        db.get_agent_decisions("router_sync_execute")[0]["reward"]["performance_metrics"][
            "tool_usage"
        ]
        == 2
    )


# ----------------------------------------------------------------- feedback
def test_feedback_credits_the_action_actually_taken(db: Any) -> None:
    coordinator = make_coordinator(db, seed=5, exploration_rate=0.0)
    request = "Search for the latest news about bees"
    result = run(coordinator.process_request(request))
    state, taken = result["state"], result["selected_agent"]
    learner = coordinator.rl_agent
    learner.update_q_value(state, taken, 0.0)  # now another action is greedy
    greedy = max(learner.get_q_values(state).items(), key=lambda item: item[1])[0]
    assert greedy != taken
    before = learner.get_q_values(state)

    credited = run(
        coordinator.update_from_feedback(
            request,
            result["response"],
            "excellent, exactly right",
            decision_id=result["decision_id"],
        )
    )
    after = learner.get_q_values(state)
    assert credited["selected_agent"] == taken
    assert after[taken] > before[taken]
    assert after[greedy] == before[greedy]
    assert db.get_q_table("rl_coordinator")[state][taken] == after[taken]
    interaction = db.get_agent_interaction(result["interaction_id"])
    assert interaction["feedback"] == "excellent, exactly right"
    assert interaction["feedback_learned"] is True
    assert db.get_agent_decision(result["decision_id"])["reward"]["source"] == "feedback"
    assert run(coordinator.learn_from_batch())["interactions_processed"] == 0


def test_feedback_finds_the_decision_from_request_and_response(db: Any) -> None:
    coordinator = make_coordinator(db, seed=6)
    request = "Compare the growth statistics of tea"
    result = run(coordinator.process_request(request))
    credited = run(coordinator.update_from_feedback(request, result["response"], "not helpful"))
    assert credited["decision_id"] == result["decision_id"]
    assert credited["learned"] is True
    rewards = db.get_agent_rewards("rl_coordinator")
    assert rewards[0]["decision_id"] == result["decision_id"]
    assert rewards[0]["reward_components"]["source"] == "feedback"
    assert rewards[0]["reward"] < rewards[1]["reward"]  # "not helpful" is negative


def test_feedback_recomputes_the_reward_from_the_stored_performance_metrics(db: Any) -> None:
    coordinator = make_coordinator(db, seed=6)
    request = "Compare the growth statistics of tea"
    result = run(coordinator.process_request(request))
    credited = run(
        coordinator.update_from_feedback(request, result["response"], 5, result["decision_id"])
    )
    expected, _ = coordinator.reward_system.compute_reward(5, result["performance_metrics"])
    assert credited["reward"] == pytest.approx(expected)


def test_unknown_decision_is_a_lookup_error_naming_it_and_nothing_is_stored(db: Any) -> None:
    coordinator = make_coordinator(db, seed=7)
    result = run(coordinator.process_request("Find information on tea"))
    table_before = db.get_q_table("rl_coordinator")
    with pytest.raises(UnknownDecisionError, match="999"):
        run(coordinator.update_from_feedback("x", "y", "great", decision_id=999))
    with pytest.raises(LookupError, match="no stored interaction"):
        run(coordinator.update_from_feedback("never asked", "never said", "great"))
    with pytest.raises(LookupError, match="999"):
        run(coordinator.reward(999, 1.0))
    assert db.get_q_table("rl_coordinator") == table_before
    assert len(db.get_agent_rewards("rl_coordinator")) == 1
    assert db.get_agent_interaction(result["interaction_id"])["feedback"] is None


def test_decision_of_another_coordinator_is_unknown_to_this_one(db: Any) -> None:
    first = make_coordinator(db, name="first")
    second = make_coordinator(db, name="second")
    result = run(first.process_request("Find information on tea"))
    with pytest.raises(UnknownDecisionError):
        run(second.update_from_feedback("x", "y", "great", decision_id=result["decision_id"]))


# ----------------------------------------------------------- batch learning
def test_learn_from_batch_learns_feedback_written_by_plain_sql_once_across_restarts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.db"
    with MemoryDatabase(path) as db:
        coordinator = make_coordinator(db, seed=8)
        results = [run(coordinator.process_request(f"Find information on {t}")) for t in TOPICS]
    with sqlite3.connect(path) as connection:  # another program writes feedback by hand
        connection.execute(
            "UPDATE agent_interactions SET feedback = 'terrible, wrong answer' "
            "WHERE id IN (?, ?, ?)",
            [
                results[0]["interaction_id"],
                results[2]["interaction_id"],
                results[4]["interaction_id"],
            ],
        )
    with MemoryDatabase(path) as db:
        coordinator = make_coordinator(db, seed=8)
        table_before = db.get_q_table("rl_coordinator")
        first = run(coordinator.learn_from_batch(batch_size=2))
        second = run(coordinator.learn_from_batch(batch_size=10))
        third = run(coordinator.learn_from_batch(batch_size=10))
        assert [first["interactions_processed"], second["interactions_processed"]] == [2, 1]
        assert third == {
            "status": "success",
            "interactions_processed": 0,
            "interactions_skipped": 0,
            "interactions_retired": 0,
        }
        assert db.get_q_table("rl_coordinator") != table_before
        feedback_rewards = [
            row
            for row in db.get_agent_rewards("rl_coordinator", limit=100)
            if row["reward_components"].get("source") == "feedback"
        ]
        assert sorted(row["decision_id"] for row in feedback_rewards) == sorted(
            results[i]["decision_id"] for i in (0, 2, 4)
        )
    with MemoryDatabase(path) as db:
        restarted = make_coordinator(db, seed=8)
        assert run(restarted.learn_from_batch())["interactions_processed"] == 0


class ListingThenRacedStore:
    """A real store; right after it lists unlearned feedback, another process learns it."""

    def __init__(self, inner: Any, other_process: Any) -> None:
        self.inner = inner
        self.other_process = other_process

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_unlearned_feedback(self, agent_name: str, limit: int = 10) -> list[Any]:
        rows = self.inner.get_unlearned_feedback(agent_name, limit)
        self.other_process.mark_feedback_learned([row["id"] for row in rows])
        return rows


def test_feedback_another_process_learned_meanwhile_is_not_learned_again(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryDatabase(path) as db, MemoryDatabase(path) as other_process:
        coordinator = make_coordinator(db, seed=25)
        result = run(coordinator.process_request("Find information on tea"))
        db.set_interaction_feedback(result["interaction_id"], "wrong")
        coordinator.db = ListingThenRacedStore(db, other_process)
        outcome = run(coordinator.learn_from_batch())
        assert outcome["interactions_processed"] == 0
        assert len(db.get_agent_rewards("rl_coordinator", 10)) == 1


def test_learn_from_batch_skips_interactions_without_a_decision(db: Any) -> None:
    coordinator = make_coordinator(db)
    interaction_id = db.save_agent_interaction("rl_coordinator", "old", "seed-style", "good")
    outcome = run(coordinator.learn_from_batch())
    assert outcome == {
        "status": "success",
        "interactions_processed": 0,
        "interactions_skipped": 1,
        "interactions_retired": 0,
    }
    assert db.get_agent_interaction(interaction_id)["feedback_learned"] is True


class StrictRewardSystem(RewardSystem):
    """A user's reward system that refuses feedback it does not understand."""

    def compute_reward(self, feedback: Any, performance_metrics: Any) -> Any:
        if feedback == "unscorable":
            raise ValueError("feedback 'unscorable' cannot be scored")
        return super().compute_reward(feedback, performance_metrics)


def test_learn_from_batch_skips_feedback_the_reward_system_cannot_score(db: Any) -> None:
    coordinator = make_coordinator(db, seed=22, reward_system=StrictRewardSystem(db))
    bad = run(coordinator.process_request("Find information on tea"))
    good = run(coordinator.process_request("Find information on bees"))
    db.set_interaction_feedback(bad["interaction_id"], "unscorable")
    db.set_interaction_feedback(good["interaction_id"], "4")
    outcome = run(coordinator.learn_from_batch())
    assert outcome == {
        "status": "success",
        "interactions_processed": 1,
        "interactions_skipped": 1,
        "interactions_retired": 0,
    }
    assert db.get_unlearned_feedback("rl_coordinator", 10) == []
    feedback_rewards = [
        row["decision_id"]
        for row in db.get_agent_rewards("rl_coordinator", 10)
        if row["reward_components"]["source"] == "feedback"
    ]
    assert feedback_rewards == [good["decision_id"]]


def test_learn_from_batch_reads_an_out_of_range_rating_text_as_plain_text(db: Any) -> None:
    coordinator = make_coordinator(db, seed=22)
    result = run(coordinator.process_request("Find information on tea"))
    db.set_interaction_feedback(result["interaction_id"], "7")
    outcome = run(coordinator.learn_from_batch())
    assert outcome == {
        "status": "success",
        "interactions_processed": 1,
        "interactions_skipped": 0,
        "interactions_retired": 0,
    }
    feedback_rows = [
        row
        for row in db.get_agent_rewards("rl_coordinator", 10)
        if row["reward_components"]["source"] == "feedback"
    ]
    assert [row["reward_components"]["user_satisfaction"] for row in feedback_rows] == [0.5]


def test_feedback_given_as_a_mapping_is_scored_and_stored_as_json(db: Any) -> None:
    coordinator = make_coordinator(db, seed=23)
    result = run(coordinator.process_request("Find information on tea"))
    feedback = {"rating": 5, "user_feedback": "spot on"}
    credited = run(
        coordinator.update_from_feedback(
            "Find information on tea", result["response"], feedback, result["decision_id"]
        )
    )
    expected, _ = coordinator.reward_system.compute_reward(feedback, result["performance_metrics"])
    assert credited["reward"] == pytest.approx(expected)
    stored = db.get_agent_interaction(result["interaction_id"])["feedback"]
    assert json.loads(stored) == feedback


def test_feedback_of_an_unsupported_type_is_a_type_error_and_nothing_is_stored(db: Any) -> None:
    coordinator = make_coordinator(db, seed=24)
    result = run(coordinator.process_request("Find information on tea"))
    with pytest.raises(TypeError, match="feedback must be"):
        run(
            coordinator.update_from_feedback(
                "Find information on tea", result["response"], ["good"], result["decision_id"]
            )
        )
    assert len(db.get_agent_rewards("rl_coordinator", 10)) == 1
    assert db.get_agent_interaction(result["interaction_id"])["feedback"] is None


# --------------------------------------------------------- all or nothing
class FailingAfterLearning:
    """Wraps a real learner; learn() updates it (and the store) and then fails."""

    def __init__(self, learner: Any) -> None:
        self.learner = learner
        self.name = learner.name
        self.actions = learner.actions
        self.reloads = 0

    def choose(self, observation: Any, rng: Any) -> Any:
        return self.learner.choose(observation, rng)

    def learn(self, observation: Any, action: str, reward: float) -> None:
        self.learner.learn(observation, action, reward)
        raise RuntimeError("learner crashed after writing")

    def add_action(self, action: str) -> None:
        self.learner.add_action(action)

    def reload(self) -> None:
        self.reloads += 1
        self.learner.reload()


def test_failure_while_storing_stores_nothing_and_reloads_the_learner(db: Any) -> None:
    coordinator = make_coordinator(db, seed=9)
    run(coordinator.process_request("Find information on tea"))
    real = coordinator.rl_agent
    table_before = db.get_q_table("rl_coordinator")
    coordinator.rl_agent = FailingAfterLearning(real)
    with pytest.raises(RuntimeError, match="learner crashed"):
        run(coordinator.process_request("Find information on bees"))
    assert coordinator.rl_agent.reloads == 1
    assert db.count_agent_decisions("rl_coordinator") == 1
    assert len(db.get_agent_interactions("rl_coordinator", 10)) == 1
    assert len(db.get_agent_rewards("rl_coordinator", 10)) == 1
    assert db.get_q_table("rl_coordinator") == table_before
    assert real.q_table == table_before
    coordinator.rl_agent = real
    result = run(coordinator.process_request("Find information on bees"))
    assert db.count_agent_decisions("rl_coordinator") == 2
    assert result["decision_id"] > 0


# -------------------------------------------------------------- concurrency
def test_200_concurrent_requests_give_200_decisions_and_consistent_learner_state(db: Any) -> None:
    coordinator = make_coordinator(db, seed=10)
    requests = [kind_request(np.random.default_rng(i))[1] for i in range(200)]

    async def all_at_once() -> list[dict[str, Any]]:
        return await asyncio.gather(*(coordinator.process_request(r) for r in requests))

    results = run(all_at_once())
    assert len({result["decision_id"] for result in results}) == 200
    assert db.count_agent_decisions("rl_coordinator") == 200
    interactions = db.get_agent_interactions("rl_coordinator", 500)
    assert len(interactions) == 200
    assert {row["decision_id"] for row in interactions} == {r["decision_id"] for r in results}
    assert len(db.get_agent_rewards("rl_coordinator", 500)) == 200
    assert coordinator.rl_agent.q_table == db.get_q_table("rl_coordinator")
    restarted = make_coordinator(db, seed=10)
    assert restarted.rl_agent.q_table == coordinator.rl_agent.q_table


# ------------------------------------------------------------------ learning
def routed_right_share(coordinator: Any, count: int, last: int, seed: int) -> float:
    right = []
    for index in range(count):
        kind, request = kind_request(np.random.default_rng([seed, index]))
        result = run(coordinator.process_request(request))
        right.append(result["selected_agent"] == kind)
    return sum(right[-last:]) / last


def test_q_learning_routes_three_quarters_right_after_300_requests(db: Any) -> None:
    coordinator = make_coordinator(db, seed=11)
    assert routed_right_share(coordinator, 300, 100, seed=11) >= 0.75


def test_policy_gradient_routes_seven_tenths_right_after_400_requests(db: Any) -> None:
    coordinator = make_coordinator(db, "policy_gradient", seed=12)
    assert routed_right_share(coordinator, 400, 100, seed=12) >= 0.70


@pytest.mark.parametrize(
    ("rl_agent_type", "minimum_share"),
    # chance is 1/3. Epsilon-greedy's optimistic prior_mean (1.0) lifts it from 0.67 to
    # 0.99 here (mean over seeds 13-24: 0.76 -> 0.97, lowest 0.92; docs/bandits.md).
    [("linucb", 0.5), ("thompson", 0.5), ("epsilon_greedy", 0.85)],
)
def test_bandit_learners_route_and_log_propensities(
    db: Any, rl_agent_type: str, minimum_share: float
) -> None:
    coordinator = make_coordinator(db, rl_agent_type, seed=13)
    share = routed_right_share(coordinator, 250, 100, seed=13)
    decisions = db.get_agent_decisions("rl_coordinator", 500)
    assert len(decisions) == 250
    assert all(0 < row["propensity"] <= 1 for row in decisions)
    assert share >= minimum_share


def test_squarecb_with_a_text_featurizer_routes_on_the_words_of_the_request(db: Any) -> None:
    """The issue's promise: rl_agent_type="squarecb", features=TextFeaturizer()."""
    coordinator = make_coordinator(db, "squarecb", seed=15, features=TextFeaturizer())
    share = routed_right_share(coordinator, 250, 100, seed=15)
    decisions = db.get_agent_decisions("rl_coordinator", 500)
    assert share >= 0.8  # chance is 1/3; LinUCB on the 24 keyword states needs >= 0.5
    assert all(0 < row["propensity"] <= 1 for row in decisions)
    # The 2**18-long sparse vector is not stored; the state key still is.
    assert all(row["features"] is None and row["state"] for row in decisions)
    assert coordinator.rl_agent.rounds == 250


def test_a_late_reward_for_a_squarecb_decision_learns_from_the_stored_request(db: Any) -> None:
    featurizer = TextFeaturizer(dimension=2**16)
    coordinator = make_coordinator(db, "squarecb", seed=16, features=featurizer, reward_wait=3600.0)
    request = "Compare the growth statistics of tea"
    result = run(coordinator.process_request(request))
    assert coordinator.rl_agent.rounds == 0
    before = coordinator.rl_agent.predictions(featurizer.sparse(request))
    run(coordinator.reward(result["decision_id"], 1.0))
    after = coordinator.rl_agent.predictions(featurizer.sparse(request))
    assert coordinator.rl_agent.rounds == 1
    assert after[result["selected_agent"]] > before[result["selected_agent"]]


def test_squarecb_routes_on_hashed_text_by_default(db: Any) -> None:
    coordinator = make_coordinator(db, "squarecb", seed=19)
    assert isinstance(coordinator.featurizer, TextFeaturizer)
    assert coordinator.featurizer.dimension == 2**18
    assert make_coordinator(db, "linucb", name="other").featurizer is None


def test_features_must_be_a_featurizer(db: Any) -> None:
    with pytest.raises(TypeError, match="features must be a featuriser"):
        make_coordinator(db, "squarecb", features=[1.0, 2.0])


def test_a_dense_featurizer_gives_every_learner_its_vector_and_it_is_stored(db: Any) -> None:
    coordinator = make_coordinator(db, "linucb", seed=17, features=TextFeaturizer(dimension=32))
    result = run(coordinator.process_request("Find information on bees please"))
    decision = db.get_agent_decision(result["decision_id"])
    expected = TextFeaturizer(dimension=32)("Find information on bees please")
    assert decision["features"] == pytest.approx(expected.tolist())


def test_an_embedding_featurizer_is_awaited_cached_and_its_vector_stored(db: Any) -> None:
    def embed(text: str) -> list[float]:
        return [float(len(text)), float(text.count("e")), 1.0]

    featurizer = EmbeddingFeaturizer(embed, name="letters", db=db)
    coordinator = make_coordinator(db, "linucb", seed=18, features=featurizer)
    first = run(coordinator.process_request("Find information on bees please"))
    run(coordinator.process_request("Find information on bees please"))
    assert (featurizer.misses, featurizer.hits) == (1, 1)
    decision = db.get_agent_decision(first["decision_id"])
    assert decision["features"] == embed("Find information on bees please")


def test_policy_gradient_logs_the_probability_of_its_choice(db: Any) -> None:
    coordinator = make_coordinator(db, "policy_gradient", seed=14)
    result = run(coordinator.process_request("Find information on tea"))
    decision = db.get_agent_decision(result["decision_id"])
    assert sum(decision["q_values"].values()) == pytest.approx(1.0)
    assert decision["propensity"] == pytest.approx(decision["q_values"][result["selected_agent"]])


# ----------------------------------------------------------- construction
def test_unknown_learner_type_is_a_value_error_listing_the_valid_ones(db: Any) -> None:
    with pytest.raises(ValueError, match="valid types: " + ", ".join(LEARNER_TYPES)):
        make_coordinator(db, "sarsa")
    with pytest.raises(ValueError, match="valid types"):
        RLCoordinatorAgent("router", None, db, RewardSystem(db), specialists(), "sarsa")


def test_no_sub_agents_is_a_value_error(db: Any) -> None:
    with pytest.raises(ValueError, match="at least one sub-agent"):
        make_coordinator(db, sub_agents={})
    assert db.list_agents() == []


def test_unusable_sub_agent_is_a_type_error_naming_it(db: Any) -> None:
    with pytest.raises(TypeError, match="'broken'"):
        make_coordinator(db, sub_agents={"broken": 42})


def test_added_sub_agent_becomes_an_action_and_learned_values_are_kept(db: Any) -> None:
    coordinator = make_coordinator(db, seed=15)
    for index in range(20):
        run(coordinator.process_request(kind_request(np.random.default_rng(index))[1]))
    learned = db.get_q_table("rl_coordinator")
    coordinator.add_sub_agent("translation_agent", lambda request: "traduit")
    assert "translation_agent" in coordinator.rl_agent.actions
    assert db.get_q_table("rl_coordinator") == learned
    chosen = {
        run(coordinator.process_request("Find information on tea"))["selected_agent"]
        for _ in range(10)
    }
    assert "translation_agent" in chosen  # an untried action is tried (optimistic start)
    with pytest.raises(ValueError, match="already exists"):
        coordinator.add_sub_agent("translation_agent", lambda request: "again")


# ---------------------------------------------------------- delayed rewards
def test_pending_decision_learns_its_explicit_reward_once(db: Any) -> None:
    coordinator = make_coordinator(db, seed=16, reward_wait=60.0)
    result = run(coordinator.process_request("Find information on tea"))
    assert result["reward"] is None
    assert result["reward_status"] == "pending"
    assert db.get_agent_rewards("rl_coordinator") == []
    assert db.get_q_table("rl_coordinator") in (None, {})

    credited = run(coordinator.reward(result["decision_id"], 0.9))
    assert credited["learned"] is True
    stored = db.get_agent_decision(result["decision_id"])["reward"]
    assert stored["status"] == "observed" and stored["value"] == 0.9
    q_value = db.get_q_table("rl_coordinator")[result["state"]][result["selected_agent"]]
    assert coordinator.apply_expired_rewards(now=time.time() + 3600) == 0
    assert db.get_q_table("rl_coordinator")[result["state"]][result["selected_agent"]] == q_value


def test_default_reward_after_the_wait_and_a_late_reward_is_stored_not_learned(db: Any) -> None:
    coordinator = make_coordinator(db, seed=17, reward_wait=60.0, default_reward=0.2)
    result = run(coordinator.process_request("Find information on tea"))
    assert coordinator.apply_expired_rewards(now=time.time() + 30) == 0
    assert coordinator.apply_expired_rewards(now=time.time() + 61) == 1
    stored = db.get_agent_decision(result["decision_id"])["reward"]
    assert stored["status"] == "defaulted" and stored["value"] == 0.2
    table = db.get_q_table("rl_coordinator")

    late = run(
        coordinator.update_from_feedback(
            "Find information on tea", result["response"], "perfect", result["decision_id"]
        )
    )
    assert late["learned"] is False
    assert db.get_q_table("rl_coordinator") == table
    stored = db.get_agent_decision(result["decision_id"])["reward"]
    assert stored["status"] == "defaulted"
    assert [entry["source"] for entry in stored["late_rewards"]] == ["feedback"]
    sources = [row["reward_components"]["source"] for row in db.get_agent_rewards("rl_coordinator")]
    assert sources == ["feedback", "default"]


def test_default_reward_is_the_outcome_reward_when_not_configured(db: Any) -> None:
    coordinator = make_coordinator(db, seed=18, reward_wait=0.0)
    result = run(coordinator.process_request("Find information on tea"))
    run(coordinator.process_request("Find information on bees"))  # applies the expired default
    stored = db.get_agent_decision(result["decision_id"])["reward"]
    assert stored["status"] == "defaulted"
    assert stored["value"] == stored["outcome_reward"]


def test_pending_decisions_are_found_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryDatabase(path) as db:
        result = run(
            make_coordinator(db, seed=19, reward_wait=10.0).process_request(
                "Find information on tea"
            )
        )
    with MemoryDatabase(path) as db:
        restarted = make_coordinator(db, seed=19, reward_wait=10.0, default_reward=0.0)
        assert restarted.apply_expired_rewards(now=time.time() + 11) == 1
        assert db.get_agent_decision(result["decision_id"])["reward"]["status"] == "defaulted"


def test_bad_delayed_reward_values_are_rejected(db: Any) -> None:
    coordinator = make_coordinator(db, seed=20, reward_wait=5.0)
    result = run(coordinator.process_request("Find information on tea"))
    with pytest.raises(ValueError, match="finite"):
        run(coordinator.reward(result["decision_id"], float("nan")))
    with pytest.raises(ValueError, match="reward_wait"):
        make_coordinator(db, reward_wait=-1.0)
    assert db.get_agent_decision(result["decision_id"])["reward"]["status"] == "pending"


# ------------------------------------------------------------ every backend
def test_loop_works_on_every_backend(store: Any) -> None:
    coordinator = make_coordinator(store, seed=21)
    result = run(coordinator.process_request("Find information on tea"))
    run(coordinator.update_from_feedback("Find information on tea", result["response"], "great"))
    interaction = store.get_agent_interaction(result["interaction_id"])
    assert interaction["feedback"] == "great" and interaction["feedback_learned"] is True
    other = run(coordinator.process_request("Compare the growth statistics of bees"))
    store.set_interaction_feedback(other["interaction_id"], "wrong")
    assert run(coordinator.learn_from_batch())["interactions_processed"] == 1
    assert run(coordinator.learn_from_batch())["interactions_processed"] == 0
    assert store.count_agent_decisions("rl_coordinator") == 2
    assert len(store.get_agent_rewards("rl_coordinator", 10)) == 4


# ----------------------------------------------------------------- versions
def test_checkpoint_every_takes_versions_that_later_decisions_record(db: Any) -> None:
    from rlmemory.ops.versions import get_version, list_versions

    coordinator = make_coordinator(db, seed=5, checkpoint_every=4)
    results = [run(coordinator.process_request(f"Find information on topic {i}")) for i in range(8)]
    learned_after_eight = db.get_q_table("rl_coordinator")
    results.append(run(coordinator.process_request("Find information on topic 8")))

    versions = [info.version for info in list_versions(db, "rl_coordinator")]
    assert versions == [1, 2]
    assert get_version(db, "rl_coordinator", 2).state.q_table == learned_after_eight
    # version 1 was taken after the 4th update, so the 5th decision was made under it
    recorded = [db.get_agent_decision(r["decision_id"])["version"] for r in results]
    assert recorded == [None] * 4 + [1] * 4 + [2]


def test_rollback_restores_the_version_and_the_learner_uses_it_at_once(db: Any) -> None:
    from rlmemory.ops.versions import get_version

    coordinator = make_coordinator(db, seed=6, checkpoint_every=3)
    for i in range(3):
        run(coordinator.process_request(f"Find information on topic {i}"))
    saved = get_version(db, "rl_coordinator", 1).state.q_table
    for i in range(6):
        run(coordinator.process_request(f"Analyse the numbers {i} 4 5 6"))
    assert db.get_q_table("rl_coordinator") != saved

    coordinator.rollback(1)

    assert db.get_q_table("rl_coordinator") == saved
    assert coordinator.rl_agent.q_table == saved


def test_checkpoint_every_must_be_a_positive_integer(db: Any) -> None:
    with pytest.raises(ValueError, match="every must be a positive integer"):
        make_coordinator(db, checkpoint_every=0)
