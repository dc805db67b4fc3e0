r"""What the file store writes, checked and encoded: texts, JSON fragments, rows, arrays.

Every value is validated (the checks of :mod:`rlmemory.store._validation` that every
backend shares) and encoded to UTF-8 JSON before the store takes its lock, so bad
input never leaves half a write behind.

>>> json_object(reward=json_fragment(0.5, "reward"), note=text_fragment('say "hi"', "note"))
b'{"reward":0.5,"note":"say \\"hi\\""}'
>>> text_fragment("a\x00b", "request")
Traceback (most recent call last):
ValueError: request contains a NUL character, which cannot be stored
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.errors import CorruptStoreError
from rlmemory.store._validation import (
    check_agent_name,
    check_array,
    check_id,
    check_names,
    check_storable,
    check_text,
    to_json,
)
from rlmemory.store.files.check import check_q_values

_ARRAY_DTYPES = ("float64", "int64")


def check_name(agent_name: Any) -> None:
    check_agent_name(agent_name)


def utf8(text: str, field: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} contains a lone surrogate, which cannot be stored") from None


def encode_change(change: dict[str, Any], field: str) -> bytes:
    return utf8(to_json(change, field) + "\n", field)


def json_fragment(value: Any, field: str) -> bytes:
    return utf8(to_json(value, field), field)


def text_fragment(value: Any, field: str, *, optional: bool = False) -> bytes:
    text = check_text(value, field, optional=optional)
    if text is None:
        return b"null"
    check_storable(text, field)
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def optional_id(value: Any, field: str) -> bytes:
    return b"null" if value is None else b"%d" % check_id(value, field)


def now() -> bytes:
    return repr(time.time()).encode()


def json_object(**fragments: bytes) -> bytes:
    """A JSON object from already-encoded values, in the order given."""
    return (
        b"{"
        + b",".join(b'"%s":%s' % (key.encode(), value) for key, value in fragments.items())
        + b"}"
    )


def check_keys(keys: Sequence[str] | None) -> list[str] | None:
    return None if keys is None else check_names(keys, "keys")


def encode_array(key: Any, value: Any) -> dict[str, Any]:
    key, array = check_array(key, value)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.ravel().tolist()}


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
