"""TextFeaturizer and SparseVector: the same vector in every process, collisions as documented."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from rlmemory.features import SparseVector, TextFeaturizer
from rlmemory.features.hashing import stable_hash

TEXTS = [
    "Fix the failing unit test in the billing service",
    "Quelle est la capitale de l'Australie ? Répondez en une phrase.",
    "ÄÖÜ ß 東京 🚀 tabs\tand\nnewlines",
    "",
]

CHILD = """
import json, sys
from rlmemory.features import TextFeaturizer
featurizer = TextFeaturizer(dimension=2**18, char_ngrams=(3, 4))
texts = json.loads(sys.stdin.read())
vectors = [featurizer.sparse(text) for text in texts]
print(json.dumps([[v.indices.tolist(), v.values.tolist()] for v in vectors]))
"""


@pytest.mark.parametrize("hash_seed", ["1", "4242"])
def test_another_process_with_another_hash_seed_gives_the_same_vectors(
    subprocess_env: dict[str, str], hash_seed: str
) -> None:
    env = {**subprocess_env, "PYTHONHASHSEED": hash_seed}
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    theirs = json.loads(child.stdout)
    featurizer = TextFeaturizer(dimension=2**18, char_ngrams=(3, 4))
    for text, (indices, values) in zip(TEXTS, theirs, strict=True):
        mine = featurizer.sparse(text)
        assert mine.indices.tolist() == indices
        assert mine.values.tolist() == values


def test_the_mapping_is_pinned_so_a_new_version_cannot_change_it_silently() -> None:
    # If this fails, the text -> vector mapping changed: bump TEXT_FEATURIZER_VERSION
    # (it is part of `name`) instead, or stored learners would read other features.
    vector = TextFeaturizer(dimension=2**18).sparse("Route this request")
    assert vector.indices.tolist() == sorted(
        stable_hash(token) % 2**18
        for token in ["w:route", "w:this", "w:request", "b:route this", "b:this request"]
    )
    assert stable_hash("w:route") == 15912619234772148244
    assert TextFeaturizer().name == "text-v1:d=262144:words=1-2:chars=none:lower:l2"


def test_collision_rate_matches_the_documented_figure() -> None:
    """The docstring's figures: 375,355 distinct MMLU features -> 76% share a bucket at 2**18.

    Any n distinct tokens hashed into m buckets: the share of tokens in a shared bucket
    is 1 - exp(-n / m) for a uniform hash; stable_hash must behave like one.
    """
    tokens = [f"w:token{i}" for i in range(375_355)]
    hashes = np.array([stable_hash(token) for token in tokens], dtype=np.uint64)
    for bits, documented in ((18, 0.76), (20, 0.30), (22, 0.086)):
        buckets = hashes % np.uint64(2**bits)
        _, inverse, counts = np.unique(buckets, return_inverse=True, return_counts=True)
        shared = float((counts[inverse] > 1).mean())
        assert shared == pytest.approx(1 - math.exp(-len(tokens) / 2**bits), abs=0.005)
        assert shared == pytest.approx(documented, abs=0.01)


def test_dense_vector_equals_the_sparse_one_and_has_unit_length() -> None:
    featurizer = TextFeaturizer(dimension=4096, char_ngrams=(2, 3))
    for text in TEXTS[:3]:
        dense = featurizer(text)
        sparse = featurizer.sparse(text)
        assert dense.shape == (4096,)
        np.testing.assert_array_equal(dense, np.asarray(sparse))
        assert np.linalg.norm(dense) == pytest.approx(1.0)
    assert featurizer("").sum() == 0.0


def test_counts_without_normalising_and_case_kept_when_asked() -> None:
    featurizer = TextFeaturizer(dimension=2**20, word_ngrams=1, lowercase=False, normalize=False)
    vector = featurizer.sparse("go go Go")
    assert sorted(vector.values.tolist()) == [1.0, 2.0]
    assert featurizer.tokens("go Go") == ["w:go", "w:Go"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dimension": 0}, "dimension"),
        ({"dimension": True}, "dimension"),
        ({"word_ngrams": -1}, "word_ngrams"),
        ({"char_ngrams": (3, 2)}, "char_ngrams"),
        ({"char_ngrams": (0, 2)}, "char_ngrams"),
        ({"word_ngrams": 0}, "no feature"),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        TextFeaturizer(**options)


def test_text_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="text must be a str"):
        TextFeaturizer().sparse(b"bytes")  # type: ignore[arg-type]


def test_sparse_vector_checks_what_it_is_built_from() -> None:
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\)"):
        SparseVector.from_pairs({4: 1.0}, dimension=4)
    with pytest.raises(ValueError, match="finite"):
        SparseVector.from_pairs({1: float("nan")}, dimension=4)
    with pytest.raises(ValueError, match="NaN or infinite"):
        SparseVector.from_dense([0.0, float("inf")])
    with pytest.raises(ValueError, match="1-D"):
        SparseVector.from_dense([[1.0]])
    vector = SparseVector.from_dense([0.0, 3.0, 0.0, 4.0])
    assert vector.indices.tolist() == [1, 3] and vector.norm() == 5.0
