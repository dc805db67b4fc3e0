"""The store's feature cache on every backend: vectors by (featuriser, SHA-256 of the text)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_vectors_round_trip_exactly_and_survive_reopening(make_store: Any) -> None:
    vectors = {key("a"): np.array([0.1, -2.5e-300, 1e300]), key("b"): np.array([1.0 / 3.0])}
    with make_store() as store:
        store.save_feature_vectors("emb:v1", vectors)
    with make_store() as store:
        found = store.get_feature_vectors("emb:v1", [key("a"), key("b"), key("missing")])
        assert set(found) == {key("a"), key("b")}
        for name, vector in vectors.items():
            assert found[name].dtype == np.float64
            assert found[name].tolist() == vector.tolist()
        assert store.get_feature_vectors("emb:other", [key("a")]) == {}
        assert store.count_feature_vectors("emb:v1") == 2
        assert store.count_feature_vectors("emb:other") == 0


def test_a_cached_key_keeps_its_first_vector(make_store: Any) -> None:
    with make_store() as store:
        store.save_feature_vectors("emb", {key("a"): np.array([1.0])})
        store.save_feature_vectors("emb", {key("a"): np.array([2.0])})
        assert store.get_feature_vectors("emb", [key("a")])[key("a")].tolist() == [1.0]


def test_pruning_keeps_the_newest_vectors_of_that_featurizer_only(make_store: Any) -> None:
    with make_store() as store:
        for index in range(6):
            store.save_feature_vectors("emb", {key(str(index)): np.array([float(index)])})
        store.save_feature_vectors("kept", {key("x"): np.array([1.0])})
        assert store.prune_feature_vectors("emb", 4) == 2
        assert store.count_feature_vectors("emb") == 4
        left = store.get_feature_vectors("emb", [key(str(i)) for i in range(6)])
        assert len(left) == 4
        assert key("5") in left and key("4") in left
        assert store.prune_feature_vectors("emb", 10) == 0
        assert store.count_feature_vectors("kept") == 1
        assert store.prune_feature_vectors("emb", 0) == 4
        assert store.count_feature_vectors("emb") == 0


@pytest.mark.parametrize(
    ("vectors", "error", "message"),
    [
        ({"not-a-sha": np.array([1.0])}, ValueError, "64 hex digits"),
        ({key("a"): np.array([np.nan])}, ValueError, "NaN or infinity"),
        ({key("a"): np.array([[1.0]])}, ValueError, "1-D"),
        ({key("a"): np.array([])}, ValueError, "1-D"),
        ({key("a"): ["x"]}, TypeError, "numbers"),
        ([1.0], TypeError, "mapping"),
    ],
)
def test_bad_vectors_are_refused_and_nothing_is_written(
    make_store: Any, vectors: Any, error: type[Exception], message: str
) -> None:
    with make_store() as store:
        good = {key("good"): np.array([1.0])}
        with pytest.raises(error, match=message):
            store.save_feature_vectors(
                "emb", {**good, **vectors} if isinstance(vectors, dict) else vectors
            )
        assert store.count_feature_vectors("emb") == 0


def test_bad_names_keys_and_limits_are_refused(make_store: Any) -> None:
    with make_store() as store:
        with pytest.raises(ValueError, match="featurizer must be a non-empty"):
            store.save_feature_vectors("", {key("a"): np.array([1.0])})
        with pytest.raises(TypeError, match="featurizer must be a str"):
            store.get_feature_vectors(None, [key("a")])
        with pytest.raises(TypeError, match="keys must be a sequence"):
            store.get_feature_vectors("emb", key("a"))
        with pytest.raises(ValueError, match="keep must be a non-negative int"):
            store.prune_feature_vectors("emb", -1)


def test_a_rolled_back_transaction_caches_nothing(make_store: Any) -> None:
    with make_store() as store:
        with pytest.raises(RuntimeError, match="boom"), store.transaction():
            store.save_feature_vectors("emb", {key("a"): np.array([1.0])})
            raise RuntimeError("boom")
        assert store.get_feature_vectors("emb", [key("a")]) == {}


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
