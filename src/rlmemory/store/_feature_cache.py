"""Checks shared by both stores' feature cache: names, text keys and vectors.

The feature cache keeps the vectors an expensive featuriser (an embedding model)
computed, keyed by (featuriser name, SHA-256 of the text), so that a restart or another
worker does not pay for them again (:class:`rlmemory.features.embeddings.EmbeddingFeaturizer`).

>>> check_text_key("ab" * 32) == "ab" * 32
True
>>> check_text_key("not hex")
Traceback (most recent call last):
ValueError: a feature cache key must be the 64 hex digits of a SHA-256, got 'not hex'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlmemory.store._validation import check_mapping

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
#: Longest featuriser name a store accepts (names are identifiers, not payloads).
MAX_FEATURIZER_NAME = 200


def check_featurizer_name(name: object) -> str:
    """``name`` if it is a non-empty string of at most :data:`MAX_FEATURIZER_NAME` characters."""
    if not isinstance(name, str):
        raise TypeError(f"featurizer must be a str, not {type(name).__name__}")
    if not name or len(name) > MAX_FEATURIZER_NAME:
        raise ValueError(
            f"featurizer must be a non-empty name of at most {MAX_FEATURIZER_NAME} characters"
        )
    return name


def check_text_key(key: object) -> str:
    """``key`` if it is a lower-case hex SHA-256 digest."""
    if not isinstance(key, str) or not _SHA256_HEX.fullmatch(key):
        raise ValueError(f"a feature cache key must be the 64 hex digits of a SHA-256, got {key!r}")
    return key


def check_text_keys(keys: object) -> list[str]:
    """Sorted unique keys of a sequence of SHA-256 hex digests."""
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence | set | frozenset):
        raise TypeError(f"keys must be a sequence of str, not {type(keys).__name__}")
    return sorted({check_text_key(key) for key in keys})


def check_vectors(vectors: object) -> list[tuple[str, np.ndarray]]:
    """(key, float64 1-D finite vector) pairs of a mapping, sorted by key; all checked first."""
    mapping = check_mapping(vectors, "vectors", " of SHA-256 key to vector")
    checked = []
    for key, vector in mapping.items():
        key = check_text_key(key)
        try:
            array = np.asarray(vector, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"vectors[{key!r}] must be a vector of numbers") from None
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"vectors[{key!r}] must be a non-empty 1-D vector")
        if not np.isfinite(array).all():
            raise ValueError(f"vectors[{key!r}] contains NaN or infinity, which cannot be stored")
        checked.append((key, np.ascontiguousarray(array)))
    return sorted(checked, key=lambda pair: pair[0])


def check_keep(keep: object) -> int:
    """``keep`` if it is a non-negative int."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ValueError(f"keep must be a non-negative int, got {keep!r}")
    return keep


def decode_vector(data: Any) -> np.ndarray:
    """A stored vector's bytes (little-endian float64) as an array."""
    return np.frombuffer(bytes(data), dtype="<f8").astype(np.float64)
