"""What each line of the file store's files may hold, checked as it is read.

The files are meant to be read and edited by people (``docs/store-files.md``), so a
value the store would never write can appear in them: a reward that is text or
``true``, an id that is a float, a Q-value that is a string, ``1e999`` (infinity).
Returned as is, such a value breaks a learner far from its cause. Every line read
through :mod:`rlmemory.store.files.rows` (rows and patches alike) and every change of a
keyed table goes through these checks instead, and a wrong type is a
:class:`~rlmemory.errors.CorruptStoreError` naming the file, the line and the field.
Keys the store does not know are left alone; ``NaN`` and ``Infinity`` literals are
refused earlier, when the line is parsed (:func:`rlmemory.store.files.io.loads_strict`).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rewards.jsonl"
>>> _ = path.write_text('{"id":1,"reward":"high"}\\n')
>>> try:
...     check_record(path, 0, {"id": 1, "reward": "high"})
... except CorruptStoreError as error:
...     print(str(error).removeprefix(str(path)))
 line 1: reward is 'high', not a finite number
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlmemory.errors import CorruptStoreError
from rlmemory.store.files.io import line_number
from rlmemory.store.files.layout import (
    DECISIONS_FILE,
    HISTORY_FILES,
    INTERACTIONS_FILE,
    REWARDS_FILE,
    VERSIONS_DATA_FILE,
    VERSIONS_FILE,
)


def _finite(value: Any) -> bool:
    kind = type(value)  # not isinstance: a bool is not a number here
    if kind is float:
        return math.isfinite(value)
    return kind is int and abs(value) <= sys.float_info.max


def _positive_int(value: Any) -> bool:
    return type(value) is int and value > 0


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _optional_id(value: Any) -> bool:
    return value is None or _positive_int(value)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _mapping(value: Any) -> bool:
    return isinstance(value, dict)


def _anything(value: Any) -> bool:
    return True


def _propensity(value: Any) -> bool:
    return value is None or (_finite(value) and 0.0 < value <= 1.0)


def _features(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(map(_finite, value)))


_EXPECTED: dict[Callable[[Any], bool], str] = {
    _finite: "a finite number",
    _positive_int: "a positive integer",
    _count: "an integer >= 0",
    _optional_id: "null or a positive integer",
    _text: "a string",
    _optional_text: "null or a string",
    _mapping: "a JSON object",
    _propensity: "null or a number in (0, 1]",
    _features: "null or a list of finite numbers",
}

_FIELDS: dict[str, dict[str, Callable[[Any], bool]]] = {
    REWARDS_FILE: {
        "reward": _finite,
        "reward_components": _mapping,
        "decision_id": _optional_id,
        "timestamp": _finite,
    },
    INTERACTIONS_FILE: {
        "request": _text,
        "response": _text,
        "feedback": _optional_text,
        "learned_feedback": _optional_text,
        "decision_id": _optional_id,
        "timestamp": _finite,
    },
    DECISIONS_FILE: {
        "state": _text,
        "selected_action": _text,
        "q_values": _mapping,
        "reward": _anything,
        "propensity": _propensity,
        "features": _features,
        "version": _optional_id,
        "timestamp": _finite,
    },
    VERSIONS_FILE: {"version": _positive_int, "note": _text, "created": _finite, "size": _count},
    VERSIONS_DATA_FILE: {"version": _positive_int, "payload": _text},
}


def _wrong(path: Path, offset: int, key: str, value: Any, expected: str) -> CorruptStoreError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return CorruptStoreError(
        f"{path} line {line_number(path, offset)}: {key} is {shown}, not {expected}", str(path)
    )


RecordCheck = Callable[[int, dict[str, Any]], None]


def _no_check(offset: int, record: dict[str, Any]) -> None:
    return None


def record_check(path: Path) -> RecordCheck:
    """The check of one line of ``path`` (chosen by file name once, for a whole read).

    It refuses a line holding a known field of the wrong type, and a history line with
    neither ``id`` nor ``patch``.
    """
    fields = _FIELDS.get(path.name)
    if fields is None:
        return _no_check
    history = path.name in HISTORY_FILES
    tests = {**fields, "id": _positive_int, "patch": _positive_int} if history else fields

    def check(offset: int, record: dict[str, Any]) -> None:
        for key, value in record.items():
            test = tests.get(key)
            if test is not None and not test(value):
                raise _wrong(path, offset, key, value, _EXPECTED[test])
        if history and "id" not in record and "patch" not in record:
            raise _wrong(path, offset, "id", None, "a positive integer")

    return check


def check_record(path: Path, offset: int, record: dict[str, Any]) -> None:
    """Refuse a line of a history or versions file holding a field of the wrong type."""
    record_check(path)(offset, record)


def check_q_values(path: Path, offset: int | None, state: Any, actions: Any) -> None:
    """Refuse a Q-table state that is not an object of finite numbers.

    ``offset`` is the byte offset of the updates-log line, ``None`` for the table file
    (whose lines are then named by state).
    """
    where = f"{path} line {line_number(path, offset)}" if offset is not None else str(path)
    if not isinstance(actions, dict):
        raise CorruptStoreError(
            f"{where}: state {state!r} holds {actions!r:.60}, not an object of action values",
            str(path),
        )
    for action, value in actions.items():
        if not _finite(value):
            raise CorruptStoreError(
                f"{where}: the Q-value of state {state!r}, action {action!r} is "
                f"{value!r:.60}, not a finite number",
                str(path),
            )


def check_q_table_document(table: dict[str, Any], path: Path) -> dict[str, Any]:
    """Return a Q-table read from ``path`` after checking every state holds finite numbers."""
    # One pass in C over all values for the common case; names the culprit otherwise.
    with contextlib.suppress(OverflowError):
        if all(type(actions) is dict for actions in table.values()):
            values = [value for actions in table.values() for value in actions.values()]
            if set(map(type, values)) <= {float, int} and bool(
                np.isfinite(np.fromiter(values, np.float64, len(values))).all()
            ):
                return table
    for state, actions in table.items():
        check_q_values(path, None, state, actions)
    return table
