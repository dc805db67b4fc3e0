"""The learner-step log of every backend: append, read after a watermark, delete, reopen.

Runs on sqlite, postgresql and files through the ``store``/``make_store`` fixtures; the
several-process guarantee is in ``test_concurrency.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rlmemory.store.base import MemoryStore

AGENT = "router"
OTHER = "analyst"


def _step(key: str, *values: float) -> tuple[str, np.ndarray]:
    return key, np.array(values, dtype=np.float64)


def test_steps_round_trip_bit_for_bit_in_append_order(store: MemoryStore) -> None:
    awkward = [0.1, -0.0, 5e-324, 1.7976931348623157e308, 1 / 3, -2.5]
    ids = store.append_learner_steps(AGENT, [_step("a", *awkward), _step("b", 1.0)])
    steps = store.get_learner_steps(AGENT)
    assert [step.id for step in steps] == ids and ids[0] < ids[1]
    assert [step.key for step in steps] == ["a", "b"]
    assert steps[0].values.dtype == np.float64
    assert steps[0].values.tobytes() == np.array(awkward).tobytes()
    assert steps[1].values.tolist() == [1.0]


def test_get_steps_after_an_id_returns_only_newer_steps(store: MemoryStore) -> None:
    first = store.append_learner_steps(AGENT, [_step("a", 1.0), _step("a", 2.0)])
    later = store.append_learner_steps(AGENT, [_step("b", 3.0)])
    assert [s.values[0] for s in store.get_learner_steps(AGENT, after_id=first[0])] == [2.0, 3.0]
    assert [s.id for s in store.get_learner_steps(AGENT, after_id=first[1])] == later
    assert store.get_learner_steps(AGENT, after_id=later[0]) == []


def test_steps_are_kept_per_agent(store: MemoryStore) -> None:
    store.append_learner_steps(AGENT, [_step("a", 1.0)])
    store.append_learner_steps(OTHER, [_step("a", 2.0)])
    assert [s.values[0] for s in store.get_learner_steps(AGENT)] == [1.0]
    assert [s.values[0] for s in store.get_learner_steps(OTHER)] == [2.0]
    assert store.get_learner_steps("nobody") == []


def test_delete_steps_through_an_id_counts_and_keeps_the_newer(store: MemoryStore) -> None:
    ids = store.append_learner_steps(AGENT, [_step("a", float(i)) for i in range(5)])
    store.append_learner_steps(OTHER, [_step("a", 9.0)])
    assert store.delete_learner_steps(AGENT, through_id=ids[2]) == 3
    assert [s.id for s in store.get_learner_steps(AGENT)] == ids[3:]
    assert store.delete_learner_steps(AGENT) == 2
    assert store.get_learner_steps(AGENT) == []
    assert len(store.get_learner_steps(OTHER)) == 1


def test_ids_are_never_reused_after_deleting_every_step(make_store: Any) -> None:
    with make_store() as store:
        ids = store.append_learner_steps(AGENT, [_step("a", 1.0), _step("a", 2.0)])
        store.delete_learner_steps(AGENT)
    with make_store() as store:
        (new_id,) = store.append_learner_steps(AGENT, [_step("a", 3.0)])
        assert new_id > ids[-1]
        assert [s.values[0] for s in store.get_learner_steps(AGENT, after_id=ids[-1])] == [3.0]


def test_steps_survive_reopening(make_store: Any) -> None:
    with make_store() as store:
        store.append_learner_steps(AGENT, [_step("search", 0.5, 1.0, 2.0)])
    with make_store() as store:
        (step,) = store.get_learner_steps(AGENT)
    assert (step.key, step.values.tolist()) == ("search", [0.5, 1.0, 2.0])


def test_steps_appended_in_a_failed_transaction_are_not_stored(store: MemoryStore) -> None:
    kept = store.append_learner_steps(AGENT, [_step("a", 1.0)])
    with pytest.raises(RuntimeError), store.transaction():
        store.append_learner_steps(AGENT, [_step("a", 2.0)])
        store.delete_learner_steps(AGENT)
        raise RuntimeError("the update failed")
    assert [s.id for s in store.get_learner_steps(AGENT)] == kept


@pytest.mark.parametrize(
    ("steps", "error", "words"),
    [
        ([("a", np.array([np.nan]))], ValueError, "NaN"),
        ([("a", np.array([[1.0]]))], ValueError, "1-D"),
        ([("", np.array([1.0]))], ValueError, "non-empty"),
        ([("a", [1.0])], TypeError, "numpy array"),
        ([(1, np.array([1.0]))], TypeError, "key"),
        ("a", TypeError, "sequence"),
        ([("a",)], TypeError, "pair"),
    ],
)
def test_bad_steps_are_refused_and_nothing_is_stored(
    store: MemoryStore, steps: Any, error: type[Exception], words: str
) -> None:
    good = ("a", np.array([1.0]))
    with pytest.raises(error, match=words):
        store.append_learner_steps(AGENT, [good, *steps] if isinstance(steps, list) else steps)
    assert store.get_learner_steps(AGENT) == []


@pytest.mark.parametrize("bound", [-1, 1.5, True])
def test_bad_step_bounds_are_refused(store: MemoryStore, bound: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        store.get_learner_steps(AGENT, after_id=bound)
    with pytest.raises((TypeError, ValueError)):
        store.delete_learner_steps(AGENT, through_id=bound)
