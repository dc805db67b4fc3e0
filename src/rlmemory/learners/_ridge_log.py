"""How the linear bandits persist their ridge statistics: a step log replayed onto snapshots.

Writing an action's statistics costs O(d²) (``A^{-1}`` is d x d); what one update
learned is O(d): the context, the reward and the weight. So an update appends one
step, ``key = action``, ``values = [reward, weight, x_0 … x_{d-1}]``
(:meth:`MemoryStore.append_learner_steps`), and the statistics are written as a
snapshot every ``snapshot_every`` steps and on :meth:`RidgeLog.snapshot` (the
learners' ``close``): ``f"{action}/ridge"`` arrays as before, plus ``"steps_through"``,
the id of the newest step the snapshot includes. Loading reads the snapshot and
replays the steps after it, in id order, through the same
:meth:`RidgeArms.update` the learner ran, so the result is bit for bit the learner
that wrote them. The actions' models are independent, so a step only touches its own
action's statistics; steps of an action this learner does not know are kept aside
and still written into the next snapshot.

Several processes: every write runs in a store transaction after ``lock_learner``,
and first replays the steps other processes appended since this learner's newest
(:meth:`RidgeLog.catch_up`, one indexed read). A snapshot deletes the steps it
covers and appends a marker step holding its ``steps_through``; a learner that meets
a marker covering steps it has not applied reloads everything.

A store written before the log existed has snapshots without ``"steps_through"`` and
no steps: it loads as it always did.

>>> import numpy as np
>>> from rlmemory.learners._ridge import RidgeArms
>>> log = RidgeLog(None, "router", snapshot_every=100)
>>> log.step_values(np.array([1.0, 2.0]), 0.5, 1.0).tolist()
[0.5, 1.0, 1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rlmemory.learners._ridge import STATE_SUFFIX, RidgeArms, state_key

#: Store key (next to ``f"{action}/ridge"``) of the newest step id a snapshot includes.
STEPS_THROUGH_KEY = "steps_through"
#: Store key of a non-zero prior_mean.
PRIOR_MEAN_KEY = "prior_mean"
#: Key of the marker step appended after a snapshot; its one value is ``steps_through``
#: (a learner step has ``d + 2 >= 3`` values, so no action name can be mistaken for it).
SNAPSHOT_MARKER_KEY = "snapshot"


class RidgeLog:
    """Bookkeeping of one learner's log: what is applied, what the snapshot lacks."""

    def __init__(self, db: Any, name: str, snapshot_every: int) -> None:
        self.db = db
        self.name = name
        self.snapshot_every = snapshot_every
        #: Id of the newest step reflected in memory.
        self.applied_through = 0
        #: The stored snapshot's ``steps_through`` when this learner last looked.
        self.snapshot_through = 0
        #: Steps after the snapshot, per action: how many (known actions) ...
        self.pending: dict[str, int] = {}
        #: ... and, for actions this learner does not know, the steps themselves.
        self.foreign: dict[str, list[Any]] = {}
        #: Whether prior_mean has been checked in the store (written with the first step).
        self.prior_mean_stored = False

    @staticmethod
    def step_values(x: np.ndarray, reward: float, weight: float) -> np.ndarray:
        """One step's stored vector: ``[reward, weight, *x]``."""
        return np.concatenate(([reward, weight], x))

    def copy(self) -> RidgeLog:
        """A copy of the bookkeeping (same store) to put back if a write fails."""
        twin = RidgeLog(self.db, self.name, self.snapshot_every)
        twin.applied_through, twin.snapshot_through = self.applied_through, self.snapshot_through
        twin.pending = dict(self.pending)
        twin.foreign = {key: list(steps) for key, steps in self.foreign.items()} or {}
        twin.prior_mean_stored = self.prior_mean_stored
        return twin

    @property
    def steps_since_snapshot(self) -> int:
        return sum(self.pending.values())

    # ----------------------------------------------------------------- loading
    def load(
        self,
        actions: Sequence[str],
        *,
        ridge: float,
        prior_mean: float,
        dimension: int | None,
    ) -> RidgeArms | None:
        """Read snapshot and steps; return the arms (None: nothing stored, no dimension).

        Resets this log's bookkeeping to what was read.
        """
        arrays = self.db.get_arrays(self.name)
        states = {
            key.rpartition("/")[0]: np.asarray(value, dtype=np.float64).reshape(-1)
            for key, value in arrays.items()
            if key.rpartition("/")[0] and key.rpartition("/")[2] == STATE_SUFFIX
        }
        through = _watermark(arrays)
        steps = self.db.get_learner_steps(self.name, after_id=through)
        if states or steps:
            _check_prior_mean(self.name, arrays, prior_mean)
        sizes = [_dimension_of_state(state.size) for state in states.values()]
        sizes += [step.values.size - 2 for step in steps if step.values.size != 1]
        for found in sizes:
            if dimension is None:
                dimension = found
            elif found != dimension:
                raise ValueError(
                    f"learner {self.name!r} has statistics of dimension {found} in the store, "
                    f"but dimension {dimension} was requested"
                )
        self.snapshot_through = self.applied_through = through
        self.pending, self.foreign = {}, {}
        self.prior_mean_stored = bool(states or steps)
        if dimension is None:
            return None
        arms = RidgeArms(dimension, ridge, prior_mean)
        for action in actions:
            arms.add_action(states.get(action))
        self.apply(arms, actions, steps)
        return arms

    def stored_state(self, action: str, arms: RidgeArms) -> np.ndarray | None:
        """The statistics of ``action`` (snapshot plus its steps kept aside), for add_action."""
        stored = self.db.get_arrays(self.name, [state_key(action)]).get(state_key(action))
        steps = self.foreign.pop(action, [])
        if stored is None and not steps:
            return None
        single = RidgeArms(arms.dimension, arms.ridge, arms.prior_mean)
        single.add_action(None if stored is None else np.asarray(stored, dtype=np.float64))
        for step in steps:
            single.update(0, step.values[2:], float(step.values[0]), float(step.values[1]))
        return single.state_of(0)

    def apply(self, arms: RidgeArms, actions: Sequence[str], steps: Sequence[Any]) -> bool:
        """Replay stored steps onto ``arms`` in id order.

        False (and stops) at the marker of a snapshot that covers steps this learner
        has not applied: they may be deleted, so the caller must load everything again.
        """
        index = {action: k for k, action in enumerate(actions)}
        for step in steps:
            if step.values.size == 1:  # a snapshot marker: [steps_through]
                through = int(step.values[0])
                if through > self.applied_through:
                    return False
                self.snapshot_through = through
                self.pending, self.foreign = {}, {}
                self.applied_through = step.id
                continue
            if step.values.size != arms.dimension + 2:
                raise ValueError(
                    f"learner {self.name!r} has a step of dimension {step.values.size - 2} "
                    f"in the store, but dimension {arms.dimension}"
                )
            k = index.get(step.key)
            if k is None:
                self.foreign.setdefault(step.key, []).append(step)
            else:
                arms.update(k, step.values[2:], float(step.values[0]), float(step.values[1]))
            self.pending[step.key] = self.pending.get(step.key, 0) + 1
            self.applied_through = step.id
        return True

    def catch_up(self, arms: RidgeArms, actions: Sequence[str]) -> bool:
        """Replay the steps other processes appended after this learner's newest.

        False when another process wrote a snapshot this learner has not caught up
        with: load everything again.
        """
        return self.apply(arms, actions, self.db.get_learner_steps(self.name, self.applied_through))

    # ----------------------------------------------------------------- writing
    def record(
        self,
        arms: RidgeArms,
        actions: Sequence[str],
        learned: Sequence[tuple[int, np.ndarray, float, float]],
    ) -> None:
        """Append the steps just learned in memory; snapshot when enough have piled up."""
        if not learned:
            return
        if not self.prior_mean_stored:
            if arms.prior_mean != 0.0:
                self.db.save_arrays(self.name, {PRIOR_MEAN_KEY: np.array([arms.prior_mean])})
            self.prior_mean_stored = True
        ids = self.db.append_learner_steps(
            self.name,
            [(actions[k], self.step_values(x, reward, weight)) for k, x, reward, weight in learned],
        )
        for k, *_ in learned:
            self.pending[actions[k]] = self.pending.get(actions[k], 0) + 1
        self.applied_through = ids[-1]
        if self.steps_since_snapshot >= self.snapshot_every:
            self.snapshot(arms, actions)

    def snapshot(self, arms: RidgeArms, actions: Sequence[str]) -> None:
        """Write the statistics changed since the stored snapshot; drop the steps it covers.

        Runs inside the caller's locked transaction, with memory caught up.
        """
        if not self.pending:
            return
        index = {action: k for k, action in enumerate(actions)}
        arrays: dict[str, np.ndarray] = {}
        for key in self.pending:
            if key in index:
                arrays[state_key(key)] = arms.state_of(index[key])
        for key in list(self.foreign):
            arrays[state_key(key)] = self.stored_state(key, arms)  # type: ignore[assignment]
        arrays[STEPS_THROUGH_KEY] = np.array([self.applied_through], dtype=np.int64)
        if arms.prior_mean != 0.0:
            arrays[PRIOR_MEAN_KEY] = np.array([arms.prior_mean])
        self.db.save_arrays(self.name, arrays)
        self.db.delete_learner_steps(self.name, through_id=self.applied_through)
        # The marker tells the other processes, at their next catch-up, that steps they
        # may not have applied are gone into this snapshot.
        (marker,) = self.db.append_learner_steps(
            self.name, [(SNAPSHOT_MARKER_KEY, np.array([float(self.applied_through)]))]
        )
        self.snapshot_through = self.applied_through
        self.applied_through = marker
        self.pending, self.foreign = {}, {}


