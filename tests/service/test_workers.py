"""Several uvicorn worker processes on one store: no lost learning, rewards learned once.

Runs a real ``rlmemory serve --workers 2`` on loopback over each backend (``make_store``)
and sends bounded traffic from threads, each request on a new connection so that both
workers take requests: ranks and rewards land on different workers.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from rlmemory.learners.bandits import EpsilonGreedyAgent

httpx = pytest.importorskip("httpx")

EVENTS = 60
ACTIONS = [{"id": "a"}, {"id": "b"}, {"id": "c"}]


def rank(url: str, event_id: str) -> tuple[dict[str, Any], str]:
    body = {"contextFeatures": [{"user": {"n": int(event_id[1:]) % 3}}], "actions": ACTIONS,
            "eventId": event_id}  # fmt: skip
    response = httpx.post(url + "/loops/shared/rank", json=body, timeout=60)
    assert response.status_code == 201, response.text
    return response.json(), response.headers["x-rlmemory-worker"]


def reward(url: str, event_id: str, value: float) -> str:
    response = httpx.post(
        f"{url}/loops/shared/events/{event_id}/reward", json={"value": value}, timeout=60
    )
    assert response.status_code == 204, response.text
    return response.headers["x-rlmemory-worker"]


@pytest.mark.slow
def test_two_workers_learn_every_reward_exactly_once(make_store: Any, start_service: Any) -> None:
    service = start_service(make_store.location, "--workers", "2", "--refresh-seconds", "0")
    event_ids = [f"e{number}" for number in range(EVENTS)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Every rank twice at once: the repeat must return the same decision.
        answers = list(pool.map(lambda e: rank(service.url, e), event_ids + event_ids))
        first, repeated = answers[:EVENTS], answers[EVENTS:]
        assert [a for a, _ in first] == [a for a, _ in repeated]
        values = {a["eventId"]: float(a["rewardActionId"] == "b") for a, _ in first}
        # Every reward twice at once: it must be learned once.
        reward_workers = list(
            pool.map(lambda e: reward(service.url, e, values[e]), event_ids + event_ids)
        )
    workers = {worker for _, worker in answers} | set(reward_workers)
    assert len(workers) == 2, f"one worker took every request: {workers}"

    store = make_store()
    assert store.count_agent_decisions("shared") == EVENTS
    stats = store.agent_stats("shared")
    assert stats["rewards"] == EVENTS
    assert stats["mean_reward"] == pytest.approx(sum(values.values()) / EVENTS)
    decisions = store.get_agent_decisions("shared", limit=EVENTS)
    assert all(d["reward"]["status"] == "observed" for d in decisions)
    assert sum(len(d["reward"].get("late_rewards", [])) for d in decisions) == EVENTS
    learner = EpsilonGreedyAgent("shared", store, ["a", "b", "c"])
    learned = sum(int(s["count"]) for s in learner.statistics().values())
    assert learned == EVENTS
    chosen = [d["selected_action"] for d in decisions]
    for action, stat in learner.statistics().items():
        assert int(stat["count"]) == chosen.count(action)
    assert np.isfinite(learner.statistics()["a"]["theta"]).all()


@pytest.mark.slow
def test_a_restarted_worker_set_closes_windows_left_open(
    make_store: Any, start_service: Any
) -> None:
    """Events ranked by one service and never rewarded are defaulted by the next one."""
    first = start_service(make_store.location, "--workers", "2")
    httpx.put(first.url + "/loops/shared", json={"rewardWaitTime": 1, "defaultReward": 0.25})
    for number in range(4):
        rank(first.url, f"e{number}")
    first.process.terminate()
    first.process.wait(timeout=30)
    start_service(make_store.location, "--workers", "2")
    store = make_store()
    deadline = 60.0
    started = time.monotonic()
    while store.agent_stats("shared")["rewards"] < 4 and time.monotonic() - started < deadline:
        time.sleep(0.5)  # the sweeper closes windows every second; poll its result
    decisions = store.get_agent_decisions("shared", limit=10)
    assert [d["reward"]["status"] for d in decisions] == ["defaulted"] * 4
    assert store.agent_stats("shared")["rewards"] == 4
