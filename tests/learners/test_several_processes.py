"""Several processes learning into one store lose no update, on every backend.

Four child interpreters (``learning_worker.py``) each build a learner on the test's
store (loading what is stored then), wait until all are ready, and update the SAME
state/action at the same time. The updates are chosen so that the final stored value
has a closed form that holds only if every update built on the previous one:

* Q-learning, terminal updates with reward ``r`` and learning rate ``a`` from ``v0``:
  after ``n`` updates, in any order, ``v = r + (v0 - r) (1 - a)^n``. A lost update
  leaves ``n - 1`` or fewer.
* LinUCB on features ``[1, 0]``: ``count = n``, ``b[0] = sum of rewards`` and
  ``A^{-1}[0, 0] = 1 / (ridge + n)``; with the step log only, and with snapshots every
  few updates (which delete steps while other processes append).
  ``A^{-1}[0, 0] = 1 / (ridge + n)``.
* SquareCB on features ``[1, 0]`` with one reward: the stored weights equal those of one
  learner making all ``n`` updates in a row, and the round count is ``n``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import learning_worker as worker_module
import pytest

from released_workers import run_released_together
from rlmemory.learners.bandits import LinUCBAgent
from rlmemory.learners.qlearning import QLearningAgent
from rlmemory.learners.squarecb import SquareCBAgent

WORKER_SCRIPT = Path(worker_module.__file__)
PROCESSES = 4
UPDATES_PER_PROCESS = 60
UPDATES = str(UPDATES_PER_PROCESS)


def run_learners(location: str, mode: str, env: dict[str, str]) -> None:
    """Start the workers, release them together, fail with their stderr if any fails."""
    run_released_together(
        [[str(WORKER_SCRIPT), location, mode, str(worker), UPDATES] for worker in range(PROCESSES)],
        env,
        location,
    )


def q_value_after(updates: int) -> float:
    """The value after ``updates`` terminal updates, step by step as the learner does it."""
    value = worker_module.Q_INITIAL_VALUE
    for _ in range(updates):
        value += worker_module.Q_LEARNING_RATE * (worker_module.Q_REWARD - value)
    return value


def test_q_updates_of_one_state_action_by_four_processes_are_all_kept(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    run_learners(make_store.location, "q", subprocess_env)
    total = PROCESSES * UPDATES_PER_PROCESS
    with make_store() as store:
        stored = store.get_q_table(worker_module.AGENT)["s"]["a"]
    reward, rate = worker_module.Q_REWARD, worker_module.Q_LEARNING_RATE
    closed_form = reward + (worker_module.Q_INITIAL_VALUE - reward) * (1 - rate) ** total
    assert stored == pytest.approx(closed_form, abs=1e-12)
    assert stored == pytest.approx(q_value_after(total), abs=1e-12)
    # One lost update would be visible: the gap is (1 - rate)^(n-1) * rate ~ 1e-3.
    assert abs(q_value_after(total - 1) - closed_form) > 1e-6


@pytest.mark.parametrize("mode", ["linucb", "linucb-snapshots"])
def test_linucb_updates_of_one_action_by_four_processes_are_all_kept(
    make_store: Any, subprocess_env: dict[str, str], mode: str
) -> None:
    make_store().close()
    run_learners(make_store.location, mode, subprocess_env)
    total = PROCESSES * UPDATES_PER_PROCESS
    with make_store() as store:
        statistics = LinUCBAgent(worker_module.AGENT, store, worker_module.ACTIONS).statistics()
    learned = statistics["a"]
    assert int(learned["count"]) == total
    rewards = sum(UPDATES_PER_PROCESS * (worker + 1.0) for worker in range(PROCESSES))
    assert learned["b"].tolist() == pytest.approx([rewards, 0.0], abs=1e-9)
    assert learned["A_inv"][0, 0] == pytest.approx(1.0 / (1.0 + total), rel=1e-9)
    assert int(statistics["b"]["count"]) == 0


def test_an_update_builds_on_the_value_another_process_stored_meanwhile(make_store: Any) -> None:
    first_process = QLearningAgent(
        "router", None, make_store(), None, None, ["a", "b"], replace_initial_value=False
    )
    second_process = QLearningAgent(
        "router", None, make_store(), None, None, ["a", "b"], replace_initial_value=False
    )
    first_process.update_q_value("s", "a", 0.0)  # 1.0 -> 0.9
    second_process.update_q_value("s", "a", 0.0)  # from the stored 0.9, not its stale 1.0
    assert make_store().get_q_table("router") == {"s": {"a": pytest.approx(0.81)}}
    assert second_process.q_table["s"]["a"] == pytest.approx(0.81)


def test_the_target_uses_next_state_values_another_process_stored(make_store: Any) -> None:
    learner = QLearningAgent("router", None, make_store(), None, None, ["a"], discount_factor=0.5)
    make_store().save_q_values("router", {"next": {"a": 0.2}})
    learner.update_q_value("s", "a", 0.0, next_state="next")
    assert learner.get_q_values("s") == {"a": pytest.approx(0.1)}


def test_refresh_every_shows_other_processes_learning_in_choices(make_store: Any) -> None:
    store = make_store()
    stale = QLearningAgent("router", None, store, None, None, ["a", "b"], exploration_rate=0.0)
    fresh = QLearningAgent(
        "router", None, store, None, None, ["a", "b"], exploration_rate=0.0, refresh_every=1
    )
    make_store().save_q_values("router", {"s": {"a": 0.0, "b": 0.5}})
    assert stale.select_action("s") in {"a", "b"}  # ties of two untried actions
    assert stale.get_q_values("s") == {"a": 1.0, "b": 1.0}
    assert fresh.select_action("s") == "b"
    assert fresh.get_q_values("s") == {"a": 0.0, "b": 0.5}


def test_refresh_every_must_be_a_non_negative_int(store: Any) -> None:
    with pytest.raises(ValueError, match="refresh_every"):
        QLearningAgent("router", None, store, None, None, ["a"], refresh_every=-1)


def test_a_bandit_update_builds_on_statistics_another_process_stored(make_store: Any) -> None:
    first_process = LinUCBAgent("router", make_store(), ["a", "b"], dimension=2)
    second_process = LinUCBAgent("router", make_store(), ["a", "b"], dimension=2)
    first_process.update([1.0, 0.0], "a", 2.0)
    second_process.update([1.0, 0.0], "a", 3.0)
    learned = LinUCBAgent("router", make_store(), ["a", "b"]).statistics()["a"]
    assert int(learned["count"]) == 2
    assert learned["b"].tolist() == [5.0, 0.0]
    assert second_process.statistics()["a"]["b"].tolist() == [5.0, 0.0]


def test_store_q_values_of_one_state(store: Any) -> None:
    store.save_q_values("router", {"s": {"a": 0.5, "b": 0.25}, "t": {"a": 1.0}})
    assert store.get_q_values("router", "s") == {"a": 0.5, "b": 0.25}
    assert store.get_q_values("router", "unknown") == {}
    assert store.get_q_values("nobody", "s") == {}
    with pytest.raises(TypeError, match="state"):
        store.get_q_values("router", 3)
    with pytest.raises(ValueError):
        store.get_q_values("", "s")


def test_store_q_values_of_one_state_follow_other_store_objects_writes(make_store: Any) -> None:
    reader, writer = make_store(), make_store()
    writer.save_q_values("router", {"s": {"a": 0.5}})
    assert reader.get_q_values("router", "s") == {"a": 0.5}
    writer.save_q_values("router", {"s": {"b": 0.25}})
    assert reader.get_q_values("router", "s") == {"a": 0.5, "b": 0.25}
    writer.save_q_table("router", {"t": {"a": 1.0}})
    assert reader.get_q_values("router", "s") == {}
    assert reader.get_q_values("router", "t") == {"a": 1.0}
    writer.delete_q_states("router", ["t"])
    assert reader.get_q_values("router", "t") == {}


def test_store_q_values_of_one_state_after_a_rolled_back_transaction(store: Any) -> None:
    store.save_q_values("router", {"s": {"a": 0.5}})
    with pytest.raises(RuntimeError), store.transaction():
        store.save_q_values("router", {"s": {"a": 0.9}, "t": {"a": 0.9}})
        assert store.get_q_values("router", "s") == {"a": 0.9}
        raise RuntimeError("the step failed")
    assert store.get_q_values("router", "s") == {"a": 0.5}
    # The log grows back past where the rolled-back lines ended: still read right.
    store.save_q_values("router", {"s": {"b": 0.1}, "u": {"a": 0.123456789}})
    assert store.get_q_values("router", "s") == {"a": 0.5, "b": 0.1}
    assert store.get_q_values("router", "t") == {}


def test_q_values_stay_right_when_the_file_store_compacts_its_log(make_store: Any) -> None:
    store = make_store()
    states = [f"state-{k:03d}-with-a-longish-name" for k in range(100)]
    # 200 changes of ~5 KB: the file store folds its log into the table several times.
    for i in range(200):
        store.save_q_values("router", {state: {"a": float(i), "b": -float(i)} for state in states})
        if i % 9 == 0:
            assert store.get_q_values("router", states[i % 100]) == {"a": float(i), "b": -float(i)}
    expected = {state: {"a": 199.0, "b": -199.0} for state in states}
    assert make_store().get_q_table("router") == expected
    assert {state: store.get_q_values("router", state) for state in states} == expected


def test_squarecb_updates_of_one_action_by_four_processes_are_all_kept(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    run_learners(make_store.location, "squarecb", subprocess_env)
    total = PROCESSES * UPDATES_PER_PROCESS
    rate = worker_module.SQUARECB_LEARNING_RATE
    sequential = SquareCBAgent(
        "alone", None, worker_module.ACTIONS, dimension=2, learning_rate=rate
    )
    for _ in range(total):
        sequential.update([1.0, 0.0], "a", worker_module.SQUARECB_REWARD)
    with make_store() as store:
        shared = SquareCBAgent(
            worker_module.AGENT, store, worker_module.ACTIONS, learning_rate=rate
        )
    assert shared.rounds == total
    assert shared.predictions([1.0, 0.0]) == sequential.predictions([1.0, 0.0])
    one_short = SquareCBAgent("short", None, worker_module.ACTIONS, dimension=2, learning_rate=rate)
    for _ in range(total - 1):
        one_short.update([1.0, 0.0], "a", worker_module.SQUARECB_REWARD)
    assert one_short.predictions([1.0, 0.0]) != sequential.predictions([1.0, 0.0])
