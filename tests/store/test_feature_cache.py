"""The feature cache's migration: a version 4 SQLite store gains the cache table.

The cache's contract (vectors by featuriser and SHA-256 of the text, first vector kept,
pruning, bad input, transactions, reopening) is in
:class:`rlmemory.testing.storage.StoreConformance`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_version_4_sqlite_database_gains_the_cache_and_keeps_its_data(tmp_path: Any) -> None:
    """SQLite only: the step is one dialect-independent CREATE TABLE; the PostgreSQL
    upgrade from version 1 (tests/ops/test_schema_v2.py) runs through it too."""
    import sqlite3

    from rlmemory.store.base import SCHEMA_VERSION
    from rlmemory.store.sql import MemoryDatabase

    path = tmp_path / "memory.db"
    with MemoryDatabase(path) as store:
        store.save_agent_reward("router", 0.5, {})
    connection = sqlite3.connect(path)
    connection.execute("DROP TABLE feature_cache")
    connection.execute("UPDATE rlmemory_meta SET value = '4' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()
    with MemoryDatabase(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 5
        assert store.get_agent_rewards("router")[0]["reward"] == 0.5
        store.save_feature_vectors("emb", {key("a"): np.array([1.0])})
        assert store.count_feature_vectors("emb") == 1
