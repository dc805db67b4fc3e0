"""The store suite on SQLite with every store behind a recording proxy.

Not collected by a plain ``pytest`` run (its name does not start with ``test_``):
``test_suite_covers_the_contract.py`` runs it in a child pytest with
``RLMEMORY_RECORDED_CALLS`` naming a file, into which the names of the public
``MemoryStore`` members the suite used are written as a JSON list when the module's
tests are done. A name is recorded when the suite calls it (a method) or reads it (a
property or attribute) on a store object the suite opened, never by the store calling
itself, so the list cannot claim what the suite does not do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from rlmemory.store.base import MemoryStore

from . import test_conformance

RECORD_ENV = "RLMEMORY_RECORDED_CALLS"
CALLED: set[str] = set()


class RecordingStore:
    """Forwards everything to ``store``; records each public name the caller uses."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if name.startswith("_"):
            return value
        if not callable(value):
            CALLED.add(name)
            return value

        def recorded(*args: Any, **kwargs: Any) -> Any:
            CALLED.add(name)
            return value(*args, **kwargs)

        return recorded

    def __enter__(self) -> RecordingStore:
        self._store.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._store.__exit__(*exc_info)


class TestRecordedSQLite(test_conformance.TestSQLite):
    """rlmemory's SQLite class of the suite, each store it opens behind the proxy."""

    def open_store(self, location: Any, **options: Any) -> MemoryStore:
        return cast(MemoryStore, RecordingStore(super().open_store(location, **options)))


@pytest.fixture(scope="module", autouse=True)
def _write_the_recorded_names() -> Iterator[None]:
    yield
    target = os.environ.get(RECORD_ENV)
    if target:
        Path(target).write_text(json.dumps(sorted(CALLED)), encoding="utf-8")
