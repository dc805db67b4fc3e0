"""TextFeaturizer: a request's words (and optionally characters) hashed into a long sparse vector.

No model, no download, no fitting: word unigrams and bigrams (and, if asked, character
n-grams of each word) are hashed with :func:`~rlmemory.features.hashing.stable_hash`
into ``dimension`` buckets, so the same text gives the same vector in every process, on
every machine and in every version. Counts are L2-normalised by default, which keeps the
step size of the learners independent of the length of a request.

``featurizer(text)`` is the dense ``numpy`` vector the issue promises (2 MB at the
default 2**18 buckets); :meth:`TextFeaturizer.sparse` is the same vector as a
:class:`~rlmemory.types.SparseVector` (a few hundred non-zeros), which is what
``SquareCBAgent`` and the coordinator use so that a step costs O(words), not O(buckets).

Collisions: ``n`` distinct features hashed into ``m`` buckets leave a share
``1 - exp(-n / m)`` of them in a bucket shared with another. The 14,042 MMLU prompts of
the routing benchmark have 375,355 distinct unigrams and bigrams: 76% share a bucket at
2**18, 30% at 2**20, 8.6% at 2**22 (``tests/test_features_text.py::
test_collision_rate_matches_the_documented_figure``). Most of them are rare bigrams
sharing with other rare bigrams; one request's own features rarely collide with each
other, and on that benchmark 2**16, 2**18 and 2**20 buckets route within 0.005 APGR of
each other (``docs/routing.md``).

>>> featurizer = TextFeaturizer(dimension=2**10)
>>> featurizer.name
'text-v1:d=1024:words=1-2:chars=none:lower:l2'
>>> vector = featurizer.sparse("Fix the bug, fix the build")
>>> vector.dimension, len(vector.indices)
(1024, 8)
>>> round(vector.norm(), 12)
1.0
>>> featurizer("fix the bug").shape
(1024,)
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from rlmemory.features.hashing import stable_hash
from rlmemory.types import SparseVector

#: Bumped whenever the mapping from text to vector changes; part of every ``name``.
TEXT_FEATURIZER_VERSION = 1

_WORD = re.compile(r"\w+", re.UNICODE)


class TextFeaturizer:
    """Hashed word unigrams and bigrams (and optional character n-grams) of a text.

    ``dimension`` buckets (default 2**18); ``word_ngrams`` the longest word n-gram
    (1: words only, 2: words and pairs of adjacent words); ``char_ngrams`` a range
    ``(low, high)`` of character n-gram lengths taken inside each word padded with
    spaces, or ``None``; ``lowercase`` folds case first; ``normalize`` scales the vector
    to unit length. ``name`` and ``dimension`` identify the mapping: two featurisers with
    the same name give the same vector for every text.
    """

    def __init__(
        self,
        dimension: int = 2**18,
        *,
        word_ngrams: int = 2,
        char_ngrams: tuple[int, int] | None = None,
        lowercase: bool = True,
        normalize: bool = True,
    ) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        if isinstance(word_ngrams, bool) or not isinstance(word_ngrams, int) or word_ngrams < 0:
            raise ValueError(f"word_ngrams must be a non-negative integer, got {word_ngrams!r}")
        if char_ngrams is not None:
            low, high = _check_char_range(char_ngrams)
            char_ngrams = (low, high)
        if word_ngrams == 0 and char_ngrams is None:
            raise ValueError("word_ngrams=0 and char_ngrams=None leave no feature to hash")
        self.dimension = dimension
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.lowercase = bool(lowercase)
        self.normalize = bool(normalize)
        chars = "none" if char_ngrams is None else f"{char_ngrams[0]}-{char_ngrams[1]}"
        self.name = (
            f"text-v{TEXT_FEATURIZER_VERSION}:d={dimension}:words=1-{word_ngrams}:"
            f"chars={chars}:{'lower' if self.lowercase else 'cased'}:"
            f"{'l2' if self.normalize else 'counts'}"
        )

    def __repr__(self) -> str:
        return f"TextFeaturizer({self.name!r})"

    def tokens(self, text: str) -> list[str]:
        """The features of ``text`` before hashing, each prefixed by its kind.

        >>> TextFeaturizer(word_ngrams=2).tokens("Hello big world")
        ['w:hello', 'w:big', 'w:world', 'b:hello big', 'b:big world']
        >>> TextFeaturizer(word_ngrams=0, char_ngrams=(3, 3)).tokens("Hi")
        ['c: hi', 'c:hi ']
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if self.lowercase:
            text = text.lower()
        words = _WORD.findall(text)
        features: list[str] = []
        for n in range(1, self.word_ngrams + 1):
            prefix = "w:" if n == 1 else ("b:" if n == 2 else f"{n}:")
            features.extend(
                prefix + " ".join(words[start : start + n]) for start in range(len(words) - n + 1)
            )
        if self.char_ngrams is not None:
            low, high = self.char_ngrams
            for word in words:
                padded = f" {word} "
                for n in range(low, high + 1):
                    features.extend(
                        "c:" + padded[start : start + n] for start in range(len(padded) - n + 1)
                    )
        return features

    def sparse(self, text: str) -> SparseVector:
        """``text`` as a :class:`SparseVector` of hashed counts (unit length if normalising)."""
        counts = Counter(stable_hash(token) % self.dimension for token in self.tokens(text))
        indices = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
        values = np.fromiter((counts[i] for i in indices.tolist()), dtype=np.float64)
        if self.normalize and values.size:
            values /= math.sqrt(float(values @ values))
        return SparseVector(indices, values, self.dimension)

    def __call__(self, text: str) -> np.ndarray:
        """``text`` as a dense vector of length ``dimension``."""
        return np.asarray(self.sparse(text))


def _check_char_range(char_ngrams: object) -> tuple[int, int]:
    if (
        not isinstance(char_ngrams, tuple | list)
        or len(char_ngrams) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in char_ngrams)
        or not 1 <= char_ngrams[0] <= char_ngrams[1]
    ):
        raise ValueError(
            f"char_ngrams must be a pair (low, high) with 1 <= low <= high, got {char_ngrams!r}"
        )
    return int(char_ngrams[0]), int(char_ngrams[1])
