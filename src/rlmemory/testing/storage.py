"""StoreConformance: the one suite every :class:`~rlmemory.store.base.MemoryStore` passes.

rlmemory's own backends (SQLite, PostgreSQL, JSON files) run it in
``tests/store/test_conformance.py``; a third backend runs the same suite, and is done
when it passes. Importing this module needs pytest and hypothesis (rlmemory's ``test``
extra); ``import rlmemory`` and ``import rlmemory.testing`` never do.

Subclass :class:`StoreConformance` in a test module (its name starting with ``Test``),
say how to open your store, and run pytest:

>>> from rlmemory.store import open_store
>>> from rlmemory.testing.storage import StoreConformance, known_failure
>>> class TestMyStore(StoreConformance):
...     supports_processes = True  # the capabilities, see below
...
...     def open_store(self, location, **options):
...         return open_store(location, **options)  # your MemoryStore here
...
...     test_snapshot_lets_writers_go_on_and_does_not_see_them = known_failure(
...         "snapshot() blocks writers: issue 12"
...     )
>>> TestMyStore.known_failures  # doctest: +NORMALIZE_WHITESPACE
{'test_snapshot_lets_writers_go_on_and_does_not_see_them':
 known_failure('snapshot() blocks writers: issue 12')}
>>> len([name for name in dir(TestMyStore) if name.startswith("test_")]) > 100
True

What a subclass gives:

``open_store(self, location, **options)``
    Required: a new store object on ``location`` each time it is called. The suite
    opens several on one location (reopening, other store objects, forked processes)
    and closes every one it opened.
``store_location`` fixture
    Optional: where each test's store lives, fresh per test. By default
    ``tmp_path / "store"`` (a path that does not exist yet); a database backend returns
    a URL to a database of its own instead, e.g.
    ``@pytest.fixture def store_location(self, my_database_url): return my_database_url``.
``owned_paths(self, location)``
    Optional: the paths the store may create (default: ``location`` when it is a path).
    The suite checks that agent names never make the store write anywhere else.
Capabilities (class attributes, all ``True`` by default; tests that need one a backend
does not declare are skipped):
    ``reopens`` — another store object on the same location sees the same data (while
    both are open, and after closing); ``supports_processes`` — several processes may
    use the location at once (the suite forks two); ``opens_with_encryption_key`` —
    ``open_store(location, encryption_key=key)`` opens an encrypted store.
``test_name = known_failure("why")``
    A test of the suite that fails on this backend for a known reason: it runs as a
    strict ``xfail``, so the run stays green while it fails and turns red once it
    passes (then delete the line). ``known_failure("why", cases=["id"])`` expects only
    those cases to fail: pytest parametrisation ids, or the named cases of a test that
    loops over cases (the bad calls are named ``"<method>-<fault>"``).

What the suite checks: every public method and property of ``MemoryStore`` (a test in
rlmemory's own suite fails if one is never called) against the contract in its
docstrings: return values and types, newest-first histories with ties broken by id,
per-agent isolation, exact round trips of tricky texts, keys, floats, arrays and JSON
(hypothesis draws more), ``TypeError``/``ValueError``/``LookupError`` on bad input
with everything stored left as it was (inside a transaction too), transactions (all or
nothing, nesting, threads waiting), several threads, store objects and processes
(``lock_learner`` makes read-modify-writes of two writers all count), persistence on
reopening, versions, corrections, pruning, settings, the feature cache, learner steps,
snapshot + ``load_rows`` round trips (also into rlmemory's SQLite store),
``clear_data`` and ``reencrypt``.
"""

from __future__ import annotations

from rlmemory.testing import _store_rewrite  # noqa: F401 - first: rewrites asserts
from rlmemory.testing._store_backup import BackupTests, EncryptionTests
from rlmemory.testing._store_bad_input import BAD_CALLS, BadCall, BadInputTests
from rlmemory.testing._store_base import KnownFailure, StoreFactory, SuiteBase, known_failure
from rlmemory.testing._store_history import (
    DecisionTests,
    FeedbackTests,
    InteractionTests,
    RewardTests,
    TextTests,
)
from rlmemory.testing._store_learned import (
    ArrayTests,
    FeatureCacheTests,
    LearnerStepTests,
    PolicyParamsTests,
    QTableTests,
)
from rlmemory.testing._store_operations import (
    BadAgentArgumentTests,
    CorrectionTests,
    InspectionTests,
    PruneHistoryTests,
    SettingsTests,
    VersionTests,
)
from rlmemory.testing._store_transactions import LifecycleTests, SharingTests, TransactionTests
from rlmemory.testing._store_values import observe, populate


class StoreConformance(
    QTableTests,
    PolicyParamsTests,
    ArrayTests,
    LearnerStepTests,
    FeatureCacheTests,
    RewardTests,
    InteractionTests,
    FeedbackTests,
    DecisionTests,
    TextTests,
    VersionTests,
    CorrectionTests,
    PruneHistoryTests,
    SettingsTests,
    InspectionTests,
    BadAgentArgumentTests,
    BadInputTests,
    TransactionTests,
    SharingTests,
    LifecycleTests,
    BackupTests,
    EncryptionTests,
):
    """The whole store contract as pytest tests; subclass it as the module docstring shows."""


__all__ = [
    "BAD_CALLS",
    "BadCall",
    "KnownFailure",
    "StoreConformance",
    "StoreFactory",
    "SuiteBase",
    "known_failure",
    "observe",
    "populate",
]
