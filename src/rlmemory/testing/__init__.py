"""Test suites that ship with rlmemory, for learners (and backends) written outside it.

* :mod:`rlmemory.testing.learners` -- :func:`check_learner` and :func:`yield_checks`:
  every routing learner goes through the same behaviour checks (probabilities,
  exact resume, persistence, bad input), on any store.

* :mod:`rlmemory.testing.storage` -- :class:`StoreConformance`: the whole
  :class:`~rlmemory.store.base.MemoryStore` contract as pytest tests; a backend subclasses
  it and is done when it passes. It is not imported here: it needs pytest and hypothesis.

Nothing imported here imports pytest: the checks raise :class:`LearnerCheckError` (an
``AssertionError``), which every test runner reports as a failure.
"""

import sys

from rlmemory.testing.learners import (
    LearnerCheck,
    LearnerCheckError,
    LearnerSetup,
    check_learner,
    yield_checks,
)

__all__ = ["LearnerCheck", "LearnerCheckError", "LearnerSetup", "check_learner", "yield_checks"]

if "pytest" in sys.modules:  # pragma: no branch - under pytest, before any suite module loads
    # Let pytest rewrite the store suite's asserts (detailed failure messages), whichever
    # of its modules is imported first (doctest collection imports them one by one).
    from rlmemory.testing import _store_rewrite  # noqa: F401
