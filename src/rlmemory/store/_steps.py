"""Learner steps: the checks and the byte encoding every backend applies to them.

A learner step is one small record a learner appends per update (for the linear
bandits: the action as ``key``, ``[reward, weight, x_0 … x_{d-1}]`` as ``values``)
instead of rewriting its O(d²) statistics; see :meth:`MemoryStore.append_learner_steps`.
``values`` is stored as little-endian float64 bytes, so it round-trips bit for bit.

>>> import numpy as np
>>> steps = check_steps([("search", np.array([1.0, 0.5]))])
>>> steps[0][0], decode_values(steps[0][1], "here").tolist()
('search', [1.0, 0.5])
>>> check_steps([("search", np.array([np.nan]))])
Traceback (most recent call last):
ValueError: steps[0] values contain NaN or infinity, which cannot be stored
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from rlmemory.errors import CorruptStoreError
from rlmemory.store._validation import check_integer, check_name

#: How stored step values are laid out: little-endian float64.
STEP_DTYPE = np.dtype("<f8")


class LearnerStep(NamedTuple):
    """One stored step: its id (increasing in append order), key and float64 values."""

    id: int
    key: str
    values: np.ndarray


def check_steps(steps: object) -> list[tuple[str, bytes]]:
    """Check ``append_learner_steps``'s argument; return ``(key, encoded values)`` pairs."""
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence):
        raise TypeError(f"steps must be a sequence of (key, values), not {type(steps).__name__}")
    checked = []
    for index, step in enumerate(steps):
        if not isinstance(step, tuple | list) or len(step) != 2:
            raise TypeError(f"steps[{index}] must be a (key, values) pair")
        key, values = step
        check_name(key, f"steps[{index}] key")  # a name: non-empty, storable, <= 512 bytes
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
            raise TypeError(f"steps[{index}] values must be a numpy array of numbers")
        if values.ndim != 1:
            raise ValueError(f"steps[{index}] values must be 1-D, got shape {values.shape}")
        as_float = values.astype(STEP_DTYPE)
        if not np.isfinite(as_float).all():
            raise ValueError(
                f"steps[{index}] values contain NaN or infinity, which cannot be stored"
            )
        checked.append((key, as_float.tobytes()))
    return checked


def check_step_id(value: object, field: str) -> int:
    """A step id bound: a non-negative int that fits a signed 64-bit column.

    >>> check_step_id(-1, "after_id")
    Traceback (most recent call last):
    ValueError: after_id must be at least 0, got -1
    """
    return check_integer(value, field, minimum=0)


def decode_values(data: Any, where: str) -> np.ndarray:
    """Stored bytes back to a float64 vector; damaged bytes are a ``CorruptStoreError``."""
    raw = bytes(data)
    if len(raw) % STEP_DTYPE.itemsize:
        raise CorruptStoreError(f"{where}: a learner step holds {len(raw)} bytes", where)
    return np.frombuffer(raw, dtype=STEP_DTYPE).astype(np.float64)
