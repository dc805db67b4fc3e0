r"""What the file store writes, encoded: JSON fragments, rows, arrays; and change lines applied.

The values come checked by :class:`~rlmemory.store.base.MemoryStore` (JSON payloads as
compact JSON text already), so encoding them cannot fail; it happens before the store
takes its lock. Reading goes the other way: :func:`decode_array` and
:func:`apply_change` refuse what a person may have edited into a file.

>>> json_object(reward=json_value(0.5), note=text_fragment('say "hi"'))
b'{"reward":0.5,"note":"say \\"hi\\""}'
>>> array_document(np.arange(3, dtype=np.int64))
{'dtype': 'int64', 'shape': [3], 'data': [0, 1, 2]}
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.errors import CorruptStoreError
from rlmemory.store._steps import LearnerStep, decode_values
from rlmemory.store.files.check import check_q_values
from rlmemory.store.files.io import encode_line

_ARRAY_DTYPES = ("float64", "int64")


def json_value(value: float | int | None) -> bytes:
    """A number (finite, checked) or null as a JSON fragment."""
    return json.dumps(value, allow_nan=False).encode()


def text_fragment(text: str | None) -> bytes:
    """A checked text (or None) as a JSON string fragment, UTF-8 as it is."""
    return b"null" if text is None else json.dumps(text, ensure_ascii=False).encode("utf-8")


def now() -> bytes:
    """The current time as a JSON number."""
    return repr(time.time()).encode()


def json_object(**fragments: bytes) -> bytes:
    """A JSON object from already-encoded values, in the order given."""
    return (
        b"{"
        + b",".join(b'"%s":%s' % (key.encode(), value) for key, value in fragments.items())
        + b"}"
    )


def array_document(array: np.ndarray) -> dict[str, Any]:
    """How a (checked: float64 or int64, finite) array is kept in ``arrays.json``."""
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.ravel().tolist()}


def step_line(step_id: int, key: str, data: bytes, stamp: float) -> bytes:
    """The ``steps.jsonl`` line of one learner step (``data``: little-endian float64)."""
    encoded = base64.b64encode(data).decode("ascii")
    return encode_line({"id": step_id, "key": key, "data": encoded, "last_updated": stamp})


def decode_step(record: dict[str, Any], path: Path) -> LearnerStep:
    """One ``steps.jsonl`` line as a :class:`LearnerStep`; damage is a CorruptStoreError."""
    step_id, key, data = record.get("id"), record.get("key"), record.get("data")
    if isinstance(step_id, bool) or not isinstance(step_id, int) or not isinstance(key, str):
        raise CorruptStoreError(f"{path} holds a damaged learner step", str(path))
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
    except ValueError:
        raw = None
    if raw is None:
        raise CorruptStoreError(f"{path} holds a damaged learner step {step_id}", str(path))
    return LearnerStep(step_id, key, decode_values(raw, str(path)))


def decode_array(key: str, encoded: Any, path: Path) -> np.ndarray:
    try:
        dtype = encoded["dtype"]
        if dtype not in _ARRAY_DTYPES:
            raise ValueError(dtype)
        array = np.array(encoded["data"], dtype=dtype).reshape(encoded["shape"])
    except (KeyError, TypeError, ValueError):
        raise CorruptStoreError(f"{path} holds a damaged array {key!r}", str(path)) from None
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CorruptStoreError(f"{path}: array {key!r} holds NaN or infinity", str(path))
    return array


def apply_change(
    table: dict[str, Any], change: dict[str, Any], depth: int, path: Path, offset: int
) -> None:
    """Apply one line of an updates log (reset, delete, set) to ``table`` in place.

    A change a person may have edited is checked first: the keys it deletes are strings,
    and a Q-table (``depth`` 2) change sets objects of finite numbers.
    """
    if change.get("reset"):
        table.clear()
    doomed = change.get("delete", [])
    changes = change.get("set", {})
    if (
        not isinstance(doomed, list)
        or not isinstance(changes, dict)
        or not all(isinstance(key, str) for key in doomed)
    ):
        raise CorruptStoreError(f"{path} has a damaged change at byte offset {offset}", str(path))
    if depth == 2:
        for state, actions in changes.items():
            check_q_values(path, offset, state, actions)
    for key in doomed:
        table.pop(key, None)
    for key, value in changes.items():
        current = table.get(key)
        if depth == 2 and isinstance(current, dict) and isinstance(value, dict):
            current.update(value)
        else:
            table[key] = dict(value) if isinstance(value, dict) else value