def _watermark(arrays: Mapping[str, np.ndarray]) -> int:
    stored = arrays.get(STEPS_THROUGH_KEY)
    return 0 if stored is None else int(np.asarray(stored).reshape(-1)[0])


def _check_prior_mean(name: str, arrays: Mapping[str, np.ndarray], prior_mean: float) -> None:
    """``ValueError`` unless the stored statistics were learned with this prior_mean."""
    stored = arrays.get(PRIOR_MEAN_KEY)
    found = 0.0 if stored is None else float(np.asarray(stored).reshape(-1)[0])
    if found != prior_mean:
        raise ValueError(
            f"learner {name!r} has statistics learned with prior_mean {found} in "
            f"the store, but prior_mean {prior_mean} was requested; pass "
            f"prior_mean={found} to use them"
        )


def _dimension_of_state(size: int) -> int:
    """The feature dimension ``d`` whose packed state has ``size = 1 + d + d (d + 1) / 2``.

    >>> _dimension_of_state(1 + 3 + 6)
    3
    """
    import math

    dimension = int((math.isqrt(8 * size + 1) - 3) // 2)
    while 1 + dimension + dimension * (dimension + 1) // 2 < size:
        dimension += 1
    if 1 + dimension + dimension * (dimension + 1) // 2 != size:
        raise ValueError(f"a stored ridge state of length {size} matches no feature dimension")
    return dimension
