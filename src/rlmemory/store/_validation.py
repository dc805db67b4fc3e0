"""Argument checks and JSON encoding shared by every store backend.

Every backend calls these before it writes anything, so a bad argument is rejected
with the same typed error everywhere and nothing is half-stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

QTable = dict[str, dict[str, float]]


def check_agent_name(agent_name: object) -> str:
    """Return ``agent_name`` if it is a non-empty string, else raise.

    >>> check_agent_name("router")
    'router'
    >>> check_agent_name("")
    Traceback (most recent call last):
    ValueError: agent_name must be a non-empty string
    """
    if not isinstance(agent_name, str):
        raise TypeError(f"agent_name must be a str, not {type(agent_name).__name__}")
    if not agent_name:
        raise ValueError("agent_name must be a non-empty string")
    return agent_name


def check_limit(limit: object, field: str = "limit") -> int:
    """Return ``limit`` if it is a positive int.

    >>> check_limit(0)
    Traceback (most recent call last):
    ValueError: limit must be a positive integer, got 0
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"{field} must be an int, not {type(limit).__name__}")
    if limit <= 0:
        raise ValueError(f"{field} must be a positive integer, got {limit}")
    return limit


def check_finite(value: object, field: str) -> float:
    """Return ``value`` as a float if it is a finite real number.

    >>> check_finite(float("nan"), "reward")
    Traceback (most recent call last):
    ValueError: reward must be a finite number, got nan
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, np.floating | np.integer):
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            raise TypeError(f"{field} must be a number, not {type(value).__name__}") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value}")
    return value


def check_text(value: object, field: str, *, optional: bool = False) -> str | None:
    """Return ``value`` if it is a str (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    return value


def check_id(value: object, field: str) -> int:
    """Return ``value`` if it is a positive int id."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, not {type(value).__name__}")
    return value


def to_json(payload: Any, field: str) -> str:
    """Encode ``payload`` as compact JSON, rejecting what would not round-trip.

    NaN and infinities are a ``ValueError`` naming the field; a value JSON cannot
    encode is a ``TypeError`` naming its type.

    >>> to_json({"a": 1.5}, "reward_components")
    '{"a":1.5}'
    >>> to_json({"a": {1, 2}}, "reward_components")
    Traceback (most recent call last):
    TypeError: reward_components contains a value of type set, which JSON cannot encode
    """
    try:
        return json.dumps(
            payload, allow_nan=False, ensure_ascii=False, separators=(",", ":"), default=_reject
        )
    except _Unencodable as error:
        raise TypeError(
            f"{field} contains a value of type {error.type_name}, which JSON cannot encode"
        ) from None
    except ValueError:
        raise ValueError(f"{field} contains NaN or infinity, which cannot be stored") from None


class _Unencodable(Exception):
    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name


def _reject(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.floating | np.integer | np.bool_):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    raise _Unencodable(type(value).__name__)


def check_mapping(value: object, field: str, contents: str = "") -> Mapping[Any, Any]:
    """Return ``value`` if it is a mapping, else a ``TypeError`` naming ``field``.

    >>> check_mapping({"a": 1}, "reward_components")
    {'a': 1}
    >>> check_mapping([1], "arrays", " of name to array")
    Traceback (most recent call last):
    TypeError: arrays must be a mapping of name to array, not list
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{field} must be a mapping{contents}, not {type(value).__name__}")
    return value


def check_q_table(q_table: object, field: str = "q_table") -> QTable:
    """Validate a Q-table ``{state: {action: value}}`` and return a plain-dict copy.

    States and actions must be strings and values finite numbers. A state with no
    actions carries no information and is dropped, on every backend alike.

    >>> check_q_table({"s": {"a": 1}, "empty": {}})
    {'s': {'a': 1.0}}
    >>> check_q_table({"s": {"a": float("inf")}})
    Traceback (most recent call last):
    ValueError: q_table['s']['a'] must be a finite number, got inf
    """
    if not isinstance(q_table, Mapping):
        raise TypeError(
            f"{field} must be a mapping of state to actions, not {type(q_table).__name__}"
        )
    clean: QTable = {}
    for state, actions in q_table.items():
        if not isinstance(state, str):
            raise TypeError(f"{field} state keys must be str, not {type(state).__name__}")
        if not isinstance(actions, Mapping):
            raise TypeError(
                f"{field}[{state!r}] must be a mapping of action to value, "
                f"not {type(actions).__name__}"
            )
        row: dict[str, float] = {}
        for action, value in actions.items():
            if not isinstance(action, str):
                raise TypeError(
                    f"{field}[{state!r}] action keys must be str, not {type(action).__name__}"
                )
            row[action] = check_finite(value, f"{field}[{state!r}][{action!r}]")
        if row:
            clean[state] = row
    return clean
