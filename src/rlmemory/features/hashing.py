"""Stable hashing for features: the same token gives the same number in every process.

Python's built-in ``hash`` of a string is salted per process, so a featuriser that used
it would map one request to different vectors in two workers. Every hashed feature in
rlmemory goes through :func:`stable_hash` instead (BLAKE2b, 8 bytes, a fixed
personalisation string), which is the same on every machine and in every version.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache


@lru_cache(maxsize=65536)
def stable_hash(word: str) -> int:
    """A 64-bit hash of ``word`` that is the same in every process and on every machine.

    >>> stable_hash("search")
    11151962153575615498
    """
    digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8, person=b"rlmemory").digest()
    return int.from_bytes(digest, "little")
