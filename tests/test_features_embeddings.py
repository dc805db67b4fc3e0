"""EmbeddingFeaturizer: any embedding model, its vectors cached in the store across restarts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from rlmemory.features import EmbeddingFeaturizer
from rlmemory.features.embeddings import text_key

TEXTS = ["route me to search", "fix my python", "naïve café ☕", ""]


class CountingModel:
    """A deterministic 'model' that counts how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return [float(len(text)), float(text.count(" ")), 1.0]


CHILD = """
import sys
from rlmemory.features import EmbeddingFeaturizer
from rlmemory.store import open_store
texts = sys.argv[2:]
with open_store(sys.argv[1]) as db:
    featurizer = EmbeddingFeaturizer(
        lambda text: [float(len(text)), float(text.count(" ")), 1.0], name="counting", db=db
    )
    for text in texts:
        featurizer(text)
    print(featurizer.misses, featurizer.hits)
"""


def test_vectors_computed_by_another_process_are_cache_hits_after_a_restart(
    make_store: Any, subprocess_env: dict[str, str]
) -> None:
    make_store().close()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, make_store.location, *TEXTS],
        capture_output=True,
        text=True,
        env=subprocess_env,
        check=True,
        timeout=120,
    )
    assert child.stdout.split() == [str(len(TEXTS)), "0"]
    model = CountingModel()
    with make_store() as db:
        featurizer = EmbeddingFeaturizer(model.embed_query, name="counting", db=db)
        vectors = [featurizer(text) for text in TEXTS]
    assert model.calls == 0
    assert (featurizer.hits, featurizer.misses) == (len(TEXTS), 0)
    assert [v.tolist() for v in vectors] == [
        [float(len(t)), float(t.count(" ")), 1.0] for t in TEXTS
    ]
    assert featurizer.dimension == 3


def test_a_langchain_embeddings_object_works_sync_and_async(make_store: Any) -> None:
    embeddings = DeterministicFakeEmbedding(size=8)
    with make_store() as db:
        featurizer = EmbeddingFeaturizer(embeddings, db=db)
        assert featurizer.name.startswith("embeddings:langchain_core.")
        direct = featurizer("hello")
        assert direct.tolist() == pytest.approx(embeddings.embed_query("hello"))
        again = asyncio.run(featurizer.acall("hello"))
        other = asyncio.run(featurizer.acall("world"))
        assert again.tolist() == direct.tolist()
        assert other.tolist() == pytest.approx(embeddings.embed_query("world"))
        assert (featurizer.hits, featurizer.misses) == (1, 2)
        assert db.count_feature_vectors(featurizer.name) == 2


def test_the_store_cache_stays_bounded(make_store: Any) -> None:
    model = CountingModel()
    with make_store() as db:
        featurizer = EmbeddingFeaturizer(model, name="counting", db=db, max_cached=3, prune_every=2)
        for index in range(9):
            featurizer(f"text {index}")
            assert db.count_feature_vectors("counting") <= 4
        featurizer.prune()
        assert db.count_feature_vectors("counting") == 3
        cached = db.get_feature_vectors("counting", [text_key(f"text {i}") for i in range(9)])
        assert set(cached) == {text_key(f"text {i}") for i in (6, 7, 8)}


def test_memory_alone_caches_without_a_store() -> None:
    model = CountingModel()
    featurizer = EmbeddingFeaturizer(model, name="counting", memory_cache=2)
    for text in ["a", "b", "a", "c", "a", "b"]:
        featurizer(text)
    assert model.calls == 4  # "b" was pushed out by "c", then "a" was used again


def test_bad_model_output_is_refused_and_not_cached(make_store: Any) -> None:
    with make_store() as db:
        nan = EmbeddingFeaturizer(lambda text: [np.nan], name="nan", db=db)
        with pytest.raises(ValueError, match="NaN or infinite"):
            nan("x")
        assert db.count_feature_vectors("nan") == 0
        changing = EmbeddingFeaturizer(lambda text: [1.0] * len(text), name="len", db=db)
        changing("ab")
        with pytest.raises(ValueError, match="length 3, but featuriser 'len' has dimension 2"):
            changing("abc")
        with pytest.raises(TypeError, match="not numbers"):
            EmbeddingFeaturizer(lambda text: ["x"], name="words")("a")


def test_bad_arguments_are_typed_errors_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="needs name="):
        EmbeddingFeaturizer(lambda text: [1.0])
    with pytest.raises(TypeError, match="embed_query"):
        EmbeddingFeaturizer(42)
    with pytest.raises(ValueError, match="max_cached"):
        EmbeddingFeaturizer(CountingModel(), max_cached=-1)
    with pytest.raises(TypeError, match="text must be a str"):
        EmbeddingFeaturizer(CountingModel())(b"bytes")  # type: ignore[arg-type]
