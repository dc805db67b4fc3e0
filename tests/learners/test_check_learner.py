"""Every learner shipped with rlmemory passes :func:`rlmemory.testing.check_learner`.

:data:`LEARNER_FACTORIES` is the registry: a new learner is one entry (a name and a
function building it from a :class:`~rlmemory.testing.LearnerSetup`), and it then runs
through every check on sqlite, postgresql and files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rlmemory.learners.bandits import EpsilonGreedyAgent, LinUCBAgent, ThompsonSamplingAgent
from rlmemory.learners.policy_gradient import PolicyGradientAgent
from rlmemory.learners.qlearning import QLearningAgent
from rlmemory.learners.squarecb import SquareCBAgent
from rlmemory.testing import LearnerCheckError, LearnerSetup, check_learner, yield_checks

LEARNER_FACTORIES: dict[str, Callable[[LearnerSetup], Any]] = {
    "q_learning": lambda s: QLearningAgent(s.name, None, s.store, None, None, s.actions, seed=0),
    "policy_gradient": lambda s: PolicyGradientAgent(
        s.name, None, s.store, None, None, s.actions, feature_dimension=s.dimension, seed=0,
        policy_update_every=5,  # restarts mid-batch: pending steps
    ),
    "linucb": lambda s: LinUCBAgent(s.name, s.store, s.actions, seed=0, snapshot_every=7),
    "thompson": lambda s: ThompsonSamplingAgent(s.name, s.store, s.actions, seed=0),
    "epsilon_greedy": lambda s: EpsilonGreedyAgent(s.name, s.store, s.actions, seed=0),
    "squarecb": lambda s: SquareCBAgent(s.name, s.store, s.actions, seed=0),
}  # fmt: skip


@pytest.mark.parametrize("learner", sorted(LEARNER_FACTORIES))
def test_every_learner_passes_every_check_on_every_backend(learner: str, make_store: Any) -> None:
    check_learner(LEARNER_FACTORIES[learner], make_store)


class _ForgetfulLearner:
    """A learner that keeps what it learned in memory only: persistence must catch it."""

    def __init__(self, setup: LearnerSetup) -> None:
        self.inner = QLearningAgent(setup.name, None, setup.store, None, None, setup.actions)
        self.name, self.actions = self.inner.name, self.inner.actions
        self.inner.db = _ReadOnlyView(setup.store)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


class _ReadOnlyView:
    """Passes reads to a store and drops writes of Q-values."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def save_q_values(self, name: str, changed: Any) -> None:
        pass

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._store, attribute)


def test_a_learner_that_does_not_persist_fails_by_name(tmp_path: Any) -> None:
    """The checks can fail: a learner losing its updates on restart is caught (sqlite
    only: the check's own logic is under test, not a backend)."""
    from rlmemory.store import open_store

    checks = {
        check.name: check
        for check in yield_checks(_ForgetfulLearner, lambda: open_store(tmp_path / "m.db"))
    }
    with pytest.raises(LearnerCheckError, match=r"resume_is_exact \(_ForgetfulLearner\)"):
        checks["resume_is_exact"]()
    with pytest.raises(LearnerCheckError, match="learning_persists"):
        checks["learning_persists"]()
    checks["choices_are_well_formed"]()
