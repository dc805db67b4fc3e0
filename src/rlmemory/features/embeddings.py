"""EmbeddingFeaturizer: any embedding model as a featuriser, its vectors cached in the store.

Give it a LangChain ``Embeddings`` object (``embed_query`` / ``aembed_query``) or any
callable ``text -> sequence of floats``. A vector is looked up, in this order, in a small
in-memory cache, in the store's feature cache (keyed by the featuriser's ``name`` and
the SHA-256 of the text, so a restarted process or another worker sharing the store
does not pay the model again), and only then computed and cached. The store's cache is
bounded: after every ``prune_every`` new vectors it keeps the ``max_cached`` newest
(:meth:`~rlmemory.store.base.MemoryStore.prune_feature_vectors`).

``name`` identifies the model: two featurisers with the same name must give the same
vector for a text, or they would read each other's cache. It defaults to the class of
the embeddings object and its ``model`` / ``model_name`` attribute; a plain function
needs ``name=``.

>>> import os, tempfile
>>> from rlmemory.store.sql import MemoryDatabase
>>> def letters(text):
...     return [text.count("a"), text.count("b"), 1.0]
>>> with MemoryDatabase(os.path.join(tempfile.mkdtemp(), "m.db")) as db:
...     featurizer = EmbeddingFeaturizer(letters, name="letters-v1", db=db)
...     featurizer("abba").tolist(), featurizer.dimension, featurizer.misses
([2.0, 2.0, 1.0], 3, 1)
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rlmemory.store.base import MemoryStore


def text_key(text: str) -> str:
    """The SHA-256 hex digest of ``text`` (UTF-8): the cache key of its vector.

    >>> text_key("hello")[:16]
    '2cf24dba5fb0a30e'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class EmbeddingFeaturizer:
    """Vectors from an embedding model, cached in memory and in ``db`` (optional).

    ``max_cached`` bounds the vectors kept in the store per featuriser name (``None``:
    unbounded); ``prune_every`` how many new vectors are cached between two prunings;
    ``memory_cache`` how many vectors this object keeps in memory (least recently used
    go first). ``hits`` counts texts served from a cache (memory or store), ``misses``
    texts the model computed.
    """

    def __init__(
        self,
        embeddings: Any,
        *,
        name: str | None = None,
        db: MemoryStore | None = None,
        dimension: int | None = None,
        max_cached: int | None = 100_000,
        prune_every: int = 1000,
        memory_cache: int = 1024,
    ) -> None:
        self._embed, self._aembed = _embedding_functions(embeddings)
        self.name = name if name is not None else _default_name(embeddings)
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if dimension is not None and (
            isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1
        ):
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        if max_cached is not None and (
            isinstance(max_cached, bool) or not isinstance(max_cached, int) or max_cached < 0
        ):
            raise ValueError(f"max_cached must be a non-negative int or None, got {max_cached!r}")
        for value, field in ((prune_every, "prune_every"), (memory_cache, "memory_cache")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")
        self.db = db
        self.dimension = dimension
        self.max_cached = max_cached
        self.prune_every = prune_every
        self.memory_cache = memory_cache
        self.hits = 0
        self.misses = 0
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._new_since_prune = 0

    def __repr__(self) -> str:
        return f"EmbeddingFeaturizer({self.name!r})"

    def __call__(self, text: str) -> np.ndarray:
        """The vector of ``text``, from a cache or computed (and then cached)."""
        key = text_key(text)
        cached = self._cached(key)
        if cached is not None:
            return cached
        return self._remember(key, self._embed(text))

    async def acall(self, text: str) -> np.ndarray:
        """:meth:`__call__` for async code: ``aembed_query`` if the model has it."""
        key = text_key(text)
        cached = self._cached(key)
        if cached is not None:
            return cached
        if self._aembed is not None:
            vector = await self._aembed(text)
        else:
            vector = await asyncio.to_thread(self._embed, text)
        return self._remember(key, vector)

    def _cached(self, key: str) -> np.ndarray | None:
        vector = self._recent.get(key)
        if vector is None and self.db is not None:
            vector = self.db.get_feature_vectors(self.name, [key]).get(key)
            if vector is not None:
                self._check(vector, "the store's cache")
                self._keep_in_memory(key, vector)
        if vector is None:
            return None
        self._recent.move_to_end(key)
        self.hits += 1
        return vector.copy()

    def _remember(self, key: str, raw: Any) -> np.ndarray:
        vector = self._check(raw, "the embedding model")
        self.misses += 1
        self._keep_in_memory(key, vector)
        if self.db is not None:
            self.db.save_feature_vectors(self.name, {key: vector})
            self._new_since_prune += 1
            if self.max_cached is not None and self._new_since_prune >= self.prune_every:
                self.prune()
        return vector.copy()

    def prune(self) -> int:
        """Keep the ``max_cached`` newest vectors of this featuriser in the store; return
        how many were deleted."""
        self._new_since_prune = 0
        if self.db is None or self.max_cached is None:
            return 0
        return self.db.prune_feature_vectors(self.name, self.max_cached)

    def _keep_in_memory(self, key: str, vector: np.ndarray) -> None:
        self._recent[key] = vector
        self._recent.move_to_end(key)
        while len(self._recent) > self.memory_cache:
            self._recent.popitem(last=False)

    def _check(self, raw: Any, source: str) -> np.ndarray:
        try:
            vector = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{source} returned {type(raw).__name__}, not numbers") from None
        if vector.ndim != 1 or vector.size == 0:
            raise ValueError(f"{source} returned shape {vector.shape}, not a 1-D vector")
        if not all(math.isfinite(value) for value in vector.tolist()):
            raise ValueError(f"{source} returned NaN or infinite values")
        if self.dimension is None:
            self.dimension = int(vector.size)
        elif vector.size != self.dimension:
            raise ValueError(
                f"{source} returned a vector of length {vector.size}, but featuriser "
                f"{self.name!r} has dimension {self.dimension}"
            )
        return vector


def _embedding_functions(
    embeddings: Any,
) -> tuple[Callable[[str], Sequence[float]], Callable[[str], Any] | None]:
    if hasattr(embeddings, "embed_query"):
        return embeddings.embed_query, getattr(embeddings, "aembed_query", None)
    if callable(embeddings):
        return embeddings, None
    raise TypeError(
        "embeddings must be a LangChain Embeddings object (embed_query) or a callable "
        f"text -> vector, not {type(embeddings).__name__}"
    )


def _default_name(embeddings: Any) -> str:
    kind = type(embeddings)
    if not hasattr(embeddings, "embed_query"):
        qualname = getattr(embeddings, "__qualname__", "")
        if not qualname or "<" in qualname:
            raise ValueError("a featuriser made from a lambda or local function needs name=")
        return f"embeddings:{getattr(embeddings, '__module__', '')}.{qualname}"
    model = getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None)
    suffix = f":{model}" if isinstance(model, str) and model else ""
    return f"embeddings:{kind.__module__}.{kind.__qualname__}{suffix}"
