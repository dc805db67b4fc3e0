"""Feature dictionaries (Personalizer's ``contextFeatures``) become fixed-length vectors.

:class:`DictFeaturizer` hashes every leaf of nested JSON-like dictionaries into a vector
of ``dimension`` floats, the same way in every process (:func:`stable_hash`, never the
salted built-in ``hash``):

* slot 0 is a constant 1.0 (a bias: an empty context still learns each action's mean);
* a leaf is named ``namespace^key`` where ``namespace`` is the top-level key whose value
  is a dictionary (``""`` for a top-level scalar) and ``key`` the path below it, joined
  with ``.`` (list items add ``[i]``);
* a string (or boolean, written ``true``/``false``) leaf adds 1.0 at slot
  ``1 + stable_hash("namespace^key=value") % (dimension - 1)``;
* a number leaf adds its value at slot ``1 + stable_hash("namespace^key") % (dimension - 1)``;
* ``null`` leaves are skipped; a list of dictionaries (``[{"user": {...}}, {...}]``) is
  read as one dictionary.

Colliding names add up in one slot (the hashing trick). NaN or infinite numbers, keys
that are not strings and nesting deeper than :data:`MAX_DEPTH` are ``ValueError``.

>>> featurizer = DictFeaturizer(dimension=8)
>>> vector = featurizer([{"user": {"type": "anonymous", "age": 31}}, {"device": "mobile"}])
>>> vector.shape, float(vector[0]), float(vector.sum())
((8,), 1.0, 34.0)
>>> bool((featurizer({"user": {"age": 31, "type": "anonymous"}, "device": "mobile"})
...       == vector).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rlmemory.features.hashing import stable_hash

#: Deepest nesting of dictionaries and lists accepted.
MAX_DEPTH = 32


class DictFeaturizer:
    """Nested feature dictionaries -> a ``dimension``-long float vector (see the module)."""

    def __init__(self, dimension: int = 64) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 2:
            raise ValueError(f"dimension must be an integer >= 2, got {dimension!r}")
        self.dimension = dimension
        self.name = f"dict-hash-{dimension}"

    def __repr__(self) -> str:
        return f"DictFeaturizer(dimension={self.dimension})"

    def __call__(
        self, features: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
    ) -> np.ndarray:
        """The vector of ``features`` (a dictionary, a list of them, or None for none)."""
        vector = np.zeros(self.dimension, dtype=np.float64)
        vector[0] = 1.0
        slots = self.dimension - 1
        for name, value in self.leaves(features):
            if isinstance(value, str):
                vector[1 + stable_hash(f"{name}={value}") % slots] += 1.0
            else:
                vector[1 + stable_hash(name) % slots] += value
        return vector

    def leaves(
        self, features: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
    ) -> Iterator[tuple[str, str | float]]:
        """Each leaf as (``namespace^key``, string or finite number), in document order.

        >>> list(DictFeaturizer().leaves({"user": {"tags": ["a", 2]}, "hour": 9}))
        [('user^tags[0]', 'a'), ('user^tags[1]', 2.0), ('^hour', 9.0)]
        """
        if features is None:
            return
        if isinstance(features, Mapping):
            documents: Sequence[Any] = [features]
        elif isinstance(features, Sequence) and not isinstance(features, str | bytes):
            documents = features
        else:
            raise ValueError(
                f"features must be a dictionary or a list of dictionaries, not "
                f"{type(features).__name__}"
            )
        for document in documents:
            if not isinstance(document, Mapping):
                raise ValueError(
                    f"features must be a list of dictionaries; found {type(document).__name__}"
                )
            for top_key, value in document.items():
                _check_key(top_key)
                if isinstance(value, Mapping):
                    yield from _walk(top_key, "", value, 1)
                else:
                    yield from _walk("", top_key, value, 1)


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise ValueError(f"feature names must be strings, got {key!r}")


def _walk(namespace: str, path: str, value: Any, depth: int) -> Iterator[tuple[str, str | float]]:
    if depth > MAX_DEPTH:
        raise ValueError(f"features are nested deeper than {MAX_DEPTH} levels")
    if value is None:
        return
    if isinstance(value, bool):
        yield f"{namespace}^{path}", "true" if value else "false"
    elif isinstance(value, str):
        yield f"{namespace}^{path}", value
    elif isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"feature {namespace}^{path} is not a finite number: {value!r}")
        yield f"{namespace}^{path}", number
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _check_key(key)
            yield from _walk(namespace, f"{path}.{key}" if path else key, inner, depth + 1)
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for index, item in enumerate(value):
            yield from _walk(namespace, f"{path}[{index}]", item, depth + 1)
    else:
        raise ValueError(
            f"feature {namespace}^{path} has an unsupported type {type(value).__name__}"
        )
