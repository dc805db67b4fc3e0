"""Value types that features and learners share: Observation, Choice and SparseVector.

They live below both packages so that ``rlmemory.features`` (which produces
observations) and ``rlmemory.learners`` (which consume them and return choices) import
this module and never each other. ``rlmemory.learners.base`` re-exports both names.

>>> import numpy as np
>>> observation = Observation(state="search:short:text", features=np.ones(2))
>>> observation
Observation(state='search:short:text')
>>> Choice(action="search_agent", propensity=0.9, scores={"search_agent": 0.8})
Choice(action='search_agent', propensity=0.9, scores={'search_agent': 0.8})

A :class:`SparseVector` keeps a long hashed vector as its non-zero entries:

>>> vector = SparseVector.from_pairs({3: 1.0, 1: 2.0}, dimension=5)
>>> vector.indices.tolist(), vector.values.tolist()
([1, 3], [2.0, 1.0])
>>> import numpy as np
>>> np.asarray(vector).tolist()
[0.0, 2.0, 0.0, 1.0, 0.0]
>>> vector.dot(np.arange(5.0))
5.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Observation:
    """What a learner sees of one request.

    ``state`` is a bounded discrete key (for tabular learners); ``features`` a
    fixed-length float vector (for linear learners). Extractors fill both.
    """

    state: str
    features: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Choice:
    """A learner's decision: the action, the probability it had, and the scores seen.

    ``propensity`` is the probability with which ``action`` was chosen under the
    learner's exploration, in (0, 1]; off-policy evaluation relies on it.
    ``scores`` are the per-action values (Q-values, probabilities or UCB scores)
    stored with the decision.
    """

    action: str
    propensity: float
    scores: dict[str, float]


__all__ = ["Choice", "Observation"]


@dataclass(frozen=True)
class SparseVector:
    """A vector of length ``dimension`` whose only non-zero entries are ``values`` at ``indices``.

    ``indices`` are strictly increasing int64 in ``[0, dimension)``; ``values`` are finite
    float64 of the same length. Build one with :meth:`from_pairs` or :meth:`from_dense`,
    which check and sort; the constructor trusts its arguments.
    """

    indices: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)
    dimension: int

    @classmethod
    def from_pairs(cls, pairs: Mapping[int, float], dimension: int) -> SparseVector:
        """The vector with ``pairs[i]`` at index ``i``; zero values are dropped."""
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        kept = sorted((int(i), float(v)) for i, v in pairs.items() if v != 0.0)
        indices = np.fromiter((i for i, _ in kept), dtype=np.int64, count=len(kept))
        values = np.fromiter((v for _, v in kept), dtype=np.float64, count=len(kept))
        if indices.size and (indices[0] < 0 or indices[-1] >= dimension):
            raise ValueError(f"indices must lie in [0, {dimension}), got {indices.tolist()}")
        if not np.all(np.isfinite(values)):
            raise ValueError("a sparse vector's values must be finite numbers")
        return cls(indices, values, dimension)

    @classmethod
    def from_dense(cls, vector: Any) -> SparseVector:
        """The non-zero entries of a dense 1-D vector of finite numbers."""
        try:
            dense = np.asarray(vector, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"features must be a vector of numbers: {error}") from None
        if dense.ndim != 1 or dense.size == 0:
            raise ValueError(f"features must be a non-empty 1-D vector, got shape {dense.shape}")
        if not np.all(np.isfinite(dense)):
            raise ValueError("features contain NaN or infinite values")
        indices = np.flatnonzero(dense).astype(np.int64)
        return cls(indices, dense[indices], int(dense.size))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        dense = np.zeros(self.dimension, dtype=np.float64)
        dense[self.indices] = self.values
        return dense if dtype is None else dense.astype(dtype)

    def __len__(self) -> int:
        return self.dimension

    def dot(self, weights: np.ndarray) -> float:
        """``sum_i values_i * weights[indices_i]`` for a dense ``weights`` of this length."""
        return float(self.values @ weights[self.indices])

    def norm(self) -> float:
        """The Euclidean norm."""
        return math.sqrt(float(self.values @ self.values))
