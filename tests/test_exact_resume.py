"""Exact resume: a coordinator restarted every k requests repeats an uninterrupted one exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlmemory.coordinator import create_rl_agent_architecture
from rlmemory.features import TextFeaturizer
from rlmemory.store.sql import MemoryDatabase

NAME = "router"
REQUESTS = 100
#: Without efficiency (wall-clock response time), rewards depend only on the outcome
#: and the feedback, so the two runs see exactly the same rewards.
WEIGHTS = {"user_satisfaction": 0.5, "task_completion": 0.5}
KINDS = {
    "search_agent": "Search for the latest news about {}",
    "analysis_agent": "Analyse the average and median of the numbers on {}",
    "coding_agent": "Fix this python function about {}: def f(x): return x +",
}
TOPICS = ["bees", "tea", "solar panels", "football", "rust compilers"]


def request_stream() -> list[tuple[str, str]]:
    rng = np.random.default_rng(2024)
    stream = []
    for _ in range(REQUESTS):
        kind = list(KINDS)[int(rng.integers(len(KINDS)))]
        stream.append((kind, KINDS[kind].format(TOPICS[int(rng.integers(len(TOPICS)))])))
    return stream


def specialist(kind: str) -> Any:
    async def serve(request: str) -> dict[str, Any]:
        if request.startswith(KINDS[kind].split("{}")[0]):
            return {"success": True, "response": f"{kind}: done"}
        return {"success": False, "response": "", "error": "not my kind"}

    return serve


def learner_options(rl_agent_type: str) -> dict[str, Any]:
    """SquareCB routes on the hashed words of the request (sparse, re-computed for feedback)."""
    if rl_agent_type == "squarecb":
        return {"features": TextFeaturizer(dimension=2**16)}
    return {}


async def route(path: Path, rl_agent_type: str, restart_every: int | None) -> dict[str, Any]:
    """Route the stream, reopening store and coordinator every ``restart_every`` requests."""
    stream = request_stream()
    position = 0
    while position < len(stream):
        stop = len(stream) if restart_every is None else position + restart_every
        with MemoryDatabase(path) as db:
            coordinator = await create_rl_agent_architecture(
                None,
                db,
                {kind: specialist(kind) for kind in KINDS},
                rl_agent_type,
                seed=99,
                name=NAME,
                reward_weights=WEIGHTS,
                **learner_options(rl_agent_type),
            )
            for _, request in stream[position:stop]:
                result = await coordinator.process_request(request)
                if result["decision_id"] % 5 == 0:  # some feedback along the way
                    feedback = "great, thanks" if result["success"] else "wrong, useless"
                    await coordinator.update_from_feedback(
                        request, result["response"], feedback, result["decision_id"]
                    )
        position = stop
    with MemoryDatabase(path) as db:
        decisions = [
            (row["state"], row["selected_action"], row["propensity"], row["q_values"])
            for row in db.iter_agent_decisions(NAME)
        ]
        return {
            "decisions": decisions,
            "rewards": [row["reward"] for row in db.get_agent_rewards(NAME, 1000)],
            "q_table": db.get_q_table(NAME),
            "policy_params": db.get_policy_params(NAME),
            "arrays": db.get_arrays(NAME),
        }


_uninterrupted: dict[str, dict[str, Any]] = {}


def uninterrupted(tmp_path_factory: pytest.TempPathFactory, rl_agent_type: str) -> dict[str, Any]:
    if rl_agent_type not in _uninterrupted:
        path = tmp_path_factory.mktemp(f"uninterrupted_{rl_agent_type}") / "memory.db"
        _uninterrupted[rl_agent_type] = asyncio.run(route(path, rl_agent_type, None))
    return _uninterrupted[rl_agent_type]


@pytest.mark.parametrize("restart_every", [1, 7, 50])
@pytest.mark.parametrize(
    "rl_agent_type", ["q_learning", "policy_gradient", "linucb", "thompson", "squarecb"]
)
def test_restarted_coordinator_makes_the_same_decisions_and_stores_the_same_parameters(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    rl_agent_type: str,
    restart_every: int,
) -> None:
    reference = uninterrupted(tmp_path_factory, rl_agent_type)
    restarted = asyncio.run(route(tmp_path / "memory.db", rl_agent_type, restart_every))

    assert len(restarted["decisions"]) == REQUESTS
    assert restarted["decisions"] == reference["decisions"]
    assert restarted["rewards"] == reference["rewards"]
    assert restarted["q_table"] == reference["q_table"]
    assert restarted["policy_params"] == reference["policy_params"]
    assert restarted["arrays"].keys() == reference["arrays"].keys()
    for key, array in reference["arrays"].items():
        assert np.array_equal(restarted["arrays"][key], array), key


def test_the_stream_exercises_the_learner(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Guard against a vacuous resume test: decisions vary and the learner learned."""
    reference = uninterrupted(tmp_path_factory, "q_learning")
    actions = {action for _, action, _, _ in reference["decisions"]}
    assert actions == set(KINDS)
    assert any(propensity < 1 for _, _, propensity, _ in reference["decisions"])
    assert len(reference["q_table"]) >= 3
    policy = uninterrupted(tmp_path_factory, "policy_gradient")["policy_params"]
    assert policy is not None
    squarecb = uninterrupted(tmp_path_factory, "squarecb")
    assert {action for _, action, _, _ in squarecb["decisions"]} == set(KINDS)
    assert squarecb["arrays"]["rounds"].tolist() == [REQUESTS + REQUESTS // 5]
