"""Every exactly-once path learns each reward once, with four processes, on every backend.

Four child interpreters (``exactly_once_worker.py``) each build the same LinUCB
coordinator on the test's store, are released together, and race over the same rows:
batch feedback, requests with feedback, expired (default) rewards, explicit rewards
against expiry, and relearning. Afterwards the test counts what is stored — reward
rows by source, the learner's update count (LinUCB keeps one per learned reward),
``late_rewards`` on decisions — and requires the exact numbers a single process gives.

Before the fix, PostgreSQL (READ COMMITTED) checked "already learned?" before taking
the learner's lock and so learned most feedback two or three times.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import exactly_once_worker as worker_module

from released_workers import run_released_together
from rlmemory.learners.bandits import LinUCBAgent

WORKER_SCRIPT = Path(worker_module.__file__)
AGENT = worker_module.AGENT
PROCESSES = 4


def run_workers(location: str, modes: list[str], env: dict[str, str]) -> None:
    run_released_together(
        [[str(WORKER_SCRIPT), location, mode, str(number)] for number, mode in enumerate(modes)],
        env,
        location,
    )


def make_decisions(store: Any, count: int, *, reward_wait: float | None = None) -> list[Any]:
    """``count`` requests through the coordinator; returns their results."""

    async def requests() -> list[Any]:
        coordinator = await worker_module.build(store, reward_wait=reward_wait)
        return [await coordinator.process_request(f"request {n}") for n in range(count)]

    return asyncio.run(requests())


def learner_updates(store: Any) -> int:
    """How many rewards the LinUCB router has learned, over all its actions."""
    statistics = LinUCBAgent(AGENT, store, list(worker_module.SUB_AGENTS)).statistics()
    return sum(int(arm["count"]) for arm in statistics.values())


def rewards_by_source(store: Any) -> Counter[str]:
    total = store.agent_stats(AGENT)["rewards"]
    rows = store.get_agent_rewards(AGENT, limit=max(total, 1))
    assert len(rows) == total
    return Counter(row["reward_components"]["source"] for row in rows)


def decisions(store: Any) -> list[dict[str, Any]]:
    return list(store.iter_agent_decisions(AGENT))


def test_batch_feedback_is_learned_once_by_four_processes(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    rows = 120
    with make_store() as store:
        for result in make_decisions(store, rows):
            store.set_interaction_feedback(result["interaction_id"], "great, thanks")
    run_workers(make_store.location, ["batch"] * PROCESSES, subprocess_env)
    with make_store() as store:
        assert rewards_by_source(store) == {"outcome": rows, "feedback": rows}
        assert learner_updates(store) == 2 * rows
        assert store.get_unlearned_feedback(AGENT, 10) == []


def test_requests_with_feedback_from_four_coordinators_learn_each_once(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    run_workers(make_store.location, ["requests"] * PROCESSES, subprocess_env)
    rows = PROCESSES * worker_module.REQUESTS_PER_WORKER
    with make_store() as store:
        assert rewards_by_source(store) == {"outcome": rows, "feedback": rows}
        assert learner_updates(store) == 2 * rows


def test_expired_rewards_are_defaulted_once_by_four_processes(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    pending = 80
    with make_store() as store:
        make_decisions(store, pending, reward_wait=worker_module.REWARD_WAIT)
    run_workers(make_store.location, ["expire"] * PROCESSES, subprocess_env)
    with make_store() as store:
        assert rewards_by_source(store) == {"default": pending}
        assert learner_updates(store) == pending
        stored = decisions(store)
        assert Counter(d["reward"]["status"] for d in stored) == {"defaulted": pending}
        assert not [d["id"] for d in stored if d["reward"].get("late_rewards")]


def test_explicit_rewards_racing_expiry_learn_one_reward_per_decision(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    pending = 60
    with make_store() as store:
        make_decisions(store, pending, reward_wait=worker_module.REWARD_WAIT)
    run_workers(make_store.location, ["explicit"] * PROCESSES, subprocess_env)
    with make_store() as store:
        stored = decisions(store)
        status = Counter(d["reward"]["status"] for d in stored)
        late = sum(len(d["reward"].get("late_rewards", [])) for d in stored)
        sources = rewards_by_source(store)
        # Two workers reward each decision explicitly; every explicit reward is stored,
        # learned unless the default came first (then it is a late reward).
        assert sources["explicit"] == 2 * pending
        assert sources["default"] == status["defaulted"]
        assert status["observed"] + status["defaulted"] == pending
        assert late == sum(
            1 for d in stored if d["reward"]["status"] == "defaulted" for _ in range(2)
        )
        assert learner_updates(store) == sources["default"] + sources["explicit"] - late


def test_relearn_by_four_processes_replays_each_decision_once(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    from rlmemory.ops.versions import checkpoint

    count = 40
    with make_store() as store:
        assert checkpoint(store, AGENT, "before the decisions") == 1
        make_decisions(store, count)
        assert learner_updates(store) == count
    run_workers(make_store.location, ["relearn"] * PROCESSES, subprocess_env)
    with make_store() as store:
        assert learner_updates(store) == count
        assert rewards_by_source(store) == {"outcome": count}


def test_feedback_for_a_retired_sub_agent_is_stored_and_skipped_not_a_poison_pill(
    make_store: Any,
) -> None:
    """One process: the point is a decision whose action the learner no longer has."""
    from rlmemory.coordinator import create_rl_agent_architecture

    async def scenario() -> None:
        with make_store() as store:
            three = {**worker_module.sub_agents(), "c": lambda request: f"c: {request}"}
            old = await create_rl_agent_architecture(
                None, store, three, "linucb", seed=3, name=AGENT
            )
            results = [await old.process_request(f"request {n}") for n in range(150)]
            retired = [r for r in results if r["selected_agent"] == "c"][:30]
            kept = [r for r in results if r["selected_agent"] != "c"][:10]
            assert len(retired) == 30 and len(kept) == 10
            for result in retired + kept:
                store.set_interaction_feedback(result["interaction_id"], "great, thanks")
            new = await worker_module.build(store)  # rebuilt without sub-agent c
            updates_before = learner_updates(store)
            outcome = await new.learn_from_batch(100)
            assert outcome == {
                "status": "success",
                "interactions_processed": 10,
                "interactions_skipped": 30,
                "interactions_retired": 30,
            }
            assert store.get_unlearned_feedback(AGENT, 10) == []
            assert learner_updates(store) == updates_before + 10
            assert rewards_by_source(store)["feedback"] == 40
            for result in retired:
                recorded = store.get_agent_decision(result["decision_id"])["reward"]
                assert "no longer" in recorded["not_learned"]
            later = await new.process_request("a later request")
            store.set_interaction_feedback(later["interaction_id"], "great, thanks")
            assert (await new.learn_from_batch(5))["interactions_processed"] == 1
            assert learner_updates(store) == updates_before + 12

    asyncio.run(scenario())
