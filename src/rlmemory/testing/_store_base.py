"""The frame of the store suite: capabilities, fixtures and known failures.

Every part of :class:`rlmemory.testing.storage.StoreConformance` derives from
:class:`SuiteBase`, which declares what a backend must provide (:meth:`SuiteBase.open_store`)
and may declare (the capabilities), and the fixtures the tests take: ``store_location``
(overridable), ``make_store`` and ``store``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rlmemory.store.base import MemoryStore


class KnownFailure:
    """What :func:`known_failure` returns: a test of the suite expected to fail, and why."""

    def __init__(self, reason: str, cases: Iterable[str] = ()) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("known_failure needs a reason: what is wrong, and where")
        if isinstance(cases, str):
            raise TypeError("cases must be a list of parameter ids, not one str")
        self.reason = reason
        self.cases = frozenset(cases)

    def covers(self, node: pytest.Item) -> bool:
        """Whether the running test (one parametrisation of it) is the one expected to fail."""
        if not self.cases:
            return True
        callspec = getattr(node, "callspec", None)
        return callspec is not None and callspec.id in self.cases

    def __repr__(self) -> str:
        shown = f", cases={sorted(self.cases)!r}" if self.cases else ""
        return f"known_failure({self.reason!r}{shown})"


def known_failure(reason: str, *, cases: Iterable[str] = ()) -> KnownFailure:
    """Declare, in a subclass, that one test of the suite fails on this backend.

    Assign it to the test's name: ``test_snapshot_lets_writers_go_on_and_does_not_see_them
    = known_failure("snapshot() holds the folder lock")``. With ``cases``, only those
    parametrisations (their pytest ids, such as ``"load_rows-table-not-text"``) are
    expected to fail (or those cases of a test that loops over named cases, such as
    ``test_bad_calls_raise_a_typed_error_and_change_nothing``). The test still runs, as a
    strict ``xfail``: it must fail (the run
    reports ``xfailed`` with the reason), and once the backend is fixed it passes, which
    fails the run until the declaration goes. A name that is no test of the suite is a
    ``TypeError`` when the class is made.
    """
    return KnownFailure(reason, cases)


class StoreFactory:
    """Opens store objects on one test's location; the suite closes them all afterwards.

    ``make_store()`` opens another store object (keyword options go to
    :meth:`SuiteBase.open_store`); ``make_store.location`` is the location.
    """

    def __init__(self, opener: Callable[..., MemoryStore], location: Any, label: str) -> None:
        self.opener = opener
        self.location = location
        self.label = label
        self._opened: list[MemoryStore] = []

    def __call__(self, **options: Any) -> MemoryStore:
        opened = self.opener(self.location, **options)
        self._opened.append(opened)
        return opened

    def close_all(self) -> None:
        """Close every store object this factory opened, newest first."""
        for opened in reversed(self._opened):
            opened.close()
        self._opened.clear()

    def __repr__(self) -> str:
        return f"StoreFactory({self.label!r}, {self.location!r})"


class SuiteBase:
    """What a backend provides to the suite, and the fixtures every test uses.

    Capabilities (class attributes; a test needing one that is ``False`` is skipped):

    ``reopens``
        Opening the location again gives a store object that sees what others wrote:
        the data persists when a store object is closed, and several store objects may
        be open on one location at once (persistence, visibility, lock tests).
    ``supports_processes``
        Several processes may open the location at once (the process tests fork).
    ``opens_with_encryption_key``
        ``open_store(location, encryption_key=key)`` opens the store with that key, as
        rlmemory's backends do (:mod:`rlmemory.store.crypto`).
    ``opens_existing_only``
        ``open_store(location, create=False)`` opens only a location that holds a store:
        elsewhere it is :class:`rlmemory.errors.NotAStoreError` and nothing is created.
    """

    reopens: ClassVar[bool] = True
    supports_processes: ClassVar[bool] = True
    opens_with_encryption_key: ClassVar[bool] = True
    opens_existing_only: ClassVar[bool] = True

    #: Test name -> its :func:`known_failure` declaration, gathered from the subclasses.
    known_failures: ClassVar[dict[str, KnownFailure]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = {
            name: value for name, value in vars(cls).items() if isinstance(value, KnownFailure)
        }
        if not declared:
            return
        known = dict(cls.known_failures)
        for name, declaration in declared.items():
            delattr(cls, name)  # the inherited test runs; only its outcome is expected
            if not name.startswith("test_") or not callable(getattr(cls, name, None)):
                raise TypeError(f"{cls.__name__}.{name}: known_failure names no test of the suite")
            known[name] = declaration
        cls.known_failures = known

    # ----------------------------------------------------------- what a backend gives
    def open_store(self, location: Any, **options: Any) -> MemoryStore:
        """Open a new store object on ``location`` (override this).

        ``location`` is what the ``store_location`` fixture gave for this test; each call
        opens another object on the same store. ``options`` are empty except in the
        encryption tests (``encryption_key=``, see ``opens_with_encryption_key``) and in
        the test of ``create=False`` (see ``opens_existing_only``).
        """
        raise NotImplementedError(f"{type(self).__name__} must define open_store(location)")

    def owned_paths(self, location: Any) -> list[Path]:
        """The paths the store may create: everything else in the test's temporary
        folder must stay as it was (no agent name writes outside the store).

        By default ``location`` itself when it is a path (and files beside it whose names
        start with it, such as SQLite's ``memory.db-wal``); nothing for a URL.
        """
        if isinstance(location, os.PathLike):
            return [Path(location)]
        return []

    # --------------------------------------------------------------------- fixtures
    @pytest.fixture
    def store_location(self, tmp_path: Path) -> Any:
        """Where this test's store lives: ``tmp_path / "store"``, which does not exist yet.

        Override it for stores that are not paths (a database URL made per test).
        """
        return tmp_path / "store"

    @pytest.fixture
    def location_without_store(self, tmp_path: Path) -> Any:
        """A location that holds no store (``tmp_path / "nothing"``, which does not exist).

        Override it as ``store_location`` is overridden: a database backend hands out an
        empty database.
        """
        return tmp_path / "nothing"

    @pytest.fixture
    def make_store(self, store_location: Any) -> Iterator[StoreFactory]:
        """A factory of store objects on this test's one location; closed after the test."""
        factory = StoreFactory(self.open_store, store_location, type(self).__name__)
        yield factory
        factory.close_all()

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> MemoryStore:
        """One open store object on this test's fresh, empty location."""
        return make_store()

    @pytest.fixture(autouse=True)
    def _expect_known_failures(self, request: pytest.FixtureRequest) -> None:
        declared = self.known_failures.get(getattr(request.node, "originalname", ""))
        if declared is not None and declared.covers(request.node):
            request.applymarker(pytest.mark.xfail(reason=declared.reason, strict=True))

    # ---------------------------------------------------------------------- helpers
    def run_cases(self, test: str, cases: dict[str, Callable[[], None]]) -> None:
        """Run each case of one looping test; fail naming every case that failed.

        A case named in this test's :func:`known_failure` ``cases`` must fail: then the
        test ends as ``xfail`` (if no other case failed), and if it passes the test fails.
        """
        declared = self.known_failures.get(test)
        expected = declared.cases if declared is not None else frozenset()
        failed: list[str] = []
        known: list[str] = []
        for name, case in cases.items():
            try:
                case()
            except Exception as error:  # every failure of a case is reported by name
                (known if name in expected else failed).append(
                    f"{name}: {type(error).__name__}: {error}"
                )
            else:
                if name in expected:
                    failed.append(f"{name}: passes now; remove it from known_failure")
        if failed:
            pytest.fail(f"{len(failed)} of {len(cases)} cases failed:\n" + "\n".join(failed))
        if known:
            assert declared is not None
            pytest.xfail(f"{declared.reason} ({'; '.join(known)})")

    def require(self, capability: str) -> None:
        """Skip the running test unless the backend declares ``capability``."""
        if not getattr(self, capability):
            pytest.skip(f"{type(self).__name__} does not declare {capability}")
