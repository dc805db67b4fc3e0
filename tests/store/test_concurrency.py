"""Several processes writing one store at once lose nothing, on every backend.

Four child interpreters (``store_worker.py``) open the test's store by location, wait
until all of them are ready, then write at the same time. Afterwards every incremental
Q-value update and every appended reward must be in the store, and no child may have
failed (for SQLite: no "database is locked" reaching the caller).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from released_workers import run_released_together

WORKER_SCRIPT = Path(__file__).with_name("store_worker.py")
AGENT = "router"
PROCESSES = 4
WRITES_PER_PROCESS = 500


def run_writers(location: str, mode: str, env: dict[str, str], processes: int, writes: int) -> None:
    """Start ``processes`` workers, release them together, fail with their stderr if any fails."""
    run_released_together(
        [
            [str(WORKER_SCRIPT), location, mode, str(worker), "0", str(writes)]
            for worker in range(processes)
        ],
        env,
        location,
    )


@pytest.mark.slow
def test_concurrent_incremental_updates_of_disjoint_states_all_survive(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    run_writers(make_store.location, "q-states", subprocess_env, PROCESSES, WRITES_PER_PROCESS)
    with make_store() as store:
        table = store.get_q_table(AGENT)
    expected = {
        f"w{worker}-s{i}": {"a": float(i), "b": -float(i)}
        for worker in range(PROCESSES)
        for i in range(WRITES_PER_PROCESS)
    }
    assert table is not None
    missing = sorted(set(expected) - set(table))
    assert not missing, f"{len(missing)} states lost, e.g. {missing[:5]}"
    assert table == expected


@pytest.mark.slow
def test_concurrent_updates_of_different_actions_of_one_state_all_survive(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    writes = 200
    make_store().close()
    run_writers(make_store.location, "q-actions", subprocess_env, PROCESSES, writes)
    with make_store() as store:
        table = store.get_q_table(AGENT)
    expected = {
        f"s{i}": {f"w{worker}": float(worker * 100_000 + i) for worker in range(PROCESSES)}
        for i in range(writes)
    }
    assert table == expected


@pytest.mark.slow
def test_concurrent_reward_appends_are_never_lost(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    run_writers(make_store.location, "rewards", subprocess_env, PROCESSES, WRITES_PER_PROCESS)
    with make_store() as store:
        rows = store.get_agent_rewards(AGENT, limit=10 * PROCESSES * WRITES_PER_PROCESS)
        stats = store.agent_stats(AGENT)
    written = sorted(
        (row["reward_components"]["worker"], row["reward_components"]["i"]) for row in rows
    )
    expected = [(worker, i) for worker in range(PROCESSES) for i in range(WRITES_PER_PROCESS)]
    assert written == expected
    assert len({row["id"] for row in rows}) == PROCESSES * WRITES_PER_PROCESS
    assert all(row["reward"] == float(row["reward_components"]["i"]) for row in rows)
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
    assert stats["rewards"] == PROCESSES * WRITES_PER_PROCESS


@pytest.mark.slow
def test_concurrent_learner_step_appends_are_never_lost(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    run_writers(make_store.location, "steps", subprocess_env, PROCESSES, WRITES_PER_PROCESS)
    with make_store() as store:
        steps = store.get_learner_steps(AGENT)
    written = sorted((step.key, float(step.values[0])) for step in steps)
    expected = sorted(
        (f"w{worker}", float(i)) for worker in range(PROCESSES) for i in range(WRITES_PER_PROCESS)
    )
    assert written == expected
    ids = [step.id for step in steps]
    assert ids == sorted(set(ids))
    for worker in range(PROCESSES):
        mine = [float(step.values[0]) for step in steps if step.key == f"w{worker}"]
        assert mine == sorted(mine)  # each process's steps in the order it appended them
