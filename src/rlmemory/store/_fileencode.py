r"""What the file store writes, checked and encoded: texts, JSON fragments, rows, arrays.

Every value is validated (the shared checks of :mod:`rlmemory.store._validation`, plus
what no backend can store: NUL and unpaired surrogates) and encoded to UTF-8 JSON
before the store takes its lock, so bad input never leaves half a write behind.

>>> json_object(reward=json_fragment(0.5, "reward"), note=text_fragment('say "hi"', "note"))
b'{"reward":0.5,"note":"say \\"hi\\""}'
>>> text_fragment("a\x00b", "request")
Traceback (most recent call last):
ValueError: request contains a NUL character, which cannot be stored
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.errors import CorruptStoreError
from rlmemory.store._filecheck import check_q_values
from rlmemory.store._validation import check_agent_name, check_finite, check_id, check_text, to_json

_ARRAY_DTYPES = ("float64", "int64")
_INT64_MAX = int(np.iinfo(np.int64).max)


def check_name(agent_name: Any) -> None:
    check_agent_name(agent_name)
    check_storable_text(agent_name, "agent_name")


def check_storable_text(value: str, field: str) -> None:
    """Refuse what the SQL backends cannot store either: NUL and lone surrogates."""
    if "\x00" in value:
        raise ValueError(f"{field} contains a NUL character, which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} contains a lone surrogate, which cannot be stored") from None


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
    check_storable_text(text, field)
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


def check_propensity(propensity: Any) -> float | None:
    if propensity is None:
        return None
    value = check_finite(propensity, "propensity")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"propensity must be in (0, 1], got {value}")
    return value


def check_features(features: Any) -> list[float] | None:
    if features is None:
        return None
    if isinstance(features, (str, bytes, Mapping)):
        raise TypeError(f"features must be a sequence of numbers, not {type(features).__name__}")
    try:
        items = list(features)
    except TypeError:
        raise TypeError(
            f"features must be a sequence of numbers, not {type(features).__name__}"
        ) from None
    return [check_finite(value, f"features[{index}]") for index, value in enumerate(items)]


def check_keys(keys: Sequence[str] | None) -> list[str] | None:
    if keys is None:
        return None
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of str, not a single string")
    wanted = list(dict.fromkeys(keys))
    for key in wanted:
        if not isinstance(key, str):
            raise TypeError(f"array keys must be str, not {type(key).__name__}")
    return wanted


def encode_array(key: Any, value: Any) -> dict[str, Any]:
    if not isinstance(key, str):
        raise TypeError(f"array keys must be str, not {type(key).__name__}")
    if not key:
        raise ValueError("array keys must be non-empty strings")
    check_storable_text(key, "array key")
    array = np.asarray(value)
    if array.dtype.kind == "f":
        array = array.astype(np.float64, copy=False)
        if not np.isfinite(array).all():
            raise ValueError(f"arrays[{key!r}] contains NaN or infinity, which cannot be stored")
    elif array.dtype.kind in "iu":
        if array.dtype.kind == "u" and array.size and int(array.max()) > _INT64_MAX:
            raise ValueError(f"arrays[{key!r}] holds values too large for int64")
        array = array.astype(np.int64, copy=False)
    else:
        raise TypeError(f"arrays[{key!r}] must hold float64 or int64 numbers, not {array.dtype}")
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
